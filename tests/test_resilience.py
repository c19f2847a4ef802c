"""Staying connected and telling the application: reconnect, keepalive, hostile input, secrets."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _servers import answer_login, deaf_server

from ami_async import (
    AMIConnectionError,
    AuthenticationError,
    Client,
    ConnectionLostError,
    Event,
)
from ami_async.testing import FakeAsterisk, make_response

SECRET = "s3cr3t-Zq9-value"


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(users={"admin": SECRET}, auth_failure_delay=0.01) as server:
        yield server


class Hooks:
    """Records connect/disconnect hook calls and lets a test wait for them."""

    def __init__(self) -> None:
        self.connects = 0
        self.causes: list[BaseException | None] = []
        self._changed = asyncio.Event()

    def on_connect(self, client: Client) -> None:
        self.connects += 1
        self._changed.set()

    async def on_disconnect(self, client: Client, cause: BaseException | None) -> None:
        self.causes.append(cause)
        self._changed.set()

    async def wait(self, predicate: Any, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)


def make_client(pbx: FakeAsterisk, hooks: Hooks | None = None, **kw: Any) -> Client:
    options: dict[str, Any] = {
        "ping_interval": None,
        "timeout": 3.0,
        "action_timeout": 3.0,
        "reconnect_delay": 0.01,
        "reconnect_max_delay": 0.05,
    }
    if hooks is not None:
        options.update(on_connect=hooks.on_connect, on_disconnect=hooks.on_disconnect)
    options.update(kw)
    secret = options.pop("secret", SECRET)
    return Client(pbx.host, pbx.port, username="admin", secret=secret, **options)


# -- 1. reconnect ------------------------------------------------------------------------


async def test_reconnect_after_a_drop_keeps_subscriptions_and_handlers(pbx: FakeAsterisk) -> None:
    hooks = Hooks()
    seen_by_handler: list[str] = []
    async with make_client(pbx, hooks) as ami:
        sub = ami.events("UserEvent")
        ami.on("UserEvent")(lambda ev: seen_by_handler.append(ev["Seq"]))
        await pbx.emit("UserEvent", Seq="before")
        assert (await sub.get(timeout=2))["Seq"] == "before"

        await pbx.drop()
        await hooks.wait(lambda: hooks.connects == 2)
        assert ami.connected
        assert ami.reconnects == 1
        assert len(hooks.causes) == 1
        assert isinstance(hooks.causes[0], ConnectionLostError)

        await pbx.emit("UserEvent", Seq="after")
        assert (await sub.get(timeout=2))["Seq"] == "after"  # the same iterator goes on
        await ami.ping()
        assert seen_by_handler == ["before", "after"]
        logins = [a for a in pbx.actions if a["Action"] == "Login"]
        assert len(logins) == 2


async def test_pending_actions_fail_at_once_and_are_never_resent(pbx: FakeAsterisk) -> None:
    hooks = Hooks()
    pbx.script("Originate")  # queued, never answered
    async with make_client(pbx, hooks) as ami:
        call = asyncio.ensure_future(
            ami.send_action("Originate", Channel="Local/1@x", Application="Wait", timeout=30)
        )
        await pbx.wait_for_action("Originate")
        await pbx.drop()
        with pytest.raises(ConnectionLostError):
            await asyncio.wait_for(call, 2)
        await hooks.wait(lambda: hooks.connects == 2)
        await ami.ping()
        assert ami.pending_actions == 0
    assert [a["Action"] for a in pbx.actions].count("Originate") == 1


async def test_event_mask_and_filters_are_reapplied_after_reconnect(pbx: FakeAsterisk) -> None:
    hooks = Hooks()
    async with make_client(pbx, hooks, events="call,user") as ami:
        await ami.set_events("call")
        await ami.add_filter("Event: Hangup")
        before = len(pbx.actions)
        await pbx.drop()
        await hooks.wait(lambda: hooks.connects == 2)
        again = [(a["Action"], a.get("Events") or a.get("Filter")) for a in pbx.actions[before:]]
    assert again[:2] == [("Login", "call"), ("Filter", "Event: Hangup")]


async def test_reconnect_after_a_server_restart_waits_for_fully_booted() -> None:
    first = FakeAsterisk(users={"admin": SECRET})
    await first.start()
    port = first.port
    hooks = Hooks()
    client = Client(
        "127.0.0.1",
        port,
        username="admin",
        secret=SECRET,
        ping_interval=None,
        reconnect_delay=0.05,
        reconnect_max_delay=0.1,
        on_connect=hooks.on_connect,
        on_disconnect=hooks.on_disconnect,
    )
    booted = client.events("FullyBooted")
    await client.connect()
    await booted.get(timeout=2)
    await first.close()  # Asterisk goes away...
    await hooks.wait(lambda: len(hooks.causes) == 1)
    assert not client.connected
    second = FakeAsterisk(port=port, users={"admin": SECRET})
    await second.start()  # ...and comes back on the same port
    try:
        await client.wait_connected(timeout=5)
        await booted.get(timeout=2)  # the restarted server's FullyBooted
        assert (await client.ping()).success
    finally:
        await client.close()
        await second.close()


async def test_login_refused_during_reconnect_is_reported_and_stops(pbx: FakeAsterisk) -> None:
    hooks = Hooks()
    ami = make_client(pbx, hooks, max_auth_failures=2)
    await ami.connect()
    sub = ami.events()
    pbx.users["admin"] = "changed-on-the-server"
    await pbx.drop()
    await hooks.wait(lambda: len(hooks.causes) == 3)  # the loss, then two refusals
    assert isinstance(hooks.causes[0], ConnectionLostError)
    assert all(isinstance(c, AuthenticationError) for c in hooks.causes[1:])
    with pytest.raises(AuthenticationError):
        await ami.wait_connected(timeout=2)
    assert ami.closed
    with pytest.raises(AuthenticationError):
        await sub.get(timeout=1)
    await ami.close()


async def test_reconnect_gives_up_after_max_attempts() -> None:
    server = FakeAsterisk(users={"admin": SECRET})
    await server.start()
    hooks = Hooks()
    ami = make_client(server, hooks, reconnect_max_attempts=3)
    await ami.connect()
    await server.close()
    await hooks.wait(lambda: len(hooks.causes) == 1)
    with pytest.raises(AMIConnectionError, match="gave up reconnecting"):
        await ami.wait_connected(timeout=5)
    assert ami.closed
    await ami.close()


async def test_reconnect_false_ends_subscriptions_with_the_loss(pbx: FakeAsterisk) -> None:
    ami = make_client(pbx, reconnect=False)
    await ami.connect()
    sub = ami.events()
    await pbx.drop()
    with pytest.raises(ConnectionLostError):
        await sub.get(timeout=2)
    assert ami.closed
    await ami.close()


# -- 2. keepalive -----------------------------------------------------------------------


async def test_keepalive_detects_a_frozen_server_and_reconnects(pbx: FakeAsterisk) -> None:
    hooks = Hooks()
    async with make_client(pbx, hooks, ping_interval=0.05, ping_timeout=0.2) as ami:
        pbx.stall()  # the link stays open, nothing comes back: half-open / frozen
        await hooks.wait(lambda: len(hooks.causes) == 1)
        assert "keepalive" in str(hooks.causes[0].__cause__ or hooks.causes[0])
        pbx.resume()
        await hooks.wait(lambda: hooks.connects == 2)
        assert (await ami.ping()).success


# -- 3. bounded memory --------------------------------------------------------------------


async def test_flood_with_a_slow_subscriber_keeps_memory_flat() -> None:
    """1,000,000 events; a subscriber that reads slowly; drop_oldest applied and counted."""
    total = 1_000_000
    frame = b"Event: Flood\r\nPrivilege: call,all\r\nSeq: 0\r\n\r\n"
    chunk = frame * 2000
    done_sending = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_login(reader, writer)
        for _ in range(total // 2000):
            writer.write(chunk)
            await writer.drain()
        writer.write(b"Event: Last\r\n\r\n")
        await writer.drain()
        done_sending.set()
        await reader.read()  # until the client leaves

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ami = Client("127.0.0.1", port, username="u", secret="x", ping_interval=None)
    ami.boot_timeout = 0
    sub = ami.events("Flood", maxsize=1000, overflow="drop_oldest")
    last = ami.events("Last")
    await ami.connect()
    rss_start = _rss_kb()
    peak_queue = 0
    read = 0

    async def slow_reader() -> None:
        nonlocal peak_queue, read
        while True:
            await sub.get()
            read += 1
            peak_queue = max(peak_queue, sub.qsize())
            await asyncio.sleep(0)

    reader = asyncio.ensure_future(slow_reader())
    await asyncio.wait_for(last.get(), 120)
    rss_end = _rss_kb()
    reader.cancel()
    await ami.close()
    server.close()
    print(  # the figures for the record (pytest -s shows them)
        f"\nflood: {total} events, subscriber read {read}, dropped {sub.dropped} "
        f"(drop_oldest), queue peak {peak_queue}/1000, RSS {rss_start} -> {rss_end} kB"
    )
    assert done_sending.is_set()
    assert peak_queue <= 1000
    assert sub.dropped > 0
    assert sub.dropped + read + sub.qsize() == total or read + sub.dropped >= total - 1000
    assert rss_end - rss_start < 30_000, (rss_start, rss_end)  # kB: flat, not ~100 MB


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def test_a_sender_waits_for_the_transport_to_drain_within_its_timeout() -> None:
    """A server that stops reading: the write path is bounded, the action times out."""
    async with deaf_server() as port:
        await _fill_and_time_out(port)


async def _fill_and_time_out(port: int) -> None:
    ami = Client("127.0.0.1", port, username="u", secret="x", ping_interval=None, events=False)
    await ami.connect()
    big = "x" * 60_000
    protocol = ami._protocol
    assert protocol is not None
    tasks = []
    for _ in range(200):  # fill socket buffers until the transport pauses
        tasks.append(asyncio.ensure_future(ami.send_action("UserEvent", Body=big, timeout=0.5)))
        await asyncio.sleep(0)
        if protocol._paused:
            break
    assert protocol._paused
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, TimeoutError) for r in results)
    assert ami.pending_actions == 0
    await ami.close(logoff=False)


async def test_a_blocking_action_timed_out_before_it_was_written_is_not_counted_running() -> None:
    """Only a blocking action Asterisk got still runs after its timeout (`busy_late`)."""
    async with deaf_server() as port:
        ami = Client("127.0.0.1", port, username="u", secret="x", ping_interval=None, events=False)
        await ami.connect()
        protocol = ami._protocol
        assert protocol is not None
        tasks = []
        for _ in range(200):  # fill socket buffers until the transport pauses
            body = "x" * 60_000
            tasks.append(asyncio.ensure_future(ami.send_action("UserEvent", Body=body, timeout=1)))
            await asyncio.sleep(0)
            if protocol._paused:
                break
        assert protocol._paused
        with pytest.raises(TimeoutError):
            await ami.send_action("UserEvent", ActionID="unsent", blocking=True, timeout=0.2)
        assert "unsent" not in ami._dispatcher.late_blocking
        await asyncio.gather(*tasks, return_exceptions=True)
        await ami.close(logoff=False)


# -- 4. a hostile or broken server ----------------------------------------------------------


async def test_garbage_and_invalid_utf8_never_crash_the_reader(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_client(pbx) as ami:
        sub = ami.events("Weird")
        with caplog.at_level(logging.WARNING, logger="ami_async"):
            await pbx.send_raw(b"this is not a header\r\nneither: is this one\r\n\r\n")
            await pbx.send_raw(b"Event: Weird\r\nName: caf\xe9 \xff\r\n\r\n")
            await pbx.send_raw(b"Response: Success\r\nActionID: nobody-sent-this\r\n\r\n")
            ev = await sub.get(timeout=2)
            assert (await ami.ping()).success
        assert ev["Name"].encode("utf-8", "surrogateescape") == b"caf\xe9 \xff"
        assert any("neither Event nor Response" in r.getMessage() for r in caplog.records)
        assert ami._dispatcher.unmatched_responses == 1


async def test_an_over_long_frame_closes_the_link_with_a_protocol_error(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = Hooks()
    async with make_client(pbx, hooks, max_frame_size=4096) as ami:
        with caplog.at_level(logging.ERROR, logger="ami_async"):
            await pbx.send_raw(b"Event: Huge\r\nData: " + b"x" * 10_000)
            await hooks.wait(lambda: len(hooks.causes) == 1)
        assert "max_frame_size" in str(hooks.causes[0])
        assert any("max_frame_size" in r.getMessage() for r in caplog.records)
        await hooks.wait(lambda: hooks.connects == 2)  # and it recovers
        assert (await ami.ping()).success


async def test_a_close_in_the_middle_of_a_frame(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    hooks = Hooks()
    async with make_client(pbx, hooks) as ami:
        with caplog.at_level(logging.WARNING, logger="ami_async"):
            await pbx.send_raw(b"Event: Cut\r\nHalf: of a fra")
            await pbx.drop()
            await hooks.wait(lambda: hooks.connects == 2)
        assert any("middle of a frame" in r.getMessage() for r in caplog.records)
        assert ami.connected


# -- 6. secrets --------------------------------------------------------------------------------


class EverythingFormatter(logging.Formatter):
    """The message, then every attribute of the record (extras, args, exception)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record) + " " + repr(vars(record))


