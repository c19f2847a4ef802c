"""`AGISession`: one call driven by AGI, over FastAGI or AsyncAGI, one command at a time."""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from ..errors import AGIError, AGIHangupError, AGITimeoutError, InvalidActionError
from ._commands import (
    AGIResult,
    Answer,
    parse_result,
    session_args,
    session_query,
    session_script,
)
from ._helpers import HelpersMixin

__all__ = ["AGISession", "DEFAULT_COMMAND_TIMEOUT"]

logger = logging.getLogger("ami_async.agi")

#: How long a command waits for its answer when neither it nor the session says.
DEFAULT_COMMAND_TIMEOUT = 300.0


class Link(Protocol):
    """What a transport gives a session: send one command line, end the session."""

    async def send(self, line: str) -> asyncio.Future[Answer]:
        """Write ``line``; the future gets its answer (or the `AGIError` that ended the link)."""

    async def finish(self) -> None:
        """End the session on the transport (ASYNCAGI BREAK, or close the socket)."""


@dataclass
class _Request:
    line: str
    future: asyncio.Future[Answer]


def _fresh(error: AGIError) -> AGIError:
    """A new exception of the same kind and text, so each caller gets its own traceback."""
    copy = type(error)(str(error), command=error.command, answer=error.answer)
    copy.__cause__ = error.__cause__
    return copy


class AGISession(HelpersMixin):
    """One channel's AGI session, the same type over FastAGI and AsyncAGI.

    Commands from several tasks are queued and written one at a time, in call
    order: Asterisk reads a command only when the previous one is answered
    (``fastagi_pipelined``). A caller that times out or is cancelled gives up
    only its wait: the command still runs in Asterisk, its late answer is read
    and dropped, and the next command is written after it, so answers never
    shift to the wrong command.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        link: Link,
        *,
        transport: str,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        self.env: Mapping[str, str] = dict(env)
        self.transport = transport
        self.command_timeout = command_timeout
        self._link = link
        self._queue: collections.deque[_Request] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._current: _Request | None = None  # written, its answer awaited
        self._error: AGIError | None = None
        self._hung_up = False
        self._hangup_seen = asyncio.Event()
        self._closed = False

    # -- what the session is -------------------------------------------------------------

    @property
    def channel(self) -> str:
        """The channel's name (``agi_channel``)."""
        return self.env.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        """The channel's unique id (``agi_uniqueid``)."""
        return self.env.get("agi_uniqueid", "")

    @property
    def script(self) -> str:
        """The FastAGI URL's path without ``/`` and query (``"lab"``); ``""`` for AsyncAGI."""
        return session_script(self.env)

    @property
    def query(self) -> dict[str, str]:
        """The FastAGI URL's query parameters, each with its first value."""
        return session_query(self.env)

    @property
    def args(self) -> list[str]:
        """The AGI() application's arguments (``agi_arg_1``, ...)."""
        return session_args(self.env)

    @property
    def hung_up(self) -> bool:
        """The channel hung up (``HANGUP`` came, or ``AsyncAGIEnd``); dead-channel
        commands (``NOOP``, ``GET VARIABLE``) still work while the session is open."""
        return self._hung_up

    @property
    def closed(self) -> bool:
        """The session ended: closed by the application, or its transport is gone."""
        return self._closed or self._error is not None

    def __repr__(self) -> str:
        state = "closed" if self.closed else "hung up" if self._hung_up else "open"
        return f"<AGISession {self.transport} {self.channel!r} {state}>"

    # -- commands --------------------------------------------------------------------------

    async def command(self, line: str, *, timeout: float | None = None) -> AGIResult:
        """Send one raw command line and return its ``200`` answer as an `AGIResult`.

        ``510`` raises `AGIInvalidCommandError`, ``520`` `AGIUsageError`, ``511``
        (dead channel) `AGIHangupError`, as does ``result=-1`` once the channel
        has hung up. No answer within ``timeout`` (default `command_timeout`)
        raises `AGITimeoutError`.
        """
        answer = await self._ask(line, timeout)
        result = parse_result(answer, line)
        if result.result == -1 and self._hung_up:
            raise AGIHangupError(f"{line}: the channel hung up", command=line, answer=answer.text)
        return result

    async def _ask(self, line: str, timeout: float | None) -> Answer:
        if "\n" in line or "\r" in line or "\x00" in line:
            raise InvalidActionError("an AGI command cannot contain CR, LF or NUL")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be a number >= 0 or None, not {timeout!r}")
        self._raise_if_ended(line)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(line, future))
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())
        limit = self.command_timeout if timeout is None else timeout
        try:
            done, _ = await asyncio.wait(
                (future,), timeout=None if limit is None or math.isinf(limit) else limit
            )
        finally:
            if not future.done():
                future.cancel()  # given up: the worker skips it, or drops its late answer
        if not done:
            raise AGITimeoutError(f"{line}: no answer within {limit} s", command=line)
        return future.result()

    def _raise_if_ended(self, line: str) -> None:
        if self._error is not None:
            error = _fresh(self._error)
            error.command = line
            raise error
        if self._closed:
            raise AGIError(f"{line}: the AGI session is closed", command=line)

    async def _work(self) -> None:
        """Write queued commands one by one, each after the previous one's answer."""
        try:
            while self._queue:
                request = self._queue.popleft()
                if request.future.done():
                    continue  # its caller gave up before it was written
                self._current = request
                try:
                    answer_future = await self._link.send(request.line)
                    answer = await answer_future
                except AGIError as exc:
                    if not request.future.done():
                        request.future.set_exception(_fresh(exc))
                    continue
                finally:
                    self._current = None
                if not request.future.done():
                    request.future.set_result(answer)
        finally:
            if self._worker is asyncio.current_task():
                self._worker = None

    async def wait_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the channel hangs up or the session's transport ends; `True` if the
        channel hung up, `False` when ``timeout`` s passed first (or the session ended)."""
        waiter = asyncio.ensure_future(self._hangup_seen.wait())
        try:
            await asyncio.wait((waiter,), timeout=timeout)
        finally:
            waiter.cancel()
        return self._hung_up

    # -- the transport tells --------------------------------------------------------------

    def _on_hangup(self) -> None:
        if not self._hung_up:
            logger.debug("AGI channel %s hung up", self.channel)
        self._hung_up = True
        self._hangup_seen.set()

    def _end(self, error: AGIError) -> None:
        """The transport is gone: every waiting and later command gets ``error``."""
        if self._error is None:
            self._error = error
        if isinstance(error, AGIHangupError):
            self._on_hangup()
        self._hangup_seen.set()  # nothing more will come: waiters wake
        self._fail_queue(error)

    def _fail_queue(self, error: AGIError) -> None:
        while self._queue:
            request = self._queue.popleft()
            if not request.future.done():
                request.future.set_exception(_fresh(error))

    # -- ending ----------------------------------------------------------------------------

    async def close(self) -> None:
        """End the session: AsyncAGI sends ``ASYNCAGI BREAK`` (the dialplan goes on),
        FastAGI closes the socket. Waiting commands get `AGIError`. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._hangup_seen.set()
        closed = AGIError("the AGI session is closed")
        current, self._current = self._current, None
        if current is not None and not current.future.done():
            current.future.set_exception(_fresh(closed))
        self._fail_queue(closed)
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
        await self._link.finish()

    async def __aenter__(self) -> AGISession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
