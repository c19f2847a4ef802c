"""Issue 9, the FakeAsterisk side: quiet teardown, login events, restarts, Originate variables."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_testing import RawClient

from ami_async.testing import FakeAsterisk, FaultProxy

TIMEOUT = 5.0


@pytest.fixture
async def loop_reports() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the running loop's exception handler during the test."""
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        yield reports
    finally:
        loop.set_exception_handler(old)


async def connect(fake: FakeAsterisk) -> RawClient:
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    client = RawClient(reader, writer)
    await client.banner()
    return client


# -- item 16 / item 20: teardown with live sessions -------------------------------------


async def test_item16_close_with_live_sessions_reports_nothing_to_the_loop(
    loop_reports: list[dict[str, Any]],
) -> None:
    fake = FakeAsterisk()
    await fake.start()
    clients = [await connect(fake) for _ in range(3)]
    await clients[0].login()
    await asyncio.wait_for(fake.close(), TIMEOUT)
    for client in clients:
        await client.eof()
        await client.close()
    assert loop_reports == []


async def test_item16_drop_reports_nothing_to_the_loop(
    loop_reports: list[dict[str, Any]],
) -> None:
    async with FakeAsterisk() as fake:
        clients = [await connect(fake) for _ in range(2)]
        await fake.drop()
        for client in clients:
            await client.eof()
            await client.close()
        assert fake.sessions == []
    assert loop_reports == []


async def test_item16_faultproxy_close_during_a_connect_reports_nothing_to_the_loop(
    loop_reports: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    connecting = asyncio.Event()

    async def never_connects(*args: object, **kwargs: object) -> Any:
        connecting.set()
        await asyncio.Event().wait()

    async with FaultProxy("127.0.0.1", 1, connect_timeout=60) as proxy:
        monkeypatch.setattr(asyncio, "open_connection", never_connects)
        with socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT):
            await asyncio.wait_for(connecting.wait(), TIMEOUT)
            await asyncio.wait_for(proxy.close(), TIMEOUT)
    assert loop_reports == []


async def test_item20_interrupted_server_with_clients_ends_quietly() -> None:
    """Ctrl-C on a program serving FakeAsterisk: asyncio.run cancels it; no traceback."""
    import subprocess
    import sys

    program = (
        "import asyncio, os, signal, socket\n"
        "from ami_async.testing import FakeAsterisk\n"
        "async def main():\n"
        "    pbx = FakeAsterisk()\n"
        "    await pbx.start()\n"
        "    socks = [socket.create_connection((pbx.host, pbx.port)) for _ in range(2)]\n"
        "    while len(pbx.sessions) < 2:\n"
        "        await asyncio.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    try:\n"
        "        await asyncio.Event().wait()\n"
        "    finally:\n"
        "        await pbx.close()\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "interrupted\n"
    assert done.stderr == ""