@pytest.mark.parametrize("auth", ["plain", "md5"])
async def test_secret_never_appears_in_logs_reprs_or_errors(pbx: FakeAsterisk, auth: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EverythingFormatter())
    root = logging.getLogger("ami_async")
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    texts: list[str] = []
    try:
        ami = make_client(pbx, trace=True, auth=auth)
        await ami.connect()
        texts.append(repr(ami))
        await ami.ping()
        key = next(a for a in pbx.actions if a["Action"] == "Login").get("Key")
        with pytest.raises(ValueError, match="CR is not allowed") as info:
            await ami.send_action("Login", Secret=SECRET + "\r\nAction: Hangup")
        texts.append(str(info.value))
        texts.append(repr(next(a for a in pbx.actions if a["Action"] == "Login")))
        await ami.close()
        refused = make_client(pbx, secret=SECRET + "-wrong", auth=auth)
        with pytest.raises(AuthenticationError) as refusal:
            await refused.connect()
        texts.append(str(refusal.value))
        texts.append(repr(refusal.value.response))
        await refused.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    captured = stream.getvalue() + "\n".join(texts)
    assert "Login" in captured  # the wire trace did run
    assert SECRET not in captured
    if key is not None:
        assert key not in captured


# -- 7. TLS -------------------------------------------------------------------------------------


