"""Issue 11: the FastAGI server under hostile or broken peers, at its limits, and at close.

The peer here plays Asterisk by hand: it writes an ``agi_*`` block as
``fastagi_basic`` does, then stalls, floods, sends garbage or goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from ami_async.agi import AGIError, AGIHangupError, AGISession, AGITimeoutError, serve

ENV = (
    b"agi_network: yes\nagi_network_script: lab\nagi_request: agi://127.0.0.1:4573/lab\n"
    b"agi_channel: Local/723@test-0000001d;2\nagi_uniqueid: fagi-cont-2\n\n"
)
WAIT = 5.0


async def connect(port: int, env: bytes = ENV) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sends until it closes (a reset counts as closed)."""
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), WAIT):
            data += chunk
    except ConnectionError:
        pass
    return data


Handler = Callable[[AGISession], Awaitable[None]]


def recording(outcomes: list[BaseException | str]) -> Callable[[Handler], Handler]:
    """Wrap a handler so that how it ended is appended to ``outcomes``."""

    def wrap(body: Handler) -> Handler:
        async def handler(agi: AGISession) -> None:
            try:
                await body(agi)
            except BaseException as exc:
                outcomes.append(exc)
                raise
            outcomes.append("returned")

        return handler

    return wrap


async def test_a_stalling_peer_times_the_command_out_and_is_let_go() -> None:
    outcomes: list[BaseException | str] = []

    @recording(outcomes)
    async def handler(agi: AGISession) -> None:
        await agi.answer(timeout=0.05)

    async with await serve(handler, port=0, linger=0.1) as server:
        reader, writer = await connect(server.port)
        assert await reader.readline() == b"ANSWER\n"  # then the peer says nothing, ever
        assert await closed_by_server(reader) == b""  # half-closed, then closed after linger
        writer.close()
    assert isinstance(outcomes[0], AGITimeoutError)


async def test_no_environment_is_dropped_after_env_timeout() -> None:
    calls: list[AGISession] = []

    async def handler(agi: AGISession) -> None:
        calls.append(agi)

    async with await serve(handler, port=0, env_timeout=0.05) as server:
        reader, writer = await connect(server.port, env=b"agi_network: yes\n")  # and no more
        assert await closed_by_server(reader) == b""
        writer.close()
    assert calls == []


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not an answer\n",
        b"x" * 70_000,  # a line that never ends
        b"200 result=0\n" * 10_000,  # answers nobody asked for
        b"\x00\xff\xfe\n",
    ],
    ids=["text", "endless-line", "flood-of-answers", "binary"],
)
async def test_garbage_ends_the_session_not_the_server(
    garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes: list[BaseException | str] = []

    @recording(outcomes)
    async def handler(agi: AGISession) -> None:
        await agi.noop()  # answered by the peer below
        await agi.wait_hangup(WAIT)
        await agi.noop(timeout=WAIT)

    async with await serve(handler, port=0, linger=0.1) as server:
        reader, writer = await connect(server.port)
        assert await reader.readline() == b"NOOP\n"
        writer.write(b"200 result=0\n" + garbage)
        await closed_by_server(reader)
        writer.close()
        # the server still serves the next call
        reader, writer = await connect(server.port)
        assert await reader.readline() == b"NOOP\n"
        writer.close()
    assert isinstance(outcomes[0], AGIError) and not isinstance(outcomes[0], AGITimeoutError)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) < 10


async def test_peer_gone_mid_command_is_a_hangup() -> None:
    outcomes: list[BaseException | str] = []

    @recording(outcomes)
    async def handler(agi: AGISession) -> None:
        await agi.stream_file("hello-world")

    async with await serve(handler, port=0) as server:
        reader, writer = await connect(server.port)
        assert await reader.readline() == b'STREAM FILE hello-world ""\n'
        writer.transport.abort()
        for _ in range(100):
            if outcomes:
                break
            await asyncio.sleep(0.01)
    assert isinstance(outcomes[0], AGIHangupError)


async def test_max_sessions_refuses_the_call_beyond_it_at_once() -> None:
    release, entered = asyncio.Event(), asyncio.Event()

    async def handler(agi: AGISession) -> None:
        entered.set()
        await release.wait()

    async with await serve(handler, port=0, max_sessions=1) as server:
        first, first_writer = await connect(server.port)
        await asyncio.wait_for(entered.wait(), WAIT)
        second, second_writer = await connect(server.port)
        assert await closed_by_server(second) == b""  # refused: the dialplan goes on
        assert server.refused == 1 and server.active_sessions == 1
        release.set()
        assert await closed_by_server(first) == b""  # the script ended: half-close
        first_writer.close()
        second_writer.close()


async def test_close_waits_then_cancels_running_sessions() -> None:
    outcomes: list[BaseException | str] = []
    started = asyncio.Event()

    @recording(outcomes)
    async def handler(agi: AGISession) -> None:
        started.set()
        await asyncio.sleep(3600)

    server = await serve(handler, port=0)
    port = server.port
    reader, writer = await connect(port)
    await asyncio.wait_for(started.wait(), WAIT)
    await asyncio.wait_for(server.close(timeout=0.05), WAIT)
    assert isinstance(outcomes[0], asyncio.CancelledError)
    assert await closed_by_server(reader) == b""
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)  # no longer listening


async def test_a_handler_that_raises_is_logged_with_its_channel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(agi: AGISession) -> None:
        raise RuntimeError("a bug")

    async with await serve(handler, port=0, linger=0.1) as server:
        for _ in range(2):
            reader, writer = await connect(server.port)
            assert await closed_by_server(reader) == b""
            writer.close()
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 2 and "Local/723@test-0000001d;2" in failures[0].getMessage()
