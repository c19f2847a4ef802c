"""The simulated PBX's Bridge action and call parking (the Park action, Park(), ParkedCall())."""

from __future__ import annotations

import asyncio

from ._pbx_model import NORMAL_CLEARING, SimChannel
from ._pbx_transfer import TransferError, _PbxTransfer


class _PbxBridge(_PbxTransfer):
    def bridge(self, first: SimChannel, second: SimChannel) -> None:
        """The Bridge action: both channels leave what they run for a new basic bridge.

        As bridge_action.bin shows it: a channel that runs the dialplan is taken
        out of its application (CEL shows no application) and, when the bridge
        ends without hanging it up, goes on at the next priority; the second
        channel takes the first's Linkedid if that is older. The first's CDR
        records the second as its destination; the second's ends here.
        Raises `TransferError` with the action's text if a channel is in a bridge.
        """
        self.check_bridge(first, second)
        bridge = self._new_bridge()
        for channel in (first, second):
            self._take_out_of_dialplan(channel)
            self._enter_bridge(bridge, channel)
        self._set_bridge_peers(bridge)
        if first._cdr is not None:
            first._cdr.destination_channel = second.name
        self._close_cdr(second)
        if second._cdr is not None:
            second._cdrs_done.append(second._cdr)
            second._cdr = None
        self._settle()

    def check_bridge(self, first: SimChannel, second: SimChannel) -> None:
        """Raise `TransferError` if `bridge` would refuse (a channel already bridged)."""
        for number, channel in ((1, first), (2, second)):
            if channel._bridge is not None or first is second:
                raise TransferError(f"Unable to add Channel{number} to bridge: {channel.name}")

    def _take_out_of_dialplan(self, channel: SimChannel) -> None:
        if channel.pbx and channel._task is not None:
            channel._held = asyncio.get_running_loop().create_future()
            channel._goto = (channel.context, channel.exten, channel.priority + 1)
            channel._interrupt.set()
        else:
            self._kill_task(channel)
        channel.appl = channel.data = ""

    async def _hold_in_bridge(self, channel: SimChannel) -> None:
        """An application (ConfBridge, ParkedCall) keeps the channel in its bridge until it
        is put out of it or the other half of its Local pair hangs up (its HangupRequest,
        conference_three.bin): then the channel leaves and the application returns.
        """
        bridge = channel._bridge
        if bridge is None:
            return
        channel._bridge_app = True
        channel._after_bridge = lambda cause: channel._interrupt.set()
        try:
            while (
                channel.alive
                and channel._bridge is bridge
                and not channel._hangup_requested
                and channel._goto is None
            ):
                channel._interrupt.clear()
                await self._wait_for(channel, None, None)
        finally:
            channel._bridge_app = False
            channel._after_bridge = None
        if channel.alive and channel._bridge is bridge:
            self._leave_bridge(channel)
            self._bridge_dissolve(bridge, NORMAL_CLEARING)
