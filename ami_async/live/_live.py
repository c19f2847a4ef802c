"""`Live`: the model's life around one client: snapshot, events, resync, changes, close."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING

from ..errors import AMIConnectionError, AMIError, SubscriptionOverflowError
from ..subscription import OverflowPolicy, check_queue_options
from ._calls import Call, CallRecord
from ._changes import Change, Synced, Unsynced
from ._model import Model
from ._objects import Bridge, Channel, Conference, ParkedCall, Queue
from ._reconcile import reconcile
from ._snapshot import take_snapshot
from ._stream import ChangeStream, _Hub

if TYPE_CHECKING:
    from ..client import Client
    from ..dispatch import Sink
    from ..message import Event

__all__ = ["Live", "SnapshotOverflowError"]

logger = logging.getLogger("ami_async.live")

#: `start()` gives up after this many snapshots in a row that overflowed `hold_maxsize`.
START_ATTEMPTS = 3
#: Seconds before taking an overflowed snapshot again: doubled each time, up to the cap.
RETRY_PAUSE = 0.1
RETRY_PAUSE_MAX = 5.0


class SnapshotOverflowError(SubscriptionOverflowError):
    """More events than `hold_maxsize` arrived during each of `start()`'s snapshots.

    `dropped` counts those of the last one. An `AMIError` (and a
    `SubscriptionOverflowError`): raise `hold_maxsize`.
    """


class _Held(list["Event"]):
    """The events that arrive while a snapshot is taken, at most `maxsize`.

    One more and they are all dropped (counted in `dropped`, as every later one
    is): the snapshot is then known to be stale and is taken again. Only
    `append` is bounded: it is all `Model.follow` calls.
    """

    __slots__ = ("dropped", "maxsize")

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self.dropped = 0

    def append(self, ev: Event) -> None:
        if self.dropped:
            self.dropped += 1
        elif len(self) < self.maxsize:
            super().append(ev)
        else:
            self.dropped = len(self) + 1
            self.clear()


class Live:
    """Channels, bridges, calls, queues, conferences and parked calls, kept current.

    `async with Live(client) as live:` takes a snapshot (`CoreShowChannels`,
    `BridgeList`/`BridgeInfo`, `QueueStatus`, `ConfbridgeListRooms`/`ConfbridgeList`,
    `ParkedCalls`) and then follows the events. The mappings are read-only
    views that change as events arrive; the objects in them are frozen and
    replaced when they change. After a reconnect (with `resync=True`) the
    snapshot is taken again and the differences are reported as changes with
    `reason="resync"`; `synced` is false from the loss of the link until then,
    and `changes()` streams get `Unsynced(reason="disconnect")` when it is lost,
    then those changes, then `Synced(reason="resync")`.

    `history` is how many finished `CallRecord`s `live.history` keeps;
    `changes_maxsize` the default queue bound of `changes()` (the client's
    `event_queue_size` when not given); `clock` gives the time in seconds since
    the epoch for events without a `Timestamp` (tests and replays pass their
    own); `snapshot_timeout` bounds each snapshot action; `hold_maxsize` is
    the most events kept while a snapshot is taken (more, and the snapshot is
    taken again: `start()` raises `SnapshotOverflowError` after 3 such
    snapshots, a resync tries until it gets one, `synced` false meanwhile).
    """

    def __init__(
        self,
        client: Client,
        *,
        history: int = 1000,
        changes_maxsize: int | None = None,
        resync: bool = True,
        clock: Callable[[], float] = time.time,
        snapshot_timeout: float = 10.0,
        hold_maxsize: int = 100_000,
    ) -> None:
        if isinstance(history, bool) or not isinstance(history, int) or history < 0:
            raise ValueError(
                f"history must be a whole number of records, 0 or more, not {history!r}"
            )
        if isinstance(hold_maxsize, bool) or not isinstance(hold_maxsize, int) or hold_maxsize < 1:
            raise ValueError(
                f"hold_maxsize must be a whole number of events, 1 or more, not {hold_maxsize!r}"
            )
        maxsize = client.event_queue_size if changes_maxsize is None else changes_maxsize
        check_queue_options(maxsize, "error")
        self._client = client
        self._changes_maxsize = maxsize
        self._resync = resync
        self._snapshot_timeout = snapshot_timeout
        self._hold_maxsize = hold_maxsize
        self._model = Model(clock, history)
        self._model.emitting = False  # until a changes() stream is open
        self._hub = _Hub(self._set_emitting)
        self._model.publish = self._hub.publish
        self._started = False
        self._closed = False
        self._synced = False
        self._lost = False
        self._missing: frozenset[str] = frozenset()
        self._resync_task: asyncio.Task[None] | None = None
        self._names = tuple(self._model._appliers)
        self._sink: Sink | None = None
        self._channels = MappingProxyType(self._model.channels)
        self._bridges = MappingProxyType(self._model.bridges)
        self._calls = MappingProxyType(self._model.calls)
        self._queues = MappingProxyType(self._model.queues)
        self._conferences = MappingProxyType(self._model.conferences)
        self._parked = MappingProxyType(self._model.parked)

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("synced" if self._synced else "not synced")
        return (
            f"<Live {state} channels={len(self._model.channels)} "
            f"calls={len(self._model.calls)} bridges={len(self._model.bridges)}>"
        )

    # -- what it holds -----------------------------------------------------------------------

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The channels up now, by uniqueid."""
        return self._channels

    @property
    def bridges(self) -> Mapping[str, Bridge]:
        """The bridges, by bridge uniqueid."""
        return self._bridges

    @property
    def calls(self) -> Mapping[str, Call]:
        """The calls in progress, by linkedid."""
        return self._calls

    @property
    def queues(self) -> Mapping[str, Queue]:
        """The queues, by name: members and waiting callers."""
        return self._queues

    @property
    def conferences(self) -> Mapping[str, Conference]:
        """The ConfBridge conferences with someone in them, by name."""
        return self._conferences

    @property
    def parked(self) -> Mapping[tuple[str, str], ParkedCall]:
        """The parked calls, by (parking lot, space)."""
        return self._parked

    @property
    def history(self) -> tuple[CallRecord, ...]:
        """The last `history` finished calls' records, oldest first."""
        return tuple(self._model.history)

    @property
    def missing(self) -> frozenset[str]:
        """The snapshot actions the server or the user's permissions did not allow."""
        return self._missing

    @property
    def synced(self) -> bool:
        """True while the model is current: snapshot applied, link up since."""
        return self._synced and not self._closed and self._client.connected

    @property
    def closed(self) -> bool:
        """True once the `Live` was left (or `close()`d): it follows nothing more."""
        return self._closed

    # -- changes ----------------------------------------------------------------------------

    def changes(
        self, *, maxsize: int | None = None, overflow: OverflowPolicy = "error"
    ) -> ChangeStream:
        """A new stream of every change from now on (see `ChangeStream`)."""
        if self._closed:
            raise AMIConnectionError("the live model is closed")
        bound = self._changes_maxsize if maxsize is None else maxsize
        check_queue_options(bound, overflow)
        return self._hub.open(bound, overflow)

    def _publish(self, changes: list[Change]) -> None:
        if changes and self._hub:
            self._hub.publish(changes)

    # -- life ------------------------------------------------------------------------------

    async def __aenter__(self) -> Live:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def start(self) -> None:
        """Subscribe, take the snapshot, apply what arrived meanwhile (once)."""
        if self._started:
            raise RuntimeError("a Live starts once")
        self._started = True
        client = self._client
        # Subscribed before the snapshot: events meanwhile are kept, then applied on top.
        self._model.held = _Held(self._hold_maxsize)
        # A sink, not a handler: the parser may then skip the events the model does not follow.
        self._sink = client._add_sink(self._names, self._model.follow, self._client_ended)
        client.add_disconnect_hook(self._on_disconnect)
        client.add_connect_hook(self._on_connect)
        try:
            await self._load("snapshot")
        except BaseException:
            self.close()
            raise

    def _client_ended(self, error: BaseException | None) -> None:
        # The client was closed, or gave up reconnecting: nothing more can come.
        self.close()

    def close(self) -> None:
        """Stop following; change streams end, `ended()` waiters get `AMIConnectionError`.

        Closing the client (or its giving up reconnecting) closes the `Live` too.
        """
        if self._closed:
            return
        self._closed = True
        self._synced = False
        client = self._client
        if self._sink is not None:
            client._remove_sink(self._sink)
        client.remove_connect_hook(self._on_connect)
        client.remove_disconnect_hook(self._on_disconnect)
        if self._resync_task is not None:
            self._resync_task.cancel()
        self._hub.end()
        for call in self._model.calls.values():
            waiters, call._waiters = call._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(AMIConnectionError("the live model is closed"))

    async def _load(self, reason: str) -> None:
        model = self._model
        attempts = 0
        while True:
            held = model.held
            if not isinstance(held, _Held) or held.dropped:
                held = model.held = _Held(self._hold_maxsize)
            try:
                snap = await take_snapshot(self._client, self._snapshot_timeout)
            except BaseException:
                self._stop_loading()
                raise
            if self._closed:
                return
            if not held.dropped:
                break
            # Events were lost: this snapshot plus what is held would be stale. Until the
            # next one, `held` keeps nothing and only counts (memory stays bounded).
            attempts += 1
            if reason == "snapshot" and attempts >= START_ATTEMPTS:
                raise SnapshotOverflowError(
                    f"{held.dropped} events arrived while the live model's snapshot was taken, "
                    f"more than hold_maxsize={self._hold_maxsize}, {attempts} times in a row: "
                    "raise hold_maxsize",
                    held.dropped,
                )
            pause = min(RETRY_PAUSE * 2 ** (attempts - 1), RETRY_PAUSE_MAX)
            logger.warning(
                "live model: %d events arrived during the %s, more than hold_maxsize=%d: "
                "dropped them, taking it again in %.1f s",
                held.dropped,
                reason,
                self._hold_maxsize,
                pause,
            )
            await asyncio.sleep(pause)
            if self._closed:
                return
        model._out = []  # (it still holds the last event's changes, published already)
        reconcile(model, snap, reason)
        self._missing = frozenset(snap.missing)
        changes, model._out = model._out, []
        self._publish(changes)
        self._stop_loading()
        self._synced = True
        self._publish([Synced(reason=reason)])

    def _stop_loading(self) -> None:
        model = self._model
        held, model.held = model.held or (), None
        for ev in held:  # (none if it overflowed)
            model.follow(ev)

    def _set_emitting(self, readers: bool) -> None:
        self._model.emitting = readers

    # -- reconnects ----------------------------------------------------------------------------

    def _on_disconnect(self, client: Client, cause: BaseException | None) -> None:
        if self._closed:
            return
        self._lost = True
        if self._synced:  # once per loss: a failed reconnect calls this again
            self._synced = False
            self._publish([Unsynced(reason="disconnect", cause=str(cause) if cause else None)])

    def _on_connect(self, client: Client) -> None:
        if self._closed or not self._lost or not self._resync:
            return
        self._lost = False
        # What arrives from now on goes on top of the new snapshot.
        self._model.held = _Held(self._hold_maxsize)
        if self._resync_task is not None:
            self._resync_task.cancel()
        self._resync_task = asyncio.get_running_loop().create_task(self._run_resync())

    async def _run_resync(self) -> None:
        try:
            await self._load("resync")
        except asyncio.CancelledError:
            raise
        except AMIError as exc:  # the link went again: the next connection resyncs
            logger.info("live model: resync failed (%s); will retry on reconnect", exc)
            self._lost = True
        except Exception:
            logger.exception("live model: resync failed")
            self._lost = True