async def test_tls_verified_with_the_right_trust_store_refused_with_the_default() -> None:
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    async with FakeAsterisk(users={"admin": SECRET}, ssl=server_ctx) as tls_pbx:
        trusting = ssl.create_default_context()
        ca.configure_trust(trusting)
        async with make_client(tls_pbx, ssl=trusting) as ami:
            assert (await ami.ping()).success
        with pytest.raises(AMIConnectionError, match="certificate verify failed"):
            await make_client(tls_pbx, ssl=True).connect()
        # the right CA but the wrong host name is refused too
        with pytest.raises(AMIConnectionError, match=r"certificate verify failed|match"):
            await make_client(tls_pbx, ssl=trusting, server_hostname="pbx.example").connect()


async def test_event_class_is_exported() -> None:
    assert Event.__name__ == "Event"


async def test_quirk_events_action_with_no_reply(pbx: FakeAsterisk) -> None:
    """broken_events_action=yes: Asterisk applies EventMask=on but never answers."""
    hooks = Hooks()
    pbx.script("Events")  # never answered
    async with make_client(pbx, hooks, events="off") as ami:
        with pytest.raises(TimeoutError):
            await ami.set_events(True, timeout=0.1)
        assert ami.pending_actions == 0
        before = len(pbx.actions)
        await pbx.drop()
        await hooks.wait(lambda: hooks.connects == 2)
        login = next(a for a in pbx.actions[before:] if a["Action"] == "Login")
        assert login["Events"] == "on"  # the mask the server applied is kept


