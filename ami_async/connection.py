"""The asyncio adapter: transport bytes <-> the sans-IO `ami_async.protocol.Parser`.

``AMIProtocol`` feeds what it reads to the parser and hands each batch of
complete messages to a callback, writes encoded actions, waits for the
transport to drain while writing is paused (flow control), and reports the
loss of the connection with its cause. It never waits on a consumer. It notes
when it last read anything (`received_at`): the keepalive's proof of life.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from time import monotonic
from typing import Final, cast

from ._compat import timeout as _timeout
from .errors import ConnectionLostError, ProtocolError
from .message import Message
from .protocol import DEFAULT_MAX_FRAME_SIZE, Parser

__all__ = ["AMIProtocol"]

logger = logging.getLogger("ami_async")
wire_logger = logging.getLogger("ami_async.wire")

#: In a list's answer (`EventList: start`) and in its last event (`EventList: Complete`).
_SECRET_LINE: Final = re.compile(rb"(?im)^(secret[ \t]*:)[^\r\n]*")
_SECRET_OR_KEY_LINE: Final = re.compile(rb"(?im)^((?:secret|key)[ \t]*:)[^\r\n]*")


def redact(data: bytes) -> bytes:
    """``data`` with the value of every ``Secret:`` line replaced, and of ``Key:`` lines
    in frames that carry ``AuthType`` (an MD5 login; DBGet's ``Key`` is no secret)."""
    if b"authtype" in data.lower():
        return _SECRET_OR_KEY_LINE.sub(rb"\1 ********", data)
    return _SECRET_LINE.sub(rb"\1 ********", data)


class AMIProtocol(asyncio.Protocol):
    """One AMI connection: parser in, encoded actions out.

    `interest()`, asked before each read, gives the lower-cased event names to
    keep (the parser skips the other events unparsed) or `None` for all; a set
    whose `scan_lists` attribute is true also asks that nothing be skipped after
    an answer carrying `EventList:` in the same read (see `Parser.only_events`).
    """

    def __init__(
        self,
        on_messages: Callable[[list[Message]], None],
        on_lost: Callable[[AMIProtocol, BaseException | None], None],
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        trace: bool = False,
        label: str = "",
        interest: Callable[[], frozenset[bytes] | None] | None = None,
    ) -> None:
        self._on_messages = on_messages
        self._interest = interest
        self._on_lost = on_lost
        self.parser = Parser(max_frame_size=max_frame_size)
        self.transport: asyncio.Transport | None = None
        self.trace = trace
        self.label = label
        #: Structured logging: every record about this connection carries its address.
        self._extra = {"ami_host": label}
        self.closed = False
        #: Set when we sent Logoff: the server's close that follows is expected.
        self.expect_close = False
        #: Why the connection ended (``None`` for a clean EOF or a local close).
        self.cause: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._banner: asyncio.Future[str | None] = self._loop.create_future()
        self._banner_seen = False
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._batch: list[bytes] | None = None
        #: ``time.monotonic()`` of the last read (of the creation, before any).
        self.received_at = monotonic()

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance here.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_at = monotonic()
        if self.trace and wire_logger.isEnabledFor(logging.DEBUG):
            wire_logger.debug("%s <<< %r", self.label, redact(data), extra=self._extra)
        if self._interest is not None:
            # (With `scan_lists`, the parser stops skipping at an answer that opens a list.)
            self.parser.only_events = self._interest()
        try:
            messages = self.parser.feed(data)
        except ProtocolError as exc:
            logger.error("%s: %s; closing the connection", self.label, exc, extra=self._extra)
            self.cause = exc
            self.abort()
            return
        except Exception as exc:  # a bug of ours: never into the event loop
            logger.exception(
                "%s: the parser failed; closing the connection", self.label, extra=self._extra
            )
            self.cause = exc
            self.abort()
            return
        if not self._banner_seen and (messages or self.parser.banner is not None):
            self._banner_seen = True  # (a flag: no method call per read after the banner)
            if not self._banner.done():
                self._banner.set_result(self.parser.banner)
        if messages:
            try:
                self._on_messages(messages)
            except Exception:  # never let a bug escape into the event loop
                logger.exception(
                    "%s: error while dispatching messages", self.label, extra=self._extra
                )

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._lost.done():
            self._lost.set_result(None)
        if self.cause is None:
            self.cause = exc
        if not self._banner.done():
            self._banner.set_exception(
                ConnectionLostError("the server closed the connection before its banner")
            )
            self._banner.exception()
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionLostError("connection lost while writing"))
            waiter.exception()
        if self.parser.buffered:
            logger.warning(
                "%s: connection closed in the middle of a frame (%d bytes discarded)",
                self.label,
                self.parser.buffered,
                extra=self._extra,
            )
        self._on_lost(self, self.cause)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the client ------------------------------------------------------------

    async def wait_banner(self) -> str | None:
        """The banner line (``None`` if the server sent messages without one)."""
        return await asyncio.shield(self._banner)

    def write(self, data: bytes, burst: bool = True) -> None:
        """Write ``data`` (in order after what was written before).

        With ``burst`` (more actions are likely in this loop iteration) the
        writes that follow this one in the same iteration are joined into one
        at its end; ``burst=False`` (a lone action) writes it and schedules nothing.
        """
        if self.closed or self.transport is None:
            raise ConnectionLostError("the connection is closed")
        if self.trace and wire_logger.isEnabledFor(logging.DEBUG):
            wire_logger.debug("%s >>> %r", self.label, redact(data), extra=self._extra)
        batch = self._batch
        if batch is not None:
            batch.append(data)  # after the batch's earlier writes, never before
            return
        # The first action of this loop iteration goes out at once (no added
        # latency); the ones that follow in the same iteration are joined into
        # one write at its end: one system call for a burst of actions.
        self.transport.write(data)
        if burst:
            self._batch = []
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        batch, self._batch = self._batch, None
        if batch and self.transport is not None and not self.closed:
            self.transport.write(b"".join(batch))

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        if not self._paused:
            return
        if self.closed:
            raise ConnectionLostError("the connection is closed")
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = self._loop.create_future()
        await asyncio.shield(waiter)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self._flush()  # what was written goes out before the close
            self.transport.close()

    async def shut(self, grace: float) -> None:
        """Close, letting what was written go out for at most ``grace`` seconds.

        A peer that stopped reading would keep a plain close (and the socket)
        waiting forever: after ``grace`` the connection is aborted, and at once
        if the wait is cancelled.
        """
        self.close()
        if self.transport is None:
            return
        try:
            async with _timeout(grace):
                await asyncio.shield(self._lost)
        except asyncio.TimeoutError:
            self.abort()
            with contextlib.suppress(asyncio.TimeoutError):
                async with _timeout(1.0):
                    await asyncio.shield(self._lost)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()
