"""A simulated Asterisk 22 with Local channels: the channel model behind FakeAsterisk.

`SimPBX` keeps channels, bridges, a small dialplan and queues, runs
dialplan applications on a simulated clock, and hands every AMI event it
produces to a sink, in the order and with the headers a real Asterisk 22
writes them (``shared/fixtures/asterisk-22``: ``originate_async``,
``dial_bridge``, ``queue``, ``userevent``, ``status``...). It does no I/O:
``ami_async.testing.FakeAsterisk`` answers the actions and writes the events.

Real Asterisk is multi-threaded, so events of different types (CEL, Cdr,
DeviceStateChange, QueueMemberStatus) and of different channels interleave
differently from one call to the next; the simulation picks one order, that
of ``originate_async.bin`` where it applies.
"""

from __future__ import annotations

import asyncio
import logging
import re

from .._compat import timeout as _timeout
from ._pbx_local import _PbxLocal
from ._pbx_model import (
    _LOCAL,
    _REASON_ANSWERED,
    _REASON_FAILED,
    NORMAL_CLEARING,
    Headers,
    OriginateRequest,
    OriginateResult,
    SimChannel,
    _Dialing,
    _parse_caller_id,
    cause_text,
)
from ._pbx_transfer import TransferError

__all__ = ["SimPBX", "TransferError"]

logger = logging.getLogger("ami_async.testing")


