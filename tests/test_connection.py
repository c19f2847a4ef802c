"""The asyncio adapter on its own, with a recording transport."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ami_async.connection import AMIProtocol, redact
from ami_async.dispatch import Dispatcher, Pending, Subscription
from ami_async.errors import ConnectionLostError
from ami_async.message import Message


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def make_protocol() -> tuple[AMIProtocol, RecordingTransport, list[list[Message]]]:
    batches: list[list[Message]] = []
    proto = AMIProtocol(batches.append, lambda p, exc: None)
    transport = RecordingTransport()
    proto.connection_made(transport)
    return proto, transport, batches


async def test_a_burst_of_actions_in_one_iteration_is_one_write_after_the_first() -> None:
    proto, transport, _ = make_protocol()
    proto.write(b"A\r\n\r\n")
    proto.write(b"B\r\n\r\n")
    proto.write(b"C\r\n\r\n")
    assert transport.writes == [b"A\r\n\r\n"]  # the first goes out at once
    await asyncio.sleep(0)
    assert transport.writes == [b"A\r\n\r\n", b"B\r\n\r\nC\r\n\r\n"]  # in order, joined
    proto.write(b"D\r\n\r\n")  # a new iteration: at once again
    assert transport.writes[-1] == b"D\r\n\r\n"


async def test_close_flushes_what_was_written() -> None:
    proto, transport, _ = make_protocol()
    proto.write(b"A\r\n\r\n")
    proto.write(b"Logoff\r\n\r\n")
    proto.close()
    assert b"".join(transport.writes) == b"A\r\n\r\nLogoff\r\n\r\n"
    assert transport.closed


async def test_write_after_the_connection_is_lost_raises() -> None:
    proto, _, _ = make_protocol()
    proto.connection_lost(None)
    with pytest.raises(ConnectionLostError):
        proto.write(b"Action: Ping\r\n\r\n")


async def test_banner_and_messages_are_handed_over_per_read() -> None:
    proto, _, batches = make_protocol()
    proto.data_received(b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n\r\nEvent: A")
    assert await proto.wait_banner() == "Asterisk Call Manager/11.0.0"
    assert [[m.get("Response") for m in b] for b in batches] == [["Success"]]
    proto.data_received(b"\r\n\r\n")
    assert batches[-1][0]["Event"] == "A"


def test_redact_hides_secret_always_and_key_only_in_md5_logins() -> None:
    login = b"Action: Login\r\nUsername: u\r\nSecret: hunter2\r\n\r\n"
    assert b"hunter2" not in redact(login)
    md5 = b"Action: Login\r\nAuthType: MD5\r\nKey: 0123abcd\r\n\r\n"
    assert b"0123abcd" not in redact(md5)
    dbget = b"Action: DBGet\r\nFamily: f\r\nKey: visible\r\n\r\n"
    assert redact(dbget) == dbget


async def test_item2_every_read_even_a_partial_frame_proves_the_link_alive() -> None:
    """The keepalive's clock: `received_at` moves on any bytes, complete frames or not."""
    proto, _, batches = make_protocol()
    created = proto.received_at
    await asyncio.sleep(0.01)
    proto.data_received(b"Asterisk Call Manager/11.0.0\r\nEvent: Half")
    first = proto.received_at
    assert first > created
    await asyncio.sleep(0.01)
    proto.data_received(b"wayThrough\r\n")  # still no complete message
    assert proto.received_at > first
    assert batches == []


async def test_shut_cancelled_aborts_instead_of_leaving_the_socket_open() -> None:
    proto, transport, _ = make_protocol()
    transport.close = lambda: None  # type: ignore[method-assign]  # a close that lingers
    task = asyncio.ensure_future(proto.shut(grace=30))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.closed  # aborted


# -- the parser's skipping and lists answered in the same read (issue 9, item 12) ----------


