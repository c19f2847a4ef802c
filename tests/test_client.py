"""The client against FakeAsterisk: login, actions, lists, subscriptions, handlers, timeouts."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from _client import SECRET, ami, client_for, other_tasks, pbx

import ami_async
from ami_async import (
    ActionError,
    ActionTimeoutError,
    AuthenticationError,
    Client,
    ConnectionLostError,
    Event,
    InvalidActionError,
    SubscriptionOverflowError,
)
from ami_async.message import Message
from ami_async.testing import FakeAsterisk, FakeSession, make_response, with_action_id

__all__ = ["ami", "pbx"]  # fixtures (tests/_client.py)


# -- connecting ---------------------------------------------------------------------


async def test_connect_plain_login_banner_version_and_clean_close(pbx: FakeAsterisk) -> None:
    before = other_tasks()
    async with ami_async.connect(
        pbx.host, pbx.port, username="admin", secret=SECRET, ping_interval=0.05
    ) as ami:
        assert ami.connected
        assert ami.ami_version == "11.0.0"
        assert ami.banner == "Asterisk Call Manager/11.0.0"
        login = pbx.actions[0]
        assert login["Action"] == "Login"
        assert login["Events"] == "on"
        await pbx.wait_for_action("Ping", timeout=2)  # the keepalive runs
    assert ami.closed
    assert not ami.connected
    assert pbx.actions[-1]["Action"] == "Logoff"
    assert other_tasks() <= before  # nothing the client started is left running


async def test_md5_login_sends_key_never_secret(pbx: FakeAsterisk) -> None:
    async with ami_async.connect(
        pbx.host, pbx.port, username="admin", secret=SECRET, auth="md5", ping_interval=None
    ) as ami:
        await ami.ping()
    challenge, login = pbx.actions[0], pbx.actions[1]
    assert challenge["AuthType"] == "MD5"
    assert login["AuthType"] == "MD5"
    assert "Secret" not in login
    assert len(login["Key"]) == 32


async def test_events_mask_at_login(pbx: FakeAsterisk) -> None:
    async with client_for(pbx, events="call,user") as ami:
        assert ami.connected
    assert pbx.actions[0]["Events"] == "call,user"


async def test_refused_login_is_an_authentication_error_not_a_connection_error(
    pbx: FakeAsterisk,
) -> None:
    client = client_for(pbx, secret="wrong-secret-value")
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    assert "Authentication failed" in str(info.value)
    assert "wrong-secret-value" not in str(info.value)
    assert info.value.response is not None
    assert not client.connected
    await client.close()


async def test_nothing_listening_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    client = Client("127.0.0.1", port, username="admin", secret=SECRET, timeout=2)
    with pytest.raises(ami_async.AMIConnectionError, match="cannot connect"):
        await client.connect()


async def test_connect_timeout_covers_a_server_that_never_sends_its_banner() -> None:
    async with FakeAsterisk(banner="") as silent:
        silent.stall()
        client = client_for(silent, timeout=0.3)
        with pytest.raises(ami_async.AMIConnectionError, match="timed out"):
            await client.connect()
        assert client.pending_actions == 0


async def test_context_manager_from_await_connect(pbx: FakeAsterisk) -> None:
    client = await ami_async.connect(pbx.host, pbx.port, username="admin", secret=SECRET)
    try:
        assert client.connected
    finally:
        await client.close()


# -- actions -------------------------------------------------------------------------


async def test_send_action_returns_the_response(ami: Client) -> None:
    response = await ami.send_action("Ping")
    assert response.success
    assert response["Ping"] == "Pong"
    assert response.action_id is not None
    assert len(response.action_id) < 40


async def test_unknown_action_raises_action_error_with_the_response(ami: Client) -> None:
    with pytest.raises(ActionError) as info:
        await ami.send_action("Foo")
    assert info.value.response["Message"].startswith("Invalid/unknown command: Foo.")
    response = await ami.send_action("Foo", check=False)
    assert not response.success


async def test_action_ids_have_a_random_prefix_per_connection(pbx: FakeAsterisk) -> None:
    async with client_for(pbx) as a, client_for(pbx) as b:
        ra = await a.ping()
        rb = await b.ping()
    assert ra.action_id is not None
    assert rb.action_id is not None
    assert ra.action_id.split("-")[0] != rb.action_id.split("-")[0]


async def test_caller_given_action_id_in_flight_is_refused(pbx: FakeAsterisk, ami: Client) -> None:
    pbx.script("Slow")  # never answered
    first = asyncio.ensure_future(ami.send_action("Slow", ActionID="mine-1", timeout=2))
    await pbx.wait_for_action("Slow")
    with pytest.raises(InvalidActionError, match="already in flight"):
        await ami.send_action("Ping", ActionID="mine-1")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert (await ami.send_action("Ping", ActionID="mine-1")).action_id == "mine-1"


async def test_thousand_concurrent_actions_answered_in_shuffled_order(
    pbx: FakeAsterisk, ami: Client
) -> None:
    held: list[tuple[FakeSession, Message]] = []
    all_in = asyncio.Event()

    def hold(session: FakeSession, action: Message) -> None:
        held.append((session, action))
        if len(held) == 1000:
            all_in.set()

    pbx.on_action("Echo", hold)
    calls = [ami.send_action("Echo", Seq=i, timeout=10) for i in range(1000)]
    tasks = [asyncio.ensure_future(c) for c in calls]
    await asyncio.wait_for(all_in.wait(), 10)
    random.Random(7).shuffle(held)
    for session, action in held:
        await session.send(make_response(action, "Success", Seq=action["Seq"]))
    results = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert [r["Seq"] for r in results] == [str(i) for i in range(1000)]
    assert ami.pending_actions == 0


async def test_timeout_leaves_nothing_pending_and_late_response_is_dropped(
    pbx: FakeAsterisk, ami: Client
) -> None:
    held: list[tuple[FakeSession, Message]] = []
    pbx.on_action("Slow", lambda s, a: held.append((s, a)))
    with pytest.raises(ActionTimeoutError) as info:
        await ami.send_action("Slow", timeout=0.1)
    assert isinstance(info.value, TimeoutError)
    assert ami.pending_actions == 0
    session, action = held[0]
    await session.send(make_response(action, "Success"))
    assert (await ami.ping()).success  # the late answer went nowhere, the link is fine
    assert ami._dispatcher.unmatched_responses == 1


async def test_cancellation_leaves_nothing_pending(pbx: FakeAsterisk, ami: Client) -> None:
    pbx.script("Slow")
    task = asyncio.ensure_future(ami.send_action("Slow"))
    await pbx.wait_for_action("Slow")
    assert ami.pending_actions == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ami.pending_actions == 0


async def test_bad_caller_input_is_refused_before_a_byte_is_written(
    pbx: FakeAsterisk, ami: Client
) -> None:
    count = len(pbx.actions)
    with pytest.raises(InvalidActionError):
        await ami.send_action("Originate", CallerID="x\r\nAction: Hangup")
    with pytest.raises(ValueError, match="empty"):
        await ami.send_action("")
    with pytest.raises(InvalidActionError):
        await ami.send_action("Ping", **{"Bad:Key": "v"})
    await ami.ping()
    assert [a["Action"] for a in pbx.actions[count:]] == ["Ping"]


async def test_action_on_a_closed_client_fails_clearly(pbx: FakeAsterisk) -> None:
    client = client_for(pbx)
    with pytest.raises(ConnectionLostError, match="not connected"):
        await client.ping()
    await client.connect()
    await client.close()
    with pytest.raises(ami_async.AMIConnectionError, match="closed"):
        await client.ping()


async def test_pending_actions_fail_at_once_when_the_link_drops(
    pbx: FakeAsterisk,
) -> None:
    async with client_for(pbx, reconnect=False) as ami:
        pbx.script("Slow")
        task = asyncio.ensure_future(ami.send_action("Slow", timeout=30))
        await pbx.wait_for_action("Slow")
        await pbx.drop()
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(task, 5)
        assert ami.pending_actions == 0


# -- EventLists ----------------------------------------------------------------------


_background: set[asyncio.Future[None]] = set()


def list_handler(session: FakeSession, action: Message) -> None:
    """A list action whose items are interleaved with unrelated events."""

    async def run() -> None:
        await session.send(
            make_response(action, "Success", EventList="start", Message="Items will follow")
        )
        for i in range(3):
            item = with_action_id(action, [("Event", "TestItem"), ("Privilege", "call,all")])
            await session.send([*item, ("Seq", str(i))])
            await session.send([("Event", "Unrelated"), ("Privilege", "call,all"), ("N", str(i))])
        done = with_action_id(action, [("Event", "TestListComplete"), ("EventList", "Complete")])
        await session.send([*done, ("ListItems", "3")])

    _background.add(asyncio.ensure_future(run()))


async def test_collect_an_event_list_interleaved_with_unrelated_events(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.on_action("TestList", list_handler)
    unrelated = ami.events("Unrelated")
    items = ami.events("TestItem")  # list items are not broadcast
    result = await ami.collect("TestList")
    assert [i["Seq"] for i in result] == ["0", "1", "2"]
    assert len(result) == 3
    assert result.complete is not None
    assert result.complete["ListItems"] == "3"
    assert result.response["EventList"] == "start"
    assert [(await unrelated.get(timeout=2))["N"] for _ in range(3)] == ["0", "1", "2"]
    assert items.qsize() == 0


async def test_stream_yields_items_as_they_arrive(pbx: FakeAsterisk, ami: Client) -> None:
    pbx.on_action("TestList", list_handler)
    seen = [ev["Seq"] async for ev in ami.stream("TestList")]
    assert seen == ["0", "1", "2"]
    assert ami.pending_actions == 0


async def test_event_list_action_that_fails(pbx: FakeAsterisk, ami: Client) -> None:
    with pytest.raises(ActionError, match="Database entry not found"):
        await ami.collect("DBGet", Family="nope", Key="missing")
    with pytest.raises(ActionError):
        async for _ in ami.stream("DBGet", Family="nope", Key="missing"):
            pass
    assert ami.pending_actions == 0


async def test_list_timeout_covers_a_list_that_never_completes(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.script("Endless", {"Response": "Success", "EventList": "start"})
    with pytest.raises(ActionTimeoutError):
        await ami.collect("Endless", timeout=0.2)
    assert ami.pending_actions == 0


# -- events: subscriptions and handlers ------------------------------------------------


async def test_subscription_registered_at_creation_sees_events_in_wire_order(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("Hangup", "Dial*")
    for i in range(5):
        await pbx.emit("Hangup", Seq=str(i))
        await pbx.emit("DialBegin", Seq=str(i))
        await pbx.emit("Newchannel", Seq=str(i))
    got = [(e.name, e["Seq"]) for e in [await sub.get(timeout=2) for _ in range(10)]]
    assert got == [(n, str(i)) for i in range(5) for n in ("Hangup", "DialBegin")]
    sub.close()


async def test_async_for_break_unregisters(pbx: FakeAsterisk, ami: Client) -> None:
    async with ami.events(predicate=lambda e: e.get("Seq") == "2") as sub:
        for i in range(4):
            await pbx.emit("UserEvent", Seq=str(i))
        async for ev in sub:
            assert ev["Seq"] == "2"
            break
    assert sub.closed
    assert ami._dispatcher.subscriptions() == []


async def test_events_iterator_ends_when_the_client_closes(pbx: FakeAsterisk, ami: Client) -> None:
    sub = ami.events()

    async def read_all() -> list[Event]:
        return [ev async for ev in sub]

    reader = asyncio.ensure_future(read_all())
    await pbx.emit("UserEvent", Seq="1")
    await asyncio.sleep(0)
    await ami.close()
    events = await asyncio.wait_for(reader, 2)
    assert [e.name for e in events if e.name == "UserEvent"] == ["UserEvent"]


async def test_overflow_error_policy_tells_the_reader(pbx: FakeAsterisk, ami: Client) -> None:
    sub = ami.events("UserEvent", maxsize=3)
    for i in range(6):
        await pbx.emit("UserEvent", Seq=str(i))
    await ami.ping()  # everything emitted before the Pong has been dispatched
    assert [(await sub.get(timeout=1))["Seq"] for _ in range(3)] == ["0", "1", "2"]
    with pytest.raises(SubscriptionOverflowError) as info:
        await sub.get(timeout=1)
    assert info.value.dropped == 3
    assert sub.dropped == 3


async def test_overflow_drop_oldest_policy_counts(pbx: FakeAsterisk, ami: Client) -> None:
    sub = ami.events("UserEvent", maxsize=3, overflow="drop_oldest")
    for i in range(6):
        await pbx.emit("UserEvent", Seq=str(i))
    await ami.ping()
    assert [(await sub.get(timeout=1))["Seq"] for _ in range(3)] == ["3", "4", "5"]
    assert sub.dropped == 3


async def test_handlers_sync_async_catch_all_and_off(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    sync_seen: list[str] = []
    async_seen: list[str] = []
    all_seen: list[str] = []
    done = asyncio.Event()

    @ami.on("UserEvent")
    def on_sync(ev: Event) -> None:
        if ev["Seq"] == "1":
            raise RuntimeError("handler bug")
        sync_seen.append(ev["Seq"])

    @ami.on("UserEvent")
    async def on_async(ev: Event) -> None:
        await asyncio.sleep(0)
        async_seen.append(ev["Seq"])
        if ev["Seq"] == "3":
            done.set()

    ami.on("*")(lambda ev: all_seen.append(ev.name))
    with caplog.at_level(logging.ERROR, logger="ami_async"):
        for i in range(4):
            await pbx.emit("UserEvent", Seq=str(i))
        await asyncio.wait_for(done.wait(), 2)
    assert sync_seen == ["0", "2", "3"]
    assert async_seen == ["0", "1", "2", "3"]
    assert all_seen.count("UserEvent") == 4
    assert any("UserEvent" in r.getMessage() for r in caplog.records)
    assert ami.off(on_sync) is True
    assert ami.off(on_sync) is False
    await pbx.emit("UserEvent", Seq="9")
    await ami.ping()
    assert sync_seen == ["0", "2", "3"]


async def test_user_event_reaches_subscribers_with_our_action_id(
    pbx: FakeAsterisk, ami: Client
) -> None:
    sub = ami.events("UserEvent")
    response = await ami.user_event("Hello", Foo="bar")
    ev = await sub.get(timeout=2)
    assert ev["UserEvent"] == "Hello"
    assert ev.action_id == response.action_id


# -- review fixes ----------------------------------------------------------------------------


async def test_items_of_an_abandoned_list_never_reach_subscribers(
    pbx: FakeAsterisk, ami: Client
) -> None:
    release = asyncio.Event()

    def late_list(session: FakeSession, action: Message) -> None:
        async def run() -> None:
            await session.send(make_response(action, "Success", EventList="start"))
            await release.wait()  # the items come after the client gave up
            for i in range(2):
                item = with_action_id(action, [("Event", "TestItem"), ("Seq", str(i))])
                await session.send(item)
                await session.send([("Event", "Unrelated"), ("N", str(i))])
            done = with_action_id(action, [("Event", "TestListComplete")])
            await session.send([*done, ("EventList", "Complete")])

        _background.add(asyncio.ensure_future(run()))

    pbx.on_action("LateList", late_list)
    sub = ami.events("TestItem", "TestListComplete", "Unrelated")
    with pytest.raises(ActionTimeoutError):
        await ami.collect("LateList", timeout=0.1)
    release.set()
    await pbx.emit("Unrelated", N="last")
    await ami.ping()
    names = []
    while (ev := sub.get_nowait()) is not None:
        names.append(ev.get("N") or ev.name)
    assert sorted(names) == ["0", "1", "last"]  # the list items were dropped


async def test_overflow_in_async_for_keeps_the_subscription(pbx: FakeAsterisk, ami: Client) -> None:
    sub = ami.events("UserEvent", maxsize=2)
    for i in range(4):
        await pbx.emit("UserEvent", Seq=str(i))
    await ami.ping()
    seen: list[str] = []

    async def read_until_gap() -> None:
        async for ev in sub:
            seen.append(ev["Seq"])

    with pytest.raises(SubscriptionOverflowError):
        await read_until_gap()
    assert seen == ["0", "1"]
    assert not sub.closed
    await pbx.emit("UserEvent", Seq="4")
    async for ev in sub:  # reading goes on after the gap
        seen.append(ev["Seq"])
        break
    assert seen == ["0", "1", "4"]


async def test_a_zero_timeout_is_refused(ami: Client) -> None:
    with pytest.raises(ValueError, match="positive"):
        await ami.ping(timeout=0)


def test_the_client_runs_on_uvloop() -> None:
    import uvloop

    async def main() -> str:
        async with (
            FakeAsterisk() as server,
            client_for(server) as ami,
        ):
            return (await ami.ping())["Ping"]

    assert uvloop.run(main()) == "Pong"


async def test_log_records_carry_structured_extras(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    gone = asyncio.Event()
    client = client_for(pbx, reconnect=False, on_disconnect=lambda c, exc: gone.set())
    with caplog.at_level(logging.DEBUG, logger="ami_async"):
        await client.connect()
        pbx.script("Slow")
        with pytest.raises(ActionTimeoutError):
            await client.send_action("Slow", ActionID="slow-1", timeout=0.05)
        await pbx.drop()
        await asyncio.wait_for(gone.wait(), 2)
    where = f"{pbx.host}:{pbx.port}"
    connected = [r for r in caplog.records if r.getMessage().startswith("connected to")]
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    timed_out = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert connected[0].ami_host == where  # type: ignore[attr-defined]
    assert lost[0].ami_host == where  # type: ignore[attr-defined]
    assert timed_out[0].ami_action_id == "slow-1"  # type: ignore[attr-defined]
    assert timed_out[0].ami_action == "Slow"  # type: ignore[attr-defined]
    await client.close()


async def test_a_subscription_made_by_a_sync_handler_sees_the_rest_of_the_same_read(
    pbx: FakeAsterisk, ami: Client
) -> None:
    follow: list[ami_async.Subscription] = []
    started = asyncio.Event()

    @ami.on("Newchannel")
    def start_following(ev: Event) -> None:
        channel = ev["Channel"]
        follow.append(ami.events("Hangup", predicate=lambda e: e["Channel"] == channel))
        started.set()

    await pbx.send_raw(  # one write: both frames arrive in the same read
        b"Event: Newchannel\r\nChannel: Local/1@x-1;1\r\n\r\n"
        b"Event: Hangup\r\nChannel: Local/1@x-1;1\r\nCause: 3\r\n\r\n"
    )
    await asyncio.wait_for(started.wait(), 2)
    assert (await follow[0].get(timeout=2))["Cause"] == "3"
