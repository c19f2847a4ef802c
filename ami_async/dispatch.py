"""Routing of incoming messages; knows nothing of sockets.

* Responses resolve the pending action with the same ActionID.
* A response with ``EventList: start`` (or, for servers that do not mark lists,
  one to an action in :data:`LIST_COMPLETIONS`) opens a list: events carrying that
  ActionID become its items until one carries ``EventList: Complete`` (or
  ``cancelled``) or has the action's completion name. List items belong to the
  action and are not broadcast.
* An event that carries a pending ActionID but is not a list item (the
  ``OriginateResponse`` of an async Originate) reaches the waiting action *and*
  every matching subscriber.
* Every other event reaches the subscribers and handlers in wire order.
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Final, Literal

from .errors import ActionError, AMIConnectionError, SubscriptionOverflowError
from .message import Event, Message, Response

__all__ = [
    "LIST_COMPLETIONS",
    "Dispatcher",
    "EventList",
    "Handler",
    "OverflowPolicy",
    "Subscription",
]

logger = logging.getLogger("ami_async")

OverflowPolicy = Literal["error", "drop_oldest"]
Handler = Callable[[Event], "Awaitable[None] | None"]

#: Completion event of list actions, for servers that do not send ``EventList:``
#: (Asterisk 11 and older). Keys are lower-case action names.
LIST_COMPLETIONS: Final[dict[str, str]] = {
    "agents": "AgentsComplete",
    "bridgelist": "BridgeListComplete",
    "confbridgelist": "ConfbridgeListComplete",
    "confbridgelistrooms": "ConfbridgeListRoomsComplete",
    "coreshowchannels": "CoreShowChannelsComplete",
    "dbget": "DBGetComplete",
    "dbgettree": "DBGetTreeComplete",
    "devicestatelist": "DeviceStateListComplete",
    "extensionstatelist": "ExtensionStateListComplete",
    "iaxpeerlist": "PeerlistComplete",
    "iaxpeers": "PeerlistComplete",
    "meetmelist": "MeetmeListComplete",
    "parkedcalls": "ParkedCallsComplete",
    "parkinglots": "ParkinglotsComplete",
    "pjsipshowendpoints": "EndpointListComplete",
    "queuestatus": "QueueStatusComplete",
    "queuesummary": "QueueSummaryComplete",
    "showdialplan": "ShowDialPlanComplete",
    "sippeers": "PeerlistComplete",
    "status": "StatusComplete",
    "voicemailuserslist": "VoicemailUserEntryComplete",
}

_LIST_END: Final = frozenset({"complete", "cancelled"})


class EventList:
    """The answer to a list action: ``response``, ``items`` and the ``complete`` event."""

    __slots__ = ("complete", "items", "response")

    def __init__(self, response: Response, items: list[Event], complete: Event | None) -> None:
        self.response = response
        self.items = items
        self.complete = complete

    def __iter__(self) -> Iterator[Event]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Event:
        return self.items[index]

    def __repr__(self) -> str:
        done = self.complete.name if self.complete is not None else None
        return f"<EventList items={len(self.items)} complete={done!r}>"


class Pending:
    """One action waiting for its answer (and maybe list items or a follow-up event)."""

    __slots__ = (
        "action",
        "action_id",
        "check",
        "complete",
        "complete_name",
        "follow",
        "follow_event",
        "future",
        "is_list",
        "items",
        "list_open",
        "response",
        "stream_waiter",
        "streaming",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        action: str,
        action_id: str,
        *,
        check: bool = True,
        is_list: bool = False,
        complete_name: str | None = None,
        follow: str | None = None,
        streaming: bool = False,
    ) -> None:
        self.action = action
        self.action_id = action_id
        self.check = check
        self.is_list = is_list
        self.complete_name = complete_name.lower() if complete_name else None
        self.follow = follow.lower() if follow else None
        self.streaming = streaming
        # Resolved with the Response (single actions), or once the whole list /
        # the follow-up event is in.
        self.future: asyncio.Future[Response] = loop.create_future()
        self.response: Response | None = None
        self.items: collections.deque[Event] = collections.deque() if is_list else _NO_ITEMS
        self.complete: Event | None = None
        self.follow_event: Event | None = None
        self.list_open = False
        self.stream_waiter: asyncio.Future[None] | None = None

    @property
    def wants_events(self) -> bool:
        return self.is_list or self.follow is not None

    def _wake(self) -> None:
        waiter = self.stream_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)
            # Retrieve it so an action nobody awaits any more logs nothing.
            self.future.exception()
        self._wake()

    def finish(self) -> None:
        if not self.future.done():
            assert self.response is not None
            self.future.set_result(self.response)
        self._wake()


_NO_ITEMS: Final[collections.deque[Event]] = collections.deque(maxlen=0)


class _Gap:
    """Marks in a subscription's queue where events were lost to overflow."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 1


