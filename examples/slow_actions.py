"""Slow actions next to a session that stays responsive: ``action_sessions``.

Asterisk runs one action at a time per manager session, and while one runs the
session answers nothing else: a synchronous Originate that rings a phone for
30 s, a long ``Command`` or a ``Reload`` holds up every other action on it,
the keepalive Ping included. ``Client(..., action_sessions=N)`` opens N more
sessions (logged in with events off) and sends the actions that block there.

This script runs one slow action while it pings the server, twice: with
``action_sessions=0``, then with ``action_sessions=2``, and prints the Ping
round trips of each run::

    python examples/slow_actions.py --fake                 # a simulated PBX, Command takes 1 s
    python examples/slow_actions.py --command "pjsip show endpoints"
    python examples/slow_actions.py --originate PJSIP/100  # a phone rings (synchronous Originate)

Against the simulated PBX it prints something like::

    action_sessions=0: Command took 1.00 s; 1 Ping meanwhile, slowest 1000.8 ms (median 1000.8 ms)
    action_sessions=2: Command took 1.00 s; 20 Pings meanwhile, slowest 0.9 ms (median 0.4 ms)

Connection settings come from ``--host``/``--port``/``--username``/``--secret``
or ``AMI_HOST``/``AMI_PORT``/``AMI_USERNAME``/``AMI_SECRET``. ``--fake`` runs
against an embedded simulated PBX instead, its ``Command`` slowed to ``--delay``
seconds. Exit status: 0 both runs done (whatever the slow action answered);
2 bad usage; 3 no connection, login refused or connection lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ami_async import ActionError, AMIConnectionError, AuthenticationError, Client, Message

__all__ = ["Run", "main", "measure", "parse_args", "ping_while"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_CONNECTION = 3

#: Seconds between two Pings of a run.
PING_INTERVAL = 0.05


@dataclass
class Run:
    """One run: the slow action, and the Pings answered while it ran."""

    sessions: int
    action: str
    seconds: float = 0.0
    outcome: str = ""
    rtts: list[float] = field(default_factory=list)  # Ping round trips, seconds

    def summary(self) -> str:
        count = len(self.rtts)
        pings = f"{count} Ping{'' if count == 1 else 's'} meanwhile"
        if self.rtts:
            slowest = max(self.rtts) * 1000
            median = statistics.median(self.rtts) * 1000
            pings += f", slowest {slowest:.1f} ms (median {median:.1f} ms)"
        return f"action_sessions={self.sessions}: {self.action} took {self.seconds:.2f} s; {pings}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="slow_actions.py",
        description="Run a slow action while pinging, without and with action sessions.",
    )
    slow = parser.add_mutually_exclusive_group()
    slow.add_argument("--command", help="a CLI command to run (Command action)")
    slow.add_argument(
        "--originate", metavar="CHANNEL", help="ring CHANNEL with a synchronous Originate"
    )
    parser.add_argument(
        "--ring", type=float, default=30.0, help="seconds --originate lets it ring (default 30)"
    )
    parser.add_argument("--host", default=os.environ.get("AMI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AMI_PORT", "5038")))
    parser.add_argument("--username", default=os.environ.get("AMI_USERNAME"))
    parser.add_argument("--secret", default=os.environ.get("AMI_SECRET"))
    parser.add_argument(
        "--fake", action="store_true", help="run against an embedded simulated PBX (FakeAsterisk)"
    )
    parser.add_argument(
        "--delay", type=float, default=1.0, help="with --fake: seconds each Command takes"
    )
    args = parser.parse_args(argv)
    if args.fake:
        if args.originate:
            parser.error("--fake slows its Command only: use --command with it")
        args.command = args.command or "core show uptime"
    elif not (args.username and args.secret):
        parser.error("give --username and --secret (or AMI_USERNAME and AMI_SECRET), or --fake")
    elif not (args.command or args.originate):
        parser.error("give the slow action: --command CMD or --originate CHANNEL")
    return args


async def ping_while(client: Client, slow: asyncio.Future[object], rtts: list[float]) -> None:
    """Ping every `PING_INTERVAL` until ``slow`` is done, adding each round trip to ``rtts``."""
    while not slow.done():
        started = time.perf_counter()
        await client.ping()
        rtts.append(time.perf_counter() - started)
        # The next Ping after the interval, or none once the slow action is over.
        await asyncio.wait({slow}, timeout=PING_INTERVAL)


async def measure(
    client: Client, sessions: int, action: str, slow: Callable[[], Awaitable[object]]
) -> Run:
    """Run ``slow()`` on ``client`` while it pings; what it took and what the Pings saw."""
    run = Run(sessions, action)
    started = time.perf_counter()
    task: asyncio.Future[object] = asyncio.ensure_future(slow())
    try:
        await asyncio.sleep(0)  # the slow action goes out first, then the Pings
        await ping_while(client, task, run.rtts)
        result = await task
        run.outcome = "ok" if not isinstance(result, Message) else result.get("Message", "ok")
    except ActionError as exc:  # e.g. "Originate failed": the phone did not answer
        run.outcome = f"refused: {exc.message or exc}"
    finally:
        task.cancel()  # (done already, unless a Ping failed)
    run.seconds = time.perf_counter() - started
    return run


def slow_action(
    client: Client, args: argparse.Namespace
) -> tuple[str, Callable[[], Awaitable[object]]]:
    """The action to run, as a label and a coroutine function."""
    if args.originate:
        ring_ms = int(args.ring * 1000)

        def originate() -> Awaitable[Message]:
            # No Async: Asterisk answers only once the phone answers (or gives up).
            return client.send_action(
                "Originate",
                Channel=args.originate,
                Application="Wait",
                Data="1",
                Timeout=ring_ms,
                timeout=args.ring + 5,
            )

        return "Originate", originate
    command: str = args.command
    return "Command", lambda: client.command(command, timeout=600)


@contextlib.asynccontextmanager
async def server(args: argparse.Namespace) -> AsyncIterator[tuple[str, int, str, str]]:
    """Where to connect: the server ``args`` name, or an embedded simulated PBX."""
    if not args.fake:
        yield args.host, args.port, args.username, args.secret
        return
    from ami_async.testing import FakeAsterisk, FakeSession, make_response

    delay: float = args.delay

    async def slow_command(session: FakeSession, action: Message) -> list[tuple[str, str]]:
        # One action at a time per session, as Asterisk: this session waits meanwhile.
        await asyncio.sleep(delay)
        return make_response(action, "Success", Output=f"{action.get('Command')}: done")

    async with FakeAsterisk() as pbx:
        pbx.on_action("Command", slow_command)
        username, secret = next(iter(pbx.users.items()))
        yield pbx.host, pbx.port, username, secret


async def main(argv: Sequence[str] | None = None) -> int:
    """Run the script; returns the exit status."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        async with server(args) as (host, port, username, secret):
            for sessions in (0, 2):
                async with Client(
                    host,
                    port,
                    username=username,
                    secret=secret,
                    action_sessions=sessions,
                    reconnect=False,
                ) as client:
                    label, slow = slow_action(client, args)
                    run = await measure(client, sessions, label, slow)
                print(run.summary())
                if run.outcome != "ok":
                    print(f"  ({label}: {run.outcome})")
    except AuthenticationError as exc:
        print(f"login refused: {exc}", file=sys.stderr)
        return EXIT_CONNECTION
    except AMIConnectionError as exc:
        print(f"cannot reach Asterisk: {exc}", file=sys.stderr)
        return EXIT_CONNECTION
    return EXIT_OK


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
