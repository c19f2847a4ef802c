"""The main session's Ping while slow actions run: ``action_sessions=0`` against ``=2``.

A FakeAsterisk in its own process answers ``Command`` after ``--delay`` seconds
and, like Asterisk, runs one action at a time per session. The client sends
``--slow`` (8) such Commands at once and, until they are all answered, starts
a Ping every ``--every`` seconds (each from its own task, so one Ping stuck
behind the Commands does not stop the next one from being sent), recording
each round trip. Printed per ``action_sessions`` value: the Pings' p50, p99 and
max round trip, and how long the slow Commands took in all::

    python benchmarks/action_sessions.py
    python benchmarks/action_sessions.py --sessions 0,1,2,4 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import statistics
import sys
import time
from pathlib import Path
from typing import Any

USER, SECRET = "admin", "amp111"


def _serve(conn: multiprocessing.connection.Connection, delay: float) -> None:
    """The child process: a FakeAsterisk whose Command takes ``delay`` seconds."""
    from ami_async import Message
    from ami_async.testing import FakeAsterisk, FakeSession, make_response

    async def slow_command(session: FakeSession, action: Message) -> list[tuple[str, str]]:
        await asyncio.sleep(delay)  # this session answers nothing else meanwhile
        return make_response(action, "Success", Output="done")

    async def main() -> None:
        async with FakeAsterisk(users={USER: SECRET}, pbx=False) as fake:
            fake.on_action("Command", slow_command)
            conn.send(fake.port)
            loop = asyncio.get_running_loop()
            stop = loop.create_future()
            loop.add_reader(conn.fileno(), lambda: stop.done() or stop.set_result(None))
            await stop

    asyncio.run(main())


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


async def run_once(port: int, sessions: int, slow: int, every: float) -> dict[str, Any]:
    """One measurement with ``action_sessions=sessions``."""
    import ami_async

    async with ami_async.Client(
        "127.0.0.1",
        port,
        username=USER,
        secret=SECRET,
        action_sessions=sessions,
        ping_interval=None,
        action_timeout=600,
    ) as client:
        for _ in range(20):  # warm up
            await client.ping()
        rtts: list[float] = []

        async def ping() -> None:
            started = time.perf_counter()
            await client.ping()
            rtts.append(time.perf_counter() - started)

        started = time.perf_counter()
        commands = asyncio.gather(*(client.command(f"slow {i}") for i in range(slow)))
        await asyncio.sleep(0)  # the slow Commands go out first
        pings: list[asyncio.Task[None]] = []
        while not commands.done():
            pings.append(asyncio.ensure_future(ping()))
            await asyncio.wait({commands}, timeout=every)
        await commands
        slow_seconds = time.perf_counter() - started
        await asyncio.gather(*pings)
    rtts.sort()
    return {
        "action_sessions": sessions,
        "pings": len(rtts),
        "p50_ms": statistics.median(rtts) * 1000,
        "p99_ms": _percentile(rtts, 0.99) * 1000,
        "max_ms": rtts[-1] * 1000,
        "slow_actions_s": slow_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", default="0,2", help="action_sessions values (default 0,2)")
    ap.add_argument("--slow", type=int, default=8, help="slow Commands at once (default 8)")
    ap.add_argument("--delay", type=float, default=0.5, help="seconds each takes (default 0.5)")
    ap.add_argument("--every", type=float, default=0.01, help="seconds between Pings (0.01)")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args(argv)
    values = [int(v) for v in args.sessions.split(",") if v.strip()]
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child, args.delay), daemon=True)
    server.start()
    child.close()
    try:
        if not parent.poll(30):
            raise SystemExit("the fake server did not start")
        port = parent.recv()
        results = [
            asyncio.run(run_once(port, sessions, args.slow, args.every)) for sessions in values
        ]
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        server.join(5)
        if server.is_alive():
            server.terminate()
    print(
        f"{args.slow} Commands of {args.delay} s each, a Ping every {args.every * 1000:g} ms "
        f"meanwhile (Python {sys.version.split()[0]})"
    )
    print("action_sessions  Pings  p50 ms    p99 ms    max ms    slow Commands took")
    for r in results:
        print(
            f"{r['action_sessions']:>15}  {r['pings']:>5}  {r['p50_ms']:>8.2f}  "
            f"{r['p99_ms']:>8.2f}  {r['max_ms']:>8.2f}  {r['slow_actions_s']:.2f} s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
