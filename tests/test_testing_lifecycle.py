"""FakeAsterisk's close() and restart() against clients that connect, stop reading, or overlap.

The adversarial review's items 1, 6, 7 and 8 (and two restarts at once): a connection
accepted while the fake stops listening, a close() during a restart's pause, a client
that no longer reads, a timeout that is not a number of seconds.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from typing import TypeVar

import pytest
from _fake_client import RawClient

import ami_async
from ami_async.testing import FakeAsterisk

TIMEOUT = 5.0
# Loop iterations between a client's connect and close()/restart(): they cover a socket
# accepted before its transport exists, a transport whose session has not started, and a
# session already serving (CPython 3.10 to 3.13 differ in where each falls).
RACE_STEPS = range(9)
LOGIN = b"Action: Login\r\nUsername: admin\r\nSecret: amp111\r\n\r\n"

T = TypeVar("T")


async def within(awaitable: Awaitable[T]) -> T:
    """`awaitable`, or a test failure (not a hang) if it does not finish."""
    return await asyncio.wait_for(awaitable, TIMEOUT)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect_racing(fake: FakeAsterisk, steps: int) -> asyncio.Future[Streams]:
    """Start connecting to `fake` and let the loop run `steps` times."""
    connecting = asyncio.ensure_future(asyncio.open_connection(fake.host, fake.port))
    for _ in range(steps):
        await asyncio.sleep(0)
    return connecting


async def answers_after_stop(connecting: asyncio.Future[Streams]) -> bytes:
    """What a client that connected as the fake stopped gets for a Login, up to the end."""
    try:
        reader, writer = await within(connecting)
    except OSError:
        return b""  # refused or reset while connecting: not served
    try:
        writer.write(LOGIN)
        return await within(reader.read())  # until the fake closes it
    except ConnectionError:
        return b""
    finally:
        writer.close()


# -- item 1: a connection accepted while the fake stops listening ---------------------------


@pytest.mark.parametrize("steps", RACE_STEPS)
async def test_item1_close_racing_a_connect_returns_and_serves_that_client_nothing(
    steps: int,
) -> None:
    fake = FakeAsterisk(pbx=False)
    await fake.start()
    connecting = await connect_racing(fake, steps)
    await within(fake.close())  # 3.12+: Server.wait_closed() used to wait for that client
    # Used to: a Login answered after close(), or no banner and no close at all.
    assert b"Response" not in await answers_after_stop(connecting)
    assert fake.sessions == []


@pytest.mark.parametrize("steps", RACE_STEPS)
async def test_item1_restart_racing_a_connect_returns_and_serves_that_client_nothing(
    steps: int,
) -> None:
    async with FakeAsterisk(pbx=False) as fake:
        connecting = await connect_racing(fake, steps)
        await within(fake.restart(down=0.01, boot=0))
        assert b"Response" not in await answers_after_stop(connecting)
        client = RawClient(*await within(asyncio.open_connection(fake.host, fake.port)))
        await client.banner()
        await client.login()
        await client.close()


# -- item 7: close() while restart() is down ------------------------------------------------


async def test_item7_close_during_restart_ends_it_and_the_fake_stays_closed() -> None:
    fake = FakeAsterisk(pbx=False)
    await fake.start()
    client = RawClient(*await asyncio.open_connection(fake.host, fake.port))
    await client.banner()
    await client.login()
    restarting = asyncio.create_task(fake.restart(down=60, boot=0))
    await within(client.eof())  # the restart has stopped listening
    await client.close()
    await within(fake.close())
    await within(restarting)  # used to sleep out its pause, then listen again
    with pytest.raises(ConnectionRefusedError):
        await within(asyncio.open_connection(fake.host, fake.port))
    with pytest.raises(RuntimeError, match="not started"):
        await fake.restart()


# -- item 8: restart() with a client that stopped reading -----------------------------------


async def test_item8_restart_is_not_held_by_a_client_that_stopped_reading() -> None:
    async with FakeAsterisk(pbx=False) as fake:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (fake.host, fake.port))
        stuck = RawClient(*await asyncio.open_connection(sock=sock))
        await stuck.banner()
        await stuck.login()
        transport = stuck.writer.transport
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        server_side = fake.sessions[-1]._writer.get_extra_info("socket")
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        event = [("Event", "UserEvent"), ("Privilege", "user,all"), ("UserEvent", "x" * 1000)]
        for _ in range(1000):  # far more than the socket buffers and the writer's limit
            fake._publish(list(event))
        healthy = ami_async.Client(
            fake.host, fake.port, username="admin", secret="amp111", ping_interval=None
        )
        await healthy.connect()
        try:
            await within(fake.restart(down=0.01, boot=0))  # used to wait for the drain forever
            await healthy.wait_connected(timeout=TIMEOUT)
            assert (await healthy.send_action("Ping", timeout=TIMEOUT)).get("Ping") == "Pong"
        finally:
            await healthy.close()
            await stuck.close()


# -- two restarts at once -------------------------------------------------------------------


async def test_two_restarts_at_once_run_one_after_the_other() -> None:
    async with FakeAsterisk(pbx=False) as fake:
        results = await within(
            asyncio.gather(fake.restart(down=0.01, boot=0), fake.restart(down=0.01, boot=0))
        )  # the second used to raise RuntimeError("FakeAsterisk is not started")
        assert list(results) == [None, None]
        client = RawClient(*await within(asyncio.open_connection(fake.host, fake.port)))
        await client.banner()
        await client.login()
        await client.close()


# -- item 6: timeouts that are not a number of seconds ---------------------------------------


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0])
async def test_item6_wait_for_action_refuses_a_timeout_that_is_not_finite_or_negative(
    timeout: float,
) -> None:
    # A nan timeout used to reach the loop's scheduler: the loop died (3.10, 3.13).
    async with FakeAsterisk(pbx=False) as fake:
        with pytest.raises(ValueError, match="timeout"):
            await within(fake.wait_for_action("Nope", timeout=timeout))


# -- the API reference ---------------------------------------------------------------------


def test_fake_asterisk_attributes_have_docstrings_the_api_reference_shows() -> None:
    griffe = pytest.importorskip("griffe")
    fake = griffe.load("ami_async.testing")["FakeAsterisk"]
    for name in ("host", "port", "sessions", "actions", "users", "accounts"):
        docstring = fake.members[name].docstring
        assert docstring is not None and docstring.value, name
