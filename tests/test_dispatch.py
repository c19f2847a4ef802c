"""The dispatcher on its own: routing by ActionID and by event name, no sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import pytest

from ami_async import ActionError, Event, Response, SubscriptionOverflowError
from ami_async.dispatch import Dispatcher, Pending
from ami_async.message import Message
from ami_async.protocol import Parser


def spawn(coro: Awaitable[Any]) -> asyncio.Task[Any]:
    return asyncio.ensure_future(coro)


def parse(text: str) -> list[Message]:
    """Messages from wire text written with bare \\n (turned into CRLF)."""
    parser = Parser(expect_banner=False)
    return parser.feed(text.replace("\n", "\r\n").encode())


def ev(name: str, **headers: str) -> Event:
    return Event([("Event", name), *headers.items()])


def pending(d: Dispatcher, action: str, action_id: str, **kw: Any) -> Pending:
    p = Pending(asyncio.get_running_loop(), action, action_id, **kw)
    d.add(p)
    return p


async def test_response_resolves_the_action_with_its_action_id() -> None:
    d = Dispatcher(spawn)
    a = pending(d, "Ping", "x-1")
    b = pending(d, "Ping", "x-2")
    d.feed(parse("Response: Success\nActionID: x-2\nPing: Pong\n\n"))
    assert b.future.done() and not a.future.done()
    assert b.future.result()["Ping"] == "Pong"
    assert "x-2" not in d.pending and "x-1" in d.pending


async def test_error_response_raises_action_error_unless_check_false() -> None:
    d = Dispatcher(spawn)
    checked = pending(d, "Foo", "e-1")
    unchecked = pending(d, "Foo", "e-2", check=False)
    d.feed(
        parse(
            "Response: Error\nActionID: e-1\nMessage: Invalid/unknown command: Foo.\n\n"
            "Response: Error\nActionID: e-2\nMessage: Invalid/unknown command: Foo.\n\n"
        )
    )
    with pytest.raises(ActionError) as info:
        checked.future.result()
    assert info.value.response["Message"] == "Invalid/unknown command: Foo."
    assert info.value.action == "Foo"
    assert unchecked.future.result().success is False
    assert d.pending == {}


async def test_event_list_items_interleaved_with_unrelated_events() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe((), None, 100, "error")
    p = pending(d, "CoreShowChannels", "l-1", is_list=True)
    d.feed(
        parse(
            "Response: Success\nActionID: l-1\nEventList: start\nMessage: Channels will follow\n\n"
            "Event: CoreShowChannel\nActionID: l-1\nChannel: A\n\n"
            "Event: Newchannel\nChannel: Z\n\n"
            "Event: CoreShowChannel\nActionID: l-1\nChannel: B\n\n"
            "Event: Hangup\nChannel: Y\n\n"
            "Event: CoreShowChannelsComplete\nActionID: l-1\nEventList: Complete\nListItems: 2\n\n"
        )
    )
    assert p.future.done()
    assert [i["Channel"] for i in p.items] == ["A", "B"]
    assert p.complete is not None and p.complete["ListItems"] == "2"
    # the unrelated events reached the subscriber, in order; the list items did not
    assert [sub.get_nowait().name for _ in range(2)] == ["Newchannel", "Hangup"]  # type: ignore[union-attr]
    assert sub.get_nowait() is None


async def test_event_list_action_that_fails_has_no_list() -> None:
    d = Dispatcher(spawn)
    p = pending(d, "DBGet", "l-2", is_list=True, complete_name="DBGetComplete")
    d.feed(parse("Response: Error\nActionID: l-2\nMessage: Database entry not found\n\n"))
    with pytest.raises(ActionError, match="Database entry not found"):
        p.future.result()
    assert d.pending == {}


@pytest.mark.parametrize("marker", ["Complete", "complete", "cancelled", "Cancelled"])
async def test_quirk_event_list_end_markers_any_case(marker: str) -> None:
    d = Dispatcher(spawn)
    p = pending(d, "Foo", "l-3", is_list=True)
    d.feed(
        parse(
            "Response: Success\nActionID: l-3\nEventList: Start\n\n"
            "Event: FooItem\nActionID: l-3\n\n"
            f"Event: FooComplete\nActionID: l-3\nEventList: {marker}\n\n"
        )
    )
    assert p.future.done() and len(p.items) == 1


async def test_quirk_pre_ami2_list_without_eventlist_closed_by_completion_name() -> None:
    # Asterisk 11 DBGet: "Message: Result will follow", no EventList header at all.
    d = Dispatcher(spawn)
    p = pending(d, "DBGet", "l-4", is_list=True, complete_name="DBGetComplete")
    d.feed(
        parse(
            "Response: Success\nActionID: l-4\nMessage: Result will follow\n\n"
            "Event: DBGetResponse\nFamily: f\nKey: k\nVal: v\nActionID: l-4\n\n"
            "Event: DBGetComplete\nActionID: l-4\n\n"
        )
    )
    assert p.future.done()
    assert [i["Val"] for i in p.items] == ["v"]


async def test_message_text_is_never_used_to_guess_a_list() -> None:
    # "Command output follows" is not a list opener (PAMI#154/#182).
    d = Dispatcher(spawn)
    p = pending(d, "Command", "c-1", is_list=True)
    d.feed(parse("Response: Success\nActionID: c-1\nMessage: Command output follows\n\n"))
    assert p.future.done() and list(p.items) == []


async def test_follow_up_event_reaches_the_action_and_the_subscribers() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe(("OriginateResponse",), None, 10, "error")
    p = pending(d, "Originate", "o-1", follow="OriginateResponse")
    d.feed(parse("Response: Success\nActionID: o-1\nMessage: Originate successfully queued\n\n"))
    assert not p.future.done()  # still waiting for the event
    d.feed(parse("Event: OriginateResponse\nActionID: o-1\nResponse: Success\nReason: 4\n\n"))
    assert p.future.done() and p.follow_event is not None
    seen = sub.get_nowait()
    assert seen is p.follow_event


async def test_follow_up_event_before_the_response_is_kept() -> None:
    d = Dispatcher(spawn)
    p = pending(d, "Originate", "o-2", follow="OriginateResponse")
    d.feed(parse("Event: OriginateResponse\nActionID: o-2\nResponse: Failure\nReason: 0\n\n"))
    assert not p.future.done()
    d.feed(parse("Response: Success\nActionID: o-2\n\n"))
    assert p.future.done() and p.follow_event is not None
    assert p.follow_event["Response"] == "Failure"


async def test_late_response_for_a_forgotten_action_is_dropped_quietly() -> None:
    d = Dispatcher(spawn)
    p = pending(d, "Ping", "t-1")
    d.discard(p)  # timed out / cancelled
    d.feed(parse("Response: Success\nActionID: t-1\n\n"))
    assert not p.future.done()
    assert d.unmatched_responses == 1


async def test_duplicate_action_id_in_flight_is_refused() -> None:
    d = Dispatcher(spawn)
    pending(d, "Ping", "dup")
    with pytest.raises(ValueError, match="already in flight"):
        pending(d, "Ping", "dup")


async def test_subscriptions_by_exact_name_pattern_and_predicate() -> None:
    d = Dispatcher(spawn)
    exact = d.subscribe(("hangup",), None, 10, "error")
    pattern = d.subscribe(("Dial*",), None, 10, "error")
    pred = d.subscribe((), lambda e: e.get("Channel") == "B", 10, "error")
    for e in (ev("Hangup", Channel="A"), ev("DialBegin", Channel="B"), ev("DialEnd")):
        d.broadcast(e)
    assert exact.qsize() == 1 and pattern.qsize() == 2 and pred.qsize() == 1
    assert pred.get_nowait()["Event"] == "DialBegin"  # type: ignore[index]


async def test_overflow_error_policy_reports_the_gap_where_events_were_lost() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe((), None, 2, "error")
    for i in range(5):
        d.broadcast(ev("UserEvent", Seq=str(i)))
    assert sub.dropped == 3
    assert [sub.get_nowait()["Seq"] for _ in range(2)] == ["0", "1"]  # type: ignore[index]
    with pytest.raises(SubscriptionOverflowError) as info:
        sub.get_nowait()
    assert info.value.dropped == 3
    d.broadcast(ev("UserEvent", Seq="5"))  # reading may go on afterwards
    assert sub.get_nowait()["Seq"] == "5"  # type: ignore[index]


async def test_overflow_drop_oldest_policy_counts() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe((), None, 2, "drop_oldest")
    for i in range(5):
        d.broadcast(ev("UserEvent", Seq=str(i)))
    assert sub.dropped == 3
    assert [(await sub.get(timeout=1))["Seq"] for _ in range(2)] == ["3", "4"]


async def test_async_handler_sees_events_in_wire_order_and_errors_do_not_stop_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = Dispatcher(spawn)
    seen: list[str] = []
    done = asyncio.Event()

    async def handler(e: Event) -> None:
        await asyncio.sleep(0)
        if e["Seq"] == "1":
            raise RuntimeError("boom")
        seen.append(e["Seq"])
        if e["Seq"] == "4":
            done.set()

    def sync_handler(e: Event) -> None:
        raise KeyError("sync boom")

    d.add_handler(("*",), handler, 100, "drop_oldest")
    d.add_handler(("UserEvent",), sync_handler, 100, "drop_oldest")
    with caplog.at_level(logging.ERROR, logger="ami_async"):
        for i in range(5):
            d.broadcast(ev("UserEvent", Seq=str(i)))
        await asyncio.wait_for(done.wait(), 5)
    assert seen == ["0", "2", "3", "4"]
    assert any("UserEvent" in r.getMessage() and "raised" in r.getMessage() for r in caplog.records)
    d.stop_handlers()


async def test_slow_async_handler_queue_is_bounded() -> None:
    d = Dispatcher(spawn)
    release = asyncio.Event()

    async def slow(e: Event) -> None:
        await release.wait()

    runner = d.add_handler(("*",), slow, 10, "drop_oldest")
    for i in range(1000):
        d.broadcast(ev("UserEvent", Seq=str(i)))
    assert len(runner._queue) <= 10
    assert runner.dropped >= 989
    release.set()
    d.stop_handlers()


async def test_fail_all_fails_every_pending_action() -> None:
    d = Dispatcher(spawn)
    ps = [pending(d, "Ping", f"f-{i}") for i in range(3)]
    d.fail_all(lambda p: ConnectionError(p.action_id))
    assert d.pending == {}
    for p in ps:
        with pytest.raises(ConnectionError):
            p.future.result()


async def test_response_message_classes() -> None:
    msgs = parse(
        "Response: Success\nActionID: r\n\nEvent: OriginateResponse\nResponse: Failure\n\n"
    )
    assert isinstance(msgs[0], Response) and isinstance(msgs[1], Event)


async def test_interest_is_the_exact_names_or_none() -> None:
    d = Dispatcher(spawn)
    assert d.interest() == frozenset()  # nobody listens: every event may be skipped
    sub = d.subscribe(("Hangup", "newchannel"), None, 10, "error")
    assert d.interest() == frozenset({b"hangup", b"newchannel"})
    pattern = d.subscribe(("Dial*",), None, 10, "error")
    assert d.interest() is None  # a pattern can match anything
    pattern.close()
    assert d.interest() == frozenset({b"hangup", b"newchannel"})
    p = pending(d, "Status", "s-1", is_list=True)
    assert d.interest() is None  # list items are matched by ActionID, whatever their name
    d.discard(p)
    sub.close()
    d.add_handler(("*",), lambda e: None, 10, "drop_oldest")
    assert d.interest() is None


async def test_parser_skips_only_the_events_nobody_wants() -> None:
    parser = Parser(expect_banner=False)
    parser.only_events = frozenset({b"hangup"})
    msgs = parser.feed(
        b"Event: Newchannel\r\nChannel: A\r\n\r\n"
        b"Event: HANGUP\r\nChannel: B\r\n\r\n"
        b"Response: Success\r\nActionID: 1\r\n\r\n"
        b"Privilege: call,all\r\nEvent: Newchannel\r\n\r\n"  # not first: parsed, kept
    )
    assert [(type(m).__name__, m.get("Channel") or m.get("ActionID")) for m in msgs] == [
        ("Event", "B"),
        ("Response", "1"),
        ("Event", None),
    ]
    parser.only_events = None
    assert [m["Channel"] for m in parser.feed(b"Event: Newchannel\r\nChannel: C\r\n\r\n")] == ["C"]


async def test_interest_is_none_while_user_code_runs_during_dispatch() -> None:
    """A sync handler or a predicate may subscribe mid-read: nothing is skipped then."""
    d = Dispatcher(spawn)
    sub = d.subscribe(("Hangup",), None, 10, "error")  # (held: a dropped one unregisters)
    assert d.interest() == frozenset({b"hangup"})
    d.add_handler(("Newchannel",), lambda e: None, 10, "drop_oldest")
    assert d.interest() is None
    d.stop_handlers()

    async def async_handler(e: Event) -> None:
        pass

    d2 = Dispatcher(spawn)
    d2.add_handler(("Newchannel",), async_handler, 10, "drop_oldest")
    assert d2.interest() == frozenset({b"newchannel"})
    sub2 = d2.subscribe(("Hangup",), lambda e: True, 10, "error")
    assert d2.interest() is None
    sub.close()
    sub2.close()


async def test_a_sync_handler_that_returns_awaitables_is_awaited_in_order() -> None:
    d = Dispatcher(spawn)
    seen: list[str] = []
    done = asyncio.Event()

    async def record(e: Event) -> None:
        await asyncio.sleep(0)
        seen.append(e["Seq"])
        if e["Seq"] == "2":
            done.set()

    d.add_handler(("*",), lambda e: record(e), 10, "drop_oldest")  # looks sync
    for i in range(3):
        d.broadcast(ev("UserEvent", Seq=str(i)))
    await asyncio.wait_for(done.wait(), 2)
    assert seen == ["0", "1", "2"]
    d.stop_handlers()


async def test_list_items_answered_to_send_action_are_not_broadcast() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe((), None, 10, "error")
    p = pending(d, "QueueSummary", "q-1")  # send_action, not collect
    d.feed(
        parse(
            "Response: Success\nActionID: q-1\nEventList: start\n\n"
            "Event: QueueSummary\nActionID: q-1\nQueue: a\n\n"
            "Event: Hangup\nChannel: X\n\n"
            "Event: QueueSummaryComplete\nActionID: q-1\nEventList: Complete\n\n"
            "Event: Newchannel\nChannel: Y\n\n"
        )
    )
    assert p.future.result()["EventList"] == "start"
    names = []
    while (e := sub.get_nowait()) is not None:
        names.append(e.name)
    assert names == ["Hangup", "Newchannel"]
    assert d.interest() is None  # a catch-all subscriber


async def test_a_list_that_failed_is_not_remembered_as_abandoned() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe(("Hangup",), None, 10, "error")
    p = pending(d, "DBGet", "f-1", is_list=True)
    d.feed(parse("Response: Error\nActionID: f-1\nMessage: Database entry not found\n\n"))
    assert p.future.done()
    assert d.interest() == frozenset({b"hangup"})  # event skipping still on
    sub.close()


async def test_late_blocking_actions_end_with_their_answer_a_reused_id_or_a_lost_link() -> None:
    from time import monotonic

    from ami_async.dispatch import LATE_BLOCKING_MAX

    d = Dispatcher(spawn)
    later = monotonic() + 60
    for action_id in ("late-1", "late-2", "late-3"):
        d.note_late_blocking(action_id, later)
    d.note_late_blocking("gone", monotonic() - 1)  # its time is up already
    assert d.busy_late() == 3
    # Its late answer: dropped (no pending action), and that one is no longer counted.
    d.feed(parse("Response: Success\nActionID: late-1\nOutput: done\n\n"))
    assert d.unmatched_responses == 1 and d.busy_late() == 2
    # A caller reusing an ID: an answer with it says nothing of the old action any more.
    ping = pending(d, "Ping", "late-2")
    assert d.busy_late() == 1
    d.fail_all(lambda p: ConnectionError("lost"))
    assert d.busy_late() == 0
    assert isinstance(ping.future.exception(), ConnectionError)
    # Bounded: the oldest go first.
    for i in range(LATE_BLOCKING_MAX + 10):
        d.note_late_blocking(f"many-{i}", later)
    assert d.busy_late() == LATE_BLOCKING_MAX
    assert "many-0" not in d.late_blocking and f"many-{LATE_BLOCKING_MAX + 9}" in d.late_blocking
