"""Issue 9, the client's items: reconnect backoff, close() under cancellation, MD5
secrets, stored failures, wait_connected waiters, one connect budget, option
checks, the library's logger, stream(), and the API reference's attributes."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import subprocess
import sys
import time
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _servers import answer_login

from ami_async import (
    ActionTimeoutError,
    AMIConnectionError,
    AMIError,
    AuthenticationError,
    Client,
    ConnectionLostError,
    Event,
)
from ami_async._compat import timeout as _timeout
from ami_async._login import md5_key
from ami_async._options import backoff
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, make_response, with_action_id

SECRET = "s3cr3t-issue9-value"


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(users={"admin": SECRET}, auth_failure_delay=0.01) as server:
        yield server


def client_for(host: str, port: int, **kw: Any) -> Client:
    options: dict[str, Any] = {"ping_interval": None, "timeout": 3.0, "action_timeout": 3.0}
    options.update(kw)
    secret = options.pop("secret", SECRET)
    return Client(host, port, username="admin", secret=secret, **options)


async def until(predicate: Any, seconds: float = 5.0) -> None:
    """A hang check: wait for ``predicate()`` for at most ``seconds``."""
    async with _timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - client state has no event to wait on
            await asyncio.sleep(0.01)


# -- item 3: the reconnect loop past 1024 attempts ----------------------------------------


def test_item3_backoff_is_capped_for_any_attempt_number() -> None:
    for attempt in (0, 1, 10, 1023, 1024, 1025, 5000, 10**9):
        pause = backoff(attempt, 0.5, 30.0)
        assert 0 < pause <= 30.0
    assert 15.0 <= backoff(2000, 0.5, 30.0) <= 30.0
    assert backoff(0, 0.5, 30.0) <= 0.5


class _Attempts(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.failed = 0
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "attempt" in record.getMessage() and "failed" in record.getMessage():
            self.failed += 1
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())


async def test_item3_reconnect_loop_survives_more_than_1024_failed_attempts() -> None:
    async with FakeAsterisk(users={"admin": SECRET}) as server:
        client = client_for(
            server.host, server.port, reconnect_delay=0.001, reconnect_max_delay=0.001
        )
        await client.connect()
    # The server is gone: every attempt fails at once, with a pause of at most 1 ms (the floor).
    attempts = _Attempts()
    logger = logging.getLogger("ami_async")
    logger.addHandler(attempts)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await until(lambda: attempts.failed > 1100, 60.0)
        assert client._reconnector is not None and not client._reconnector.done()
        assert not client.closed
    finally:
        logger.removeHandler(attempts)
        logger.setLevel(level)
        await client.close()


# -- item 4: close() cancelled ----------------------------------------------------------------


async def test_item4_close_cancelled_while_waiting_for_logoff_still_closes(
    pbx: FakeAsterisk,
) -> None:
    pbx.on_action("Logoff", lambda session, action: None)  # never answered
    client = client_for(pbx.host, pbx.port, ping_interval=30)
    await client.connect()
    keepalive = client._keepalive
    assert keepalive is not None
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.close(), 0.1)
    assert client.closed and not client.connected
    await until(lambda: keepalive.done())
    await until(lambda: not pbx.sessions)  # the server saw the socket closed
    async with _timeout(5):
        await client.close()  # completes what is left, does not return doing nothing
    assert not client._tasks


async def test_item4_close_cancelled_while_gathering_tasks_still_shuts_the_socket(
    pbx: FakeAsterisk,
) -> None:
    client = client_for(pbx.host, pbx.port)
    started = asyncio.Event()

    async def stubborn(ev: Event) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.5)  # cleanup that takes a while
            raise

    client.on("UserEvent")(stubborn)
    await client.connect()
    await pbx.emit("UserEvent", UserEvent="Go")
    async with _timeout(5):
        await started.wait()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.close(logoff=False), 0.1)
    assert client.closed
    await until(lambda: not pbx.sessions)
    async with _timeout(5):
        await client.close()
    assert not client._tasks


# -- item 9: an MD5 secret that cannot be encoded --------------------------------------------


def _texts(exc: BaseException | None) -> list[str]:
    """Everything an exception and its chain can show."""
    seen: list[str] = []
    while exc is not None:
        seen += [str(exc), repr(exc), *(repr(a) for a in exc.args)]
        seen += [repr(v) for v in vars(exc).values()]
        exc = exc.__cause__ or exc.__context__
    return seen


async def test_item9_md5_secret_that_cannot_be_encoded_never_leaks(pbx: FakeAsterisk) -> None:
    secret = "leak\ud800MARKER-Zq9"  # a lone surrogate that surrogateescape cannot map
    client = client_for(pbx.host, pbx.port, auth="md5", secret=secret)
    with pytest.raises(ValueError, match="cannot be encoded") as info:
        await client.connect()
    assert isinstance(info.value, AMIError)
    for text in _texts(info.value):
        assert "MARKER-Zq9" not in text and "leak" not in text
    await client.close()


def test_item9_md5_key_of_a_surrogate_escaped_secret_is_its_raw_bytes() -> None:
    """A secret read from os.environ with undecodable bytes logs in like a plain login."""
    secret = b"pa\xffss".decode("utf-8", "surrogateescape")
    assert md5_key("1234", secret) == hashlib.md5(b"1234pa\xffss").hexdigest()


# -- item 10: a stored failure re-raised -------------------------------------------------------


async def test_item10_stored_failure_raised_fresh_each_time(pbx: FakeAsterisk) -> None:
    client = client_for(pbx.host, pbx.port, reconnect=False)
    await client.connect()
    await pbx.drop()
    await until(lambda: client.closed)
    stored = client._failure
    assert stored is not None
    depth = len(traceback.extract_tb(stored.__traceback__))
    last: BaseException | None = None
    for _ in range(300):
        with pytest.raises(ConnectionLostError) as info:
            await client.send_action("Ping")
        last = info.value
        with pytest.raises(ConnectionLostError):
            await client.wait_connected(timeout=1)
    assert last is not None and last is not stored and last.__cause__ is stored
    assert len(traceback.extract_tb(stored.__traceback__)) == depth
    assert len(traceback.extract_tb(last.__traceback__)) < 20
    await client.close()


# -- item 11: wait_connected waiters -----------------------------------------------------------


async def test_item11_timed_out_or_cancelled_wait_connected_leaves_no_waiter() -> None:
    client = Client("127.0.0.1", 9, username="u", secret="x", ping_interval=None)
    for _ in range(500):
        with pytest.raises(TimeoutError):
            await client.wait_connected(timeout=0.0001)
    tasks = [asyncio.ensure_future(client.wait_connected(timeout=30)) for _ in range(500)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(client._state_waiters) == 0
    await client.close()


# -- item 14: one budget for one connection attempt -------------------------------------------


async def test_item14_a_slow_login_and_a_silent_probe_share_one_timeout() -> None:
    """The login takes most of the budget, then the FullyBooted probe Ping is never
    answered: the attempt ends after ``timeout``, not after twice that."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.8)
        await answer_login(reader, writer)
        await reader.read()  # the probe Ping stays unanswered

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        client = client_for("127.0.0.1", server.sockets[0].getsockname()[1], timeout=1.0)
        started = time.monotonic()
        with pytest.raises(AMIConnectionError) as info:
            await client.connect()
        elapsed = time.monotonic() - started
        assert not isinstance(info.value, ActionTimeoutError)  # 3.10 raised that
        assert elapsed < 1.6  # a hang check: the old code took 0.8 s + a fresh 1 s
        await client.close()
    finally:
        server.close()


