"""Shared helpers of the tests/test_subscriptions*.py files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from ami_async import Client, Event, Subscription
from ami_async.dispatch import Dispatcher
from ami_async.testing import FakeAsterisk


def spawn(coro: Awaitable[Any]) -> asyncio.Task[Any]:
    return asyncio.ensure_future(coro)


def ev(name: str, **headers: str) -> Event:
    return Event([("Event", name), *headers.items()])


def subscribe(d: Dispatcher, *names: str, maxsize: int = 100, **kw: Any) -> Subscription:
    return d.subscribe(names, kw.get("predicate"), maxsize, kw.get("overflow", "error"))


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk() as server:
        yield server


@pytest.fixture
async def ami(pbx: FakeAsterisk) -> AsyncIterator[Client]:
    client = Client(
        pbx.host,
        pbx.port,
        username="admin",
        secret="amp111",
        ping_interval=None,
        timeout=5.0,
        action_timeout=5.0,
    )
    await client.connect()
    yield client
    await client.close()


async def emit_all(pbx: FakeAsterisk, ami: Client, n: int, name: str = "UserEvent") -> None:
    for i in range(n):
        await pbx.emit(name, Seq=str(i))
    await ami.ping()  # everything emitted before the Pong has been dispatched
