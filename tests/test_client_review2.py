"""Defects found by the second review, of the review fixes themselves.

Bounds are hang checks ("within N seconds"), never benchmarks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from _client import SECRET

from ami_async import Client, Response
from ami_async.testing import FakeAsterisk, make_response


async def _busy(session: Any, frame: Any) -> Any:
    await asyncio.sleep(0.5)  # the session is busy (silent) meanwhile
    return make_response(frame, "Success", Output="done")


@pytest.mark.parametrize("kind", ["stream", "send_action"])
async def test_review2_1_a_cancelled_blocking_action_never_blinds_the_keepalive(kind: str) -> None:
    """A blocking stream left early, or a blocking action cancelled, must not leave the
    keepalive waiting on a future nobody settles: a link that goes silent afterwards is
    found within ping_interval + ping_timeout, not at the cancelled action's deadline."""
    lost: list[float] = []
    async with FakeAsterisk() as server:
        server.on_action("SlowList", _busy)
        server.on_action("Command", _busy)
        client = Client(
            server.host,
            server.port,
            username="admin",
            secret=SECRET,
            ping_interval=0.1,
            ping_timeout=0.3,
            reconnect=False,
            on_disconnect=lambda c, e: lost.append(time.monotonic()),
        )
        async with client:
            if kind == "stream":

                async def consume() -> None:
                    async for _ in client.stream("SlowList", timeout=20, blocking=True):
                        pass

                task: asyncio.Future[Any] = asyncio.ensure_future(consume())
            else:
                task = asyncio.ensure_future(client.send_action("Command", Command="x", timeout=20))
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.sleep(1.0)  # the server's busy spell is over
            server.stall()  # now the link goes silent
            stalled = time.monotonic()
            for _ in range(100):
                if lost:
                    break
                await asyncio.sleep(0.1)
            server.resume()
            assert lost, "a silent link was not noticed within 10 s"
            assert lost[0] - stalled < 5.0  # the deadline of the cancelled action was 20 s


async def test_review2_2_a_cancelled_blocking_action_frees_its_action_id() -> None:
    """DESIGN: a cancelled action is removed from the pending table; a blocking one that
    Asterisk still runs is kept for the keepalive, but a new action may take its ID."""
    async with FakeAsterisk() as server:

        async def slow(session: Any, frame: Any) -> Any:
            await asyncio.sleep(2.0)
            return make_response(frame, "Success", Output="done")

        server.on_action("Command", slow)
        async with Client(server.host, server.port, username="admin", secret=SECRET) as c:
            task = asyncio.ensure_future(
                c.send_action("Command", Command="x", timeout=60, ActionID="mine", blocking=True)
            )
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            answer = await c.send_action("Ping", ActionID="mine", timeout=10)
            assert isinstance(answer, Response)
            assert answer.success


async def test_review2_3_a_cancel_racing_close_leaves_no_keepalive_entry() -> None:
    """A blocking action whose caller is cancelled in the same loop turn as close()
    leaves nothing behind: no pending action, no keepalive entry."""
    async with FakeAsterisk() as server:
        server.on_action("Command", _busy)
        c = Client(server.host, server.port, username="admin", secret=SECRET)
        await c.connect()
        task = asyncio.ensure_future(c.send_action("Command", Command="x", timeout=300))
        await asyncio.sleep(0.1)
        closing = asyncio.ensure_future(c.close(logoff=False))
        await asyncio.sleep(0)  # close() has started its teardown
        task.cancel()
        await asyncio.gather(task, closing, return_exceptions=True)
        assert c.closed
        assert c.pending_actions == 0
        assert not c._watch.blocking


@pytest.mark.parametrize("huge", [10**400, -(10**400)])
async def test_review2_4_a_huge_integer_timeout_is_a_value_error(huge: int) -> None:
    """10**400 is no float: it must be refused as a timeout like inf, with ValueError."""
    async with (
        FakeAsterisk() as server,
        Client(server.host, server.port, username="admin", secret=SECRET) as c,
    ):
        with pytest.raises(ValueError, match="timeout"):
            await c.send_action("Ping", timeout=huge)
        sub = c.events("UserEvent")
        with pytest.raises(ValueError, match="timeout"):
            await sub.get(timeout=huge)
        sub.close()
        with pytest.raises(ValueError, match="action_timeout"):
            c.action_timeout = huge
        assert c.pending_actions == 0
