"""Sending actions: ActionIDs, the pending table, timeouts, lists and streams.

`Client` inherits this; it keeps the link (`_protocol`), the routing
(`_dispatcher`) and the keepalive, which must know the actions that block
Asterisk's session (`blocking=`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any, Final

from ._action_sessions import ActionSessions
from ._deadlines import Deadlines
from ._keepalive import BLOCKING_ACTIONS, Keepalive, blocks_session
from ._options import seconds
from .catalogue._validate import check_action
from .connection import AMIProtocol
from .dispatch import Dispatcher, EventList, Pending
from .errors import ActionTimeoutError, ConnectionLostError, InvalidActionError
from .message import Event, Response
from .protocol import ACTION_HEADS, HeaderValue, encode_with_id

__all__ = ["SenderMixin"]

logger = logging.getLogger("ami_async")


#: A headerless action's headers.
_NO_HEADERS: Final[dict[str, HeaderValue]] = {}

# How `_send` routes an action, by its name as given (cached: a lower() and two
# set look-ups less per action).
_PLAIN: Final = 0
_BLOCKS: Final = 1  # always blocks the session (BLOCKING_ACTIONS)
_ORIGINATE: Final = 2  # blocks unless Async
_LOGOFF: Final = 3
_ROUTES: dict[str, int] = {}


def _route(name: object) -> int:
    low = name.lower() if isinstance(name, str) else ""  # not a str: the encoder refuses it
    if low in BLOCKING_ACTIONS:
        route = _BLOCKS
    elif low == "originate":
        route = _ORIGINATE
    elif low == "logoff":
        route = _LOGOFF
    else:
        route = _PLAIN
    if type(name) is str and len(_ROUTES) < 1024:
        _ROUTES[name] = route
    return route


class SenderMixin:
    """`send_action`, `send_action_and_wait`, `collect` and `stream`, and their machinery."""

    host: str
    port: int
    action_timeout: float
    list_completions: dict[str, str]
    _dispatcher: Dispatcher
    _protocol: AMIProtocol | None
    _ready: bool
    _id_prefix: str
    _counter: itertools.count[int]
    _watch: Keepalive
    _deadlines: Deadlines
    _sessions: ActionSessions | None
    _action_checks: dict[str, tuple[str, ...] | str]

    def _raise_if_done(self) -> None:  # pragma: no cover - Client defines it
        raise NotImplementedError

    def _budget(self, timeout: float | None) -> float:
        """The timeout of one action: ``timeout``, or the client's ``action_timeout``."""
        if timeout is None:
            return self.action_timeout
        return seconds("timeout", timeout)

    def _live(self) -> AMIProtocol | None:
        return self._protocol if self._ready else None

    def _prepare(
        self,
        protocol: AMIProtocol | None,
        name: str,
        headers: Mapping[str, HeaderValue],
        check: bool = True,
        *,
        is_list: bool = False,
        complete_event: str | None = None,
        follow: str | None = None,
        streaming: bool = False,
    ) -> tuple[Pending, bytes, AMIProtocol]:
        """Encode the action and enter it in the pending table (not yet written).

        Bad input (`InvalidActionError`, a duplicate ActionID) and a link that
        is down (`ConnectionLostError`) raise before anything is registered.
        """
        if headers:
            fields = dict(headers)
            action_id = None
            for key in [k for k in fields if len(k) == 8 and k.lower() == "actionid"]:
                value = fields.pop(key)
                if not isinstance(value, str) or not value:
                    raise InvalidActionError("ActionID must be a non-empty string")
                action_id = value
            if action_id is None:
                action_id = f"{self._id_prefix}-{next(self._counter)}"
                data = encode_with_id(name, action_id, fields, True)
            else:  # the caller's: checked like any header
                data = encode_with_id(name, action_id, fields)
        else:
            action_id = f"{self._id_prefix}-{next(self._counter)}"
            head = ACTION_HEADS.get(name) if type(name) is str else None
            if head is not None:  # a valid name, seen before: no check left to make
                data = f"{head}{action_id}\r\n\r\n".encode("utf-8", "surrogateescape")
            else:
                data = encode_with_id(name, action_id, _NO_HEADERS, True)
        # Encoded first: bad input is refused before anything is registered or written.
        if protocol is None or protocol.closed:
            self._raise_if_done()
            raise ConnectionLostError(f"{name}: not connected to {self.host}:{self.port}")
        if is_list or follow is not None or streaming:
            if complete_event is None and is_list:
                complete_event = self.list_completions.get(name.lower())
            pending = Pending(
                protocol._loop,
                name,
                action_id,
                check,
                is_list=is_list,
                complete_name=complete_event,
                follow=follow,
                streaming=streaming,
            )
        else:
            pending = Pending(protocol._loop, name, action_id, check)
        dispatcher = self._dispatcher
        table = dispatcher.pending
        if (
            pending.wants_events
            or pending.maybe_list
            or dispatcher._abandoned
            or dispatcher.late_blocking  # (add() forgets a timed-out one whose ID is reused)
            or action_id in table
        ):
            try:
                dispatcher.add(pending)
            except ValueError:
                raise InvalidActionError(f"ActionID {action_id!r} is already in flight") from None
        else:  # what add() does for a plain action with a free ID
            table[action_id] = pending
        return pending, data, protocol

    async def _run(
        self,
        pending: Pending,
        data: bytes,
        protocol: AMIProtocol,
        timeout: float,
        blocking: bool = False,
    ) -> Response:
        """Write the action and wait for its answer, removing it from the table on any exit.

        Its deadline joins the client's one deadline structure (`Deadlines`).
        A ``blocking`` action tells the keepalive to expect silence until it
        ends (or until ``timeout``).
        """
        self._deadlines.add(pending, timeout, protocol._loop)
        future = pending.future
        if blocking:
            return await self._run_blocking(pending, data, protocol, timeout)
        try:
            if protocol._paused:
                await self._drain(protocol, pending)
            # More than this one in flight: a burst, whose writes may share one.
            protocol.write(data, len(self._dispatcher.pending) > 1)
            return await future
        finally:
            # Answered, failed or timed out, it has already left the table.
            if not future.done() or future.cancelled():
                self._abandon(pending)

    def _abandon(self, pending: Pending) -> None:
        """The caller is gone before the answer (cancelled, or the write failed)."""
        if self._dispatcher.pending.get(pending.action_id) is pending:
            self._dispatcher.discard(pending)
        if not pending.future.done():
            pending.future.cancel()  # wakes a keepalive waiting on it

    async def _drain(self, protocol: AMIProtocol, pending: Pending) -> None:
        """Wait while writing is paused, unless the action's deadline (or the link) ends first."""
        drain = asyncio.ensure_future(protocol.drain())
        try:
            done, _ = await asyncio.wait(
                (drain, pending.future), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not drain.done():
                drain.cancel()  # timed out or cancelled: leave no task behind
        if drain not in done:
            pending.future.result()  # raises the timeout
        drain.result()

    async def _run_blocking(
        self, pending: Pending, data: bytes, protocol: AMIProtocol, timeout: float
    ) -> Response:
        """`_run` for an action that keeps Asterisk's session busy (the keepalive waits)."""
        deadline = time.monotonic() + timeout
        self._watch.blocking[pending] = deadline
        written = False
        try:
            if protocol._paused:
                await self._drain(protocol, pending)
            protocol.write(data)
            written = True
            return await pending.future
        finally:
            if (
                written
                and pending.future.cancelled()
                and not protocol.closed
                and self._dispatcher.pending.get(pending.action_id) is pending
            ):
                # The caller gave up, but Asterisk's session stays busy with it.
                self._keep_blocking(pending, deadline)
            else:
                self._watch.blocking.pop(pending, None)
                self._dispatcher.discard(pending)
                if not pending.future.done():
                    pending.future.cancel()  # wakes a keepalive waiting on it
                elif not written and self._dispatcher.late_blocking:
                    # Timed out before it was written (`_expire` counted it): nothing runs.
                    self._dispatcher.late_blocking.pop(pending.action_id, None)

    def _keep_blocking(self, pending: Pending, deadline: float) -> None:
        """Keep a cancelled blocking action in flight until its late answer or its deadline.

        The keepalive still expects silence meanwhile; the late answer (or the
        deadline) ends it and removes it from the table.
        """
        loop = asyncio.get_running_loop()
        late: asyncio.Future[Response] = loop.create_future()
        pending.future = late

        def expire() -> None:
            if not late.done():
                late.cancel()

        handle = loop.call_at(loop.time() + max(deadline - time.monotonic(), 0.0), expire)

        def done(_: asyncio.Future[Response]) -> None:
            handle.cancel()
            if not late.cancelled():
                late.exception()  # retrieved: nobody awaits it any more
            self._watch.blocking.pop(pending, None)
            self._dispatcher.discard(pending)

        late.add_done_callback(done)
        pending.kept = True
        self._watch.blocking[pending] = deadline

    def _expire(self, pending: Pending) -> None:
        """An action's deadline passed with no (complete) answer."""
        timeout = pending.timeout
        logger.debug(
            "%s timed out after %s s (ActionID %s)",
            pending.action,
            timeout,
            pending.action_id,
            extra={
                "ami_host": f"{self.host}:{self.port}",
                "ami_action": pending.action,
                "ami_action_id": pending.action_id,
            },
        )
        self._dispatcher.discard(pending)
        if pending in self._watch.blocking and not pending.kept and not pending.future.done():
            # A blocking action: Asterisk still runs it. Counted from now, not when its caller
            # wakes: its late answer may be read before that, and ends the count.
            self._dispatcher.note_late_blocking(pending.action_id, time.monotonic() + timeout)
        pending.fail(
            ActionTimeoutError(
                f"{pending.action}: no complete answer within {timeout} s "
                f"(ActionID {pending.action_id})",
                pending.action,
            )
        )

    async def _request(
        self,
        protocol: AMIProtocol | None,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        check: bool,
    ) -> Response:
        budget = self._budget(timeout)
        pending, data, protocol = self._prepare(protocol, name, headers, check=check)
        return await self._run(pending, data, protocol, budget)

    async def send_action(
        self,
        name: str,
        /,
        *,
        timeout: float | None = None,
        check: bool = True,
        blocking: bool | None = None,
        **headers: HeaderValue,
    ) -> Response:
        """Send one action and return its response.

        ``Response: Error`` raises `ActionError` unless ``check=False``.
        No answer within ``timeout`` (default ``action_timeout``) raises
        `ActionTimeoutError`; a lost link `ConnectionLostError`.

        ``blocking=True`` says the action keeps Asterisk's session busy until it
        ends (the keepalive then waits for it, up to ``timeout``, instead of
        taking the silence for a dead link). ``None`` decides from the action:
        ``Command``, ``Reload``, ``ModuleLoad``, ``QueueReload``, ``QueueReset``,
        ``WaitEvent`` and an ``Originate`` without ``Async`` block.
        """
        # The catalogue check (name, required headers, strict=), by what it found for
        # this name before: nothing to check (no required header) costs one look-up.
        try:
            need = self._action_checks[name]
        except (KeyError, TypeError):  # not seen yet (or not a name)
            need = None
        if need is None or need:
            check_action(self, name, headers)
        return await self._send(name, headers, timeout=timeout, check=check, blocking=blocking)

    def _send(
        self,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        check: bool = True,
        blocking: bool | None = None,
    ) -> Coroutine[Any, Any, Response]:
        """The coroutine that sends one action and returns its answer: ``await self._send(...)``.

        Not a coroutine itself: the caller awaits `_run` directly (one layer
        less on every action). Bad arguments raise at the call.
        """
        budget = self.action_timeout if timeout is None else seconds("timeout", timeout)
        route = _ROUTES.get(name) if type(name) is str else None
        if route is None:
            route = _route(name)
        if route or blocking:  # blocking, logoff, or an Originate: decided below
            return self._send_routed(name, headers, budget, check, blocking, route)
        pending, data, protocol = self._prepare(
            self._protocol if self._ready else None, name, headers, check
        )
        return self._run(pending, data, protocol, budget)

    def _send_routed(
        self,
        name: str,
        headers: Mapping[str, HeaderValue],
        budget: float,
        check: bool,
        blocking: bool | None,
        route: int,
    ) -> Coroutine[Any, Any, Response]:
        """`_send` for an action that may block the session, or Logoff."""
        if blocking is None:
            blocking = route == _BLOCKS or (route == _ORIGINATE and blocks_session(name, headers))
        if blocking and self._sessions is not None and route != _LOGOFF:
            session = self._sessions.pick()
            if session is not None:  # none up: the main session runs it
                return session._send(name, headers, timeout=budget, check=check, blocking=True)
        pending, data, protocol = self._prepare(
            self._protocol if self._ready else None, name, headers, check
        )
        if route == _LOGOFF:
            return self._logoff(pending, data, protocol, budget, blocking)
        return self._run(pending, data, protocol, budget, blocking)

    async def _logoff(
        self, pending: Pending, data: bytes, protocol: AMIProtocol, budget: float, blocking: bool
    ) -> Response:
        """`_run` for Logoff: the server answers Goodbye and closes, a close that is ours."""
        protocol.expect_close = True
        goodbye = False
        try:
            response = await self._run(pending, data, protocol, budget, blocking)
            goodbye = response.response.lower() == "goodbye"
        finally:
            if not goodbye:
                protocol.expect_close = False  # no Goodbye: a later close is a loss
        return response

    async def send_action_and_wait(
        self,
        name: str,
        follow: str,
        /,
        *,
        timeout: float | None = None,
        check: bool = True,
        blocking: bool | None = None,
        **headers: HeaderValue,
    ) -> tuple[Response, Event | None]:
        """Send an action and wait for its response *and* the event ``follow`` with its ActionID.

        For actions whose outcome comes later as an event (async ``Originate``
        -> ``OriginateResponse``). The event also reaches every subscriber.
        An error response returns at once (``(response, None)`` with ``check=False``).
        ``blocking`` is as for `send_action`.
        """
        return await self._send_and_wait(
            name, follow, headers, timeout=timeout, check=check, blocking=blocking
        )

    async def _send_and_wait(
        self,
        name: str,
        follow: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        check: bool = True,
        blocking: bool | None = None,
    ) -> tuple[Response, Event | None]:
        budget = self._budget(timeout)
        if blocking is None:
            blocking = blocks_session(name, headers)
        pending, data, protocol = self._prepare(
            self._live(), name, headers, check=check, follow=follow
        )
        response = await self._run(pending, data, protocol, budget, blocking)
        return response, pending.follow_event

    async def collect(
        self,
        name: str,
        /,
        *,
        timeout: float | None = None,
        complete_event: str | None = None,
        blocking: bool | None = None,
        **headers: HeaderValue,
    ) -> EventList:
        """Send a list action and gather all its items (``.response``, ``.items``, ``.complete``).

        ``timeout`` bounds the whole list. ``complete_event`` names the event
        that ends the list on servers that send no ``EventList:`` markers
        (defaults from `list_completions`). ``Response: Error`` raises
        `ActionError`. ``blocking=True``: as for `send_action` (a list whose
        server stays silent for long before its items).
        """
        return await self._collect(
            name, headers, timeout=timeout, complete_event=complete_event, blocking=blocking
        )

    async def _collect(
        self,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        complete_event: str | None = None,
        blocking: bool | None = None,
    ) -> EventList:
        budget = self._budget(timeout)
        if blocking is None:
            blocking = blocks_session(name, headers)
        pending, data, protocol = self._prepare(
            self._live(), name, headers, check=True, is_list=True, complete_event=complete_event
        )
        response = await self._run(pending, data, protocol, budget, blocking)
        return EventList(response, list(pending.items), pending.complete)

    def stream(
        self,
        name: str,
        /,
        *,
        timeout: float | None = None,
        complete_event: str | None = None,
        blocking: bool | None = None,
        **headers: HeaderValue,
    ) -> AsyncIterator[Event]:
        """Send a list action and yield its items as they arrive: ``async for item in ...``.

        The action is sent when the loop starts. ``timeout`` bounds each wait
        for the next item (and the response). Leaving the loop early forgets
        the action; late items are dropped. ``blocking`` is as for
        `send_action`: the keepalive then expects silence during each wait,
        up to ``timeout``.
        """
        return self._stream(name, headers, timeout, complete_event, blocking)

    async def _stream(
        self,
        name: str,
        headers: Mapping[str, HeaderValue],
        timeout: float | None,
        complete_event: str | None,
        blocking: bool | None = None,
    ) -> AsyncIterator[Event]:
        # Validated before anything is registered: a refused timeout leaks nothing.
        wait = self._budget(timeout)
        if blocking is None:
            blocking = blocks_session(name, headers)
        pending, data, protocol = self._prepare(
            self._live(),
            name,
            headers,
            check=True,
            is_list=True,
            complete_event=complete_event,
            streaming=True,
        )
        loop = asyncio.get_running_loop()
        try:
            if protocol._paused:
                # asyncio.wait, not a timeout around the await: a caller's cancel
                # landing with the timeout stays a cancel on every Python.
                drain = asyncio.ensure_future(protocol.drain())
                try:
                    done, _ = await asyncio.wait((drain,), timeout=wait)
                finally:
                    if not drain.done():
                        drain.cancel()
                if not done:
                    raise ActionTimeoutError(f"{name}: could not be written within {wait} s", name)
                drain.result()
            protocol.write(data)
            items = pending.items
            while True:
                while items:
                    yield items.popleft()
                if pending.future.done():
                    pending.future.result()  # raise ActionError / ConnectionLostError
                    while items:
                        yield items.popleft()
                    return
                waiter = pending.stream_waiter = loop.create_future()
                if blocking:
                    self._watch.blocking[pending] = time.monotonic() + wait
                # A timer of our own settles the waiter: a caller's cancel is
                # always a CancelledError, even when it lands with the timeout.
                expired: list[bool] = []
                timer = loop.call_later(wait, _expire_waiter, waiter, expired)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    pending.stream_waiter = None
                if expired and not items and not pending.future.done():
                    raise ActionTimeoutError(
                        f"{name}: no list item within {wait} s (ActionID {pending.action_id})",
                        name,
                    )
        finally:
            self._watch.blocking.pop(pending, None)
            self._dispatcher.discard(pending)
            if not pending.future.done():
                pending.future.cancel()  # wakes a keepalive waiting on it


def _expire_waiter(waiter: asyncio.Future[None], expired: list[bool]) -> None:
    """A stream's wait timed out (unless something woke it first)."""
    if not waiter.done():
        expired.append(True)
        waiter.set_result(None)
