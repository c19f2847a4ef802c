"""`FakeSession`: one client connection to a `FakeAsterisk`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

from ..errors import ProtocolError
from ..message import Message
from ..protocol import Parser
from ._replay import _ReplayState, _Transcript
from ._users import FakeUser, _compiled_filter, _read_mask
from ._wire import _CLOSE, MessageLike, Reply, _encode, _mask_allows

if TYPE_CHECKING:
    from ._server import FakeAsterisk


logger = logging.getLogger("ami_async.testing")


# -- sessions ---------------------------------------------------------------------------


class FakeSession:
    """One client connection to a `FakeAsterisk`.

    Handlers receive it; tests find it in ``fake.sessions``. Output honours
    `FakeAsterisk.stall` (it is held, in order, until resume).
    """

    def __init__(
        self,
        server: FakeAsterisk,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        transcript: _Transcript | None,
    ) -> None:
        self.server = server
        """The server this session belongs to."""
        self.authenticated = False
        """True after a successful Login."""
        self.username: str | None = None
        """The logged-in user, or None."""
        self.events_mask = "on"
        """``"on"``, ``"off"`` or a class list such as ``"call,system"`` (Login/Events)."""
        self.actions: list[Message] = []
        """Every frame this client sent, in order."""
        peer = writer.get_extra_info("peername")
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        """The client's address."""
        self.account: FakeUser | None = None
        """The logged-in user's manager.conf entry, or None."""
        local = writer.get_extra_info("sockname")
        self._local: tuple[str, int] = (str(local[0]), int(local[1])) if local else ("", 0)
        self._connected_at = time.time()
        self._read_mask = "on"  # the user's read classes
        self._filter: re.Pattern[str] | None = None
        self._reader = reader
        self._writer = writer
        self._replay = _ReplayState(transcript) if transcript is not None else None
        self._challenge: str | None = None
        self._held: list[bytes | None] = []
        # Events held while this session's action blocks (a synchronous Originate).
        self._deferred: list[bytes] | None = None
        self._closing = False
        self._closed = False
        self._drain_lock = asyncio.Lock()
        self._task: asyncio.Task[object] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "authenticated" if self.authenticated else "new"
        return f"<FakeSession {self.peer[0]}:{self.peer[1]} {state} user={self.username!r}>"

    @property
    def closed(self) -> bool:
        """True once the connection is closed (or its close is queued behind a stall)."""
        return self._closing or self._closed

    async def send(self, *messages: MessageLike) -> None:
        """Write messages to this client, in order (mappings, pair lists or raw bytes)."""
        for message in messages:
            self._write(_encode(message))
        await self._drain()

    def close(self) -> None:
        """Close the connection after everything already sent (held output included)."""
        if self._closing:
            return
        self._closing = True
        if self.server._stalled:
            self._held.append(_CLOSE)
        else:
            self._close_now()

    # -- internals ---------------------------------------------------------------

    def _log_in(self, username: str, account: FakeUser) -> None:
        self.authenticated = True
        self.username = username
        self.account = account
        self._read_mask = _read_mask(account)
        self._filter = _compiled_filter(account)

    def _receives(self, event: Sequence[tuple[str, str]], *, filtered: bool = True) -> bool:
        """Whether this session gets `event` (its Events mask, its user's read classes, filter)."""
        if not (_mask_allows(self.events_mask, event) and _mask_allows(self._read_mask, event)):
            return False
        if filtered and self._filter is not None:
            text = "".join(f"{key}: {value}\r\n" for key, value in event)
            return self._filter.search(text) is not None
        return True

    def _write_event(self, data: bytes) -> None:
        if self._deferred is not None:
            self._deferred.append(data)
        else:
            self._write(data)

    def _defer_events(self) -> None:
        """Hold events, like Asterisk's session thread does while an action blocks it."""
        if self._deferred is None:
            self._deferred = []

    def _release_events(self) -> None:
        deferred, self._deferred = self._deferred, None
        for data in deferred or ():
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._closing or self._closed or not data:
            return
        if self.server._stalled:
            self._held.append(data)
        elif not self._writer.transport.is_closing():  # the peer is gone: nothing to send to
            self._writer.write(data)

    async def _drain(self) -> None:
        if self._closed or self.server._stalled:
            return
        # One drain at a time: concurrent drain() calls on one writer are not safe
        # on every supported Python.
        async with self._drain_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._writer.drain()

    def _flush(self) -> None:
        held, self._held = self._held, []
        for item in held:
            if item is None:
                self._close_now()
                return
            self._writer.write(item)

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closing = self._closed = True
        self._held.clear()
        self._writer.close()
        self.server._forget(self)

    def _abort(self) -> None:
        if self._closed:
            return
        self._closing = self._closed = True
        self._held.clear()
        self._writer.transport.abort()
        self.server._forget(self)

    async def _serve(self) -> None:
        parser = Parser(expect_banner=False)
        try:
            if self._replay is not None:
                transcript = self._replay.transcript
                self._write(transcript.banner)
                if transcript.close_after_banner:
                    self.close()
            else:
                self._write(self.server._banner_bytes())
            while not self._closing:
                data = await self._reader.read(65536)
                if not data:
                    break
                try:
                    frames = parser.feed(data)
                except ProtocolError:
                    logger.warning("FakeAsterisk: over-long frame from %s, closing", self.peer)
                    break
                for frame in frames:
                    if self._closing:
                        break
                    await self.server._receive(self, frame)
        except ConnectionError:
            pass
        except Exception:
            logger.exception("FakeAsterisk: session %s failed", self.peer)
        finally:
            # A close queued behind a stall is done by resume(), after the held output.
            if not (self._held and self._held[-1] is _CLOSE):
                self._close_now()


ActionHandler: TypeAlias = Callable[
    [FakeSession, Message], "Reply | Awaitable[Reply | None] | None"
]
"""``handler(session, action)``: returns None (it answered itself, or never answers),
a `Reply`, or an awaitable of either."""
_Builtin: TypeAlias = Callable[[FakeSession, Message], Awaitable[None]]
