"""Taking the snapshot the model starts from (and resyncs to): the list actions, in order.

Whatever the server does not have (no `app_confbridge`, no parking, an older
Asterisk) or the user may not run is skipped and named in `missing`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ActionError, ActionTimeoutError
from ..message import Event

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Snapshot", "take_snapshot"]

logger = logging.getLogger("ami_async.live")

#: `Response: Error` texts that mean "nothing there", not "not available".
_EMPTY_ANSWERS = ("no active conferences", "no conference by that name")


@dataclass
class Snapshot:
    """The list items of each snapshot action (`None`: the action was not available)."""

    channels: list[Event] | None = None
    bridges: list[tuple[Event, list[Event] | None]] | None = None
    queue_params: list[Event] | None = None
    queue_members: list[Event] | None = None
    queue_entries: list[Event] | None = None
    rooms: list[tuple[Event, list[Event]]] | None = None
    parked: list[Event] | None = None
    missing: set[str] = field(default_factory=set)


async def _items(
    client: Client, snap: Snapshot, action: str, timeout: float, **headers: Any
) -> list[Event] | None:
    """The items of a list action; `None` (and `action` in `missing`) if unavailable."""
    try:
        result = await client.collect(action, timeout=timeout, **headers)
    except ActionError as exc:
        text = (exc.response.message or "").lower() if exc.response is not None else ""
        if any(t in text for t in _EMPTY_ANSWERS):
            return []
        logger.info("live model: %s is not available (%s); skipped", action, text or exc)
        snap.missing.add(action)
        return None
    except ActionTimeoutError:
        logger.warning("live model: %s timed out; skipped", action)
        snap.missing.add(action)
        return None
    return list(result.items)


async def take_snapshot(client: Client, timeout: float) -> Snapshot:
    """Ask for every list the model starts from; `ConnectionLostError` if the link goes."""
    snap = Snapshot()
    snap.channels = await _items(client, snap, "CoreShowChannels", timeout)
    bridges = await _items(client, snap, "BridgeList", timeout)
    if bridges is not None:
        snap.bridges = []
        for item in bridges:
            uniqueid = item.get("BridgeUniqueid")
            if not uniqueid:
                continue
            members = await _items(client, snap, "BridgeInfo", timeout, BridgeUniqueid=uniqueid)
            snap.bridges.append((item, members))
        snap.missing.discard("BridgeInfo")  # a bridge gone in between is not a lack
    queue = await _items(client, snap, "QueueStatus", timeout)
    if queue is not None:
        snap.queue_params = [e for e in queue if e.name == "QueueParams"]
        snap.queue_members = [e for e in queue if e.name == "QueueMember"]
        snap.queue_entries = [e for e in queue if e.name == "QueueEntry"]
    rooms = await _items(client, snap, "ConfbridgeListRooms", timeout)
    if rooms is not None:
        snap.rooms = []
        for room in rooms:
            name = room.get("Conference")
            if not name:
                continue
            members = await _items(client, snap, "ConfbridgeList", timeout, Conference=name)
            snap.rooms.append((room, members or []))
        snap.missing.discard("ConfbridgeList")
    snap.parked = await _items(client, snap, "ParkedCalls", timeout)
    return snap
