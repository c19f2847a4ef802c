"""Abandoned lists (issue 9, item 12): their late items stay private, but they expire,
never switch event skipping off for good, and never swallow broadcast events."""

from __future__ import annotations

import asyncio
from typing import Any

import _subscriptions
import pytest
from _subscriptions import spawn

import ami_async.dispatch as dispatch
from ami_async import Client, Event
from ami_async.connection import AMIProtocol
from ami_async.dispatch import Dispatcher, Pending
from ami_async.testing import FakeAsterisk, make_response, with_action_id

pbx = _subscriptions.pbx  # fixtures
ami = _subscriptions.ami


def pending(d: Dispatcher, action: str, action_id: str, **kw: Any) -> Pending:
    p = Pending(asyncio.get_running_loop(), action, action_id, **kw)
    d.add(p)
    return p


class Link:
    """A dispatcher fed as the client feeds it: through a connection, one read at a time."""

    def __init__(self) -> None:
        self.d = Dispatcher(spawn)
        self.proto = AMIProtocol(self.d.feed, lambda p, exc: None, interest=self.d.interest)
        self.proto.connection_made(asyncio.Transport())
        self.proto.data_received(b"Asterisk Call Manager/9.0.0\r\n")

    def read(self, text: str) -> None:
        self.proto.data_received(text.replace("\n", "\r\n").encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(dispatch, "monotonic", fake)
    return fake


def drain(sub: Any) -> list[str]:
    out = []
    while (event := sub.get_nowait()) is not None:
        out.append(event.name if "Seq" not in event else f"{event.name}:{event['Seq']}")
    return out


LIST_IN_ONE_READ = (
    "Response: Success\nActionID: {id}\nEventList: start\n\n"
    "Event: {item}\nActionID: {id}\nSeq: 1\n\n"
    "Event: Hangup\nSeq: 2\n\n"
    "Event: {item}\nActionID: {id}\nSeq: 3\n\n"
    "Event: {complete}\nActionID: {id}\nEventList: Complete\n\n"
)


async def test_item12_known_list_answered_to_send_action_in_one_read_keeps_skipping() -> None:
    link = Link()
    sub = link.d.subscribe(("Hangup",), None, 10, "error")
    p = pending(link.d, "CoreShowChannels", "c-1")  # send_action(), not collect()
    link.read(
        LIST_IN_ONE_READ.format(
            id="c-1", item="CoreShowChannel", complete="CoreShowChannelsComplete"
        )
    )
    assert p.future.done()
    assert drain(sub) == ["Hangup:2"]
    # Its end was seen (nothing was skipped while it could come): skipping is on again.
    assert link.d._abandoned == {}
    assert link.d.interest() == frozenset({b"hangup"})
    sub.close()


#: A list cut short: its end never comes (the server lost it, or never sends one).
LIST_WITHOUT_END = LIST_IN_ONE_READ.split("Event: {complete}")[0]


async def test_item12_unknown_list_whose_end_never_comes_expires(clock: Clock) -> None:
    link = Link()
    sub = link.d.subscribe(("Hangup",), None, 10, "error")
    pending(link.d, "FooList", "f-1")
    link.read(LIST_WITHOUT_END.format(id="f-1", item="FooEntry"))
    assert drain(sub) == ["Hangup:2"]
    assert link.d.interest() is None  # its end may still come: nothing skipped yet
    clock.now += dispatch.ABANDONED_LIST_TTL / 2
    assert link.d.interest() is None
    clock.now += dispatch.ABANDONED_LIST_TTL
    assert link.d.interest() == frozenset({b"hangup"})  # forgotten: skipping again
    sub.close()


async def test_item12_unknown_list_answered_to_send_action_in_one_read_ends_at_once() -> None:
    # FooList is no list the client knows: while it is in flight a read that
    # carries a list marker is parsed in full, so its end, in the read of its
    # answer, is seen.
    link = Link()
    sub = link.d.subscribe(("Hangup",), None, 10, "error")
    p = pending(link.d, "FooList", "f-0")  # send_action()
    assert getattr(link.d.interest(), "scan_lists", False)  # a read with a list: in full
    link.read(LIST_IN_ONE_READ.format(id="f-0", item="FooEntry", complete="FooListComplete"))
    assert p.future.done()
    assert drain(sub) == ["Hangup:2"]
    assert link.d._abandoned == {}
    assert link.d.interest() == frozenset({b"hangup"})
    sub.close()


async def test_item12_single_answer_actions_in_flight_keep_skipping() -> None:
    d = Dispatcher(spawn)
    sub = d.subscribe(("Hangup",), None, 10, "error")
    for i, action in enumerate(["Ping", "Setvar", "Getvar", "Redirect", "UserEvent"]):
        pending(d, action, f"s-{i}")
    assert d.interest() == frozenset({b"hangup"})
    assert not getattr(d.interest(), "scan_lists", False)
    h = pending(d, "Hangup", "h-1")  # with a /regex/ Channel its answer is a list
    assert d.interest() == frozenset({b"hangup"})
    assert getattr(d.interest(), "scan_lists", False)
    d.discard(h)
    assert not getattr(d.interest(), "scan_lists", False)
    sub.close()


async def test_item12_a_list_still_flowing_is_not_forgotten(clock: Clock) -> None:
    link = Link()
    sub = link.d.subscribe(("Hangup", "FooEntry"), None, 10, "error")
    pending(link.d, "FooList", "f-2")
    link.read("Response: Success\nActionID: f-2\nEventList: start\n\n")
    for i in range(5):
        clock.now += dispatch.ABANDONED_LIST_TTL * 0.9
        link.read(f"Event: FooEntry\nActionID: f-2\nSeq: {i}\n\n")
    link.read("Event: FooListComplete\nActionID: f-2\nEventList: Complete\n\n")
    link.read("Event: FooEntry\nSeq: x\n\n")  # no ActionID: an ordinary event
    assert drain(sub) == ["FooEntry:x"]
    assert link.d._abandoned == {}
    sub.close()


async def test_item12_collect_timed_out_without_answer_then_a_late_error(clock: Clock) -> None:
    link = Link()
    d = link.d
    sub = d.subscribe(("Hangup", "UserEvent"), None, 10, "error")
    p = pending(d, "CoreShowChannels", "t-1", is_list=True)
    d.discard(p)  # collect() timed out before any answer
    assert d.interest() is None  # its list may still come
    # Before any answer, an event carrying the ID is not an item of it.
    link.read("Event: UserEvent\nActionID: t-1\nSeq: 1\n\n")
    link.read("Response: Error\nActionID: t-1\nMessage: Permission denied\n\n")
    assert d._abandoned == {}  # an error: no list follows
    assert d.interest() == frozenset({b"hangup", b"userevent"})
    link.read("Event: UserEvent\nActionID: t-1\nSeq: 2\n\n")
    assert drain(sub) == ["UserEvent:1", "UserEvent:2"]

    p = pending(d, "CoreShowChannels", "t-2", is_list=True)
    d.discard(p)
    clock.now += dispatch.ABANDONED_LIST_TTL + 1
    assert d.interest() == frozenset({b"hangup", b"userevent"})  # never answered: forgotten
    sub.close()


async def test_item12_late_list_after_a_timed_out_collect_stays_private() -> None:
    link = Link()
    d = link.d
    sub = d.subscribe((), None, 10, "error")
    p = pending(
        d, "CoreShowChannels", "t-3", is_list=True, complete_name="CoreShowChannelsComplete"
    )
    d.discard(p)
    link.read(
        LIST_IN_ONE_READ.format(
            id="t-3", item="CoreShowChannel", complete="CoreShowChannelsComplete"
        )
    )
    assert drain(sub) == ["Hangup:2"]
    assert d._abandoned == {}
    sub.close()


async def test_item12_event_with_a_reused_action_id_reaches_subscribers() -> None:
    link = Link()
    d = link.d
    sub = d.subscribe(("Hangup", "UserEvent"), None, 10, "error")
    pending(d, "FooList", "job-1")  # a caller-chosen ActionID, on an unknown list
    link.read(LIST_WITHOUT_END.format(id="job-1", item="FooEntry"))
    assert "job-1" in d._abandoned  # its end never came
    # The caller uses job-1 again: the old list is over as far as anyone can tell.
    ue = pending(d, "UserEvent", "job-1")
    link.read("Event: UserEvent\nActionID: job-1\nSeq: 5\n\n")
    link.read("Response: Success\nActionID: job-1\n\n")
    assert ue.future.done()
    link.read("Event: UserEvent\nActionID: job-1\nSeq: 6\n\n")
    assert drain(sub) == ["Hangup:2", "UserEvent:5", "UserEvent:6"]
    assert d.interest() == frozenset({b"hangup", b"userevent"})
    sub.close()


async def test_item12_abandoned_lists_are_bounded_and_end_with_the_session() -> None:
    d = Dispatcher(spawn)
    for i in range(5000):
        d.discard(pending(d, "CoreShowChannels", f"b-{i}", is_list=True))
    assert len(d._abandoned) == dispatch.ABANDONED_LIST_MAX
    assert "b-4999" in d._abandoned and "b-0" not in d._abandoned
    d.fail_all(lambda p: ConnectionError())
    assert d._abandoned == {}


# -- through the client -------------------------------------------------------------------


async def test_item12_send_action_list_then_user_event_with_the_same_action_id(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("UserEvent")
    response = await ami.send_action("QueueSummary", ActionID="job-1")
    assert response["EventList"].lower() == "start"
    await ami.ping()
    assert ami._dispatcher.interest() == frozenset({b"userevent"})  # skipping still on
    await ami.send_action("UserEvent", UserEvent="JobDone", ActionID="job-1")
    event: Event = await sub.get(timeout=5)
    assert event["UserEvent"] == "JobDone"
    sub.close()


async def test_item12_unknown_list_via_send_action_then_user_event_with_its_action_id(
    pbx: FakeAsterisk, ami: Client
) -> None:
    # A list action the client does not know, answered in one write while the
    # only subscriber wants UserEvent: the list's end is in the read that the
    # parser would have filtered.
    def lister(session: Any, action: Any) -> list[Any]:
        return [
            make_response(action, "Success", EventList="start", Message="Things will follow"),
            with_action_id(action, [("Event", "ThingEntry"), ("Name", "a")]),
            with_action_id(action, [("Event", "ThingEntry"), ("Name", "b")]),
            with_action_id(
                action,
                [("Event", "ThingsComplete"), ("EventList", "Complete"), ("ListItems", "2")],
            ),
        ]

    pbx.on_action("ListThings", lister)
    sub = ami.events("UserEvent")
    response = await ami.send_action("ListThings", ActionID="job-1")
    assert response["EventList"] == "start"
    await pbx.emit("UserEvent", UserEvent="done", ActionID="job-1")
    await pbx.emit("UserEvent", UserEvent="other")
    await ami.ping()
    got = [sub.get_nowait() for _ in range(sub.qsize())]
    assert [(e["UserEvent"], e.get("ActionID")) for e in got if e is not None] == [
        ("done", "job-1"),
        ("other", None),
    ]
    assert ami._dispatcher._abandoned == {}
    sub.close()
