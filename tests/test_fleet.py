"""Issue 12 item 3: the Fleet (one client per server, merged events, a server down never blocks)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ami_async import AMIConnectionError, Client, Event, Fleet, SubscriptionOverflowError
from ami_async.testing import FakeAsterisk, FaultProxy

SECRET = "amp111"
FAST = {
    "username": "admin",
    "secret": SECRET,
    "ping_interval": None,
    "timeout": 2.0,
    "action_timeout": 5.0,
    "reconnect_delay": 0.01,
    "reconnect_max_delay": 0.05,
}


async def silent_server() -> asyncio.Server:
    """Accepts TCP and never says a word (no banner)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    return await asyncio.start_server(hold, "127.0.0.1", 0)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def pbxs() -> AsyncIterator[list[FakeAsterisk]]:
    async with FakeAsterisk() as a, FakeAsterisk() as b:
        yield [a, b]


def spec(pbx: FakeAsterisk | FaultProxy | int, **kw: Any) -> dict[str, Any]:
    if isinstance(pbx, int):
        return {"host": "127.0.0.1", "port": pbx, **kw}
    return {"host": pbx.host, "port": pbx.port, **kw}


async def next_named(sub: Any, name: str) -> Event:
    while True:
        ev: Event = await sub.get(timeout=5)
        if ev.name == name:
            return ev


async def test_item3_fleet_merges_events_tagged_with_their_server_in_each_servers_order(
    pbxs: list[FakeAsterisk],
) -> None:
    a, b = pbxs
    async with Fleet({"pbx1": spec(a), "pbx2": spec(b)}, **FAST) as fleet:
        assert fleet["pbx1"].name == "pbx1" and isinstance(fleet["pbx2"], Client)
        assert list(fleet) == ["pbx1", "pbx2"] and len(fleet) == 2
        assert {n: s.state for n, s in fleet.status().items()} == {"pbx1": "up", "pbx2": "up"}
        sub = fleet.events("Seq")
        for i in range(50):
            await a.emit("Seq", N=str(i))
            await b.emit("Seq", N=str(i))
        got: dict[str, list[int]] = {"pbx1": [], "pbx2": []}
        while sum(map(len, got.values())) < 100:
            ev = await sub.get(timeout=5)
            got[ev.server].append(int(ev["N"]))
        assert got == {"pbx1": list(range(50)), "pbx2": list(range(50))}
    assert sub.closed
    assert {s.state for s in fleet.status().values()} == {"closed"}


async def test_item3_fleet_never_reachable_server_blocks_nobody_and_is_retried(
    pbxs: list[FakeAsterisk],
) -> None:
    a, _ = pbxs
    proxy = FaultProxy(a.host, a.port)
    await proxy.start()
    proxy.refuse()  # down from the start: "connection refused"
    try:
        servers = {"up": spec(pbxs[1]), "down": spec(proxy), "nowhere": spec(closed_port())}
        async with Fleet(servers, **FAST) as fleet:
            status = fleet.status()
            assert status["up"].up and fleet.up == ["up"]
            assert status["down"].state == "connecting" and status["down"].error
            assert status["nowhere"].state == "connecting"
            sub = fleet.events("Hello")
            await pbxs[1].emit("Hello")
            assert (await sub.get(timeout=5)).server == "up"
            proxy.refuse(False)  # the server comes up: the background retries find it
            await fleet["down"].wait_connected(timeout=5)
            assert fleet.status()["down"].up
            await a.emit("Hello", From="a")
            ev = await sub.get(timeout=5)
            assert ev.server == "down" and ev["From"] == "a"
            assert fleet.status()["nowhere"].state == "connecting"
    finally:
        await proxy.close()


async def test_item3_fleet_server_cut_keeps_the_others_flowing_and_reconnects(
    pbxs: list[FakeAsterisk],
) -> None:
    a, b = pbxs
    proxy = FaultProxy(a.host, a.port)
    await proxy.start()
    try:
        async with Fleet({"cut": spec(proxy), "steady": spec(b)}, **FAST) as fleet:
            sub = fleet.events("Seq")
            await a.emit("Seq", N="0")
            await b.emit("Seq", N="0")
            first = {(await sub.get(timeout=5)).server for _ in range(2)}
            assert first == {"cut", "steady"}
            proxy.refuse()
            proxy.cut()
            await proxy.wait_until(lambda: not fleet["cut"].connected)
            assert fleet.status()["cut"].state == "connecting"
            for i in range(1, 20):
                await b.emit("Seq", N=str(i))  # the other server goes on meanwhile
            assert [int((await sub.get(timeout=5))["N"]) for _ in range(19)] == list(range(1, 20))
            proxy.refuse(False)
            await fleet["cut"].wait_connected(timeout=5)
            await a.emit("Seq", N="1")
            ev = await sub.get(timeout=5)
            assert (ev.server, ev["N"]) == ("cut", "1")
            assert fleet.status()["cut"].reconnects == 1
            assert fleet.status()["cut"].error is not None
    finally:
        await proxy.close()


