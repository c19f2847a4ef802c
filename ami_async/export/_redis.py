"""`RedisStreamExporter`: every event of a client or a fleet appended to a Redis Stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ..errors import AMIError, SubscriptionOverflowError
from ..message import Event
from ..subscription import OverflowPolicy, Subscription
from ._entry import event_fields, gap_fields

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["EventSource", "RedisStreamExporter", "safe_url"]

logger = logging.getLogger("ami_async.export")


class EventSource(Protocol):
    """What an exporter reads: a `Client` or a `Fleet` (anything with their ``events()``)."""

    def events(
        self,
        *names: str,
        predicate: Callable[[Event], bool] | None = None,
        maxsize: int | None = None,
        overflow: OverflowPolicy = "error",
    ) -> Subscription: ...


def safe_url(url: str) -> str:
    """``url`` without its user name and password, for logs and reprs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _redis_module() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "RedisStreamExporter needs the redis package: pip install 'ami_async[redis]'"
        ) from exc
    return redis


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return value


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite positive number of seconds, not {value!r}")
    return float(value)


class RedisStreamExporter:
    """Append every event of ``source`` (a `Client` or a `Fleet`) to a Redis Stream.

    Each event becomes one entry (fields in `ami_async.export`'s docs:
    ``server``, ``event``, ``headers``, ``seq``), appended with pipelined
    ``XADD ... MAXLEN ~ maxlen`` (approximate trimming; ``maxlen=None`` keeps
    everything). Entries go out in the order the events arrived, in batches of
    up to ``batch``.

    The exporter reads its own subscription of ``source``, of ``buffer``
    events: the AMI side never waits for Redis. While Redis is unreachable (or
    refuses a write) the exporter retries with a backoff from ``retry_delay``
    to ``max_retry_delay`` seconds and the events wait in that buffer; they go
    out in order once Redis is back. Past the bound, further events are
    dropped (the buffered ones are kept), counted in `dropped`, logged
    (WARNING), and a gap entry (``gap``: how many) marks the place in the
    stream. A write cut by a connection failure is sent again whole, so an
    entry may then appear twice: ``seq`` tells the copies apart.

    Use ``async with RedisStreamExporter(...)`` (or `start` and `close`), or
    ``await exporter.run()`` to export until cancelled or the source closes.
    ``timeout`` bounds each write and each connection attempt. ``redis=``
    takes a ready ``redis.asyncio.Redis`` instead of ``url`` (its own
    timeouts apply; not closed by the exporter).
    """

    def __init__(
        self,
        source: EventSource,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "ami:events",
        maxlen: int | None = 1_000_000,
        names: Sequence[str] = (),
        predicate: Callable[[Event], bool] | None = None,
        buffer: int = 100_000,
        batch: int = 500,
        retry_delay: float = 0.05,
        max_retry_delay: float = 2.0,
        timeout: float = 5.0,
        redis: Redis | None = None,
    ) -> None:
        if not isinstance(stream, str) or not stream:
            raise ValueError("stream must be a non-empty key name")
        if maxlen is not None:
            _positive_int("maxlen", maxlen)
        if isinstance(names, str):
            raise TypeError("names must be a sequence of event names, not one string")
        self.source = source
        self.url = url
        self.stream = stream
        self.maxlen = maxlen
        self.names = tuple(names)
        self.predicate = predicate
        self.buffer = _positive_int("buffer", buffer)
        self.batch = _positive_int("batch", batch)
        self.retry_delay = _positive_seconds("retry_delay", retry_delay)
        self.max_retry_delay = max(
            self.retry_delay, _positive_seconds("max_retry_delay", max_retry_delay)
        )
        self.timeout = _positive_seconds("timeout", timeout)
        self._redis: Redis | None = redis
        self._own_redis = redis is None
        #: Events written to the stream.
        self.exported = 0
        self._seq = 0
        self._sub_dropped = 0  # lost to a full buffer (the subscription's count, kept at close)
        self._close_dropped = 0  # still unwritten when close() gave up
        self._logged_drops = 0  # of those lost to a full buffer, how many were logged
        self._source_done = False
        self._entries: list[dict[str, str]] = []  # taken from the buffer, not yet written
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._redis_up: bool | None = None
        self._last_error: str | None = None

    def __repr__(self) -> str:
        state = "up" if self._redis_up else "unknown" if self._redis_up is None else "down"
        return (
            f"<RedisStreamExporter {safe_url(self.url)} stream={self.stream!r} redis={state} "
            f"exported={self.exported} pending={self.pending} dropped={self.dropped}>"
        )

    # -- state -------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events received and not yet written (buffered while Redis is away)."""
        queued = self._sub.qsize() if self._sub is not None else 0
        return queued + sum(1 for e in self._entries if "gap" not in e)

    @property
    def dropped(self) -> int:
        """Events lost: the buffer was full while Redis was away, or close() gave up on them."""
        sub = self._sub
        lost = sub.dropped if sub is not None else self._sub_dropped
        return lost + self._close_dropped

    @property
    def redis_up(self) -> bool | None:
        """Whether the last write to Redis succeeded (``None`` before the first)."""
        return self._redis_up

    @property
    def last_error(self) -> str | None:
        """The last Redis failure, as text."""
        return self._last_error

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe and start exporting in the background (idempotent).

        Raises `ImportError` naming the ``[redis]`` extra when the ``redis``
        package is missing, and ``ValueError`` for a URL it cannot read.
        """
        if self._stopping:
            raise RuntimeError("this exporter was closed; make a new one")
        if self._task is not None:
            return
        module = _redis_module()
        sub = self.source.events(
            *self.names, predicate=self.predicate, maxsize=self.buffer, overflow="error"
        )
        if self._redis is None:
            # The exporter retries itself, in order; the client's own retries
            # would resend half-written pipelines behind its back.
            retry = module.asyncio.retry.Retry(module.backoff.NoBackoff(), 0)
            try:
                self._redis = module.asyncio.from_url(
                    self.url,
                    socket_connect_timeout=self.timeout,
                    socket_timeout=self.timeout,
                    retry=retry,
                )
            except BaseException:
                sub.close()
                raise
        self._sub = sub
        self._task = asyncio.ensure_future(self._run())

    async def run(self) -> None:
        """Export until the source closes (its events all written) or the caller cancels."""
        self.start()
        assert self._task is not None
        try:
            await asyncio.shield(self._task)
        finally:
            await self.close()

    async def wait_flushed(self, timeout: float | None = None) -> None:
        """Return once every event received so far is written; `TimeoutError` after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._entries or (self._sub is not None and self._sub._queue):  # O(1), not pending
            task = self._task
            if task is None or task.done():
                raise RuntimeError(f"the exporter stopped with {self.pending} event(s) unwritten")
            if deadline is not None and loop.time() >= deadline:
                raise TimeoutError(f"{self.pending} event(s) still not written after {timeout} s")
            await asyncio.sleep(0.005)

    async def _run(self) -> None:
        sub = self._sub
        assert sub is not None
        entries = self._entries
        while True:
            if not entries:
                if self._stopping or self._source_done:
                    return
                if not await self._take(sub, entries) and not entries:
                    return
            await self._write(entries)

    async def _take(self, sub: Subscription, entries: list[dict[str, str]]) -> bool:
        """Move up to ``batch`` buffered events into ``entries`` (waiting for the first).

        False once the source has closed (nothing more will come).
        """
        try:
            event = await sub.get()
        except SubscriptionOverflowError as exc:
            self._lost(exc.dropped, entries)
        except AMIError as exc:  # the source closed, or its client gave up reconnecting
            if sub._inbox.error is not None:  # not a plain close
                logger.error("export to %s: the event source ended: %s", self.stream, exc)
            self._source_done = True
            return False
        else:
            self._seq += 1
            entries.append(event_fields(event, self._seq))
        self._drain(sub, entries, self.batch)
        return True

    def _drain(self, sub: Subscription, entries: list[dict[str, str]], limit: int | None) -> None:
        while limit is None or len(entries) < limit:
            try:
                event = sub.get_nowait()
            except SubscriptionOverflowError as exc:
                self._lost(exc.dropped, entries)
                continue
            if event is None:
                return
            self._seq += 1
            entries.append(event_fields(event, self._seq))

    def _lost(self, count: int, entries: list[dict[str, str]]) -> None:
        """A gap of ``count`` events read from the buffer: marked in the stream."""
        self._note_drops()
        self._seq += 1
        entries.append(gap_fields(count, self._seq))

    def _note_drops(self) -> None:
        """Log the events lost to a full buffer since the last note."""
        sub = self._sub
        if sub is None:
            return
        new = sub.dropped - self._logged_drops
        if new <= 0:
            return
        self._logged_drops = sub.dropped
        logger.warning(
            "export to %s: %d event(s) dropped: Redis unreachable and the buffer of %d full "
            "(%d dropped in all)",
            self.stream,
            new,
            self.buffer,
            self.dropped,
        )

    async def _write(self, entries: list[dict[str, str]]) -> None:
        """Write ``entries`` in order, retrying until Redis takes them all."""
        redis = self._redis
        assert redis is not None
        module = _redis_module()
        failures = (module.exceptions.RedisError, OSError)
        delay = self.retry_delay
        while entries:
            sending = entries[:]  # close() may append behind them meanwhile
            try:
                pipe = redis.pipeline(transaction=False)
                for fields in sending:
                    if self.maxlen is None:
                        pipe.xadd(self.stream, fields)  # type: ignore[arg-type]
                    else:
                        pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
                results = await pipe.execute(raise_on_error=False)
            except failures as exc:
                self._failed(f"Redis unreachable: {type(exc).__name__}: {exc}")
            else:
                written = 0
                for result in results:
                    if isinstance(result, Exception):
                        break
                    written += 1
                self.exported += sum(1 for e in sending[:written] if "gap" not in e)
                del entries[:written]
                if written == len(sending):
                    self._succeeded()
                    return
                self._failed(f"Redis refused an entry: {results[written]}")
            self._note_drops()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_retry_delay)

    def _failed(self, reason: str) -> None:
        if self._redis_up is not False or reason != self._last_error:
            logger.warning(
                "export to %s: %s; %d event(s) wait in the buffer",
                self.stream,
                reason,
                self.pending,
            )
        self._redis_up = False
        self._last_error = reason

    def _succeeded(self) -> None:
        if self._redis_up is False:
            logger.warning(
                "export to %s: Redis is back; the buffered events are being written",
                self.stream,
            )
        self._redis_up = True
        self._note_drops()

    # -- closing ---------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking events, write what is buffered (up to ``timeout`` s), close the connection.

        Events still unwritten when the time is up are counted in `dropped`
        and logged (WARNING). Safe to call more than once; a cancelled close
        still stops the exporter.
        """
        self._stopping = True
        sub = self._sub
        task = self._task
        try:
            if sub is not None and not sub.closed:
                self._drain(sub, self._entries, None)
                self._sub_dropped = sub.dropped
                sub.close()
            if task is not None and not task.done():
                await asyncio.wait((task,), timeout=timeout)
        finally:
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait((task,))
            if task is not None and not task.cancelled() and task.exception() is not None:
                logger.error("export to %s stopped: %r", self.stream, task.exception())
            self._note_drops()
            left = sum(1 for e in self._entries if "gap" not in e)
            self._entries.clear()
            if left:
                self._close_dropped += left
                logger.warning(
                    "export to %s: closed with %d event(s) not written (%s)",
                    self.stream,
                    left,
                    self._last_error or "Redis too slow",
                )
            if self._own_redis and self._redis is not None:
                redis, self._redis = self._redis, None
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(_close_redis(redis), self.timeout)

    async def __aenter__(self) -> RedisStreamExporter:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _close_redis(redis: Any) -> None:
    await (redis.aclose() if hasattr(redis, "aclose") else redis.close())
