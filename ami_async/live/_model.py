"""The model's state and how channel, bridge, dial and transfer events change it.

`Model.apply(event)` returns the changes one event made. Queue, conference and
parking events are applied by `_features.FeaturesMixin`; building a call's
record is `_records`. Every applier is written as "set the state the event
describes", so applying an event twice (once seen in a snapshot, once as an
event buffered while the snapshot was taken) leaves the same state.

The cost per event (issue 10, `benchmarks/live.py`): most events describe a
channel with the same block of lines (`Channel:` to `Linkedid:`, Asterisk's
channel snapshot). The model keeps, per channel, the block it last read; an
event whose block is the same changes none of those fields, and one whose block
differs is read only in the lines that differ. Such an event is never parsed
header by header. (`Model(fast=False)` reads every event in full: the tests
check both ways agree on every capture.) Changes are built only while someone
reads them (`emitting`), and the frozen objects are copied without `__init__`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import sys
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

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
from ._fields import caller_id, evolve, line_value, make, number
from ._objects import Bridge, Channel, Transfer
from ._records import build_record

__all__ = ["Model"]

logger = logging.getLogger("ami_async.live")

_UTC = timezone.utc
_UNKNOWN = frozenset({"", "<unknown>", "unknown"})  # (as `caller_id` reads them)
_replace = dataclasses.replace


_STATES: dict[str | None, ChannelState | int | None] = {}
_UP = ChannelState.UP
_CAUSES: dict[str | None, ChannelState | HangupCause | int | None] = {}


def _enum(
    cache: dict[str | None, Any], kind: type[ChannelState] | type[HangupCause], value: str | None
) -> Any:
    """`kind(int(value))` (the int itself if `kind` has no such member; `None` if no number).

    Memoized: the same few values come again and again, and an enum call is slow.
    """
    try:
        return cache[value]
    except KeyError:
        pass
    n = number(value)
    member: object = n
    if n is not None:
        with contextlib.suppress(ValueError):
            member = kind(n)
    if len(cache) < 256:
        cache[value] = member
    return member


def _state(value: str | None) -> ChannelState | int:
    state: ChannelState | int | None = _enum(_STATES, ChannelState, value)
    return ChannelState.DOWN if state is None else state


def _cause(value: str | None) -> HangupCause | int | None:
    cause: HangupCause | int | None = _enum(_CAUSES, HangupCause, value)
    return cause


#: Asterisk's channel snapshot, the same lines in the same order in every channel event
#: of Asterisk 13 and 22 (`DestChannel`... for the dialled channel of a dial).
_SNAPSHOT = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)
#: The LFs of those lines as the pattern below finds them (one before each, one after the last).
_BLOCK_LF = len(_SNAPSHOT) + 1
(_NAME, _STATE, _, _CID_NUM, _CID_NAME, _CL_NUM, _CL_NAME, _, _ACCOUNT, _CONTEXT, _EXTEN) = range(
    11
)
_PRIORITY, _UNIQUEID, _LINKEDID = 11, 12, 13


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


#: How the snapshot pattern repeats a value's characters (possessive from Python 3.11).
_MANY = "*+" if sys.version_info >= (3, 11) else "*"


class _Layout:
    """How to find one channel's snapshot lines (with `prefix`) in an event's text."""

    __slots__ = ("chanvar", "pattern", "uniqueid")

    def __init__(self, prefix: str) -> None:
        # `([^\r]*+)`, not `([^\r\n]*)`: 40 % faster (`*` before Python 3.11, which has no
        # possessive `*+`; the same matches, for `[^\r]` cannot take the CR of `\r\n`). A
        # value with a bare LF in it (which `Event.get` splits there) would be matched
        # whole, so the model counts the LFs (`_BLOCK_LF`) of lines it has not read
        # before, and reads them in full if they differ.
        lines = "\r\n".join(f"{prefix}{key}: ([^\r]{_MANY})" for key in _SNAPSHOT)
        self.pattern = re.compile(f"\r\n{lines}\r\n")
        # `channelvars` lines follow the snapshot at once.
        self.chanvar = f"{prefix}ChanVariable"
        self.uniqueid = f"\r\n{prefix}Uniqueid: "


_LAYOUTS = {"": _Layout(""), "Dest": _Layout("Dest")}


#: `_value`'s search strings, made once.
_TAG = {
    key: f"\n{key}: "
    for key in (
        "Application",
        "AppData",
        "Uniqueid",
        "DestUniqueid",
        "DialString",
        "DialStatus",
        "BridgeUniqueid",
        "Cause",
    )
}
_NO_EXTRA: dict[str, object] = {}
#: The `variables` of a channel without `channelvars`: one read-only mapping for all.
_NO_VARIABLES: Mapping[str, str] = MappingProxyType({})


class _Seen:
    """The snapshot values a channel was last described with (`block`: their lines as
    written), and the channel they made."""

    __slots__ = ("block", "channel", "values")

    def __init__(self, channel: Channel, values: tuple[str, ...], block: str) -> None:
        self.channel = channel
        self.values = values
        self.block = block


class Model(FeaturesMixin):
    """Channels, bridges and calls (queues, conferences, parking in the mixin).

    `emitting`: whether `apply` builds the changes it makes (`Live` turns it
    off while no `changes()` stream is open); the state is the same either way.
    """

    def __init__(self, clock: Callable[[], float], history: int, *, fast: bool = True) -> None:
        super().__init__()
        self.clock = clock
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, Bridge] = {}
        self.calls: dict[str, Call] = {}
        self.history: deque[CallRecord] = deque(maxlen=history)
        self.emitting = True
        self._fast = fast
        self._seen: dict[str, _Seen] = {}
        self._out: list[Change] = []
        #: `follow`'s side: events held while a snapshot is taken, where changes go.
        self.held: list[Event] | None = None
        self.publish: Callable[[list[Change]], None] = lambda changes: None
        self._appliers: dict[str, Callable[[Event], object]] = {
            "newchannel": self._newchannel,
            "newstate": self._touch,
            "newcallerid": self._touch,
            "newconnectedline": self._touch,
            "newexten": self._newexten,
            "newaccountcode": self._touch,
            "rename": self._rename,
            "varset": self._varset,
            "hold": self._hold,
            "unhold": self._hold,
            "musiconholdstart": self._touch,
            "dialbegin": self._dialbegin,
            "dialstate": self._touch,
            "dialend": self._dialend,
            "bridgecreate": self._bridgecreate,
            "bridgeenter": self._bridgeenter,
            "bridgeleave": self._bridgeleave,
            "bridgedestroy": self._bridgedestroy,
            "bridgemerge": self._bridgemerge,
            "blindtransfer": self._blindtransfer,
            "attendedtransfer": self._attendedtransfer,
            "hangup": self._hangup,
            "softhanguprequest": self._touch,
            "hanguprequest": self._touch,
        }
        self._appliers.update(self.feature_appliers())
        # By the name as received (no lower() per event); None: not followed.
        self._by_name: dict[str, Callable[[Event], object] | None] = {}

    # -- entry point ---------------------------------------------------------------------

    def apply(self, ev: Event) -> list[Change]:
        """Apply one event; the changes it made (empty for events the model ignores)."""
        name = ev._name or ev.name
        try:
            applier = self._by_name[name]
        except KeyError:
            applier = self._learn(name)
        out: list[Change] = []
        if applier is None:
            return out
        self._out = out
        self._event = ev
        applier(ev)
        return out

    def _learn(self, name: str) -> Callable[[Event], object] | None:
        """The applier of an event name seen for the first time, remembered (up to 1024 names)."""
        applier = self._appliers.get(name.lower())
        if len(self._by_name) < 1024:
            self._by_name[name] = applier
        return applier

    def follow(self, ev: Event) -> None:
        """`apply` as `Live`'s event sink: the event waits in `held` while a snapshot is
        taken (`held` is a list then, else `None`); the changes go to `publish`.

        Called straight from the dispatch of a read (`dispatch.Sink`): an error
        is logged here, never raised into the connection.
        """
        name = ev._name or ev.name
        try:
            held = self.held
            if held is not None:
                held.append(ev)
                return
            try:
                applier = self._by_name[name]
            except KeyError:
                applier = self._learn(name)
            if applier is None:
                return
            self._event = ev
            if self.emitting:
                out: list[Change] = []
                self._out = out
                applier(ev)
                if out:
                    self.publish(out)
            else:  # (nothing is appended to `_out` then)
                applier(ev)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            # Even a CancelledError: out of data_received it would tear the link down.
            logger.exception("live model: %s event not applied", name)

    def now(self, ev: Event | None = None, before: int | None = None) -> datetime:
        """The event's time: its `Timestamp` (manager.conf `timestampevents`), else the clock.

        `before`: where the event's channel fields start in its text (Asterisk
        writes `Timestamp` among the first lines, before them).
        """
        if ev is not None:
            text = ev._text
            if text is None:
                stamp = ev.get("Timestamp")
            else:
                stamp = line_value(text, "\nTimestamp: ", 0, before)
            if stamp is not None:
                try:
                    return datetime.fromtimestamp(float(stamp), _UTC)
                except (ValueError, OverflowError):
                    pass
        return datetime.fromtimestamp(self.clock(), _UTC)

    def emit(self, change: Change) -> None:
        if self.emitting:
            self._out.append(change)

    def _value(self, ev: Event, key: str) -> str | None:
        """One field of `ev`, read from its text where it can be (no parse of the rest).

        The first `Key: value` line, as `Event.get` reads it (lines end at LF).
        """
        text = ev._text
        if text is not None and self._fast:
            tag = _TAG.get(key)
            if tag is None:
                tag = "\n" + key + ": "
            value = line_value(text, tag)
            if value is not None:
                return value
        return ev.get(key)

    # -- channels ------------------------------------------------------------------------

    def channel_from(
        self,
        ev: Event,
        prefix: str,
        created_at: datetime,
        fields: dict[str, str] | None = None,
    ) -> Channel | None:
        """A new `Channel` from the fields `prefix` + `Channel`, `Uniqueid`, ... of `ev`.

        `fields`: the event's fields already read (`text_fields`), else `ev.get` is used.
        """
        g = ev.get if fields is None else fields.get
        uniqueid = g(prefix + "Uniqueid")
        name = g(prefix + "Channel")
        if not uniqueid or name is None:
            return None
        state = _state(g(prefix + "ChannelState"))
        account = g(prefix + "AccountCode")
        if account is None:
            account = g(prefix + "Accountcode")
        return make(
            Channel,
            {
                "uniqueid": uniqueid,
                "linkedid": g(prefix + "Linkedid") or uniqueid,
                "name": name,
                "state": state,
                "caller": caller_id(g(prefix + "CallerIDNum"), g(prefix + "CallerIDName")),
                "connected": caller_id(
                    g(prefix + "ConnectedLineNum"), g(prefix + "ConnectedLineName")
                ),
                "context": g(prefix + "Context"),
                "exten": g(prefix + "Exten"),
                "priority": number(g(prefix + "Priority")),
                "application": g("Application") if not prefix else None,
                "app_data": (g("ApplicationData") or g("AppData")) if not prefix else None,
                "account_code": account,
                "bridge": (g("BridgeId") or None) if not prefix else None,
                "dialing": (),
                "dialed_by": None,
                "created_at": created_at,
                "answered_at": created_at if state == _UP else None,
                "variables": (
                    _variables(ev, prefix, None) or _NO_VARIABLES
                    if g(prefix + "ChanVariable") is not None
                    else _NO_VARIABLES
                ),
                "on_hold": False,
                "hangup_cause": None,
                "raw": ev,
            },
        )

    def add_channel(self, channel: Channel) -> None:
        """Put a new channel in the model and in its call (a new call if it is the first)."""
        self.channels[channel.uniqueid] = channel
        if self.emitting:
            self._out.append(
                make(
                    ChannelAdded,
                    {"channel": channel, "reason": self._reason, "event": self._event},
                )
            )
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
            if self.emitting:
                self._out.append(
                    make(CallStarted, {"call": call, "reason": self._reason, "event": self._event})
                )
        else:
            call._members[channel.uniqueid] = None
            call._history[channel.uniqueid] = None
        return call

    def _newchannel(self, ev: Event) -> None:
        text = ev._text
        found = _LAYOUTS[""].pattern.search(text) if text is not None and self._fast else None
        if found is None or text is None:
            uniqueid = ev.get("Uniqueid")
            if uniqueid in self.channels:
                self.touch(ev, "")  # already known from the snapshot
                return
            channel = self.channel_from(ev, "", self.now(ev))
            if channel is not None:
                self.add_channel(channel)
            return
        values = found.groups()
        if values[_UNIQUEID] in self.channels:
            self.touch(ev, "")
            return
        end = found.end()
        block = found.group(0)
        if (
            text.count("\r\n", 0, found.start()) != 1  # more than Event and Privilege before
            or text[end:] not in ("", "\r\n")  # more after (ChanVariable...)
            or not values[_UNIQUEID]
            or block.count("\n") != _BLOCK_LF  # a bare LF in a value: read as `Event.get` does
        ):
            channel = self.channel_from(ev, "", self.now(ev))
            if channel is not None:
                self.add_channel(channel)
            return
        # Nothing but the snapshot: the channel is made from its values alone.
        created_at = self.now(ev, found.start())
        state = _state(values[_STATE])
        channel = make(
            Channel,
            {
                "uniqueid": values[_UNIQUEID],
                "linkedid": values[_LINKEDID] or values[_UNIQUEID],
                "name": values[_NAME],
                "state": state,
                "caller": caller_id(values[_CID_NUM], values[_CID_NAME]),
                "connected": caller_id(values[_CL_NUM], values[_CL_NAME]),
                "context": values[_CONTEXT],
                "exten": values[_EXTEN],
                "priority": number(values[_PRIORITY]),
                "application": None,
                "app_data": None,
                "account_code": values[_ACCOUNT],
                "bridge": None,
                "dialing": (),
                "dialed_by": None,
                "created_at": created_at,
                "answered_at": created_at if state == _UP else None,
                "variables": _NO_VARIABLES,
                "on_hold": False,
                "hangup_cause": None,
                "raw": ev,
            },
        )
        self.add_channel(channel)
        self._seen[channel.uniqueid] = _Seen(self.channels[channel.uniqueid], values, block)

    def touch(self, ev: Event, prefix: str, **extra: object) -> Channel | None:
        """Update the channel the event describes (fields with `prefix`) with what changed."""
        return self._touch(ev, prefix, extra, None)

    def _match(self, ev: Event, prefix: str = "") -> re.Match[str] | None:
        """The snapshot lines of the channel with `prefix` in the event's text, if laid out so."""
        text = ev._text
        if text is None or not self._fast:
            return None
        return _LAYOUTS[prefix].pattern.search(text)

    def _touch(
        self,
        ev: Event,
        prefix: str = "",
        extra: dict[str, object] = _NO_EXTRA,
        found: re.Match[str] | None = None,
    ) -> Channel | None:
        """`touch`, with the snapshot lines already found (`_match`) or `None` to look.

        With the defaults, the applier of the events that only describe their
        channel (`Newstate`, `NewCallerid`, `HangupRequest`...).
        """
        text = ev._text
        layout = _LAYOUTS.get(prefix)
        if text is None or layout is None or not self._fast:
            return self._touch_parsed(ev, prefix, extra)
        if found is None:
            found = layout.pattern.search(text)
            if found is None:
                if layout.uniqueid not in text:
                    return None  # no such channel in it (an Originate's dial has no caller)
                return self._touch_parsed(ev, prefix, extra)
        if text.startswith(layout.chanvar, found.end()):  # `channelvars` lines follow: in full
            return self._touch_parsed(ev, prefix, extra)
        uniqueid = found.group(_UNIQUEID + 1)
        old = self.channels.get(uniqueid)
        if old is None:
            return None
        seen = self._seen.get(uniqueid)
        if seen is None or seen.channel is not old:
            # Not read from its snapshot yet (or replaced since by a snapshot): in full, once.
            new = self._touch_parsed(ev, prefix, extra)
            block = found.group(0)
            if new is not None and block.count("\n") == _BLOCK_LF:
                self._seen[uniqueid] = _Seen(new, found.groups(), block)
            return new
        block = found.group(0)
        if block == seen.block:  # the very same lines: the same values (no split needed)
            if not extra:
                return old
            changes: dict[str, object] = {}
        elif block.count("\n") != _BLOCK_LF:  # a bare LF in a value: read as `Event.get` does
            return self._touch_parsed(ev, prefix, extra)
        else:  # (the same keys in the same order: some value may differ)
            values = found.groups()
            if values == seen.values:  # (written with the other prefix last time)
                if not extra:
                    return old
                changes = {}
            else:
                changes = self._snapshot_changes(ev, old, values, seen.values)
                seen.values = values
                seen.block = block
        fields = old.__dict__
        for key, value in extra.items():
            if fields[key] != value:
                changes[key] = value
        if not changes:
            return old
        changes["raw"] = ev
        new = evolve(old, changes)
        seen.channel = new
        self.update_channel(old, new)
        return new

    def _snapshot_changes(
        self, ev: Event, old: Channel, values: tuple[str, ...], was: tuple[str, ...]
    ) -> dict[str, object]:
        """What the snapshot values that differ from the last ones change (as `_touch_parsed`).

        A value that did not change is as the channel has it: the last values
        were applied to it (`touch` checks the channel is the one they made).
        """
        changes: dict[str, object] = {}
        value = values[_STATE]
        if value != was[_STATE]:
            new_state = _state(value)
            if new_state != old.state:
                changes["state"] = new_state
                if new_state == _UP and old.answered_at is None:
                    changes["answered_at"] = self.now(ev)
        value = values[_NAME]
        if value != was[_NAME] and value != old.name:
            changes["name"] = value
        if values[_CID_NUM] != was[_CID_NUM] or values[_CID_NAME] != was[_CID_NAME]:
            who = caller_id(values[_CID_NUM], values[_CID_NAME])
            if who != old.caller:
                changes["caller"] = who
        if values[_CL_NUM] != was[_CL_NUM] or values[_CL_NAME] != was[_CL_NAME]:
            who = caller_id(values[_CL_NUM], values[_CL_NAME])
            if who != old.connected:
                changes["connected"] = who
        exten = values[_EXTEN]
        context = values[_CONTEXT]
        if (
            (exten != was[_EXTEN] or context != was[_CONTEXT])
            and exten
            and (exten != old.exten or context != old.context)
        ):
            changes["exten"] = exten
            changes["context"] = context
            changes["priority"] = number(values[_PRIORITY])
        value = values[_ACCOUNT]
        if value != was[_ACCOUNT] and value != old.account_code:
            changes["account_code"] = value
        value = values[_LINKEDID]
        if value != was[_LINKEDID] and value != old.linkedid:
            changes["linkedid"] = value
        return changes

    def _touch_parsed(self, ev: Event, prefix: str, extra: dict[str, object]) -> Channel | None:
        """`touch` by the event's parsed fields (what the block reading must agree with)."""
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
                if new_state == _UP and old.answered_at is None:
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
        if linkedid is not None and linkedid != old.linkedid:
            changes["linkedid"] = linkedid
        if not changes:
            return old
        changes["raw"] = ev
        new = evolve(old, changes)
        self.update_channel(old, new)
        return new

    def _keep(self, old: Channel, changes: dict[str, object]) -> Channel:
        """`old` with fields no snapshot block carries changed (its block stays valid)."""
        new = evolve(old, changes)
        seen = self._seen.get(old.uniqueid)
        if seen is not None and seen.channel is old:
            seen.channel = new
        return new

    def update_channel(self, old: Channel, new: Channel) -> None:
        """Replace `old` by `new` and say what that means for its call."""
        self.channels[new.uniqueid] = new
        if self.emitting:
            self._out.append(
                make(
                    ChannelUpdated,
                    {"channel": new, "previous": old, "reason": self._reason, "event": self._event},
                )
            )
        if new.linkedid != old.linkedid:
            self._move(old, new)
        if new.answered_at is not None and old.answered_at is None:
            self._answered(new)

    def _answered(self, channel: Channel) -> None:
        call = self.calls.get(channel.linkedid)
        if call is not None and call._answered_at is None:
            call._answered_at = channel.answered_at
            if self.emitting:
                self._out.append(
                    make(CallAnswered, {"call": call, "reason": self._reason, "event": self._event})
                )

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
        found = self._match(ev)
        uniqueid = ev.get("Uniqueid") if found is None else found.group(_UNIQUEID + 1)
        old = self.channels.get(uniqueid) if uniqueid else None
        if old is None:
            return
        app = self._value(ev, "Application")
        data = self._value(ev, "AppData")
        if app != old.application or data != old.app_data:
            self._touch(ev, "", {"application": app, "app_data": data}, found)
        else:
            self._touch(ev, "", _NO_EXTRA, found)

    def _rename(self, ev: Event) -> None:
        uniqueid = ev.get("Uniqueid")
        old = self.channels.get(uniqueid) if uniqueid else None
        new_name = ev.get("Newname")
        if old is not None and new_name and new_name != old.name:
            self.update_channel(old, _replace(old, name=new_name, raw=ev))

    def _varset(self, ev: Event) -> None:
        # Only the `channelvars` (those the channel's events carry as ChanVariable):
        # VarSet reports every variable the dialplan sets, which would grow without bound.
        uniqueid = self._value(ev, "Uniqueid")
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
        dest_id = self._value(ev, "DestUniqueid")
        if source is not None and dest_id:
            if dest_id not in source.dialing:
                new = self._keep(source, {"dialing": (*source.dialing, dest_id)})
                self.update_channel(source, new)
                source = new
            call = self.calls.get(source.linkedid)
            if call is not None and call._callee is None:
                dialstring = self._value(ev, "DialString") or ""
                num = dialstring.split("@", 1)[0].rsplit("/", 1)[-1] or None
                call._callee = caller_id(num, None)
        dest = self.touch(ev, "Dest")
        if dest is not None and source is not None and dest.dialed_by != source.uniqueid:
            self.update_channel(dest, self._keep(dest, {"dialed_by": source.uniqueid}))

    def _dialend(self, ev: Event) -> None:
        source = self.touch(ev, "")
        dest = self.touch(ev, "Dest")
        dest_id = self._value(ev, "DestUniqueid")
        status = self._value(ev, "DialStatus") or ""
        if dest is not None:
            # A dial with no caller (Originate's) decides the dialled channel's own CDR.
            dest_call = self.calls.get(dest.linkedid)
            if dest_call is not None:
                dest_call._dest_status.setdefault(dest.uniqueid, status)
        if source is None:
            return
        call = self.calls.get(source.linkedid)
        if call is not None and call._dial_status is None:
            call._dial_status = status
        if dest_id and dest_id in source.dialing:
            dialing = tuple(d for d in source.dialing if d != dest_id)
            self.update_channel(source, self._keep(source, {"dialing": dialing}))

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
        uniqueid = self._value(ev, prefix + "BridgeUniqueid")
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
            new = evolve(bridge, {"channels": channels, "raw": ev})
            self.bridges[bridge.uniqueid] = new
            self.emit(BridgeUpdated(new, reason=self._reason, event=self._event))

    def _bridgeenter(self, ev: Event) -> None:
        bridge = self._bridge(ev)
        uniqueid = self._value(ev, "Uniqueid")
        if bridge is None or not uniqueid:
            return
        if uniqueid not in bridge.channels:
            self.set_bridge_channels(bridge, (*bridge.channels, uniqueid), ev)
        self.touch(ev, "", bridge=bridge.uniqueid)

    def _bridgeleave(self, ev: Event) -> None:
        uniqueid = self._value(ev, "Uniqueid")
        bridge = self.bridges.get(self._value(ev, "BridgeUniqueid") or "")
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
                self.update_channel(channel, self._keep(channel, {"bridge": None}))
        self.emit(BridgeRemoved(bridge, reason=self._reason, event=self._event))

    def _bridgedestroy(self, ev: Event) -> None:
        self.remove_bridge(self._value(ev, "BridgeUniqueid") or "")

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
                self.update_channel(channel, self._keep(channel, {"bridge": target.uniqueid}))

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
        found = self._match(ev)
        if found is None:
            uniqueid, before = ev.get("Uniqueid"), None
        else:
            uniqueid, before = found.group(_UNIQUEID + 1), found.start()
        channel = self.channels.get(uniqueid or "")
        if channel is None:
            return
        cause = _cause(self._value(ev, "Cause"))
        at = self.now(ev, before)
        last = self._touch(ev, "", _NO_EXTRA, found) or channel
        last = evolve(last, {"hangup_cause": cause, "raw": ev})
        self.remove_channel(last, at)

    def remove_channel(self, channel: Channel, at: datetime) -> None:
        """A channel is gone: out of its bridge, its dials, its call (which may end)."""
        uniqueid = channel.uniqueid
        self.channels.pop(uniqueid, None)
        self._seen.pop(uniqueid, None)
        bridge = self.bridges.get(channel.bridge or "") if channel.bridge else None
        if bridge is not None and uniqueid in bridge.channels:
            self.set_bridge_channels(
                bridge, tuple(c for c in bridge.channels if c != uniqueid), bridge.raw or Event()
            )
        if (
            self.parked
            or self.conferences
            or (self.queues and any(q.callers for q in self.queues.values()))
        ):
            self.forget_feature_channel(uniqueid)
        if self.emitting:
            self._out.append(
                make(
                    ChannelRemoved,
                    {"channel": channel, "reason": self._reason, "event": self._event},
                )
            )
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
        if self.emitting:
            self._out.append(
                make(
                    CallEnded,
                    {"call": call, "record": record, "reason": self._reason, "event": self._event},
                )
            )

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
