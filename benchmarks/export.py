"""Exported events per second: a flood of real Asterisk 22 events into a local redis-server.

``python benchmarks/export.py`` starts a redis-server (no persistence, a free
port, a temporary directory) and the load server (``loadserver.py``, its own
process), connects a `Client`, starts a `RedisStreamExporter` on it and asks
for a flood of ``--events`` events. It times from the flood request to the
last entry written (``XLEN`` checked), ``--repeat`` times, and prints the
median rate for each ``--batch`` size (the pipeline length), and the CPU time
the client process spent per event (reading it from AMI and exporting it:
steadier than the rate on a loaded machine). The buffer holds
the whole flood, so nothing is dropped: this is the rate Redis and the
exporter sustain, not the AMI side's (which never waits for Redis).

Needs ``redis-server`` on the PATH and ``pip install -e '.[redis]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadserver

from ami_async import Client
from ami_async.export import RedisStreamExporter


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    """A throwaway redis-server: ``with Redis() as url: ...``."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.dir = tempfile.mkdtemp(prefix="ami-bench-redis-")
        self.port = _free_port()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        argv += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> Redis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


async def one_run(
    port: int, url: str, events: int, batch: int, stream: str
) -> tuple[float, float, int]:
    """Seconds from the flood request to the last entry written, this process's CPU
    seconds over the same span (AMI side and exporter), and the stream's length."""
    async with Client(
        "127.0.0.1", port, username="bench", secret="bench", ping_interval=None, timeout=30
    ) as client:
        exporter = RedisStreamExporter(
            client, url, stream=stream, maxlen=None, buffer=events + 10, batch=batch
        )
        async with exporter:
            start, cpu = time.perf_counter(), time.process_time()
            await client.send_action("BenchFlood", Count=str(events), timeout=120)
            await exporter.wait_flushed(timeout=120)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            assert exporter.dropped == 0, exporter
            redis = exporter._redis
            assert redis is not None
            length = int(await redis.xlen(stream))
            await redis.delete(stream)
    return elapsed, cpu, length


async def bench(args: argparse.Namespace) -> None:
    with Redis() as redis, loadserver.ServerProcess() as server:
        print(
            f"{args.events} events per run, median of {args.repeat} runs, "
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
        )
        print(f"{'batch':>6} {'events/s':>10} {'s/run':>8} {'CPU us/event':>13}")
        for batch in args.batch:
            times, cpus = [], []
            for run in range(args.repeat):
                elapsed, cpu, length = await one_run(
                    server.port, redis.url, args.events, batch, f"bench:{batch}:{run}"
                )
                # The login's own events (FullyBooted, SuccessfulAuth) come on top of the flood.
                assert length >= args.events, (length, args.events)
                times.append(elapsed)
                cpus.append(cpu)
            median = statistics.median(times)
            per_event = statistics.median(cpus) / args.events * 1e6
            print(f"{batch:>6} {args.events / median:>10,.0f} {median:>8.3f} {per_event:>13.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[100, 500, 2000])
    asyncio.run(bench(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
