"""The simulated PBX's call parking: the Park action, Park() and ParkedCall() on lot ``default``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ._pbx_apps import _music_on_hold
from ._pbx_bridge import _PbxBridge
from ._pbx_model import _INUSE, _NOT_INUSE, NORMAL_CLEARING, UP, Headers, SimChannel, _Bridge, _Cdr
from ._pbx_transfer import TransferError

if TYPE_CHECKING:
    from ._pbx import SimPBX

_ANNOUNCEMENT_SECONDS = 2.5


@dataclass(eq=False)
class ParkedCall:
    """A call waiting in a parking space (read it; `SimPBX.park` makes one)."""

    channel: SimChannel
    lot: str
    space: int
    parker_dial_string: str
    parked_at: float
    timeout: int
    _stop_music: list[Callable[[], None]] = field(default_factory=list)
    _timer: asyncio.Task[None] | None = None
    _done: asyncio.Future[str] | None = None
    """Set when the call leaves the space: ``"retrieved"``, ``"timeout"`` or ``"giveup"``."""


@dataclass(eq=False)
class ParkingLot:
    """A parking lot as res_parking.conf describes it (lot ``default``: 7001-7020, 20 s)."""

    name: str = "default"
    start: int = 7001
    stop: int = 7020
    timeout: int = 20
    calls: dict[int, ParkedCall] = field(default_factory=dict)
    bridge: _Bridge | None = None
    """Its holding bridge: made at the first park, never destroyed (park_and_retrieve.bin)."""


def _dial_string(channel: SimChannel) -> str:
    """``Local/2011@test-00000010;1`` -> ``Local/2011@test`` (ParkerDialString)."""
    return re.sub(r"-[0-9a-f]+(;[12])?$", "", channel.name)


class _PbxPark(_PbxBridge):
    """Call parking as res_parking does it for a Local channel (park_and_retrieve.bin)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parking_lots: dict[str, ParkingLot] = {"default": ParkingLot()}
        """The parking lots by name (``default``: spaces 7001-7020, 20 s)."""
        self.applications.update({"park": _app_park, "parkedcall": _app_parked_call})

    def parked_calls(self, lot: str = "") -> list[ParkedCall]:
        """The calls parked now (in ``lot``, or in every lot), by space."""
        lots = [self.parking_lots[lot]] if lot else list(self.parking_lots.values())
        return [call for one in lots for _, call in sorted(one.calls.items())]

    def find_parked(self, channel: SimChannel) -> ParkedCall | None:
        for call in self.parked_calls():
            if call.channel is channel:
                return call
        return None

    def _parked_headers(self, call: ParkedCall) -> Headers:
        duration = int(self.now() - call.parked_at)
        return [
            ("ParkerDialString", call.parker_dial_string),
            ("Parkinglot", call.lot),
            ("ParkingSpace", str(call.space)),
            ("ParkingTimeout", str(max(0, call.timeout - duration))),
            ("ParkingDuration", str(duration)),
        ]

    def parked_call_items(self, lot: str = "") -> list[Headers]:
        """ParkedCall list items of the ParkedCalls action (no Privilege header)."""
        return [
            [("Event", "ParkedCall"), *c.channel.snapshot("Parkee"), *self._parked_headers(c)]
            for c in self.parked_calls(lot)
        ]

    def check_park(self, channel: SimChannel, lot: str = "default") -> None:
        """Raise `TransferError` ("Park action failed") if `park` would refuse."""
        one = self.parking_lots.get(lot or "default")
        if (
            one is None
            or not channel.alive
            or self.find_parked(channel) is not None
            or len(one.calls) > one.stop - one.start
        ):
            raise TransferError("Park action failed\n")

    def park(self, channel: SimChannel, lot: str = "default", timeout: int | None = None) -> int:
        """Park a channel in the first free space of ``lot``; the space number.

        As park_and_retrieve.bin shows it for the Park action on the called
        leg of a Dial: the `ParkedCall` event, the lot's parking bridge
        (created at the first park), the channel leaves its bridge for it and
        hears music on hold; the party it leaves is put out (its Dial ends).
        A channel that runs the dialplan is taken out of it (it goes on at its
        next priority when it leaves the lot). After ``timeout`` seconds (the
        lot's 20 by default) `ParkedCallTimeOut` comes and the channel is hung
        up (this simulation has no comebacktoorigin); hanging up while parked
        gives `ParkedCallGiveUp`.
        """
        return self._park(channel, lot, timeout, take_out=True)

    def _park(self, channel: SimChannel, lot: str, timeout: int | None, *, take_out: bool) -> int:
        self.check_park(channel, lot)
        one = self.parking_lots[lot or "default"]
        space = next(n for n in range(one.start, one.stop + 1) if n not in one.calls)
        call = ParkedCall(
            channel,
            one.name,
            space,
            _dial_string(channel),
            self.now(),
            one.timeout if timeout is None else timeout,
        )
        call._done = asyncio.get_running_loop().create_future()
        one.calls[space] = call
        old = channel._bridge
        if take_out and channel.pbx and channel._task is not None:
            self._take_out_of_dialplan(channel)
        self._emit(
            "ParkedCall",
            "call,all",
            channel.snapshot("Parkee"),
            self._parked_headers(call),
        )
        if one.bridge is None:
            one.bridge = self._new_bridge("parking", "holding_bridge", "Parking", one.name)
            one.bridge.left = self._parked_left
        if old is not None:
            self._move_out(channel, old)
        self._set_cached_device(f"park:{space}@parkedcalls", _INUSE)
        self._enter_bridge(one.bridge, channel)
        if old is not None:
            self._var_set(channel, "BRIDGEPEER", "")
            if old.kind == "basic":
                for other in old.channels:
                    self._var_set(other, "BRIDGEPEER", "")
            if old.left is not None:
                old.left(channel)  # a conference member or a transfer target left
            self._bridge_dissolve(old, NORMAL_CLEARING)
        if channel._cdr is None:
            # A dialed channel had no record of its own: parking starts one.
            now = self.now()
            channel._cdr = _Cdr(now, answer=now if channel.state == UP else None)
        channel._cdr.last_app, channel._cdr.last_data = "Park", f"{one.name}:{space}"
        if take_out:
            call._stop_music.append(_music_on_hold(cast("SimPBX", self), channel, "default"))
        else:
            self._spawn(self._announce_then_music(call))
        call._timer = self._spawn(self._park_timeout(call))
        self._settle()
        return space

    async def _announce_then_music(self, call: ParkedCall) -> None:
        """Park() first tells the caller its space; the music comes after (parking.bin
        shows none in the second after the park; the announcement's length is a guess)."""
        await self.sleep(_ANNOUNCEMENT_SECONDS)
        one = self.parking_lots.get(call.lot)
        if call.channel.alive and one is not None and one.calls.get(call.space) is call:
            call._stop_music.append(_music_on_hold(cast("SimPBX", self), call.channel, "default"))

    def parking_lot_items(self) -> list[Headers]:
        """Parkinglot list items of the Parkinglots action (parking.bin)."""
        return [
            [
                ("Event", "Parkinglot"),
                ("Name", lot.name),
                ("StartSpace", str(lot.start)),
                ("StopSpace", str(lot.stop)),
                ("Timeout", str(lot.timeout)),
            ]
            for lot in self.parking_lots.values()
        ]

    def _move_out(self, channel: SimChannel, bridge: _Bridge) -> None:
        """Leave a bridge for another one (CEL, BridgeLeave; nobody is released or told)."""
        self._cel_bridge_exit(channel)
        bridge.channels.remove(channel)
        channel._bridge = None
        self._emit("BridgeLeave", "call,all", self._bridge_headers(bridge), channel.snapshot())

    async def _park_timeout(self, call: ParkedCall) -> None:
        await self.sleep(call.timeout)
        headers = call.channel.snapshot("Parkee") + self._parked_headers(call)
        if not call.channel.alive or not self._unpark(call):
            return
        self._emit("ParkedCallTimeOut", "call,all", headers)
        if call._done is not None and not call._done.done():
            call._done.set_result("timeout")
        call._timer = None  # this task: the hangup must not cancel it
        self._hangup_pair(call.channel, NORMAL_CLEARING)

    def _unpark(self, call: ParkedCall) -> bool:
        """Take the call out of its space (False: it had left already)."""
        one = self.parking_lots.get(call.lot)
        if one is None or one.calls.get(call.space) is not call:
            return False
        del one.calls[call.space]
        self._set_cached_device(f"park:{call.space}@parkedcalls", _NOT_INUSE)
        return True

    def _leave_lot(self, call: ParkedCall) -> None:
        """Retrieved: music stops and the channel leaves the parking bridge (which stays)."""
        if call._timer is not None:
            call._timer.cancel()
        for stop in call._stop_music:
            stop()
        call._stop_music.clear()
        bridge = call.channel._bridge
        if bridge is not None and bridge.kind == "parking":
            self._move_out(call.channel, bridge)
        if call._done is not None and not call._done.done():
            call._done.set_result("retrieved")

    def _parked_left(self, channel: SimChannel) -> None:
        """The parking bridge's leave hook: a parked channel hung up (ParkedCallGiveUp)."""
        call = self.find_parked(channel)
        if call is None or not self._unpark(call):
            return
        self._emit(
            "ParkedCallGiveUp", "call,all", channel.snapshot("Parkee"), self._parked_headers(call)
        )
        if call._timer is not None:
            call._timer.cancel()
        if call._done is not None and not call._done.done():
            call._done.set_result("giveup")

    def retrieve(self, retriever: SimChannel, lot: str, space: int) -> SimChannel | None:
        """ParkedCall(): bridge ``retriever`` with the call in ``space``; the parkee, or None.

        As park_and_retrieve.bin shows it: `UnParkedCall`, music stops, the
        parkee leaves the lot's bridge for a new basic bridge with the
        retriever (who takes the parkee's Linkedid and connected line); the
        parkee's CDR forks to record the retriever.
        """
        one = self.parking_lots.get(lot or "default")
        call = one.calls.get(space) if one is not None else None
        if call is None or not call.channel.alive:
            return None
        parkee = call.channel
        self._emit(
            "UnParkedCall",
            "call,all",
            parkee.snapshot("Parkee"),
            retriever.snapshot("Retriever"),
            self._parked_headers(call),
        )
        self._unpark(call)
        bridge = self._new_bridge()
        self._leave_lot(call)
        self._enter_bridge(bridge, parkee)
        self._enter_bridge(bridge, retriever)
        self._set_bridge_peers(bridge)
        retriever.connected_num, retriever.connected_name = parkee.caller_num, parkee.caller_name
        self._channel_event("NewConnectedLine", retriever)
        other = retriever.peer
        if other is not None and other.alive and retriever.half == 2:
            # chan_local passes the connected line on as the ;1's caller id; the ;1 shows
            # it only once it hangs up (park_and_retrieve.bin).
            other.caller_num, other.caller_name = parkee.caller_num, parkee.caller_name
            other._pending_callerid = True
        self._fork_cdr(parkee, retriever.name)
        self._settle()
        return parkee


async def _app_park(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    """Park([lot]): the channel parks itself and waits in its space (parking.bin)."""
    if channel.state != UP:
        pbx._answer(channel)
    lot = data.split(",")[0].strip() or "default"
    try:
        pbx._park(channel, lot, None, take_out=False)
    except TransferError:
        return -1
    call = pbx.find_parked(channel)
    if call is None or call._done is None:
        return -1
    await pbx._wait_for(channel, call._done, None)
    return -1


async def _app_parked_call(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    """ParkedCall(lot,space): answer, take the parked call, stay bridged with it."""
    args = [part.strip() for part in data.split(",")]
    lot = args[0] if args and args[0] else "default"
    try:
        space = int(args[1]) if len(args) > 1 else 0
    except ValueError:
        space = 0
    if channel.state != UP:
        pbx._answer(channel)
    parkee = pbx.retrieve(channel, lot, space)
    if parkee is None:
        return -1  # pbx-invalidpark, then the channel hangs up
    await pbx._hold_in_bridge(channel)
    if not channel.alive:
        return -1
    channel.hangupcause = channel.hangupcause or NORMAL_CLEARING
    pbx._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
    return -1
