"""The simulated PBX's Dial() and Queue() applications."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._pbx_model import (
    _ANSWERED_ELSEWHERE,
    _DIAL_VARIABLES,
    _LOCAL,
    _REASON_RINGING,
    DIAL_DISPOSITION,
    NORMAL_CLEARING,
    SimChannel,
    _Dialing,
    _split_args,
)

if TYPE_CHECKING:
    from ._pbx import SimPBX


logger = logging.getLogger("ami_async.testing")

_PRESENTATION = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")


def _callee_pair(
    pbx: SimPBX, caller: SimChannel, target: str, app: str
) -> tuple[SimChannel, SimChannel, str] | None:
    """Dial()/Queue() call a Local target: the pair and its dial string, or None."""
    local = _LOCAL.fullmatch(target)
    if local is None:
        return None
    exten, context = local.group(1), local.group(2) or "default"
    one, two = pbx._new_local_pair(exten, context, linkedid=caller.linkedid)
    pbx._announce_pair(one, two)
    dialstring = f"{exten}@{context}"
    if not pbx.dialplan.exists(context, exten):
        pbx._local_call_failed(one, two)
        pbx._settle()
        pbx._flush_failed_cel(one)
        return None
    one._cdr = None  # its CDR is the caller's (dial_bridge.bin has none for it)
    if app == "AppDial":
        pbx._var_set(one, "DIALEDPEERNUMBER", dialstring)
        one.context, one.exten = caller.context, caller.exten
    # app_dial: the callee's caller id is the dialing exten, its connected line the
    # caller's caller id; chan_local gives the ;2 the mirror image (blind_transfer.bin).
    one.caller_num, one.caller_name = caller.exten, caller.caller_name
    one.connected_num, one.connected_name = caller.caller_num, caller.caller_name
    pbx._set_last_app(one, app, "(Outgoing Line)")
    pbx._newexten(one)
    pbx._channel_event("NewCallerid", one, _PRESENTATION)
    if one.connected_num:
        pbx._channel_event("NewConnectedLine", one)
    if app != "AppDial":
        pbx._var_set(one, "DIALEDPEERNUMBER", dialstring)
    pbx._var_set(two, "DIALEDPEERNUMBER", dialstring)
    two.caller_num, two.caller_name = one.connected_num, one.connected_name
    if two.caller_num:
        pbx._channel_event("NewCallerid", two, _PRESENTATION)
    two.connected_num, two.connected_name = one.caller_num, one.caller_name
    pbx._channel_event("NewConnectedLine", two)
    pbx._local_bridge(one, two, optimize=local.group(3) is None)
    one._dialed_as = dialstring
    return one, two, dialstring


class _Call:
    """One Dial() or Queue() attempt from a caller to its callees."""

    def __init__(self, pbx: SimPBX, caller: SimChannel) -> None:
        self.pbx = pbx
        self.caller = caller
        self.callees: list[SimChannel] = []
        self.winner: SimChannel | None = None
        self.status = "NOANSWER"
        loop = asyncio.get_running_loop()
        self.decided: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[int] = loop.create_future()
        self.on_answer: Callable[[SimChannel], None] = lambda callee: None
        self.started = pbx.now()
        self.rang: float | None = None

    def ring(self, callee: SimChannel, two: SimChannel, dialstring: str) -> None:
        self.callees.append(callee)
        callee._dialing = _Dialing(self._answered, self._failed, self._ringing)
        cdr = self.caller._cdr
        if cdr is not None and not cdr.destination_channel:
            cdr.destination_channel = callee.name
        self.pbx._dial_begin(self.caller, callee, dialstring)
        self.pbx._start_pbx(two)

    def _ringing(self, callee: SimChannel) -> None:
        """The callee rings: Dial passes it on to its caller (dial_noanswer.bin)."""
        pbx, caller = self.pbx, self.caller
        pbx._control(caller, _REASON_RINGING)
        if self.rang is None:
            self.rang = pbx.now()
            ring = self.rang - self.started
            pbx._var_set(caller, "RINGTIME", str(int(ring)))
            pbx._var_set(caller, "RINGTIME_MS", str(int(ring * 1000)))
        pbx._dial_state(caller, callee)

    def _answered(self, callee: SimChannel) -> None:
        if self.winner is not None or not self.caller.alive:
            return
        self.winner = callee
        self.on_answer(callee)
        if not self.decided.done():
            self.decided.set_result(None)

    def _failed(self, callee: SimChannel, reason: int, status: str) -> None:
        if callee in self.callees:
            self.callees.remove(callee)
            self.status = status
            self.pbx._dial_end(self.caller, callee, status)
        if not self.callees and self.winner is None and not self.decided.done():
            self.decided.set_result(None)

    def cancel(self, status: str = "CANCEL", cause: int = 0) -> None:
        """Stop ringing the callees that did not answer."""
        for callee in list(self.callees):
            if callee is self.winner or not callee.alive:
                continue
            self.callees.remove(callee)
            callee._dialing = None
            self.pbx._dial_end(self.caller, callee, status)
            self.pbx._hangup_pair(callee, cause)

    def bridge(self, callee: SimChannel, *, clear_exten: bool) -> None:
        pbx, caller = self.pbx, self.caller
        if caller._cdr is not None:
            caller._cdr.destination_channel = callee.name
        bridge = pbx._new_bridge()
        if clear_exten:
            callee.exten = ""
            pbx._newexten(callee)
        pbx._enter_bridge(bridge, callee)
        pbx._enter_bridge(bridge, caller)
        pbx._set_bridge_peers(bridge)

        def caller_out(cause: int) -> None:
            if not self.ended.done():
                self.ended.set_result(cause)

        caller._after_bridge = caller_out
        pbx._bridged(bridge)


async def _app_dial(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    args = _split_args(data)
    targets = [t for t in args[0].split("&") if t] if args else []
    timeout = float(args[1]) if len(args) > 1 and args[1] else None
    for name in _DIAL_VARIABLES:
        pbx._var_set(channel, name, "")
    call = _Call(pbx, channel)
    started = pbx.now()

    def answered(callee: SimChannel) -> None:
        pbx._var_set(channel, "DIALSTATUS", "ANSWER")
        pbx._var_set(channel, "DIALEDPEERNAME", callee.name)
        pbx._var_set(channel, "DIALEDPEERNUMBER", callee._dialed_as)
        pbx._flush_devices()
        pbx._flush_members()
        pbx._dial_end(channel, callee, "ANSWER")
        call.cancel("CANCEL", _ANSWERED_ELSEWHERE)
        pbx._answer(channel)
        call.bridge(callee, clear_exten=True)

    call.on_answer = answered
    for target in targets:
        pair = _callee_pair(pbx, channel, target, "AppDial")
        if pair is not None:
            call.ring(*pair)
    if not call.callees:
        pbx._var_set(channel, "DIALSTATUS", "CHANUNAVAIL")
        return 0
    channel._cleanups.append(call.cancel)
    outcome = await pbx._wait_for(channel, call.decided, timeout)
    if call.winner is None:
        status = {"timeout": "NOANSWER", "interrupt": "CANCEL"}.get(outcome, call.status)
        call.cancel(status, 0)
        with contextlib.suppress(ValueError):
            channel._cleanups.remove(call.cancel)
        pbx._var_set(channel, "DIALSTATUS", status)
        # The record of this Dial ends; the dialplan after it gets a new one (dial_busy.bin).
        pbx._close_cdr(channel, DIAL_DISPOSITION.get(status, "NO ANSWER"))
        return 0
    with contextlib.suppress(ValueError):
        channel._cleanups.remove(call.cancel)
    answered_at = call.winner.answered_at or pbx.now()
    outcome = await pbx._wait_for(channel, call.ended, None)
    channel._after_bridge = None
    if outcome == "interrupt":
        # Redirected out of the bridge: only DIALSTATUS, and the record of the Dial
        # ends (redirect_both_legs.bin).
        pbx._var_set(channel, "DIALSTATUS", "ANSWER")
        pbx._close_cdr(channel)
        return 0
    now = pbx.now()
    pbx._var_set(channel, "ANSWEREDTIME", str(int(now - answered_at)))
    pbx._var_set(channel, "ANSWEREDTIME_MS", str(int((now - answered_at) * 1000)))
    pbx._var_set(channel, "DIALEDTIME", str(int(now - started)))
    pbx._var_set(channel, "DIALEDTIME_MS", str(int((now - started) * 1000)))
    pbx._var_set(channel, "DIALSTATUS", "ANSWER")
    channel.hangupcause = call.ended.result() if call.ended.done() else NORMAL_CLEARING
    pbx._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
    return -1
