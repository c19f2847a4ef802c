"""FaultProxy's plumbing: one-way pipes that apply the faults, and the link of two of them."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
import struct
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from ._faultproxy import FaultProxy

logger = logging.getLogger("ami_async.testing")


Direction = Literal["both", "to_client", "to_server"]
"""Which way a fault applies: ``"to_server"`` (client -> server), ``"to_client"``
(server -> client) or ``"both"``."""
_OneWay = Literal["to_client", "to_server"]

_READ_SIZE: Final = 65536
# A throttled pipe writes at most this many seconds' worth of bytes at a time.
_THROTTLE_SLICE: Final = 0.02
DEFAULT_MAX_HELD: Final = 1 << 20
"""Default bound of the bytes one pipe holds (stalled, delayed or throttled)."""


def _directions(direction: Direction) -> tuple[_OneWay, ...]:
    if direction == "both":
        return ("to_server", "to_client")
    if direction == "to_server" or direction == "to_client":
        return (direction,)
    raise ValueError(f"direction must be 'both', 'to_client' or 'to_server', not {direction!r}")


def _reset(transport: asyncio.WriteTransport) -> None:
    """Abort ``transport`` with a TCP RST (``SO_LINGER`` 0) rather than a FIN."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _let_peer_read() -> None:
    """Give an in-process receiver one loop iteration to read what was just written.

    A receiver reads whatever has arrived, so two pieces written back to back
    would reach it as one read. Its read callback is queued behind our own
    wake-up, hence two yields (enough for a receiver on the same event loop).
    """
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class _Chunk:
    """Bytes read from one side, with the loop time they arrived (for ``delay``).

    ``start`` is how much of ``data`` was already written: taking small pieces
    moves it instead of copying the rest each time.
    """

    __slots__ = ("at", "data", "start")

    def __init__(self, at: float, data: bytes) -> None:
        self.at = at
        self.data = data
        self.start = 0

    def __len__(self) -> int:
        return len(self.data) - self.start


class _End:
    """The source side ended: EOF (``error`` None) or an error such as a reset."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Signal:
    """Wakes the one task waiting on it (the reader or the writer of a pipe)."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        self._waiter = waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def fire(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Fragmenter:
    """Piece sizes for ``fragment()``: always ``size``, or random in 1..size."""

    __slots__ = ("rng", "size")

    def __init__(self, size: int, rng: random.Random | None) -> None:
        self.size = size
        self.rng = rng

    def next_size(self) -> int:
        return self.size if self.rng is None else self.rng.randint(1, self.size)


class _Pipe:
    """One direction of one connection: a reader task fills ``items``, a writer task empties it."""

    def __init__(
        self,
        proxy: FaultProxy,
        link: _Link,
        direction: _OneWay,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proxy = proxy
        self.link = link
        self.direction: _OneWay = direction
        self.reader = reader
        self.writer = writer
        self.items: collections.deque[_Chunk | _End] = collections.deque()
        self.size = 0
        """Bytes held in ``items``."""
        self.done = False
        self._arrived = _Signal()
        self._space = _Signal()
        self._next_send = 0.0

    async def read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.size >= self.proxy.max_held:
                await self._space.wait()
                continue
            try:
                data = await self.reader.read(_READ_SIZE)
            except OSError as exc:  # reset by the peer
                self._push(_End(exc))
                return
            if not data:
                self._push(_End(None))
                return
            self.size += len(data)
            self._push(_Chunk(loop.time(), data))

    def _push(self, item: _Chunk | _End) -> None:
        self.items.append(item)
        self._arrived.fire()
        self.proxy._poke()

    def _take(self, size: int) -> bytes:
        head = self.items[0]
        assert isinstance(head, _Chunk)
        start, end = head.start, head.start + size
        if end >= len(head.data):
            self.items.popleft()
            data = head.data[start:] if start else head.data
        else:
            data = head.data[start:end]
            head.start = end
        self.size -= len(data)
        self._space.fire()
        return data

    def flush(self) -> int:
        """Discard every held byte (an end of stream stays); return how many."""
        dropped = self.size
        ends = [item for item in self.items if isinstance(item, _End)]
        self.items.clear()
        self.items.extend(ends)
        self.size = 0
        self._space.fire()
        return dropped

    async def write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        direction = self.direction
        gate = proxy._flowing[direction]
        items = self.items
        try:
            while True:
                # Every wait ends in ``continue``: the faults may have changed meanwhile.
                if not gate.is_set():
                    await gate.wait()
                    continue
                if not items:
                    await self._arrived.wait()
                    continue
                head = items[0]
                if isinstance(head, _End):
                    items.popleft()
                    self._finish(head.error)
                    return
                now = loop.time()
                delay = proxy._delay[direction]
                if delay > 0 and head.at + delay > now:
                    await asyncio.sleep(head.at + delay - now)
                    continue
                rate = proxy._rate[direction]
                if rate is not None and self._next_send > now:
                    await asyncio.sleep(self._next_send - now)
                    continue
                size = len(head)
                fragmenter = proxy._fragment[direction]
                if fragmenter is not None:
                    size = min(size, fragmenter.next_size())
                if rate is not None:
                    size = min(size, max(1, int(rate * _THROTTLE_SLICE)))
                if self.writer.transport.is_closing():
                    raise ConnectionResetError("the receiving side is closed")
                data = self._take(size)
                self.writer.write(data)
                proxy._delivered(direction, len(data))
                if rate is not None:
                    self._next_send = max(now, self._next_send) + len(data) / rate
                await self.writer.drain()
                if fragmenter is not None:
                    await _let_peer_read()
        except OSError:
            # The receiving side is gone: reset the other side too.
            self.link.close(reset=True)

    def _finish(self, error: BaseException | None) -> None:
        if error is not None:
            self.link.close(reset=True)  # pass the reset on
            return
        writer = self.writer
        if not writer.transport.is_closing() and writer.can_write_eof():
            writer.write_eof()  # pass the half-close on; the other pipe may go on
        self.done = True
        self.link.pipe_done()


class _Link:
    """One proxied connection: the client's socket, the server's socket, two pipes."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.writers = (client[1], server[1])
        self.pipes: dict[_OneWay, _Pipe] = {
            "to_server": _Pipe(proxy, self, "to_server", client[0], server[1]),
            "to_client": _Pipe(proxy, self, "to_client", server[0], client[1]),
        }
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False

    def start(self) -> None:
        for pipe in self.pipes.values():
            self.tasks.append(self.proxy._spawn(pipe.read_loop()))
            self.tasks.append(self.proxy._spawn(pipe.write_loop()))

    def pipe_done(self) -> None:
        if all(pipe.done for pipe in self.pipes.values()):
            self.close(graceful=True)

    def close(self, *, reset: bool = False, graceful: bool = False) -> None:
        """End both sides: RST (``reset``), FIN after buffered bytes (``graceful``) or FIN now."""
        if self.closed:
            return
        self.closed = True
        for writer in self.writers:
            if reset:
                _reset(writer.transport)
            elif graceful:
                writer.close()
            else:
                writer.transport.abort()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.proxy._forget(self)
