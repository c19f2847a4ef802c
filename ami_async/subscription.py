"""What receives events: a `Subscription` (pulled by the application) or a
`HandlerRunner` (pushes them into a callback). Both are fed by the dispatcher.

A subscription is split in two. The dispatcher holds only its `_Inbox` (the
queue, the readers waiting on it, the end state); the application holds the
`Subscription`. So a subscription nobody can read any more (the last reference
dropped, e.g. after `break` out of `async for ev in client.events(...)`)
unregisters itself when it is garbage collected instead of filling its queue
forever.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import sys
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .errors import AMIConnectionError, SubscriptionOverflowError
from .message import Event

if TYPE_CHECKING:
    from .dispatch import Dispatcher

__all__ = ["Handler", "HandlerRunner", "OverflowPolicy", "Subscription"]

logger = logging.getLogger("ami_async")

OverflowPolicy = Literal["error", "drop_oldest"]
Handler = Callable[[Event], "Awaitable[None] | None"]


def check_queue_options(maxsize: object, overflow: object) -> None:
    """Refuse a queue bound or an overflow policy that cannot work (`ValueError`)."""
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise ValueError(
            f"maxsize must be a whole number of events, at least 1 (not {maxsize!r}); "
            "leave it out for the client's event_queue_size"
        )
    if overflow not in ("error", "drop_oldest"):
        raise ValueError(f"overflow must be 'error' or 'drop_oldest', not {overflow!r}")


def check_timeout(timeout: object) -> None:
    """Refuse a wait's `timeout` unless it is a finite number of seconds, zero or more.

    A NaN deadline breaks asyncio's timer heap (a busy loop, or on 3.13 a
    `ValueError` out of the event loop itself); "forever" is `None`.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 <= timeout < sys.float_info.max  # 10**400 would overflow the timer
    ):
        raise ValueError(
            f"timeout must be zero or a positive, finite number of seconds, not {timeout!r} "
            "(None waits as long as it takes)"
        )


def renewed(exc: BaseException) -> BaseException:
    """A fresh copy of a stored failure, to raise ``from`` it.

    Raising one stored exception object again and again grows its traceback at
    every raise (and keeps every frame it passed through alive). The copy has
    the same type, arguments and attributes, and no traceback yet.
    """
    cls = type(exc)
    try:
        fresh = cls.__new__(cls, *exc.args)
        fresh.args = exc.args
        fresh.__dict__.update(exc.__dict__)
    except Exception:  # an exotic exception type: a plain one with the same text
        return AMIConnectionError(str(exc))
    return fresh


