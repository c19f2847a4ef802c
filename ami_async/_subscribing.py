"""Events for the application: subscriptions, handlers, and the session state
(event mask, filters) that survives a reconnect."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._options import event_mask
from ._sending import SenderMixin
from .dispatch import Handler, HandlerRunner, OverflowPolicy, Sink, Subscription
from .errors import ActionTimeoutError
from .message import Event, Response

if TYPE_CHECKING:
    from .catalogue.events import EventsMethod

__all__ = ["SubscriberMixin"]

_H = Callable[[Event], Any]


class SubscriberMixin(SenderMixin):
    """`events`, `on`, `off`, `handler_dropped`, `set_events` and `add_filter`."""

    event_queue_size: int
    _closed: bool
    _event_mask: str
    _filters: list[str]

    # -- events -----------------------------------------------------------------------------

    if TYPE_CHECKING:
        # For mypy, ``events("Hangup")`` gives a subscription of ``HangupEvent``
        # (one overload per documented event, generated in catalogue/events.py).
        events: EventsMethod
    else:

        def events(
            self,
            *names: str,
            predicate: Callable[[Event], bool] | None = None,
            maxsize: int | None = None,
            overflow: OverflowPolicy = "error",
        ) -> Subscription:
            """Subscribe to events by exact name (any case) or fnmatch pattern; none, ``"*"``: all.

            Registered at once, so nothing between this call and the first
            ``async for`` step is missed. The queue holds at most ``maxsize``
            events (default ``event_queue_size``); see `Subscription` for
            the overflow policies. It survives reconnects and ends when the
            client is closed.

            For mypy and editors, one documented event name types the events
            (``events("Hangup")`` yields ``HangupEvent``, a `TypedDict` of
            `ami_async.catalogue.events`: a misspelt field is an error); at run
            time they are `Event` objects, every field kept.
            """
            return self._subscribe(names, predicate, maxsize, overflow)

    def _subscribe(
        self,
        names: tuple[str, ...],
        predicate: Callable[[Event], bool] | None,
        maxsize: int | None,
        overflow: OverflowPolicy,
    ) -> Subscription:
        if self._closed:
            self._raise_if_done()
        return self._dispatcher.subscribe(
            names, predicate, self.event_queue_size if maxsize is None else maxsize, overflow
        )

    def on(
        self,
        *names: str,
        maxsize: int | None = None,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> Callable[[_H], _H]:
        """Register a handler for events by name or pattern (``"*"``: every event).

        Use as ``@client.on("Hangup")`` or ``client.on("Hangup")(func)``.
        A sync handler runs inline, in wire order, and must be quick. An async
        handler runs on its own task, one event at a time in wire order, from
        a queue of at most ``maxsize`` events (default ``event_queue_size``):
        when it falls behind, ``"drop_oldest"`` discards the oldest queued
        event and ``"error"`` refuses the new one; both log an error and count
        the loss (`handler_dropped`). An exception in a handler is
        logged with the event's name and never stops delivery.
        """

        def register(handler: _H) -> _H:
            self._dispatcher.add_handler(
                names or ("*",),
                handler,
                self.event_queue_size if maxsize is None else maxsize,
                overflow,
            )
            return handler

        return register

    def off(self, handler: Handler) -> bool:
        """Remove ``handler`` (every registration of it); True if it was registered."""
        return self._dispatcher.remove_handler(handler)

    def _add_sink(
        self,
        names: tuple[str, ...],
        put: Callable[[Event], None],
        on_end: Callable[[BaseException | None], None] | None = None,
    ) -> Sink:
        """For the library's own consumers (the live model): see `Sink`."""
        return self._dispatcher.add_sink(names, put, on_end)

    def _remove_sink(self, sink: Sink) -> None:
        self._dispatcher.remove_sink(sink)

    def handler_dropped(self, handler: Handler) -> int:
        """Events ``handler`` lost because its queue was full."""
        return sum(r.dropped for r in self._runners(handler))

    def _runners(self, handler: Handler) -> list[HandlerRunner]:
        return [r for r in self._dispatcher.handler_runners() if r.handler == handler]

    # -- session state that survives a reconnect -------------------------------------------

    async def set_events(self, mask: bool | str, *, timeout: float | None = None) -> Response:
        """``Events`` action: change the event mask (re-applied at every reconnect).

        Some servers (``broken_events_action=yes``) never answer ``on``: then
        this raises `ActionTimeoutError` after ``timeout``, and the mask,
        which such a server did apply, is still the one re-applied later.
        """
        value = event_mask(mask)
        try:
            response = await self._send("Events", {"EventMask": value}, timeout=timeout)
        except ActionTimeoutError:
            self._event_mask = value
            raise
        self._event_mask = value
        return response

    async def add_filter(self, rule: str, *, timeout: float | None = None) -> Response:
        """``Filter`` action, ``Operation: Add``; the filter is re-applied at every reconnect."""
        response = await self.send_action("Filter", Operation="Add", Filter=rule, timeout=timeout)
        self._filters.append(rule)
        return response