def wire(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


UNKNOWN_LIST_IN_ONE_READ = (
    "Response: Success\nActionID: job-1\nEventList: start\nMessage: Things will follow\n\n"
    "Event: ThingEntry\nActionID: job-1\nName: a\n\n"
    "Event: UserEvent\nUserEvent: between\n\n"
    "Event: ThingEntry\nActionID: job-1\nName: b\n\n"
    "Event: ThingsComplete\nActionID: job-1\nEventList: Complete\nListItems: 2\n\n"
)


async def test_item12_unknown_list_answered_to_send_action_ends_in_the_same_read() -> None:
    # ListThings is no list the client knows and the subscriber wants only
    # UserEvent: skipping, the parser would skip the list's end too. While an
    # action that may answer with a list is in flight, an answer carrying a list
    # marker ends the skipping for the rest of its read, so the end is seen and
    # the ActionID is free again at once.
    dispatcher = Dispatcher(asyncio.ensure_future)
    sub = dispatcher.subscribe(("UserEvent",), None, 10, "error")
    proto = AMIProtocol(dispatcher.feed, lambda p, exc: None, interest=dispatcher.interest)
    proto.connection_made(RecordingTransport())
    proto.data_received(b"Asterisk Call Manager/9.0.0\r\n")
    action = Pending(asyncio.get_running_loop(), "ListThings", "job-1")  # send_action()
    dispatcher.add(action)
    assert getattr(dispatcher.interest(), "scan_lists", False)  # its answer may open a list
    proto.data_received(wire(UNKNOWN_LIST_IN_ONE_READ))
    assert action.future.done() and action.future.result()["EventList"] == "start"
    assert dispatcher._abandoned == {}
    assert dispatcher.interest() == frozenset({b"userevent"})  # skipping on again
    # A later event carrying the caller's ActionID is no item of that list.
    proto.data_received(wire("Event: UserEvent\nUserEvent: done\nActionID: job-1\n\n"))
    got = [sub.get_nowait() for _ in range(sub.qsize())]
    assert [e["UserEvent"] for e in got if e is not None] == ["between", "done"]


def filtered_link() -> tuple[Dispatcher, Subscription, AMIProtocol, list[list[Message]]]:
    """A logged-in link whose one subscriber wants UserEvent; `batches`: what each read gave."""
    dispatcher = Dispatcher(asyncio.ensure_future)
    sub = dispatcher.subscribe(("UserEvent",), None, 10, "error")
    batches: list[list[Message]] = []

    def feed(messages: list[Message]) -> None:
        batches.append(messages)
        dispatcher.feed(messages)

    proto = AMIProtocol(feed, lambda p, exc: None, interest=dispatcher.interest)
    proto.connection_made(RecordingTransport())
    proto.data_received(b"Asterisk Call Manager/9.0.0\r\n")
    return dispatcher, sub, proto, batches


async def test_item12_skipping_stops_only_after_the_answer_that_opens_a_list() -> None:
    # Events before the answer, and reads without one, are still filtered: only what
    # follows an answer carrying EventList in its read is parsed in full.
    dispatcher, sub, proto, batches = filtered_link()
    action = Pending(asyncio.get_running_loop(), "ListThings", "job-1")
    dispatcher.add(action)
    # An event that merely carries the marker opens nothing: skipped.
    proto.data_received(wire("Event: OtherComplete\nEventList: Complete\n\n"))
    proto.data_received(wire("Event: Hangup\nChannel: A\n\n" + UNKNOWN_LIST_IN_ONE_READ))
    names = [getattr(m, "name", "response") for batch in batches for m in batch]
    assert names == ["response", "ThingEntry", "UserEvent", "ThingEntry", "ThingsComplete"]
    assert action.future.done() and dispatcher._abandoned == {}
    assert sub.qsize() == 1


async def test_events_nobody_wants_are_skipped_while_only_a_ping_is_in_flight() -> None:
    dispatcher, sub, proto, batches = filtered_link()
    dispatcher.add(Pending(asyncio.get_running_loop(), "Ping", "p-1"))  # one answer, no list
    proto.data_received(wire("Event: Hangup\nChannel: A\n\nEvent: UserEvent\nUserEvent: u\n\n"))
    assert proto.parser.only_events == frozenset({b"userevent"})
    # An action that may answer with a list: a read without a list marker is still filtered.
    dispatcher.add(Pending(asyncio.get_running_loop(), "PJSIPShowContacts", "c-1"))
    proto.data_received(wire("Event: Hangup\nChannel: B\n\nEvent: UserEvent\nUserEvent: v\n\n"))
    assert proto.parser.only_events == frozenset({b"userevent"})
    assert [m.name for batch in batches for m in batch] == ["UserEvent", "UserEvent"]  # type: ignore[attr-defined]
    assert sub.qsize() == 2
