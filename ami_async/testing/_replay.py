"""Recorded transcripts (`.ami`, `.bin`) that `FakeAsterisk.replay` serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .._transcript import read_transcript
from ..protocol import Parser
from ._wire import _ACTION_ID_LINE, _header

# -- transcripts ------------------------------------------------------------------------


@dataclass
class _Step:
    """Client actions (name, recorded ActionID) and what the server sent after them."""

    actions: list[tuple[str, str]]
    reply: list[bytes] = field(default_factory=list)
    close: bool = False


@dataclass
class _Transcript:
    banner: bytes
    steps: list[_Step]
    close_after_banner: bool = False
    rewrite_action_ids: bool = True


def _transcript_from_ami(data: bytes, rewrite_action_ids: bool) -> _Transcript:
    banner: list[bytes] = []
    steps: list[_Step] = []
    close_after_banner = False
    parser = Parser(expect_banner=False)
    for direction, _, payload in read_transcript(data):
        if direction == ">>>":
            frames = parser.feed(payload)
            # A write that completed no frame (bare blank lines, half an action) adds
            # no step: what the server sent next belongs to the current step.
            if frames:
                steps.append(
                    _Step([(_header(f, "Action"), _header(f, "ActionID")) for f in frames])
                )
        elif direction == "<<<":
            (steps[-1].reply if steps else banner).append(payload)
        elif b"EOF: server closed the connection" in payload:
            if steps:
                steps[-1].close = True
            else:
                close_after_banner = True
    return _Transcript(b"".join(banner), steps, close_after_banner, rewrite_action_ids)


def _transcript_from_bin(data: bytes) -> _Transcript:
    nl = data.find(b"\n")
    first = data[: nl + 1] if nl >= 0 else b""
    if not first or b":" in first:  # no banner line: everything is the answer
        first = b""
    rest = data[len(first) :]
    return _Transcript(first, [_Step([("*", "")], [rest])], rewrite_action_ids=False)


class _ReplayState:
    """One connection's position in a transcript."""

    def __init__(self, transcript: _Transcript) -> None:
        self.transcript = transcript
        self.step = 0
        self.pos = 0
        self.ids: dict[bytes, bytes | None] = {}  # recorded ActionID -> the client's

    def expected(self) -> str | None:
        steps = self.transcript.steps
        return steps[self.step].actions[self.pos][0] if self.step < len(steps) else None

    def rewrite(self, data: bytes) -> bytes:
        if not self.transcript.rewrite_action_ids or not self.ids:
            return data
        ids = self.ids

        def sub(match: re.Match[bytes]) -> bytes:
            if match.group(1) not in ids:
                return match.group(0)
            new = ids[match.group(1)]
            return b"" if new is None else b"ActionID: " + new + b"\r\n"

        return _ACTION_ID_LINE.sub(sub, data)
