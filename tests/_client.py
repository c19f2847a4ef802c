"""What the client tests share: a FakeAsterisk, a client for it, a connected client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ami_async import Client
from ami_async.testing import FakeAsterisk

SECRET = "amp111"


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(auth_failure_delay=0.05) as server:
        yield server


def client_for(pbx: FakeAsterisk, **kw: Any) -> Client:
    options: dict[str, Any] = {"ping_interval": None, "timeout": 5.0, "action_timeout": 5.0}
    options.update(kw)
    secret = options.pop("secret", SECRET)
    return Client(pbx.host, pbx.port, username="admin", secret=secret, **options)


@pytest.fixture
async def ami(pbx: FakeAsterisk) -> AsyncIterator[Client]:
    client = client_for(pbx)
    await client.connect()
    yield client
    await client.close()


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
