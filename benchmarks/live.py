"""The cost of the live model: events/s, CPU and instructions per event, and memory.

Measures ``ami_async.live.Live`` following the benchmark's real event stream
(``loadserver.py``: every unsolicited event of the ``event_burst`` and
``dial_bridge`` captures, 21 kinds in their real proportions) against a bare
catch-all subscription of the same client reading the same stream:

``bare``
    ``client.events()`` (catch-all), a task reads each event's name: scenario
    (a) of ``run.py``, the yardstick.
``floor``
    a sync handler that does nothing, on the event names the model follows:
    what any in-line consumer of those events pays before it does anything.
``live``
    ``Live(client)``: snapshot (against the load server: empty lists, the
    actions it lacks are skipped), then every event the model follows.
``live_all``
    ``Live(client)`` and the catch-all subscription together: what the model
    adds on top of an application that reads every event anyway.
``live_changes``
    ``Live(client)`` and one task reading ``live.changes()``.

Time is from sending the flood request to the last event handled (the flood's
answer, which the server sends after the events, for the modes without a
catch-all reader); CPU is the client process's over the same span. Timings on
this shared 2-core machine move with its load; instructions do not::

    python benchmarks/live.py                           # events/s and CPU µs/event, medians of 5
    python benchmarks/live.py --instructions            # valgrind: instructions per event
    python benchmarks/live.py --instructions --cache-sim  # and simulated L1 cache misses
    python benchmarks/live.py --instructions --modes live --unfollow Newexten  # its cost
    python benchmarks/live.py --memory --calls 1000000  # a million short calls: RSS and objects
    python benchmarks/live.py --history 100             # Live(history=100): a smaller history
    python benchmarks/live.py --paired 30 --events 50000 # every mode open at once, floods in turns
    python benchmarks/live.py --one live --events 200000 --profile live.prof

``--instructions`` runs each mode in a client process under ``valgrind
--tool=cachegrind`` at two stream sizes (the load server outside valgrind) and
reports ``(I(large) - I(small)) / (large - small)``, as ``instructions.py``
does for ``run.py``. With ``--cache-sim``, cachegrind also simulates the
first-level caches of this CPU and the same difference gives the instruction
(I1) and data (D1) cache misses per event: how much code and data a mode
touches that the cache no longer holds, which instruction counts miss and
which, unlike timings, do not move with the machine's load. ``--unfollow
A,B`` (with ``--instructions`` or ``--one``) makes the model ignore the events
named, on purpose wrong: the difference is what following them costs.

``--memory`` feeds short calls (the answered call of ``dial_bridge.bin``,
every uniqueid, linkedid and bridge id made new for each call) straight into
the model, with no socket, and prints the resident memory and the model's
sizes as it goes.

``--paired ROUNDS`` is for this machine's noise, which comes in bursts of tens
of percent, so that two runs minutes apart compare badly. Every mode's client
is opened at once, each in its own process (``--serve``), and each round floods
them one after the other. It prints each mode's CPU time against the bare
subscription's in the same round (the median of those ratios, with quartiles)
and against the bare subscription's on a quiet machine (each mode's
20th-percentile flood: the one a fifth of them beat). The first round is a
warm-up and is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import loadserver
from instructions import _IREFS

HOST = "127.0.0.1"
MODES = ("bare", "floor", "live", "live_all", "live_changes")
#: `--paired`: seconds a child has to end once its input is closed, before it is killed.
CHILD_EXIT_WAIT = 10.0
HERE = Path(__file__).resolve()


# -- one run, in this process ------------------------------------------------------------------


class _Session:
    """One client in one mode, ready to measure floods one after another."""

    def __init__(
        self, mode: str, port: int, events: int, history: int = 1000, unfollow: Sequence[str] = ()
    ) -> None:
        self.mode, self.port, self.events, self.history = mode, port, events, history
        self.unfollow = tuple(unfollow)
        self.live: Any = None
        self.tasks: list[asyncio.Task[None]] = []
        self.counted = 0
        self._target = 0
        self._done: asyncio.Future[None] | None = None
        self._stream: Any = None

    async def open(self) -> None:
        import ami_async
        from ami_async.live import Live

        mode, events = self.mode, self.events
        self.client = client = ami_async.Client(
            HOST,
            self.port,
            username="admin",
            secret="amp111",
            ping_interval=None,
            action_timeout=120.0,
            event_queue_size=events + 64,
        )
        await client.connect()
        loop = asyncio.get_running_loop()
        await client.ping()  # the login events are read
        if mode == "floor":
            names = tuple(Live(client)._names)
            client.on(*names)(lambda ev: None)
        elif mode != "bare":
            self.live = Live(client, history=self.history, changes_maxsize=10 * events + 64)
            if self.unfollow:
                _unfollow(self.live, self.unfollow)
            await self.live.start()
        if mode in ("bare", "live_all"):
            sub = client.events(maxsize=events + 64)

            async def consume() -> None:
                async for ev in sub:
                    ev.name  # noqa: B018 - what every consumer looks at
                    self.counted += 1
                    if self.counted == self._target and self._done is not None:
                        self._done.set_result(None)

            self.tasks.append(loop.create_task(consume()))
        elif mode == "live_changes":
            self._stream = stream = self.live.changes()

            async def read_changes() -> None:
                async for _change in stream:
                    self.counted += 1

            self.tasks.append(loop.create_task(read_changes()))

    async def flood(self) -> dict[str, Any]:
        """Flood `events` events through the client: time and CPU from request to last event."""
        mode, events = self.mode, self.events
        self._done = asyncio.get_running_loop().create_future()
        self._target = self.counted + events
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        await self.client.send_action("BenchFlood", Count=events, timeout=120.0)
        if mode in ("bare", "live_all"):
            await asyncio.wait_for(self._done, 120.0)
        elif mode == "live_changes":
            for _ in range(10 * events):  # the reader drains what the flood queued
                if not self._stream.qsize():
                    break
                await asyncio.sleep(0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        result: dict[str, Any] = {
            "mode": mode,
            "events": events,
            "events_per_s": events / wall,
            "cpu_us_per_event": cpu / events * 1e6,
            "wall_s": wall,
            "cpu_s": cpu,
        }
        if self.live is not None:
            result["calls_ended"] = len(self.live.history)
            result["channels_left"] = len(self.live.channels)
        if mode == "live_changes":
            result["changes_read"] = self.counted
        return result

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.live is not None:
            self.live.close()
        await self.client.close()


def _unfollow(live: Any, names: Sequence[str]) -> None:
    """`--unfollow`: the model ignores the events `names`, as if it had no applier for them
    (what following each kind of event costs; the model is then wrong, on purpose)."""
    appliers = live._model._appliers
    unknown = sorted({name.lower() for name in names} - set(appliers))
    if unknown:
        raise SystemExit(f"--unfollow: the model does not follow {unknown}")
    for name in names:
        del appliers[name.lower()]
    live._names = tuple(appliers)


async def _run(
    mode: str, port: int, events: int, history: int = 1000, unfollow: Sequence[str] = ()
) -> dict[str, Any]:
    session = _Session(mode, port, events, history, unfollow)
    try:
        await session.open()
        return await session.flood()
    finally:
        if hasattr(session, "client"):
            await session.close()


async def _serve(mode: str, port: int, events: int, history: int) -> None:
    """`--serve`: a flood each time a line comes on stdin, its figures as a JSON line."""
    session = _Session(mode, port, events, history)
    await session.open()
    try:
        print(json.dumps({"ready": mode}), flush=True)
        while sys.stdin.readline().strip() == "flood":  # (blocking: nothing else runs meanwhile)
            print(json.dumps(await session.flood()), flush=True)
    finally:
        await session.close()


def run_one(
    mode: str, port: int, events: int, history: int = 1000, unfollow: Sequence[str] = ()
) -> dict[str, Any]:
    return asyncio.run(_run(mode, port, events, history, unfollow))


# -- timings: a worker process per run, the server on its own CPU -------------------------------


def _child(
    mode: str, port: int, events: int, cpu: int | None, history: int = 1000
) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--one", mode, "--port", str(port), "--events", str(events)]
    cmd += ["--history", str(history)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def timings(
    modes: list[str], events: int, repeat: int, history: int = 1000
) -> dict[str, dict[str, float]]:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with loadserver.ServerProcess(list_items=0, cpu=server_cpu) as server:
        for r in range(repeat):
            order = modes[r % len(modes) :] + modes[: r % len(modes)]
            for mode in order:
                runs[mode].append(_child(mode, server.port, events, client_cpu, history))
    out: dict[str, dict[str, float]] = {}
    for mode, results in runs.items():
        out[mode] = {
            "events_per_s": statistics.median(r["events_per_s"] for r in results),
            "cpu_us_per_event": statistics.median(r["cpu_us_per_event"] for r in results),
        }
    return out


def paired(
    modes: list[str], events: int, rounds: int, history: int = 1000
) -> dict[str, dict[str, float]]:
    """Every mode's client open at once, each in its own process; floods taken in turns.

    This machine's speed drifts by tens of percent within a minute, so runs
    minutes apart compare badly. Here each round floods every mode once, one
    right after the other (the order turning each round), and each mode is set
    against the bare subscription of the same round: the median of those
    per-round ratios is the figure. The first round warms up and is left out.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu, client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with loadserver.ServerProcess(list_items=0, cpu=server_cpu) as server:
        procs: dict[str, subprocess.Popen[str]] = {}
        try:
            for mode in modes:
                cmd = [sys.executable, str(HERE), "--serve", mode, "--port", str(server.port)]
                cmd += ["--events", str(events), "--history", str(history)]
                if client_cpu is not None:
                    cmd += ["--cpu", str(client_cpu)]
                procs[mode] = proc = subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
                )
                assert proc.stdout is not None
                if not proc.stdout.readline().startswith('{"ready"'):
                    raise RuntimeError(f"{mode} did not start (exit code {proc.poll()})")
            for r in range(rounds + 1):
                order = modes[r % len(modes) :] + modes[: r % len(modes)]
                for mode in order:
                    proc = procs[mode]
                    assert proc.stdin is not None and proc.stdout is not None
                    try:
                        proc.stdin.write("flood\n")
                        proc.stdin.flush()
                    except BrokenPipeError:
                        line = ""  # it stopped reading: gone, or going
                    else:
                        line = proc.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{mode} ended early (exit code {proc.poll()})")
                    if r:
                        runs[mode].append(json.loads(line))
        finally:
            # End of input ends each child; one that does not end (hung, or mid-flood when
            # this one was interrupted) is killed: none is left behind.
            for proc in procs.values():
                if proc.stdin is not None:
                    with contextlib.suppress(BrokenPipeError):  # (what a gone child left unread)
                        proc.stdin.close()
            for proc in procs.values():
                try:
                    proc.wait(CHILD_EXIT_WAIT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    out: dict[str, dict[str, float]] = {}
    bare = runs.get("bare")
    for mode, results in runs.items():
        cpu = [r["cpu_us_per_event"] for r in results]
        out[mode] = {
            "events_per_s": statistics.median(r["events_per_s"] for r in results),
            "cpu_us_per_event": statistics.median(cpu),
        }
        if bare is not None and mode != "bare":
            ratios = sorted(c / b["cpu_us_per_event"] for c, b in zip(cpu, bare, strict=True))
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            out[mode].update(ratio=statistics.median(ratios), ratio_q1=q1, ratio_q3=q3)
            # The machine's noise comes in bursts that only ever add time: each mode's
            # 20th-percentile flood (a fifth of them quicker) is what it costs when quiet.
            fifth = len(cpu) // 5
            out[mode]["ratio_quiet"] = (
                sorted(cpu)[fifth] / sorted(b["cpu_us_per_event"] for b in bare)[fifth]
            )
    return out


# -- instructions: valgrind ---------------------------------------------------------------------


#: cachegrind's summary lines of first-level cache misses (with ``--cache-sim=yes``).
_MISSES = {
    "i1_misses": re.compile(r"I1\s+misses:\s+([\d,]+)"),
    "d1_misses": re.compile(r"D1\s+misses:\s+([\d,]+)"),
}


def count_instructions(
    mode: str,
    port: int,
    events: int,
    valgrind: str,
    cache_sim: bool = False,
    unfollow: Sequence[str] = (),
) -> dict[str, int]:
    """cachegrind's counts for one ``--one`` run: ``instructions``, and with
    ``cache_sim`` its simulated first-level cache misses (``i1_misses``, ``d1_misses``)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    sim = "--cache-sim=yes" if cache_sim else "--cache-sim=no"
    with tempfile.TemporaryDirectory() as tmp:
        tool = [valgrind, "--tool=cachegrind", sim, f"--cachegrind-out-file={tmp}/o"]
        one = ["--one", mode, "--port", str(port), "--events", str(events)]
        if unfollow:
            one += ["--unfollow", ",".join(unfollow)]
        cmd = [*tool, sys.executable, str(HERE), *one]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    found = {"instructions": _IREFS.search(proc.stderr)}
    if cache_sim:
        found.update((key, pattern.search(proc.stderr)) for key, pattern in _MISSES.items())
    if proc.returncode != 0 or None in found.values():
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"valgrind run failed ({mode}, {events}):\n{tail}")
    return {key: int(m.group(1).replace(",", "")) for key, m in found.items() if m is not None}


def instructions(
    modes: list[str],
    small: int,
    large: int,
    cache_sim: bool = False,
    unfollow: Sequence[str] = (),
) -> dict[str, dict[str, float]]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    out: dict[str, dict[str, float]] = {}
    with loadserver.ServerProcess(list_items=0) as server:
        for mode in modes:
            low = count_instructions(mode, server.port, small, valgrind, cache_sim, unfollow)
            high = count_instructions(mode, server.port, large, valgrind, cache_sim, unfollow)
            per = {key: (high[key] - low[key]) / (large - small) for key in low}
            out[mode] = {
                "small": low["instructions"],
                "large": high["instructions"],
                "per_event": per["instructions"],
            }
            line = (
                f"{mode:<13} I({small})={low['instructions']:>14,}  "
                f"I({large})={high['instructions']:>14,}  "
                f"-> {per['instructions']:,.0f} instructions/event"
            )
            if cache_sim:
                out[mode]["i1_misses_per_event"] = per["i1_misses"]
                out[mode]["d1_misses_per_event"] = per["d1_misses"]
                line += f", {per['i1_misses']:,.0f} I1 and {per['d1_misses']:,.0f} D1 misses/event"
            print(line, flush=True)
    return out


# -- memory: short calls fed straight into the model --------------------------------------------


def short_calls() -> Iterator[bytes]:
    """The bytes of one answered call (``dial_bridge``), again and again, each with new ids."""
    from ami_async.message import Event

    _raw, messages = loadserver._read_capture(loadserver.fixtures_dir() / "dial_bridge.bin")
    template = [m for m in messages if isinstance(m, Event) and m.action_id is None]
    template = [m for m in template if m.name not in ("FullyBooted", "SuccessfulAuth")]
    ids = {v for m in template for k, v in m.headers if v and k.lower().endswith(_ID_KEYS)}
    text = "".join("".join(f"{k}: {v}\r\n" for k, v in m.headers) + "\r\n" for m in template)
    n = 0
    while True:
        n += 1
        copy = text
        for one in ids:  # (none of them holds another)
            copy = copy.replace(one, f"{one}-{n}")
        yield copy.encode()


_ID_KEYS = ("uniqueid", "linkedid")


def rss_kib() -> int:
    """Resident memory now (Linux /proc), else the peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(calls: int, history: int, every: int) -> dict[str, Any]:
    from ami_async.live._model import Model
    from ami_async.protocol import Parser

    model = Model(lambda: 0.0, history)
    model.emitting = False  # as in a Live no one reads changes() from
    gen = short_calls()
    parser = Parser()
    points: list[dict[str, float]] = []
    t0 = time.perf_counter()
    events = 0
    for i in range(1, calls + 1):
        for ev in parser.feed(next(gen)):
            model.apply(ev)  # type: ignore[arg-type]
            events += 1
        if i % every == 0 or i == calls:
            gc.collect()
            point = {
                "calls": i,
                "rss_kib": rss_kib(),
                "channels": len(model.channels),
                "calls_up": len(model.calls),
                "bridges": len(model.bridges),
                "history": len(model.history),
                "seconds": time.perf_counter() - t0,
            }
            points.append(point)
            print(
                f"{i:>9,} calls  RSS {point['rss_kib'] / 1024:7.1f} MiB  "
                f"channels {point['channels']}  calls {point['calls_up']}  "
                f"bridges {point['bridges']}  history {point['history']}  "
                f"({point['seconds']:.0f} s)",
                flush=True,
            )
    return {"calls": calls, "events": events, "history": history, "points": points}


# -- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="bare,live,live_all", help=f"of {', '.join(MODES)}")
    ap.add_argument("--events", type=int, default=100_000, help="events per flood (timings)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--instructions", action="store_true", help="valgrind instruction counts")
    ap.add_argument(
        "--cache-sim",
        action="store_true",
        help="with --instructions: also cachegrind's simulated first-level cache misses",
    )
    ap.add_argument(
        "--unfollow",
        default="",
        metavar="EVENTS",
        help="with --instructions or --one: the model ignores these events (a,b,...): what "
        "following them costs",
    )
    ap.add_argument("--small", type=int, default=5_000)
    ap.add_argument("--large", type=int, default=25_000)
    ap.add_argument("--memory", action="store_true", help="short calls into the model: RSS")
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--history", type=int, default=1000, help="Live(history=): finished calls kept")
    ap.add_argument("--every", type=int, default=100_000)
    ap.add_argument("--paired", type=int, metavar="ROUNDS", help="floods in turns (see paired())")
    ap.add_argument("--one", choices=MODES, help="one run in this process (result as JSON)")
    ap.add_argument("--serve", choices=MODES, help="a flood per stdin line (for --paired)")
    ap.add_argument("--port", type=int, help="with --one: a running load server")
    ap.add_argument("--cpu", type=int, help="with --one: pin this process to that CPU")
    ap.add_argument("--profile", metavar="FILE", help="with --one: cProfile it")
    ap.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    args = ap.parse_args(argv)
    unfollow = [name.strip() for name in args.unfollow.split(",") if name.strip()]
    if unfollow and not (args.instructions or args.one):
        raise SystemExit("--unfollow goes with --instructions or --one")
    if args.serve:
        loadserver.pin_to_cpu(args.cpu)
        asyncio.run(_serve(args.serve, args.port, args.events, args.history))
        return 0
    if args.one:
        loadserver.pin_to_cpu(args.cpu)
        server = None
        port = args.port
        if port is None:
            server = loadserver.ServerProcess(list_items=0)
            port = server.port
        try:
            if args.profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                result = profiler.runcall(
                    run_one, args.one, port, args.events, args.history, unfollow
                )
                profiler.dump_stats(args.profile)
                stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs()
                stats.sort_stats("tottime").print_stats(30)
            else:
                result = run_one(args.one, port, args.events, args.history, unfollow)
        finally:
            if server is not None:
                server.close()
        print(json.dumps(result))
        return 0
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    if args.memory:
        out["memory"] = memory(args.calls, args.history, args.every)
    else:
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        for m in modes:
            if m not in MODES:
                raise SystemExit(f"unknown mode {m!r}")
        if args.instructions:
            figures = instructions(modes, args.small, args.large, args.cache_sim, unfollow)
            out["instructions"] = figures
            key = "per_event"
        else:
            if args.paired is not None:
                if args.paired < 1:
                    raise SystemExit("--paired: at least 1 round (besides the warm-up)")
                figures = paired(modes, args.events, args.paired, args.history)
            else:
                figures = timings(modes, args.events, args.repeat, args.history)
            out["timings"] = figures
            for mode, f in figures.items():
                print(
                    f"{mode:<13} {f['events_per_s']:>10,.0f} events/s  "
                    f"{f['cpu_us_per_event']:6.2f} CPU µs/event",
                    flush=True,
                )
            key = "cpu_us_per_event"
        bare = figures.get("bare", {}).get(key)
        if bare:
            for mode, f in figures.items():
                if mode != "bare" and "ratio" in f:
                    print(
                        f"{mode}: {f['ratio']:.2f}x the bare subscription's {key} "
                        f"(median of the rounds' ratios; quartiles {f['ratio_q1']:.2f}x to "
                        f"{f['ratio_q3']:.2f}x; quiet, 20th percentile {f['ratio_quiet']:.2f}x)"
                    )
                elif mode != "bare":
                    print(f"{mode}: {f[key] / bare:.2f}x the bare subscription's {key}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