class _Gap:
    """Marks in a subscription's queue where events were lost to overflow."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 1


class _Inbox:
    """The dispatcher's side of a subscription: its queue, its waiting readers, its end."""

    __slots__ = ("closed", "dropped", "error", "maxsize", "overflow", "owner", "queue", "waiters")

    def __init__(self, maxsize: int, overflow: OverflowPolicy, owner: Subscription) -> None:
        self.maxsize = maxsize
        self.overflow: OverflowPolicy = overflow
        self.queue: collections.deque[Event | _Gap] = collections.deque()
        # Readers waiting for an event, first come first served. Each put wakes
        # one (it is removed then); close wakes them all.
        self.waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self.closed = False
        self.error: BaseException | None = None
        self.dropped = 0
        self.owner = weakref.ref(owner)

    def _put(self, event: Event) -> None:
        if self.closed:
            # Closed during the dispatch of this very event (by a handler that ran
            # before it): it gets nothing more.
            return
        queue = self.queue
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
        if self.waiters:
            self.wake_one()

    def wake_one(self) -> None:
        """Hand the first queued item to the first reader still waiting."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return

    def _end(self, error: BaseException | None) -> None:
        """Closed (error None) or the client gave up (error set): wake every reader."""
        self.closed = True
        self.error = error
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)


def _time_up(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _woken(waiter: asyncio.Future[bool]) -> bool:
    """Whether a put or the end resolved `waiter` (and took it out of the line)."""
    return waiter.done() and not waiter.cancelled() and waiter.result()


class Subscription:
    """`client.events(...)`: a bounded, ordered queue of matching events, and its async iterator.

    Read it with `async for ev in sub`, `await anext(sub)`, `await sub.get(timeout=)`
    or `sub.get_nowait()`, from one task or several (each event goes to exactly
    one reader; every reader wakes when it is closed). It stays registered
    until it is closed: `sub.close()`, the end of an `async with sub:` block,
    the client closing, or the subscription being garbage collected (so
    `async for ev in client.events(...): ... break` unregisters it at once).
    Leaving an `async for` over a subscription you still hold (`break`, a
    timeout, a cancel) keeps it and its queued events for the next read.

    With `overflow="error"` a full queue records a gap and the reader gets
    `SubscriptionOverflowError` exactly where the events were lost; reading on
    (`get()`, `anext()`, a new `async for`) continues just after the gap. With
    `"drop_oldest"` the oldest events make room and `dropped` counts them.
    """

    __slots__ = ("__weakref__", "_dispatcher", "_inbox", "_label", "_queue")

    def __init__(
        self,
        dispatcher: Dispatcher,
        maxsize: int,
        overflow: OverflowPolicy,
        label: str = "*",
    ) -> None:
        check_queue_options(maxsize, overflow)
        self._dispatcher = dispatcher
        self._inbox = inbox = _Inbox(maxsize, overflow, self)
        self._queue = inbox.queue
        self._label = label

    # -- state ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once closed (by `close()`, `async with`, or the client)."""
        return self._inbox.closed

    @property
    def dropped(self) -> int:
        """Events lost to overflow since the subscription was created."""
        return self._inbox.dropped

    @property
    def maxsize(self) -> int:
        """The most events the queue holds."""
        return self._inbox.maxsize

    @property
    def overflow(self) -> OverflowPolicy:
        """`"error"` or `"drop_oldest"`: what a full queue does."""
        return self._inbox.overflow

    def qsize(self) -> int:
        """Events waiting to be read."""
        return sum(1 for item in self._queue if type(item) is not _Gap)

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return (
            f"<Subscription {self._label} {state} queued={self.qsize()} "
            f"maxsize={self.maxsize} overflow={self.overflow!r} dropped={self.dropped}>"
        )

    # -- reading -------------------------------------------------------------------------

    def get_nowait(self) -> Event | None:
        """The next queued event, or `None` when nothing is queued."""
        queue = self._queue
        if not queue:
            return None
        item = queue.popleft()
        if type(item) is _Gap:
            raise SubscriptionOverflowError(
                f"subscription overflowed (maxsize={self.maxsize}): "
                f"{item.count} event(s) lost here",
                item.count,
            )
        return item  # type: ignore[return-value]

    async def get(self, timeout: float | None = None) -> Event:
        """Wait for the next event; `TimeoutError` after `timeout` seconds.

        `timeout` is zero or a positive, finite number of seconds (zero: only
        what is already queued), or `None` to wait as long as it takes;
        anything else (`nan`, `inf`, a negative number, a bool) raises
        `ValueError`. Raises `SubscriptionOverflowError` where events were
        lost, the client's failure if it gave up reconnecting, and
        `AMIConnectionError` once the subscription is closed and empty. A
        cancelled `get()` takes no event: whatever arrived stays queued for
        the next read.
        """
        if timeout is not None:
            check_timeout(timeout)
        event = await self._next(timeout)
        if event is None:
            raise AMIConnectionError("the subscription is closed")
        return event

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        queue = self._queue
        if queue and type(queue[0]) is not _Gap:
            return queue.popleft()  # type: ignore[return-value]
        event = await self._next(None)
        if event is None:
            raise StopAsyncIteration
        return event

    async def _next(self, timeout: float | None) -> Event | None:
        """The next event, or `None` once closed (cleanly) and drained.

        No `asyncio.wait_for` here: on Python 3.10 and 3.11 it can return an
        item instead of raising when a cancel lands in the same loop iteration.
        The timeout is a timer that resolves this reader's own future.
        """
        inbox = self._inbox
        queue = self._queue
        loop: asyncio.AbstractEventLoop | None = None
        deadline = 0.0
        while True:
            if queue:
                return self.get_nowait()
            if inbox.closed:
                error = inbox.error
                if error is not None:
                    raise renewed(error) from error
                return None
            if loop is None:
                loop = asyncio.get_running_loop()
                if timeout is not None:
                    deadline = loop.time() + timeout
            waiter: asyncio.Future[bool] = loop.create_future()
            handle = None
            if timeout is not None:
                if loop.time() >= deadline:
                    raise TimeoutError(f"no event within {timeout} s")
                handle = loop.call_at(deadline, _time_up, waiter)
            inbox.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if _woken(waiter) and queue:
                    # Woken for an item, then cancelled before taking it: the
                    # item stays queued; let the next reader have it.
                    inbox.wake_one()
                raise
            finally:
                if handle is not None:
                    handle.cancel()
                if not _woken(waiter):  # timed out or cancelled: still in the line
                    with contextlib.suppress(ValueError):
                        inbox.waiters.remove(waiter)

    # -- ending ----------------------------------------------------------------------------

    def close(self) -> None:
        """Unregister; queued events are discarded and waiting readers wake."""
        inbox = self._inbox
        if not inbox.closed:
            self._dispatcher._remove_inbox(inbox)
            inbox._end(None)
        inbox.queue.clear()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Nobody can read it any more: stop queueing for it. The garbage collector
        # may run this in the middle of any allocation, even while the dispatcher
        # rebuilds its list of targets: only mark it here; the dispatcher sweeps
        # closed inboxes out at its next change or read.
        inbox: _Inbox | None = getattr(self, "_inbox", None)
        if inbox is None or inbox.closed:
            return
        try:
            unread = len(inbox.queue)
            inbox.closed = True
            inbox.queue = collections.deque()  # (a `_put` under way keeps the old one)
            self._dispatcher._sweep_needed = True
            if unread:
                logger.debug(
                    "subscription to %s dropped without close(): %d unread event(s) discarded",
                    self._label,
                    unread,
                )
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