# -- review: the keepalive, concurrent connects, transient refusals, FullyBooted -------------


async def test_keepalive_waits_behind_a_slow_action_instead_of_dropping_the_link(
    pbx: FakeAsterisk,
) -> None:
    """Asterisk answers one action at a time: a Ping queued behind a slow one is late."""

    async def slow(session: Any, action: Any) -> Any:
        await asyncio.sleep(1.0)  # a synchronous Originate ringing, a Reload...
        return make_response(action, "Success", Message="Originate successfully queued")

    pbx.on_action("Originate", slow)
    hooks = Hooks()
    async with make_client(pbx, hooks, ping_interval=0.1, ping_timeout=0.3) as ami:
        response = await ami.send_action("Originate", Channel="Local/1@x", Application="Wait")
        assert response["Message"] == "Originate successfully queued"
        assert ami.reconnects == 0
        assert hooks.causes == []


async def test_connect_during_a_reconnect_waits_for_it_instead_of_opening_a_second_session(
    pbx: FakeAsterisk,
) -> None:
    hooks = Hooks()
    ami = make_client(pbx, hooks, reconnect_delay=0.2, reconnect_max_delay=0.2)
    await ami.connect()
    await pbx.drop()
    await hooks.wait(lambda: len(hooks.causes) == 1)
    await ami.connect()  # the usual "if not connected: connect()" during the reconnect
    assert ami.connected
    reconnector = ami._reconnector
    assert reconnector is not None
    await asyncio.wait_for(reconnector, 2)  # whatever it was going to do is done
    assert hooks.connects == 2
    assert len([s for s in pbx.sessions if not s.closed]) == 1
    await ami.close()


