"""Many PBXs as one: a `Fleet` merges their events, each naming its server.

Tail the hangups of every PBX, one line each (``server  channel  cause``), and
say which servers are up every ``--status-every`` seconds. A PBX that is down,
or never answers, holds nobody back: the fleet keeps retrying it::

    python examples/fleet.py east=10.0.0.1 west=10.0.0.2:5038
    python examples/fleet.py --fake --calls 3

Every server logs in with ``AMI_USERNAME`` / ``AMI_SECRET`` (or ``--username``
/ ``--secret``). ``--fake`` runs two embedded simulated PBXs (``east`` and
``west``, each placing ``--calls`` short calls) and a third server, ``gone``,
that nothing answers; it stops once every call has hung up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ami_async import Fleet
from ami_async.testing import FakeAsterisk

__all__ = ["fake_servers", "main", "parse_args", "servers_from", "tail"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fleet.py", description="Tail the hangups of several PBXs at once."
    )
    parser.add_argument("servers", nargs="*", metavar="NAME=HOST[:PORT]")
    parser.add_argument("--username", default=os.environ.get("AMI_USERNAME"))
    parser.add_argument("--secret", default=os.environ.get("AMI_SECRET"), help="better: AMI_SECRET")
    parser.add_argument("--status-every", type=float, default=10.0, metavar="S")
    parser.add_argument("--fake", action="store_true", help="two embedded simulated PBXs")
    parser.add_argument("--calls", type=int, default=2, help="with --fake: calls per PBX")
    args = parser.parse_args(argv)
    if args.fake == bool(args.servers):
        parser.error("give NAME=HOST[:PORT] servers, or --fake")
    if not args.fake and not (args.username and args.secret):
        parser.error("give --username and --secret (or AMI_USERNAME and AMI_SECRET)")
    return args


def servers_from(items: Sequence[str], username: str, secret: str) -> dict[str, dict[str, Any]]:
    """``["east=10.0.0.1", "west=10.0.0.2:5039"]`` -> the `Fleet`'s table."""
    table: dict[str, dict[str, Any]] = {}
    for item in items:
        name, _, address = item.partition("=")
        host, _, port = address.partition(":")
        table[name] = {
            "host": host,
            "port": int(port or 5038),
            "username": username,
            "secret": secret,
        }
    return table


@contextlib.asynccontextmanager
async def fake_servers() -> AsyncIterator[tuple[dict[str, dict[str, Any]], list[FakeAsterisk]]]:
    """Two simulated PBXs (east, west) and an address nothing answers (gone)."""
    async with FakeAsterisk(time_scale=0.05) as east, FakeAsterisk(time_scale=0.05) as west:
        table = {
            name: {"host": pbx.host, "port": pbx.port, "username": "admin", "secret": "amp111"}
            for name, pbx in (("east", east), ("west", west))
        }
        # A port that was free a moment ago: connection refused, retried in the background.
        gone = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = gone.sockets[0].getsockname()[1]
        gone.close()
        await gone.wait_closed()
        table["gone"] = {"host": "127.0.0.1", "port": port, "username": "x", "secret": "x"}
        yield table, [east, west]


async def tail(fleet: Fleet, hangups: int | None, status_every: float) -> None:
    """Print each Hangup with its server; stop after ``hangups`` of them (None: never)."""
    seen = 0
    loop = asyncio.get_running_loop()
    next_status = loop.time()
    async with fleet.events("Hangup") as events:
        while hangups is None or seen < hangups:
            if loop.time() >= next_status:
                up = ", ".join(fleet.up) or "none"
                print(f"-- up: {up}", flush=True)
                next_status = loop.time() + status_every
            try:
                event = await events.get(timeout=max(0.0, next_status - loop.time()))
            except TimeoutError:
                continue
            cause = event.get("Cause-txt") or event.get("Cause")
            print(f"{event.server:<6} {event['Channel']:<28} {cause}", flush=True)
            seen += 1


async def run(args: argparse.Namespace) -> None:
    if not args.fake:
        table = servers_from(args.servers, args.username, args.secret)
        async with Fleet(table, timeout=5.0) as fleet:
            await tail(fleet, None, args.status_every)
        return
    async with fake_servers() as (table, _), Fleet(table, timeout=5.0) as fleet:
        for name, status in fleet.status().items():
            print(f"{name}: {status.state}", flush=True)
        # Subscribed before the calls: nothing is missed.
        tailing = asyncio.ensure_future(tail(fleet, 2 * args.calls * 2, args.status_every))
        for _ in range(args.calls):
            for name in ("east", "west"):
                await fleet[name].originate("Local/100@test", application="Wait", data="1")
        await asyncio.wait_for(tailing, 60)
        print(f"gone: {fleet.status()['gone'].state}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
