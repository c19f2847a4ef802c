"""Many consumers on many machines: events exported to a Redis Stream, read with a consumer group.

One process exports (``export``): every event of the PBX, tagged with its
server, appended to the stream. Any number of consumers (``consume``), on any
machine that reaches Redis, share the stream's entries through a consumer
group: each entry goes to one consumer of the group, is acknowledged once
handled, and an entry a consumer took but never acknowledged (it crashed) is
handed to it again when it comes back (at-least-once). Another group gets
every entry again, for another service::

    python examples/export_redis.py export --redis redis://127.0.0.1:6379/0
    python examples/export_redis.py consume --group billing --consumer worker-1
    python examples/export_redis.py export --fake --calls 3   # a simulated PBX placing calls

``export`` connects with ``AMI_HOST`` / ``AMI_PORT`` / ``AMI_USERNAME`` /
``AMI_SECRET`` (``--fake``: an embedded simulated PBX). ``consume`` prints one
line per entry, ``server event Channel=... Cause=...``, and stops after
``--count`` entries if given. Needs ``pip install 'ami_async[redis]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from ami_async import Client
from ami_async.export import RedisStreamExporter, StreamEntry, decode_entry
from ami_async.testing import FakeAsterisk

__all__ = ["consume", "export", "main", "parse_args", "show"]

SHOWN = ("Channel", "Cause", "Queue", "Exten")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="export_redis.py", description=__doc__.split("\n")[0])
    parser.add_argument("role", choices=("export", "consume"))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", metavar="URL")
    parser.add_argument("--stream", default="ami:events")
    parser.add_argument("--group", default="readers", help="consume: the consumer group")
    parser.add_argument("--consumer", default="c1", help="consume: this consumer's name")
    parser.add_argument("--count", type=int, help="consume: stop after N entries")
    parser.add_argument("--fake", action="store_true", help="export: a simulated PBX")
    parser.add_argument("--calls", type=int, default=2, help="export --fake: calls to place")
    return parser.parse_args(argv)


# -- the exporting side --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pbx_client(fake: bool) -> AsyncIterator[tuple[Client, FakeAsterisk | None]]:
    if not fake:
        env = os.environ
        async with Client(
            env.get("AMI_HOST", "127.0.0.1"),
            int(env.get("AMI_PORT", "5038")),
            username=env["AMI_USERNAME"],
            secret=env["AMI_SECRET"],
            name="pbx1",
        ) as client:
            yield client, None
        return
    async with FakeAsterisk(time_scale=0.05) as pbx:
        client = Client(pbx.host, pbx.port, username="admin", secret="amp111", name="pbx1")
        async with client:
            yield client, pbx


async def export(args: argparse.Namespace) -> None:
    async with (
        pbx_client(args.fake) as (client, pbx),
        # Subscribed from here on; while Redis is away events wait (bounded), in order.
        RedisStreamExporter(client, args.redis, stream=args.stream) as exporter,
    ):
        if pbx is None:
            await asyncio.Event().wait()  # until Ctrl-C
        hangups = client.events("Hangup")
        for _ in range(args.calls):
            await client.originate("Local/100@test", application="Wait", data="1")
        for _ in range(2 * args.calls):  # both halves of each Local channel hang up
            await hangups.get(timeout=30)
        await exporter.wait_flushed(timeout=30)
        print(f"exported {exporter.exported} events, {exporter.dropped} dropped", flush=True)


# -- the consuming side --------------------------------------------------------------------


def show(entry: StreamEntry) -> str:
    """``server event Key=value ...`` for a few telling headers; a gap says how many were lost."""
    if entry.gap:
        return f"-- {entry.gap} event(s) lost here (Redis was away too long)"
    headers = dict(entry.headers)
    fields = " ".join(f"{k}={headers[k]}" for k in SHOWN if k in headers)
    return f"{entry.server} {entry.event} {fields}".rstrip()


async def consume(args: argparse.Namespace) -> None:
    redis: Any = aioredis.from_url(args.redis)

    async def make_group() -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await redis.xgroup_create(args.stream, args.group, id="0", mkstream=True)

    try:
        await make_group()
        print(f"reading {args.stream} as {args.group}/{args.consumer}", flush=True)
        handled = 0
        # First what this consumer took before and never acknowledged (a crash), then new ones.
        start = "0"
        while args.count is None or handled < args.count:
            # Take no more than this consumer will handle: what it takes is its own to
            # acknowledge (another consumer of the group would not get it).
            wanted = 100 if args.count is None else min(100, args.count - handled)
            try:
                answer = await redis.xreadgroup(
                    args.group, args.consumer, {args.stream: start}, count=wanted, block=1000
                )
            except RedisConnectionError:  # Redis away: try again in a moment
                await asyncio.sleep(0.5)
                continue
            except ResponseError as exc:  # NOGROUP: Redis restarted without its data
                if "NOGROUP" not in str(exc):
                    raise
                await make_group()
                continue
            entries = answer[0][1] if answer else []
            if start == "0" and not entries:
                start = ">"  # the backlog is done
                continue
            for entry_id, fields in entries:
                print(show(decode_entry(fields)), flush=True)
                await redis.xack(args.stream, args.group, entry_id)  # handled: not again
                handled += 1
                if handled == args.count:
                    break
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(export(args) if args.role == "export" else consume(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
