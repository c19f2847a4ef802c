"""`TypedSubscription`: what ``client.events("Hangup")`` is for mypy.

A `Subscription` whose events are typed as the event's `TypedDict`
(`ami_async.catalogue.events`). Only a type: the client never makes one; at run
time it is the `Subscription` itself, and each event an `ami_async.Event`.
Being a subclass, it still goes wherever a `Subscription` is expected.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ..subscription import Subscription

__all__ = ["TypedSubscription"]

E = TypeVar("E")


class TypedSubscription(Subscription, Generic[E]):
    """A `Subscription` whose events are typed ``E`` (a `TypedDict` view)."""

    # The overrides narrow Event to its TypedDict view, which is not a subclass
    # of Event: a static lie, hence the ignores; nothing here ever runs.

    def get_nowait(self) -> E | None:  # type: ignore[override]
        raise NotImplementedError

    async def get(self, timeout: float | None = None) -> E:  # type: ignore[override]
        raise NotImplementedError

    def __aiter__(self) -> TypedSubscription[E]:
        raise NotImplementedError

    async def __anext__(self) -> E:  # type: ignore[override]
        raise NotImplementedError

    async def __aenter__(self) -> TypedSubscription[E]:
        raise NotImplementedError
