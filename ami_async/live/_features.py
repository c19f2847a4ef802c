"""How queue, ConfBridge and parking events change the model (a mixin of `Model`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime

from ..message import Event
from ._changes import (
    CallParked,
    CallUnparked,
    Change,
    ConferenceJoined,
    ConferenceLeft,
    QueueCallerJoined,
    QueueCallerLeft,
    QueueMemberAdded,
    QueueMemberRemoved,
    QueueMemberUpdated,
)
from ._fields import caller_id, evolve, number, text_fields, yes
from ._objects import (
    Conference,
    ConferenceParticipant,
    ParkedCall,
    Queue,
    QueueCaller,
    QueueMember,
)

__all__ = ["FeaturesMixin", "member_from", "parked_from", "participant_from", "queue_caller_from"]

_replace = dataclasses.replace


def member_from(ev: Event, fields: Mapping[str, str] | None = None) -> QueueMember | None:
    """A `QueueMember` from `QueueMember` (list item) or `QueueMemberStatus`/`Added` events.

    `fields`: the event's fields already read (`text_fields`), else `ev.get` is used.
    """
    g = ev.get if fields is None else fields.get
    interface = g("Interface") or g("Location")
    if not interface:
        return None
    return QueueMember(
        interface=interface,
        name=g("MemberName") or g("Name"),
        state_interface=g("StateInterface"),
        membership=g("Membership"),
        penalty=number(g("Penalty")),
        calls_taken=number(g("CallsTaken")) or 0,
        last_call=number(g("LastCall")),
        status=number(g("Status")),
        paused=yes(g("Paused")),
        paused_reason=g("PausedReason") or None,
        in_call=yes(g("InCall")),
        raw=ev,
    )


def queue_caller_from(ev: Event, at: datetime) -> QueueCaller | None:
    """A `QueueCaller` from `QueueCallerJoin` or a `QueueEntry` list item."""
    g = ev.get
    uniqueid = g("Uniqueid")
    if not uniqueid:
        return None
    return QueueCaller(
        uniqueid=uniqueid,
        channel=g("Channel") or "",
        position=number(g("Position")) or 0,
        caller=caller_id(g("CallerIDNum"), g("CallerIDName")),
        joined_at=at,
        raw=ev,
    )


def participant_from(ev: Event, at: datetime) -> ConferenceParticipant | None:
    """A participant from `ConfbridgeJoin` or a `ConfbridgeList` list item."""
    g = ev.get
    uniqueid = g("Uniqueid")
    if not uniqueid:
        return None
    return ConferenceParticipant(
        uniqueid=uniqueid,
        channel=g("Channel") or "",
        caller=caller_id(g("CallerIDNum"), g("CallerIDName")),
        admin=yes(g("Admin")),
        muted=yes(g("Muted")),
        joined_at=at,
        raw=ev,
    )


def parked_from(ev: Event, at: datetime) -> ParkedCall | None:
    """A `ParkedCall` from the `ParkedCall` event or list item (its `Parkee*` fields)."""
    g = ev.get
    uniqueid = g("ParkeeUniqueid")
    lot = g("Parkinglot") or "default"
    space = g("ParkingSpace")
    if not uniqueid or not space:
        return None
    return ParkedCall(
        lot=lot,
        space=space,
        uniqueid=uniqueid,
        channel=g("ParkeeChannel") or "",
        caller=caller_id(g("ParkeeCallerIDNum"), g("ParkeeCallerIDName")),
        parker=g("ParkerDialString") or None,
        timeout=number(g("ParkingTimeout")),
        parked_at=at,
        raw=ev,
    )


class FeaturesMixin:
    """Queues, conferences and parked calls; `Model` provides `now` and `emit`."""

    def __init__(self) -> None:
        self._reason = "event"  # what the changes being made are from
        self._fast = True  # read events from their text (`Model`'s `fast`)
        self.emitting = True
        self._event: Event | None = None
        self.queues: dict[str, Queue] = {}
        self.conferences: dict[str, Conference] = {}
        self.parked: dict[tuple[str, str], ParkedCall] = {}

    # provided by Model
    def now(self, ev: Event | None = None) -> datetime:
        raise NotImplementedError

    def emit(self, change: Change) -> None:
        raise NotImplementedError

    def feature_appliers(self) -> dict[str, Callable[[Event], object]]:
        return {
            "queuecallerjoin": self._caller_join,
            "queuecallerleave": self._caller_leave,
            "queuememberstatus": self._member_status,
            "queuememberadded": self._member_added,
            "queuememberremoved": self._member_removed,
            "queuememberpause": self._member_status,
            "queuememberpaused": self._member_status,
            "queuememberpenalty": self._member_status,
            "queuememberringinuse": self._member_status,
            "confbridgestart": self._conf_start,
            "confbridgejoin": self._conf_join,
            "confbridgeleave": self._conf_leave,
            "confbridgeend": self._conf_end,
            "confbridgemute": self._conf_mute,
            "confbridgeunmute": self._conf_mute,
            "confbridgelock": self._conf_lock,
            "confbridgeunlock": self._conf_lock,
            "parkedcall": self._parked,
            "unparkedcall": self._unparked,
            "parkedcalltimeout": self._unparked,
            "parkedcallgiveup": self._unparked,
            "parkedcallswap": self._parked,
        }

    # -- queues --------------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = Queue(name)
        return queue

    def _caller_join(self, ev: Event) -> None:
        name = ev.get("Queue")
        caller = queue_caller_from(ev, self.now(ev))
        if not name or caller is None:
            return
        queue = self.queue(name)
        callers = [c for c in queue.callers if c.uniqueid != caller.uniqueid]
        callers.append(caller)
        callers.sort(key=lambda c: c.position)
        queue = self.queues[name] = _replace(queue, callers=tuple(callers))
        self.emit(QueueCallerJoined(queue, caller, reason=self._reason, event=self._event))

    def _caller_leave(self, ev: Event) -> None:
        name = ev.get("Queue") or ""
        uniqueid = ev.get("Uniqueid")
        queue = self.queues.get(name)
        if queue is not None and uniqueid:
            self._drop_caller(queue, uniqueid)

    def _drop_caller(self, queue: Queue, uniqueid: str) -> None:
        gone = [c for c in queue.callers if c.uniqueid == uniqueid]
        if not gone:
            return
        # Asterisk moves everyone behind the caller up one place.
        callers = tuple(
            _replace(c, position=i + 1)
            for i, c in enumerate(c for c in queue.callers if c.uniqueid != uniqueid)
        )
        queue = self.queues[queue.name] = _replace(queue, callers=callers)
        self.emit(QueueCallerLeft(queue, gone[0], reason=self._reason, event=self._event))

    def set_member(self, queue: Queue, member: QueueMember) -> None:
        old = queue.members.get(member.interface)
        if old == member:
            return
        members = dict(queue.members)
        members[member.interface] = member
        queue = self.queues[queue.name] = evolve(queue, {"members": members})
        if self.emitting:
            kind = QueueMemberAdded if old is None else QueueMemberUpdated
            self.emit(kind(queue, member, reason=self._reason, event=self._event))

    def _member_status(self, ev: Event) -> None:
        text = ev._text
        fields = text_fields(text) if text is not None and self._fast else None
        g = ev.get if fields is None else fields.get
        name = g("Queue")
        member = member_from(ev, fields)
        if not name or member is None:
            return
        queue = self.queue(name)
        old = queue.members.get(member.interface)
        if old is not None:
            # Pause/penalty events carry only some fields: keep the others.
            member = evolve(
                member,
                {
                    "status": old.status if member.status is None else member.status,
                    "calls_taken": member.calls_taken or old.calls_taken,
                    "penalty": old.penalty if member.penalty is None else member.penalty,
                    "in_call": member.in_call if g("InCall") is not None else old.in_call,
                },
            )
        self.set_member(queue, member)

    def _member_added(self, ev: Event) -> None:
        self._member_status(ev)

    def _member_removed(self, ev: Event) -> None:
        queue = self.queues.get(ev.get("Queue") or "")
        interface = ev.get("Interface") or ev.get("Location") or ""
        if queue is None or interface not in queue.members:
            return
        members = dict(queue.members)
        member = members.pop(interface)
        queue = self.queues[queue.name] = _replace(queue, members=members)
        self.emit(QueueMemberRemoved(queue, member, reason=self._reason, event=self._event))

    # -- conferences ----------------------------------------------------------------------------

    def _conference(self, ev: Event) -> Conference | None:
        name = ev.get("Conference")
        if not name:
            return None
        conference = self.conferences.get(name)
        if conference is None:
            conference = Conference(name, bridge=ev.get("BridgeUniqueid"), raw=ev)
            self.conferences[name] = conference
        return conference

    def _conf_start(self, ev: Event) -> None:
        self._conference(ev)

    def _conf_join(self, ev: Event) -> None:
        conference = self._conference(ev)
        participant = participant_from(ev, self.now(ev))
        if conference is None or participant is None:
            return
        participants = dict(conference.participants)
        participants[participant.uniqueid] = participant
        conference = self.conferences[conference.name] = _replace(
            conference, participants=participants
        )
        self.emit(ConferenceJoined(conference, participant, reason=self._reason, event=self._event))

    def _conf_leave(self, ev: Event) -> None:
        conference = self.conferences.get(ev.get("Conference") or "")
        uniqueid = ev.get("Uniqueid") or ""
        if conference is not None:
            self._drop_participant(conference, uniqueid)

    def _drop_participant(self, conference: Conference, uniqueid: str) -> None:
        if uniqueid not in conference.participants:
            return
        participants = dict(conference.participants)
        participant = participants.pop(uniqueid)
        conference = _replace(conference, participants=participants)
        if participants:
            self.conferences[conference.name] = conference
        else:  # ConfbridgeEnd follows; a conference nobody is in is gone
            self.conferences.pop(conference.name, None)
        self.emit(ConferenceLeft(conference, participant, reason=self._reason, event=self._event))

    def _conf_end(self, ev: Event) -> None:
        conference = self.conferences.pop(ev.get("Conference") or "", None)
        if conference is None:
            return
        for uniqueid in list(conference.participants):
            self.conferences[conference.name] = conference
            self._drop_participant(conference, uniqueid)
            conference = self.conferences.get(conference.name, conference)
        self.conferences.pop(conference.name, None)

    def _conf_mute(self, ev: Event) -> None:
        conference = self.conferences.get(ev.get("Conference") or "")
        uniqueid = ev.get("Uniqueid") or ""
        if conference is None or uniqueid not in conference.participants:
            return
        participants = dict(conference.participants)
        participants[uniqueid] = _replace(
            participants[uniqueid], muted=ev.name.lower() == "confbridgemute"
        )
        self.conferences[conference.name] = _replace(conference, participants=participants)

    def _conf_lock(self, ev: Event) -> None:
        conference = self.conferences.get(ev.get("Conference") or "")
        if conference is not None:
            locked = ev.name.lower() == "confbridgelock"
            self.conferences[conference.name] = _replace(conference, locked=locked)

    # -- parking -----------------------------------------------------------------------------------

    def _parked(self, ev: Event) -> None:
        parked = parked_from(ev, self.now(ev))
        if parked is None:
            return
        key = (parked.lot, parked.space)
        old = self.parked.get(key)
        if old is not None:
            parked = _replace(parked, parked_at=old.parked_at)
        self.parked[key] = parked
        self.emit(CallParked(parked, reason=self._reason, event=self._event))

    def _unparked(self, ev: Event) -> None:
        key = (ev.get("Parkinglot") or "default", ev.get("ParkingSpace") or "")
        parked = self.parked.pop(key, None)
        if parked is None:
            return
        how = {
            "unparkedcall": "retrieved",
            "parkedcalltimeout": "timeout",
            "parkedcallgiveup": "giveup",
        }.get(ev.name.lower(), "retrieved")
        self.emit(CallUnparked(parked, how, reason=self._reason, event=self._event))

    # -- a channel that is gone leaves every feature ---------------------------------------

    def forget_feature_channel(self, uniqueid: str) -> None:
        """A hung-up channel waits in no queue, talks in no conference, is parked nowhere."""
        for queue in [q for q in self.queues.values() if q.callers]:
            if any(c.uniqueid == uniqueid for c in queue.callers):
                self._drop_caller(queue, uniqueid)
        for conference in list(self.conferences.values()):
            if uniqueid in conference.participants:
                self._drop_participant(conference, uniqueid)
        for key, parked in list(self.parked.items()):
            if parked.uniqueid == uniqueid:
                del self.parked[key]
                self.emit(CallUnparked(parked, "hangup", reason=self._reason, event=self._event))
