"""Logging off and closing, at ordinary and awkward moments."""

from __future__ import annotations

import asyncio
import logging

import pytest
from _client import SECRET, ami, client_for, pbx
from _servers import deaf_server

import ami_async
from ami_async import (
    ActionTimeoutError,
    Client,
    Event,
)
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures (tests/_client.py)


async def test_logoff_closes_without_reconnecting(pbx: FakeAsterisk) -> None:
    client = client_for(pbx)
    await client.connect()
    response = await client.logoff()
    assert response["Response"] == "Goodbye"
    assert client.closed
    assert not client.connected


async def test_logoff_sent_as_an_action_is_not_a_lost_connection(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    lost: list[BaseException | None] = []
    client = client_for(pbx, on_disconnect=lambda c, exc: lost.append(exc))
    await client.connect()
    sub = client.events()
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        response = await client.send_action("Logoff")
        assert response["Response"] == "Goodbye"
        await asyncio.wait_for(_drain(sub), 2)  # the iterator ends: the client closed
    assert client.closed
    assert client.reconnects == 0
    assert lost == []
    assert not [r for r in caplog.records if "lost" in r.getMessage()]


async def test_close_twice_and_concurrently(pbx: FakeAsterisk) -> None:
    client = client_for(pbx)
    await client.connect()
    await asyncio.gather(client.close(), client.close())
    await client.close()
    assert client.closed
    assert [a["Action"] for a in pbx.actions].count("Logoff") == 1


async def test_close_while_connecting_leaves_no_session(pbx: FakeAsterisk) -> None:
    hooks: list[str] = []
    client = Client(
        "localhost",  # a name to resolve: connect() is still in progress below
        pbx.port,
        username="admin",
        secret=SECRET,
        ping_interval=None,
        on_connect=lambda c: hooks.append("connected"),
    )
    connecting = asyncio.ensure_future(client.connect())
    await asyncio.sleep(0)
    await client.close()  # e.g. a service shutting down during its start-up
    with pytest.raises(ami_async.AMIConnectionError, match="closed"):
        await asyncio.wait_for(connecting, 5)
    assert not client.connected
    assert hooks == []
    assert await _no_live_session(pbx)


async def test_close_from_inside_an_async_handler(pbx: FakeAsterisk) -> None:
    client = client_for(pbx, ping_interval=30)  # the keepalive: a task close() must end
    await client.connect()
    closed = asyncio.Event()

    @client.on("Shutdown")
    async def on_shutdown(ev: Event) -> None:
        await client.close()
        closed.set()

    await pbx.emit("Shutdown", Shutdown="Cleanly")
    await asyncio.wait_for(closed.wait(), 2)  # close() returned (it used to raise there)
    assert client.closed
    await client.close()
    with pytest.raises(ami_async.AMIConnectionError, match="closed"):
        await client.wait_connected(timeout=1)


async def test_a_logoff_that_times_out_does_not_make_a_later_loss_silent(
    pbx: FakeAsterisk,
) -> None:
    lost: list[BaseException | None] = []
    client = client_for(pbx, on_disconnect=lambda c, exc: lost.append(exc))
    await client.connect()
    pbx.script("Logoff")  # never answered
    with pytest.raises(ActionTimeoutError):
        await client.send_action("Logoff", timeout=0.1)
    gone = asyncio.Event()
    client.add_disconnect_hook(lambda c, exc: gone.set())
    await pbx.drop()
    await asyncio.wait_for(gone.wait(), 2)
    assert lost  # reported as a loss, not taken for the end of a logoff
    assert not client.closed
    await client.close(logoff=False)


async def test_close_does_not_wait_forever_for_a_peer_that_stopped_reading() -> None:
    async with deaf_server() as port:
        client = Client(
            "127.0.0.1", port, username="u", secret="x", ping_interval=None, events=False
        )
        await client.connect()
        protocol = client._protocol
        assert protocol is not None
        big = "x" * 60_000
        tasks = [
            asyncio.ensure_future(client.send_action("UserEvent", Body=big, timeout=0.2))
            for _ in range(100)
        ]
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(client.close(logoff=False), 5)  # bounded, not stuck in flush
        assert protocol.closed


async def _drain(sub: ami_async.Subscription) -> None:
    async for _ in sub:
        pass


async def _no_live_session(pbx: FakeAsterisk) -> bool:
    """True once the server has no open session (it notices the close a little later)."""
    for _ in range(200):
        if not [s for s in pbx.sessions if not s.closed]:
            return True
        await asyncio.sleep(0.01)
    return False


async def test_removed_hooks_are_not_called_and_a_hook_may_remove_itself(
    pbx: FakeAsterisk,
) -> None:
    calls: list[str] = []
    client = client_for(pbx, reconnect_delay=0.01)

    def once(c: ami_async.Client) -> None:
        calls.append("once")
        c.remove_connect_hook(once)  # while the hooks are being called

    def kept(c: ami_async.Client) -> None:
        calls.append("kept")

    def lost(c: ami_async.Client, exc: BaseException | None) -> None:
        calls.append("lost")

    client.add_connect_hook(once)
    client.add_connect_hook(kept)
    client.add_disconnect_hook(lost)
    await client.connect()
    assert calls == ["once", "kept"]  # removing itself did not skip the next hook
    client.remove_disconnect_hook(lost)
    client.remove_disconnect_hook(lost)  # not registered any more: ignored
    client.remove_connect_hook(lost)  # type: ignore[arg-type]  # never registered: ignored
    reconnected = asyncio.Event()
    client.add_connect_hook(lambda c: reconnected.set())
    await pbx.drop()
    await asyncio.wait_for(reconnected.wait(), 5)
    assert calls == ["once", "kept", "kept"]
    await client.close()
