"""Benchmarks: ami_async against panoramisk and a minimal parser, on real Asterisk 22 traffic.

``python benchmarks/run.py`` (after ``pip install -e '.[bench]'``) starts the
load server (``loadserver.py``) in its own process and one worker process per
client, then runs every scenario ``--repeat`` times for each client, in turn,
and prints the medians as a table with the ratios to the baseline (``--json
FILE`` writes everything). Only one client runs at a time: on a 2-core machine
the server has one core and the client under test the other.

Clients:

``ours``
    ``ami_async.Client``.
``panoramisk``
    ``panoramisk.Manager`` (1.4), used through its real API:
    ``register_event(pattern, callback)`` and ``send_action(dict) -> Future``.
    It has no subscription object, so a "subscription" is a callback feeding an
    ``asyncio.Queue`` read by a task (what its users write).
``baseline``
    :class:`BaselineProtocol` below: split frames on ``b"\\r\\n\\r\\n"``, split
    lines, partition into a dict, hand each event to one callback; a dict of
    ActionID -> future for answers. No subscriptions, no error handling: the
    bar to beat, not a peer. Its rows for (a), (b) and (c) all use that one callback.

Scenarios (``--scenarios`` takes names or letters):

a  ``events_all``       catch-all subscription (``client.events()``), reading ``ev.name``
a' ``events_all_read``  the same, the consumer also reads one header (``Uniqueid``)
b  ``handler_sync``     ``client.on("*")`` with a sync handler
b' ``handler_async``    ``client.on("*")`` with an async handler
c  ``events_one``       ``client.events("Hangup")``: one name of the stream's 21 kinds
d  ``ping_seq``         sequential Ping round trips: p50 / p99
e  ``ping_flight``      20 000 Pings, 500 in flight
f  ``list``             a 10 000-item EventList (``collect("CoreShowChannels")``)
g  ``memory``           tracemalloc: bytes per pending action and per queued event
h  ``reconnect``        server restart -> client ready again (``reconnect=True``)

Throughput scenarios time from sending the flood request to the last event
consumed (wall clock) and the client process's CPU time over the same span.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import loadserver

HOST = "127.0.0.1"
USER, SECRET = "admin", "amp111"
CLIENTS = ("ours", "panoramisk", "baseline")
#: Seconds any single wait may take before the run is declared stuck.
STUCK = 120.0

OnReady = Callable[[], None]


# -- what is measured ----------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    fmt: str = "{:,.0f}"


@dataclass(frozen=True)
class Scenario:
    name: str
    letter: str
    title: str
    metrics: tuple[Metric, ...]


_EVS = Metric("events_per_s", "events/s", True)
_CPU = Metric("cpu_us_per_event", "CPU µs/event", False, "{:.2f}")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("events_all", "a", "(a) catch-all events()", (_EVS, _CPU)),
        Scenario(
            "events_all_read", "a'", "(a') catch-all events(), reading a header", (_EVS, _CPU)
        ),
        Scenario("handler_sync", "b", '(b) on("*") sync handler', (_EVS, _CPU)),
        Scenario("handler_async", "b'", '(b\') on("*") async handler', (_EVS, _CPU)),
        Scenario("events_one", "c", "(c) events(one name of 21)", (_EVS, _CPU)),
        Scenario(
            "ping_seq",
            "d",
            "(d) sequential Ping",
            (
                Metric("p50_us", "p50 µs", False, "{:.0f}"),
                Metric("p99_us", "p99 µs", False, "{:.0f}"),
            ),
        ),
        Scenario(
            "ping_flight",
            "e",
            "(e) Pings, many in flight",
            (
                Metric("pings_per_s", "pings/s", True),
                Metric("cpu_us_per_ping", "CPU µs/ping", False, "{:.1f}"),
            ),
        ),
        Scenario(
            "list",
            "f",
            "(f) EventList via collect()",
            (
                Metric("ms", "ms", False, "{:.1f}"),
                Metric("cpu_us_per_item", "CPU µs/item", False, "{:.2f}"),
            ),
        ),
        Scenario(
            "memory",
            "g",
            "(g) memory (tracemalloc)",
            (
                Metric("bytes_per_pending_action", "B/pending action", False),
                Metric("bytes_per_queued_event", "B/queued event", False),
                Metric("bytes_per_queued_event_read", "B/queued event, header read", False),
            ),
        ),
        Scenario(
            "reconnect",
            "h",
            "(h) server restart -> ready",
            (
                Metric("ready_after_up_ms", "ms after server is back", False, "{:.2f}"),
                Metric("ready_after_drop_ms", "ms after the drop", False, "{:.2f}"),
            ),
        ),
    )
}


@dataclass
class Params:
    """Sizes; the defaults are the issue's (``--quick`` shrinks them)."""

    events: int = 100_000
    name: str = "Hangup"
    pings: int = 2_000
    flight_total: int = 20_000
    in_flight: int = 500
    list_items: int = 10_000
    memory_actions: int = 10_000
    memory_events: int = 20_000
    downtime: float = 0.0
    reconnect_delay: float = 0.001
    loop: str = "asyncio"
    #: Expected count of ``name`` in the first ``events`` events (filled in by the runner).
    expected_one: int = 0