class _Matcher:
    """Event names, fnmatch patterns and an optional predicate, compiled once."""

    __slots__ = ("exact", "patterns", "predicate", "seq", "wildcard")

    def __init__(
        self, names: tuple[str, ...], predicate: Callable[[Event], bool] | None, seq: int
    ) -> None:
        exact: set[str] = set()
        patterns: list[str] = []
        wildcard = not names
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"event names must be non-empty strings, not {name!r}")
            low = name.lower()
            if low == "*":
                wildcard = True
            elif any(c in low for c in "*?["):
                patterns.append(low)
            else:
                exact.add(low)
        self.exact = frozenset(exact)
        self.patterns = tuple(patterns)
        self.wildcard = wildcard
        self.predicate = predicate
        self.seq = seq

    def matches_name(self, low: str) -> bool:
        if self.wildcard or low in self.exact:
            return True
        return any(fnmatch.fnmatchcase(low, p) for p in self.patterns)


class Subscription:
    """``client.events(...)``: a bounded, ordered queue of matching events.

    Use it with ``async for``; ``async with`` (or :meth:`close`, or leaving an
    ``async for`` with ``break``) unregisters it. With ``overflow="error"`` a
    full queue records a gap and the reader gets :class:`SubscriptionOverflowError`
    exactly where the events were lost; the subscription stays registered, so
    ``get()`` or a new ``async for`` reads on from just after the gap. With
    ``"drop_oldest"`` the oldest events make room and :attr:`dropped` counts them.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        matcher: _Matcher,
        maxsize: int,
        overflow: OverflowPolicy,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if overflow not in ("error", "drop_oldest"):
            raise ValueError(f"overflow must be 'error' or 'drop_oldest', not {overflow!r}")
        self._dispatcher = dispatcher
        self._matcher = matcher
        self.maxsize = maxsize
        self.overflow: OverflowPolicy = overflow
        self._queue: collections.deque[Event | _Gap] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        #: Events lost to overflow since the subscription was created.
        self.dropped = 0

    # -- producer side (the dispatcher) -----------------------------------------

    def _put(self, event: Event) -> None:
        queue = self._queue
        if len(queue) >= self.maxsize:
            self.dropped += 1
            if self.overflow == "drop_oldest":
                queue.popleft()
            else:
                last = queue[-1]
                if isinstance(last, _Gap):
                    last.count += 1
                else:
                    queue.append(_Gap())
                return
        queue.append(event)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _end(self, error: BaseException | None) -> None:
        """The client closed (error None) or gave up (error set): wake the reader."""
        self._closed = True
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- consumer side -------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def qsize(self) -> int:
        """Events waiting to be read."""
        return sum(1 for item in self._queue if not isinstance(item, _Gap))

    def get_nowait(self) -> Event | None:
        """The next queued event, or ``None`` when nothing is queued."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        if isinstance(item, _Gap):
            raise SubscriptionOverflowError(
                f"subscription overflowed (maxsize={self.maxsize}): "
                f"{item.count} event(s) lost here",
                item.count,
            )
        return item

    async def get(self, timeout: float | None = None) -> Event:
        """Wait for the next event; ``TimeoutError`` after ``timeout`` seconds.

        Raises :class:`SubscriptionOverflowError` where events were lost, the
        client's failure if it gave up reconnecting, and ``AMIConnectionError``
        once the subscription is closed and empty.
        """
        event = await self._next(timeout)
        if event is None:
            raise AMIConnectionError("the subscription is closed")
        return event

    async def _next(self, timeout: float | None) -> Event | None:
        """The next event, or ``None`` once closed (cleanly) and drained."""
        while True:
            if self._queue:
                return self.get_nowait()
            if self._closed:
                if self._error is not None:
                    raise self._error
                return None
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            try:
                if timeout is None:
                    await waiter
                else:
                    await asyncio.wait_for(waiter, timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"no event within {timeout} s") from None
            finally:
                self._waiter = None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        overflowed = False
        queue = self._queue
        try:
            while True:
                while queue and type(queue[0]) is not _Gap:
                    yield queue.popleft()  # type: ignore[misc]
                try:
                    event = await self._next(None)
                except SubscriptionOverflowError:
                    # Ends this loop but keeps the subscription: ``async for`` again
                    # (or ``get()``) reads on from just after the gap.
                    overflowed = True
                    raise
                if event is None:
                    return
                yield event
        finally:
            if not overflowed:
                # ``break`` out of ``async for`` (the generator is closed): unregister.
                self.close()

    def close(self) -> None:
        """Unregister; queued events are discarded."""
        if not self._closed:
            self._dispatcher._remove_subscriber(self)
            self._end(None)
        self._queue.clear()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class HandlerRunner:
    """Runs one handler: sync ones inline, async ones in order on one bounded worker."""

    def __init__(
        self,
        handler: Handler,
        maxsize: int,
        overflow: OverflowPolicy,
        spawn: Callable[[Awaitable[None]], asyncio.Task[None]],
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if overflow not in ("error", "drop_oldest"):
            raise ValueError(f"overflow must be 'error' or 'drop_oldest', not {overflow!r}")
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            getattr(handler, "__call__", None)  # noqa: B004 - an object with async __call__
        )
        self.maxsize = maxsize
        self.overflow: OverflowPolicy = overflow
        self.dropped = 0
        # Events to handle, or (once) the awaitable a handler classed as sync returned.
        self._queue: collections.deque[Event | Awaitable[Any]] = collections.deque()
        self._spawn = spawn
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._stopped = False

    def _name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))

    def _put(self, event: Event) -> None:
        if not self.is_async:
            try:
                result = self.handler(event)
            except Exception:
                logger.exception(
                    "event handler %s raised on %s",
                    self._name(),
                    event.name,
                    extra={"ami_event": event.name},
                )
                return
            if result is None or not inspect.isawaitable(result):
                return
            # A sync-looking callable that returns awaitables (a decorated
            # coroutine function, ``lambda ev: queue.put(ev)``): from now on it
            # runs on a worker like any async handler, this result first.
            self.is_async = True
            self._queue.append(result)
            self._start()
            return
        queue = self._queue
        if len(queue) >= self.maxsize:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error(
                    "event handler %s is too slow: its queue (maxsize=%d) is full; "
                    "%d event(s) dropped so far (%s)",
                    self._name(),
                    self.maxsize,
                    self.dropped,
                    "oldest first" if self.overflow == "drop_oldest" else "newest refused",
                    extra={"ami_event": event.name},
                )
            if self.overflow == "drop_oldest":
                queue.popleft()
            else:
                return
        queue.append(event)
        self._start()

    def _start(self) -> None:
        if self._task is None:
            self._task = self._spawn(self._run())
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        while not self._stopped:
            while queue and not self._stopped:
                item = queue.popleft()
                name = item.name if isinstance(item, Event) else "an event"
                try:
                    result = self.handler(item) if isinstance(item, Event) else item
                    if result is not None:
                        await result
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception(
                        "event handler %s raised on %s",
                        self._name(),
                        name,
                        extra={"ami_event": name},
                    )
            if self._stopped:
                return
            self._wake = loop.create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    def stop(self, spare: asyncio.Task[Any] | None = None) -> None:
        """Stop the worker (unless it is ``spare``: it then ends once its handler returns)."""
        self._stopped = True
        if self._task is not None and self._task is not spare:
            self._task.cancel()
        self._task = None
        self._queue.clear()
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)


