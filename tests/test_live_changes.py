"""Issue 10 item 5: `live.changes()` follows the rules of `client.events()` (bounded queue,
`"error"` and `"drop_oldest"` overflow, several readers, order, close wakes every reader),
and `await call.ended(timeout=)` runs out with a typed error. Also (item 6) the model's
cheap reading of events agrees with a full parse of every event on every capture.

The changes come from real calls: copies of the `dial_bridge` capture's call
(`_live_calls`) sent by a `FakeAsterisk` to a real client, which the `Live`
follows; a `Ping` round trip after each batch proves the client has read it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from _fixtures import fixture_id, read_ami
from _live_calls import call_bytes
from _live_replay import capture_files

import ami_async
from ami_async.errors import AMIConnectionError, AMIError, SubscriptionOverflowError
from ami_async.live import (
    CallEnded,
    CallRecord,
    CallStarted,
    CallTimeoutError,
    Change,
    ChangeStream,
    ChannelAdded,
    Live,
)
from ami_async.live._model import Model
from ami_async.message import Event
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk

USER = {"username": "admin", "secret": "amp111"}


@asynccontextmanager
async def live_on_fake(**options: object) -> AsyncIterator[tuple[FakeAsterisk, Live]]:
    async with FakeAsterisk(pbx=False) as fake:
        client = ami_async.Client(fake.host, fake.port, **USER, ping_interval=None)
        async with client, Live(client, **options) as live:  # type: ignore[arg-type]
            yield fake, live


async def send_calls(fake: FakeAsterisk, live: Live, first: int, count: int) -> None:
    """`count` whole calls on the wire, read and applied when this returns."""
    await fake.send_raw(b"".join(call_bytes(n) for n in range(first, first + count)))
    await live._client.ping()


def drain(stream: ChangeStream) -> list[Change]:
    out = []
    while (change := stream.get_nowait()) is not None:
        out.append(change)
    return out


# -- overflow, as events() ---------------------------------------------------------------------


async def test_error_policy_gives_the_first_changes_then_the_gap_then_goes_on() -> None:
    async with live_on_fake() as (fake, live):
        everything = live.changes(maxsize=100_000)
        small = live.changes(maxsize=5)  # overflow="error", as events()
        await send_calls(fake, live, 0, 2)
        reference = drain(everything)
        assert len(reference) > 20
        assert small.qsize() == 5 and small.dropped == len(reference) - 5
        first = [await small.get(timeout=1) for _ in range(5)]
        assert first == reference[:5]
        with pytest.raises(SubscriptionOverflowError) as info:
            await small.get(timeout=1)
        assert info.value.dropped == len(reference) - 5 == small.dropped
        assert isinstance(info.value, AMIError)
        # Reading goes on after the gap, with what comes next.
        await send_calls(fake, live, 2, 1)
        more = drain(everything)
        assert [await small.get(timeout=1) for _ in range(5)] == more[:5]
        with pytest.raises(SubscriptionOverflowError):
            small.get_nowait()


async def test_drop_oldest_keeps_the_newest_changes_and_counts_the_rest() -> None:
    async with live_on_fake() as (fake, live):
        everything = live.changes(maxsize=100_000)
        small = live.changes(maxsize=5, overflow="drop_oldest")
        await send_calls(fake, live, 0, 3)
        reference = drain(everything)
        kept = drain(small)
        assert kept == reference[-5:]
        assert small.dropped == len(reference) - 5
        assert isinstance(kept[-1], CallEnded)  # the newest survive, in order


async def test_changes_default_bound_is_changes_maxsize_and_bad_options_are_refused() -> None:
    async with live_on_fake(changes_maxsize=7) as (_fake, live):
        assert live.changes().maxsize == 7
        assert live.changes(maxsize=3).maxsize == 3
        with pytest.raises(ValueError, match="maxsize must be"):
            live.changes(maxsize=0)
        with pytest.raises(ValueError, match="overflow must be"):
            live.changes(overflow="drop_newest")  # type: ignore[arg-type]


async def test_a_flood_of_calls_overflows_no_reader_into_the_link() -> None:
    """A stream nobody reads fills up and counts; the model itself keeps up and stays right."""
    async with live_on_fake() as (fake, live):
        idle = live.changes(maxsize=10)
        await send_calls(fake, live, 0, 200)
        assert idle.qsize() == 10 and idle.dropped > 5_000
        assert not live.channels and not live.calls and not live.bridges
        assert len(live.history) == 200
        assert live.synced


# -- readers -------------------------------------------------------------------------------------


async def test_several_readers_get_each_change_once_in_order_and_all_wake_on_close() -> None:
    async with live_on_fake() as (fake, live):
        everything = live.changes(maxsize=100_000)
        shared = live.changes(maxsize=100_000)
        got: dict[int, list[Change]] = {i: [] for i in range(3)}

        async def reader(i: int) -> None:
            if i == 0:
                async for change in shared:
                    got[i].append(change)
                    await asyncio.sleep(0)
            else:
                while True:
                    try:
                        change = await shared.get()
                    except AMIConnectionError:
                        return
                    got[i].append(change)
                    await asyncio.sleep(0)

        readers = [asyncio.ensure_future(reader(i)) for i in range(3)]
        await asyncio.sleep(0)
        for n in range(10):
            await send_calls(fake, live, n, 1)
        for _ in range(100_000):
            if not shared.qsize():
                break
            await asyncio.sleep(0)
        reference = drain(everything)
        position = {id(c): k for k, c in enumerate(reference)}
        for seq in got.values():  # each reader sees its share in the model's order
            assert [position[id(c)] for c in seq] == sorted(position[id(c)] for c in seq)
        together = sorted((c for seq in got.values() for c in seq), key=lambda c: position[id(c)])
        assert together == reference  # every change exactly once, none lost
        assert sum(1 for seq in got.values() if seq) >= 2  # really shared
        live.close()  # leaving the Live ends every stream and wakes every reader
        done, _ = await asyncio.wait(readers, timeout=5)
        assert len(done) == 3
        assert shared.closed and everything.closed


async def test_closing_one_stream_wakes_its_readers_and_leaves_the_others() -> None:
    async with live_on_fake() as (fake, live):
        closing = live.changes()
        other = live.changes()
        waiting = asyncio.ensure_future(closing.get())
        iterating = asyncio.ensure_future(anext(closing))
        await asyncio.sleep(0)
        closing.close()
        with pytest.raises(AMIConnectionError):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(iterating, 5)
        await send_calls(fake, live, 0, 1)
        assert isinstance(other.get_nowait(), ChannelAdded)
        assert closing.get_nowait() is None


async def test_a_cancelled_read_takes_no_change() -> None:
    async with live_on_fake() as (fake, live):
        stream = live.changes()
        reading = asyncio.ensure_future(stream.get())
        await asyncio.sleep(0)
        reading.cancel()
        await send_calls(fake, live, 0, 1)  # arrives as the cancel lands
        with pytest.raises(asyncio.CancelledError):
            await reading
        first = await stream.get(timeout=1)
        assert isinstance(first, ChannelAdded)  # the call's first change is still there


async def test_a_timeout_around_async_for_keeps_the_stream_and_its_changes() -> None:
    async with live_on_fake() as (fake, live):
        stream = live.changes()

        async def first_two() -> list[Change]:
            seen = []
            async for change in stream:
                seen.append(change)
                if len(seen) == 2:
                    await asyncio.sleep(10)  # the timeout lands here
            return seen

        await send_calls(fake, live, 0, 1)
        left = stream.qsize()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(first_two(), 0.05)
        assert not stream.closed and stream.qsize() == left - 2


async def test_changes_after_close_is_refused_and_streams_end() -> None:
    async with live_on_fake() as (_fake, live):
        stream = live.changes()
        live.close()
        with pytest.raises(AMIConnectionError):
            live.changes()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)


async def test_leaving_the_live_removes_its_hooks_and_its_handler() -> None:
    async with FakeAsterisk(pbx=False) as fake:
        client = ami_async.Client(fake.host, fake.port, **USER, ping_interval=None)
        async with client:
            hooks = (list(client._connect_hooks), list(client._disconnect_hooks))
            handlers = len(client._dispatcher.handler_runners())
            for _ in range(3):
                async with Live(client) as live:
                    assert len(client._connect_hooks) == len(hooks[0]) + 1
                    assert len(client._disconnect_hooks) == len(hooks[1]) + 1
                assert live.closed
                assert (client._connect_hooks, client._disconnect_hooks) == hooks
                assert len(client._dispatcher.handler_runners()) == handlers
            # Cancelled while it takes its snapshot: closed, nothing left behind.
            for steps in range(4):
                cancelled = Live(client)
                task = asyncio.ensure_future(cancelled.start())
                for _ in range(steps):
                    await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert cancelled.closed or not cancelled._started  # (0 steps: never ran)
                assert (client._connect_hooks, client._disconnect_hooks) == hooks
                assert len(client._dispatcher.handler_runners()) == handlers
            assert (await client.ping()).success  # the link is fine
            # A Live whose snapshot fails leaves nothing behind either.
            failing = Live(client, snapshot_timeout=5)
            await client.close()
            with pytest.raises(AMIError):
                await failing.start()
            assert (client._connect_hooks, client._disconnect_hooks) == hooks


# -- call.ended(timeout=) ------------------------------------------------------------------------


def _half_a_call(n: int) -> bytes:
    """Copy `n` of the call up to (not with) its first Hangup: it stays up."""
    data = call_bytes(n)
    return data[: data.index(b"Event: Hangup\r\n")]


async def test_call_ended_times_out_with_a_typed_error_then_gives_the_record() -> None:
    async with live_on_fake() as (fake, live):
        stream = live.changes()
        await fake.send_raw(_half_a_call(0))
        await live._client.ping()
        started = next(c for c in drain(stream) if isinstance(c, CallStarted))
        call = started.call
        with pytest.raises(CallTimeoutError) as info:
            await call.ended(timeout=0.01)
        assert isinstance(info.value, TimeoutError) and isinstance(info.value, AMIError)
        assert isinstance(info.value, asyncio.TimeoutError)
        assert call.record is None and call._waiters == []  # nothing left behind
        with pytest.raises(ValueError, match="timeout must be"):
            await call.ended(timeout=-1)
        # Two tasks wait; one gives up (cancelled); the rest of the call arrives.
        first = asyncio.ensure_future(call.ended(timeout=10))
        second = asyncio.ensure_future(call.ended())
        quitter = asyncio.ensure_future(call.ended())
        await asyncio.sleep(0)
        quitter.cancel()
        rest = call_bytes(0)[len(_half_a_call(0)) :]
        await fake.send_raw(rest)
        await live._client.ping()
        record = await asyncio.wait_for(first, 5)
        assert await asyncio.wait_for(second, 5) is record
        assert record.disposition == "ANSWERED" and call.record is record
        assert await call.ended(timeout=0) is record  # ended: no wait at all
        assert quitter.cancelled() and call._waiters == []


async def test_call_ended_waiters_fail_when_the_live_closes() -> None:
    async with live_on_fake() as (fake, live):
        stream = live.changes()
        await fake.send_raw(_half_a_call(1))
        await live._client.ping()
        call = next(c for c in drain(stream) if isinstance(c, CallStarted)).call
        waiter = asyncio.ensure_future(call.ended(timeout=30))
        await asyncio.sleep(0)
        live.close()
        with pytest.raises(AMIConnectionError):
            await asyncio.wait_for(waiter, 5)


# -- the cheap reading agrees with a full parse ---------------------------------------------------


def _events(path: Path) -> list[tuple[float, Event]]:
    """A capture's unsolicited events, as the parser gives them (nothing read from them yet)."""
    parser = Parser()
    out = []
    for rec in read_ami(path):
        if rec.direction == "<<<":
            for msg in parser.feed(rec.data):
                if isinstance(msg, Event) and msg.action_id is None:
                    out.append((rec.seconds, msg))
    return out


