"""Printing messages: one line per event, AMI text, the JSON shape, terminal-safe text."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from ..actions import OriginateResult
from ..message import Event, Message, Response
from .common import out

# -- output ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SECRET_KEYS = frozenset({"secret"})


def valid_text(text: str) -> str:
    """`text` encodable as UTF-8: bytes that were not UTF-8 become `\\xNN`."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("ascii")
    return text


def printable(text: str) -> str:
    """`text` safe for a terminal: not-UTF-8 bytes and control characters as `\\xNN`."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", valid_text(text))


def quote(value: str) -> str:
    if value and not any(c.isspace() or c in "\"\\'" for c in value):
        return printable(value)
    return json.dumps(valid_text(value), ensure_ascii=False)


def _shown_headers(msg: Message, redact: bool) -> list[tuple[str, str]]:
    if not redact:
        return list(msg.headers)
    # The Key of an MD5 login is a credential; the Key of a DB action is not.
    login = any(k.lower() == "authtype" for k, _ in msg.headers) or (
        msg.get("Action", "").lower() == "login"
    )
    hidden = _SECRET_KEYS | {"key"} if login else _SECRET_KEYS
    return [(k, "********" if k.lower() in hidden else v) for k, v in msg.headers]


def event_line(event: Event, *, clock: bool = True) -> str:
    """One line for an event: `[HH:MM:SS.mmm] Name Key=value ...` (values quoted if needed)."""
    fields = " ".join(
        f"{printable(k)}={quote(v)}" for k, v in event.headers if k.lower() != "event"
    )
    line = f"{printable(event.name)} {fields}".rstrip()
    if clock:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        return f"{stamp} {line}"
    return line


def message_lines(msg: Message, *, redact: bool = False) -> list[str]:
    """A message as AMI text: `Key: Value` lines, colon-less lines, then any CLI body."""
    lines = [f"{printable(k)}: {printable(v)}" for k, v in _shown_headers(msg, redact)]
    lines += [printable(line) for line in msg.bare_lines]
    if msg.body is not None:
        body = msg.body[:-1] if msg.body.endswith("\n") else msg.body
        lines += [printable(line) for line in body.split("\n")] if body else []
    return lines


def message_json(msg: Message, *, redact: bool = False) -> dict[str, Any]:
    """The JSON shape of a message (docs/cli.md): type, name/response, ordered headers."""
    obj: dict[str, Any]
    if isinstance(msg, Event):
        obj = {"type": "event", "name": valid_text(msg.name)}
    elif isinstance(msg, Response):
        obj = {"type": "response", "response": valid_text(msg.response)}
    elif "Action" in msg:
        obj = {"type": "action", "name": valid_text(msg["Action"])}
    else:
        obj = {"type": "message"}
    obj["headers"] = [[valid_text(k), valid_text(v)] for k, v in _shown_headers(msg, redact)]
    if msg.bare_lines:
        obj["bare_lines"] = [valid_text(line) for line in msg.bare_lines]
    if msg.body is not None:
        obj["body"] = valid_text(msg.body)
    return obj


def dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def print_message(msg: Message, as_json: bool) -> None:
    if as_json:
        out(dumps(message_json(msg)))
    else:
        for line in message_lines(msg):
            out(line)
        out()


def result_json(result: OriginateResult) -> dict[str, Any]:
    return {
        "type": "originate",
        "success": result.success,
        "reason": int(result.reason) if result.reason is not None else None,
        "reason_text": result.reason_text,
        "channel": result.channel,
        "uniqueid": result.uniqueid,
        "response": message_json(result.response),
        "event": message_json(result.event) if result.event is not None else None,
    }


def describe_result(result: OriginateResult) -> str:
    """One line: how an Originate went."""
    if result.event is None and result.success:
        return "queued (the outcome comes later as an OriginateResponse event)"
    outcome = "success" if result.success else "failed"
    parts = [outcome]
    if result.reason is not None:
        parts.append(f"reason {int(result.reason)} ({result.reason_text})")
    if result.channel:
        parts.append(f"channel {printable(result.channel)}")
    if result.uniqueid:
        parts.append(f"uniqueid {printable(result.uniqueid)}")
    return ", ".join(parts)
