"""Handlers (issue 9, items 7 and 8): only a cancel of its worker stops one, and
`off()` never cuts a call in progress short."""

from __future__ import annotations

import asyncio
import logging
import sys

import _subscriptions
import pytest
from _subscriptions import emit_all, ev, spawn

from ami_async import Client, Event
from ami_async.dispatch import Dispatcher
from ami_async.subscription import HandlerRunner
from ami_async.testing import FakeAsterisk

pbx = _subscriptions.pbx  # fixtures
ami = _subscriptions.ami


# -- item 7: a CancelledError out of an async handler --------------------------------------


async def test_item7_cancelled_error_from_async_handler_keeps_worker(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    third = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append(event["Seq"])
        if event["Seq"] == "0":
            own = asyncio.ensure_future(asyncio.sleep(10))
            own.cancel()
            await own  # lets its own task's CancelledError out
        if event["Seq"] == "2":
            third.set()

    ami.on("UserEvent")(handler)
    with caplog.at_level(logging.ERROR, logger="ami_async"):
        await emit_all(pbx, ami, 3)
        await asyncio.wait_for(third.wait(), 5)
    assert seen == ["0", "1", "2"]
    assert ami.handler_dropped(handler) == 0
    assert any(
        "handler" in r.getMessage() and r.exc_info and r.exc_info[0] is asyncio.CancelledError
        for r in caplog.records
    )


async def test_item7_a_cancel_of_the_worker_itself_still_stops_it() -> None:
    d = Dispatcher(spawn)
    started = asyncio.Event()

    async def handler(event: Event) -> None:
        started.set()
        await asyncio.sleep(10)

    runner = d.add_handler(("*",), handler, 10, "drop_oldest")
    d.broadcast(ev("E"))
    await asyncio.wait_for(started.wait(), 5)
    task = runner._task
    assert task is not None
    task.cancel()  # e.g. asyncio.run() cancelling what is left at shutdown
    done, _ = await asyncio.wait([task], timeout=5)
    assert done and task.cancelled()

    # Idle, too.
    runner2 = d.add_handler(("*",), handler, 10, "drop_oldest")
    started.clear()
    d.broadcast(ev("E"))
    await asyncio.wait_for(started.wait(), 5)
    d.stop_handlers()
    assert runner2._task is None


# -- item 8: off() from inside the handler ------------------------------------------------


async def test_item8_off_inside_async_handler_lets_the_running_call_finish(
    pbx: FakeAsterisk, ami: Client
) -> None:
    calls: list[str] = []
    finished = asyncio.Event()

    async def handler(event: Event) -> None:
        calls.append(event["Seq"])
        ami.off(handler)
        await asyncio.sleep(0.01)  # the call goes on after off()
        calls.append("finished")
        finished.set()

    ami.on("UserEvent")(handler)
    await emit_all(pbx, ami, 3)
    await asyncio.wait_for(finished.wait(), 5)
    await emit_all(pbx, ami, 2)
    await asyncio.sleep(0.02)
    assert calls == ["0", "finished"]  # no later event delivered


async def test_item8_off_from_elsewhere_does_not_cancel_a_call_in_progress() -> None:
    d = Dispatcher(spawn)
    entered = asyncio.Event()
    release = asyncio.Event()
    done: list[str] = []

    async def handler(event: Event) -> None:
        entered.set()
        await release.wait()
        done.append(event.name)

    runner = d.add_handler(("*",), handler, 10, "drop_oldest")
    d.broadcast(ev("A"))
    d.broadcast(ev("B"))
    await asyncio.wait_for(entered.wait(), 5)
    task = runner._task
    assert d.remove_handler(handler) is True
    release.set()
    assert task is not None
    await asyncio.wait_for(task, 5)  # ends by itself once the call returns
    assert done == ["A"]


# -- handlers: unit checks kept from the old worker ------------------------------------------


async def test_handler_runner_validates_like_a_subscription() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        HandlerRunner(lambda e: None, 0, "error", spawn)


@pytest.mark.skipif(sys.version_info >= (3, 11), reason="3.10 keeps its own cancel flag")
async def test_item7_on_3_10_a_timeout_inside_the_handler_is_not_a_stop() -> None:
    async_timeout = pytest.importorskip("async_timeout")
    d = Dispatcher(spawn)
    seen: list[str] = []
    both = asyncio.Event()

    async def handler(event: Event) -> None:
        seen.append(event.name)
        if event.name == "A":
            try:
                async with async_timeout.timeout(0.01):
                    await asyncio.sleep(1)
            except asyncio.TimeoutError:
                pass
            return
        own = asyncio.ensure_future(asyncio.sleep(10))
        own.cancel()
        try:
            await own
        finally:
            if event.name == "C":
                both.set()

    d.add_handler(("*",), handler, 10, "drop_oldest")
    d.broadcast(ev("A"))
    d.broadcast(ev("B"))
    await asyncio.sleep(0.1)
    d.broadcast(ev("C"))
    await asyncio.wait_for(both.wait(), 5)
    assert seen == ["A", "B", "C"]
    d.stop_handlers()