class Dispatcher:
    """Routes parsed messages to pending actions, subscriptions and handlers."""

    def __init__(self, spawn: Callable[[Awaitable[None]], asyncio.Task[None]]) -> None:
        self._spawn = spawn
        self.pending: dict[str, Pending] = {}
        self._event_waiters = 0
        self._targets: list[tuple[_Matcher, Subscription | HandlerRunner]] = []
        self._route_cache: dict[str, list[tuple[_Matcher, Subscription | HandlerRunner]]] = {}
        self._wanted: frozenset[bytes] | None = frozenset()
        self._seq = itertools.count()
        self._abandoned: dict[str, None] = {}
        self.unmatched_responses = 0

    # -- pending actions -------------------------------------------------------------

    def add(self, pending: Pending) -> None:
        if pending.action_id in self.pending:
            raise ValueError(f"ActionID {pending.action_id!r} is already in flight")
        self.pending[pending.action_id] = pending
        if pending.wants_events:
            self._event_waiters += 1

    def discard(self, pending: Pending) -> None:
        """Forget ``pending`` (answered, timed out or cancelled)."""
        if self.pending.get(pending.action_id) is pending:
            del self.pending[pending.action_id]
            if pending.wants_events:
                self._event_waiters -= 1
            if (
                pending.is_list
                and pending.complete is None
                and (pending.list_open or pending.response is None)
            ):
                # Abandoned before its end (timeout, cancel, break): the rest of the
                # list still belongs to it and must not reach the subscribers.
                self._abandon(pending.action_id)

    def _abandon(self, action_id: str) -> None:
        """Drop, until their list ends, the events carrying ``action_id``."""
        abandoned = self._abandoned
        abandoned[action_id] = None
        if len(abandoned) > 1024:
            del abandoned[next(iter(abandoned))]

    def fail_all(self, exc_factory: Callable[[Pending], BaseException]) -> None:
        """Fail every pending action (the link is gone); they are never re-sent."""
        pending = list(self.pending.values())
        self.pending.clear()
        self._event_waiters = 0
        for p in pending:
            p.fail(exc_factory(p))

    # -- subscriptions and handlers ------------------------------------------------

    def subscribe(
        self,
        names: tuple[str, ...],
        predicate: Callable[[Event], bool] | None,
        maxsize: int,
        overflow: OverflowPolicy,
    ) -> Subscription:
        matcher = _Matcher(names, predicate, next(self._seq))
        sub = Subscription(self, matcher, maxsize, overflow)
        self._targets.append((matcher, sub))
        self._targets_changed()
        return sub

    def add_handler(
        self,
        names: tuple[str, ...],
        handler: Handler,
        maxsize: int,
        overflow: OverflowPolicy,
    ) -> HandlerRunner:
        matcher = _Matcher(names, None, next(self._seq))
        runner = HandlerRunner(handler, maxsize, overflow, self._spawn)
        self._targets.append((matcher, runner))
        self._targets_changed()
        return runner

    def remove_handler(self, handler: Handler) -> bool:
        """Remove every registration of ``handler``; True if there was one."""
        keep = []
        found = False
        for matcher, target in self._targets:
            if isinstance(target, HandlerRunner) and target.handler == handler:
                target.stop()
                found = True
            else:
                keep.append((matcher, target))
        self._targets = keep
        self._targets_changed()
        return found

    def handler_runners(self) -> list[HandlerRunner]:
        return [t for _, t in self._targets if isinstance(t, HandlerRunner)]

    def subscriptions(self) -> list[Subscription]:
        return [t for _, t in self._targets if isinstance(t, Subscription)]

    def _remove_subscriber(self, sub: Subscription) -> None:
        self._targets = [(m, t) for m, t in self._targets if t is not sub]
        self._targets_changed()

    def end_subscriptions(self, error: BaseException | None) -> None:
        for sub in self.subscriptions():
            sub._end(error)
        self._targets = [(m, t) for m, t in self._targets if not isinstance(t, Subscription)]
        self._targets_changed()

    def stop_handlers(self, spare: asyncio.Task[Any] | None = None) -> None:
        for runner in self.handler_runners():
            runner.stop(spare)

    def interest(self) -> frozenset[bytes] | None:
        """The lower-cased event names anyone can want now, or ``None`` for any name.

        ``None`` while an action waits for events (list items and follow-up
        events are matched by ActionID), or a subscriber uses a pattern, ``*``
        or a predicate, or a sync handler is registered (user code that runs
        during dispatch could subscribe to names the parser already skipped).
        The parser skips other events unparsed (:attr:`Parser.only_events`).
        """
        if self._event_waiters or self._abandoned:
            return None
        return self._wanted

    def _targets_changed(self) -> None:
        self._route_cache.clear()
        names: set[bytes] = set()
        for matcher, target in self._targets:
            if (
                matcher.wildcard
                or matcher.patterns
                or not all(n.isascii() for n in matcher.exact)  # bytes.lower() folds ASCII only
                # User code that runs during dispatch (a sync handler, a predicate)
                # may subscribe to more names while the rest of the read, filtered
                # before it ran, waits: never skip then.
                or matcher.predicate is not None
                or (isinstance(target, HandlerRunner) and not target.is_async)
            ):
                self._wanted = None
                return
            names.update(name.encode("utf-8", "surrogateescape") for name in matcher.exact)
        self._wanted = frozenset(names)

    def _routes(self, name: str) -> list[tuple[_Matcher, Subscription | HandlerRunner]]:
        """The targets of events named ``name`` (cached by the name as received)."""
        low = name.lower()
        if len(self._route_cache) > 4096:
            self._route_cache.clear()
        return [(m, t) for m, t in self._targets if m.matches_name(low)]

    # -- incoming messages -----------------------------------------------------------

    def feed(self, messages: list[Message]) -> None:
        """Route every message of one read, in wire order."""
        for msg in messages:
            if isinstance(msg, Event):
                if (self._event_waiters or self._abandoned) and self._event_for_action(msg):
                    continue
                self.broadcast(msg)
            elif isinstance(msg, Response):
                self._response(msg)
            else:
                logger.warning("dropping a message with neither Event nor Response: %r", msg)

    def broadcast(self, event: Event) -> None:
        name = event.name
        routes = self._route_cache.get(name)
        if routes is None:
            routes = self._route_cache[name] = self._routes(name)
        for matcher, target in routes:
            predicate = matcher.predicate
            if predicate is not None:
                try:
                    if not predicate(event):
                        continue
                except Exception:
                    logger.exception("event predicate raised on %s", event.name)
                    continue
            target._put(event)

    def _response(self, msg: Response) -> None:
        action_id = msg.action_id
        pending = self.pending.get(action_id) if action_id is not None else None
        if pending is None:
            self.unmatched_responses += 1
            logger.debug(
                "response for no pending action (ActionID %r) dropped",
                action_id,
                extra={"ami_action_id": action_id},
            )
            return
        if pending.response is not None:
            logger.warning(
                "second response for ActionID %r (%s) ignored", action_id, pending.action
            )
            return
        pending.response = msg
        failed = not msg.success
        if failed and (pending.check or pending.is_list):
            self.discard(pending)
            pending.fail(ActionError(msg, pending.action))
            return
        if pending.is_list:
            marker = msg.peek("EventList")
            if (marker is not None and marker.lower() == "start") or (
                marker is None and pending.complete_name is not None
            ):
                pending.list_open = True
                if pending.streaming:
                    pending._wake()
                return
            # Not a list after all: the answer is all there is.
            self.discard(pending)
            pending.finish()
            return
        text = msg._text
        if not failed and (text is None or "EventList" in text):  # (a Ping's answer: no)
            marker = msg.peek("EventList")
            if marker is not None and marker.lower() == "start":
                # A list answered to send_action(): its items are not the
                # subscribers' (they belong to the action); use collect() for them.
                self._abandon(pending.action_id)
        if pending.follow is not None and not failed:
            if pending.follow_event is not None:
                self.discard(pending)
                pending.finish()
            return  # keep waiting for the follow-up event
        self.discard(pending)
        pending.finish()

    def _event_for_action(self, event: Event) -> bool:
        """Give ``event`` to the action it belongs to; True if it must not be broadcast."""
        action_id = event.action_id
        if action_id is None:
            return False
        pending = self.pending.get(action_id)
        if pending is None:
            if action_id in self._abandoned:
                marker = event.peek("EventList")
                if (marker is not None and marker.lower() in _LIST_END) or event.name.endswith(
                    "Complete"
                ):
                    del self._abandoned[action_id]
                return True  # a late item of an abandoned list: dropped
            return False
        if pending.is_list:
            if not pending.list_open:
                return False
            if (
                pending.complete_name is not None and event.name.lower() == pending.complete_name
            ) or ((marker := event.peek("EventList")) is not None and marker.lower() in _LIST_END):
                pending.complete = event
                self.discard(pending)
                pending.finish()
            else:
                pending.items.append(event)
                if pending.streaming:
                    pending._wake()
            return True
        if pending.follow is not None and event.name.lower() == pending.follow:
            pending.follow_event = event
            if pending.response is not None:
                self.discard(pending)
                pending.finish()
        return False
