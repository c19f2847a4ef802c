"""Routing of incoming messages; knows nothing of sockets.

* Responses resolve the pending action with the same ActionID.
* A response with `EventList: start` (or, for servers that do not mark lists,
  one to an action in `LIST_COMPLETIONS`) opens a list: events carrying that
  ActionID become its items until one carries `EventList: Complete` (or
  `cancelled`) or has the action's completion name. List items belong to the
  action and are not broadcast.
* An event that carries a pending ActionID but is not a list item (the
  `OriginateResponse` of an async Originate) reaches the waiting action *and*
  every matching subscriber.
* Every other event reaches the subscribers and handlers in wire order.

The receivers themselves (`Subscription`, `HandlerRunner`) live in
`ami_async.subscription`.
"""

from __future__ import annotations

import asyncio
import collections
import fnmatch
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from time import monotonic
from typing import Any, Final

from ._answers import LIST_COMPLETIONS, SINGLE_ANSWER_ACTIONS
from .errors import ActionError
from .message import Event, Message, Response
from .subscription import (
    Handler,
    HandlerRunner,
    OverflowPolicy,
    Subscription,
    _Inbox,
)

__all__ = [
    "LIST_COMPLETIONS",
    "Dispatcher",
    "EventList",
    "Handler",
    "HandlerRunner",
    "OverflowPolicy",
    "Sink",
    "Subscription",
]

logger = logging.getLogger("ami_async")

_LIST_END: Final = frozenset({"complete", "cancelled"})

#: An abandoned list (its action timed out, was cancelled, or was asked with
#: `send_action()`) is forgotten after this many seconds without a sign of it.
ABANDONED_LIST_TTL: Final = 30.0
#: At most this many abandoned lists are remembered (the oldest go first).
ABANDONED_LIST_MAX: Final = 256
#: At most this many timed-out blocking actions are counted as still running.
LATE_BLOCKING_MAX: Final = 256


class EventList:
    """The answer to a list action: `response`, `items` and the `complete` event."""

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


#: The items of an action that is not a list (nothing is ever added).
_NO_ITEMS: Final[collections.deque[Event]] = collections.deque(maxlen=0)


class Pending:
    """One action waiting for its answer (and maybe list items or a follow-up event).

    No ``__slots__``: what a plain action does not use stays a class default,
    so building one sets four attributes, not nineteen (it is built per action).
    """

    #: Resolved with the Response (single actions), or once the whole list /
    #: the follow-up event is in.
    future: asyncio.Future[Response]
    action: str
    action_id: str
    check: bool = True
    is_list: bool = False
    complete_name: str | None = None
    follow: str | None = None
    streaming: bool = False
    response: Response | None = None
    #: Cancelled by its caller but kept in flight (a blocking action Asterisk
    #: is still running): a new action with its ActionID replaces it.
    kept: bool = False
    items: collections.deque[Event] = _NO_ITEMS
    complete: Event | None = None
    follow_event: Event | None = None
    list_open: bool = False
    stream_waiter: asyncio.Future[None] | None = None
    #: Its timeout (seconds) and deadline (``loop.time()``), set when it is sent.
    timeout: float = 0.0
    deadline: float = 0.0
    #: Events may follow that are matched by ActionID: nothing may be skipped
    #: unparsed meanwhile. A known list action asked with send_action() counts
    #: too: its items are not broadcast, and its end must be seen.
    wants_events: bool = False
    #: Any other action that may answer with a list (one the client does not
    #: know): a read that may hold its answer and its end is parsed in full.
    maybe_list: bool = False
    #: One answer and nothing else (no list, no follow-up event, no stream):
    #: a success answer ends it at once.
    plain: bool = True

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        action: str,
        action_id: str,
        check: bool = True,
        *,
        is_list: bool = False,
        complete_name: str | None = None,
        follow: str | None = None,
        streaming: bool = False,
    ) -> None:
        self.action = action
        self.action_id = action_id
        # (asyncio.Future directly: loop.create_future() is one more call, for the same object)
        self.future = asyncio.Future(loop=loop)
        if not check:
            self.check = False
        kind = _KINDS.get(action)
        if kind is None:
            kind = _kind(action)
        if streaming:
            self.streaming = True
            self.plain = False
        if is_list or follow is not None:
            if is_list:
                self.is_list = True
                self.items = collections.deque()
            if complete_name:
                self.complete_name = complete_name.lower()
            if follow is not None:
                self.follow = follow.lower()
            self.wants_events = True
            self.plain = False
        elif kind is _KNOWN_LIST:
            self.wants_events = True
            self.plain = False
        elif kind is _MAYBE_LIST:
            self.maybe_list = True
            self.plain = False

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
        if self.stream_waiter is not None:
            self._wake()


