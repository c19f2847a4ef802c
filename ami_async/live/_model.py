"""The model's state and how channel, bridge, dial and transfer events change it.

`Model.apply(event)` returns the changes one event made. Queue, conference and
parking events are applied by `_features.FeaturesMixin`; building a call's
record is `_records`. Every applier is written as "set the state the event
describes", so applying an event twice (once seen in a snapshot, once as an
event buffered while the snapshot was taken) leaves the same state.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone

from ..events import ChannelState, HangupCause
from ..message import Event
from ._calls import Call, CallRecord
from ._changes import (
    BridgeAdded,
    BridgeRemoved,
    BridgeUpdated,
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
    Change,
    ChannelAdded,
    ChannelRemoved,
    ChannelUpdated,
)
from ._features import FeaturesMixin
from ._fields import caller_id, number
from ._objects import Bridge, Channel, Transfer
from ._records import build_record

__all__ = ["Model"]

_UTC = timezone.utc
_replace = dataclasses.replace


def _state(value: str | None) -> ChannelState | int:
    n = number(value)
    if n is None:
        return ChannelState.DOWN
    try:
        return ChannelState(n)
    except ValueError:
        return n


def _cause(value: str | None) -> HangupCause | int | None:
    n = number(value)
    if n is None:
        return None
    try:
        return HangupCause(n)
    except ValueError:
        return n


def _variables(ev: Event, prefix: str, old: Mapping[str, str] | None) -> dict[str, str] | None:
    """The `channelvars` (`ChanVariable: name=value`) the event reports, merged over `old`."""
    if ev.get(prefix + "ChanVariable") is None:
        return None
    found = ev.prefixed_variables(prefix)
    if old is not None and all(old.get(k) == v for k, v in found.items()):
        return None
    merged = dict(old or {})
    merged.update(found)
    return merged


class Model(FeaturesMixin):
    """Channels, bridges and calls (queues, conferences, parking in the mixin)."""

    def __init__(self, clock: Callable[[], float], history: int) -> None:
        super().__init__()
        self.clock = clock
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.calls: dict[str, Call] = {}
        self.history: deque[CallRecord] = deque(maxlen=history)
        self._out: list[Change] = []
        self._appliers: dict[str, Callable[[Event], None]] = {
            "newchannel": self._newchannel,
            "newstate": self._touch_event,
            "newcallerid": self._touch_event,
            "newconnectedline": self._touch_event,
            "newexten": self._newexten,
            "newaccountcode": self._touch_event,
            "rename": self._rename,
            "varset": self._varset,
            "hold": self._hold,
            "unhold": self._hold,
            "musiconholdstart": self._touch_event,
            "dialbegin": self._dialbegin,
            "dialstate": self._touch_event,
            "dialend": self._dialend,
            "bridgecreate": self._bridgecreate,
            "bridgeenter": self._bridgeenter,
            "bridgeleave": self._bridgeleave,
            "bridgedestroy": self._bridgedestroy,
            "bridgemerge": self._bridgemerge,
            "blindtransfer": self._blindtransfer,
            "attendedtransfer": self._attendedtransfer,
            "hangup": self._hangup,
            "softhanguprequest": self._touch_event,
            "hanguprequest": self._touch_event,
        }
        self._appliers.update(self.feature_appliers())

    # -- entry point ---------------------------------------------------------------------

    def apply(self, ev: Event) -> list[Change]:
        """Apply one event; the changes it made (empty for events the model ignores)."""
        applier = self._appliers.get(ev.name.lower())
        if applier is None:
            return []
        out: list[Change] = []
        self._out = out
        self._event = ev
        applier(ev)
        return out

    def now(self, ev: Event | None = None) -> datetime:
        """The event's time: its `Timestamp` (manager.conf `timestampevents`), else the clock."""
        if ev is not None:
            stamp = ev.get("Timestamp")
            if stamp is not None:
                try:
                    return datetime.fromtimestamp(float(stamp), _UTC)
                except (ValueError, OverflowError):
                    pass
        return datetime.fromtimestamp(self.clock(), _UTC)

    def emit(self, change: Change) -> None:
        self._out.append(change)

    # -- channels ------------------------------------------------------------------------

    def channel_from(self, ev: Event, prefix: str, created_at: datetime) -> Channel | None:
        """A new `Channel` from the fields `prefix` + `Channel`, `Uniqueid`, ... of `ev`."""
        g = ev.get
        uniqueid = g(prefix + "Uniqueid")
        name = g(prefix + "Channel")
        if not uniqueid or name is None:
            return None
        state = _state(g(prefix + "ChannelState"))
        return Channel(
            uniqueid=uniqueid,
            linkedid=g(prefix + "Linkedid") or uniqueid,
            name=name,
            state=state,
            caller=caller_id(g(prefix + "CallerIDNum"), g(prefix + "CallerIDName")),
            connected=caller_id(g(prefix + "ConnectedLineNum"), g(prefix + "ConnectedLineName")),
            context=g(prefix + "Context"),
            exten=g(prefix + "Exten"),
            priority=number(g(prefix + "Priority")),
            application=g("Application") if not prefix else None,
            app_data=(g("ApplicationData") or g("AppData")) if not prefix else None,
            account_code=g(prefix + "AccountCode") or g(prefix + "Accountcode"),
            bridge=(g("BridgeId") or None) if not prefix else None,
            dialing=(),
            dialed_by=None,
            created_at=created_at,
            answered_at=created_at if state == ChannelState.UP else None,
            variables=_variables(ev, prefix, None) or {},
            raw=ev,
        )

    def add_channel(self, channel: Channel) -> None:
        """Put a new channel in the model and in its call (a new call if it is the first)."""
        self.channels[channel.uniqueid] = channel
        self.emit(ChannelAdded(channel, reason=self._reason, event=self._event))
        self._join_call(channel, channel.created_at)
        if channel.answered_at is not None:
            self._answered(channel)

    def _join_call(self, channel: Channel, at: datetime) -> Call:
        call = self.calls.get(channel.linkedid)
        if call is None:
            call = Call(channel.linkedid, at, self.channels)
            self.calls[channel.linkedid] = call
            call._members[channel.uniqueid] = None
            call._history[channel.uniqueid] = None
            self.emit(CallStarted(call, reason=self._reason, event=self._event))
        else:
            call._members[channel.uniqueid] = None
            call._history[channel.uniqueid] = None
        return call

    def _newchannel(self, ev: Event) -> None:
        uniqueid = ev.get("Uniqueid")
        if uniqueid in self.channels:
            self._touch_event(ev)  # already known from the snapshot
            return
        channel = self.channel_from(ev, "", self.now(ev))
        if channel is not None:
            self.add_channel(channel)

    def _touch_event(self, ev: Event) -> None:
        self.touch(ev, "")

    def touch(self, ev: Event, prefix: str, **extra: object) -> Channel | None:
        """Update the channel the event describes (fields with `prefix`) with what changed."""
        g = ev.get
        uniqueid = g(prefix + "Uniqueid")
        if uniqueid is None:
            return None
        old = self.channels.get(uniqueid)
        if old is None:
            return None
        changes = {k: v for k, v in extra.items() if getattr(old, k) != v}
        state = g(prefix + "ChannelState")
        if state is not None:
            new_state = _state(state)
            if new_state != old.state:
                changes["state"] = new_state
                if new_state == ChannelState.UP and old.answered_at is None:
                    changes["answered_at"] = self.now(ev)
        name = g(prefix + "Channel")
        if name is not None and name != old.name:
            changes["name"] = name
        num = g(prefix + "CallerIDNum")
        if num is not None:
            caller = caller_id(num, g(prefix + "CallerIDName"))
            if caller != old.caller:
                changes["caller"] = caller
        num = g(prefix + "ConnectedLineNum")
        if num is not None:
            connected = caller_id(num, g(prefix + "ConnectedLineName"))
            if connected != old.connected:
                changes["connected"] = connected
        exten = g(prefix + "Exten")
        if exten and (exten != old.exten or g(prefix + "Context") != old.context):
            changes["exten"] = exten
            changes["context"] = g(prefix + "Context")
            changes["priority"] = number(g(prefix + "Priority"))
        account = g(prefix + "AccountCode")
        if account is not None and account != old.account_code:
            changes["account_code"] = account
        variables = _variables(ev, prefix, old.variables)
        if variables is not None:
            changes["variables"] = variables
        linkedid = g(prefix + "Linkedid")
        if not changes and (linkedid is None or linkedid == old.linkedid):
            return old
        if linkedid is not None and linkedid != old.linkedid:
            changes["linkedid"] = linkedid
        new = _replace(old, raw=ev, **changes)
        self.update_channel(old, new)
        return new

    def update_channel(self, old: Channel, new: Channel) -> None:
        """Replace `old` by `new` and say what that means for its call."""
        self.channels[new.uniqueid] = new
        self.emit(ChannelUpdated(new, old, reason=self._reason, event=self._event))
        if new.linkedid != old.linkedid:
            self._move(old, new)
        if new.answered_at is not None and old.answered_at is None:
            self._answered(new)

    def _answered(self, channel: Channel) -> None:
        call = self.calls.get(channel.linkedid)
        if call is not None and call._answered_at is None:
            call._answered_at = channel.answered_at
            self.emit(CallAnswered(call, reason=self._reason, event=self._event))

    def _move(self, old: Channel, new: Channel) -> None:
        """A channel took another linkedid (it entered a bridge with an older call): join."""
        source = self.calls.get(old.linkedid)
        target = self._join_call(new, self.now(self._event))
        transfer = Transfer(
            kind="join",
            at=self.now(self._event),
            transferer=None,
            transferee=new.uniqueid,
            target=new.bridge,
            result=None,
            raw=self._event,
        )
        target._transfers.append(transfer)
        if target._answered_at is None and new.answered_at is not None:
            target._answered_at = new.answered_at
        self.emit(CallTransferred(target, transfer, reason=self._reason, event=self._event))
        if source is not None:
            source._members.pop(old.uniqueid, None)
            source._history[old.uniqueid] = old
            if not source._members:
                self._end_call(source, self.now(self._event))

    def _newexten(self, ev: Event) -> None:
        uniqueid = ev.get("Uniqueid")
        old = self.channels.get(uniqueid) if uniqueid else None
        if old is None:
            return
        app = ev.get("Application")
        data = ev.get("AppData")
        if app != old.application or data != old.app_data:
            self.touch(ev, "", application=app, app_data=data)
        else:
            self.touch(ev, "")

    def _rename(self, ev: Event) -> None:
        uniqueid = ev.get("Uniqueid")
        old = self.channels.get(uniqueid) if uniqueid else None
        new_name = ev.get("Newname")
        if old is not None and new_name and new_name != old.name:
            self.update_channel(old, _replace(old, name=new_name, raw=ev))

    def _varset(self, ev: Event) -> None:
        # Only the `channelvars` (those the channel's events carry as ChanVariable):
        # VarSet reports every variable the dialplan sets, which would grow without bound.
        uniqueid = ev.get("Uniqueid")
        old = self.channels.get(uniqueid) if uniqueid else None
        if old is None or not old.variables:
            return
        name = ev.get("Variable") or ""
        value = ev.get("Value") or ""
        if name in old.variables and old.variables[name] != value:
            variables = dict(old.variables)
            variables[name] = value
            self.update_channel(old, _replace(old, variables=variables, raw=ev))

    def _hold(self, ev: Event) -> None:
        self.touch(ev, "", on_hold=ev.name.lower() == "hold")

    # -- dials -----------------------------------------------------------------------------

    def _dialbegin(self, ev: Event) -> None:
        source = self.touch(ev, "")
        dest_id = ev.get("DestUniqueid")
        if source is not None and dest_id:
            if dest_id not in source.dialing:
                self.update_channel(source, _replace(source, dialing=(*source.dialing, dest_id)))
            call = self.calls.get(source.linkedid)
            if call is not None and call._callee is None:
                dialstring = ev.get("DialString") or ""
                num = dialstring.split("@", 1)[0].rsplit("/", 1)[-1] or None
                call._callee = caller_id(num, None)
        dest = self.touch(ev, "Dest")
        if dest is not None and source is not None and dest.dialed_by != source.uniqueid:
            self.update_channel(dest, _replace(dest, dialed_by=source.uniqueid))

    def _dialend(self, ev: Event) -> None:
        source = self.touch(ev, "")
        dest = self.touch(ev, "Dest")
        dest_id = ev.get("DestUniqueid")
        if dest is not None:
            # A dial with no caller (Originate's) decides the dialled channel's own CDR.
            dest_call = self.calls.get(dest.linkedid)
            if dest_call is not None:
                dest_call._dest_status.setdefault(dest.uniqueid, ev.get("DialStatus") or "")
        if source is None:
            return
        call = self.calls.get(source.linkedid)
        if call is not None and call._dial_status is None:
            call._dial_status = ev.get("DialStatus") or ""
        if dest_id and dest_id in source.dialing:
            dialing = tuple(d for d in source.dialing if d != dest_id)
            self.update_channel(source, _replace(source, dialing=dialing))

    # -- bridges ---------------------------------------------------------------------------

    def bridge_from(self, ev: Event, prefix: str = "") -> Bridge | None:
        uniqueid = ev.get(prefix + "BridgeUniqueid")
        if not uniqueid:
            return None
        return Bridge(
            uniqueid=uniqueid,
            type=ev.get(prefix + "BridgeType"),
            technology=ev.get(prefix + "BridgeTechnology"),
            channels=(),
            name=ev.get(prefix + "BridgeName"),
            creator=ev.get(prefix + "BridgeCreator"),
            raw=ev,
        )

    def _bridge(self, ev: Event, prefix: str = "") -> Bridge | None:
        uniqueid = ev.get(prefix + "BridgeUniqueid")
        if not uniqueid:
            return None
        bridge = self.bridges.get(uniqueid)
        if bridge is None:
            bridge = self.bridge_from(ev, prefix)
            if bridge is not None:
                self.bridges[uniqueid] = bridge
                self.emit(BridgeAdded(bridge, reason=self._reason, event=self._event))
        return bridge

    def _bridgecreate(self, ev: Event) -> None:
        self._bridge(ev)

    def set_bridge_channels(self, bridge: Bridge, channels: tuple[str, ...], ev: Event) -> None:
        if channels != bridge.channels:
            new = _replace(bridge, channels=channels, raw=ev)
            self.bridges[bridge.uniqueid] = new
            self.emit(BridgeUpdated(new, reason=self._reason, event=self._event))

    def _bridgeenter(self, ev: Event) -> None:
        bridge = self._bridge(ev)
        uniqueid = ev.get("Uniqueid")
        if bridge is None or not uniqueid:
            return
        if uniqueid not in bridge.channels:
            self.set_bridge_channels(bridge, (*bridge.channels, uniqueid), ev)
        self.touch(ev, "", bridge=bridge.uniqueid)

    def _bridgeleave(self, ev: Event) -> None:
        uniqueid = ev.get("Uniqueid")
        bridge = self.bridges.get(ev.get("BridgeUniqueid") or "")
        if bridge is not None and uniqueid in bridge.channels:
            channels = tuple(c for c in bridge.channels if c != uniqueid)
            self.set_bridge_channels(bridge, channels, ev)
        channel = self.channels.get(uniqueid or "")
        if channel is not None and bridge is not None and channel.bridge == bridge.uniqueid:
            self.touch(ev, "", bridge=None)
        else:
            self.touch(ev, "")

    def remove_bridge(self, uniqueid: str) -> None:
        bridge = self.bridges.pop(uniqueid, None)
        if bridge is None:
            return
        for chan_id in bridge.channels:
            channel = self.channels.get(chan_id)
            if channel is not None and channel.bridge == uniqueid:
                self.update_channel(channel, _replace(channel, bridge=None))
        self.emit(BridgeRemoved(bridge, reason=self._reason, event=self._event))

    def _bridgedestroy(self, ev: Event) -> None:
        self.remove_bridge(ev.get("BridgeUniqueid") or "")

    def _bridgemerge(self, ev: Event) -> None:
        source = self.bridges.get(ev.get("FromBridgeUniqueid") or "")
        target = self._bridge(ev, "To")
        if source is None or target is None:
            return
        moved = [c for c in source.channels if c not in target.channels]
        self.set_bridge_channels(target, (*target.channels, *moved), ev)
        self.set_bridge_channels(source, (), ev)
        for chan_id in moved:
            channel = self.channels.get(chan_id)
            if channel is not None:
                self.update_channel(channel, _replace(channel, bridge=target.uniqueid))

    # -- transfers -------------------------------------------------------------------------

    def _transfer(self, linkedids: list[str | None], transfer: Transfer) -> None:
        seen: set[str] = set()
        for linkedid in linkedids:
            if not linkedid or linkedid in seen:
                continue
            seen.add(linkedid)
            call = self.calls.get(linkedid)
            if call is not None:
                call._transfers.append(transfer)
                self.emit(CallTransferred(call, transfer, reason=self._reason, event=self._event))

    def _blindtransfer(self, ev: Event) -> None:
        g = ev.get
        context = g("Context")
        exten = g("Extension")
        target = f"{exten}@{context}" if exten and context else exten
        transfer = Transfer(
            kind="blind",
            at=self.now(ev),
            transferer=g("TransfererUniqueid"),
            transferee=g("TransfereeUniqueid"),
            target=target,
            result=g("Result"),
            raw=ev,
        )
        self._transfer([g("TransfererLinkedid"), g("TransfereeLinkedid")], transfer)

    def _attendedtransfer(self, ev: Event) -> None:
        g = ev.get
        target = g("TransferTargetUniqueid") or g("DestApp") or g("DestBridgeUniqueid")
        transfer = Transfer(
            kind="attended",
            at=self.now(ev),
            transferer=g("OrigTransfererUniqueid"),
            transferee=g("TransfereeUniqueid"),
            target=target,
            result=g("Result"),
            raw=ev,
        )
        self._transfer(
            [g("OrigTransfererLinkedid"), g("SecondTransfererLinkedid")],
            transfer,
        )

    # -- hang-ups and ends -------------------------------------------------------------------

    def _hangup(self, ev: Event) -> None:
        uniqueid = ev.get("Uniqueid")
        channel = self.channels.get(uniqueid or "")
        if channel is None:
            return
        last = self.touch(ev, "") or channel
        last = _replace(last, hangup_cause=_cause(ev.get("Cause")), raw=ev)
        self.remove_channel(last, self.now(ev))

    def remove_channel(self, channel: Channel, at: datetime) -> None:
        """A channel is gone: out of its bridge, its dials, its call (which may end)."""
        uniqueid = channel.uniqueid
        self.channels.pop(uniqueid, None)
        bridge = self.bridges.get(channel.bridge or "")
        if bridge is not None and uniqueid in bridge.channels:
            self.set_bridge_channels(
                bridge, tuple(c for c in bridge.channels if c != uniqueid), bridge.raw or Event()
            )
        self.forget_feature_channel(uniqueid)
        self.emit(ChannelRemoved(channel, reason=self._reason, event=self._event))
        call = self.calls.get(channel.linkedid)
        if call is None:
            return
        call._members.pop(uniqueid, None)
        call._history[uniqueid] = channel
        call._causes.append((uniqueid, channel.hangup_cause))
        if not call._members:
            self._end_call(call, at)

    def _end_call(self, call: Call, at: datetime) -> None:
        if self.calls.get(call.linkedid) is call:
            del self.calls[call.linkedid]
        record = build_record(call, at, self._reason)
        self.history.append(record)
        call._finish(record)
        call._live_channels = {}
        self.emit(CallEnded(call, record, reason=self._reason, event=self._event))

    def since(self, duration: str | None, now: datetime) -> datetime:
        """`now` minus a `CoreShowChannel` `Duration` (`HH:MM:SS` or seconds)."""
        if not duration:
            return now
        seconds = 0
        try:
            for part in duration.split(":"):
                seconds = seconds * 60 + int(part)
        except ValueError:
            return now
        return now - timedelta(seconds=seconds)