QUICK: dict[str, Any] = {
    "events": 20_000,
    "pings": 500,
    "flight_total": 5_000,
    "list_items": 2_000,
    "memory_actions": 2_000,
    "memory_events": 5_000,
}


# -- the baseline: a minimal parser ----------------------------------------------------------


class BaselineProtocol(asyncio.Protocol):
    """Split frames, split lines, partition into a dict; route by ActionID; nothing else."""

    def __init__(self, on_event: Callable[[dict[str, str]], None], on_lost: OnReady) -> None:
        self.on_event = on_event
        self.on_lost = on_lost
        self.buf = b""
        self.banner: str | None = None
        self.pending: dict[str, asyncio.Future[dict[str, str]]] = {}
        self.lists: dict[str, list[dict[str, str]]] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an asyncio.Transport subclass under uvloop: duck-typed.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if self.banner is None:
            eol = buf.find(b"\r\n")
            if eol < 0:
                self.buf = buf
                return
            self.banner = buf[:eol].decode()
            buf = buf[eol + 2 :]
        frames = buf.split(b"\r\n\r\n")
        self.buf = frames.pop()
        for frame in frames:
            msg: dict[str, str] = {}
            for line in frame.decode().split("\r\n"):
                key, _, value = line.partition(": ")
                msg[key] = value
            if "Event" in msg:
                aid = msg.get("ActionID")
                items = self.lists.get(aid) if aid is not None else None
                if items is None:
                    self.on_event(msg)
                elif msg.get("EventList") == "Complete":
                    del self.lists[aid]  # type: ignore[arg-type]
                    self.pending.pop(aid).set_result(msg)  # type: ignore[arg-type]
                else:
                    items.append(msg)
            elif msg.get("ActionID") not in self.lists:
                fut = self.pending.pop(msg.get("ActionID", ""), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection lost"))
                fut.exception()
        self.pending.clear()
        self.on_lost()


class BaselineClient:
    """Connect, log in, send actions; reconnects (fixed delay) when asked to."""

    def __init__(self, port: int, on_event: Callable[[dict[str, str]], None]) -> None:
        self.port = port
        self.on_event = on_event
        self.protocol: BaselineProtocol | None = None
        self.counter = 0
        self.reconnect = False
        self.delay = 0.0
        self.on_ready: OnReady | None = None
        self.closing = False

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(
            lambda: BaselineProtocol(lambda msg: self.on_event(msg), self._lost), HOST, self.port
        )
        self.protocol = protocol
        response = await self.action("Login", Username=USER, Secret=SECRET)
        if response.get("Response") != "Success":
            raise ConnectionError(f"login refused: {response}")
        if self.on_ready is not None:
            self.on_ready()

    def _lost(self) -> None:
        self.protocol = None
        if self.reconnect and not self.closing:
            asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.delay)
            try:
                await self.connect()
                return
            except (OSError, ConnectionError):
                continue

    def _future(self, protocol: BaselineProtocol, aid: str) -> asyncio.Future[dict[str, str]]:
        fut: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        protocol.pending[aid] = fut
        return fut

    async def action(self, name: str, **headers: object) -> dict[str, str]:
        protocol = self.protocol
        if protocol is None:
            raise ConnectionError("not connected")
        self.counter += 1
        aid = f"b-{self.counter}"
        fut = self._future(protocol, aid)
        lines = [f"Action: {name}", f"ActionID: {aid}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        assert protocol.transport is not None
        protocol.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return await fut

    async def collect(self, name: str, **headers: object) -> list[dict[str, str]]:
        protocol = self.protocol
        if protocol is None:
            raise ConnectionError("not connected")
        self.counter += 1
        aid = f"b-{self.counter}"
        items: list[dict[str, str]] = []
        protocol.lists[aid] = items
        fut = self._future(protocol, aid)
        lines = [f"Action: {name}", f"ActionID: {aid}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        assert protocol.transport is not None
        protocol.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await fut
        return items

    async def close(self) -> None:
        self.closing = True
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()
        await asyncio.sleep(0)


# -- drivers: one interface over the three clients -------------------------------------------


class Done:
    """Counts consumed events; ``wait()`` returns once ``target`` were seen."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if target <= 0:
            self.future.set_result(None)

    def hit(self) -> None:
        self.count += 1
        if self.count == self.target:
            self.future.set_result(None)

    async def wait(self) -> None:
        await self.future


class Driver:
    """The operations the scenarios need, for one client library."""

    name = ""

    async def connect(
        self,
        port: int,
        *,
        reconnect: bool = False,
        delay: float = 0.0,
        on_ready: OnReady | None = None,
    ) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def action(self, name: str, **headers: object) -> Mapping[str, str]:
        raise NotImplementedError

    async def ping(self) -> None:
        await self.action("Ping")

    async def flood(self, n: int) -> None:
        await self.action("BenchFlood", Count=n)

    async def collect(self, n: int) -> int:
        raise NotImplementedError

    def sink(self, mode: str, done: Done, name: str) -> None:
        """Deliver events to ``done`` through ``mode``: sub, sub_read, sync, async, one."""
        raise NotImplementedError

    def hold(self) -> None:
        """Keep every event queued and unread (memory scenario)."""
        raise NotImplementedError

    def read_held(self) -> list[Any]:
        """Take the held events out of their queue and read one header of each."""
        raise NotImplementedError


class OursDriver(Driver):
    name = "ours"

    def __init__(self) -> None:
        self.client: Any = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.held: Any = None

    async def connect(
        self,
        port: int,
        *,
        reconnect: bool = False,
        delay: float = 0.001,  # ignored without reconnect; 0 is refused (issue 9, item 15)
        on_ready: OnReady | None = None,
    ) -> None:
        import ami_async

        self.client = ami_async.Client(
            HOST,
            port,
            username=USER,
            secret=SECRET,
            reconnect=reconnect,
            reconnect_delay=delay,
            ping_interval=None,
            action_timeout=STUCK,
        )
        if on_ready is not None:
            self.client.add_connect_hook(lambda _client: on_ready())
        await self.client.connect()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.client.close()

    async def action(self, name: str, **headers: object) -> Mapping[str, str]:
        response: Mapping[str, str] = await self.client.send_action(name, **headers)
        return response

    async def ping(self) -> None:
        await self.client.ping()

    async def collect(self, n: int) -> int:
        result = await self.client.collect("CoreShowChannels", BenchItems=n)
        return len(result)

    def sink(self, mode: str, done: Done, name: str) -> None:
        client = self.client
        size = done.target + 64
        hit = done.hit
        if mode in ("sub", "sub_read", "one"):
            sub = (
                client.events(name, maxsize=size) if mode == "one" else client.events(maxsize=size)
            )
            read = mode == "sub_read"

            async def consume() -> None:
                async for ev in sub:
                    ev.name  # noqa: B018 - what every consumer looks at
                    if read:
                        ev.get("Uniqueid")
                    hit()

            self.tasks.append(asyncio.ensure_future(consume()))
        elif mode == "sync":

            def handler(ev: Any) -> None:
                hit()

            client.on("*", maxsize=size)(handler)
        elif mode == "async":

            async def async_handler(ev: Any) -> None:
                hit()

            client.on("*", maxsize=size)(async_handler)
        else:
            raise ValueError(mode)

    def hold(self) -> None:
        self.held = self.client.events(maxsize=10_000_000)

    def read_held(self) -> list[Any]:
        events = []
        while (ev := self.held.get_nowait()) is not None:
            ev.get("Uniqueid")
            events.append(ev)
        return events


class PanoramiskDriver(Driver):
    name = "panoramisk"

    def __init__(self) -> None:
        self.manager: Any = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.held: asyncio.Queue[Any] | None = None

    async def connect(
        self,
        port: int,
        *,
        reconnect: bool = False,
        delay: float = 0.0,
        on_ready: OnReady | None = None,
    ) -> None:
        from panoramisk import Manager

        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_login(_manager: Any) -> None:
            if not ready.done():
                ready.set_result(None)
            if on_ready is not None:
                on_ready()

        self.manager = Manager(
            loop=loop,
            host=HOST,
            port=port,
            username=USER,
            secret=SECRET,
            ping_delay=3600,
            ping_interval=3600,
            on_login=on_login,
            log=logging.getLogger("bench.panoramisk"),
        )
        # Its constructor takes whole seconds only (int()); the attribute is what it uses.
        self.manager.reconnect_timeout = delay
        await self.manager.connect()
        await ready

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.manager.close()
        await asyncio.sleep(0)

    async def action(self, name: str, **headers: object) -> Mapping[str, str]:
        response: Mapping[str, str] = await self.manager.send_action({"Action": name, **headers})
        return response

    async def collect(self, n: int) -> int:
        messages = await self.manager.send_action({"Action": "CoreShowChannels", "BenchItems": n})
        return len(messages) - 2  # the response and the Complete marker come with the items

    def sink(self, mode: str, done: Done, name: str) -> None:
        manager = self.manager
        hit = done.hit
        if mode in ("sub", "sub_read", "one"):
            queue: asyncio.Queue[Any] = asyncio.Queue()
            manager.register_event(
                name if mode == "one" else "*", lambda _m, ev: queue.put_nowait(ev)
            )
            read = mode == "sub_read"

            async def consume() -> None:
                while True:
                    ev = await queue.get()
                    ev.event  # noqa: B018 - the name, what every consumer looks at
                    if read:
                        ev.get("Uniqueid")
                    hit()

            self.tasks.append(asyncio.ensure_future(consume()))
        elif mode == "sync":
            manager.register_event("*", lambda _m, ev: hit())
        elif mode == "async":

            async def async_handler(_m: Any, ev: Any) -> None:
                hit()

            manager.register_event("*", async_handler)
        else:
            raise ValueError(mode)

    def hold(self) -> None:
        held: asyncio.Queue[Any] = asyncio.Queue()
        self.manager.register_event("*", lambda _m, ev: held.put_nowait(ev))
        self.held = held

    def read_held(self) -> list[Any]:
        assert self.held is not None
        events = []
        while not self.held.empty():
            ev = self.held.get_nowait()
            ev.get("Uniqueid")
            events.append(ev)
        return events


class BaselineDriver(Driver):
    name = "baseline"

    def __init__(self) -> None:
        self.client: BaselineClient | None = None
        self.callback: Callable[[dict[str, str]], None] = lambda msg: None
        self.held: deque[dict[str, str]] = deque()

    async def connect(
        self,
        port: int,
        *,
        reconnect: bool = False,
        delay: float = 0.0,
        on_ready: OnReady | None = None,
    ) -> None:
        self.client = BaselineClient(port, lambda msg: self.callback(msg))
        self.client.reconnect = reconnect
        self.client.delay = delay
        self.client.on_ready = on_ready
        await self.client.connect()

    async def close(self) -> None:
        assert self.client is not None
        await self.client.close()

    async def action(self, name: str, **headers: object) -> Mapping[str, str]:
        assert self.client is not None
        return await self.client.action(name, **headers)

    async def collect(self, n: int) -> int:
        assert self.client is not None
        items = await self.client.collect("CoreShowChannels", BenchItems=n)
        return len(items)

    def sink(self, mode: str, done: Done, name: str) -> None:
        hit = done.hit
        if mode == "sub_read":

            def callback(msg: dict[str, str]) -> None:
                msg.get("Uniqueid")
                hit()

        elif mode == "one":

            def callback(msg: dict[str, str]) -> None:
                if msg["Event"] == name:
                    hit()

        else:

            def callback(msg: dict[str, str]) -> None:
                hit()

        self.callback = callback

    def hold(self) -> None:
        self.callback = self.held.append

    def read_held(self) -> list[Any]:
        events = list(self.held)
        self.held.clear()
        for ev in events:
            ev.get("Uniqueid")
        return events


DRIVERS: dict[str, Callable[[], Driver]] = {
    "ours": OursDriver,
    "panoramisk": PanoramiskDriver,
    "baseline": BaselineDriver,
}


# -- the scenarios -------------------------------------------------------------------------------

Result = dict[str, Any]

_FLOOD_MODES = {
    "events_all": "sub",
    "events_all_read": "sub_read",
    "handler_sync": "sync",
    "handler_async": "async",
    "events_one": "one",
}


async def _settle(driver: Driver) -> None:
    """One round trip: everything the server sent before (login events) has been read."""
    await driver.ping()


async def scenario_flood(driver: Driver, port: int, p: Params, mode: str) -> Result:
    await driver.connect(port)
    try:
        await _settle(driver)
        done = Done(p.expected_one if mode == "one" else p.events)
        driver.sink(mode, done, p.name)
        server_cpu = float((await driver.action("BenchInfo"))["CPUTime"])
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        await driver.flood(p.events)
        await done.wait()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        server_cpu = float((await driver.action("BenchInfo"))["CPUTime"]) - server_cpu
    finally:
        await driver.close()
    return {
        "events_per_s": p.events / wall,
        "cpu_us_per_event": cpu / p.events * 1e6,
        "delivered": done.count,
        "wall_s": wall,
        "cpu_s": cpu,
        "server_cpu_s": server_cpu,
    }


async def scenario_ping_seq(driver: Driver, port: int, p: Params) -> Result:
    await driver.connect(port)
    try:
        for _ in range(min(100, p.pings)):
            await driver.ping()
        samples = []
        clock = time.perf_counter_ns
        for _ in range(p.pings):
            t0 = clock()
            await driver.ping()
            samples.append(clock() - t0)
    finally:
        await driver.close()
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1000,
    }


async def scenario_ping_flight(driver: Driver, port: int, p: Params) -> Result:
    await driver.connect(port)
    per_worker, extra = divmod(p.flight_total, p.in_flight)

    async def worker(count: int) -> None:
        for _ in range(count):
            await driver.ping()

    try:
        await _settle(driver)
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(per_worker + (i < extra)) for i in range(p.in_flight)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await driver.close()
    return {"pings_per_s": p.flight_total / wall, "cpu_us_per_ping": cpu / p.flight_total * 1e6}


async def scenario_list(driver: Driver, port: int, p: Params) -> Result:
    await driver.connect(port)
    try:
        await _settle(driver)
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        items = await driver.collect(p.list_items)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await driver.close()
    if items != p.list_items:
        raise RuntimeError(f"{driver.name}: got {items} list items of {p.list_items}")
    return {"ms": wall * 1000, "cpu_us_per_item": cpu / p.list_items * 1e6}


def _traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


async def scenario_memory(driver: Driver, port: int, p: Params) -> Result:
    """Traced bytes per pending action (its awaiting task included) and per queued event."""
    await driver.connect(port)
    try:
        await _settle(driver)
        # Pending actions: the server never answers BenchStall.
        tracemalloc.start()
        before = _traced()
        tasks = [
            asyncio.ensure_future(driver.action("BenchStall")) for _ in range(p.memory_actions)
        ]
        await driver.ping()  # every stall was written before this Ping
        per_action = (_traced() - before) / p.memory_actions
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        tracemalloc.stop()
        del tasks
        # Queued events: held in the subscription's queue, unread.
        driver.hold()
        await driver.ping()
        tracemalloc.start()
        before = _traced()
        await driver.flood(p.memory_events)
        per_event = (_traced() - before) / p.memory_events
        events = driver.read_held()
        per_event_read = (_traced() - before) / p.memory_events
        tracemalloc.stop()
        if len(events) != p.memory_events:
            raise RuntimeError(f"{driver.name}: held {len(events)} events of {p.memory_events}")
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        await driver.close()
    return {
        "bytes_per_pending_action": per_action,
        "bytes_per_queued_event": per_event,
        "bytes_per_queued_event_read": per_event_read,
    }


async def scenario_reconnect(driver: Driver, port: int, p: Params) -> Result:
    """``BenchRestart``: the server drops everything, listens again; time to ready."""
    ready_at: list[float] = []
    ready = asyncio.Event()

    def on_ready() -> None:
        ready_at.append(time.monotonic())
        ready.set()

    await driver.connect(port, reconnect=True, delay=p.reconnect_delay, on_ready=on_ready)
    try:
        await _settle(driver)
        ready.clear()
        await driver.action("BenchRestart", Downtime=p.downtime)
        await ready.wait()
        info = await driver.action("BenchInfo")
    finally:
        await driver.close()
    up, down = float(info["LastUp"]), float(info["LastDown"])
    return {
        "ready_after_up_ms": (ready_at[-1] - up) * 1000,
        "ready_after_drop_ms": (ready_at[-1] - down) * 1000,
    }


def _scenario_coro(name: str, driver: Driver, port: int, p: Params) -> Coroutine[Any, Any, Result]:
    if name in _FLOOD_MODES:
        return scenario_flood(driver, port, p, _FLOOD_MODES[name])
    funcs: dict[str, Callable[[Driver, int, Params], Coroutine[Any, Any, Result]]] = {
        "ping_seq": scenario_ping_seq,
        "ping_flight": scenario_ping_flight,
        "list": scenario_list,
        "memory": scenario_memory,
        "reconnect": scenario_reconnect,
    }
    return funcs[name](driver, port, p)


def run_scenario(name: str, client: str, port: int, p: Params) -> Result:
    """One run of one scenario for one client, in this process, on a fresh event loop."""
    # One deadline for the whole run: no per-action timeouts added to the clients' own.
    coro = asyncio.wait_for(_scenario_coro(name, DRIVERS[client](), port, p), STUCK)
    if p.loop == "uvloop":
        import uvloop

        result: Result = uvloop.run(coro)
        return result
    return asyncio.run(coro)


# -- worker processes ------------------------------------------------------------------------------


def _quiet() -> None:
    logging.basicConfig(level=logging.CRITICAL)
    for name in ("ami_async", "panoramisk", "bench.panoramisk", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _worker_main(conn: multiprocessing.connection.Connection, client: str, cpu: int | None) -> None:
    loadserver.pin_to_cpu(cpu)
    _quiet()
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        name, port, params = job
        try:
            result = run_scenario(name, client, port, Params(**params))
        except Exception as exc:  # report it; the run goes on
            result = {"error": f"{type(exc).__name__}: {exc}"}
        conn.send(result)


class Worker:
    """One client library in its own process, running the jobs it is sent."""

    def __init__(self, client: str, cpu: int | None) -> None:
        self.client = client
        self.cpu = cpu
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_worker_main, args=(child, self.client, self.cpu), daemon=True
        )
        self.proc.start()
        child.close()

    def run(self, name: str, port: int, p: Params) -> Result:
        self.conn.send((name, port, asdict(p)))
        if self.conn.poll(STUCK + 60):
            result: Result = self.conn.recv()
            return result
        self.proc.kill()
        self.proc.join()
        self._start()
        return {"error": f"stuck for {STUCK + 60:.0f} s; worker restarted"}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


# -- the run and its report ------------------------------------------------------------


@dataclass
class Report:
    params: Params
    clients: tuple[str, ...]
    repeat: int
    runs: dict[str, dict[str, list[Result]]] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)

    def median(self, scenario: str, client: str, key: str) -> float | None:
        values = [r[key] for r in self.runs.get(scenario, {}).get(client, []) if key in r]
        return statistics.median(values) if values else None

    def errors(self) -> Iterator[tuple[str, str, str]]:
        for scenario, per_client in self.runs.items():
            for client, results in per_client.items():
                for result in results:
                    if "error" in result:
                        yield scenario, client, result["error"]

    def to_json(self) -> dict[str, Any]:
        medians = {
            s: {
                c: {m.key: self.median(s, c, m.key) for m in SCENARIOS[s].metrics}
                for c in self.clients
            }
            for s in self.runs
        }
        return {
            "environment": self.environment,
            "params": asdict(self.params),
            "clients": list(self.clients),
            "repeat": self.repeat,
            "medians": medians,
            "runs": self.runs,
            "targets": [asdict(t) for t in targets(self)],
        }


def _fmt(metric: Metric, value: float | None) -> str:
    return "-" if value is None else metric.fmt.format(value)


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def _vs(metric: Metric, ours: float | None, other: float | None) -> str:
    """How many times better ours is than ``other`` (>1: better)."""
    if ours is None or other is None or not ours or not other:
        return "-"
    return f"{(ours / other if metric.higher_is_better else other / ours):.2f}x"


def table(report: Report) -> str:
    clients = report.clients
    head = ["scenario", "metric", *clients]
    head += [f"{c} ÷ baseline" for c in clients if c != "baseline" and "baseline" in clients]
    if "ours" in clients and "panoramisk" in clients:
        head.append("ours vs panoramisk")
    rows = [head, ["---"] * 2 + ["---:"] * (len(head) - 2)]
    for name in report.runs:
        scenario = SCENARIOS[name]
        for i, metric in enumerate(scenario.metrics):
            values = {c: report.median(name, c, metric.key) for c in clients}
            arrow = "↑" if metric.higher_is_better else "↓"
            row = [scenario.title if i == 0 else "", f"{metric.label} {arrow}"]
            row += [_fmt(metric, values[c]) for c in clients]
            if "baseline" in clients:
                row += [_ratio(values[c], values["baseline"]) for c in clients if c != "baseline"]
            if "ours" in clients and "panoramisk" in clients:
                row.append(_vs(metric, values["ours"], values["panoramisk"]))
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            if row is rows[1]:
                cells.append("-" * widths[i] if i < 2 else "-" * (widths[i] - 1) + ":")
            elif i < 2:
                cells.append(cell.ljust(widths[i]))
            else:
                cells.append(cell.rjust(widths[i]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Target:
    text: str
    measured: str
    met: bool | None


def targets(report: Report) -> list[Target]:
    """The issue's targets, judged on the medians (None: not measured in this run)."""

    def m(scenario: str, client: str, key: str) -> float | None:
        return report.median(scenario, client, key)

    def check(text: str, a: float | None, b: float | None, op: str, factor: float) -> Target:
        if a is None or b is None or not b:
            return Target(text, "not measured", None)
        ratio = a / b
        met = ratio >= factor if op == ">=" else ratio <= factor
        return Target(text, f"{ratio:.2f}x", met)

    out = [
        check(
            "catch-all events/s ≥ 1.0x the minimal parser",
            m("events_all", "ours", "events_per_s"),
            m("events_all", "baseline", "events_per_s"),
            ">=",
            1.0,
        ),
        check(
            "catch-all events/s ≥ 4x panoramisk",
            m("events_all", "ours", "events_per_s"),
            m("events_all", "panoramisk", "events_per_s"),
            ">=",
            4.0,
        ),
        check(
            "CPU µs per event ≤ the minimal parser's",
            m("events_all", "ours", "cpu_us_per_event"),
            m("events_all", "baseline", "cpu_us_per_event"),
            "<=",
            1.0,
        ),
        check(
            "one-name-of-21 subscription ≥ 2x the minimal parser",
            m("events_one", "ours", "events_per_s"),
            m("events_one", "baseline", "events_per_s"),
            ">=",
            2.0,
        ),
        check(
            "ping p50 ≤ 1.3x the minimal parser",
            m("ping_seq", "ours", "p50_us"),
            m("ping_seq", "baseline", "p50_us"),
            "<=",
            1.3,
        ),
        check(
            "500-in-flight throughput ≥ 0.8x the minimal parser",
            m("ping_flight", "ours", "pings_per_s"),
            m("ping_flight", "baseline", "pings_per_s"),
            ">=",
            0.8,
        ),
        check(
            "10 000-item EventList ≥ 4x faster than panoramisk",
            m("list", "panoramisk", "ms"),
            m("list", "ours", "ms"),
            ">=",
            4.0,
        ),
    ]
    action = m("memory", "ours", "bytes_per_pending_action")
    event = m("memory", "ours", "bytes_per_queued_event")
    read = m("memory", "ours", "bytes_per_queued_event_read")
    if action is None or event is None:
        out.append(
            Target("memory per pending action and per queued event stated", "not measured", None)
        )
    else:
        out.append(
            Target(
                "memory per pending action and per queued event stated",
                f"{action:,.0f} B / action, {event:,.0f} B / event ({read or 0:,.0f} B read)",
                True,
            )
        )
    return out


def print_targets(report: Report) -> None:
    print("\nTargets (issue 6), on these medians:")
    for t in targets(report):
        mark = {True: "met", False: "NOT met", None: "-"}[t.met]
        print(f"  [{mark:>7}] {t.text}: {t.measured}")


def _select(spec: str) -> list[str]:
    by_letter = {s.letter: s.name for s in SCENARIOS.values()}
    chosen: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part == "all":
            chosen.extend(SCENARIOS)
            continue
        name = by_letter.get(part, part)
        if name not in SCENARIOS:
            raise SystemExit(f"unknown scenario {part!r}; choose from {', '.join(SCENARIOS)}")
        chosen.append(name)
    return list(dict.fromkeys(chosen))


def _environment(p: Params) -> dict[str, Any]:
    versions: dict[str, str] = {}
    for dist in ("ami-async", "panoramisk", "uvloop"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[dist] = version(dist)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        run = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True)
        git["commit"] = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run(["git", "status", "--porcelain", "ami_async"]).stdout.strip()
        git["ami_async"] = "modified" if dirty else "clean"
    return {
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git": git,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loop": p.loop,
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="ami_async benchmarks against panoramisk and a minimal parser.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios: " + ", ".join(f"{s.letter}={s.name}" for s in SCENARIOS.values()),
    )
    ap.add_argument(
        "--scenarios", default="all", help="comma-separated names or letters (default all)"
    )
    ap.add_argument(
        "--clients", default=",".join(CLIENTS), help="comma-separated (default all three)"
    )
    ap.add_argument("--repeat", type=int, default=5, help="runs per scenario and client (median)")
    ap.add_argument(
        "--quick", action="store_true", help="smaller sizes and 3 repeats: under a minute"
    )
    ap.add_argument("--events", type=int, help="events per flood (default 100000)")
    ap.add_argument("--name", help="the event name of scenario c (default Hangup)")
    ap.add_argument("--pings", type=int, help="sequential pings measured (default 2000)")
    ap.add_argument("--flight-total", type=int, help="pings in scenario e (default 20000)")
    ap.add_argument("--in-flight", type=int, help="pings in flight in scenario e (default 500)")
    ap.add_argument("--list-items", type=int, help="EventList size (default 10000)")
    ap.add_argument("--memory-actions", type=int, help="pending actions in g (default 10000)")
    ap.add_argument("--memory-events", type=int, help="queued events in g (default 20000)")
    ap.add_argument("--downtime", type=float, help="seconds the server stays down in h (default 0)")
    ap.add_argument(
        "--reconnect-delay", type=float, help="client reconnect delay in h, s (default 0.001)"
    )
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), help="event loop (default asyncio)")
    ap.add_argument(
        "--no-pin", action="store_true", help="do not pin the server to CPU 0 and clients to CPU 1"
    )
    ap.add_argument("--json", metavar="FILE", help="write all runs and medians as JSON")
    ap.add_argument("--one", metavar="SCENARIO", help="run one scenario once, in this process")
    ap.add_argument("--client", default="ours", help="with --one: which client (default ours)")
    ap.add_argument("--port", type=int, help="with --one: an already running load server")
    ap.add_argument("--profile", metavar="FILE", help="with --one: cProfile it, print the top")
    return ap.parse_args(argv)


