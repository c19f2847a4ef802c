"""Subscriptions as async iterators and their readers (issue 9, items 1, 5, 6, 10, 13, 15, 17),
and their end during a dispatch or a rebuild of the dispatcher's targets.

Unit tests drive the dispatcher directly; the client-level ones go through
`Client` against `FakeAsterisk`, as a user would.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import traceback
from typing import Any

import _subscriptions
import pytest
from _subscriptions import emit_all, ev, spawn, subscribe

from ami_async import (
    AMIConnectionError,
    Client,
    ConnectionLostError,
    Event,
    Subscription,
    SubscriptionOverflowError,
)
from ami_async._compat import timeout as compat_timeout
from ami_async.dispatch import Dispatcher
from ami_async.message import Message
from ami_async.testing import FakeAsterisk, FakeSession, make_response, with_action_id

# -- item 1: the subscription is an async iterator --------------------------------------

pbx = _subscriptions.pbx  # fixtures
ami = _subscriptions.ami


async def test_item1_subscription_is_its_own_async_iterator(pbx: FakeAsterisk, ami: Client) -> None:
    sub = ami.events("UserEvent")
    assert sub.__aiter__() is sub
    await emit_all(pbx, ami, 4)
    assert (await anext(sub))["Seq"] == "0"
    assert (await asyncio.wait_for(sub.__anext__(), 5))["Seq"] == "1"
    assert (await sub.get(timeout=5))["Seq"] == "2"
    async for event in sub:
        assert event["Seq"] == "3"
        break
    sub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(sub)
    assert [e async for e in sub] == []


async def test_item1_anext_ends_only_once_closed_and_drained() -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d)
    d.broadcast(ev("A"))
    d.end_subscriptions(None)  # the client closed: what was queued is still read
    assert (await anext(sub)).name == "A"
    with pytest.raises(StopAsyncIteration):
        await sub.__anext__()
    with pytest.raises(AMIConnectionError, match="closed"):
        await sub.get()


async def test_item1_overflow_rules_unchanged_for_anext() -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d, maxsize=2)
    for i in range(5):
        d.broadcast(ev("E", Seq=str(i)))
    assert [(await anext(sub))["Seq"] for _ in range(2)] == ["0", "1"]
    with pytest.raises(SubscriptionOverflowError) as info:
        await anext(sub)
    assert info.value.dropped == 3 and sub.dropped == 3
    d.broadcast(ev("E", Seq="5"))
    assert (await anext(sub))["Seq"] == "5"  # reading goes on after the gap
    sub.close()


async def test_item1_break_out_of_a_held_subscription_keeps_it_and_its_queue(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("UserEvent")
    await emit_all(pbx, ami, 3)
    async for event in sub:
        assert event["Seq"] == "0"
        break
    assert not sub.closed
    assert sub.qsize() == 2
    assert [(await anext(sub))["Seq"] for _ in range(2)] == ["1", "2"]
    await emit_all(pbx, ami, 1)
    assert (await sub.get(timeout=5))["Seq"] == "0"  # still registered
    sub.close()


async def test_item1_break_out_of_an_unheld_subscription_unregisters_it(
    pbx: FakeAsterisk, ami: Client
) -> None:
    async def first_hangup() -> str:
        async for event in ami.events("UserEvent"):
            return event["Seq"]
        return ""

    reader = asyncio.ensure_future(first_hangup())
    await asyncio.sleep(0)
    await emit_all(pbx, ami, 3)
    assert await reader == "0"
    # Nobody holds it any more: it gets nothing more at once (the rest is discarded)
    # and is swept out of the dispatcher at its next read.
    assert ami._dispatcher.subscriptions() == []
    assert ami._dispatcher.interest() == frozenset()
    assert ami._dispatcher._targets == []


async def test_item1_async_with_unregisters_on_leaving_the_block(
    pbx: FakeAsterisk, ami: Client
) -> None:
    async with ami.events("UserEvent") as sub:
        await emit_all(pbx, ami, 2)
        async for _ in sub:
            break
    assert sub.closed and sub.qsize() == 0
    assert ami._dispatcher.subscriptions() == []


# -- item 13 (and item 1): leaving `async for` by an exception keeps the queue -------------


async def test_item13_timeout_around_async_for_keeps_subscription_and_queue(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("UserEvent", maxsize=10)
    await emit_all(pbx, ami, 3)
    seen: list[str] = []

    async def read_slowly() -> None:
        async with compat_timeout(0.2):
            async for event in sub:
                seen.append(event["Seq"])
                if len(seen) == 1:
                    await asyncio.sleep(10)  # the timeout lands while busy here

    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await read_slowly()
    assert seen == ["0"]
    assert not sub.closed
    assert sub.qsize() == 2 and sub.dropped == 0
    await emit_all(pbx, ami, 1)
    assert [e["Seq"] for e in [await sub.get(timeout=5) for _ in range(3)]] == ["1", "2", "0"]
    sub.close()


async def test_item13_timeout_while_waiting_in_async_for_keeps_the_subscription(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("UserEvent")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(anext(sub), 0.05)

    async def read_all() -> None:
        async with compat_timeout(0.05):
            async for _ in sub:
                pass

    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await read_all()
    assert not sub.closed
    assert sub._inbox.waiters == collections.deque()  # no reader left behind
    await emit_all(pbx, ami, 1)
    assert (await anext(sub))["Seq"] == "0"
    sub.close()


# -- item 5: several readers ------------------------------------------------------------------


async def test_item5_several_readers_each_event_to_one_and_all_wake_on_close() -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d, maxsize=1000)
    got: dict[int, list[str]] = {i: [] for i in range(4)}

    async def reader(i: int) -> None:
        if i % 2:
            async for event in sub:
                got[i].append(event["Seq"])
                await asyncio.sleep(0)
        else:
            while True:
                try:
                    event = await sub.get()
                except AMIConnectionError:
                    return
                got[i].append(event["Seq"])
                await asyncio.sleep(0)

    readers = [asyncio.ensure_future(reader(i)) for i in range(4)]
    await asyncio.sleep(0)
    for i in range(200):
        d.broadcast(ev("E", Seq=str(i)))
        if i % 7 == 0:
            await asyncio.sleep(0)
    for _ in range(10_000):  # let the readers take everything
        if not sub.qsize():
            break
        await asyncio.sleep(0)
    sub.close()
    done, _ = await asyncio.wait(readers, timeout=5)
    assert len(done) == 4  # every reader woke at close
    everything = sorted(int(s) for seq in got.values() for s in seq)
    assert everything == list(range(200))  # each event exactly once, none lost
    assert sum(1 for seq in got.values() if seq) >= 2  # really shared


async def test_item5_second_reader_does_not_strand_the_first() -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d)
    first = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    second = asyncio.ensure_future(sub.get())
    await asyncio.sleep(0)
    d.broadcast(ev("E", Seq="1"))
    d.broadcast(ev("E", Seq="2"))
    done, _ = await asyncio.wait([first, second], timeout=5)
    assert len(done) == 2
    assert sorted(t.result()["Seq"] for t in done) == ["1", "2"]
    third = asyncio.ensure_future(sub.get())
    fourth = asyncio.ensure_future(anext(sub))
    await asyncio.sleep(0)
    sub.close()
    done, _ = await asyncio.wait([third, fourth], timeout=5)
    assert len(done) == 2  # both wake at close
    with pytest.raises(AMIConnectionError):
        third.result()
    with pytest.raises(StopAsyncIteration):
        fourth.result()


# -- item 6: cancellation is always honoured, nothing is lost --------------------------------


@pytest.mark.parametrize("read", ["get", "anext"])
async def test_item6_cancelled_get_is_always_honoured_and_takes_no_event(read: str) -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d, maxsize=100_000)
    put = 0
    returned: list[Event] = []
    swallowed = 0
    cancels = 0
    for i in range(600):
        task = asyncio.ensure_future(sub.get(timeout=5) if read == "get" else anext(sub))
        for _ in range(i % 3):
            await asyncio.sleep(0)
        mode = i % 4
        if mode == 0:  # the item, then the cancel, in the same loop iteration
            d.broadcast(ev("E", Seq=str(put)))
            put += 1
            cancelled = task.cancel()
        elif mode == 1:  # the cancel, then the item
            cancelled = task.cancel()
            d.broadcast(ev("E", Seq=str(put)))
            put += 1
        elif mode == 2:  # the item, one step, then the cancel
            d.broadcast(ev("E", Seq=str(put)))
            put += 1
            await asyncio.sleep(0)
            cancelled = task.cancel()
        else:  # only a cancel
            cancelled = task.cancel()
        cancels += cancelled
        try:
            returned.append(await task)
            if cancelled:
                swallowed += 1
        except asyncio.CancelledError:
            assert cancelled
    left = []
    while (event := sub.get_nowait()) is not None:
        left.append(event)
    assert swallowed == 0, f"{swallowed} of {cancels} cancellations swallowed"
    seqs = [int(e["Seq"]) for e in [*returned, *left]]
    assert sorted(seqs) == list(range(put))  # none lost, none twice
    assert seqs == sorted(seqs)  # and still in wire order
    assert not sub._inbox.waiters


async def test_item6_get_timeout_raises_timeout_error_and_leaves_no_waiter() -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d)
    for _ in range(100):
        with pytest.raises(TimeoutError, match="no event within"):
            await sub.get(timeout=0)
    with pytest.raises(TimeoutError):
        await sub.get(timeout=0.01)
    assert not sub._inbox.waiters  # nothing accumulates on an idle subscription
    d.broadcast(ev("E"))
    assert (await sub.get(timeout=0)).name == "E"  # a queued event needs no wait


@pytest.mark.parametrize(
    "timeout", [float("nan"), float("inf"), float("-inf"), -1, -0.5, True, False, "1"]
)
async def test_item6_get_refuses_a_timeout_that_is_not_a_finite_duration(timeout: Any) -> None:
    # A NaN deadline spun the loop at 100 % CPU (3.10 to 3.12) or broke the
    # event loop itself (3.13); inf / negatives / bools are mistakes too (None
    # waits as long as it takes).
    d = Dispatcher(spawn)
    sub = subscribe(d)
    d.broadcast(ev("E"))
    with pytest.raises(ValueError, match="timeout must be"):
        await sub.get(timeout=timeout)
    assert sub.qsize() == 1 and not sub._inbox.waiters  # nothing taken, nobody waiting
    assert (await sub.get(timeout=1)).name == "E"


# -- item 10: a stored failure is raised fresh every time ------------------------------------


async def test_item10_stored_failure_raised_fresh_each_time() -> None:
    d = Dispatcher(spawn)
    sub = subscribe(d)
    failure = ConnectionLostError("gave up reconnecting after 3 attempts")
    d.end_subscriptions(failure)
    seen: set[int] = set()
    depth = []
    for _ in range(2000):
        with pytest.raises(ConnectionLostError) as info:
            await sub.get()
        exc = info.value
        seen.add(id(exc))
        depth.append(len(traceback.extract_tb(exc.__traceback__)))
        assert type(exc) is ConnectionLostError
        assert str(exc) == "gave up reconnecting after 3 attempts"
        assert exc.__cause__ is failure
        with pytest.raises(ConnectionLostError) as info:
            await anext(sub)
        assert info.value is not failure
    assert failure.__traceback__ is None  # the stored one is never raised itself
    assert max(depth) == min(depth)  # the traceback does not grow


def test_item10_renewed_copies_type_arguments_and_attributes() -> None:
    from ami_async.errors import ActionError, ProtocolError
    from ami_async.message import Response
    from ami_async.subscription import renewed

    answer = Response([("Response", "Error"), ("Message", "no")])
    for exc in (ActionError(answer, "Foo"), ProtocolError("bad", b"xx"), ValueError("v")):
        fresh = renewed(exc)
        assert fresh is not exc and type(fresh) is type(exc)
        assert fresh.args == exc.args and fresh.__dict__ == exc.__dict__


# -- item 15: maxsize and overflow are checked ---------------------------------------------


@pytest.mark.parametrize("maxsize", [0, -1, 1.5, True, "10", None])
async def test_item15_subscription_refuses_a_maxsize_that_cannot_work(maxsize: Any) -> None:
    d = Dispatcher(spawn)
    with pytest.raises(ValueError, match="maxsize must be a whole number"):
        d.subscribe((), None, maxsize, "error")
    with pytest.raises(ValueError, match="maxsize must be a whole number"):
        d.add_handler(("*",), lambda e: None, maxsize, "error")
    assert d._targets == []


@pytest.mark.parametrize("overflow", ["drop_newest", None, "ERROR"])
async def test_item15_subscription_refuses_an_unknown_overflow_policy(overflow: Any) -> None:
    d = Dispatcher(spawn)
    with pytest.raises(ValueError, match="overflow must be"):
        d.subscribe((), None, 10, overflow)


@pytest.mark.parametrize("maxsize", [-1, 2.5, "10"])
async def test_item15_events_refuses_a_bad_maxsize(ami: Client, maxsize: Any) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        ami.events("UserEvent", maxsize=maxsize)
    with pytest.raises(ValueError, match="maxsize"):
        ami.on("UserEvent", maxsize=maxsize)(lambda e: None)
    with pytest.raises(ValueError, match="overflow"):
        ami.events("UserEvent", overflow="sometimes")  # type: ignore[arg-type]


async def test_item15_events_maxsize_zero_is_refused(ami: Client) -> None:
    with pytest.raises(ValueError, match="maxsize"):
        ami.events("UserEvent", maxsize=0)
    with pytest.raises(ValueError, match="maxsize"):
        ami.on("UserEvent", maxsize=0)(lambda e: None)
    assert ami._dispatcher._targets == []


# -- item 17: subscriptions nobody reads, lists nobody reads fast ------------------------------


async def test_item17_held_unread_subscription_is_bounded_counted_and_visible(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("UserEvent", maxsize=5, overflow="drop_oldest")
    await emit_all(pbx, ami, 12)
    assert sub.qsize() == 5 and sub.dropped == 7
    text = repr(sub)
    assert "UserEvent" in text and "queued=5" in text and "dropped=7" in text
    assert "open" in text
    assert ami._dispatcher.subscriptions() == [sub]
    sub.close()
    assert "closed" in repr(sub)


async def test_item17_dropped_subscription_unregisters_and_says_so(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    sub: Subscription | None = ami.events("UserEvent")
    await emit_all(pbx, ami, 3)
    with caplog.at_level(logging.DEBUG, logger="ami_async"):
        del sub
        gc.collect()  # (CPython frees it at once; other interpreters at a collection)
    assert ami._dispatcher.interest() == frozenset()  # skipping every event again
    assert ami._dispatcher._targets == []  # swept out by then
    assert any("3 unread event(s)" in r.getMessage() for r in caplog.records)


def list_of(n: int):  # type: ignore[no-untyped-def]
    """A FakeAsterisk handler answering with an `n`-item list, all written at once."""

    async def answer(session: FakeSession, action: Message) -> None:
        items = [with_action_id(action, [("Event", "BigItem"), ("Seq", str(i))]) for i in range(n)]
        done = with_action_id(action, [("Event", "BigListComplete"), ("EventList", "Complete")])
        await session.send(make_response(action, "Success", EventList="start"), *items, done)

    return answer


async def test_item17_slow_stream_consumer_is_given_the_whole_list_and_link_keeps_serving(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.on_action("BigList", list_of(2000))
    everything = ami.events()
    seen = []
    async for item in ami.stream("BigList"):
        seen.append(int(item["Seq"]))
        if len(seen) == 1:
            # The consumer is slow: the client takes the rest of the list in
            # regardless (it never pauses the socket: other actions, events and
            # the keepalive share it), and answers other actions meanwhile.
            await ami.ping()
            assert ami._dispatcher.pending == {}  # the whole list is in, held for us
    assert seen == list(range(2000))
    names = set()
    while (event := everything.get_nowait()) is not None:
        names.add(event.name)
    assert "BigItem" not in names and "BigListComplete" not in names
    everything.close()


async def test_item17_leaving_a_stream_early_frees_it_and_drops_the_rest(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.on_action("BigList", list_of(500))
    everything = ami.events()
    async for item in ami.stream("BigList"):
        assert item["Seq"] == "0"
        break
    await ami.ping()
    assert ami._dispatcher.pending == {}
    names = set()
    while (event := everything.get_nowait()) is not None:
        names.add(event.name)
    assert "BigItem" not in names
    everything.close()


# -- closed while the event is being dispatched; collected while the targets are rebuilt ----


async def test_subscription_closed_by_a_handler_during_dispatch_gets_nothing_more(
    pbx: FakeAsterisk, ami: Client
) -> None:
    holder: list[Subscription] = []
    ami.on("UserEvent")(lambda event: holder[0].close())  # runs before the subscription
    sub = ami.events("UserEvent")
    holder.append(sub)
    await emit_all(pbx, ami, 1)
    assert sub.closed and sub.qsize() == 0
    with pytest.raises(StopAsyncIteration):
        await anext(sub)


async def test_subscription_closed_or_dropped_during_dispatch_is_not_asked_its_predicate() -> None:
    d = Dispatcher(spawn)
    asked: list[str] = []

    def predicate(event: Event) -> bool:
        asked.append(event.name)
        return True

    subs: list[Subscription] = []

    def handler(event: Event) -> None:
        subs[0].close()
        del subs[1]  # the last reference: collected at once

    d.add_handler(("E",), handler, 10, "error")  # runs first
    subs += [subscribe(d, "E", predicate=predicate), subscribe(d, "E", predicate=predicate)]
    closing = subs[0]
    d.broadcast(ev("E"))
    assert asked == [] and closing.qsize() == 0


class _DropsOnCompare:
    """A handler whose `==` drops the last reference to a subscription: the
    garbage collector running `Subscription.__del__` in the middle of a rebuild
    of the dispatcher's targets, made deterministic."""

    def __init__(self, victim: list[Subscription]) -> None:
        self.victim = victim

    async def __call__(self, event: Event) -> None:
        pass

    def __eq__(self, other: object) -> bool:
        self.victim.clear()  # the subscription's __del__ runs here
        return other is self

    __hash__ = object.__hash__


async def test_subscription_collected_during_a_targets_rebuild_is_not_kept_registered() -> None:
    d = Dispatcher(spawn)
    victim = [subscribe(d, "Hangup")]
    inbox = victim[0]._inbox
    kept = subscribe(d, "UserEvent")

    async def other(event: Event) -> None:
        pass

    d.add_handler(("Newchannel",), _DropsOnCompare(victim), 10, "error")
    d.add_handler(("Newchannel",), other, 10, "error")
    assert d.remove_handler(other)  # compares the registered handlers: one drops `victim`
    assert not victim
    assert all(target is not inbox for _, target in d._targets)
    assert d.interest() == frozenset({b"userevent", b"newchannel"})
    d.broadcast(ev("UserEvent"))
    assert kept.qsize() == 1