async def test_item3_fleet_async_with_waits_only_for_first_attempts(
    pbxs: list[FakeAsterisk],
) -> None:
    """A server that accepts TCP and never answers costs its own `timeout`, no more."""
    silent = await silent_server()
    port = silent.sockets[0].getsockname()[1]
    try:
        fleet = Fleet(
            {"ok": spec(pbxs[0]), "silent": spec(port, timeout=0.3)}, **{**FAST, "timeout": 2.0}
        )
        fleet["silent"].timeout = 0.3
        async with fleet:
            assert fleet.status()["ok"].up
            assert fleet.status()["silent"].state == "connecting"
            assert "timed out" in (fleet.status()["silent"].error or "")
    finally:
        silent.close()


async def test_item3_fleet_wrong_secret_fails_for_good_after_max_auth_failures(
    pbxs: list[FakeAsterisk], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "ami_async")
    servers = {"good": spec(pbxs[0]), "bad": spec(pbxs[1], secret="wrong", max_auth_failures=1)}
    async with Fleet(servers, **FAST) as fleet:
        status = fleet.status()
        assert status["good"].up
        assert status["bad"].state == "failed" and "refused" in (status["bad"].error or "")
        assert "wrong" not in repr(fleet) and "wrong" not in caplog.text
        sub = fleet.events()  # the failed server has no part; the others still merge
        await pbxs[0].emit("Hello")
        assert (await next_named(sub, "Hello")).server == "good"


async def test_item3_fleet_events_overflow_like_a_client_subscription(
    pbxs: list[FakeAsterisk],
) -> None:
    a, b = pbxs
    async with Fleet({"a": spec(a), "b": spec(b)}, **FAST) as fleet:
        sub = fleet.events("Seq", maxsize=5)
        drop = fleet.events("Seq", maxsize=5, overflow="drop_oldest")
        for i in range(20):
            await a.emit("Seq", N=str(i))
        probe = fleet["a"].events("Seq")
        await a.emit("Seq", N="20")
        await next_named(probe, "Seq")  # everything before it has been dispatched
        await asyncio.sleep(0)
        got: list[int] = []

        async def read_until_overflow() -> None:
            while True:
                got.append(int((await sub.get(timeout=5))["N"]))

        with pytest.raises(SubscriptionOverflowError):
            await read_until_overflow()
        assert got == list(range(len(got))) and len(got) <= 5
        assert sub.dropped > 0
        await b.emit("Seq", N="x")
        assert (await next_named(sub, "Seq")).server in ("a", "b")  # reading goes on
        assert drop.dropped > 0
        # b's event may or may not be queued yet (it comes from another connection).
        queued = [drop.get_nowait() for _ in range(drop.qsize())]
        kept = [int(e["N"]) for e in queued if e is not None and e.server == "a"]
        assert kept == sorted(kept) and kept[-1] == 20
        assert [e["N"] for e in queued if e is not None and e.server == "b"] in ([], ["x"])


async def test_item3_fleet_events_close_and_break_unregister_every_part(
    pbxs: list[FakeAsterisk],
) -> None:
    async with Fleet({"a": spec(pbxs[0]), "b": spec(pbxs[1])}, **FAST) as fleet:
        before = [len(c._dispatcher.subscriptions()) for c in fleet.values()]
        async with fleet.events() as sub:
            assert [len(c._dispatcher.subscriptions()) for c in fleet.values()] == [
                n + 1 for n in before
            ]
        assert sub.closed
        for _ in range(3):
            await asyncio.sleep(0)
        assert [len(c._dispatcher.subscriptions()) for c in fleet.values()] == before
        with pytest.raises(AMIConnectionError):
            await sub.get(timeout=1)


async def test_item3_fleet_cancelled_connect_leaves_nothing_running() -> None:
    silent = await silent_server()
    port = silent.sockets[0].getsockname()[1]
    before = asyncio.all_tasks()
    try:
        fleet = Fleet({"silent": spec(port)}, **FAST)
        task = asyncio.ensure_future(fleet.connect())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await fleet.close()
        assert fleet.status()["silent"].state == "closed"
        assert asyncio.all_tasks() - before == set()
    finally:
        silent.close()


def test_item3_fleet_refuses_bad_server_tables() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        Fleet({})
    with pytest.raises(ValueError, match="its name is its key"):
        Fleet({"a": {"host": "h", "name": "x"}}, username="u", secret="s")
    with pytest.raises(ValueError, match="non-empty strings"):
        Fleet({"": {"host": "h"}}, username="u", secret="s")
    client = Client("h", username="u", secret="s")
    fleet = Fleet({"mine": client})
    assert fleet["mine"] is client and client.name == "mine"
