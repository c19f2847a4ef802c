"""The live model across reconnects and restarts: resync reports what changed while the
link was down (`reason="resync"`), a channel that ended meanwhile never stays, and events
that arrive while a snapshot is being taken are applied on top of it. Losing the link
publishes `Unsynced` (once per loss, never on `close()`), before the resync's changes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from _waiting import eventually

import ami_async
from ami_async.live import (
    CallEnded,
    CallStarted,
    Change,
    ChangeStream,
    ChannelAdded,
    ChannelRemoved,
    Live,
    Synced,
    Unsynced,
)
from ami_async.message import Message
from ami_async.testing import FakeAsterisk, FakeSession, FaultProxy, make_response, with_action_id

USER = {"username": "admin", "secret": "amp111"}


async def until_synced(stream: ChangeStream, reason: str) -> list[Change]:
    """Every change up to (and with) the next `Synced` of `reason`."""
    seen: list[Change] = []
    while True:
        change = await stream.get(timeout=10)
        seen.append(change)
        if isinstance(change, Synced) and change.reason == reason:
            return seen


@asynccontextmanager
async def pbx_behind_proxy() -> AsyncIterator[tuple[FakeAsterisk, FaultProxy, ami_async.Client]]:
    async with FakeAsterisk() as fake, FaultProxy(fake.host, fake.port) as proxy:
        client = ami_async.Client(
            proxy.host, proxy.port, **USER, ping_interval=None, reconnect_delay=0.01
        )
        async with client:
            yield fake, proxy, client


async def call_up(client: ami_async.Client, exten: str = "700") -> str:
    """Place a call that stays up (700 answers and waits 30 s); its linkedid."""
    result = await client.originate(f"Local/{exten}@test", application="Wait", data="600")
    assert result.success and result.uniqueid is not None
    return result.uniqueid


async def test_item4_a_call_that_ended_while_the_link_was_down_is_removed_with_reason_resync() -> (
    None
):
    async with pbx_behind_proxy() as (fake, proxy, client), Live(client) as live:
        stream = live.changes()
        linkedid = await call_up(client)
        assert linkedid in live.calls
        names = [c.name for c in live.calls[linkedid].channels.values()]
        assert names
        waiter = asyncio.ensure_future(live.calls[linkedid].ended(timeout=10))
        proxy.refuse(True)
        proxy.cut()
        await proxy.wait_until(lambda: not client.connected)
        assert not live.synced
        # Hung up while the model cannot see it.
        async with ami_async.connect(fake.host, fake.port, **USER) as direct:
            await direct.hangup(names[0])
            await fake.pbx.wait_idle()
        assert linkedid in live.calls  # nothing told the model yet
        proxy.refuse(False)
        changes = await until_synced(stream, "resync")
        assert live.synced
        assert not live.channels and not live.calls
        removed = [c for c in changes if isinstance(c, ChannelRemoved)]
        assert sorted(c.channel.name for c in removed) == sorted(c for c in removed_names(changes))
        assert removed and all(c.reason == "resync" for c in removed)
        (ended,) = [c for c in changes if isinstance(c, CallEnded)]
        assert ended.reason == "resync"
        assert ended.record.reason == "resync"
        assert ended.record.linkedid == linkedid
        assert (await waiter) is ended.record
        assert live.history[-1] is ended.record


def removed_names(changes: list[Change]) -> list[str]:
    return [c.channel.name for c in changes if isinstance(c, ChannelRemoved)]


async def test_item4_a_call_that_started_while_the_link_was_down_is_added_with_reason_resync() -> (
    None
):
    async with pbx_behind_proxy() as (fake, proxy, client), Live(client) as live:
        stream = live.changes()
        proxy.refuse(True)
        proxy.cut()
        await proxy.wait_until(lambda: not client.connected)
        async with ami_async.connect(fake.host, fake.port, **USER) as direct:
            linkedid = await call_up(direct)
        proxy.refuse(False)
        changes = await until_synced(stream, "resync")
        added = [c for c in changes if isinstance(c, ChannelAdded)]
        assert len(added) == 2 and all(c.reason == "resync" for c in added)
        assert [c.call.linkedid for c in changes if isinstance(c, CallStarted)] == [linkedid]
        assert set(live.channels) == {c.channel.uniqueid for c in added}
        assert live.synced


async def test_item4_a_call_that_stayed_up_across_the_cut_is_kept_and_ends_normally() -> None:
    async with pbx_behind_proxy() as (_fake, proxy, client), Live(client) as live:
        linkedid = await call_up(client)
        call = live.calls[linkedid]
        stream = live.changes()
        proxy.cut()
        changes = await until_synced(stream, "resync")
        assert not [c for c in changes if isinstance(c, (ChannelAdded, ChannelRemoved))]
        assert live.calls[linkedid] is call
        await client.hangup(next(iter(call.channels.values())).name)
        record = await call.ended(timeout=10)
        assert record.reason == "event"
        assert not live.channels


async def test_item4_restart_with_a_call_up_ends_it_and_resyncs() -> None:
    async with FakeAsterisk() as fake:
        client = ami_async.Client(
            fake.host, fake.port, **USER, ping_interval=None, reconnect_delay=0.01
        )
        async with client, Live(client) as live:
            stream = live.changes()
            linkedid = await call_up(client)
            call = live.calls[linkedid]
            await fake.restart()
            record = await call.ended(timeout=10)
            assert record.reason == "event"  # the Hangups came before the Shutdown
            changes = await until_synced(stream, "resync")
            assert not live.channels and not live.calls and live.synced
            # One Unsynced, after the call's end; what follows it is the resync's.
            kinds = [type(c) for c in changes]
            assert kinds.count(Unsynced) == 1
            lost = kinds.index(Unsynced)
            ended = [c for c in changes[:lost] if isinstance(c, CallEnded)]
            assert [c.record for c in ended] == [record]
            assert all(c.reason == "resync" for c in changes[lost + 1 :])


async def test_item4_restart_while_the_link_is_down_never_keeps_the_call() -> None:
    async with pbx_behind_proxy() as (fake, proxy, client), Live(client) as live:
        stream = live.changes()
        linkedid = await call_up(client)
        proxy.refuse(True)
        proxy.cut()
        await proxy.wait_until(lambda: not client.connected)
        await fake.restart()
        proxy.refuse(False)
        changes = await until_synced(stream, "resync")
        assert [c.call.linkedid for c in changes if isinstance(c, CallEnded)] == [linkedid]
        assert not live.channels and not live.calls


def _list(
    action: Message, items: list[dict[str, str]], complete: str
) -> list[list[tuple[str, str]]]:
    start = make_response(action, "Success", EventList="start", Message="will follow")
    events = [with_action_id(action, {"Event": complete[: -len("Complete")], **i}) for i in items]
    end = with_action_id(
        action, {"Event": complete, "EventList": "Complete", "ListItems": str(len(items))}
    )
    return [start, *events, end]


def _channel(uniqueid: str, name: str) -> dict[str, str]:
    return {
        "Channel": name,
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "CallerIDNum": "100",
        "CallerIDName": "Alice",
        "Uniqueid": uniqueid,
        "Linkedid": uniqueid,
        "Context": "test",
        "Exten": "200",
        "Priority": "1",
        "Application": "Dial",
        "ApplicationData": "PJSIP/200",
        "Duration": "00:00:07",
        "BridgeId": "",
    }


async def test_item1_events_during_the_snapshot_are_applied_on_top_of_it() -> None:
    async with FakeAsterisk(pbx=False) as fake:

        async def channels(session: FakeSession, action: Message) -> None:
            await session.send(
                *_list(action, [_channel("old-1", "PJSIP/100-1")], "CoreShowChannelsComplete")
            )

        async def bridges(session: FakeSession, action: Message) -> None:
            # Between the channel list and the end of the snapshot: old-1 hangs up,
            # new-1 appears.
            await fake.emit(
                "Hangup",
                {"Privilege": "call,all", **_channel("old-1", "PJSIP/100-1"), "Cause": "16"},
            )
            await fake.emit(
                "Newchannel", {"Privilege": "call,all", **_channel("new-1", "PJSIP/300-2")}
            )
            await session.send(make_response(action, "Error", Message="Permission denied"))

        fake.on_action("CoreShowChannels", channels)
        fake.on_action("BridgeList", bridges)
        async with ami_async.connect(fake.host, fake.port, **USER, ping_interval=None) as client:  # noqa: SIM117
            async with Live(client) as live:
                assert set(live.channels) == {"new-1"}
                assert "BridgeList" in live.missing
                assert "CoreShowChannels" not in live.missing
                (record,) = live.history
                assert record.linkedid == "old-1"
                assert record.caller == ami_async.live.CallerID("100", "Alice")
                assert record.disposition == "ANSWERED"
                # known only from the snapshot: started Duration (7 s) before it
                assert record.duration >= 7


async def test_item1_snapshot_reads_channels_bridges_queues_conferences_and_parking() -> None:
    async with FakeAsterisk() as fake:  # noqa: SIM117 - the client needs fake's port
        async with ami_async.connect(fake.host, fake.port, **USER, ping_interval=None) as client:
            fake.pbx.add_extension("test", "7450", "Dial", "Local/700@test,20")
            linkedid = await call_up(client, "7450")  # a bridge of two Local pairs
            async with Live(client) as live:
                assert linkedid in live.calls
                call = live.calls[linkedid]
                assert len(call.channels) == 4
                assert call.answered_at is not None
                assert all(
                    c.bridge is None or c.bridge in live.bridges for c in live.channels.values()
                )
                assert live.synced
                for name in live.missing:
                    assert name in {
                        "BridgeList",
                        "ConfbridgeListRooms",
                        "ParkedCalls",
                        "QueueStatus",
                    }


# -- Unsynced: the loss of the link, as a change -----------------------------------------------


def unsynced(changes: list[Change]) -> list[Unsynced]:
    return [c for c in changes if isinstance(c, Unsynced)]


async def test_losing_the_link_publishes_unsynced_then_the_resync_differences_then_synced() -> None:
    async with pbx_behind_proxy() as (fake, proxy, client), Live(client) as live:
        linkedid = await call_up(client)
        names = [c.name for c in live.calls[linkedid].channels.values()]
        stream = live.changes()
        proxy.refuse(True, reset=True)  # reconnects are reset, again and again
        proxy.cut()
        first = await stream.get(timeout=10)
        while not isinstance(first, Unsynced):  # the call's last events before the cut
            assert first.reason == "event"
            first = await stream.get(timeout=10)
        assert first.reason == "disconnect" and first.event is None
        assert isinstance(first.cause, str) and "lost" in first.cause
        assert "amp111" not in first.cause
        assert not live.synced
        async with ami_async.connect(fake.host, fake.port, **USER) as direct:
            await direct.hangup(names[0])
            await fake.pbx.wait_idle()
        await proxy.wait_until(lambda: proxy.connections_refused >= 3, timeout=10)
        assert stream.get_nowait() is None  # failed reconnects say nothing more
        proxy.refuse(False)
        rest = await until_synced(stream, "resync")
        assert live.synced
        assert not unsynced(rest)
        assert isinstance(rest[-1], Synced)
        between = rest[:-1]
        assert between and all(c.reason == "resync" for c in between)
        assert sorted(removed_names(between)) == sorted(names)
        assert [c.call.linkedid for c in between if isinstance(c, CallEnded)] == [linkedid]


async def test_a_refused_login_on_reconnect_publishes_no_second_unsynced() -> None:
    """The client calls its disconnect hooks again for each refused login; one loss, one change."""
    async with FakeAsterisk(auth_failure_delay=0) as fake:
        client = ami_async.Client(
            fake.host,
            fake.port,
            **USER,
            ping_interval=None,
            reconnect_delay=0.01,
            max_auth_failures=10,
        )
        hooked: list[BaseException | None] = []
        client.add_disconnect_hook(lambda _client, cause: hooked.append(cause))
        async with client, Live(client) as live:
            stream = live.changes()
            fake.users["admin"] = "not-the-secret"
            await fake.drop()
            await eventually(lambda: len(hooked) >= 3, "two refused logins after the loss")
            fake.users["admin"] = USER["secret"]
            changes = await until_synced(stream, "resync")
            assert len(unsynced(changes)) == 1 and changes[0] is unsynced(changes)[0]
            assert "lost" in (unsynced(changes)[0].cause or "")
            assert live.synced


async def test_closing_the_live_publishes_no_unsynced() -> None:
    async with pbx_behind_proxy() as (_fake, proxy, client):
        live = Live(client)
        await live.start()
        stream = live.changes()
        await call_up(client)
        live.close()
        proxy.cut()  # the link going after close() reaches no stream either
        await proxy.wait_until(lambda: not client.connected)
        seen = [change async for change in stream]  # ends: the Live is closed
        assert seen and not unsynced(seen)
        assert not live.synced


async def test_resync_false_publishes_unsynced_and_never_synced() -> None:
    async with pbx_behind_proxy() as (fake, proxy, client), Live(client, resync=False) as live:
        stream = live.changes()
        proxy.cut()
        first = await stream.get(timeout=10)
        assert isinstance(first, Unsynced) and first.reason == "disconnect"
        await client.wait_connected(timeout=10)
        # Events go on being applied to the (stale) model; no snapshot, no Synced.
        linkedid = await call_up(client)
        seen: list[Change] = []
        while not any(isinstance(c, CallStarted) for c in seen):
            seen.append(await stream.get(timeout=10))
        assert [c.call.linkedid for c in seen if isinstance(c, CallStarted)] == [linkedid]
        await client.ping()
        while (change := stream.get_nowait()) is not None:
            seen.append(change)
        assert not [c for c in seen if isinstance(c, (Synced, Unsynced))]
        assert not live.synced
        snapshots = [a for a in fake.actions if a.get("Action") == "CoreShowChannels"]
        assert len(snapshots) == 1  # the first one only
