"""The live model follows the stream through a `dispatch.Sink`, not a sync handler.

A user's sync handler is user code that runs while a read is dispatched (it
could subscribe to more names meanwhile), so while one is registered the parser
keeps every event. The model's sink is the library's own: the parser may go on
skipping the events nobody follows (a third of a busy stream, CEL and device
states among them). An error inside the model is logged there and never
reaches the connection.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from _waiting import eventually
from test_live_resync import USER, call_up

import ami_async
from ami_async.dispatch import Dispatcher
from ami_async.errors import AMIConnectionError
from ami_async.live import Live
from ami_async.message import Event
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, FaultProxy


async def test_following_the_model_lets_the_parser_skip_what_nobody_follows() -> None:
    async with FakeAsterisk() as fake, ami_async.connect(fake.host, fake.port, **USER) as client:
        dispatcher = client._dispatcher
        async with Live(client) as live:
            wanted = dispatcher.interest()
            assert wanted is not None  # a set of names, not "every event"
            assert {b"newchannel", b"hangup", b"bridgeenter", b"queuememberstatus"} <= wanted
            assert not {b"cel", b"cdr", b"devicestatechange", b"rtcpsent"} & wanted
            # A subscriber's names join the set; skipping goes on.
            sub = client.events("UserEvent")
            assert dispatcher.interest() == wanted | {b"userevent"}
            # A user's sync handler still turns skipping off, as before; removed, it is back.

            def handler(ev: Event) -> None:
                pass

            client.on("Hangup")(handler)
            assert dispatcher.interest() is None
            client.off(handler)
            assert dispatcher.interest() == wanted | {b"userevent"}
            sub.close()
            linkedid = await call_up(client)
            await eventually(lambda: linkedid in live.calls, "the call is in the model")
        # Left: the model's names are no longer wanted.
        assert dispatcher.interest() == frozenset()


async def test_an_error_in_the_model_is_logged_and_the_link_stays_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with (
        FakeAsterisk() as fake,
        ami_async.connect(fake.host, fake.port, **USER) as client,
        Live(client) as live,
    ):
        model = live._model

        def broken(ev: Event) -> None:
            raise RuntimeError("a bug in the model")

        model._appliers["newexten"] = broken
        model._by_name.clear()
        with caplog.at_level(logging.ERROR, logger="ami_async.live"):
            linkedid = await call_up(client)
            await eventually(lambda: linkedid in live.calls, "the call is in the model")
        assert client.connected
        assert await client.ping()
        failed = [r for r in caplog.records if "Newexten event not applied" in r.getMessage()]
        assert failed and failed[0].exc_info is not None
        assert "a bug in the model" in str(failed[0].exc_info[1])


def test_a_sink_takes_exact_names_only() -> None:
    dispatcher = Dispatcher(lambda coro: None)  # type: ignore[arg-type,return-value]
    for names in ((), ("*",), ("New*",), ("Hangup", "Queue?")):
        with pytest.raises(ValueError, match="exact event names"):
            dispatcher.add_sink(names, lambda ev: None)
    sink = dispatcher.add_sink(("Hangup",), lambda ev: None)
    assert dispatcher.interest() == frozenset({b"hangup"})
    dispatcher.remove_sink(sink)
    assert sink.closed and dispatcher.interest() == frozenset()


def test_a_sink_removed_during_a_dispatch_gets_nothing_more() -> None:
    # A user's handler that runs first closes the Live: the model gets not even that event.
    dispatcher = Dispatcher(lambda coro: None)  # type: ignore[arg-type,return-value]
    got: list[Event] = []
    sinks = []

    def user_handler(ev: Event) -> None:
        dispatcher.remove_sink(sinks[0])

    dispatcher.add_handler(("Hangup",), user_handler, 100, "drop_oldest")
    sinks.append(dispatcher.add_sink(("Hangup",), got.append))
    dispatcher.feed(Parser().feed(b"Event: Hangup\r\nUniqueid: 1\r\n\r\n"))
    assert got == []


async def test_closing_the_client_closes_the_live_and_ends_its_streams() -> None:
    async with FakeAsterisk() as fake:
        client = ami_async.Client(fake.host, fake.port, **USER)
        await client.connect()
        live = Live(client)
        await live.start()
        stream = live.changes()
        linkedid = await call_up(client)
        await eventually(lambda: linkedid in live.calls, "the call is in the model")
        waiter = asyncio.ensure_future(live.calls[linkedid].ended(timeout=30))
        seen: list[str] = []

        async def read() -> None:
            async for change in stream:
                seen.append(type(change).__name__)

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0)
        await client.close()
        await asyncio.wait_for(reader, 5)  # the stream ended: no reader waits forever
        assert live.closed and not live.synced
        with pytest.raises(AMIConnectionError):
            await asyncio.wait_for(waiter, 5)
        with pytest.raises(AMIConnectionError):
            live.changes()


async def test_a_client_that_gives_up_closes_the_live_after_saying_unsynced() -> None:
    async with FakeAsterisk() as fake, FaultProxy(fake.host, fake.port) as proxy:
        client = ami_async.Client(proxy.host, proxy.port, **USER, reconnect=False)
        await client.connect()
        async with Live(client) as live:
            stream = live.changes()
            proxy.cut()
            seen = [change async for change in stream]  # ends once the client gives up
            assert [type(c).__name__ for c in seen] == ["Unsynced"]
            assert live.closed
        await client.close()
