"""Defects found by the adversarial review of the client (fixer F1).

Bounds are hang checks ("within N seconds"), never benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _client import SECRET, ami, pbx
from test_client_issue9 import until

import ami_async.client as client_module
from ami_async import ActionTimeoutError, Client, Event
from ami_async._compat import timeout as _timeout
from ami_async.testing import FakeAsterisk, make_response

__all__ = ["ami", "pbx"]  # fixtures (tests/_client.py)


@contextlib.asynccontextmanager
async def busy_session(action: str) -> AsyncIterator[tuple[FakeAsterisk, Client, list[Any]]]:
    """A server whose `action` keeps the session busy (silent) for 2 s, and a client
    with a quick keepalive; yields them and the list of its disconnects."""

    async def busy(session: Any, frame: Any) -> Any:
        await asyncio.sleep(2.0)  # the session is busy: the Ping queues behind it
        return make_response(frame, "Success", Output="done")

    lost: list[Any] = []
    async with FakeAsterisk() as server:
        server.on_action(action, busy)
        client = Client(
            server.host,
            server.port,
            username="admin",
            secret=SECRET,
            ping_interval=0.1,
            ping_timeout=0.3,
            on_disconnect=lambda c, exc: lost.append(exc),
        )
        async with client:
            yield server, client, lost


async def test_review1_cancelled_blocking_action_keeps_the_keepalive_waiting() -> None:
    """The caller gives up on a blocking action (a timeout around it), but Asterisk's
    session stays busy with it: the keepalive must still expect silence until the
    late answer (or the action's own deadline), not drop a healthy link."""
    async with busy_session("Command") as (_, ami, lost):
        task = asyncio.ensure_future(ami.send_action("Command", Command="core reload", timeout=10))
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with _timeout(10):
            response = await ami.send_action("Getvar", Variable="X", timeout=8)
        assert response.success
        assert lost == [] and ami.reconnects == 0
        # The late answer came and removed the action from the table.
        await until(lambda: not ami._dispatcher.pending and not ami._watch.blocking, 5)


async def test_review2_handler_that_awaits_close_in_its_cancel_cleanup_does_not_deadlock(
    ami: Client, pbx: FakeAsterisk
) -> None:
    """The teardown waits for the handler, which waits for close(): one of the
    client's own tasks must not wait for the teardown."""
    started = asyncio.Event()

    async def handler(event: Event) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await ami.close()  # "make sure we are shut down" on the way out
            raise

    ami.on("UserEvent")(handler)
    await pbx.emit("UserEvent", UserEvent="x")
    async with _timeout(5):
        await started.wait()
    async with _timeout(10):  # a hang check: it deadlocked before
        await ami.close()
    assert ami.closed


async def test_review2_close_waits_a_bounded_grace_for_a_stubborn_handler(
    ami: Client, pbx: FakeAsterisk, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """A handler whose cancel cleanup takes 30 s: close() returns after the grace and
    names the task it left behind."""
    monkeypatch.setattr(client_module, "CLOSE_GRACE", 0.2)
    started = asyncio.Event()

    async def stubborn(event: Event) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(30)  # a slow flush

    ami.on("UserEvent")(stubborn)
    await pbx.emit("UserEvent", UserEvent="x")
    async with _timeout(5):
        await started.wait()
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        async with _timeout(10):  # a hang check: it waited the full 30 s before
            await ami.close()
    assert ami.closed and ami._protocol is None
    assert any("left behind" in r.getMessage() for r in caplog.records)
    for task in list(ami._tasks):
        task.cancel()
    await asyncio.gather(*ami._tasks, return_exceptions=True)


async def test_review7_stream_takes_blocking_and_sends_no_such_header() -> None:
    """stream(blocking=True) used to send a `blocking: true` header to Asterisk and
    leave the keepalive unaware of a list whose server stays silent for long."""
    async with busy_session("SlowList") as (server, ami, lost):
        async with _timeout(10):
            items = [e async for e in ami.stream("SlowList", timeout=8, blocking=True)]
        assert items == []
        frame = await server.wait_for_action("SlowList")
        assert frame.get("blocking") is None
        assert lost == [] and ami.reconnects == 0
        assert not ami._watch.blocking


async def _outcomes(make: Any, at: float, trials: int = 30) -> dict[str, int]:
    """Cancel `make()`'s task at `at` seconds after its start, `trials` times."""
    loop = asyncio.get_running_loop()
    seen: dict[str, int] = {}
    for _ in range(trials):
        task = asyncio.ensure_future(make())
        await asyncio.sleep(0)
        loop.call_at(loop.time() + at, task.cancel)
        try:
            await task
            outcome = "returned"
        except asyncio.CancelledError:
            outcome = "cancelled"
        except Exception as exc:
            outcome = type(exc).__name__
        seen[outcome] = seen.get(outcome, 0) + 1
    return seen


async def test_review4_cancel_landing_with_connects_own_timeout_is_a_cancel() -> None:
    """On 3.10 async-timeout took the caller's cancel for its own timeout when both
    landed together: connect() raised AMIConnectionError instead of CancelledError."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never a banner
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: list[Client] = []

    async def connect() -> None:
        client = Client("127.0.0.1", port, username="admin", secret=SECRET, timeout=0.05)
        clients.append(client)
        await client.connect()

    try:
        # The first attempt's timer was set before our cancel timer: both fire together.
        seen = await _outcomes(connect, 0.05)
        assert seen == {"cancelled": 30}
    finally:
        for client in clients:
            await client.close()
        server.close()
        await server.wait_closed()


async def test_review4_cancel_landing_with_a_stream_wait_timeout_is_a_cancel(
    ami: Client, pbx: FakeAsterisk
) -> None:
    """A list that starts and never sends an item: stream(timeout=0.05) cancelled at
    its deadline raised ActionTimeoutError on 3.10."""
    pbx.script("QuietList", {"Response": "Success", "EventList": "start"})

    async def drain() -> None:
        async for _ in ami.stream("QuietList", timeout=0.05):
            pass

    assert await _outcomes(drain, 0.05) == {"cancelled": 30}
    # Its own timeout alone is still an ActionTimeoutError.
    with pytest.raises(ActionTimeoutError):
        await drain()


async def test_review6_filter_refused_after_a_restart_does_not_loop_logins(
    pbx: FakeAsterisk, caplog: Any
) -> None:
    """The server accepted a filter, then (manager.conf changed) refuses it: the
    client logged in again and again forever. Now it warns and stays connected."""
    refuse = False

    def filter_action(session: Any, frame: Any) -> Any:
        if refuse:
            return make_response(frame, "Error", Message="Filter Not Allowed")
        return make_response(frame, "Success", Message="Filter Added Successfully")

    pbx.on_action("Filter", filter_action)
    lost: list[BaseException | None] = []
    client = Client(
        pbx.host,
        pbx.port,
        username="admin",
        secret=SECRET,
        ping_interval=None,
        reconnect_delay=0.01,
        reconnect_max_delay=0.05,
        on_disconnect=lambda c, exc: lost.append(exc),
    )
    async with client as ami:
        await ami.add_filter("Event: Hangup")
        refuse = True
        with caplog.at_level(logging.WARNING, logger="ami_async"):
            await pbx.drop()
            await until(lambda: ami.reconnects >= 1 and ami.connected, 10)
            await asyncio.sleep(0.3)  # a loop would log in again meanwhile
        assert ami.connected and ami.reconnects == 1 and len(lost) == 1
        logins = [a for a in pbx.actions if a["Action"].lower() == "login"]
        assert len(logins) == 2
        assert any("refused filter" in r.getMessage() for r in caplog.records)