def _params(args: argparse.Namespace) -> Params:
    p = Params(**(QUICK if args.quick else {}))
    overrides = {
        key: getattr(args, key)
        for key in (
            "events",
            "name",
            "pings",
            "flight_total",
            "in_flight",
            "list_items",
            "memory_actions",
            "memory_events",
            "downtime",
            "reconnect_delay",
            "loop",
        )
        if getattr(args, key) is not None
    }
    p = replace(p, **overrides)
    stream = loadserver.build_event_stream()
    return replace(p, expected_one=stream.count(p.name, p.events))


def _one(args: argparse.Namespace, p: Params) -> int:
    """``--one``: a single run here (for valgrind and cProfile), result as JSON on stdout."""
    _quiet()
    (name,) = _select(args.one)
    server = None
    port = args.port
    if port is None:
        server = loadserver.ServerProcess(list_items=p.list_items)
        port = server.port
    try:
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            result = profiler.runcall(run_scenario, name, args.client, port, p)
            profiler.dump_stats(args.profile)
            stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
            stats.sort_stats("cumulative").print_stats(30)
            stats.sort_stats("tottime").print_stats(25)
        else:
            result = run_scenario(name, args.client, port, p)
    finally:
        if server is not None:
            server.close()
    print(json.dumps(result))
    return 0 if "error" not in result else 1


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    p = _params(args)
    if args.one:
        return _one(args, p)
    names = _select(args.scenarios)
    clients = tuple(c.strip() for c in args.clients.split(",") if c.strip())
    for c in clients:
        if c not in DRIVERS:
            raise SystemExit(f"unknown client {c!r}; choose from {', '.join(DRIVERS)}")
    if "panoramisk" in clients:
        try:
            import panoramisk  # noqa: F401
        except ImportError:
            raise SystemExit("panoramisk is not installed: pip install -e '.[bench]'") from None
    repeat = 3 if args.quick and args.repeat == 5 else args.repeat
    report = Report(p, clients, repeat, environment=_environment(p))
    stream = loadserver.build_event_stream()
    print(
        f"stream: {len(stream)} real events/cycle, {len(stream.kinds())} kinds, "
        f"{stream.mean_size:.0f} B/event; {p.events:,} events per flood; "
        f"{p.expected_one:,} of them {p.name}; repeat {repeat}; loop {p.loop}",
        flush=True,
    )
    env = report.environment
    print(
        f"Python {env['python']}, {env['cpus']} CPUs, ami_async at {env['git'].get('commit', '?')} "
        f"({env['git'].get('ami_async', '?')}), "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        flush=True,
    )
    started = time.perf_counter()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = not args.no_pin and len(cpus) >= 2
    server_cpu, client_cpu = (cpus[0], cpus[1]) if pin else (None, None)
    report.environment["pinned"] = {"server": server_cpu, "client": client_cpu}
    with loadserver.ServerProcess(list_items=p.list_items, cpu=server_cpu) as server:
        workers = {c: Worker(c, client_cpu) for c in clients}
        try:
            for name in names:
                per_client: dict[str, list[Result]] = {c: [] for c in clients}
                report.runs[name] = per_client
                for r in range(repeat):
                    order = clients[r % len(clients) :] + clients[: r % len(clients)]
                    for c in order:
                        per_client[c].append(workers[c].run(name, server.port, p))
                summary = ", ".join(
                    f"{c} "
                    + "/".join(
                        _fmt(m, report.median(name, c, m.key)) for m in SCENARIOS[name].metrics
                    )
                    for c in clients
                )
                print(f"  {SCENARIOS[name].title}: {summary}", flush=True)
        finally:
            for w in workers.values():
                w.close()
    elapsed = time.perf_counter() - started
    if hasattr(os, "getloadavg"):
        report.environment["loadavg_end"] = os.getloadavg()
    load = report.environment.get("loadavg_end")
    busy = f"; load average {load[0]:.1f} on {os.cpu_count()} CPUs" if load else ""
    print(
        f"\nmedians of {repeat} runs ({elapsed:.0f} s{busy}; "
        "↑ higher is better, ↓ lower is better)\n"
    )
    print(table(report))
    print_targets(report)
    for scenario, client, error in report.errors():
        print(f"error: {scenario} / {client}: {error}", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report.to_json(), fh, indent=2)
        print(f"\nJSON written to {args.json}")
    return 1 if any(report.errors()) else 0


if __name__ == "__main__":
    sys.exit(main())
