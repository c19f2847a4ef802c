"""FaultProxy: a TCP proxy that breaks the link between a client and a server on command.

Put it between the client under test and a server (``FakeAsterisk`` or a real
Asterisk) and, while traffic flows, cut every connection, refuse new ones,
freeze a direction, add latency, limit the bandwidth or split the stream into
small pieces::

    async with FakeAsterisk() as fake, FaultProxy(fake.host, fake.port) as proxy:
        async with ami_async.connect(proxy.host, proxy.port, username="admin",
                                     secret="amp111") as ami:
            proxy.cut()                      # both ends see the connection reset
            await ami.wait_connected(timeout=5)
            proxy.stall()                    # half-open: nothing passes, nothing closes
            ...
            proxy.resume()

Each connection is two one-way pipes (``"to_server"``: client -> server,
``"to_client"``: server -> client). A pipe reads into a bounded buffer
(``max_held`` bytes; beyond that it stops reading, so TCP back-pressure reaches
the sender) and writes out of it, applying the faults in force at that moment.
Faults apply to the connections already open and to those made later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from .._compat import timeout as _timeout
from ._pipes import (
    DEFAULT_MAX_HELD,
    Direction,
    _directions,
    _Fragmenter,
    _Link,
    _OneWay,
    _reset,
)

__all__ = ["Direction", "FaultProxy"]

logger = logging.getLogger("ami_async.testing")


class FaultProxy:
    """A TCP proxy on ``host:port`` (port 0: a free port) forwarding to ``target_host:target_port``.

    Faults are switched on and off with plain (not async) method calls, from a
    test or from any task on the proxy's event loop: `cut`, `refuse`,
    `stall` / `resume`, `delay`, `throttle`,
    `fragment`; `heal` clears them all. ``max_held`` bounds the
    bytes each direction of each connection holds while stalled, delayed or
    throttled; ``connect_timeout`` bounds the connection to the target made
    for each accepted client.

    Counters (plain ints, for assertions): `bytes_to_server`,
    `bytes_to_client`, `bytes_dropped`, `connections_accepted`,
    `connections_refused`, `upstream_failures`, `cuts`.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_held: int = DEFAULT_MAX_HELD,
        connect_timeout: float = 5.0,
    ) -> None:
        if max_held < 1:
            raise ValueError("max_held must be at least 1 byte")
        if not connect_timeout > 0:
            raise ValueError("connect_timeout must be a positive number of seconds")
        self.target_host = target_host
        """Where accepted connections are forwarded."""
        self.target_port = target_port
        self.max_held = max_held
        self.connect_timeout = connect_timeout
        self.bytes_to_server = 0
        """Bytes delivered to the server (client -> server)."""
        self.bytes_to_client = 0
        """Bytes delivered to clients (server -> client)."""
        self.bytes_dropped = 0
        """Held bytes discarded by ``resume(flush=False)``."""
        self.connections_accepted = 0
        """Client connections accepted for proxying."""
        self.connections_refused = 0
        """Client connections reset at once (``refuse(reset=True)``, or while closing)."""
        self.upstream_failures = 0
        """Accepted clients reset because the target could not be reached."""
        self.cuts = 0
        """Connections ended by `cut`."""
        self._host = host
        self._port = port
        self._started = False
        self._closed = False
        self._listening_off = False  # refuse(): listener closed
        self._reset_new = False  # refuse(reset=True): accept and reset
        self._server: asyncio.Server | None = None
        self._pending_sock: socket.socket | None = None
        self._pending_task: asyncio.Task[None] | None = None
        self._old_servers: list[asyncio.Server] = []
        self._flowing: dict[_OneWay, asyncio.Event] = {
            "to_server": asyncio.Event(),
            "to_client": asyncio.Event(),
        }
        for gate in self._flowing.values():
            gate.set()
        self._delay: dict[_OneWay, float] = {"to_server": 0.0, "to_client": 0.0}
        self._rate: dict[_OneWay, float | None] = {"to_server": None, "to_client": None}
        self._fragment: dict[_OneWay, _Fragmenter | None] = {
            "to_server": None,
            "to_client": None,
        }
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchers: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        state = "closed" if self._closed else "listening" if self._started else "new"
        return (
            f"<FaultProxy {self._host}:{self._port} -> {self.target_host}:{self.target_port} "
            f"{state} connections={len(self._links)}>"
        )

    # -- address and state --------------------------------------------------------------

    @property
    def host(self) -> str:
        """The address clients connect to."""
        return self._host

    @property
    def port(self) -> int:
        """The port clients connect to (the bound one once started)."""
        return self._port

    @property
    def active_connections(self) -> int:
        """Connections currently proxied."""
        return len(self._links)

    def held_bytes(self, direction: Direction = "both") -> int:
        """Bytes read from one side and not yet delivered to the other."""
        ways = _directions(direction)
        return sum(link.pipes[way].size for link in self._links for way in ways)

    def stalled(self, direction: Direction = "both") -> bool:
        """True if every one of ``direction``'s pipes is stalled."""
        return all(not self._flowing[way].is_set() for way in _directions(direction))

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true, re-checked whenever the proxy's state changes.

        For instance ``await proxy.wait_until(lambda: proxy.active_connections == 1)``
        or ``lambda: proxy.held_bytes("to_client") >= 10``. Raises ``TimeoutError``
        (``ValueError`` for a ``timeout`` that is negative or not finite).
        """
        if not (math.isfinite(timeout) and timeout >= 0):
            raise ValueError(f"timeout must be a finite number of seconds >= 0: {timeout!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if self._closed:
                raise RuntimeError("the proxy is closed")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"the condition was not met within {timeout} s")
            watcher = loop.create_future()
            self._watchers.append(watcher)
            try:
                # Not asyncio.wait_for: on 3.10 and 3.11 it can swallow a cancel.
                async with _timeout(remaining):
                    await watcher
            except asyncio.TimeoutError:
                pass  # re-check once more, then raise
            finally:
                with contextlib.suppress(ValueError):
                    self._watchers.remove(watcher)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and listen; afterwards `port` is the bound port."""
        if self._started:
            raise RuntimeError("the proxy is already started")
        self._started = True
        sock = self._bind()
        self._host, self._port = sock.getsockname()[:2]
        try:
            self._server = await asyncio.start_server(self._on_client, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        """Stop listening, abort every proxied connection and end every task the proxy started."""
        if self._closed:
            return
        self._closed = True
        self._stop_listening()
        writers = [w for link in self._links for w in link.writers]
        for link in list(self._links):
            link.close()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for writer in writers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
        for server in self._old_servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._old_servers.clear()
        self._poke()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- faults ----------------------------------------------------------------------------

    def cut(self, *, reset: bool = True) -> int:
        """Abort every proxied connection on both sides; return how many were cut.

        ``reset=True`` sends a TCP RST to each side (a crashed peer, a router
        that forgot the connection); ``reset=False`` closes without flushing (a
        FIN). Held bytes are lost. New connections are still accepted.
        """
        links = list(self._links)
        for link in links:
            link.close(reset=reset)
        self.cuts += len(links)
        self._poke()
        return len(links)

    def refuse(self, on: bool = True, *, reset: bool = False) -> None:
        """Refuse new connections while ``on`` (a server that is down); open ones are kept.

        By default the listening socket is closed, so connecting fails with
        "connection refused", and reopened on the same port by ``refuse(False)``
        (which raises ``OSError`` if another socket took the port meanwhile).
        With ``reset=True`` it keeps listening and resets each new connection at
        once instead (a port that accepts, then drops).
        """
        self._reset_new = on and reset
        if on and not reset:
            if not self._listening_off:
                self._listening_off = True
                self._stop_listening()
        elif self._listening_off:
            self._listening_off = False
            if self._started and not self._closed:
                self._listen_again()

    def stall(self, direction: Direction = "both") -> None:
        """Stop forwarding ``direction`` without closing anything (a frozen, half-open link).

        Bytes that arrive meanwhile are held (at most ``max_held`` per pipe;
        beyond that the proxy stops reading and the sender's own buffers fill),
        and so is an end of stream or a reset from that side.
        """
        for way in _directions(direction):
            self._flowing[way].clear()

    def resume(self, direction: Direction = "both", *, flush: bool = True) -> None:
        """Forward ``direction`` again: the held bytes first, in order, or dropped if not ``flush``.

        Dropped bytes are counted in `bytes_dropped`; a held end of stream
        is still delivered.
        """
        for way in _directions(direction):
            if not flush:
                for link in self._links:
                    self.bytes_dropped += link.pipes[way].flush()
            self._flowing[way].set()
        self._poke()

    def delay(self, seconds: float, direction: Direction = "both") -> None:
        """Deliver each chunk ``seconds`` after it arrived (latency; 0 turns it off).

        Chunks keep their order and are not slowed down otherwise: this adds
        latency, not a bandwidth limit (see `throttle`).
        """
        if not seconds >= 0:
            raise ValueError("delay must be a non-negative number of seconds")
        for way in _directions(direction):
            self._delay[way] = float(seconds)

    def throttle(self, bytes_per_second: float | None, direction: Direction = "both") -> None:
        """Limit ``direction`` to ``bytes_per_second`` (``None`` or 0 turns it off)."""
        if bytes_per_second is not None and not (
            math.isfinite(bytes_per_second) and bytes_per_second >= 0
        ):
            raise ValueError("bytes_per_second must be positive (or None/0 for no limit)")
        rate = float(bytes_per_second) if bytes_per_second else None
        for way in _directions(direction):
            self._rate[way] = rate

    def fragment(
        self,
        size: int | None,
        *,
        randomize: bool = False,
        seed: int | None = 0,
        direction: Direction = "to_client",
    ) -> None:
        """Write the stream in pieces of at most ``size`` bytes (``None`` or 0 turns it off).

        With ``randomize``, each piece has a random size from 1 to ``size``,
        drawn from ``random.Random(seed)`` (reproducible for a given seed). Each
        piece is written on its own and a receiver on the same event loop reads
        it on its own: the way a frame split across TCP segments arrives.
        """
        if size and not (math.isfinite(size) and size >= 1):
            raise ValueError("size must be at least 1 (or None/0 for no fragmenting)")
        for way in _directions(direction):
            if not size:
                self._fragment[way] = None
            else:
                rng = random.Random(seed) if randomize else None
                self._fragment[way] = _Fragmenter(int(size), rng)

    def heal(self) -> None:
        """Clear every fault: resume (held bytes delivered), no delay/throttle/fragment/refusal."""
        self.refuse(False)
        self.resume()
        self.delay(0)
        self.throttle(None)
        self.fragment(None, direction="both")

    # -- internals --------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _poke(self) -> None:
        """Wake every `wait_until` to re-check its condition."""
        if self._watchers:
            watchers, self._watchers = self._watchers, []
            for watcher in watchers:
                if not watcher.done():
                    watcher.set_result(None)

    def _delivered(self, direction: _OneWay, count: int) -> None:
        if direction == "to_server":
            self.bytes_to_server += count
        else:
            self.bytes_to_client += count
        self._poke()

    def _forget(self, link: _Link) -> None:
        self._links.discard(link)
        self._poke()

    def _bind(self) -> socket.socket:
        """A listening socket on ``host:port``, made synchronously so ``refuse(False)`` can be."""
        infos = socket.getaddrinfo(
            self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            if os.name == "posix":  # rebind the same port while old connections linger
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(100)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            self._old_servers.append(server)
        sock, self._pending_sock = self._pending_sock, None
        if sock is not None:  # _serve() has not run yet: it never will
            sock.close()
            if self._pending_task is not None:
                self._pending_task.cancel()
        self._pending_task = None

    def _listen_again(self) -> None:
        # Listening starts here, synchronously: a client connecting right after
        # refuse(False) waits in the backlog instead of being refused.
        sock = self._bind()
        self._pending_sock = sock
        self._pending_task = self._spawn(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        # start_serving=False: creating the server does not suspend, so the
        # socket passes from _pending_sock to _server in one step.
        server = await asyncio.start_server(self._on_client, sock=sock, start_serving=False)
        if self._pending_sock is not sock:  # refuse(True) or close() came first
            server.close()
            self._old_servers.append(server)
            return
        self._pending_sock = None
        self._pending_task = None
        self._server = server
        await server.start_serving()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed or self._listening_off or self._reset_new:
            self.connections_refused += 1
            _reset(writer.transport)
            self._poke()
            return
        self.connections_accepted += 1
        self._poke()
        task = asyncio.current_task()
        if task is not None:  # so that close() can cancel a connect in progress
            self._tasks.add(task)
        try:
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(self.target_host, self.target_port),
                    self.connect_timeout,
                )
            except (OSError, asyncio.TimeoutError) as exc:
                logger.info(
                    "FaultProxy: cannot reach %s:%s: %s", self.target_host, self.target_port, exc
                )
                self.upstream_failures += 1
                _reset(writer.transport)
                self._poke()
                return
            except asyncio.CancelledError:
                # close() cancelled the connect. End normally: asyncio's server owns this
                # task, and on CPython 3.11 and 3.12 a cancelled one reaches the loop's
                # exception handler as a traceback.
                writer.transport.abort()
                return
            except BaseException:
                writer.transport.abort()
                raise
            if self._closed:
                writer.transport.abort()
                upstream[1].transport.abort()
                return
            link = _Link(self, (reader, writer), upstream)
            self._links.add(link)
            link.start()
            self._poke()
        finally:
            if task is not None:
                self._tasks.discard(task)
