"""Several Asterisk servers as one: the `Fleet`.

A `Fleet` holds one `Client` per server (named by its key), connects them in
parallel, keeps retrying the ones it cannot reach without ever holding the
others back, and merges their events into one subscription whose events say
where they came from (`Event.server`). It uses the clients' public API only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from ._login import is_credential_refusal
from ._options import backoff
from .client import Client
from .errors import AMIConnectionError, AMIError, AuthenticationError, SubscriptionOverflowError
from .message import Event
from .subscription import OverflowPolicy, Subscription, _Gap, _Inbox

__all__ = ["Fleet", "ServerState", "ServerStatus"]

logger = logging.getLogger("ami_async")

ServerState = Literal["up", "connecting", "failed", "closed"]


@dataclass(frozen=True)
class ServerStatus:
    """One server of a `Fleet`, as `Fleet.status` sees it now."""

    name: str
    #: ``"up"`` (logged in), ``"connecting"`` (first attempts, or reconnecting
    #: after a loss), ``"failed"`` (gave up: login refused, or attempts
    #: exhausted), ``"closed"`` (the fleet was closed).
    state: ServerState
    #: The last connection failure or loss, as text (``None`` when none yet).
    error: str | None
    #: Reconnections after a lost link since the fleet connected.
    reconnects: int

    @property
    def up(self) -> bool:
        """True while logged in."""
        return self.state == "up"


class Fleet(Mapping[str, Client]):
    """One `Client` per Asterisk server, connected in parallel, and their events merged.

    ``Fleet({"pbx1": {"host": "10.0.0.1", "username": "admin", "secret": "..."},
    "pbx2": {...}})``: each value holds `Client` keyword arguments (``host`` and
    ``port`` included); keyword arguments given to `Fleet` itself are defaults
    for every server. A value may also be a `Client`. Each client's `name`
    is its key, so every event it receives has ``event.server == key``.
    ``fleet["pbx1"]`` is that client; the fleet is a read-only mapping of them.

    `connect` (and ``async with``) starts every server at once and returns
    when each has connected or failed its first attempt; the ones that failed
    keep being retried in the background with their own reconnect settings
    (``reconnect_delay``, ``reconnect_max_delay``, ``reconnect_max_attempts``,
    ``max_auth_failures``), and once connected each client reconnects by
    itself. A server that is down never blocks the others; `status` says
    which are up.
    """

    def __init__(self, servers: Mapping[str, Mapping[str, Any] | Client], **defaults: Any) -> None:
        if not servers:
            raise ValueError("a Fleet needs at least one server")
        clients: dict[str, Client] = {}
        for name, spec in servers.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"server names must be non-empty strings, not {name!r}")
            if isinstance(spec, Client):
                spec.name = name
                clients[name] = spec
                continue
            if "name" in spec:
                raise ValueError(f"server {name!r}: its name is its key; leave out name=")
            options = {**defaults, **spec}
            host = options.pop("host", "127.0.0.1")
            clients[name] = Client(host, name=name, **options)
        self._clients = clients
        self._errors: dict[str, str | None] = dict.fromkeys(clients)
        self._gave_up: set[str] = set()
        self._starters: dict[str, asyncio.Task[None]] = {}
        self._first: dict[str, asyncio.Future[None]] = {}
        self._merged: list[_Merge] = []
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        for name, client in clients.items():
            client.add_disconnect_hook(self._noter(name))

    def _noter(self, name: str) -> Callable[[Client, BaseException | None], None]:
        def note(client: Client, cause: BaseException | None) -> None:
            if cause is not None:
                self._errors[name] = str(cause)

        return note

    # -- Mapping ---------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Client:
        return self._clients[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    def __repr__(self) -> str:
        shown = ", ".join(f"{s.name}={s.state}" for s in self.status().values())
        return f"<Fleet {shown}>"

    # -- state -----------------------------------------------------------------------------

    def status(self) -> dict[str, ServerStatus]:
        """Each server's `ServerStatus`, in the order the servers were given."""
        return {name: self._status(name, client) for name, client in self._clients.items()}

    def _status(self, name: str, client: Client) -> ServerStatus:
        state: ServerState
        if client.connected:
            state = "up"
        elif self._closed:
            state = "closed"
        elif name in self._gave_up or client.closed:
            state = "failed"
        else:
            state = "connecting"
        error = self._errors[name]
        if state == "failed" and error is None:
            error = "gave up reconnecting"
        return ServerStatus(name, state, error, client.reconnects)

    @property
    def up(self) -> list[str]:
        """The names of the servers logged in now."""
        return [name for name, client in self._clients.items() if client.connected]

    # -- connecting ------------------------------------------------------------------------

    async def connect(self) -> Fleet:
        """Start every server; return once each has connected or failed a first attempt.

        Never raises for a server that cannot be reached (see `status`); each
        attempt is bounded by that client's ``timeout``. Servers that failed
        are retried in the background until they connect, give up, or the
        fleet is closed.
        """
        if self._closed:
            raise AMIConnectionError("the fleet is closed")
        loop = asyncio.get_running_loop()
        for name, client in self._clients.items():
            if name not in self._starters:
                self._first[name] = loop.create_future()
                self._starters[name] = asyncio.ensure_future(self._bring_up(name, client))
        try:
            await asyncio.wait(list(self._first.values()))
        except BaseException:
            self._start_closing()  # cancelled while connecting: nothing is left running
            raise
        return self

    async def _bring_up(self, name: str, client: Client) -> None:
        """Connect ``client``, retrying with its own backoff until it connects or gives up."""
        first = self._first[name]
        attempt = 0
        auth_failures = 0
        try:
            while not self._closed:
                try:
                    await client.connect()
                except AuthenticationError as exc:
                    self._errors[name] = str(exc)
                    if is_credential_refusal(exc):
                        auth_failures += 1
                        if auth_failures >= client.max_auth_failures:
                            self._give_up(name, client, exc)
                            return
                except AMIError as exc:
                    self._errors[name] = str(exc)
                else:
                    return
                attempt += 1
                if not first.done():
                    logger.warning(
                        "fleet: %s is not reachable (%s); retrying in the background",
                        name,
                        self._errors[name],
                        extra={"ami_host": name},
                    )
                    first.set_result(None)
                limit = client.reconnect_max_attempts
                if not client.reconnect or (limit is not None and attempt >= limit):
                    self._give_up(name, client, None)
                    return
                await asyncio.sleep(
                    backoff(attempt - 1, client.reconnect_delay, client.reconnect_max_delay)
                )
        finally:
            if not first.done():
                first.set_result(None)

    def _give_up(self, name: str, client: Client, exc: BaseException | None) -> None:
        self._gave_up.add(name)
        logger.error(
            "fleet: giving up on %s: %s", name, exc or self._errors[name], extra={"ami_host": name}
        )
        for merge in self._merged:
            merge.end_part(name)

    # -- events ----------------------------------------------------------------------------

    def events(
        self,
        *names: str,
        predicate: Callable[[Event], bool] | None = None,
        maxsize: int | None = None,
        overflow: OverflowPolicy = "error",
    ) -> Subscription:
        """One subscription to every server's events, with `Client.events`'s arguments.

        Registered on every client at once (nothing sent after this call is
        missed), it keeps each server's wire order (events of different
        servers interleave as they arrive) and the overflow policy of one
        `Subscription` of ``maxsize`` events (default: the largest
        ``event_queue_size``): a reader that falls behind gets
        `SubscriptionOverflowError` where events were lost (``"error"``), or
        the oldest are dropped and counted (``"drop_oldest"``). It survives
        reconnects and ends when the fleet is closed.
        """
        if self._closed:
            raise AMIConnectionError("the fleet is closed")
        size = maxsize
        if size is None:
            size = max(c.event_queue_size for c in self._clients.values())
        merge = _Merge(self)
        label = ",".join(names) or "*"
        sub = Subscription(merge, size, overflow, f"{label} (fleet)")  # type: ignore[arg-type]
        merge.start(sub, names, predicate)
        self._merged.append(merge)
        return sub

    # -- closing ---------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every client at once; merged subscriptions end. Safe to call more than once."""
        self._start_closing()
        assert self._closing is not None
        await asyncio.shield(self._closing)

    def _start_closing(self) -> None:
        self._closed = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._teardown())

    async def _teardown(self) -> None:
        starters = list(self._starters.values())
        for task in starters:
            task.cancel()
        if starters:
            await asyncio.wait(starters)
        for merge in list(self._merged):
            merge.stop()
        await asyncio.gather(*(c.close() for c in self._clients.values()), return_exceptions=True)
        for merge in list(self._merged):
            merge.finish()

    async def __aenter__(self) -> Fleet:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Merge:
    """The fleet's side of a merged `Subscription`: one part per client, pumped into it.

    A part is that client's own subscription; a pump task moves what it queues
    into the merged queue as soon as the loop runs it, in order, and turns
    the part's losses into the merged subscription's (a gap, or a count).
    """

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet
        self._inbox: _Inbox | None = None
        self._parts: dict[str, Subscription] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}
        self._failure: BaseException | None = None

    def start(
        self,
        sub: Subscription,
        names: tuple[str, ...],
        predicate: Callable[[Event], bool] | None,
    ) -> None:
        self._inbox = inbox = sub._inbox
        for name, client in self._fleet.items():
            if client.closed:
                continue
            part = client.events(
                *names, predicate=predicate, maxsize=inbox.maxsize, overflow=inbox.overflow
            )
            self._parts[name] = part
            self._pumps[name] = asyncio.ensure_future(self._pump(name, part, inbox))
        if not self._parts:
            inbox._end(AMIConnectionError("no server of the fleet is open"))

    async def _pump(self, name: str, part: Subscription, inbox: _Inbox) -> None:
        counted = 0
        try:
            while not inbox.closed:
                try:
                    event = await part.get()
                    inbox._put(event)
                    while (more := part.get_nowait()) is not None:  # the rest of the read
                        inbox._put(more)
                except SubscriptionOverflowError as exc:
                    _lose(inbox, exc.dropped)
                if part.dropped > counted and inbox.overflow == "drop_oldest":
                    inbox.dropped += part.dropped - counted
                counted = part.dropped
        except AMIError as exc:  # the part ended: its client closed or gave up
            if not self._fleet._closed:
                self._failure = exc
        finally:
            part.close()
            self._pumps.pop(name, None)
            if not self._pumps and not inbox.closed and not self._fleet._closed:
                inbox._end(self._failure or AMIConnectionError("every server of the fleet ended"))

    def end_part(self, name: str) -> None:
        """A server gave up for good: its part ends (the others go on)."""
        part = self._parts.pop(name, None)
        if part is not None:
            part.close()

    def stop(self) -> None:
        """Stop pumping (the fleet is closing, or the subscription was closed)."""
        for part in self._parts.values():
            part.close()
        for task in list(self._pumps.values()):
            task.cancel()

    def finish(self) -> None:
        """The fleet closed: the merged subscription ends once its queue is read."""
        if self._inbox is not None and not self._inbox.closed:
            self._inbox._end(None)
        with contextlib.suppress(ValueError):
            self._fleet._merged.remove(self)

    # What `Subscription` calls on the object it was registered with:

    def _remove_inbox(self, inbox: _Inbox) -> None:
        self.stop()
        with contextlib.suppress(ValueError):
            self._fleet._merged.remove(self)

    @property
    def _sweep_needed(self) -> bool:
        return False

    @_sweep_needed.setter
    def _sweep_needed(self, value: bool) -> None:
        # The subscription was garbage collected unread: stop feeding it.
        if value:
            self.stop()


def _lose(inbox: _Inbox, count: int) -> None:
    """Record ``count`` events lost before they reached the merged queue."""
    inbox.dropped += count
    if inbox.overflow != "error" or count <= 0:
        return
    queue = inbox.queue
    if queue and isinstance(queue[-1], _Gap):
        queue[-1].count += count
        return
    gap = _Gap()
    gap.count = count
    queue.append(gap)
    if inbox.waiters:
        inbox.wake_one()
