"""Soak test: one Client through a FaultProxy to a FakeAsterisk, under random faults.

    python benchmarks/soak.py --seconds 600      # ami_async installed (pip install -e .)
    python -m benchmarks.soak --seconds 600      # or from the repository root

Worker tasks send actions (Ping, UserEvent, Originate) without pause while
the server streams numbered events to every logged-in connection; at random
intervals the proxy cuts the link, refuses connections (a restart), stalls it
(longer than the keepalive needs to notice: ``ping_interval + ping_timeout``
and 1 s, whatever is in flight), or fragments, delays or throttles it. At the
end it prints the action accounting (sent == answered + failed), the events
sent and received per connection (only a connection's tail may be lost, at
the fault that ended it), reconnects, the stalls the keepalive found within
its bound and the live links it never lost, memory, and the client's pending
actions, and exits 1 if anything does not add up.

Not run by CI: a timing is never a test assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from ami_async import (
    ActionTimeoutError,
    AMIConnectionError,
    Client,
    ConnectionLostError,
    SubscriptionOverflowError,
)
from ami_async.testing import FakeAsterisk, FakeSession, FaultProxy

USER, SECRET = "admin", "amp111"
TICK = "SoakTick"


def rss_kib(field: str = "VmRSS") -> int:
    """Resident memory of this process in KiB (``VmRSS``, or ``VmHWM`` for the peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def mib(kib: int) -> str:
    return "n/a" if kib < 0 else f"{kib / 1024:.1f} MiB"


@dataclasses.dataclass
class Epoch:
    """The events of one server-side connection (one login of the client)."""

    sent: int = 0
    received: int = 0
    next_seq: int = 0
    gaps: int = 0  # events missing *before* one that arrived
    disorder: int = 0  # an event at or below one already received (reordered, duplicated)


@dataclasses.dataclass
class Stats:
    sent: int = 0
    answered: int = 0
    lost: int = 0
    timed_out: int = 0
    other: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    by_kind: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    epochs: dict[int, Epoch] = dataclasses.field(default_factory=dict)
    stale_events: int = 0  # from an older connection after a newer one's
    overflow: int = 0
    disconnects: int = 0
    causes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    faults: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    stall_detect: list[float] = dataclasses.field(default_factory=list)
    stalls_undetected: int = 0
    keepalive_outside_stalls: int = 0
    waits_not_connected: int = 0


class LogCounter(logging.Handler):
    """Counts log records by level and message template (printed at the end)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[(record.levelname, record.name, str(record.msg))] += 1


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.fake = FakeAsterisk(users={USER: SECRET}, auth_failure_delay=0)
        self.proxy: FaultProxy | None = None
        self.client: Client | None = None
        self._emitting: dict[int, int] = {}  # id(session) -> epoch
        self._lost_waiters: list[asyncio.Future[None]] = []
        self._stalling = False

    # -- the client's view ------------------------------------------------------------

    def on_disconnect(self, client: Client, cause: BaseException | None) -> None:
        self.stats.disconnects += 1
        text = str(cause).split(": ", 1)[-1] if cause else "None"
        self.stats.causes[text[:60]] += 1
        if "keepalive" in text and not self._stalling:
            self.stats.keepalive_outside_stalls += 1
        waiters, self._lost_waiters = self._lost_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def consume(self, client: Client) -> None:
        """Check the event stream: in order, and gaps only where a connection ended."""
        stats = self.stats
        newest = -1
        subscription = client.events(TICK, maxsize=100_000)
        while True:
            try:
                event = await subscription.get()
            except SubscriptionOverflowError as exc:
                stats.overflow += exc.dropped
                continue
            except AMIConnectionError:  # closed (or the client gave up)
                return
            epoch_no, seq = int(event["Epoch"]), int(event["Seq"])
            epoch = stats.epochs[epoch_no]
            if epoch_no < newest:
                stats.stale_events += 1
            newest = max(newest, epoch_no)
            if seq > epoch.next_seq:
                epoch.gaps += seq - epoch.next_seq
            elif seq < epoch.next_seq:
                epoch.disorder += 1
            epoch.received += 1
            epoch.next_seq = max(epoch.next_seq, seq + 1)

    async def worker(self, client: Client, rng: random.Random) -> None:
        stats = self.stats
        timeout = self.args.action_timeout
        while not self.stop.is_set():
            if client.closed:
                return
            try:
                await client.wait_connected(timeout=1.0)
            except TimeoutError:
                stats.waits_not_connected += 1
                continue
            except AMIConnectionError:
                return  # closed, or gave up reconnecting
            kind = rng.choices(("Ping", "UserEvent", "Originate"), weights=(6, 3, 1))[0]
            stats.sent += 1
            stats.by_kind[kind] += 1
            try:
                if kind == "Ping":
                    await client.ping(timeout=timeout)
                elif kind == "UserEvent":
                    await client.user_event("SoakUser", Payload="x" * rng.randint(0, 200))
                else:
                    await client.originate(
                        "Local/100@test",
                        application="Wait",
                        data="1",
                        timeout=1.0,
                        action_timeout=timeout,
                    )
                stats.answered += 1
            except ConnectionLostError:
                stats.lost += 1
            except ActionTimeoutError:
                stats.timed_out += 1
            except Exception as exc:
                stats.other[f"{type(exc).__name__}: {str(exc)[:60]}"] += 1
            if self.args.action_pause:
                await asyncio.sleep(self.args.action_pause)

    # -- the server's side --------------------------------------------------------------

    async def sessions(self) -> None:
        """Start an event stream for each newly logged-in session; keep the fake's logs short."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not self.stop.is_set():
                for session in list(self.fake.sessions):
                    if session.authenticated and id(session) not in self._emitting:
                        epoch = len(self.stats.epochs)
                        self.stats.epochs[epoch] = Epoch()
                        self._emitting[id(session)] = epoch
                        task = asyncio.ensure_future(self.emit(session, self.stats.epochs[epoch]))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                # The fake logs every action it receives; a soak must not grow with it.
                self.fake.actions.clear()
                for session in self.fake.sessions:
                    session.actions.clear()
                await asyncio.sleep(0.02)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def emit(self, session: FakeSession, epoch: Epoch) -> None:
        number = self._emitting[id(session)]
        batch = max(1, round(self.args.event_rate * 0.01))
        while not self.stop.is_set() and not session.closed:
            for _ in range(batch):
                if session.closed:
                    return
                seq = epoch.sent
                epoch.sent += 1  # counted once written: send() writes before it drains
                await session.send(
                    [
                        ("Event", TICK),
                        ("Privilege", "user,all"),
                        ("Epoch", str(number)),
                        ("Seq", str(seq)),
                    ]
                )
            await asyncio.sleep(0.01)

    # -- faults --------------------------------------------------------------------------

    async def wait_lost(self, timeout: float) -> bool:
        waiter = asyncio.get_running_loop().create_future()
        self._lost_waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def faults(self, proxy: FaultProxy, client: Client) -> None:
        rng, args, stats = self.rng, self.args, self.stats
        kinds = ("cut", "stall", "restart", "fragment", "delay", "throttle")
        weights = (4, 3, 1, 2, 1, 1)

        async def hold(low: float, high: float) -> None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), rng.uniform(low, high))

        while not self.stop.is_set():
            await hold(args.fault_gap / 2, args.fault_gap * 1.5)
            if self.stop.is_set():
                break
            kind = rng.choices(kinds, weights)[0]
            stats.faults[kind] += 1
            if kind == "cut":
                proxy.cut(reset=rng.random() < 0.5)
            elif kind == "restart":  # the server goes away for a while
                proxy.refuse()
                proxy.cut()
                await hold(0.5, 3.0)
                proxy.refuse(False)
            elif kind == "stall":  # a half-open link: only the keepalive can tell
                try:
                    await client.wait_connected(timeout=30)
                except TimeoutError:
                    continue
                proxy.stall(rng.choice(("both", "to_client")))
                self._stalling = True
                started = time.monotonic()
                # Only ordinary actions are in flight (the Originate is async): the
                # keepalive's bound is ping_interval + ping_timeout + 1 s from the
                # last byte; one more second for a loaded machine.
                limit = args.ping_interval + args.ping_timeout + 1.0 + 1.0
                if await self.wait_lost(limit):
                    stats.stall_detect.append(time.monotonic() - started)
                else:
                    stats.stalls_undetected += 1
                await hold(0.0, 0.5)
                proxy.resume(flush=rng.random() < 0.5)
                self._stalling = False
            elif kind == "fragment":
                proxy.fragment(
                    rng.randint(1, 64),
                    randomize=True,
                    seed=rng.randrange(1 << 32),
                    direction="both",
                )
                await hold(1.0, 4.0)
                proxy.fragment(None, direction="both")
            elif kind == "delay":
                proxy.delay(rng.uniform(0.005, min(0.1, args.ping_timeout / 4)))
                await hold(1.0, 4.0)
                proxy.delay(0)
            else:
                proxy.throttle(rng.uniform(150_000, 400_000))
                await hold(1.0, 4.0)
                proxy.throttle(None)
        proxy.heal()

    # -- the run ---------------------------------------------------------------------------

    async def report_progress(self, started: float, client: Client) -> None:
        every = self.args.progress
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), every)
            s = self.stats
            sent = sum(e.sent for e in s.epochs.values())
            received = sum(e.received for e in s.epochs.values())
            print(
                f"  [{time.monotonic() - started:6.0f} s] actions {s.sent} "
                f"(answered {s.answered}, lost {s.lost}, timeout {s.timed_out}) "
                f"events {received}/{sent} reconnects {client.reconnects} "
                f"RSS {mib(rss_kib())}",
                flush=True,
            )

    async def run(self) -> int:
        args = self.args
        await self.fake.start()
        self.proxy = proxy = FaultProxy(self.fake.host, self.fake.port)
        await proxy.start()
        self.client = client = Client(
            proxy.host,
            proxy.port,
            username=USER,
            secret=SECRET,
            reconnect=True,
            reconnect_delay=0.1,
            reconnect_max_delay=1.0,
            ping_interval=args.ping_interval,
            ping_timeout=args.ping_timeout,
            timeout=args.connect_timeout,
            action_timeout=args.action_timeout,
            on_disconnect=self.on_disconnect,
        )
        consumer = asyncio.ensure_future(self.consume(client))
        await client.connect()
        rss_start = rss_kib()
        started = time.monotonic()
        print(
            f"soak: {args.seconds:g} s, seed {args.seed}, {args.workers} workers, "
            f"{args.event_rate:g} events/s, ping every {args.ping_interval:g} s "
            f"(timeout {args.ping_timeout:g} s), a fault every ~{args.fault_gap:g} s",
            flush=True,
        )
        background: list[asyncio.Task[None]] = [
            asyncio.ensure_future(self.sessions()),
            asyncio.ensure_future(self.faults(proxy, client)),
            asyncio.ensure_future(self.report_progress(started, client)),
        ]
        workers = [
            asyncio.ensure_future(self.worker(client, random.Random(args.seed * 1000 + i)))
            for i in range(args.workers)
        ]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), args.seconds)
        self.stop.set()
        elapsed = time.monotonic() - started

        # Let every action in flight finish: none may hang.
        _, hung = await asyncio.wait(workers, timeout=args.action_timeout + 10)
        for task in hung:
            task.cancel()
        crashed = [
            f"{type(r).__name__}: {r}"
            for r in await asyncio.gather(*workers, *background, return_exceptions=True)
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        # The faults are healed: the client must be back, and the events
        # already written are still on their way to it.
        try:
            await client.wait_connected(timeout=args.connect_timeout + 10)
            back = True
        except Exception:
            back = False
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drained(client), 5.0)
        pending = client.pending_actions
        rss_end, rss_peak = rss_kib(), rss_kib("VmHWM")
        reconnects = client.reconnects
        await client.close()
        await asyncio.wait_for(consumer, 5.0)
        await proxy.close()
        await self.fake.close()
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return self.print_report(
            elapsed,
            len(hung),
            crashed,
            back,
            pending,
            reconnects,
            rss_start,
            rss_end,
            rss_peak,
            leftover,
        )

    async def _drained(self, client: Client) -> None:
        """Wait until the newest connection's events have all arrived (if it is still up)."""
        while client.connected and self.stats.epochs:
            newest = self.stats.epochs[max(self.stats.epochs)]
            if newest.received >= newest.sent:
                return
            await asyncio.sleep(0.02)

    def print_report(
        self,
        elapsed: float,
        hung: int,
        crashed: list[str],
        back: bool,
        pending: int,
        reconnects: int,
        rss_start: int,
        rss_end: int,
        rss_peak: int,
        leftover: list[asyncio.Task[Any]],
    ) -> int:
        s = self.stats
        assert self.proxy is not None
        failed = s.lost + s.timed_out + sum(s.other.values())
        balanced = s.sent == s.answered + failed
        epochs = list(s.epochs.values())
        ev_sent = sum(e.sent for e in epochs)
        ev_received = sum(e.received for e in epochs)
        gaps = sum(e.gaps for e in epochs)
        disorder = sum(e.disorder for e in epochs)
        tail_lost = sum(e.sent - e.next_seq for e in epochs)
        complete = sum(1 for e in epochs if e.received == e.sent)
        ok_events = gaps == 0 and disorder == 0 and s.stale_events == 0
        # The keepalive's contract: a stall is found within its bound, a live link never lost.
        keepalive_ok = s.stalls_undetected == 0 and s.keepalive_outside_stalls == 0
        verdicts = [
            balanced,
            ok_events,
            back,
            keepalive_ok,
            pending == 0,
            hung == 0,
            not crashed,
            not leftover,
        ]

        def line(label: str, value: object) -> None:
            print(f"{label:<44} {value}")

        def verdict(good: bool) -> str:
            return "OK" if good else "MISMATCH"

        print()
        print(f"=== soak result after {elapsed:.1f} s (seed {self.args.seed})")
        line("faults injected", dict(sorted(s.faults.items())))
        if s.stall_detect:
            detect = sorted(s.stall_detect)
            line(
                "stalls detected by the keepalive",
                f"{len(detect)}/{len(detect) + s.stalls_undetected} "
                f"(after {statistics.median(detect):.2f} s median, {detect[-1]:.2f} s max; "
                f"bound ping_interval + ping_timeout + 1 s = "
                f"{self.args.ping_interval + self.args.ping_timeout + 1.0:g} s)",
            )
        line("actions sent", f"{s.sent} {dict(sorted(s.by_kind.items()))}")
        line("  answered", s.answered)
        line("  failed with ConnectionLostError", s.lost)
        line("  failed with ActionTimeoutError", s.timed_out)
        line("  failed otherwise", f"{sum(s.other.values())} {dict(s.other) if s.other else ''}")
        line("  still running at the end (hung)", hung)
        line(
            "  sent == answered + failed",
            f"{s.sent} == {s.answered} + {failed}: {verdict(balanced)}",
        )
        line("events sent by the server", f"{ev_sent} over {len(epochs)} connections")
        line("  received by the client", ev_received)
        line(
            "  lost in flight when a connection ended", f"{tail_lost} (each lost tail ends a link)"
        )
        line("  connections with every event received", f"{complete}/{len(epochs)}")
        line(
            "  gaps / reordered / from a dead link",
            f"{gaps} / {disorder} / {s.stale_events}: {verdict(ok_events)}",
        )
        line("  subscription overflow", s.overflow)
        line("reconnects (client.reconnects)", f"{reconnects} ({s.disconnects} disconnects seen)")
        line("  connected again after the faults stopped", verdict(back))
        line("disconnect causes", dict(s.causes.most_common(6)))
        line(
            "keepalive losses outside a stall",
            f"{s.keepalive_outside_stalls}: {verdict(s.keepalive_outside_stalls == 0)}",
        )
        if s.stalls_undetected:
            line("stalls not detected in time", f"{s.stalls_undetected}: {verdict(False)}")
        line("waits for a connection > 1 s (workers)", s.waits_not_connected)
        p = self.proxy
        line(
            "proxy",
            f"accepted {p.connections_accepted}, cut {p.cuts}, "
            f"to server {p.bytes_to_server / 1e6:.1f} MB, "
            f"to client {p.bytes_to_client / 1e6:.1f} MB, dropped {p.bytes_dropped} B",
        )
        line("resident memory (VmRSS) start -> end", f"{mib(rss_start)} -> {mib(rss_end)}")
        line("  peak (VmHWM)", mib(rss_peak))
        line("client.pending_actions at the end", f"{pending}: {verdict(pending == 0)}")
        line("tasks left after close", f"{len(leftover)}: {verdict(not leftover)}")
        line("soak tasks that crashed", f"{len(crashed)}: {verdict(not crashed)} {crashed or ''}")
        for task in leftover:
            print(f"    {task!r}")
        if self.log_counter.counts:
            print("log records (count, level, logger, message):")
            for (level, name, msg), count in self.log_counter.counts.most_common(12):
                print(f"    {count:6d} {level:<8} {name:<10} {msg[:80]}")
        ok = all(verdicts)
        print(f"=== {'OK' if ok else 'MISMATCH'}")
        return 0 if ok else 1

    log_counter: LogCounter


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    arg: Callable[..., Any] = parser.add_argument
    arg("--seconds", type=float, default=600.0, help="how long to run (default 600)")
    arg("--seed", type=int, default=1, help="random seed for the faults and actions")
    arg("--workers", type=int, default=4, help="tasks sending actions (default 4)")
    arg("--action-pause", type=float, default=0.0, help="pause after each action (s)")
    arg("--event-rate", type=float, default=500.0, help="events per second per connection")
    arg("--fault-gap", type=float, default=3.0, help="mean seconds between faults")
    arg("--ping-interval", type=float, default=1.0, help="client keepalive interval (s)")
    arg("--ping-timeout", type=float, default=0.5, help="client keepalive timeout (s)")
    arg("--action-timeout", type=float, default=5.0, help="timeout of each action (s)")
    arg("--connect-timeout", type=float, default=2.0, help="client connect/login timeout (s)")
    arg("--progress", type=float, default=30.0, help="seconds between progress lines")
    arg("-v", "--verbose", action="store_true", help="show the client's log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counter = LogCounter()
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(counter)
    if args.verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(relativeCreated)8.0f %(levelname)s %(message)s"))
        root.addHandler(handler)
    soak = Soak(args)
    soak.log_counter = counter
    return asyncio.run(soak.run())


if __name__ == "__main__":
    sys.exit(main())