class SimPBX(_PbxLocal):
    """Channels, bridges, dialplan, queues and their events, on a simulated clock.

    ``time_scale`` is real seconds per simulated second (``0.05``: ``Wait(1)``
    takes 50 ms); timestamps, durations and Uniqueids use the simulated clock.
    ``cel=False`` / ``cdr=False`` leave out the CEL / Cdr events. ``lab=False``
    starts with an empty dialplan and no queues instead of the recordings'
    ``[test]`` context (`LAB_DIALPLAN`) and queues ``support`` (Alice,
    ``Local/500@test``, paused) and ``sales`` (Bob, ``Local/100@test``)::

        pbx.add_extension("test", "123", "Answer")          # priority 1
        pbx.add_extension("test", "123", "Dial", "Local/100@test,20")
        pbx.dialplan.set("test", "124", "Answer()", "MyApp(x)", "Hangup(17)")

        async def my_app(pbx: SimPBX, channel: SimChannel, data: str) -> int:
            await pbx.wait(channel, 1.5)                     # simulated seconds
            pbx.set_variable(channel, "RESULT", data)        # a VarSet event
            return 0                                         # < 0 hangs up

        pbx.add_application("MyApp", my_app)
        await pbx.wait_idle()                                # every call ended

    Applications: Answer, Wait, Hangup, Set, NoOp, UserEvent, Playback,
    MusicOnHold, Goto, Ringing, Busy, Congestion, Dial and Queue (to Local
    channels), plus those added. Dialplan data may use ``${VAR}``.
    """

    # -- originate ---------------------------------------------------------------------

    def originate(self, request: OriginateRequest) -> asyncio.Future[OriginateResult]:
        """Place a call; the future resolves once it is answered or has failed.

        Events start at once (call it after writing the action's Response); an
        async request also gets its OriginateResponse event.
        """
        loop = asyncio.get_running_loop()
        result: asyncio.Future[OriginateResult] = loop.create_future()
        local = _LOCAL.fullmatch(request.channel.strip())
        if local is None:
            self._originate_response(request, None, _REASON_FAILED)
            result.set_result(OriginateResult(False, _REASON_FAILED))
            return result
        exten, context = local.group(1), local.group(2) or "default"
        one, two = self._new_local_pair(
            exten, context, uniqueids=(request.channel_id, request.other_channel_id)
        )
        number, name = _parse_caller_id(request.caller_id)
        for channel in (one, two):
            channel.account_code = request.account
        exists = self.dialplan.exists(context, exten)
        first = self.dialplan.lookup(context, exten, 1)
        if exists and first is not None and first[0].lower() == "answer":
            # originate_async.bin: the CEL of the ;2 answering comes before its Newchannel.
            two._cel_answered = True
            self._cel(two, "ANSWER", app="Answer", appdata="", caller=(number, name))
        self._announce_pair(one, two)
        self._set_last_app(one, "AppDial2", "(Outgoing Line)")
        self._newexten(one)
        if not exists:
            self._local_call_failed(one, two)
            self._originate_response(request, None, _REASON_FAILED)
            self._settle()
            self._flush_failed_cel(one)
            result.set_result(OriginateResult(False, _REASON_FAILED))
            self._check_idle()
            return result
        for key, value in reversed(request.variables):
            self._var_set(one, key, value)
        if request.caller_id:
            one.caller_num, one.caller_name, one.ani = number, name, number
            self._channel_event(
                "NewCallerid", one, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
            )
            one.connected_num, one.connected_name = number, name
            self._channel_event("NewConnectedLine", one)
        for key, value in request.variables:
            self._var_set(two, key, value)
        if request.caller_id:
            two.caller_num, two.caller_name = number, name
            two.connected_num, two.connected_name = number, name
            self._channel_event(
                "NewCallerid", two, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
            )
            self._channel_event("NewConnectedLine", two)
        self._local_bridge(one, two, optimize=local.group(3) is None)
        one._dialed_as = f"{exten}@{context}"
        timer: list[asyncio.Task[None]] = []

        def stop_timer() -> None:
            for task in timer:
                if task is not asyncio.current_task():
                    task.cancel()

        def answered(channel: SimChannel) -> None:
            stop_timer()
            self._dial_end(None, channel, "ANSWER")
            self._flush_members()
            self._originate_response(request, channel, _REASON_ANSWERED)
            if not result.done():
                result.set_result(OriginateResult(True, _REASON_ANSWERED, channel))
            channel._cel_answered = True
            self._cel(channel, "ANSWER")
            if request.application:
                self._spawn(self._outgoing_app(channel, request.application, request.data), channel)
            else:
                channel.context = request.context or channel.context
                channel.exten = request.exten or channel.exten
                channel.priority = request.priority
                self._start_pbx(channel)

        def failed(channel: SimChannel, reason: int, status: str) -> None:
            stop_timer()
            self._dial_end(None, channel, status)
            self._originate_response(request, None, reason)
            if not result.done():
                result.set_result(OriginateResult(False, reason))

        def ringing(channel: SimChannel) -> None:
            self._dial_state(None, channel)

        one._dialing = _Dialing(answered, failed, ringing, cel_answer=False)
        self._dial_begin(None, one, f"{exten}@{context}")
        self._start_pbx(two)
        timer.append(self._spawn(self._originate_timeout(one, request.timeout)))
        return result

    async def _originate_timeout(self, channel: SimChannel, seconds: float) -> None:
        await self.sleep(seconds)
        dialing, channel._dialing = channel._dialing, None
        if dialing is None or not channel.alive:
            return
        dialing.failed(channel, channel._control, "NOANSWER")
        self._hangup_pair(channel, 0)

    def _local_call_failed(self, one: SimChannel, two: SimChannel) -> None:
        """chan_local cannot call a missing extension: ;2 goes, then ;1 (originate_fail_async)."""
        for channel in (two, one):
            channel.alive = False
            if channel._cdr is not None:
                channel._cdr.disposition = "FAILED"
        self._channel_event("Hangup", two, ("Cause", "0"), ("Cause-txt", cause_text(0)))
        self._cel(two, "HANGUP", extra='{"hangupcause":0,"hangupsource":"","dialstatus":""}')
        self._cel(two, "CHAN_END")
        self._emit_cdr(two)
        self._channel_event("Hangup", one, ("Cause", "0"), ("Cause-txt", cause_text(0)))
        for channel in (two, one):
            del self.channels[channel.name]
            self._device_changed(channel.device)

    def _flush_failed_cel(self, one: SimChannel) -> None:
        self._cel(one, "HANGUP", extra='{"hangupcause":0,"hangupsource":"","dialstatus":""}')
        self._cel(one, "CHAN_END")
        if not any(c.linkedid == one.linkedid for c in self.channels.values()):
            self._cel(one, "LINKEDID_END")
            self._linkedid_age.pop(one.linkedid, None)
        self._emit_cdr(one)

    def _originate_response(
        self, request: OriginateRequest, channel: SimChannel | None, reason: int
    ) -> None:
        if not request.response_event:
            return
        headers: Headers = []
        if request.action_id:
            headers.append(("ActionID", request.action_id))
        headers.append(("Response", "Success" if channel is not None else "Failure"))
        headers.append(("Channel", channel.name if channel is not None else request.channel))
        if request.application:
            headers += [("Application", request.application), ("Data", request.data)]
        else:
            headers += [("Context", request.context), ("Exten", request.exten)]
        headers += [
            ("Reason", str(reason)),
            ("Uniqueid", channel.uniqueid if channel is not None else "<unknown>"),
            ("CallerIDNum", (channel.caller_num if channel else "") or "<unknown>"),
            ("CallerIDName", (channel.caller_name if channel else "") or "<unknown>"),
        ]
        self._emit("OriginateResponse", "call,all", headers)

    def _dial_begin(self, caller: SimChannel | None, callee: SimChannel, dialstring: str) -> None:
        parts: list[Headers] = [] if caller is None else [caller.snapshot()]
        self._emit(
            "DialBegin", "call,all", *parts, callee.snapshot("Dest"), [("DialString", dialstring)]
        )

    def _dial_state(self, caller: SimChannel | None, callee: SimChannel) -> None:
        parts: list[Headers] = [] if caller is None else [caller.snapshot()]
        self._emit(
            "DialState", "call,all", *parts, callee.snapshot("Dest"), [("DialStatus", "RINGING")]
        )

    def _dial_end(self, caller: SimChannel | None, callee: SimChannel, status: str) -> None:
        parts: list[Headers] = [] if caller is None else [caller.snapshot()]
        self._emit("DialEnd", "call,all", *parts, callee.snapshot("Dest"), [("DialStatus", status)])

    # -- actions on channels -----------------------------------------------------------

    def soft_hangup(self, channel: SimChannel) -> None:
        """``channel request hangup``: SoftHangupRequest, then the channel hangs up."""
        self._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
        self._hangup_pair(channel, channel.hangupcause or NORMAL_CLEARING)

    def shut_down(self) -> None:
        """Asterisk stopping with calls up: `SoftHangupRequest` (Cause 4, AST_SOFTHANGUP_SHUTDOWN)
        on every channel, then each hangs up with cause 0 (restart_live_call.bin).
        """
        live = [channel for channel in self.channels.values() if channel.alive]
        for channel in live:
            self._channel_event("SoftHangupRequest", channel, ("Cause", "4"))
        for channel in live:
            self._hangup_pair(channel, 0)

    def redirect(self, channel: SimChannel, context: str, exten: str, priority: int = 1) -> None:
        """Send a channel to ``exten@context`` at ``priority`` (ast_async_goto).

        A channel in a bridge leaves it for there; the other party of a two-party
        bridge is put out of it (a Dial caller's Dial returns, a callee hangs up).
        `redirect_many` moves both parties at once (Redirect with ExtraChannel).
        """
        self.redirect_many([(channel, context, exten, priority)])

    def set_variable(self, channel: SimChannel | None, name: str, value: str) -> None:
        """Setvar: a channel variable (VarSet with the channel) or a global (Channel: none)."""
        if re.fullmatch(r"FEATUREMAP\(.*\)", name, re.IGNORECASE):
            if channel is not None:  # a feature code: no VarSet (attended_transfer.bin)
                channel.variables[name] = value
            return
        database = re.fullmatch(r"DB\((.+)\)", name)
        if database is not None:
            self.astdb["/" + database.group(1).strip("/")] = value
            return
        func = re.fullmatch(r"GLOBAL\((.*)\)", name)
        if channel is None or func is not None:
            key = func.group(1) if func is not None else name
            self.global_variables[key] = value
            self._emit(
                "VarSet",
                "dialplan,all",
                [("Channel", "none"), ("Uniqueid", "none"), ("Variable", key), ("Value", value)],
            )
            return
        caller = re.fullmatch(r"CALLERID\((num|name|all)\)", name, re.IGNORECASE)
        if caller is not None:
            part = caller.group(1).lower()
            if part == "num":
                channel.caller_num = value
            elif part == "name":
                channel.caller_name = value
            else:
                channel.caller_num, channel.caller_name = _parse_caller_id(value)
            self._channel_event(
                "NewCallerid",
                channel,
                ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"),
            )
            return
        self._var_set(channel, name, value)

    # -- lifecycle -------------------------------------------------------------------

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no channel is left and nothing runs (TimeoutError after ``timeout``)."""
        self._idle = asyncio.Event()
        self._check_idle()
        try:
            # Not asyncio.wait_for: on 3.10 and 3.11 it can swallow a cancel.
            async with _timeout(timeout):
                await self._idle.wait()
        except asyncio.TimeoutError:
            names = list(self.channels)
            raise TimeoutError(f"simulated PBX still busy after {timeout} s: {names}") from None
        finally:
            self._idle = None

    async def close(self) -> None:
        """Stop every application; channels vanish without events."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in self.channels.values():
            channel.alive = False
        self.channels.clear()
