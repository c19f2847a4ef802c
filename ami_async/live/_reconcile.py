"""Bringing the model to what a snapshot says, as changes (`reason="snapshot"` or `"resync"`).

What the snapshot lacks is gone (a channel that ended while the link was down is
removed and its call ends); what only the snapshot has is added; what both have
is updated where it differs. Times the snapshot cannot tell (when a channel was
answered) keep what the model knew, or are taken as the time of the snapshot.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from ..events import ChannelState
from ..message import Event
from ._changes import (
    BridgeAdded,
    CallParked,
    CallUnparked,
    ConferenceJoined,
    QueueCallerJoined,
    QueueMemberRemoved,
)
from ._features import member_from, parked_from, participant_from, queue_caller_from
from ._fields import number
from ._model import Model
from ._objects import Bridge, Conference, Queue
from ._snapshot import Snapshot

__all__ = ["reconcile"]

_replace = dataclasses.replace
#: Fields a snapshot can tell; the others (dials, answer time, hold) stay as the model had them.
_SNAPSHOT_FIELDS = (
    "linkedid",
    "name",
    "state",
    "caller",
    "connected",
    "context",
    "exten",
    "priority",
    "application",
    "app_data",
    "account_code",
    "bridge",
)


def reconcile(model: Model, snap: Snapshot, reason: str) -> None:
    """Apply `snap` to `model`, emitting the differences with `reason`."""
    model._reason = reason
    model._event = None
    now = model.now()
    try:
        if snap.channels is not None:
            _channels(model, snap.channels, now)
        if snap.bridges is not None:
            _bridges(model, snap.bridges)
        elif snap.channels is not None:
            _bridges_of_channels(model)
        if snap.queue_params is not None:
            _queues(model, snap, now)
        if snap.rooms is not None:
            _conferences(model, snap.rooms, now)
        if snap.parked is not None:
            _parked(model, snap.parked, now)
    finally:
        model._reason = "event"


def _channels(model: Model, items: list[Event], now: datetime) -> None:
    fresh = {}
    for item in items:
        found = model.channel_from(item, "", model.since(item.get("Duration"), now))
        if found is not None:
            fresh[found.uniqueid] = found
    for uniqueid, gone in list(model.channels.items()):
        if uniqueid not in fresh:
            model.remove_channel(gone, now)
    for uniqueid, new in fresh.items():
        old = model.channels.get(uniqueid)
        if old is None:
            if new.answered_at is not None:
                new = _replace(new, answered_at=now)
            model.add_channel(new)
            continue
        changes = {
            f: getattr(new, f) for f in _SNAPSHOT_FIELDS if getattr(new, f) != getattr(old, f)
        }
        if new.variables and new.variables != old.variables:
            changes["variables"] = new.variables
        if new.state == ChannelState.UP and old.answered_at is None:
            changes["answered_at"] = now
        if changes:
            model.update_channel(old, _replace(old, raw=new.raw, **changes))


def _bridges(model: Model, items: list[tuple[Event, list[Event] | None]]) -> None:
    fresh: dict[str, Bridge] = {}
    for item, members in items:
        bridge = model.bridge_from(item)
        if bridge is None:
            continue
        if members is not None:
            channels = tuple(m.get("Uniqueid") or "" for m in members if m.get("Uniqueid"))
        else:  # no BridgeInfo: the channels that say they are in it
            channels = tuple(u for u, c in model.channels.items() if c.bridge == bridge.uniqueid)
        fresh[bridge.uniqueid] = _replace(bridge, channels=channels)
    for uniqueid in list(model.bridges):
        if uniqueid not in fresh:
            model.remove_bridge(uniqueid)
    for uniqueid, new in fresh.items():
        old = model.bridges.get(uniqueid)
        if old is None:
            model.bridges[uniqueid] = _replace(new, channels=())
            old = model.bridges[uniqueid]
            model.emit(BridgeAdded(old, reason=model._reason, event=model._event))
        model.set_bridge_channels(old, new.channels, new.raw or Event())


def _bridges_of_channels(model: Model) -> None:
    """No `BridgeList` (Asterisk 12's, or not allowed): the bridges channels say they are in."""
    members: dict[str, list[str]] = {}
    for uniqueid, channel in model.channels.items():
        if channel.bridge:
            members.setdefault(channel.bridge, []).append(uniqueid)
    for uniqueid in list(model.bridges):
        if uniqueid not in members:
            model.remove_bridge(uniqueid)
    for uniqueid, channels in members.items():
        old = model.bridges.get(uniqueid)
        if old is None:
            old = model.bridges[uniqueid] = Bridge(uniqueid, None, None, ())
            model.emit(BridgeAdded(old, reason=model._reason, event=model._event))
        model.set_bridge_channels(old, tuple(channels), old.raw or Event())


def _queues(model: Model, snap: Snapshot, now: datetime) -> None:
    seen: set[str] = set()
    for params in snap.queue_params or []:
        name = params.get("Queue")
        if not name:
            continue
        seen.add(name)
        old = model.queues.get(name) or Queue(name)
        model.queues[name] = _replace(
            old,
            strategy=params.get("Strategy"),
            completed=number(params.get("Completed")),
            abandoned=number(params.get("Abandoned")),
            holdtime=number(params.get("Holdtime")),
            talktime=number(params.get("TalkTime")),
            raw=params,
        )
    members: dict[str, dict[str, Event]] = {}
    for item in snap.queue_members or []:
        members.setdefault(item.get("Queue") or "", {})[
            item.get("Location") or item.get("Interface") or ""
        ] = item
    entries: dict[str, list[Event]] = {}
    for item in snap.queue_entries or []:
        entries.setdefault(item.get("Queue") or "", []).append(item)
    for name in list(model.queues):
        queue = model.queues[name]
        if name not in seen:
            for interface in list(queue.members):
                _remove_member(model, name, interface)
            for caller in queue.callers:
                model._drop_caller(model.queues[name], caller.uniqueid)
            model.queues.pop(name, None)
            continue
        wanted = members.get(name, {})
        for interface in list(queue.members):
            if interface not in wanted:
                _remove_member(model, name, interface)
        for item in wanted.values():
            member = member_from(item)
            if member is not None:
                model.set_member(model.queues[name], member)
        waiting = {e.get("Uniqueid"): e for e in entries.get(name, [])}
        for caller in model.queues[name].callers:
            if caller.uniqueid not in waiting:
                model._drop_caller(model.queues[name], caller.uniqueid)
        known = {c.uniqueid: c for c in model.queues[name].callers}
        callers = []
        for uniqueid, item in waiting.items():
            found = queue_caller_from(item, now)
            if found is None:
                continue
            if uniqueid in known:
                found = _replace(found, joined_at=known[uniqueid].joined_at)
            callers.append(found)
        callers.sort(key=lambda c: c.position)
        queue = model.queues[name] = _replace(model.queues[name], callers=tuple(callers))
        for caller in callers:
            if caller.uniqueid not in known:
                model.emit(
                    QueueCallerJoined(queue, caller, reason=model._reason, event=model._event)
                )


def _remove_member(model: Model, queue: str, interface: str) -> None:
    q = model.queues[queue]
    members = dict(q.members)
    member = members.pop(interface)
    q = model.queues[queue] = _replace(q, members=members)
    model.emit(QueueMemberRemoved(q, member, reason=model._reason, event=model._event))


def _conferences(model: Model, rooms: list[tuple[Event, list[Event]]], now: datetime) -> None:
    fresh = {room.get("Conference") or "": (room, members) for room, members in rooms}
    for name, conference in list(model.conferences.items()):
        wanted = fresh.get(name)
        ids = {m.get("Uniqueid") for m in wanted[1]} if wanted else set()
        for uniqueid in list(conference.participants):
            if uniqueid not in ids:
                model._drop_participant(model.conferences.get(name, conference), uniqueid)
    for name, (room, members) in fresh.items():
        conference = model.conferences.get(name) or Conference(name, raw=room)
        conference = _replace(conference, locked=(room.get("Locked") or "").lower() == "yes")
        model.conferences[name] = conference
        for item in members:
            participant = participant_from(item, now)
            if participant is None or participant.uniqueid in conference.participants:
                continue
            participants = dict(conference.participants)
            participants[participant.uniqueid] = participant
            conference = model.conferences[name] = _replace(conference, participants=participants)
            model.emit(
                ConferenceJoined(conference, participant, reason=model._reason, event=model._event)
            )
        if not conference.participants:
            model.conferences.pop(name, None)


def _parked(model: Model, items: list[Event], now: datetime) -> None:
    fresh = {}
    for item in items:
        parked = parked_from(item, now)
        if parked is not None:
            fresh[(parked.lot, parked.space)] = parked
    for key, parked in list(model.parked.items()):
        if key not in fresh or fresh[key].uniqueid != parked.uniqueid:
            del model.parked[key]
            model.emit(CallUnparked(parked, "resync", reason=model._reason, event=model._event))
    for key, parked in fresh.items():
        if key not in model.parked:
            model.parked[key] = parked
            model.emit(CallParked(parked, reason=model._reason, event=model._event))