# What an action's name says of its answer (a list the client knows, one
# answer, or maybe a list), cached by the name as given: two set look-ups and a
# lower() less per action.
_KNOWN_LIST: Final = "known list"
_SINGLE: Final = "single"
_MAYBE_LIST: Final = "maybe list"
_KINDS: dict[str, str] = {}


def _kind(action: str) -> str:
    low = action.lower()
    if low in LIST_COMPLETIONS:
        kind = _KNOWN_LIST
    elif low in SINGLE_ANSWER_ACTIONS:
        kind = _SINGLE
    else:
        kind = _MAYBE_LIST
    if len(_KINDS) < 1024:
        _KINDS[action] = kind
    return kind


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


class _Abandoned:
    """A list whose action is gone: its late items must not reach the subscribers."""

    __slots__ = ("complete_name", "expires", "open")

    def __init__(self, is_open: bool, complete_name: str | None) -> None:
        #: The list has begun (its `EventList: start` answer came): events
        #: carrying its ActionID are its items. Before that none are.
        self.open = is_open
        self.complete_name = complete_name
        self.expires = monotonic() + ABANDONED_LIST_TTL


class _ScanLists(frozenset[bytes]):
    """Event names to keep, and a request to parse in full a read carrying `EventList:`."""

    __slots__ = ()

    scan_lists = True


