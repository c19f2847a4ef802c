"""The client through a FaultProxy: what production does to a link, on command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ami_async import Client, ConnectionLostError
from ami_async.testing import FakeAsterisk, FaultProxy


@pytest.fixture
async def link() -> AsyncIterator[tuple[FakeAsterisk, FaultProxy]]:
    async with (
        FakeAsterisk(time_scale=0.01) as pbx,
        FaultProxy(pbx.host, pbx.port) as proxy,
    ):
        yield pbx, proxy


class Causes:
    def __init__(self) -> None:
        self.lost: list[BaseException | None] = []
        self.connects = 0
        self.changed = asyncio.Event()

    def on_connect(self, client: Client) -> None:
        self.connects += 1
        self.changed.set()

    def on_disconnect(self, client: Client, exc: BaseException | None) -> None:
        self.lost.append(exc)
        self.changed.set()

    async def until(self, predicate: Any, timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def through(proxy: FaultProxy, causes: Causes | None = None, **kw: Any) -> Client:
    options: dict[str, Any] = {
        "ping_interval": None,
        "timeout": 2.0,
        "action_timeout": 3.0,
        "reconnect_delay": 0.01,
        "reconnect_max_delay": 0.05,
    }
    if causes is not None:
        options.update(on_connect=causes.on_connect, on_disconnect=causes.on_disconnect)
    options.update(kw)
    return Client(proxy.host, proxy.port, username="admin", secret="amp111", **options)


async def test_a_cut_link_fails_pending_actions_and_reconnects(
    link: tuple[FakeAsterisk, FaultProxy],
) -> None:
    pbx, proxy = link
    causes = Causes()
    pbx.script("Slow")
    async with through(proxy, causes) as ami:
        sub = ami.events("UserEvent")
        slow = asyncio.ensure_future(ami.send_action("Slow", timeout=30))
        await pbx.wait_for_action("Slow")
        proxy.cut()
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(slow, 2)
        await causes.until(lambda: causes.connects == 2)
        await ami.user_event("AfterTheCut")
        assert (await sub.get(timeout=2))["UserEvent"] == "AfterTheCut"
        assert ami.pending_actions == 0


async def test_a_half_open_link_is_found_by_the_keepalive(
    link: tuple[FakeAsterisk, FaultProxy],
) -> None:
    _, proxy = link
    causes = Causes()
    async with through(proxy, causes, ping_interval=0.05, ping_timeout=0.2) as ami:
        proxy.stall()  # both directions frozen, nothing closed: a half-open link
        await causes.until(lambda: len(causes.lost) == 1)
        assert "keepalive" in str(causes.lost[0])
        proxy.resume(flush=False)
        await causes.until(lambda: causes.connects == 2)
        assert (await ami.ping()).success


async def test_a_server_that_is_down_for_a_while(link: tuple[FakeAsterisk, FaultProxy]) -> None:
    _, proxy = link
    causes = Causes()
    async with through(proxy, causes) as ami:
        proxy.refuse(reset=True)  # every new connection is reset at once
        proxy.cut()
        await causes.until(lambda: len(causes.lost) == 1)
        await proxy.wait_until(lambda: proxy.connections_refused >= 2)  # it keeps trying
        assert not ami.connected
        proxy.refuse(False)
        await ami.wait_connected(timeout=5)
        assert (await ami.ping()).success


async def test_a_stream_fragmented_into_single_bytes(
    link: tuple[FakeAsterisk, FaultProxy],
) -> None:
    _, proxy = link
    proxy.fragment(1)  # every byte from the server arrives on its own
    async with through(proxy, action_timeout=10) as ami:
        assert ami.ami_version == "11.0.0"
        out = await ami.command("core show version")
        assert out.startswith("Asterisk ")
        sub = ami.events("Hangup")
        result = await ami.originate("Local/100@test", application="Wait", data="1")
        assert result.success
        hangup = await sub.get(timeout=10)
        assert hangup["Channel"].startswith("Local/100@test-")


async def test_a_slow_and_throttled_link(link: tuple[FakeAsterisk, FaultProxy]) -> None:
    pbx, proxy = link
    async with through(proxy) as ami:
        proxy.delay(0.02)
        proxy.throttle(20_000, direction="to_client")
        pbx.add_cli_command(
            "big output", "\n".join(f"line {i:04d} " + "x" * 60 for i in range(300))
        )
        results = await asyncio.gather(ami.command("big output"), ami.ping(), ami.ping())
        lines = results[0].split("\n")
        assert len(lines) == 300
        assert lines[-1].startswith("line 0299 ")
        assert all(r.success for r in results[1:])
