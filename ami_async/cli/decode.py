"""`ami-async decode`: a recorded capture (.bin or .ami) printed as messages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._transcript import looks_like_transcript, read_transcript
from ..errors import ProtocolError
from ..message import Message
from ..protocol import Parser
from .common import EXIT_ACTION, EXIT_OK, PROG, UsageError, add_verbose, err, out, subparser
from .connection import log
from .output import dumps, message_json, message_lines, printable, valid_text

# -- decode ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """One item of a decoded capture: a banner, a message or a recorder's note."""

    kind: Literal["banner", "message", "note"]
    source: Literal["server", "client"] | None
    time: float | None
    message: Message | None = None
    text: str = ""


def decode_capture(data: bytes, fmt: Literal["auto", "ami", "bin"] = "auto") -> Iterator[Decoded]:
    """The messages of a capture, in order (raises ValueError or ProtocolError)."""
    if fmt == "auto":
        fmt = "ami" if looks_like_transcript(data) else "bin"
    records = read_transcript(data) if fmt == "ami" else [("<<<", -1.0, data)]
    server = Parser()
    client = Parser(expect_banner=False)
    for direction, seconds, payload in records:
        stamp = seconds if seconds >= 0 else None
        if direction == "###":
            text = payload.decode("utf-8", "replace").strip()
            yield Decoded("note", None, stamp, text=text)
            continue
        source: Literal["server", "client"] = "server" if direction == "<<<" else "client"
        parser = server if source == "server" else client
        had_banner = parser.banner is not None
        messages = parser.feed(payload)
        if not had_banner and parser.banner is not None:
            yield Decoded("banner", source, stamp, text=parser.banner)
        for msg in messages:
            yield Decoded("message", source, stamp, message=msg)
    for source, parser in (("server", server), ("client", client)):
        if parser.buffered:
            yield Decoded(
                "note",
                None,
                None,
                text=f"{parser.buffered} byte(s) from the {source} at the end are not a "
                "complete message",
            )


def _decoded_json(item: Decoded) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if item.source is not None:
        obj["from"] = item.source
    if item.time is not None:
        obj["time"] = item.time
    if item.message is not None:
        obj.update(message_json(item.message, redact=True))
    else:
        obj.update({"type": item.kind, "text": valid_text(item.text)})
    return obj


def _decoded_lines(item: Decoded) -> list[str]:
    arrow = {"server": "<<<", "client": ">>>", None: "###"}[item.source]
    stamp = f" {item.time:.3f}" if item.time is not None else ""
    if item.kind == "note":
        return [f"###{stamp} {printable(item.text)}", ""]
    if item.kind == "banner":
        return [f"{arrow}{stamp} banner: {printable(item.text)}", ""]
    assert item.message is not None
    return [f"{arrow}{stamp}", *message_lines(item.message, redact=True), ""]


def _run_decode(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}", parser) from None
    try:
        # Read whole before printing: a file that is not a capture prints nothing.
        items = list(decode_capture(data, args.format))
    except (ValueError, ProtocolError) as exc:
        err(f"{args.file}: not an AMI capture: {exc}")
        return EXIT_ACTION
    count = sum(1 for item in items if item.message is not None and item.message.headers)
    if not count:
        err(f"{args.file}: not an AMI capture: no complete AMI message in it")
        return EXIT_ACTION
    for item in items:
        if args.json:
            out(dumps(_decoded_json(item)))
        else:
            for line in _decoded_lines(item):
                out(line)
    log.info("%s: %d message(s)", args.file, count)
    return EXIT_OK


def add_decode(subparsers: Any) -> None:
    """The `decode` subcommand."""
    decode = subparser(
        subparsers,
        "decode",
        "print a recorded capture (.bin or .ami) as messages",
        "Parse a recorded AMI capture and print its messages; no connection needed.\n"
        "A .bin file is the raw byte stream from the server; a .ami file is a\n"
        "transcript of both directions, timed (format below). Secret values (and the\n"
        "Key of an MD5 login) are shown as ********.",
        "transcript format (.ami): a first line '# AMI transcript v1' (more '# ' lines\n"
        "may follow), then records: a line 'DIR SECONDS LENGTH', exactly LENGTH raw\n"
        "bytes and a newline. DIR is <<< (from the server), >>> (from the client) or\n"
        "### (a note); SECONDS has three decimals, e.g. '<<< 0.012 27'.\n\n"
        f"examples:\n  {PROG} decode capture.ami\n  {PROG} decode --json capture.bin | jq .name",
        "exit status: 0 ok, 1 the file is not an AMI capture, 2 usage (or unreadable file),\n"
        "130 interrupted (Ctrl-C), 141 output pipe closed (e.g. | head)",
    )
    decode.add_argument("file", metavar="FILE", help="the capture ('-' reads stdin)")
    decode.add_argument(
        "--format",
        choices=("auto", "ami", "bin"),
        default="auto",
        help="the file's format (default: auto, from its first bytes)",
    )
    decode.add_argument("--json", action="store_true", help="one JSON object per message")
    add_verbose(decode, "verbose")
    decode.set_defaults(handler=_run_decode)
