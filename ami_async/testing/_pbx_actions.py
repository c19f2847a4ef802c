"""FakeAsterisk's actions for the simulated PBX's flows: transfers, Bridge, Park, ConfBridge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..message import Message
from ._actions import _ActionsBase
from ._pbx_model import SimChannel
from ._pbx_transfer import TransferError
from ._session import FakeSession
from ._wire import _header, with_action_id

if TYPE_CHECKING:
    from ._server import FakeAsterisk


class _FlowActions(_ActionsBase):
    """BlindTransfer, Atxfer, Bridge, Park, ParkedCalls and ConfbridgeList on `SimPBX`."""

    def __init__(self, server: FakeAsterisk) -> None:
        super().__init__(server)
        self.actions.update(
            {
                "blindtransfer": self.blindtransfer,
                "atxfer": self.atxfer,
                "bridge": self.bridge,
                "park": self.park,
                "parkedcalls": self.parkedcalls,
                "parkinglots": self.parkinglots,
                "confbridgelistrooms": self.confbridgelistrooms,
                "confbridgelist": self.confbridgelist,
            }
        )

    async def _transferer(self, session: FakeSession, action: Message) -> SimChannel | None:
        """The checks BlindTransfer and Atxfer share (manager.c): the channel, or None once
        the error is answered."""
        name, exten = _header(action, "Channel"), _header(action, "Exten")
        if not name:
            await self.error(session, action, "No channel specified")
            return None
        if not exten:
            await self.error(session, action, "No extension specified")
            return None
        channel = self.find(name)
        if channel is None:
            await self.error(session, action, "Channel specified does not exist")
        return channel

    async def blindtransfer(self, session: FakeSession, action: Message) -> None:
        """manager.c action_blind_transfer: its checks and texts, then the transfer."""
        channel = await self._transferer(session, action)
        if channel is None:
            return
        exten = _header(action, "Exten")
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

    async def park(self, session: FakeSession, action: Message) -> None:
        """res_parking manager_park: its checks and texts (``Park successful\\n``, a bare LF
        before the CRLF as 22 writes it), then the park."""
        name, timeout = _header(action, "Channel"), _header(action, "Timeout")
        if not name:
            await self.error(session, action, "Channel not specified")
            return
        seconds: int | None = None
        if timeout:
            try:
                milliseconds = int(timeout)
            except ValueError:
                milliseconds = -1
            if milliseconds < 0:
                await self.error(session, action, "Invalid Timeout value.")
                return
            seconds = max(1, milliseconds // 1000) if milliseconds > 0 else None
        channel = self.find(name)
        if channel is None:
            await self.error(session, action, f"Channel does not exist: {name}")
            return
        lot = _header(action, "Parkinglot") or "default"
        pbx = self.server.pbx
        try:
            pbx.check_park(channel, lot)
        except TransferError as exc:
            await self.error(session, action, str(exc))
            return
        await self.ok(session, action, "Park successful\n")
        pbx.park(channel, lot, seconds)

    async def parkedcalls(self, session: FakeSession, action: Message) -> None:
        """ParkedCalls: a ParkedCall item per parked call, ParkedCallsComplete with Total."""
        lot = _header(action, "ParkingLot")
        pbx = self.server._sim
        if lot and (pbx is None or lot not in pbx.parking_lots):
            await self.error(session, action, "Requested parking lot could not be found.")
            return
        found = pbx.parked_call_items(lot) if pbx is not None else []
        items = [self.action_id_last(action, item) for item in found]
        await session.send(
            self.list_start(action, "Parked calls will follow"),
            *items,
            self.list_complete(
                action, "ParkedCallsComplete", len(items), ("Total", str(len(items)))
            ),
        )

    async def parkinglots(self, session: FakeSession, action: Message) -> None:
        """Parkinglots: a Parkinglot item per lot (parking.bin)."""
        pbx = self.server._sim
        found = pbx.parking_lot_items() if pbx is not None else []
        items = [with_action_id(action, item) for item in found]
        await session.send(
            self.list_start(action, "Parking lots will follow"),
            *items,
            self.list_complete(action, "ParkinglotsComplete", len(items)),
        )

    async def confbridgelistrooms(self, session: FakeSession, action: Message) -> None:
        """app_confbridge action_confbridgelistrooms (confbridge.bin; none running:
        confbridge_list_rooms_empty.bin)."""
        pbx = self.server._sim
        conferences = list(pbx.conferences.values()) if pbx is not None else []
        if not conferences:
            await self.error(session, action, "No active conferences.")
            return
        items = [
            with_action_id(
                action,
                [
                    ("Event", "ConfbridgeListRooms"),
                    ("Conference", conference.name),
                    ("Parties", str(len(conference.members))),
                    ("Marked", "0"),
                    ("Locked", "No"),
                    ("Muted", "No"),
                ],
            )
            for conference in conferences
        ]
        await session.send(
            self.list_start(action, "Confbridge conferences will follow"),
            *items,
            self.list_complete(action, "ConfbridgeListRoomsComplete", len(items)),
        )

    async def confbridgelist(self, session: FakeSession, action: Message) -> None:
        """app_confbridge action_confbridgelist: a conference's members (confbridge.bin)."""
        name = _header(action, "Conference")
        if not name:
            await self.error(session, action, "No Conference name provided.")
            return
        pbx = self.server._sim
        if pbx is None or name not in pbx.conferences:
            await self.error(session, action, "No Conference by that name found.")
            return
        items = [with_action_id(action, item) for item in pbx.conference_list_items(name)]
        await session.send(
            self.list_start(action, "Confbridge user list will follow"),
            *items,
            self.list_complete(action, "ConfbridgeListComplete", len(items)),
        )

    async def atxfer(self, session: FakeSession, action: Message) -> None:
        """manager.c action_atxfer: its checks and texts, then the DTMF it queues."""
        channel = await self._transferer(session, action)
        if channel is None:
            return
        exten = _header(action, "Exten")
        pbx = self.server.pbx
        if not pbx.atxfer_code(channel):
            await self.error(session, action, "No attended transfer feature code found")
            return
        await self.ok(session, action, "Atxfer successfully queued")
        pbx.attended_transfer(channel, _header(action, "Context"), exten)
