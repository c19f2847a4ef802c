"""The events held while the live model takes a snapshot are bounded (`hold_maxsize`).

More events than that during one snapshot: they are dropped (counted), the
snapshot is not applied (it is known to be stale) and is taken again once its
actions are done. `start()` gives up after a few such snapshots with
`SnapshotOverflowError`; a resync keeps trying, `live.synced` false meanwhile.

The PBX is a `FakeAsterisk` without the simulated PBX whose `CoreShowChannels`
and `BridgeList` answer from `FloodingPBX`: channels come and go (a
`Newchannel`, a `Hangup`) between the two, as many as the test says per snapshot.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from test_live_resync import USER, _channel, _list, until_synced

import ami_async
from ami_async.errors import AMIError, SubscriptionOverflowError
from ami_async.live import (
    ChannelAdded,
    Live,
    SnapshotOverflowError,
    Synced,
    Unsynced,
)
from ami_async.live._live import _Held
from ami_async.message import Event, Message
from ami_async.testing import FakeAsterisk, FakeSession, FaultProxy, make_response


class FloodingPBX:
    """Channels that change while a snapshot is taken: `floods[n]` times during snapshot n
    (counted from 1) a channel appears and the oldest hangs up, two events each time."""

    def __init__(self, fake: FakeAsterisk, floods: dict[int, int], live: list[Live]) -> None:
        self.fake = fake
        self.floods = floods
        self.channels = {"old-1": "PJSIP/100-1"}
        self.snapshots = 0
        self.hung_up: dict[int, list[str]] = {}  # by snapshot
        self.synced_during: list[bool] = []  # live.synced when each snapshot began
        self._live = live
        self._numbers = itertools.count(1)
        fake.on_action("CoreShowChannels", self.core_show_channels)
        fake.on_action("BridgeList", self.bridge_list)

    async def core_show_channels(self, session: FakeSession, action: Message) -> None:
        self.snapshots += 1
        self.synced_during.extend(live.synced for live in self._live)
        items = [_channel(uniqueid, name) for uniqueid, name in self.channels.items()]
        await session.send(*_list(action, items, "CoreShowChannelsComplete"))

    async def bridge_list(self, session: FakeSession, action: Message) -> None:
        for _ in range(self.floods.get(self.snapshots, 0)):
            n = next(self._numbers)
            uniqueid, name = f"new-{n}", f"PJSIP/300-{n}"
            self.channels[uniqueid] = name
            await self.fake.emit(
                "Newchannel", {"Privilege": "call,all", **_channel(uniqueid, name)}
            )
            gone = next(iter(self.channels))
            hangup = {"Privilege": "call,all", **_channel(gone, self.channels.pop(gone))}
            await self.fake.emit("Hangup", {**hangup, "Cause": "16"})
            self.hung_up.setdefault(self.snapshots, []).append(gone)
        await session.send(make_response(action, "Error", Message="Permission denied"))


@asynccontextmanager
async def flooding_pbx(
    floods: dict[int, int], *, proxied: bool = False
) -> AsyncIterator[tuple[FloodingPBX, FaultProxy, ami_async.Client, list[Live]]]:
    """The PBX, a proxy in front of it, and a client (through the proxy if `proxied`)."""
    lives: list[Live] = []  # the test's Live, for `synced_during`
    async with FakeAsterisk(pbx=False) as fake, FaultProxy(fake.host, fake.port) as proxy:
        pbx = FloodingPBX(fake, floods, lives)
        host, port = (proxy.host, proxy.port) if proxied else (fake.host, fake.port)
        client = ami_async.Client(host, port, **USER, ping_interval=None, reconnect_delay=0.01)
        async with client:
            yield pbx, proxy, client, lives


def overflow_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ami_async.live" and r.levelno == logging.WARNING
    ]


async def test_an_overflowing_snapshot_is_taken_again_and_the_model_ends_right(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ami_async.live")
    async with flooding_pbx({1: 6, 2: 1}) as (pbx, _proxy, client, lives):
        live = Live(client, hold_maxsize=5)
        lives.append(live)
        stream = live.changes(maxsize=1000)
        await live.start()
        try:
            assert pbx.snapshots == 2
            # 12 events during the first one: dropped, and that snapshot never applied.
            (warning,) = overflow_warnings(caplog)
            assert "12 events" in warning and "hold_maxsize=5" in warning
            assert "snapshot" in warning
            assert live.synced
            assert set(live.channels) == set(pbx.channels)
            # Only the hang-up seen during the second snapshot made a record: the
            # channels that came and went during the first are unknown to the model.
            assert [r.linkedid for r in live.history] == pbx.hung_up[2]
            changes = await until_synced(stream, "snapshot")
            added = [c.channel.uniqueid for c in changes if isinstance(c, ChannelAdded)]
            assert "old-1" not in added and not set(added) & set(pbx.hung_up[1])
            assert [type(c) for c in changes].count(Synced) == 1
        finally:
            live.close()


async def test_start_gives_up_after_repeated_overflow_saying_to_raise_hold_maxsize() -> None:
    async with flooding_pbx({1: 6, 2: 6, 3: 6, 4: 6}) as (pbx, _proxy, client, _lives):
        live = Live(client, hold_maxsize=5)
        with pytest.raises(SnapshotOverflowError, match="raise hold_maxsize") as info:
            await live.start()
        assert pbx.snapshots == 3
        assert info.value.dropped == 12
        assert "hold_maxsize=5" in str(info.value)
        assert isinstance(info.value, SubscriptionOverflowError)
        assert isinstance(info.value, AMIError)
        assert live.closed and not live.channels and not live.history


async def test_a_resync_that_overflows_is_taken_again_until_it_fits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ami_async.live")
    async with (
        flooding_pbx({2: 6, 3: 6}, proxied=True) as (pbx, proxy, client, lives),
        Live(client, hold_maxsize=5) as live,
    ):
        lives.append(live)  # (after its first snapshot)
        assert pbx.snapshots == 1
        stream = live.changes(maxsize=1000)
        proxy.cut()
        changes = await until_synced(stream, "resync")
        assert isinstance(changes[0], Unsynced)
        assert pbx.snapshots == 4  # two overflowed, more than start() would try
        assert pbx.synced_during == [False, False, False]  # each resync attempt
        warnings = overflow_warnings(caplog)
        assert len(warnings) == 2 and all("resync" in w for w in warnings)
        assert "in 0.1 s" in warnings[0] and "in 0.2 s" in warnings[1]  # growing pauses
        assert live.synced
        assert set(live.channels) == set(pbx.channels)
        added = {c.channel.uniqueid for c in changes if isinstance(c, ChannelAdded)}
        assert added == set(pbx.channels)
        assert all(c.reason == "resync" for c in changes[1:])


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10", None])
def test_hold_maxsize_must_be_a_whole_number_of_events(bad: object) -> None:
    client = ami_async.Client("127.0.0.1", 5038, **USER)
    with pytest.raises(ValueError, match="hold_maxsize must be a whole number of events"):
        Live(client, hold_maxsize=bad)  # type: ignore[arg-type]


def test_the_held_events_never_exceed_the_bound() -> None:
    held = _Held(3)
    events = [Event([("Event", "Newchannel"), ("Uniqueid", str(n))]) for n in range(1000)]
    for ev in events[:3]:
        held.append(ev)
    assert list(held) == events[:3] and not held.dropped
    for ev in events[3:]:
        held.append(ev)
        assert len(held) <= 3
    assert list(held) == [] and held.dropped == 1000
