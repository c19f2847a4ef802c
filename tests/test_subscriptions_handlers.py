"""Handlers (issue 9, items 7 and 8, and the review after them): only a cancel of its
worker stops one, no failure of a handler or a predicate (even a BaseException) reaches
the link, and `off()` never cuts a call in progress short but stops delivery at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import _subscriptions
import pytest
from _subscriptions import emit_all, ev, spawn

from ami_async import Client, Event
from ami_async._compat import timeout as _timeout
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


# -- a BaseException out of a handler or a predicate (not KeyboardInterrupt / SystemExit) ------


class UserStop(BaseException):
    """A user's BaseException subclass (not an Exception)."""


def raiser(kind: str) -> BaseException:
    return asyncio.CancelledError() if kind == "cancelled" else UserStop()


@pytest.mark.parametrize("kind", ["cancelled", "user"])
async def test_sync_handler_base_exception_is_logged_and_keeps_the_link(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    sub = ami.events("UserEvent")
    lost: list[BaseException | None] = []
    ami.add_disconnect_hook(lambda client, exc: lost.append(exc))

    def handler(event: Event) -> None:
        if event["N"] == "1":
            raise raiser(kind)

    ami.on("UserEvent")(handler)
    # Three events in one write: one read, the second one's handler raising.
    await pbx.send_raw(
        b"".join(f"Event: UserEvent\r\nUserEvent: u\r\nN: {i}\r\n\r\n".encode() for i in range(3))
    )
    with caplog.at_level(logging.ERROR, logger="ami_async"):
        await ami.ping()
    got = [sub.get_nowait() for _ in range(sub.qsize())]
    assert [e["N"] for e in got if e is not None] == ["0", "1", "2"]
    assert lost == [] and ami.reconnects == 0 and ami.connected
    assert any(
        "handler" in r.getMessage() and r.exc_info and r.exc_info[0] is type(raiser(kind))
        for r in caplog.records
    )


@pytest.mark.parametrize("kind", ["cancelled", "user"])
async def test_predicate_base_exception_is_logged_and_the_event_not_matched(
    caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    d = Dispatcher(spawn)

    def predicate(event: Event) -> bool:
        raise raiser(kind)

    refused = d.subscribe(("E",), predicate, 10, "error")
    other = d.subscribe(("E",), None, 10, "error")
    with caplog.at_level(logging.ERROR, logger="ami_async"):
        d.broadcast(ev("E"))  # raises nothing
    assert refused.qsize() == 0 and other.qsize() == 1
    assert any("predicate" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
async def test_keyboard_interrupt_and_system_exit_from_sync_user_code_still_propagate(
    exc: type[BaseException],
) -> None:
    d = Dispatcher(spawn)

    def handler(event: Event) -> None:
        raise exc()

    d.add_handler(("E",), handler, 10, "error")
    with pytest.raises(exc):
        d.broadcast(ev("E"))

    d2 = Dispatcher(spawn)

    def predicate(event: Event) -> bool:
        raise exc()

    sub = d2.subscribe(("E",), predicate, 10, "error")
    with pytest.raises(exc):
        d2.broadcast(ev("E"))
    sub.close()


async def deliver_a_b_c(
    handler: Callable[[Event], Awaitable[None]],
) -> tuple[list[str], HandlerRunner]:
    """Events A, B and (a moment later) C through `handler`'s worker: the names it got."""
    d = Dispatcher(spawn)
    seen: list[str] = []
    last = asyncio.Event()

    async def recording(event: Event) -> None:
        seen.append(event.name)
        try:
            await handler(event)
        finally:
            if event.name == "C":
                last.set()

    runner = d.add_handler(("*",), recording, 10, "error")
    d.broadcast(ev("A"))
    d.broadcast(ev("B"))
    await asyncio.sleep(0.05)
    d.broadcast(ev("C"))
    await asyncio.wait_for(last.wait(), 5)
    await asyncio.sleep(0)
    return seen, runner


async def test_async_handler_base_exception_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(event: Event) -> None:
        if event.name == "A":
            raise UserStop()

    with caplog.at_level(logging.ERROR, logger="ami_async"):
        seen, runner = await deliver_a_b_c(handler)
    assert seen == ["A", "B", "C"]
    assert runner._task is not None and not runner._task.done()
    assert runner.dropped == 0
    assert any(r.exc_info and r.exc_info[0] is UserStop for r in caplog.records)
    assert not any("too slow" in r.getMessage() for r in caplog.records)
    runner.stop()


@pytest.mark.parametrize("same_call", [False, True], ids=["next-call", "same-call"])
async def test_item7_a_timeout_inside_the_handler_is_not_a_stop(same_call: bool) -> None:
    # On 3.10 the timeout (async_timeout) cancels the worker task itself; that
    # cancel, turned into TimeoutError, is no request to stop the worker, even
    # when the same call then lets a CancelledError of its own out.
    async def handler(event: Event) -> None:
        if event.name == "C":
            return
        if event.name == "A":
            with contextlib.suppress(asyncio.TimeoutError):
                async with _timeout(0.01):
                    await asyncio.sleep(1)
            if not same_call:
                return
        own = asyncio.ensure_future(asyncio.sleep(10))
        own.cancel()
        await own  # the handler's own failure, not a stop

    seen, runner = await deliver_a_b_c(handler)
    assert seen == ["A", "B", "C"]
    assert runner._task is not None and not runner._task.done()
    runner.stop()


# -- a handler removed during the dispatch of an event gets nothing more ------------------


@pytest.mark.parametrize("later", ["sync", "async"])
async def test_off_from_a_sync_handler_keeps_the_current_event_from_the_removed_one(
    later: str,
) -> None:
    d = Dispatcher(spawn)
    calls: list[str] = []

    def b_sync(event: Event) -> None:
        calls.append("B")

    async def b_async(event: Event) -> None:
        calls.append("B")

    b = b_sync if later == "sync" else b_async

    def a(event: Event) -> None:
        calls.append(f"A off={d.remove_handler(b)}")

    d.add_handler(("E",), a, 10, "error")
    runner = d.add_handler(("E",), b, 10, "error")
    d.broadcast(ev("E"))
    await asyncio.sleep(0.01)
    assert calls == ["A off=True"]
    assert runner._task is None and not runner._queue
