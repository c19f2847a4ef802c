"""Calls: the channels that share a `Linkedid`, and the record a call leaves when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import AMIError, _Timeout
from ..events import HangupCause
from ..subscription import check_timeout
from ._objects import CallerID, Channel, Disposition, Transfer

__all__ = ["Call", "CallRecord", "CallTimeoutError"]


class CallTimeoutError(AMIError, _Timeout):
    """`await call.ended(timeout=)` ran out: the call is still up.

    Also a `TimeoutError` (and an `asyncio.TimeoutError`) on every Python; the
    call is unchanged and `ended()` may be awaited again.
    """


@dataclass(frozen=True)
class CallRecord:
    """A finished call, as Asterisk's CDR and CEL would account for it.

    `duration` runs from the first channel's creation to the end of the call's
    last channel, `billsec` from its first answer to that end (0 if never
    answered), both in seconds. `disposition`: `ANSWERED` if any channel of
    the call was answered, otherwise what its first dial ended with (`BUSY`,
    `NO ANSWER`, `CONGESTION`, `FAILED`), otherwise what the first channel's
    hang-up means. `cause` is the first cause other than normal clearing among
    its hang-ups (the busy callee's 17 rather than the caller's 16), else the
    first channel's. `reason` is `"event"`, or `"resync"` when the call was
    found gone after a reconnect (its end time is then when that was seen).
    """

    linkedid: str
    caller: CallerID
    callee: CallerID
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    duration: float
    billsec: float
    disposition: Disposition
    cause: HangupCause | int | None
    transfers: tuple[Transfer, ...]
    channels: tuple[Channel, ...] = field(repr=False)
    reason: str = "event"


class Call:
    """A call in progress: the channels with one `Linkedid`, transfers included.

    Read-only; the model updates it as events arrive. `channels` are those up
    now, `all_channels` every channel the call has had (first one first, each
    as last seen). `await call.ended(timeout=)` gives its `CallRecord`.
    """

    __slots__ = (
        "_answered_at",
        "_callee",
        "_causes",
        "_dest_status",
        "_dial_status",
        "_ended_at",
        "_history",
        "_linkedid",
        "_live_channels",
        "_members",
        "_record",
        "_started_at",
        "_transfers",
        "_waiters",
    )

    def __init__(
        self, linkedid: str, started_at: datetime, live_channels: Mapping[str, Channel]
    ) -> None:
        self._linkedid = linkedid
        self._started_at = started_at
        self._answered_at: datetime | None = None
        self._ended_at: datetime | None = None
        self._live_channels = live_channels
        # uniqueid -> its last snapshot once it left the call (None while it is in it)
        self._history: dict[str, Channel | None] = {}
        self._members: dict[str, None] = {}
        self._transfers: list[Transfer] = []
        self._record: CallRecord | None = None
        self._waiters: list[asyncio.Future[CallRecord]] = []
        self._dial_status: str | None = None  # the first DialEnd of a dialling channel
        self._dest_status: dict[str, str] = {}  # dialled uniqueid -> its first DialStatus
        self._callee: CallerID | None = None
        self._causes: list[tuple[str, HangupCause | int | None]] = []

    def __repr__(self) -> str:
        state = "ended" if self._record is not None else "up"
        return f"<Call {self._linkedid} {state} channels={len(self._members)}>"

    @property
    def linkedid(self) -> str:
        """The `Linkedid` its channels share (the uniqueid of the call's first channel)."""
        return self._linkedid

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The channels in the call now, by uniqueid."""
        live = self._live_channels
        return {u: live[u] for u in self._members if u in live}

    @property
    def all_channels(self) -> tuple[Channel, ...]:
        """Every channel the call has had, in the order they joined it, each as last seen."""
        live = self._live_channels
        out: list[Channel] = []
        for uniqueid, last in self._history.items():
            channel = live.get(uniqueid) if last is None else last
            if channel is not None:
                out.append(channel)
        return tuple(out)

    @property
    def caller(self) -> CallerID:
        """The caller ID of the call's first channel."""
        first = self.all_channels[:1]
        return first[0].caller if first else CallerID()

    @property
    def callee(self) -> CallerID:
        """Who was called: the first dialled channel's number (or the first channel's extension)."""
        if self._callee is not None:
            return self._callee
        first = self.all_channels[:1]
        return CallerID(first[0].exten) if first else CallerID()

    @property
    def started_at(self) -> datetime:
        """When its first channel was created."""
        return self._started_at

    @property
    def answered_at(self) -> datetime | None:
        """When one of its channels was first answered."""
        return self._answered_at

    @property
    def ended_at(self) -> datetime | None:
        """When its last channel went (`None` while it is up)."""
        return self._ended_at

    @property
    def transfers(self) -> tuple[Transfer, ...]:
        """The transfers (and joins) seen in this call, in order."""
        return tuple(self._transfers)

    @property
    def record(self) -> CallRecord | None:
        """The final record once the call has ended, else `None`."""
        return self._record

    async def ended(self, timeout: float | None = None) -> CallRecord:
        """Wait for the end of the call and return its record.

        `timeout` is in seconds (`None`: as long as it takes); after it,
        `CallTimeoutError` (a `TimeoutError`). `AMIConnectionError` if the
        `Live` is closed first. Several tasks may wait for the same call.
        """
        if self._record is not None:
            return self._record
        if timeout is not None:
            check_timeout(timeout)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[CallRecord] = loop.create_future()
        self._waiters.append(waiter)
        handle = None
        if timeout is not None:
            handle = loop.call_later(timeout, _time_up, waiter)
        try:
            return await waiter
        finally:
            if handle is not None:
                handle.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # -- the model's side -------------------------------------------------------------------

    def _finish(self, record: CallRecord) -> None:
        self._record = record
        self._ended_at = record.ended_at
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(record)


def _time_up(waiter: asyncio.Future[CallRecord]) -> None:
    if not waiter.done():
        waiter.set_exception(CallTimeoutError("the call did not end in time"))
