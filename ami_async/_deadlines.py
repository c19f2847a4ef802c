"""One timer for the deadlines of every action in flight.

A timer handle per action costs a `TimerHandle`, a push onto the loop's heap
(compared by a Python ``__lt__``) and a cancel; with hundreds of actions in
flight that was a visible part of each action's cost. Here the actions wait in
deadline order in a queue (the usual case: one timeout for all, so every new
deadline is the latest) or, for a deadline earlier than the last one queued, in
a heap; one loop timer is armed for the earliest. An answered action is not
removed at once: its entry is dropped when it reaches the head (one per new
entry), or when the entries of the queue (or of the heap) outnumber twice what
is still waiting there (so memory stays proportional to the actions in flight,
at a constant cost per action).
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import math
import time
from collections.abc import Callable
from typing import Final

from .dispatch import Pending

__all__ = ["Deadlines"]

#: A timer may run this much before its time (the loop's own tolerance).
_RESOLUTION: Final = time.get_clock_info("monotonic").resolution
#: Below this many entries no sweep of answered ones is made.
_MIN_SWEEP: Final = 1024


class Deadlines:
    """Calls ``expire(pending)`` for each action still unanswered at its deadline."""

    __slots__ = (
        "_armed",
        "_clock",
        "_expire",
        "_heap",
        "_limit",
        "_loop",
        "_queue",
        "_seq",
        "_timer",
    )

    def __init__(self, expire: Callable[[Pending], None]) -> None:
        self._expire = expire
        self._queue: collections.deque[Pending] = collections.deque()
        self._heap: list[tuple[float, int, Pending]] = []
        self._seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clock: Callable[[], float] = time.monotonic
        self._timer: asyncio.TimerHandle | None = None
        self._armed = math.inf
        self._limit = _MIN_SWEEP

    def __len__(self) -> int:
        """Entries held (answered ones not yet dropped included)."""
        return len(self._queue) + len(self._heap)

    def add(self, pending: Pending, timeout: float, loop: asyncio.AbstractEventLoop) -> None:
        """Expire ``pending`` after ``timeout`` seconds unless its future is done by then."""
        if loop is not self._loop:
            self.clear()
            self._loop = loop
            # The default loop's time() is time.monotonic(): called directly, one call less.
            base = type(loop).time is asyncio.BaseEventLoop.time
            self._clock = time.monotonic if base else loop.time
        deadline = self._clock() + timeout
        pending.deadline = deadline
        pending.timeout = timeout
        queue = self._queue
        if not queue or queue[-1].deadline <= deadline:
            queue.append(pending)
            # One answered entry off the head per new one: in the usual order
            # (answers as they were asked) the queue holds what is in flight.
            if queue[0].future.done():
                queue.popleft()
            if len(queue) > self._limit:
                self._sweep()
        else:
            heapq.heappush(self._heap, (deadline, next(self._seq), pending))
            if len(self._heap) > self._limit:
                self._sweep()
        if deadline < self._armed:
            self._arm(deadline)

    def clear(self) -> None:
        """Forget every entry and disarm the timer (the client is closed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed = math.inf
        self._queue.clear()
        self._heap.clear()
        self._limit = _MIN_SWEEP

    def _sweep(self) -> None:
        """Drop the answered entries (order kept); the next sweep waits for as many again."""
        self._queue = collections.deque(p for p in self._queue if not p.future.done())
        heap = [entry for entry in self._heap if not entry[2].future.done()]
        heapq.heapify(heap)
        self._heap = heap
        self._limit = max(_MIN_SWEEP, 2 * len(self._queue), 2 * len(heap))

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None
        self._timer = self._loop.call_at(deadline, self._fire)
        self._armed = deadline

    def _fire(self) -> None:
        self._timer = None
        self._armed = math.inf
        assert self._loop is not None
        now = self._loop.time() + _RESOLUTION
        due: list[Pending] = []
        queue = self._queue
        while queue:
            pending = queue[0]
            if not pending.future.done():
                if pending.deadline > now:
                    break
                due.append(pending)
            queue.popleft()
        heap = self._heap
        while heap:
            deadline, _, pending = heap[0]
            if not pending.future.done():
                if deadline > now:
                    break
                due.append(pending)
            heapq.heappop(heap)
        nearest = min(queue[0].deadline if queue else math.inf, heap[0][0] if heap else math.inf)
        if nearest < math.inf:
            self._arm(nearest)
        for pending in due:
            if not pending.future.done():  # an earlier expiry's callbacks run later: still true
                self._expire(pending)
