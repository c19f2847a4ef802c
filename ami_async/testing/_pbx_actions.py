"""FakeAsterisk's actions for the simulated PBX's flows: transfers, Bridge, Park, ConfBridge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..message import Message
from ._actions import _ActionsBase
from ._pbx_transfer import TransferError
from ._session import FakeSession
from ._wire import _header

if TYPE_CHECKING:
    from ._server import FakeAsterisk


class _FlowActions(_ActionsBase):
    """BlindTransfer, Atxfer, Bridge, Park, ParkedCalls and ConfbridgeList on `SimPBX`."""

    def __init__(self, server: FakeAsterisk) -> None:
        super().__init__(server)
        self.actions.update({"blindtransfer": self.blindtransfer, "bridge": self.bridge})

    async def blindtransfer(self, session: FakeSession, action: Message) -> None:
        """manager.c action_blind_transfer: its checks and texts, then the transfer."""
        name, exten = _header(action, "Channel"), _header(action, "Exten")
        if not name:
            await self.error(session, action, "No channel specified")
            return
        if not exten:
            await self.error(session, action, "No extension specified")
            return
        channel = self.find(name)
        if channel is None:
            await self.error(session, action, "Channel specified does not exist")
            return
        context = _header(action, "Context") or channel.context
        try:
            self.server.pbx.check_blind_transfer(channel, context, exten)
        except TransferError as exc:
            await self.error(session, action, str(exc))
            return
        await self.ok(session, action, "Transfer succeeded")
        self.server.pbx.blind_transfer(channel, context, exten)

    async def bridge(self, session: FakeSession, action: Message) -> None:
        """manager.c action_bridge: its checks and texts, then the bridge."""
        names = _header(action, "Channel1"), _header(action, "Channel2")
        if not all(names):
            await self.error(session, action, "Missing channel parameter in request")
            return
        channels = []
        for number, name in enumerate(names, 1):
            channel = self.find(name)
            if channel is None:
                await self.error(session, action, f"Channel{number} does not exist: {name}")
                return
            channels.append(channel)
        try:
            self.server.pbx.check_bridge(*channels)
        except TransferError as exc:
            await self.error(session, action, str(exc))
            return
        await self.ok(session, action, "Channels have been bridged")
        self.server.pbx.bridge(*channels)
