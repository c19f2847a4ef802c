"""AMI messages as FakeAsterisk writes them: encoding, `make_response`, event masks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypeAlias, cast

from ..message import Message

MessageLike: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]] | bytes
"""One message to send: ``{"Key": "value"}``, ``[("Key", "value"), ...]`` (keys may
repeat), a parsed `Message`, or raw ``bytes`` (sent as is)."""
Reply: TypeAlias = MessageLike | Sequence[MessageLike]
"""What an action handler may return: one message, or a sequence of messages."""

# Actions Asterisk accepts before login (manager.c process_message).
_PRE_AUTH_ACTIONS: Final = frozenset({"login", "challenge", "logoff"})
# Event classes (the Privilege: values), include/asterisk/manager.h.
_EVENT_CLASSES: Final = frozenset(
    {
        "system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
        "reporting", "cdr", "dialplan", "originate", "agi", "hookresponse", "cc", "aoc",
        "test", "security", "message",
    }
)  # fmt: skip
_TRUE: Final = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE: Final = frozenset({"no", "false", "n", "f", "0", "off"})
# Originate to one of these extensions fails (Local/999@test in originate_fail_async.bin).
_FAILING_EXTENS: Final = frozenset({"404", "999"})
_LEGACY_ASTERISK_VERSION: Final = "13.38.3"
_END_COMMAND: Final = b"--END COMMAND--\r\n\r\n"
_ACTION_ID_LINE: Final = re.compile(rb"^ActionID: ([^\r\n]*)\r\n", re.MULTILINE)
_CLOSE: Final = None  # marker in a session's held output: close the connection here


# -- encoding helpers ---------------------------------------------------------------


def _encode_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{key}: {value}\r\n" for key, value in headers).encode(
        "utf-8", "surrogateescape"
    )


def _encode_message(headers: Iterable[tuple[str, str]]) -> bytes:
    """``Key: value\\r\\n`` per header, then the empty line that ends the message."""
    return _encode_lines(headers) + b"\r\n"


def _pairs(message: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(message, Message):
        return list(message.headers)  # keeps repeated keys
    if isinstance(message, Mapping):
        return [(str(k), str(v)) for k, v in message.items()]
    return [(str(k), str(v)) for k, v in message]


def _encode(message: MessageLike) -> bytes:
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    return _encode_message(_pairs(message))


def _is_pair(item: object) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)


def _messages(reply: Reply) -> list[MessageLike]:
    """Split a handler's reply into messages (a list of pairs is one message)."""
    if isinstance(reply, (bytes, bytearray, memoryview, Mapping)):
        return [cast(MessageLike, reply)]
    items = list(reply)
    if items and all(_is_pair(item) for item in items):
        return [cast(MessageLike, items)]
    return cast(list[MessageLike], items)


def _header(message: Message, key: str) -> str:
    """A header as Asterisk reads it: first value, leading blanks skipped, "" if absent."""
    return message.get(key, "").lstrip(" \t")


def make_response(
    action: Message,
    status: str = "Success",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    /,
    **more: str,
) -> list[tuple[str, str]]:
    """``Response: <status>``, then ``ActionID`` if the action had one, then the headers.

    This is the order Asterisk writes (``astman_send_response_full``)::

        make_response(action, "Error", Message="No such channel")
    """
    pairs = [("Response", status), *_pairs(headers), *more.items()]
    return with_action_id(action, pairs)


def with_action_id(
    action: Message, message: Mapping[str, str] | Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``message`` with the action's ActionID inserted after its first header.

    Unchanged when the action had no (non-empty) ActionID or the message has one.
    """
    pairs = _pairs(message)
    action_id = _header(action, "ActionID")
    if not action_id or any(key.lower() == "actionid" for key, _ in pairs):
        return pairs
    return [*pairs[:1], ("ActionID", action_id), *pairs[1:]]


# -- event masks ----------------------------------------------------------------------


def _is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


def _normalise_mask(value: str) -> str:
    """An ``Events``/``EventMask`` value as ``"on"``, ``"off"`` or a class list."""
    text = value.strip().lower()
    if text.isdigit():
        return "on" if int(text) else "off"
    if text in _TRUE:
        return "on"
    if text in _FALSE:
        return "off"
    classes = [c.strip() for c in text.split(",") if c.strip()]
    if "all" in classes:
        return "on"
    return ",".join(c for c in classes if c in _EVENT_CLASSES) or "off"


def _mask_allows(mask: str, event: Sequence[tuple[str, str]]) -> bool:
    """Whether a session with ``mask`` receives ``event`` (judged by its Privilege classes)."""
    if mask == "off":
        return False
    if mask == "on":
        return True
    privilege = next((v for k, v in event if k.lower() == "privilege"), None)
    if privilege is None:
        return True  # an event without classes passes every mask but "off"
    wanted = set(mask.split(","))
    return any(c.strip().lower() in wanted for c in privilege.split(","))
