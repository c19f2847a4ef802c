"""The read-only objects of the live model: channels, bridges, queues, conferences, parked calls.

Each is a frozen dataclass: the model replaces an object when it changes, so one
you hold (or one a change carries) never moves under you. (`Channel`, `Bridge`,
`Queue` and `QueueMember`, replaced on most events, keep their fields in a
`__dict__`: the model copies one in a fraction of what `dataclasses.replace`
costs.) `raw` is the last event that described the object, with every field
Asterisk sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from ..events import ChannelState, HangupCause
from ..message import Event

__all__ = [
    "Bridge",
    "CallerID",
    "Channel",
    "Conference",
    "ConferenceParticipant",
    "Disposition",
    "ParkedCall",
    "Queue",
    "QueueCaller",
    "QueueMember",
    "Transfer",
]

#: What `CallRecord.disposition` can be: the names of Asterisk's CDR dispositions.
Disposition = Literal["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    # a mappingproxy is unhashable before Python 3.12, so dataclasses refuse it as a plain default
    return _EMPTY


@dataclass(frozen=True, slots=True)
class CallerID:
    """A number and a name, `None` where Asterisk says `<unknown>` or sends nothing."""

    num: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        if self.name and self.num:
            return f'"{self.name}" <{self.num}>'
        return self.num or self.name or ""


@dataclass(frozen=True)
class Channel:
    """One channel as Asterisk last described it.

    `dialing` holds the uniqueids this channel is dialling now, `dialed_by` the
    uniqueid of the channel that dialled it (both from `DialBegin`/`DialEnd`);
    `variables` the `channelvars` Asterisk reports (`VarSet` and `ChanVariable`).
    """

    uniqueid: str
    linkedid: str
    name: str
    state: ChannelState | int
    caller: CallerID
    connected: CallerID
    context: str | None
    exten: str | None
    priority: int | None
    application: str | None
    app_data: str | None
    account_code: str | None
    bridge: str | None
    dialing: tuple[str, ...]
    dialed_by: str | None
    created_at: datetime
    answered_at: datetime | None
    variables: Mapping[str, str] = field(default_factory=_empty)
    on_hold: bool = False
    hangup_cause: HangupCause | int | None = None
    raw: Event | None = field(default=None, repr=False, compare=False)

    @property
    def is_local(self) -> bool:
        """A `Local/` channel (one half of the pair a Local channel is)."""
        return self.name[:6].lower() == "local/"


@dataclass(frozen=True)
class Bridge:
    """A bridge and the uniqueids of the channels in it, in the order they entered."""

    uniqueid: str
    type: str | None
    technology: str | None
    channels: tuple[str, ...]
    name: str | None = None
    creator: str | None = None
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer in a call (`BlindTransfer`, `AttendedTransfer`, or two calls joined).

    `kind` is `"blind"`, `"attended"` or `"join"` (a channel of another call
    entered this one's bridge and took its linkedid, as after the `Bridge` action).
    """

    kind: str
    at: datetime
    transferer: str | None
    transferee: str | None
    target: str | None
    result: str | None
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class QueueMember:
    """A queue member: `status` is Asterisk's device state number (1 not in use, 2 in use...)."""

    interface: str
    name: str | None
    state_interface: str | None
    membership: str | None
    penalty: int | None
    calls_taken: int
    last_call: int | None
    status: int | None
    paused: bool
    paused_reason: str | None
    in_call: bool
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class QueueCaller:
    """A caller waiting in a queue, `position` counted from 1."""

    uniqueid: str
    channel: str
    position: int
    caller: CallerID
    joined_at: datetime
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Queue:
    """A queue: its members by interface and its waiting callers in order."""

    name: str
    strategy: str | None = None
    members: Mapping[str, QueueMember] = field(default_factory=_empty)
    callers: tuple[QueueCaller, ...] = ()
    completed: int | None = None
    abandoned: int | None = None
    holdtime: int | None = None
    talktime: int | None = None
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ConferenceParticipant:
    """A channel in a ConfBridge conference."""

    uniqueid: str
    channel: str
    caller: CallerID
    admin: bool
    muted: bool
    joined_at: datetime
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Conference:
    """A ConfBridge conference and its participants by uniqueid."""

    name: str
    participants: Mapping[str, ConferenceParticipant] = field(default_factory=_empty)
    bridge: str | None = None
    locked: bool = False
    raw: Event | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ParkedCall:
    """A call waiting in a parking lot: the parked channel (parkee) and where it waits."""

    lot: str
    space: str
    uniqueid: str
    channel: str
    caller: CallerID
    parker: str | None
    timeout: int | None
    parked_at: datetime
    raw: Event | None = field(default=None, repr=False, compare=False)
