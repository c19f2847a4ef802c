"""FastAGI: an asyncio server that Asterisk's ``AGI(agi://host:port/script?query)`` dials.

Each connection reads the ``agi_*`` block, runs the handler with an
`AGISession`, and ends the script when the handler returns or raises: the
server half-closes, Asterisk answers with its last ``HANGUP`` and closes
(``fastagi_continue``), and the dialplan goes on at the next priority.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable
from types import TracebackType

from .._compat import run_within
from ..errors import AGIError, AGIHangupError, ProtocolError
from ._commands import HANGUP, Answer, AnswerReader, EnvReader
from ._session import DEFAULT_COMMAND_TIMEOUT, AGISession

__all__ = ["AGIHandler", "AGIServer", "serve"]

logger = logging.getLogger("ami_async.agi")

AGIHandler = Callable[[AGISession], Awaitable[object]]

_READ = 65536


class _FastLink:
    """One FastAGI connection: writes command lines, reads answers and ``HANGUP`` lines."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        linger: float,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.linger = linger
        self.session: AGISession | None = None
        self._answers = AnswerReader()
        self._waiting: collections.deque[asyncio.Future[Answer]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._error: AGIError | None = None
        self._finished = False

    def start(self, session: AGISession, rest: bytes) -> None:
        self.session = session
        self._task = asyncio.ensure_future(self._read(rest))

    async def send(self, line: str) -> asyncio.Future[Answer]:
        if self._error is not None:
            raise self._error
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self.writer.write(line.encode("utf-8") + b"\n")
        await self.writer.drain()
        return future

    def _take(self, items: list[Answer | object]) -> None:
        session = self.session
        assert session is not None
        for item in items:
            if item is HANGUP:
                session._on_hangup()
            elif isinstance(item, Answer):
                while self._waiting and self._waiting[0].done():
                    self._waiting.popleft()
                if not self._waiting:
                    # Asterisk answers only what it was asked: the peer is out of step (or
                    # hostile); ending here also keeps a flood of them out of the log.
                    raise ProtocolError("an AGI answer nobody asked for", item.text.encode())
                self._waiting.popleft().set_result(item)

    async def _read(self, rest: bytes) -> None:
        error: AGIError = AGIHangupError("Asterisk closed the FastAGI connection")
        try:
            if rest:
                self._take(list(self._answers.feed(rest)))
            while True:
                data = await self.reader.read(_READ)
                if not data:
                    break
                self._take(list(self._answers.feed(data)))
        except ProtocolError as exc:
            error = AGIError(f"FastAGI protocol error: {exc}")
            error.__cause__ = exc
            self.writer.transport.abort()
        except (OSError, EOFError) as exc:
            error = AGIHangupError(f"the FastAGI connection failed: {exc}")
        finally:
            self._error = error
            while self._waiting:
                future = self._waiting.popleft()
                if not future.done():
                    future.set_exception(
                        AGIHangupError(str(error))
                        if isinstance(error, AGIHangupError)
                        else AGIError(str(error))
                    )
            if self.session is not None:
                self.session._end(error)

    async def finish(self) -> None:
        """End the script: half-close, let Asterisk say ``HANGUP`` and close (bounded), close."""
        if self._finished:
            return
        self._finished = True
        writer = self.writer
        with contextlib.suppress(OSError, RuntimeError):
            if not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()
        if self._task is not None:
            if not self._task.done():
                await asyncio.wait((self._task,), timeout=self.linger)
            self._task.cancel()
        writer.close()
        closing = asyncio.ensure_future(writer.wait_closed())
        await asyncio.wait((closing,), timeout=self.linger)
        if not closing.done():
            writer.transport.abort()
            closing.cancel()
        elif not closing.cancelled():
            closing.exception()  # retrieved: a reset at close is nothing to report


class AGIServer:
    """A running FastAGI server (from `serve`); ``async with`` closes it."""

    def __init__(
        self,
        handler: AGIHandler,
        *,
        max_sessions: int,
        command_timeout: float | None,
        env_timeout: float,
        linger: float,
    ) -> None:
        self._handler = handler
        self.max_sessions = max_sessions
        self.command_timeout = command_timeout
        self.env_timeout = env_timeout
        self.linger = linger
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._closed = asyncio.Event()
        self.refused = 0

    @property
    def sockets(self) -> tuple[object, ...]:
        """The listening sockets."""
        return tuple(self._server.sockets) if self._server is not None else ()

    @property
    def port(self) -> int:
        """The port the server listens on (useful with ``port=0``)."""
        for sock in self.sockets:
            return int(sock.getsockname()[1])  # type: ignore[attr-defined]
        raise RuntimeError("the AGI server is not listening")

    @property
    def active_sessions(self) -> int:
        """Connections being served now."""
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        """`close` was called."""
        return self._closed.is_set()

    async def _start(self, host: str, port: int, ssl: _ssl.SSLContext | None) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, ssl=ssl)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closed.is_set() or len(self._tasks) >= self.max_sessions:
            # Closing at once lets the dialplan go on (AGISTATUS=FAILURE) instead of a
            # caller waiting in silence for a free slot.
            self.refused += 1
            logger.warning(
                "FastAGI: %d sessions running, a connection is refused", len(self._tasks)
            )
            writer.transport.abort()
            return
        self._tasks.add(task)
        try:
            await self._session(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _FastLink(reader, writer, self.linger)
        try:
            env = await run_within(self.env_timeout, _read_env(reader))
        except (asyncio.TimeoutError, EOFError, OSError, ProtocolError) as exc:
            logger.warning(
                "FastAGI: no AGI environment from %s: %s", _peer(writer), exc or "timeout"
            )
            writer.transport.abort()
            return
        session = AGISession(
            env.env, link, transport="fastagi", command_timeout=self.command_timeout
        )
        link.start(session, env.rest)
        try:
            await self._handler(session)
        except AGIHangupError as exc:
            logger.info("AGI handler for %s ended by a hangup: %s", session.channel, exc)
        except Exception:
            logger.exception(
                "AGI handler for %s (script %r) failed", session.channel, session.script
            )
        finally:
            await session.close()

    async def serve_forever(self) -> None:
        """Serve until `close` is called (then return)."""
        await self._closed.wait()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, wait up to ``timeout`` s for running sessions, then cancel the rest."""
        self._closed.set()
        if self._server is not None:
            self._server.close()
        tasks = set(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                logger.warning("FastAGI: %d sessions cancelled at close", len(late))
                # Each closes its socket on the way out (bounded by linger); a handler
                # that swallows the cancellation is not waited for beyond that.
                await asyncio.wait(late, timeout=2 * self.linger + 1.0)

    async def __aenter__(self) -> AGIServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"


async def _read_env(reader: asyncio.StreamReader) -> EnvReader:
    env = EnvReader()
    while not env.done:
        data = await reader.read(_READ)
        if not data:
            raise EOFError("the connection closed before the environment ended")
        env.feed(data)
    return env


async def serve(
    handler: AGIHandler,
    host: str = "127.0.0.1",
    port: int = 4573,
    *,
    max_sessions: int = 100,
    ssl: _ssl.SSLContext | None = None,
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
    env_timeout: float = 10.0,
    linger: float = 2.0,
) -> AGIServer:
    """Start a FastAGI server running ``handler(session)`` for each connection.

    At most ``max_sessions`` run at once (a connection beyond that is closed
    at once, so the dialplan goes on with ``AGISTATUS=FAILURE``). ``ssl`` serves
    TLS. A peer that sends no complete environment within ``env_timeout`` s is
    dropped; at script end the server waits up to ``linger`` s for Asterisk's
    last ``HANGUP`` and close.
    """
    if not isinstance(max_sessions, int) or max_sessions < 1:
        raise ValueError(f"max_sessions must be an int >= 1, not {max_sessions!r}")
    server = AGIServer(
        handler,
        max_sessions=max_sessions,
        command_timeout=command_timeout,
        env_timeout=env_timeout,
        linger=linger,
    )
    await server._start(host, port, ssl)
    return server
