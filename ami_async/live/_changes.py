"""What `live.changes()` yields: one typed change per thing that changed in the model.

Every change has `reason` (`"event"`: an event said so; `"snapshot"`: the
model's first snapshot; `"resync"`: the snapshot taken after a reconnect found
it; `"disconnect"`: the link was lost, for `Unsynced`) and `event` (the event
that caused it, `None` for snapshots and link changes).

The model builds changes only while a `live.changes()` stream is open, with
`fields.make` (a frozen dataclass's `__init__` sets each field through
`object.__setattr__`, several times the cost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..message import Event
from ._calls import Call, CallRecord
from ._objects import (
    Bridge,
    Channel,
    Conference,
    ConferenceParticipant,
    ParkedCall,
    Queue,
    QueueCaller,
    QueueMember,
    Transfer,
)

__all__ = [
    "BridgeAdded",
    "BridgeRemoved",
    "BridgeUpdated",
    "CallAnswered",
    "CallEnded",
    "CallParked",
    "CallStarted",
    "CallTransferred",
    "CallUnparked",
    "Change",
    "ChannelAdded",
    "ChannelRemoved",
    "ChannelUpdated",
    "ConferenceJoined",
    "ConferenceLeft",
    "QueueCallerJoined",
    "QueueCallerLeft",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberUpdated",
    "Synced",
    "Unsynced",
]


@dataclass(frozen=True)
class Change:
    """Base of every change."""

    reason: str = field(default="event", kw_only=True)
    event: Event | None = field(default=None, kw_only=True, repr=False, compare=False)


@dataclass(frozen=True)
class ChannelAdded(Change):
    """A channel appeared (`Newchannel`, or found by a snapshot)."""

    channel: Channel


@dataclass(frozen=True)
class ChannelUpdated(Change):
    """A channel changed: `channel` is the new state, `previous` the one it replaces."""

    channel: Channel
    previous: Channel


@dataclass(frozen=True)
class ChannelRemoved(Change):
    """A channel is gone (`Hangup`; `reason="resync"`: it ended while the link was down)."""

    channel: Channel


@dataclass(frozen=True)
class BridgeAdded(Change):
    """A bridge was created."""

    bridge: Bridge


@dataclass(frozen=True)
class BridgeUpdated(Change):
    """A channel entered or left a bridge."""

    bridge: Bridge


@dataclass(frozen=True)
class BridgeRemoved(Change):
    """A bridge was destroyed."""

    bridge: Bridge


@dataclass(frozen=True)
class CallStarted(Change):
    """A call's first channel appeared."""

    call: Call


@dataclass(frozen=True)
class CallAnswered(Change):
    """A channel of the call was answered for the first time."""

    call: Call


@dataclass(frozen=True)
class CallTransferred(Change):
    """A transfer (or a join of two calls) happened in the call."""

    call: Call
    transfer: Transfer


@dataclass(frozen=True)
class CallEnded(Change):
    """The call's last channel is gone; `record` is final."""

    call: Call
    record: CallRecord


@dataclass(frozen=True)
class QueueMemberAdded(Change):
    """A member was added to a queue."""

    queue: Queue
    member: QueueMember


@dataclass(frozen=True)
class QueueMemberUpdated(Change):
    """A member's status, pause or call count changed."""

    queue: Queue
    member: QueueMember


@dataclass(frozen=True)
class QueueMemberRemoved(Change):
    """A member left a queue."""

    queue: Queue
    member: QueueMember


@dataclass(frozen=True)
class QueueCallerJoined(Change):
    """A caller started waiting in a queue."""

    queue: Queue
    caller: QueueCaller


@dataclass(frozen=True)
class QueueCallerLeft(Change):
    """A caller stopped waiting (answered, abandoned, or timed out)."""

    queue: Queue
    caller: QueueCaller


@dataclass(frozen=True)
class ConferenceJoined(Change):
    """A channel joined a conference."""

    conference: Conference
    participant: ConferenceParticipant


@dataclass(frozen=True)
class ConferenceLeft(Change):
    """A channel left a conference (the conference may now be gone from `live.conferences`)."""

    conference: Conference
    participant: ConferenceParticipant


@dataclass(frozen=True)
class CallParked(Change):
    """A call was parked."""

    parked: ParkedCall


@dataclass(frozen=True)
class CallUnparked(Change):
    """A parked call left its space: `how` is `"retrieved"`, `"timeout"` or `"giveup"`."""

    parked: ParkedCall
    how: str


@dataclass(frozen=True)
class Synced(Change):
    """The model is current again: its snapshot (first or after a reconnect) is applied."""


@dataclass(frozen=True)
class Unsynced(Change):
    """The model is no longer current: the link to Asterisk was lost (`reason="disconnect"`).

    Published once per loss, only after a `Synced` (they alternate); `cause`
    says why, in words (the client's error text), or is `None`. With
    `resync=True` a `Synced(reason="resync")` follows once the model is current
    again; with `resync=False` the model stays stale from here on.
    """

    cause: str | None = None