# -- handlers ----------------------------------------------------------------------------

#: 3.10 has no `Task.cancelling()`: its workers remember a cancel of themselves.
_FLAG_CANCELS = sys.version_info < (3, 11)

if not _FLAG_CANCELS:

    def _worker_task(coro: Any) -> Any:
        return coro

    def _worker_cancelled(task: Any) -> bool:
        """Whether the worker itself was asked to stop (not just something it awaited)."""
        return task is None or task.cancelling() > 0

else:  # pragma: no cover - exercised on Python 3.10 only

    class _WorkerTask(asyncio.Task):  # type: ignore[type-arg]
        """A task that notes `cancel()` calls (cleared before each handler call).

        A timeout inside the handler (`async_timeout`, what `asyncio.timeout`
        is on 3.10, and what the client's own action timeouts use there)
        cancels this task too, and turns that cancel into `TimeoutError`
        itself: it is not a request to stop, and not noted.
        """

        cancel_requested = False

        def cancel(self, msg: Any = None) -> bool:
            if not _from_async_timeout(sys._getframe(1)):
                self.cancel_requested = True
            return super().cancel(msg)

    def _from_async_timeout(frame: Any) -> bool:
        """Whether `frame` is an `async_timeout` deadline cancelling its task."""
        module = frame.f_globals.get("__name__", "")
        return isinstance(module, str) and module.split(".", 1)[0] == "async_timeout"

    def _worker_task(coro: Any) -> Any:
        return _WorkerTask(coro)

    def _worker_cancelled(task: Any) -> bool:
        return getattr(task, "cancel_requested", True)


class HandlerRunner:
    """Runs one handler: sync ones inline, async ones in order on one bounded worker."""

    def __init__(
        self,
        handler: Handler,
        maxsize: int,
        overflow: OverflowPolicy,
        spawn: Callable[[Awaitable[None]], asyncio.Task[None]],
    ) -> None:
        check_queue_options(maxsize, overflow)
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

    @property
    def closed(self) -> bool:
        """True once stopped (`off()`, or the client closing): it gets nothing more."""
        return self._stopped

    def _name(self) -> str:
        return getattr(self.handler, "__qualname__", repr(self.handler))

    def _put(self, event: Event) -> None:
        if self._stopped:
            # Removed during the dispatch of this very event (`off()` from a
            # handler that ran before it): it gets nothing more.
            return
        if not self.is_async:
            try:
                result = self.handler(event)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:
                # Even a CancelledError or a user's BaseException subclass: out of
                # data_received it would tear the link down (and lose the rest of
                # the read). A handler's failure is logged, delivery goes on.
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
            # coroutine function, `lambda ev: queue.put(ev)`): from now on it
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
        if self._stopped:
            return
        if self._task is None:
            self._task = self._spawn(_worker_task(self._run()))
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        queue = self._queue
        flag_cancels = _FLAG_CANCELS and isinstance(me, _WorkerTask)
        while not self._stopped:
            while queue and not self._stopped:
                item = queue.popleft()
                name = item.name if isinstance(item, Event) else "an event"
                if flag_cancels:
                    # A cancel the last call absorbed (a timeout inside it) is not a stop.
                    me.cancel_requested = False  # type: ignore[union-attr]
                try:
                    result = self.handler(item) if isinstance(item, Event) else item
                    if result is not None:
                        await result
                except asyncio.CancelledError:
                    # Only a cancel of this worker stops it. A CancelledError the
                    # handler let out (it cancelled a task of its own and awaited
                    # it) is the handler's failure, like any other exception.
                    if self._stopped or _worker_cancelled(me):
                        raise
                    self._log_failure(name)
                except (KeyboardInterrupt, SystemExit, GeneratorExit):
                    # The process stopping, or this coroutine being closed.
                    raise
                except BaseException:
                    # Any other failure, a user's BaseException subclass too, is
                    # the handler's: logged, and the next event is delivered.
                    self._log_failure(name)
            if self._stopped:
                return
            self._wake = loop.create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    def _log_failure(self, name: str) -> None:
        logger.exception(
            "event handler %s raised on %s",
            self._name(),
            name,
            extra={"ami_event": name},
        )

    def stop(self, spare: asyncio.Task[Any] | None = None, *, cancel: bool = True) -> None:
        """Deliver nothing more to the handler.

        With `cancel` (the client closing) the worker is cancelled, unless it is
        `spare` (the task calling): that one ends once its handler returns.
        Without (`off()`), a call in progress finishes and the worker then ends.
        """
        self._stopped = True
        if cancel and self._task is not None and self._task is not spare:
            self._task.cancel()
        self._task = None
        self._queue.clear()
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)
