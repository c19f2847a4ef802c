"""The fields of one stream entry: an event (or a gap) as Redis stores it.

Every value is UTF-8 text (bytes that were not UTF-8 on the wire become
``\\xNN``). An event is ``server``, ``event``, ``headers`` (a JSON array of
``[key, value]`` pairs in wire order, repeated keys kept) and ``seq``; a gap
(events lost while Redis was unreachable and the buffer was full) is ``gap``
(how many) and ``seq``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from ..message import Event

__all__ = ["StreamEntry", "decode_entry", "event_fields", "gap_fields"]


def _utf8(text: str) -> str:
    """``text`` encodable as UTF-8: bytes that were not UTF-8 (surrogate escapes) as ``\\xNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


#: One encoder for every entry (``json.dumps`` with options builds one per call).
_encode_headers = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def event_fields(event: Event, seq: int) -> dict[str, str]:
    """The entry for ``event``, the ``seq``-th entry of this exporter."""
    headers = _encode_headers(event.headers)  # the pairs are tuples: JSON arrays
    server = event.server
    name = event.name
    if not (headers.isascii() and server.isascii() and name.isascii()):
        # Bytes that were not UTF-8 become ``\xNN`` text before the JSON encoding, which
        # then escapes the backslash: the entry stays valid JSON and valid UTF-8.
        headers = _encode_headers([(_utf8(k), _utf8(v)) for k, v in event.headers])
        server, name = _utf8(server), _utf8(name)
    return {"server": server, "event": name, "headers": headers, "seq": str(seq)}


def gap_fields(count: int, seq: int) -> dict[str, str]:
    """The entry that marks ``count`` events lost at this point of the stream."""
    return {"gap": str(count), "seq": str(seq)}


@dataclass(frozen=True)
class StreamEntry:
    """One entry read back from the stream (`decode_entry`)."""

    #: The exporting client's `name` (``Event.server``); ``""`` for a gap.
    server: str
    #: The event's name; ``""`` for a gap.
    event: str
    #: ``(key, value)`` pairs in wire order.
    headers: tuple[tuple[str, str], ...]
    #: The exporter's counter: strictly increasing within one exporter run, so a
    #: consumer can drop the duplicates a Redis failure in mid-batch may cause.
    seq: int
    #: Events lost here (0 for an event).
    gap: int = 0

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of header ``key`` (any case), or ``default``."""
        low = key.lower()
        return next((v for k, v in self.headers if k.lower() == low), default)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def decode_entry(fields: Mapping[str, str] | Mapping[bytes, bytes]) -> StreamEntry:
    """A `StreamEntry` from the fields ``XREADGROUP``/``XRANGE`` returned (bytes or text)."""
    data = {_text(k): _text(v) for k, v in fields.items()}
    seq = int(data.get("seq", "0"))
    if "gap" in data:
        return StreamEntry("", "", (), seq, int(data["gap"]))
    pairs = tuple((str(k), str(v)) for k, v in json.loads(data.get("headers", "[]")))
    return StreamEntry(data.get("server", ""), data.get("event", ""), pairs, seq)
