"""FakeAsterisk's built-in actions on calls: Originate, channel lists, Hangup, Redirect, queues."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import time
from typing import TYPE_CHECKING

from ..message import Message
from ._actions import _NORMAL_CLEARING
from ._agi_sim import agi_action
from ._pbx_actions import _FlowActions
from ._pbx_model import OriginateRequest, SimChannel, SimQueue, SimQueueMember, separate_args
from ._session import FakeSession
from ._wire import _FAILING_EXTENS, _header, _is_true, with_action_id

if TYPE_CHECKING:
    from ._server import FakeAsterisk


logger = logging.getLogger("ami_async.testing")


def _parse_callerid(text: str) -> tuple[str, str]:
    """``(number, name)`` of a CallerID such as ``"Lab" <1000>``; ``<unknown>`` if absent."""
    text = text.strip()
    if not text:
        return "<unknown>", "<unknown>"
    match = re.fullmatch(r'"?([^"<]*?)"?\s*<([^>]*)>', text)
    if match:
        return match.group(2).strip() or "<unknown>", match.group(1).strip() or "<unknown>"
    if re.fullmatch(r"[0-9*#+]+", text):
        return text, "<unknown>"
    return "<unknown>", text


def _variables(action: Message) -> list[tuple[str, str]]:
    """Originate's `Variable:` headers as manager.c `man_do_variable_value` reads them.

    Each header (leading blanks skipped) is split like application arguments
    (`separate_args`: `V=a\\,b` is `a,b`); each item is `name=value`, split at
    its first `=`; an item without `=` or with an empty name is ignored. Names
    are not trimmed (`Variable: A=1, B=2` sets ` B`, as Asterisk does).
    """
    pairs = []
    for header in action.get_all("Variable"):
        for item in separate_args(header.lstrip(" \t")):
            name, sep, value = item.partition("=")
            if sep and name:
                pairs.append((name, value))
    return pairs


class _Builtins(_FlowActions):
    """Every built-in action handler: `_ActionsBase`'s, `_FlowActions`' and those on calls."""

    def __init__(self, server: FakeAsterisk) -> None:
        super().__init__(server)
        self.actions.update(
            {
                "userevent": self.userevent,
                "originate": self.originate,
                "coreshowchannels": self.coreshowchannels,
                "status": self.status,
                "hangup": self.hangup,
                "redirect": self.redirect,
                "queuestatus": self.queuestatus,
                "queuesummary": self.queuesummary,
                "agi": functools.partial(agi_action, self),
            }
        )

    # -- events and calls --------------------------------------------------------------

    async def userevent(self, session: FakeSession, action: Message) -> None:
        await self.ok(session, action, "Event Sent")
        body = [(k, v) for k, v in action.headers if k.lower() not in ("action", "userevent")]
        event = [
            ("Event", "UserEvent"),
            ("Privilege", "user,all"),
            ("UserEvent", _header(action, "UserEvent")),
            *body,
        ]
        await self.server._broadcast(event)

    async def originate(self, session: FakeSession, action: Message) -> None:
        channel = _header(action, "Channel")
        if not channel:
            await self.error(session, action, "Channel not specified")
            return
        sim = self.server._sim
        if sim is None:
            await self.originate_without_pbx(session, action, channel)
            return
        # The checks of manager.c action_originate, in its order.
        priority_text = _header(action, "Priority")
        priority = 1
        if priority_text:
            try:
                priority = int(priority_text)
            except ValueError:
                await self.error(session, action, "Invalid priority")
                return
        timeout_text = _header(action, "Timeout")
        timeout_ms = 30000
        if timeout_text:
            try:
                timeout_ms = int(timeout_text)
            except ValueError:
                await self.error(session, action, "Invalid timeout")
                return
        if "/" not in channel:
            await self.error(session, action, "Invalid channel")
            return
        context, exten = _header(action, "Context"), _header(action, "Exten")
        if (
            priority_text
            and context
            and exten
            and not sim.dialplan.exists(context, exten, priority)
        ):
            await self.error(session, action, "Extension does not exist.")
            return
        request = OriginateRequest(
            channel=channel,
            context=context,
            exten=exten,
            priority=priority,
            application=_header(action, "Application"),
            data=_header(action, "Data"),
            variables=_variables(action),
            caller_id=_header(action, "CallerID"),
            account=_header(action, "Account"),
            timeout=max(timeout_ms, 0) / 1000,
            channel_id=_header(action, "ChannelId"),
            other_channel_id=_header(action, "OtherChannelId"),
            action_id=_header(action, "ActionID"),
            response_event=_is_true(_header(action, "Async")),
        )
        if request.response_event:
            await self.ok(session, action, "Originate successfully queued")
            sim.originate(request)
            return
        # A synchronous Originate holds the session until the call is answered or
        # fails; its events wait and follow the Response (originate_sync.bin).
        session._defer_events()
        try:
            result = await sim.originate(request)
            if result.success:
                await self.ok(session, action, "Originate successfully queued")
            else:
                await self.error(session, action, "Originate failed")
        finally:
            session._release_events()

    async def originate_without_pbx(
        self, session: FakeSession, action: Message, channel: str
    ) -> None:
        exten = _header(action, "Exten")
        local = re.match(r"(?i)local/([^@]*)@", channel)
        fails = exten in _FAILING_EXTENS or bool(local and local.group(1) in _FAILING_EXTENS)
        if not fails:
            self.calls += 1
        if not _is_true(_header(action, "Async")):
            # A synchronous Originate answers once the call is up and sends no event.
            if fails:
                await self.error(session, action, "Originate failed")
            else:
                await self.ok(session, action, "Originate successfully queued")
            return
        await self.ok(session, action, "Originate successfully queued")
        await self.server._broadcast(self.originate_response(action, channel, fails))

    def originate_response(
        self, action: Message, channel: str, fails: bool
    ) -> list[tuple[str, str]]:
        """The ``OriginateResponse`` event (asterisk-22/originate_async.bin)."""
        if fails:
            name, uniqueid = channel, "<unknown>"
        else:
            suffix = ";1" if channel.lower().startswith("local/") else ""
            name = f"{channel}-{self.calls:08x}{suffix}"
            uniqueid = _header(action, "ChannelId") or f"{int(self.started)}.{self.calls}"
        event = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
        if _header(action, "ActionID"):
            event.append(("ActionID", _header(action, "ActionID")))
        event += [("Response", "Failure" if fails else "Success"), ("Channel", name)]
        if _header(action, "Application"):
            event += [("Application", _header(action, "Application"))]
            event += [("Data", _header(action, "Data"))]
        else:
            event += [("Context", _header(action, "Context")), ("Exten", _header(action, "Exten"))]
        number, caller = _parse_callerid(_header(action, "CallerID"))
        event += [("Reason", "0" if fails else "4"), ("Uniqueid", uniqueid)]
        event += [("CallerIDNum", number), ("CallerIDName", caller)]
        return event

    async def coreshowchannels(self, session: FakeSession, action: Message) -> None:
        now = self.server._sim.now() if self.server._sim is not None else time.time()
        items = []
        for channel in self.channels:
            seconds = max(0, int(now - channel.created))
            duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            item = [
                ("Event", "CoreShowChannel"),
                *channel.snapshot(),
                ("Application", channel.appl),
                ("ApplicationData", channel.data),
                ("Duration", duration),
                ("BridgeId", channel.bridge_id),
            ]
            items.append(with_action_id(action, item))
        await session.send(
            self.list_start(action, "Channels will follow"),
            *items,
            self.list_complete(action, "CoreShowChannelsComplete", len(items)),
        )

    async def status(self, session: FakeSession, action: Message) -> None:
        name = _header(action, "Channel")
        if name:
            found = self.find(name)
            if found is None:
                await self.error(session, action, "No such channel")
                return
            channels = [found]
        else:
            channels = self.channels
        wanted = [v.strip() for v in _header(action, "Variables").split(",") if v.strip()]
        every = _is_true(_header(action, "AllVariables"))
        items = [self.status_item(action, channel, wanted, every) for channel in channels]
        count = str(len(items))
        await session.send(
            self.list_start(action, "Channel status will follow"),
            *items,
            self.list_complete(action, "StatusComplete", len(items), ("Items", count)),
        )

    def status_item(
        self, action: Message, channel: SimChannel, wanted: list[str], every: bool
    ) -> list[tuple[str, str]]:
        """One ``Status`` event (asterisk-22/status.bin; ``Privilege: Call`` as written)."""
        sim = self.server.pbx
        item = [
            ("Event", "Status"),
            ("Privilege", "Call"),
            *channel.snapshot(),
            ("Type", "Local" if channel.half else "Sim"),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", channel.connected_num or "<unknown>"),
            ("EffectiveConnectedLineName", channel.connected_name or "<unknown>"),
            ("TimeToHangup", "0"),
            ("BridgeID", channel.bridge_id),
            ("Application", channel.appl),
            ("Data", channel.data),
            ("Nativeformats", "(slin)"),
            ("Readformat", "slin"),
            ("Readtrans", ""),
            ("Writeformat", "slin"),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(max(0, int(sim.now() - channel.created)))),
        ]
        for variable in wanted:
            value = sim.get_variable(channel, variable)
            # An unset variable prints as "(null)" (status.bin: Variable: FOO=(null)).
            item.append(("Variable", f"{variable}={'(null)' if value is None else value}"))
        if every:
            item += [("Variable", f"{k}={v}") for k, v in channel.variables.items()]
        return self.action_id_last(action, item)

    async def hangup(self, session: FakeSession, action: Message) -> None:
        name = _header(action, "Channel")
        if not name:
            await self.error(session, action, "No channel specified")
            return
        sim = self.server._sim
        cause_text = _header(action, "Cause")
        cause = 0
        if cause_text:
            # manager.c: an invalid cause hangs up all the same, without a cause.
            with contextlib.suppress(ValueError):
                cause = int(cause_text)
            cause = cause if 0 <= cause <= 127 else 0
        if len(name) > 1 and name.startswith("/") and name.endswith("/"):
            await self.hangup_matching(session, action, name[1:-1], cause)
            return
        channel = self.find(name)
        if sim is None or channel is None:
            await self.error(session, action, "No such channel")
            return
        await self.ok(session, action, "Channel Hungup")
        sim.hangup(channel, cause or _NORMAL_CLEARING)

    async def hangup_matching(
        self, session: FakeSession, action: Message, pattern: str, cause: int
    ) -> None:
        """``Channel: /regex/``: hang up every match, listed as ChannelHungup events."""
        try:
            regex = re.compile(pattern)
        except re.error:
            await self.error(session, action, f"Regex compile failed on: {pattern}")
            return
        matches = [c for c in self.channels if regex.search(c.name)]
        items = [
            self.action_id_last(action, [("Event", "ChannelHungup"), ("Channel", c.name)])
            for c in matches
        ]
        await session.send(
            self.list_start(action, "Channels hung up will follow"),
            *items,
            self.list_complete(action, "ChannelsHungupListComplete", len(items)),
        )
        for channel in matches:
            self.server.pbx.hangup(channel, cause or _NORMAL_CLEARING)

    async def redirect(self, session: FakeSession, action: Message) -> None:
        """Redirect (manager.c action_redirect): its checks and texts, then ast_async_goto."""
        name, extra = _header(action, "Channel"), _header(action, "ExtraChannel")
        context, exten = _header(action, "Context"), _header(action, "Exten")
        priority_text = _header(action, "Priority")
        for value, missing in (
            (name, "Channel not specified"),
            (context, "Context not specified"),
            (exten, "Exten not specified"),
            (priority_text, "Priority not specified"),
        ):
            if not value:
                await self.error(session, action, missing)
                return
        try:
            priority = int(priority_text)
        except ValueError:
            priority = 0
        if priority < 1:
            await self.error(session, action, "Priority is invalid")
            return
        channel = self.find(name)
        if channel is None:
            await self.error(session, action, f"Channel does not exist: {name}")
            return
        other = self.find(extra) if extra else None
        if extra and other is None:
            await self.error(session, action, f"ExtraChannel does not exist: {extra}")
            return
        sim = self.server.pbx
        if other is None:
            await self.ok(session, action, "Redirect successful")
            sim.redirect(channel, context, exten, priority)
            return
        await self.ok(session, action, "Dual Redirect successful")
        sim.redirect_many(
            [
                (channel, context, exten, priority),
                (
                    other,
                    _header(action, "ExtraContext") or context,
                    _header(action, "ExtraExten") or exten,
                    int(_header(action, "ExtraPriority") or priority),
                ),
            ]
        )

    # -- queues ----------------------------------------------------------------------

    def queues(self, action: Message) -> list[SimQueue]:
        sim = self.server._sim
        if sim is None:
            return []
        name = _header(action, "Queue")
        return [q for q in sim.queues.values() if not name or q.name == name]

    async def queuestatus(self, session: FakeSession, action: Message) -> None:
        """QueueStatus (app_queue.c manager_queues_status; queue.bin): params, members, callers."""
        now = self.server.pbx.now() if self.server._sim is not None else time.time()
        items: list[list[tuple[str, str]]] = []
        for queue in self.queues(action):
            items.append(self.action_id_last(action, _queue_params(queue)))
            for member in queue.members:
                items.append(self.action_id_last(action, _queue_member(queue, member)))
            for position, caller in enumerate(queue.callers, 1):
                waited = int(now - queue.joined.get(caller, now))
                entry = _queue_entry(queue, position, caller, waited)
                items.append(self.action_id_last(action, entry))
        await session.send(
            self.list_start(action, "Queue status will follow"),
            *items,
            self.list_complete(action, "QueueStatusComplete", len(items)),
        )

    async def queuesummary(self, session: FakeSession, action: Message) -> None:
        """QueueSummary (queue.bin); an unknown queue gives an empty list."""
        now = self.server.pbx.now() if self.server._sim is not None else time.time()
        items = []
        for queue in self.queues(action):
            logged_in = [m for m in queue.members if m.status not in (4, 5)]  # INVALID, UNAVAIL.
            available = [m for m in logged_in if not m.paused and m.status == 1]  # NOT_INUSE
            longest = max((int(now - t) for t in queue.joined.values()), default=0)
            summary = [
                ("Event", "QueueSummary"),
                ("Queue", queue.name),
                ("LoggedIn", str(len(logged_in))),
                ("Available", str(len(available))),
                ("Callers", str(len(queue.callers))),
                ("HoldTime", str(queue.holdtime)),
                ("TalkTime", str(queue.talktime)),
                ("LongestHoldTime", str(longest)),
            ]
            items.append(self.action_id_last(action, summary))
        await session.send(
            self.list_start(action, "Queue summary will follow"),
            *items,
            self.list_complete(action, "QueueSummaryComplete", len(items)),
        )


def _queue_params(queue: SimQueue) -> list[tuple[str, str]]:
    return [
        ("Event", "QueueParams"),
        ("Queue", queue.name),
        ("Max", str(queue.max_callers)),
        ("Strategy", queue.strategy),
        ("Calls", str(len(queue.callers))),
        ("Holdtime", str(queue.holdtime)),
        ("TalkTime", str(queue.talktime)),
        ("Completed", str(queue.completed)),
        ("Abandoned", str(queue.abandoned)),
        ("ServiceLevel", str(queue.service_level)),
        ("ServicelevelPerf", "0.0"),
        ("ServicelevelPerf2", "0.0"),
        ("Weight", str(queue.weight)),
    ]


def _queue_member(queue: SimQueue, member: SimQueueMember) -> list[tuple[str, str]]:
    return [
        ("Event", "QueueMember"),
        ("Queue", queue.name),
        ("Name", member.name),
        ("Location", member.interface),
        ("StateInterface", member.state_interface),
        ("Membership", member.membership),
        ("Penalty", str(member.penalty)),
        ("CallsTaken", str(member.calls_taken)),
        ("LastCall", str(member.last_call)),
        ("LastPause", str(member.last_pause)),
        ("LoginTime", str(member.login_time)),
        ("InCall", "1" if member.in_call else "0"),
        ("Status", str(member.status)),
        ("Paused", "1" if member.paused else "0"),
        ("PausedReason", member.paused_reason),
        ("Wrapuptime", str(member.wrapuptime)),
    ]


def _queue_entry(
    queue: SimQueue, position: int, caller: SimChannel, waited: int
) -> list[tuple[str, str]]:
    # QueueEntry writes a missing caller ID as "unknown", without the angle brackets.
    return [
        ("Event", "QueueEntry"),
        ("Queue", queue.name),
        ("Position", str(position)),
        ("Channel", caller.name),
        ("Uniqueid", caller.uniqueid),
        ("CallerIDNum", caller.caller_num or "unknown"),
        ("CallerIDName", caller.caller_name or "unknown"),
        ("ConnectedLineNum", caller.connected_num or "unknown"),
        ("ConnectedLineName", caller.connected_name or "unknown"),
        ("Wait", str(waited)),
        ("Priority", "0"),
    ]