@pytest.mark.parametrize("path", capture_files(), ids=fixture_id)
def test_fast_reading_agrees_with_a_full_parse(path: Path) -> None:
    models = []
    # fast; full parse; fast on events some other reader has parsed already (no text left)
    for fast, parsed in ((True, False), (False, False), (True, True)):
        now = [0.0]
        model = Model(lambda now=now: 1_800_000_000.0 + now[0], 100, fast=fast)
        changes: list[str] = []
        for seconds, ev in _events(path):
            now[0] = seconds
            if parsed:
                assert ev.headers and ev._text is None
            changes.extend(repr(c) for c in model.apply(ev))
        models.append((model, changes))
    (fast_model, fast_changes), (full_model, full_changes), (_, parsed_changes) = models
    assert fast_changes == full_changes == parsed_changes
    assert list(fast_model.history) == list(full_model.history)
    assert fast_model.channels == full_model.channels
    assert fast_model.bridges == full_model.bridges
    assert list(fast_model.calls) == list(full_model.calls)
    assert fast_model.queues == full_model.queues


def _both_ways(raw: bytes) -> list[tuple[list[str], list[CallRecord]]]:
    """The changes and records a fast model and a full-parse model make of `raw`."""
    results = []
    for fast in (True, False):
        model = Model(lambda: 1_800_000_000.0, 10, fast=fast)
        changes = []
        for ev in Parser().feed(raw):
            changes.extend(repr(c) for c in model.apply(ev))  # type: ignore[arg-type]
        results.append((changes, list(model.history)))
    return results