class Sink:
    """A receiver inside the library: events by exact name, to a function of the library.

    What a sync handler is, less two things. Its function is the library's own
    and registers nothing while a read is being dispatched (a user's sync
    handler might, so while one is registered the parser keeps every event),
    and it is called directly, with no runner in between: the function catches
    its own errors. The live model follows the stream through one.
    """

    __slots__ = ("_put", "closed", "on_end")

    def __init__(
        self,
        put: Callable[[Event], None],
        on_end: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._put = put
        self.closed = False
        #: Called once when the client ends for good (closed, or gave up), with why.
        self.on_end = on_end


def _ignore(event: Event) -> None:
    """What a removed `Sink` does with an event."""


Target = _Inbox | HandlerRunner | Sink


class Dispatcher:
    """Routes parsed messages to pending actions, subscriptions and handlers."""

    def __init__(self, spawn: Callable[[Awaitable[None]], asyncio.Task[None]]) -> None:
        self._spawn = spawn
        self.pending: dict[str, Pending] = {}
        self._event_waiters = 0
        self._targets: list[tuple[_Matcher, Target]] = []
        self._route_cache: dict[str, list[tuple[_Matcher, Target]]] = {}
        self._wanted: frozenset[bytes] | None = frozenset()
        self._wanted_scan: frozenset[bytes] | None = _ScanLists()
        # Actions in flight that may answer with a list the client does not know.
        self._maybe_lists = 0
        self._seq = itertools.count()
        # ActionID -> abandoned list, least recently active first.
        self._abandoned: dict[str, _Abandoned] = {}
        self.unmatched_responses = 0
        #: Blocking actions that timed out unanswered: Asterisk's session stays busy with
        #: each until its late answer comes (ActionID -> when to stop counting on that).
        self.late_blocking: dict[str, float] = {}
        #: Set by a subscription's `__del__` (which never touches `_targets`
        #: itself): closed inboxes are to be swept out.
        self._sweep_needed = False

    # -- pending actions -------------------------------------------------------------

    def add(self, pending: Pending) -> None:
        action_id = pending.action_id
        old = self.pending.get(action_id)
        if old is not None and old.kept:
            # Its caller is gone (DESIGN: a cancelled action leaves the table):
            # the ID is free again.
            self.discard(old)
            old.future.cancel()
        if action_id in self.pending:
            raise ValueError(f"ActionID {action_id!r} is already in flight")
        self.pending[action_id] = pending
        if self.late_blocking:
            self.late_blocking.pop(action_id, None)  # its ID reused: its answer is no sign
        if pending.wants_events:
            self._event_waiters += 1
        elif pending.maybe_list:
            self._maybe_lists += 1
        if self._abandoned:
            # The caller reuses the ID of an abandoned list: whatever carries it
            # from now on belongs to the new action.
            self._abandoned.pop(action_id, None)

    def discard(self, pending: Pending) -> None:
        """Forget `pending` (answered, timed out or cancelled)."""
        if self.pending.get(pending.action_id) is pending:
            del self.pending[pending.action_id]
            if pending.wants_events:
                self._event_waiters -= 1
            elif pending.maybe_list:
                self._maybe_lists -= 1
            if (
                pending.is_list
                and pending.complete is None
                and (pending.list_open or pending.response is None)
            ):
                # Abandoned before its end (timeout, cancel, break): the rest of the
                # list still belongs to it and must not reach the subscribers.
                self._abandon(pending.action_id, pending.list_open, pending.complete_name)

    def _abandon(self, action_id: str, is_open: bool, complete_name: str | None) -> None:
        """Drop, until their list ends (or is forgotten), the items carrying `action_id`."""
        abandoned = self._abandoned
        abandoned.pop(action_id, None)
        abandoned[action_id] = _Abandoned(is_open, complete_name)
        if len(abandoned) > ABANDONED_LIST_MAX:
            del abandoned[next(iter(abandoned))]

    def _expire_abandoned(self) -> None:
        abandoned = self._abandoned
        now = monotonic()
        while abandoned:
            action_id = next(iter(abandoned))
            if abandoned[action_id].expires > now:
                return
            del abandoned[action_id]

    def busy_late(self) -> int:
        """How many timed-out blocking actions Asterisk may still be running (`late_blocking`)."""
        late = self.late_blocking
        if late:
            now = monotonic()
            for action_id in [a for a, until in late.items() if until <= now]:
                del late[action_id]
        return len(late)

    def note_late_blocking(self, action_id: str, until: float) -> None:
        """A blocking action timed out: count its session busy until its answer or `until`."""
        late = self.late_blocking
        late[action_id] = until
        if len(late) > LATE_BLOCKING_MAX:
            del late[next(iter(late))]

    def fail_all(self, exc_factory: Callable[[Pending], BaseException]) -> None:
        """Fail every pending action (the link is gone); they are never re-sent."""
        self.late_blocking.clear()  # a new session runs none of them
        pending = list(self.pending.values())
        self.pending.clear()
        self._event_waiters = 0
        self._maybe_lists = 0
        # A new session sends no late items of the old one's lists.
        self._abandoned.clear()
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
        label = ",".join(names) or "*"
        if predicate is not None:
            label += " (with a predicate)"
        sub = Subscription(self, maxsize, overflow, label)
        self._targets.append((matcher, sub._inbox))
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

    def add_sink(
        self,
        names: tuple[str, ...],
        put: Callable[[Event], None],
        on_end: Callable[[BaseException | None], None] | None = None,
    ) -> Sink:
        """Send the events named `names` (exact names, any case) to `put` (see `Sink`);
        `on_end(error)` once the client ends for good, as subscriptions end then."""
        matcher = _Matcher(names, None, next(self._seq))
        if matcher.wildcard or matcher.patterns:
            raise ValueError(f"a sink takes exact event names, not {names!r}")
        sink = Sink(put, on_end)
        self._targets.append((matcher, sink))
        self._targets_changed()
        return sink

    def remove_sink(self, sink: Sink) -> None:
        """Stop sending to `sink`, the event being dispatched now included."""
        sink.closed = True
        sink._put = _ignore  # (a dispatch in progress looks `_put` up per target)
        self._targets = [(m, t) for m, t in self._targets if t is not sink]
        self._targets_changed()

    def remove_handler(self, handler: Handler) -> bool:
        """Remove every registration of `handler`; True if there was one.

        A call of it in progress finishes (even when it is the one calling
        `off()`); it gets no event after that.
        """
        keep = []
        found = False
        for matcher, target in self._targets:
            if isinstance(target, HandlerRunner) and target.handler == handler:
                target.stop(cancel=False)
                found = True
            else:
                keep.append((matcher, target))
        self._targets = keep
        self._targets_changed()
        return found

    def handler_runners(self) -> list[HandlerRunner]:
        return [t for _, t in self._targets if isinstance(t, HandlerRunner)]

    def subscriptions(self) -> list[Subscription]:
        """The registered subscriptions still referenced by the application."""
        subs = []
        for _, target in self._targets:
            if isinstance(target, _Inbox):
                sub = target.owner()
                if sub is not None:
                    subs.append(sub)
        return subs

    def _remove_inbox(self, inbox: _Inbox) -> None:
        self._targets = [(m, t) for m, t in self._targets if t is not inbox]
        self._targets_changed()

    def end_subscriptions(self, error: BaseException | None) -> None:
        """The client ends for good: subscriptions end with `error`, sinks are told."""
        sinks = []
        for _, target in self._targets:
            if isinstance(target, _Inbox):
                target._end(error)
            elif isinstance(target, Sink):
                sinks.append(target)
        self._targets = [(m, t) for m, t in self._targets if not isinstance(t, (_Inbox, Sink))]
        self._targets_changed()
        for sink in sinks:
            sink.closed = True
            sink._put = _ignore
            on_end, sink.on_end = sink.on_end, None
            if on_end is not None:
                try:
                    on_end(error)
                except Exception:
                    logger.exception("a sink's end raised")

    def stop_handlers(self, spare: asyncio.Task[Any] | None = None) -> None:
        for runner in self.handler_runners():
            runner.stop(spare)

    def interest(self) -> frozenset[bytes] | None:
        """The lower-cased event names anyone can want now, or `None` for any name.

        `None` while an action waits for events (list items and follow-up
        events are matched by ActionID) or an abandoned list may still send
        some (its end must be seen; it is forgotten after `ABANDONED_LIST_TTL`
        seconds without a sign of it), or a subscriber uses a pattern, `*`
        or a predicate, or a sync handler is registered (user code that runs
        during dispatch could subscribe to names the parser already skipped).
        The parser skips other events unparsed (`Parser.only_events`). While
        an action is in flight that may answer with a list the client does not
        know (any action not in `SINGLE_ANSWER_ACTIONS`), the names come as a
        `_ScanLists` (its `scan_lists` is true): the connection then parses in
        full a read that carries `EventList:`, for the list may end in the very
        read of its answer, and that end must be seen.
        """
        if self._sweep_needed:
            self._targets_changed()
        if self._event_waiters:
            return None
        if self._abandoned:
            self._expire_abandoned()
            if self._abandoned:
                return None
        if self._maybe_lists:
            return self._wanted_scan
        return self._wanted

    def _targets_changed(self) -> None:
        if self._sweep_needed:
            # Cleared first: a collection during the sweep marks again.
            self._sweep_needed = False
            live = []
            for matcher, target in self._targets:
                if isinstance(target, _Inbox) and target.closed:
                    target.queue.clear()
                else:
                    live.append((matcher, target))
            self._targets = live
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
                self._wanted = self._wanted_scan = None
                return
            names.update(name.encode("utf-8", "surrogateescape") for name in matcher.exact)
        self._wanted = frozenset(names)
        self._wanted_scan = _ScanLists(names)

    def _routes(self, name: str) -> list[tuple[_Matcher, Target]]:
        """The targets of events named `name` (cached by the name as received)."""
        low = name.lower()
        if len(self._route_cache) > 4096:
            self._route_cache.clear()
        return [(m, t) for m, t in self._targets if m.matches_name(low)]

    # -- incoming messages -----------------------------------------------------------

    def feed(self, messages: list[Message]) -> None:
        """Route every message of one read, in wire order."""
        for msg in messages:
            # type() first: Message is a Mapping, and an isinstance() that fails
            # on an ABC goes through ABCMeta.__instancecheck__ (a Python call).
            if type(msg) is Event or (type(msg) is not Response and isinstance(msg, Event)):
                if (self._event_waiters or self._abandoned) and self._event_for_action(msg):
                    continue
                self.broadcast(msg)
            elif type(msg) is Response or isinstance(msg, Response):
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
                if target.closed:
                    continue  # closed during this dispatch: no need to ask
                try:
                    if not predicate(event):
                        continue
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException:
                    # Even a CancelledError: out of data_received it would tear
                    # the link down. The predicate's failure: logged, not matched.
                    logger.exception("event predicate raised on %s", event.name)
                    continue
            target._put(event)

    def _response(self, msg: Response) -> None:
        text = msg._text
        action_id = None
        if text is not None:
            # ActionID as Asterisk writes it, read without a parse.
            pos = text.find("\nActionID: ")
            if pos >= 0:
                end = text.find("\n", pos + 11)
                action_id = text[pos + 11 : end] if end >= 0 else text[pos + 11 :]
                if action_id[-1:] == "\r":
                    action_id = action_id[:-1]
        if action_id is None:
            action_id = msg.action_id
        pending = self.pending.get(action_id) if action_id is not None else None
        if pending is None:
            self.unmatched_responses += 1
            if self.late_blocking and action_id is not None:
                self.late_blocking.pop(action_id, None)  # that session is free again
            if action_id is not None and self._abandoned:
                self._late_list_response(action_id, msg)
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
        # Most answers are a plain success, written so by Asterisk: no parse for them.
        if text is not None and text.startswith("Response: Success\r\n"):
            if pending.plain and "EventList" not in text:
                # What discard() and finish() do for a plain action.
                del self.pending[pending.action_id]
                future = pending.future
                if not future.done():
                    future.set_result(msg)
                return
            failed = False
        else:
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
        if not failed and (text is None or "EventList" in text):  # (a Ping's answer: no)
            marker = msg.peek("EventList")
            if marker is not None and marker.lower() == "start":
                # A list answered to send_action(): its items are not the
                # subscribers' (they belong to the action); use collect() for them.
                self._abandon(pending.action_id, True, LIST_COMPLETIONS.get(pending.action.lower()))
        if pending.follow is not None and not failed:
            if pending.follow_event is not None:
                self.discard(pending)
                pending.finish()
            return  # keep waiting for the follow-up event
        if pending.wants_events or pending.maybe_list:
            self.discard(pending)
        else:  # what discard() does for a plain action: the table entry goes
            del self.pending[pending.action_id]
        pending.finish()

    def _late_list_response(self, action_id: str, msg: Response) -> None:
        """The answer of a list action that gave up before it came."""
        entry = self._abandoned.get(action_id)
        if entry is None or entry.open:
            return
        marker = msg.peek("EventList")
        if msg.success and (
            (marker is not None and marker.lower() == "start")
            or (marker is None and entry.complete_name is not None)
        ):
            self._abandon(action_id, True, entry.complete_name)  # its items follow
        else:
            del self._abandoned[action_id]  # an error, or no list: nothing follows

    def _event_for_action(self, event: Event) -> bool:
        """Give `event` to the action it belongs to; True if it must not be broadcast."""
        action_id = event.action_id
        if action_id is None:
            return False
        pending = self.pending.get(action_id)
        if pending is None:
            return self._late_list_item(action_id, event)
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

    def _late_list_item(self, action_id: str, event: Event) -> bool:
        """True (drop it) if `event` is an item of an abandoned list."""
        abandoned = self._abandoned
        entry = abandoned.get(action_id)
        if entry is None:
            return False
        if entry.expires <= monotonic():
            del abandoned[action_id]
            return False
        if not entry.open:
            return False  # no list began: not an item (items follow their answer)
        name = event.name
        marker = event.peek("EventList")
        if (
            (marker is not None and marker.lower() in _LIST_END)
            or (entry.complete_name is not None and name.lower() == entry.complete_name)
            or name.endswith("Complete")
        ):
            del abandoned[action_id]
        else:  # still flowing: keep it (and move it to the young end)
            del abandoned[action_id]
            entry.expires = monotonic() + ABANDONED_LIST_TTL
            abandoned[action_id] = entry
        return True