# -- item 15: harmful options ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("ping_interval", -1),
        ("ping_interval", 0),
        ("ping_timeout", 0),
        ("ping_timeout", -0.5),
        ("reconnect_delay", 0),
        ("reconnect_delay", -1),
        ("reconnect_max_delay", 0),
        ("timeout", -1),
        ("action_timeout", 0),
        ("boot_timeout", -1),
        ("reconnect_max_attempts", -1),
        ("reconnect_max_attempts", 0),
        ("max_auth_failures", 0),
        ("event_queue_size", 0),
        ("max_frame_size", 0),
        ("timeout", float("nan")),
    ],
)
def test_item15_harmful_options_are_refused(option: str, value: Any) -> None:
    options: dict[str, Any] = {option: value}
    with pytest.raises(ValueError, match=option):
        Client("127.0.0.1", username="u", secret="x", **options)


def test_item15_sane_edges_are_accepted() -> None:
    Client("127.0.0.1", username="u", secret="x", ping_interval=None, boot_timeout=0)
    Client("127.0.0.1", username="u", secret="x", reconnect_max_attempts=None)
    Client("127.0.0.1", username="u", secret="x", reconnect_delay=60)  # capped by max_delay


# -- item 22: the logger, stream(), the refused login's message ---------------------------------


def test_item22_library_logger_has_a_null_handler() -> None:
    code = (
        "import logging, ami_async\n"
        "logging.getLogger('ami_async').warning('RAW-WARNING-LINE')\n"
        "logging.getLogger('ami_async.wire').warning('RAW-WARNING-LINE')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "RAW-WARNING-LINE" not in result.stderr


def test_item21_stream_is_a_plain_method_returning_an_async_iterator() -> None:
    assert not inspect.isasyncgenfunction(Client.stream)
    assert not inspect.iscoroutinefunction(Client.stream)


async def test_item21_stream_behaves_as_before(pbx: FakeAsterisk) -> None:
    async def three(session: Any, action: Any) -> None:
        await session.send(make_response(action, "Success", EventList="start"))
        for n in range(3):
            await session.send(with_action_id(action, [("Event", "TestItem"), ("Seq", str(n))]))
        end = [("Event", "TestListComplete"), ("EventList", "Complete"), ("ListItems", "3")]
        await session.send(with_action_id(action, end))

    pbx.on_action("TestList", three)
    async with client_for(pbx.host, pbx.port) as ami:
        stream = ami.stream("TestList")
        assert hasattr(stream, "__anext__")
        assert [item["Seq"] async for item in stream] == ["0", "1", "2"]
        broken = ami.stream("TestList")
        async for _ in broken:
            break
        await broken.aclose()  # type: ignore[attr-defined]
        assert ami.pending_actions == 0


async def test_item22_refused_login_message_is_said_once_without_the_secret(
    pbx: FakeAsterisk,
) -> None:
    client = client_for(pbx.host, pbx.port, secret="wrong-secret-value")
    with pytest.raises(AuthenticationError) as info:
        await client.connect()
    assert str(info.value) == "Asterisk refused the login of user 'admin': Authentication failed"
    await client.close()


# -- item 21: attributes in the API reference ---------------------------------------------------


def test_item21_reference_attributes_have_docstrings() -> None:
    griffe = pytest.importorskip("griffe")
    client = griffe.load("ami_async.client")["Client"]
    for name in ("ami_version", "banner", "reconnects", "list_completions"):
        member = client.members[name]
        assert member.docstring is not None and member.docstring.value.strip(), name


# -- item 6, the client's part: stream() waits honour cancellation -----------------------------


async def test_item6_cancelled_stream_wait_is_always_honoured(pbx: FakeAsterisk) -> None:
    """An item and a cancel landing in the same loop iteration: the cancel wins (3.10 and
    3.11 ``asyncio.wait_for`` returned the item instead)."""

    async def opened(session: Any, action: Any) -> None:  # the items come from the test
        await session.send(make_response(action, "Success", EventList="start"))

    pbx.on_action("SilentList", opened)
    swallowed = cancels = 0
    async with client_for(pbx.host, pbx.port, ping_interval=None) as ami:
        for i in range(150):
            items = ami.stream("SilentList", timeout=5)
            first = asyncio.ensure_future(anext(items))  # type: ignore[arg-type]
            await until(lambda: any(p.response for p in ami._dispatcher.pending.values()))
            (action_id,) = ami._dispatcher.pending
            for _ in range(i % 3):
                await asyncio.sleep(0)
            item = f"Event: TestItem\r\nActionID: {action_id}\r\nN: {i}\r\n\r\n".encode()
            ami._dispatcher.feed(Parser(expect_banner=False).feed(item))
            cancelled = first.cancel()
            cancels += cancelled
            try:
                await first
                swallowed += cancelled
            except asyncio.CancelledError:
                assert cancelled
            await items.aclose()  # type: ignore[attr-defined]
        assert ami.pending_actions == 0
    assert cancels and swallowed == 0, f"{swallowed} of {cancels} cancellations swallowed"