@pytest.mark.parametrize("every", [1, 2, 3])
def test_a_bare_lf_in_a_value_is_read_as_the_parser_reads_it(every: int) -> None:
    """Quirk: Asterisk ends lines with CRLF, but a value may hold a bare LF (a caller name set
    so in the dialplan). `Event.get` splits the line there; the block reading must too, not
    take the value whole (its pattern would match across the LF)."""
    raw = call_bytes(0)
    parts = raw.split(b"ConnectedLineName: <unknown>")
    assert len(parts) > 6
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        name = b"Al\nice" if i % every == 0 else b"<unknown>"
        out += b"ConnectedLineName: " + name + part
    (fast_changes, fast_history), (full_changes, full_history) = _both_ways(out)
    assert any("CallerID(num=None, name='Al')" in c for c in full_changes)
    assert not any("Al\\nice" in c for c in fast_changes)
    assert fast_changes == full_changes
    assert fast_history == full_history and len(fast_history) == 1


@pytest.mark.parametrize(
    ("key", "value"), [(b"Cause", b"16\nx"), (b"AppData", b"foo\nbar"), (b"Application", b"D\nx")]
)
def test_a_bare_lf_in_a_field_after_the_snapshot_is_read_as_the_parser_reads_it(
    key: bytes, value: bytes
) -> None:
    """The same quirk in the fields read straight from the text (Cause, Application...): the
    line ends at the LF, and a line after it is a line of its own."""
    raw = call_bytes(0).replace(
        b"\r\n" + key + b": ", b"\r\n" + key + b": " + value + b"\r\nXX" + key + b": "
    )
    fast, full = _both_ways(raw)
    assert fast == full


