"""Issue 9, item 2: the keepalive judges a link by the bytes it receives.

Any byte received proves the link alive; a Ping goes out only after
``ping_interval`` of silence; it waits only behind actions that block
Asterisk's session, each for its own ``timeout``. Bounds below are hang
checks ("within N seconds"), never benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _servers import answer_login

from ami_async import ActionTimeoutError, Client, ConnectionLostError, Event
from ami_async._compat import timeout as _timeout
from ami_async._keepalive import blocks_session
from ami_async.testing import FakeAsterisk, make_response

SECRET = "s3cr3t-keepalive"


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(users={"admin": SECRET}) as server:
        yield server


class Links:
    """Counts disconnects and connects."""

    def __init__(self) -> None:
        self.lost: list[BaseException | None] = []
        self.connects = 0
        self.some_lost = asyncio.Event()

    def on_connect(self, client: Client) -> None:
        self.connects += 1

    def on_disconnect(self, client: Client, cause: BaseException | None) -> None:
        self.lost.append(cause)
        self.some_lost.set()


def client_for(host: str, port: int, links: Links, **kw: Any) -> Client:
    options: dict[str, Any] = {
        "timeout": 3.0,
        "action_timeout": 3.0,
        "reconnect_delay": 0.01,
        "reconnect_max_delay": 0.05,
        "on_connect": links.on_connect,
        "on_disconnect": links.on_disconnect,
    }
    options.update(kw)
    return Client(host, port, username="admin", secret=SECRET, **options)


async def test_item2_frozen_server_with_an_ordinary_action_in_flight_is_detected_in_time(
    pbx: FakeAsterisk,
) -> None:
    """SIGSTOPped Asterisk, one ordinary action (timeout=60) in flight, ping_interval=1."""
    links = Links()
    interval, ping_timeout = 1.0, 0.5
    client = client_for(
        pbx.host, pbx.port, links, ping_interval=interval, ping_timeout=ping_timeout
    )
    async with client as ami:
        pbx.stall()  # the link stays open; nothing comes back
        action = asyncio.ensure_future(ami.send_action("Getvar", Variable="X", timeout=60))
        # The bound of the contract (+1 s) plus slack for a loaded machine: a hang check.
        async with _timeout(interval + ping_timeout + 1.0 + 1.5):
            with pytest.raises(ConnectionLostError):
                await action
        assert links.lost and "keepalive" in str(links.lost[0])
        pbx.resume()
        await ami.wait_connected(timeout=5)
        assert (await ami.ping()).success


@pytest.mark.parametrize(
    ("action", "headers"),
    [
        # A synchronous Originate (no Async): blocking by its nature.
        ("Originate", {"Channel": "Local/1@x", "Application": "Wait"}),
        # Any action the caller marks as blocking.
        ("SlowThing", {"blocking": True}),
    ],
)
async def test_item2_blocking_action_longer_than_action_timeout_keeps_a_slow_but_alive_link(
    pbx: FakeAsterisk, action: str, headers: dict[str, Any]
) -> None:
    """A sync Originate with timeout=60 and action_timeout=30, scaled down: the Ping
    waits for the blocking action up to its own timeout, not action_timeout."""

    async def busy(session: Any, frame: Any) -> Any:
        await asyncio.sleep(2.0)  # Asterisk's session is busy: nothing is sent meanwhile
        return make_response(frame, "Success", Message="done")

    pbx.on_action(action, busy)
    links = Links()
    client = client_for(
        pbx.host, pbx.port, links, action_timeout=0.5, ping_interval=0.1, ping_timeout=0.3
    )
    async with client as ami:
        response = await ami.send_action(action, timeout=10, **headers)
        assert response["Message"] == "done"
        assert ami.connected and ami.reconnects == 0 and links.lost == []


async def test_item2_frozen_server_with_a_blocking_action_is_detected_after_its_own_timeout(
    pbx: FakeAsterisk,
) -> None:
    links = Links()
    client = client_for(pbx.host, pbx.port, links, ping_interval=0.2, ping_timeout=0.3)
    async with client as ami:
        pbx.stall()
        # Its own timeout ends it, not a lost link: silence was allowed until then.
        with pytest.raises(ActionTimeoutError):
            await ami.send_action("Command", Command="core show uptime", timeout=1.0)
        async with _timeout(0.2 + 0.3 + 3.0):
            await links.some_lost.wait()
        pbx.resume()


async def test_item2_flood_with_a_slow_sync_handler_loses_no_link() -> None:
    """50 us of handler per event during a flood, ping_timeout=0.5: the Ping's answer
    is stuck behind the events still unread, yet the bytes keep coming."""
    events = 60_000
    frame = b"Event: UserEvent\r\nUserEvent: Flood\r\nSeq: %d\r\n\r\n"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_login(reader, writer)
        probed = asyncio.Event()  # the client's first Ping: it is connected

        async def answer() -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while True:  # until the client goes
                    action = await reader.readuntil(b"\r\n\r\n")
                    ids = [x for x in action.split(b"\r\n") if x.lower().startswith(b"actionid")]
                    writer.write(b"Response: Success\r\n" + ids[0] + b"\r\nPing: Pong\r\n\r\n")
                    probed.set()

        answering = asyncio.ensure_future(answer())
        try:
            await probed.wait()
            for start in range(0, events, 500):
                writer.write(b"".join(frame % n for n in range(start, start + 500)))
                await writer.drain()
            await answering
        except ConnectionError:
            pass
        finally:
            answering.cancel()
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    links = Links()
    seen = 0
    done = asyncio.get_running_loop().create_future()

    def slow(ev: Event) -> None:
        nonlocal seen
        end = time.perf_counter() + 50e-6
        while time.perf_counter() < end:
            pass
        seen += 1
        if seen == events and not done.done():
            done.set_result(None)

    try:
        client = client_for(
            "127.0.0.1", port, links, ping_interval=0.2, ping_timeout=0.5, events=True
        )
        client.on("UserEvent")(slow)  # the flood starts right after connecting
        async with client as ami:
            async with _timeout(60):
                await done
            assert ami.reconnects == 0 and links.lost == []
    finally:
        server.close()


async def test_item2_user_code_blocking_the_loop_beyond_ping_timeout_never_drops_a_live_link(
    pbx: FakeAsterisk,
) -> None:
    """The answer is waiting in the socket when the keepalive wakes: read before judging."""
    links = Links()
    client = client_for(pbx.host, pbx.port, links, ping_interval=0.05, ping_timeout=0.1)
    async with client as ami:
        until = time.monotonic() + 3.0
        while time.monotonic() < until:
            time.sleep(0.25)  # noqa: ASYNC251 - CPU-bound user code: the loop reads nothing meanwhile
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        assert ami.reconnects == 0 and links.lost == []


def test_item2_which_actions_block_the_session() -> None:
    assert blocks_session("Command", {"Command": "core show uptime"})
    assert blocks_session("reload", {})
    assert blocks_session("ModuleLoad", {"Module": "x.so", "LoadType": "reload"})
    assert blocks_session("Originate", {"Channel": "Local/1@x"})
    assert blocks_session("Originate", {"Channel": "Local/1@x", "async": "false"})
    assert not blocks_session("Originate", {"Channel": "Local/1@x", "Async": True})
    assert not blocks_session("Originate", {"Channel": "Local/1@x", "Async": "yes"})
    assert not blocks_session("Getvar", {"Variable": "X"})
    assert not blocks_session("CoreShowChannels", {})


async def test_item2_a_ping_is_sent_only_after_ping_interval_of_silence(
    pbx: FakeAsterisk,
) -> None:
    """Events keep arriving faster than ping_interval: no Ping is needed at all."""
    links = Links()
    client = client_for(pbx.host, pbx.port, links, ping_interval=0.3, ping_timeout=0.5)
    async with client as ami:
        seen = len(pbx.actions)
        for n in range(15):
            await pbx.emit("UserEvent", UserEvent="Tick", Seq=str(n))
            await asyncio.sleep(0.1)
        pings = [a for a in pbx.actions[seen:] if a.get("Action", "").lower() == "ping"]
        assert pings == []
        await asyncio.sleep(0.6)  # silence now: the keepalive speaks
        pings = [a for a in pbx.actions[seen:] if a.get("Action", "").lower() == "ping"]
        assert pings
        assert ami.reconnects == 0
