"""The simulated PBX's attended transfer (the Atxfer action), as bridge_basic.c does it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ._pbx_apps import _music_on_hold
from ._pbx_conf import _PbxConf
from ._pbx_model import NORMAL_CLEARING, Headers, SimChannel, _Bridge, _Cdr, _Dialing

if TYPE_CHECKING:
    from ._pbx import SimPBX

# How the lab's DTMF came (attended_transfer.bin): the feature code's digits 157 ms apart,
# Hold 100 ms after the code, then the extension's digits every 60 ms.
_CODE_GAP = 0.157
_HOLD_DELAY = 0.1
_DIGIT_GAP = 0.06


@dataclass(eq=False)
class _Consultation:
    """An attended transfer in progress: the transferer talks to the target."""

    transferer: SimChannel
    transferee: SimChannel
    original: _Bridge
    bridge: _Bridge | None = None
    target: SimChannel | None = None
    stop_music: Callable[[], None] | None = None


def _prefixed(prefix: str, headers: Headers) -> Headers:
    return [(prefix + key, value) for key, value in headers]


class _PbxAtxfer(_PbxConf):
    """The atxfer feature on a two-party bridge: Hold, a consultation bridge with the
    target, and the transferer's hangup completing the transfer (BridgeMerge)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._consultations: dict[SimChannel, _Consultation] = {}

    @staticmethod
    def atxfer_code(channel: SimChannel) -> str:
        """The channel's attended transfer feature code (``Set(FEATUREMAP(atxfer)=*2)``);
        ``""`` when it has none (the lab's features.conf sets none)."""
        return channel.variables.get("FEATUREMAP(atxfer)", "")

    def attended_transfer(self, transferer: SimChannel, context: str, exten: str) -> None:
        """What the Atxfer action queues: the feature code and ``exten`` as DTMF.

        As attended_transfer.bin shows it: `TRANSFER_CONTEXT` (when ``context``
        is given), a `DTMFEnd` per digit; the complete code in a two-party
        bridge puts the bridge's other party on hold (`Hold` of the transferer,
        music for the transferee), and after the extension the transferer
        leaves for a consultation bridge with a Local channel to
        ``exten@context``. When the transferer hangs up there, the target's
        channel moves into the first bridge (`BridgeMerge`, `AttendedTransfer`).
        """
        if context:
            self._var_set(transferer, "TRANSFER_CONTEXT", context)
        self._spawn(self._atxfer_digits(transferer, self.atxfer_code(transferer), exten))

    def _dtmf(self, channel: SimChannel, digit: str) -> None:
        self._channel_event(
            "DTMFEnd",
            channel,
            ("Digit", digit),
            ("DurationMs", "0"),
            ("Direction", "Received"),
            privilege="dtmf,all",
        )

    async def _atxfer_digits(self, transferer: SimChannel, code: str, exten: str) -> None:
        for number, digit in enumerate(code):
            if number:
                await self.sleep(_CODE_GAP)
            if not transferer.alive:
                return
            self._dtmf(transferer, digit)
        bridge = transferer._bridge
        if (
            bridge is None
            or bridge.kind != "basic"
            or len(bridge.channels) != 2
            or transferer in self._consultations
        ):
            for digit in exten:  # no transfer to start: the digits only go by
                await self.sleep(_DIGIT_GAP)
                if transferer.alive:
                    self._dtmf(transferer, digit)
            return
        await self.sleep(_HOLD_DELAY)
        if not transferer.alive or transferer._bridge is not bridge or len(bridge.channels) != 2:
            return
        (transferee,) = transferer.bridge_peers
        consultation = _Consultation(transferer, transferee, bridge)
        self._consultations[transferer] = consultation
        self._channel_event("Hold", transferer)
        consultation.stop_music = _music_on_hold(cast("SimPBX", self), transferee, "default")
        for digit in exten:
            await self.sleep(_DIGIT_GAP)
            if not transferer.alive:
                self._abandon(consultation)
                return
            self._dtmf(transferer, digit)
        await asyncio.sleep(0)
        context = transferer.variables.get("TRANSFER_CONTEXT") or transferer.context
        if transferer._bridge is not bridge or not self._consult(consultation, context, exten):
            self._abandon(consultation)

    def _consult(self, consultation: _Consultation, context: str, exten: str) -> bool:
        """Call ``exten@context`` into a consultation bridge with the transferer."""
        transferer, original = consultation.transferer, consultation.original
        if not self.dialplan.exists(context, exten):
            return False
        target, two = self._new_local_pair(exten, context, linkedid=transferer.linkedid)
        self._announce_pair(target, two)
        target._cdr = None  # it gets one when it joins the transferee
        self._var_set(target, "TRANSFERERNAME", transferer.name)
        self._var_set(target, "ATTENDEDTRANSFER", transferer.name)
        bridge = self._new_bridge()
        bridge.left = self._consultation_left
        consultation.bridge, consultation.target = bridge, target
        self._var_set(two, "ATTENDEDTRANSFER", transferer.name)
        self._var_set(two, "TRANSFERERNAME", transferer.name)
        self._local_bridge(target, two, optimize=True)

        pbx = cast("SimPBX", self)  # the only subclass: Dial's events are its own

        def answered(channel: SimChannel) -> None:
            pbx._dial_end(None, channel, "ANSWER")
            if channel._bridge is bridge:
                self._set_bridge_peers(bridge)

        def failed(channel: SimChannel, reason: int, status: str) -> None:
            pbx._dial_end(None, channel, status)

        target._dialing = _Dialing(answered, failed)
        self._enter_bridge(bridge, target)
        self._var_set(target, "ATTENDEDTRANSFER", "")
        self._move_out(transferer, original)
        self._enter_bridge(bridge, transferer)
        self._set_bridge_peers(bridge)
        self._fork_cdr(transferer, target.name)
        self._start_pbx(two)
        self._settle()
        return True

    def _abandon(self, consultation: _Consultation) -> None:
        """No transfer after all: the transferer (if up) is back with the transferee."""
        if self._consultations.get(consultation.transferer) is consultation:
            del self._consultations[consultation.transferer]
        if consultation.stop_music is not None and consultation.transferee.alive:
            consultation.stop_music()
        consultation.stop_music = None
        transferer, original = consultation.transferer, consultation.original
        if transferer.alive and consultation.transferee._bridge is original:
            if transferer._bridge is not original:
                if transferer._bridge is not None:
                    self._move_out(transferer, transferer._bridge)
                self._enter_bridge(original, transferer)
                self._set_bridge_peers(original)
            self._channel_event("Unhold", transferer)
        self._settle()

    def _consultation_left(self, channel: SimChannel) -> None:
        """The consultation bridge's leave hook: the target gone, the transferer goes back."""
        consultation = next((c for c in self._consultations.values() if c.target is channel), None)
        if consultation is None:
            return
        bridge = consultation.bridge
        transferer = consultation.transferer
        if bridge is not None and transferer._bridge is bridge:
            self._move_out(transferer, bridge)
        self._abandon(consultation)

    def _complete_attended_transfer(self, transferer: SimChannel, cause: int) -> bool:
        """The transferer hangs up in the consultation: the transfer completes.

        As attended_transfer.bin shows it: the transferer leaves (its Dial
        returns and it hangs up), `BridgeMerge` of the consultation bridge into
        the first one, the target moves over, the transferee's music stops,
        `AttendedTransfer`, the target's connected line becomes the transferee's
        caller. False when there is no consultation to complete.
        """
        consultation = self._consultations.get(transferer)
        bridge = consultation.bridge if consultation is not None else None
        if consultation is None or bridge is None or transferer._bridge is not bridge:
            return False
        target, transferee, original = (
            consultation.target,
            consultation.transferee,
            consultation.original,
        )
        if target is None or target._bridge is not bridge or transferee._bridge is not original:
            return False
        del self._consultations[transferer]
        self._cel_bridge_exit(transferer)
        self._var_set(transferer, "BRIDGEPEER", "")
        bridge.channels.remove(transferer)
        transferer._bridge = None
        self._emit("BridgeLeave", "call,all", self._bridge_headers(bridge), transferer.snapshot())
        transferer.hangupcause = cause
        after, transferer._after_bridge = transferer._after_bridge, None
        if after is not None:
            after(cause)  # its Dial returns, then it hangs up
        else:
            self._hangup_pair(transferer, cause)
        self._emit(
            "BridgeMerge",
            "call,all",
            _prefixed("To", self._bridge_headers(original)),
            _prefixed("From", self._bridge_headers(bridge)),
        )
        self._move_out(target, bridge)
        self._enter_bridge(original, target)
        if consultation.stop_music is not None:
            consultation.stop_music()
        self._set_bridge_peers(original)
        self._emit(
            "AttendedTransfer",
            "call,all",
            [("Result", "Success")],
            transferer.snapshot("OrigTransferer"),
            _prefixed("Orig", self._bridge_headers(original)),
            transferer.snapshot("SecondTransferer"),
            _prefixed("Second", self._bridge_headers(bridge)),
            transferee.snapshot("Transferee"),
            target.snapshot("TransferTarget"),
            [
                ("IsExternal", "No"),
                ("DestType", "Bridge"),
                ("DestBridgeUniqueid", original.uniqueid),
            ],
        )
        target.connected_num = transferee.caller_num
        target.connected_name = transferee.caller_name
        self._channel_event("NewConnectedLine", target)
        two = target.peer
        if two is not None and two.alive:
            # chan_local passes it on as the ;2's caller id, shown at its next step.
            two.caller_num, two.caller_name = target.connected_num, target.connected_name
            two._pending_callerid = True
        now = self.now()
        target._cdr = _Cdr(now, answer=now, destination_channel=transferee.name)
        self._emit("BridgeDestroy", "call,all", self._bridge_headers(bridge))
        self._settle()
        return True

    def _hangup_pair(self, first: SimChannel, cause: int) -> None:
        """A transferer that hangs up otherwise than by the Hangup action (its Local pair's
        other half ended, ``channel request hangup``) completes its transfer too."""
        for channel in (first, first.peer):
            consultation = self._consultations.get(channel) if channel is not None else None
            if (
                channel is not None
                and channel.alive
                and consultation is not None
                and not self._complete_attended_transfer(channel, cause or NORMAL_CLEARING)
            ):
                self._abandon(consultation)
        if first.alive:
            super()._hangup_pair(first, cause)

    def hangup(self, channel: SimChannel, cause: int = NORMAL_CLEARING) -> None:
        """Hang a channel up (the Hangup action: no (Soft)HangupRequest for it, status.bin);
        a transferer in an attended transfer's consultation completes the transfer."""
        if self._complete_attended_transfer(channel, cause if cause > 0 else NORMAL_CLEARING):
            return
        self._hangup_pair(channel, cause if cause > 0 else channel.hangupcause)
