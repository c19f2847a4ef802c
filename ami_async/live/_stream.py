"""`live.changes()`: bounded, ordered streams of changes, on the same queue as `client.events()`.

A `ChangeStream` is a `Subscription` whose items are changes: the same bounded
queue, the same overflow policies (`"error"`: `SubscriptionOverflowError` where
changes were lost, then reading goes on; `"drop_oldest"`: counted in
`dropped`), several readers (each change to one of them), closed by `close()`,
`async with`, leaving the `Live` block, or garbage collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from ..subscription import OverflowPolicy, Subscription, _Inbox

if TYPE_CHECKING:
    from ._changes import Change

__all__ = ["ChangeStream"]


class _Hub:
    """The publishing side: the inboxes of every open stream (what a dispatcher is to events)."""

    def __init__(self, on_readers: Callable[[bool], None] | None = None) -> None:
        self._inboxes: list[_Inbox] = []
        self._sweep_needed = False
        # Told whether any stream is open (the model builds changes only then).
        self._on_readers = on_readers or (lambda _any: None)

    def open(self, maxsize: int, overflow: OverflowPolicy) -> ChangeStream:
        stream = ChangeStream(self, maxsize, overflow)
        self._inboxes.append(stream._sub._inbox)
        self._on_readers(True)
        return stream

    def __bool__(self) -> bool:
        return bool(self._inboxes)

    def publish(self, changes: Iterable[Change]) -> None:
        if self._sweep_needed:
            self._sweep_needed = False
            self._inboxes = [i for i in self._inboxes if not i.closed]
            self._on_readers(bool(self._inboxes))
        for change in changes:
            for inbox in self._inboxes:
                inbox._put(cast(Any, change))

    def end(self) -> None:
        inboxes, self._inboxes = self._inboxes, []
        self._on_readers(False)
        for inbox in inboxes:
            inbox._end(None)

    # what `Subscription` calls on its "dispatcher"
    def _remove_inbox(self, inbox: _Inbox) -> None:
        self._inboxes = [i for i in self._inboxes if i is not inbox]
        self._on_readers(bool(self._inboxes))


class ChangeStream:
    """An async iterator of changes: `async for change in live.changes(): ...`.

    Also `await stream.get(timeout=)`, `stream.get_nowait()`, `close()`,
    `closed`, `dropped`, `qsize()`, and `async with`. It ends (the `async for`
    stops, `get()` raises `AMIConnectionError`) when closed or when the `Live`
    is left.
    """

    __slots__ = ("__weakref__", "_sub")

    def __init__(self, hub: _Hub, maxsize: int, overflow: OverflowPolicy) -> None:
        self._sub = Subscription(cast(Any, hub), maxsize, overflow, label="live changes")

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._sub.closed

    @property
    def dropped(self) -> int:
        """Changes lost to overflow so far."""
        return self._sub.dropped

    @property
    def maxsize(self) -> int:
        """The most changes the queue holds."""
        return self._sub.maxsize

    def qsize(self) -> int:
        """Changes waiting to be read."""
        return self._sub.qsize()

    def __repr__(self) -> str:
        return repr(self._sub).replace("<Subscription", "<ChangeStream", 1)

    def get_nowait(self) -> Change | None:
        """The next queued change, or `None`; `SubscriptionOverflowError` where some were lost."""
        return cast("Change | None", self._sub.get_nowait())

    async def get(self, timeout: float | None = None) -> Change:
        """The next change; `TimeoutError` after `timeout`, `AMIConnectionError` once closed."""
        return cast("Change", await self._sub.get(timeout))

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> Change:
        return cast("Change", await self._sub.__anext__())

    def close(self) -> None:
        """Stop receiving; queued changes are discarded and waiting readers wake."""
        self._sub.close()

    async def __aenter__(self) -> ChangeStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