async def test_a_transient_login_refusal_during_reconnect_is_retried(pbx: FakeAsterisk) -> None:
    refusals = 0

    async def login(session: Any, action: Any) -> None:
        nonlocal refusals
        if refusals < 4:  # the stale session of ours is still there for a while
            refusals += 1
            await session.send(make_response(action, "Error", Message="Login Already In Use"))
            session.close()
            return
        session.authenticated = True
        await session.send(make_response(action, "Success", Message="Authentication accepted"))

    hooks = Hooks()
    async with make_client(pbx, hooks, max_auth_failures=2, boot_timeout=0.1) as ami:
        pbx.on_action("Login", login)
        await pbx.drop()
        await hooks.wait(lambda: hooks.connects == 2)  # connected again in the end
        assert refusals == 4  # more than max_auth_failures, yet not taken as bad credentials
        assert not ami.closed
        assert len(hooks.causes) == 1  # the loss only: transient refusals are not reported


async def test_no_fully_booted_wait_for_a_user_that_never_gets_it() -> None:
    async with FakeAsterisk(users={"admin": SECRET}, fully_booted=False) as server:
        ami = make_client(server, boot_timeout=30.0, timeout=60.0)
        await asyncio.wait_for(ami.connect(), 5)  # does not wait the 30 s boot_timeout
        assert ami.connected
        await ami.close()
