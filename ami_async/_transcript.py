"""Reading ``.ami`` transcripts: the recorded-capture format of ``shared/fixtures``.

A transcript is a few ``# `` header lines, then records: ``<DIR> <SECONDS> <LENGTH>\\n``,
exactly LENGTH raw bytes, and one ``\\n``. DIR is ``>>>`` (sent by the client),
``<<<`` (received from the server) or ``###`` (a recorder's note).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["looks_like_transcript", "read_transcript"]

_RECORD: Final = re.compile(rb"(>>>|<<<|###) (\d+\.\d{3}) (\d+)")


def read_transcript(data: bytes) -> list[tuple[str, float, bytes]]:
    """The records of a transcript: ``(">>>" | "<<<" | "###", seconds, payload)``.

    Raises ``ValueError`` naming the byte offset of anything malformed.
    """
    records: list[tuple[str, float, bytes]] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ValueError(f"byte {pos}: a record header without its line end")
        line = data[pos:nl]
        if not records and line.startswith(b"# "):
            pos = nl + 1
            continue
        match = _RECORD.fullmatch(line)
        if match is None:
            raise ValueError(f"byte {pos}: not a record header: {line[:40]!r}")
        start = nl + 1
        end = start + int(match.group(3))
        if end > len(data):
            raise ValueError(f"byte {pos}: the record runs past the end of the file")
        if data[end : end + 1] not in (b"\n", b""):
            raise ValueError(f"byte {end}: the record is not followed by its separator")
        records.append((match.group(1).decode(), float(match.group(2)), data[start:end]))
        pos = end + 1
    return records


def looks_like_transcript(data: bytes) -> bool:
    """True if ``data`` starts like a transcript (rather than a raw ``.bin`` stream)."""
    return data.startswith(b"# AMI transcript") or _RECORD.match(data) is not None
