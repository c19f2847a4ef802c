"""The simulated PBX's transfers: the BlindTransfer and Atxfer actions, Redirect out of a bridge."""

from __future__ import annotations

from ._pbx_calls import _PbxCalls
from ._pbx_model import NORMAL_CLEARING, UP, SimChannel, _Bridge, _Cdr

__all__ = ["TransferError"]


class TransferError(Exception):
    """A transfer the PBX refuses; the message is the action's error text."""


class _PbxTransfer(_PbxCalls):
    def blind_transfer(self, transferer: SimChannel, context: str, exten: str) -> None:
        """Blind-transfer the party bridged with ``transferer`` to ``exten@context``.

        As blind_transfer.bin shows it for a two-party bridge: `Unhold` on the
        transferer, `BLINDTRANSFER` set on both, the `BlindTransfer` event; the
        transferee leaves the bridge and runs the dialplan at ``exten@context``
        (priority 1) in the same call (its Linkedid stays), and the transferer,
        left alone, is put out of the bridge, which ends its Dial and hangs it up.
        Raises `TransferError` ("Transfer invalid") when the channel is in no
        two-party bridge, ("Transfer failed") when the extension does not exist.
        """
        self.check_blind_transfer(transferer, context, exten)
        bridge = transferer._bridge
        assert bridge is not None
        (transferee,) = transferer.bridge_peers
        self._channel_event("Unhold", transferer)
        self._var_set(transferee, "BLINDTRANSFER", transferer.name)
        self._var_set(transferer, "BLINDTRANSFER", transferee.name)
        self._var_set(transferer, "BRIDGEPEER", "")
        self._emit(
            "BlindTransfer",
            "call,all",
            [("Result", "Success")],
            transferer.snapshot("Transferer"),
            transferee.snapshot("Transferee"),
            self._bridge_headers(bridge),
            [("IsExternal", "Yes"), ("Context", context), ("Extension", exten)],
        )
        self._var_set(transferee, "BRIDGEPEER", "")
        self._goto_out_of_bridge(transferee, bridge, context, exten, 1)
        self._bridge_dissolve(bridge, NORMAL_CLEARING)
        self._settle()

    def redirect_many(self, moves: list[tuple[SimChannel, str, str, int]]) -> None:
        """Redirect channels together, each ``(channel, context, exten, priority)``.

        Channels of one bridge leave it together, as redirect_both_legs.bin shows
        for both parties of a Dial: each clears its `BRIDGEPEER` and shows its new
        place in a Newexten (with the application it still runs), then each leaves
        and the emptied bridge is destroyed; a Dial interrupted so sets only
        `DIALSTATUS`, and the dialed channel runs the dialplan from there.
        """
        moves = [move for move in moves if move[0].alive]
        bridges: list[_Bridge] = []
        for channel, context, exten, priority in moves:
            bridge = channel._bridge
            if bridge is None:
                continue
            if bridge not in bridges:
                bridges.append(bridge)
            if len(bridge.channels) == 2 or bridge.kind == "base":
                self._var_set(channel, "BRIDGEPEER", "")
            channel.context, channel.exten, channel.priority = context, exten, priority
            self._newexten(channel)
        for channel, context, exten, priority in moves:
            bridge = channel._bridge
            if bridge is not None:
                self._goto_out_of_bridge(channel, bridge, context, exten, priority)
            else:
                self._async_goto(channel, context, exten, priority)
        for bridge in bridges:
            self._bridge_dissolve(bridge, NORMAL_CLEARING)
        self._settle()

    def check_blind_transfer(self, transferer: SimChannel, context: str, exten: str) -> None:
        """Raise `TransferError` if `blind_transfer` would refuse (the action answers first)."""
        bridge = transferer._bridge
        if bridge is None or len(bridge.channels) != 2:
            raise TransferError("Transfer invalid")
        if not self.dialplan.exists(context, exten):
            raise TransferError("Transfer failed")

    def _goto_out_of_bridge(
        self, channel: SimChannel, bridge: _Bridge, context: str, exten: str, priority: int
    ) -> None:
        """The channel leaves the bridge for ``exten@context`` (an after-bridge goto)."""
        self._cel_bridge_exit(channel)
        if channel._cep != (context, exten, priority):
            channel.context, channel.exten, channel.priority = context, exten, priority
            self._newexten(channel)
        bridge.channels.remove(channel)
        channel._bridge = None
        self._emit("BridgeLeave", "call,all", self._bridge_headers(bridge), channel.snapshot())
        self._release(channel)
        channel._after_bridge = None
        if bridge.left is not None:
            bridge.left(channel)  # a conference member or a parked call left
        self._async_goto(channel, context, exten, priority)

    def _async_goto(self, channel: SimChannel, context: str, exten: str, priority: int) -> None:
        """Run the dialplan at ``exten@context``: a running one jumps, a channel without starts."""
        if channel.pbx and channel._task is not None:
            channel._goto = (context, exten, priority)
            channel._interrupt.set()
            return
        # No dialplan running (an Originate's application, a dialed channel):
        # stop what it does and start the dialplan there.
        self._kill_task(channel)
        dialing, channel._dialing = channel._dialing, None
        if dialing is not None:
            dialing.failed(channel, 0, "CANCEL")
        if channel._cdr is None:
            # A dialed channel had no record of its own; running the dialplan starts one.
            channel._cdr = _Cdr(self.now(), answer=self.now() if channel.state == UP else None)
        channel.context, channel.exten, channel.priority = context, exten, priority
        self._start_pbx(channel)