def test_a_timestamp_before_the_snapshot_dates_a_new_channel_either_way() -> None:
    raw = call_bytes(0).replace(
        b"Event: Newchannel\r\nPrivilege: call,all\r\n",
        b"Event: Newchannel\r\nTimestamp: 1700000000.000000\r\n",
    )
    fast, full = _both_ways(raw)
    assert fast == full
    assert any("2023, 11, 14" in c for c in fast[0])


def test_fast_reading_is_used_on_the_benchmark_call() -> None:
    """The agreement above is not vacuous: the block path really runs (and is cached)."""
    model = Model(lambda: 1_800_000_000.0, 10)
    parsed = 0
    original = model._touch_parsed

    def counting(*args: object) -> object:
        nonlocal parsed
        parsed += 1
        return original(*args)  # type: ignore[arg-type]

    model._touch_parsed = counting  # type: ignore[method-assign]
    events = [m for m in Parser().feed(call_bytes(0)) if isinstance(m, Event)]
    touched = sum(1 for e in events if e.name in ("Newstate", "Newexten", "HangupRequest"))
    for ev in events:
        model.apply(ev)
    assert touched > 5 and parsed < touched // 2
    assert len(model.history) == 1 and not model._seen


def test_without_a_reader_the_model_ends_in_the_same_state() -> None:
    records = []
    for emitting in (True, False):
        model = Model(lambda: 1_800_000_000.0, 10)
        model.emitting = emitting
        for n in range(3):
            for ev in Parser().feed(call_bytes(n)):
                out = model.apply(ev)  # type: ignore[arg-type]
                assert emitting or out == []
        records.append(list(model.history))
    assert records[0] == records[1] and len(records[0]) == 3
