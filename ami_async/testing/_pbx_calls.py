"""The simulated PBX's channel life: Local pairs, the dialplan runner, hangups, bridges."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, cast

from ._pbx_model import (
    _REASON_BUSY,
    _REASON_CONGESTION,
    _REASON_RINGING,
    DOWN,
    NORMAL_CLEARING,
    RING,
    RINGING,
    UP,
    Headers,
    SimChannel,
    _Bridge,
    _Cdr,
    _dial_status,
    cause_text,
)
from ._pbx_state import _PbxState

if TYPE_CHECKING:
    from ._pbx import SimPBX

logger = logging.getLogger("ami_async.testing")

_PRESENTATION = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")


class _PbxCalls(_PbxState):
    # -- channel life ------------------------------------------------------------------

    def _new_local_pair(
        self,
        exten: str,
        context: str,
        *,
        linkedid: str = "",
        uniqueids: tuple[str, str] = ("", ""),
    ) -> tuple[SimChannel, SimChannel]:
        """Allocate ``Local/exten@context-XXXXXXXX;1`` and ``;2`` (only CEL CHAN_START yet)."""
        base = f"Local/{exten}@{context}-{self._local_seq:08x}"
        self._local_seq += 1
        now = self.now()
        device = f"Local/{exten}@{context}"
        uid1 = uniqueids[0] or self._next_uniqueid()
        uid2 = uniqueids[1] or self._next_uniqueid()
        one = SimChannel(
            base + ";1", uid1, linkedid or uid1, context, exten, DOWN, now, half=1, device=device
        )
        two = SimChannel(
            base + ";2", uid2, linkedid or uid1, context, exten, RING, now, half=2, device=device
        )
        one.peer, two.peer = two, one
        if not linkedid:
            self._linkedid_age[uid1] = self._uniqueid_seq
        for channel in (one, two):
            channel._cdr = _Cdr(now)
            self.channels[channel.name] = channel
        self._cel(one, "CHAN_START", app="", appdata="")
        self._cel(two, "CHAN_START", app="", appdata="")
        return one, two

    def _announce_pair(self, one: SimChannel, two: SimChannel) -> None:
        self._channel_event("Newchannel", one)
        self._channel_event("Newchannel", two)

    def _local_bridge(self, one: SimChannel, two: SimChannel, optimize: bool) -> None:
        one._optimize = two._optimize = optimize
        self._emit(
            "LocalBridge",
            "call,all",
            one.snapshot("LocalOne"),
            two.snapshot("LocalTwo"),
            [("Context", two.context), ("Exten", two.exten)],
            [("LocalOptimization", "Yes" if optimize else "No")],
        )

    def _newexten(self, channel: SimChannel) -> None:
        channel._cep = (channel.context, channel.exten, channel.priority)
        self._channel_event(
            "Newexten",
            channel,
            ("Extension", channel.exten),
            ("Application", channel.appl),
            ("AppData", channel.data),
            privilege="dialplan,all",
        )
        if channel._pending_callerid and channel.pbx:
            # A caller id its Local peer passed on shows once it goes on (attended_transfer.bin).
            channel._pending_callerid = False
            self._channel_event("NewCallerid", channel, _PRESENTATION)

    def _set_state(self, channel: SimChannel, state: int, *, cel: bool = True) -> None:
        channel.state = state
        if state == UP and channel._answer_location is not None:
            channel.context, channel.exten = channel._answer_location
            channel._answer_location = None
        if state == UP and channel.answered_at is None:
            channel.answered_at = self.now()
            if channel._cdr is not None:
                channel._cdr.answer = channel.answered_at
        self._channel_event("Newstate", channel)
        if state == UP and cel and not channel._cel_answered:
            channel._cel_answered = True
            self._cel(channel, "ANSWER")
        self._device_changed(channel.device)

    def _answer(self, channel: SimChannel) -> None:
        """Answer a channel; a Local ``;2`` answers its ``;1`` and whoever dials it."""
        if channel.state == UP or not channel.alive:
            return
        peer = channel.peer
        ring_peer = channel.half == 2 and peer is not None and peer.alive and peer.state != UP
        self._set_state(channel, UP)
        if ring_peer and peer is not None:
            dialing, peer._dialing = peer._dialing, None
            self._set_state(peer, UP, cel=dialing is None or dialing.cel_answer)
            self._flush_devices()
            if dialing is not None:
                dialing.answered(peer)
        self._settle()

    def _control(self, channel: SimChannel, control: int) -> None:
        """A control frame (ringing, busy, congestion) from a Local ``;2`` reaches its ``;1``.

        Whoever dials that ``;1`` gives up on busy or congestion, and hangs it up.
        """
        channel._control = control
        peer = channel.peer
        if channel.half != 2 or peer is None or not peer.alive:
            return
        peer._control = control
        dialing = peer._dialing
        if control == _REASON_RINGING:
            if peer.state not in (UP, RINGING):
                self._set_state(peer, RINGING)
                if dialing is not None and dialing.ringing is not None:
                    dialing.ringing(peer)
            return
        if dialing is not None and control in (_REASON_BUSY, _REASON_CONGESTION):
            peer._dialing = None
            busy = control == _REASON_BUSY
            dialing.failed(peer, control, "BUSY" if busy else "CONGESTION")
            # The dialer hangs up its ;1 without a cause; the ;2 keeps its own (dial_busy.bin).
            self._hangup_pair(peer, 0)

    def _spawn(
        self, coro: Coroutine[Any, Any, None], channel: SimChannel | None = None
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if channel is not None:
            channel._task = task
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("simulated PBX task failed", exc_info=task.exception())
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and not self._tasks and not self.channels:
            self._idle.set()

    def _start_pbx(self, channel: SimChannel) -> None:
        self._spawn(self._pbx(channel), channel)

    async def _pbx(self, channel: SimChannel) -> None:
        """Run the dialplan from the channel's context, exten, priority (__ast_pbx_run)."""
        channel.pbx = True
        self.active_calls += 1
        self.calls_processed += 1
        try:
            while channel.alive:
                if channel._goto is not None:
                    channel.context, channel.exten, channel.priority = channel._goto
                    channel._goto = None
                    channel._interrupt.clear()
                step = self.dialplan.lookup(channel.context, channel.exten, channel.priority)
                if step is None:
                    break
                app, data = step[0], self._substitute(channel, step[1])
                self._set_last_app(channel, app, data)
                # Newexten comes when the channel's context, exten or priority changes, not
                # for an application run where an async goto put it (blind_transfer.bin).
                if channel._cep != (channel.context, channel.exten, channel.priority):
                    self._newexten(channel)
                result = await self._exec(channel, app, data)
                if channel._held is not None and channel.alive:
                    await channel._held  # in a bridge of the Bridge action, until it leaves
                if not channel.alive:
                    return
                self._settle()
                if channel._goto is not None:
                    continue
                if result < 0:
                    break
                channel.priority += 1
        finally:
            self.active_calls -= 1
        if channel.alive:
            channel.appl = channel.data = ""
            self._hangup_pair(channel, channel.hangupcause)

    async def _exec(self, channel: SimChannel, app: str, data: str) -> int:
        handler = self.applications.get(app.lower())
        if handler is None:
            logger.warning("simulated PBX: no application %r (%s)", app, channel.name)
            return -1
        result = await handler(cast("SimPBX", self), channel, data)  # the only subclass
        return int(result or 0)

    async def _outgoing_app(self, channel: SimChannel, app: str, data: str) -> None:
        """An Originate's Application runs on the ``;1`` without the dialplan."""
        saved = (channel.appl, channel.data)
        self._set_last_app(channel, app, data)
        await self._exec(channel, app, data)
        if channel.alive:
            channel.appl, channel.data = saved
            self._settle()
            self._hangup_pair(channel, channel.hangupcause)

    async def _wait_for(
        self, channel: SimChannel, future: asyncio.Future[Any] | None, seconds: float | None
    ) -> str:
        """``"done"`` (the future), ``"interrupt"`` (a Redirect) or ``"timeout"``."""
        if channel._goto is not None or not channel.alive:
            return "interrupt"
        interrupt = asyncio.ensure_future(channel._interrupt.wait())
        waiters: list[asyncio.Future[Any]] = [interrupt]
        if future is not None:
            waiters.append(future)
        try:
            timeout = None if seconds is None else max(0.0, seconds) * self.time_scale
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupt.cancel()
        if future is not None and future.done():
            return "done"
        if channel._goto is not None or channel._interrupt.is_set():
            return "interrupt"
        return "timeout"

    async def wait(self, channel: SimChannel, seconds: float | None) -> bool:
        """Let ``seconds`` of simulated time pass on a channel; False if a Redirect cut it short."""
        return await self._wait_for(channel, None, seconds) == "timeout"

    def _run_cleanups(self, channel: SimChannel) -> None:
        cleanups, channel._cleanups = channel._cleanups, []
        for cleanup in cleanups:
            cleanup()

    def _kill_task(self, channel: SimChannel) -> None:
        task, channel._task = channel._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _hangup_pair(self, first: SimChannel, cause: int) -> None:
        """``first`` hangs up; the other half of a Local channel goes with it.

        The order is that of originate_async.bin: Cdr, the peer's HangupRequest,
        CEL, each channel's Hangup, then the devices and queue members.
        """
        if not first.alive:
            return
        peer = first.peer
        second = peer if peer is not None and peer.alive else None
        requested = None
        if second is not None and second._bridge_app and second._bridge is not None:
            requested, second = second, None  # its application lets go (conference_three.bin)
        pair = [first] if second is None else [first, second]
        # A ;1 hung up while it is still dialed (hangup_causes.bin, Cause 21), or whose
        # Dial ended with its bridge (a transferee's, blind_transfer.bin), ends after its
        # ;2; one that ran Hangup() ends first (originate_async_channelid.bin).
        dialplan_end = first.pbx and first._bridge is None and not first.hangupsource
        ends = pair[::-1] if first.half == 1 and (first._dialing or dialplan_end) else pair
        for channel in pair:
            channel.alive = False
            self._kill_task(channel)
        first.hangupcause = cause
        self._run_cleanups(first)
        self._dial_failed(first, cause)
        self._emit_cdr(first)
        if second is not None:
            status = first.variables.get("DIALSTATUS")
            if first.half == 2 and status is not None:
                self._var_set(second, "CHANLOCALSTATUS", status)
            # A ;2 that set its own cause (Busy(), Hangup(17)) keeps it (dial_busy.bin).
            second.hangupcause = second.hangupcause or cause
            if second._bridge is not None and not second.hangupcause:
                second.hangupcause = NORMAL_CLEARING  # it leaves a bridge (bridge_action.bin)
            self._channel_event("HangupRequest", second, ("Cause", str(cause)))
            self._dial_failed(second, cause)
            # What the peer was doing stops now (MusicOnHoldStop in playback_moh.bin).
            self._run_cleanups(second)
            self._emit_cdr(second)
        for channel in ends:
            if channel.pbx:
                channel.appl = channel.data = ""
            if channel._bridge is not None:
                self._cel_bridge_exit(channel)
            extra = {
                "hangupcause": channel.hangupcause,
                "hangupsource": channel.hangupsource,
                "dialstatus": channel.variables.get("DIALSTATUS", ""),
            }
            self._cel(channel, "HANGUP", extra=json.dumps(extra, separators=(",", ":")))
            self._cel(channel, "CHAN_END")
            # The last channel of a Linkedid ends it; the halves of a Local channel can
            # have different ones once a bridge gave one an older one (bridge_action.bin).
            del self.channels[channel.name]
            if not any(c.linkedid == channel.linkedid for c in self.channels.values()):
                self._cel(channel, "LINKEDID_END")
                self._linkedid_age.pop(channel.linkedid, None)
        bridges: list[_Bridge] = []
        for channel in pair:
            if channel is second and channel.pbx and channel._bridge is None:
                self._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
            bridge = channel._bridge
            if bridge is not None:
                self._leave_bridge(channel, cel=False)
                bridges.append(bridge)
            self._channel_event(
                "Hangup",
                channel,
                ("Cause", str(channel.hangupcause)),
                ("Cause-txt", cause_text(channel.hangupcause)),
            )
            if channel._pending_callerid:
                channel._pending_callerid = False
                self._channel_event("NewCallerid", channel, _PRESENTATION)
        if requested is not None:
            requested._hangup_requested = True
            self._channel_event("HangupRequest", requested, ("Cause", str(cause)))
            requested._interrupt.set()
        ending = {c for b in bridges if b.kind == "basic" for c in b.channels}
        ending |= {c.peer for c in ending if c.peer is not None}
        for channel in pair:
            self._device_changed(channel.device, ending=ending)
        self._settle()
        for bridge in bridges:
            self._bridge_dissolve(bridge, cause)
        self._check_idle()

    def _dial_failed(self, channel: SimChannel, cause: int) -> None:
        """Whoever dials the channel learns it hung up before answering.

        The reason is that of a busy or congestion indication, else 0: a hangup
        gives Reason 0 even after ringing (dial_noanswer.bin, fastagi_hangup_ami.bin).
        """
        dialing, channel._dialing = channel._dialing, None
        if dialing is not None:
            control = channel._control
            reason = control if control in (_REASON_BUSY, _REASON_CONGESTION) else 0
            dialing.failed(channel, reason, _dial_status(cause))

    # -- bridges ---------------------------------------------------------------------

    def _bridge_headers(self, bridge: _Bridge) -> Headers:
        return [
            ("BridgeUniqueid", bridge.uniqueid),
            ("BridgeType", bridge.kind),
            ("BridgeTechnology", bridge.technology),
            ("BridgeCreator", bridge.creator),
            ("BridgeName", bridge.name),
            ("BridgeNumChannels", str(len(bridge.hidden) + len(bridge.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]

    def _bridge_extra(self, bridge: _Bridge) -> str:
        info = {"bridge_id": bridge.uniqueid, "bridge_technology": bridge.technology}
        return json.dumps(info, separators=(",", ":"))

    def _bridged(self, bridge: _Bridge) -> None:
        """A Dial's two-party bridge is complete (`SimPBX` looks for Local optimization)."""

    def _new_bridge(
        self,
        kind: str = "basic",
        technology: str = "simple_bridge",
        creator: str = "<unknown>",
        name: str = "<unknown>",
    ) -> _Bridge:
        bridge = _Bridge(str(uuid.uuid4()), [], kind, technology, creator, name)
        self._emit("BridgeCreate", "call,all", self._bridge_headers(bridge))
        return bridge

    def _enter_bridge(self, bridge: _Bridge, channel: SimChannel, swap: str = "") -> None:
        peers = list(bridge.channels)
        bridge.channels.append(channel)
        channel._bridge = bridge
        # Bridged channels share the oldest Linkedid among them (bridge_action.bin); a
        # conference's members keep their own (conference_three.bin).
        if bridge.kind == "basic":
            oldest = min(
                (c.linkedid for c in bridge.channels),
                key=lambda linkedid: self._linkedid_age.get(linkedid, -1),
            )
            for member in bridge.channels:
                member.linkedid = oldest
        swapped = [("SwapUniqueid", swap)] if swap else []
        self._emit(
            "BridgeEnter", "call,all", self._bridge_headers(bridge), channel.snapshot(), swapped
        )
        if channel.variables.get("BLINDTRANSFER"):
            self._var_set(channel, "BLINDTRANSFER", "")  # blind_transfer.bin
        self._cel(
            channel,
            "BRIDGE_ENTER",
            peer=",".join([*bridge.hidden, *(p.name for p in peers)]),
            extra=self._bridge_extra(bridge),
        )

    def _set_bridge_peers(self, bridge: _Bridge, clear: bool = False) -> None:
        for channel in bridge.channels:
            others = [*bridge.hidden, *(c.name for c in bridge.channels if c is not channel)]
            self._var_set(channel, "BRIDGEPEER", "" if clear else ",".join(others))

    def _cel_bridge_exit(self, channel: SimChannel) -> None:
        bridge = channel._bridge
        if bridge is not None:
            others = (c.name for c in bridge.channels if c is not channel)
            peers = ",".join([*bridge.hidden, *others])
            self._cel(channel, "BRIDGE_EXIT", peer=peers, extra=self._bridge_extra(bridge))

    def _leave_bridge(self, channel: SimChannel, *, cel: bool = True) -> None:
        bridge = channel._bridge
        if bridge is None:
            return
        if bridge.kind == "base":
            self._var_set(channel, "BRIDGEPEER", "")  # the others' change in bridge.left
        elif len(bridge.channels) == 2:
            self._set_bridge_peers(bridge, clear=True)
        if cel:
            self._cel_bridge_exit(channel)
        bridge.channels.remove(channel)
        channel._bridge = None
        self._emit("BridgeLeave", "call,all", self._bridge_headers(bridge), channel.snapshot())
        self._release(channel)
        if bridge.left is not None:
            bridge.left(channel)

    def _release(self, channel: SimChannel) -> None:
        """A channel the Bridge action took out of its dialplan may go on."""
        held, channel._held = channel._held, None
        if held is not None and not held.done():
            held.set_result(None)

    def _bridge_dissolve(self, bridge: _Bridge, cause: int) -> None:
        """A two-party (Dial) bridge ends when one party leaves: the other is put out.

        Only a basic bridge: a parking lot's bridge stays, a conference ends by itself.
        """
        if bridge.kind != "basic":
            return
        if len(bridge.channels) == 1:
            (other,) = bridge.channels
            self._leave_bridge(other)
            self._emit("BridgeDestroy", "call,all", self._bridge_headers(bridge))
            after = other._after_bridge
            other._after_bridge = None
            if after is not None:
                after(cause)
            elif not other.pbx:
                self._hangup_pair(other, cause)
        elif not bridge.channels:
            self._emit("BridgeDestroy", "call,all", self._bridge_headers(bridge))
