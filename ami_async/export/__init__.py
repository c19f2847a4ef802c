"""Event export to an existing broker, for consumers on other machines: Redis Streams.

`RedisStreamExporter` appends every event of a `Client` or a `Fleet` to a
stream; consumers read it with consumer groups (``XREADGROUP`` / ``XACK``) and
turn entries back into headers with `decode_entry`. Needs the ``redis``
package (``pip install 'ami_async[redis]'``), imported only when an exporter starts.
"""

from __future__ import annotations

from ._entry import StreamEntry, decode_entry, event_fields, gap_fields
from ._redis import EventSource, RedisStreamExporter

__all__ = [
    "EventSource",
    "RedisStreamExporter",
    "StreamEntry",
    "decode_entry",
    "event_fields",
    "gap_fields",
]
