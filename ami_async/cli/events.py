"""`ami-async events`: tail events, one per line."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import os
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ..client import Client
from ..errors import AMIConnectionError, SubscriptionOverflowError
from ..message import Event
from ..pool import Fleet
from ..subscription import Subscription
from .common import (
    EXIT_OK,
    PROG,
    UsageError,
    add_verbose,
    out,
    pairs,
    run_async,
    say,
    subparser,
    verbosity,
    warn,
)
from .connection import Settings, add_connection, log, open_client, resolve_settings
from .output import dumps, event_line, message_json, printable, valid_text
from .servers import add_servers, open_fleet, resolve_servers

#: Keepalive of the long-running `events` tail; one-shot commands send none.
TAIL_PING_INTERVAL = 20.0

#: The event classes Asterisk knows (`perms[]` of main/manager.c; `hookresponse` up to 1.8).
#: Asterisk ignores a name it does not know, and compares names case-sensitively.
EVENT_CLASSES = (
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "hookresponse",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
    "all",
    "none",
)
#: A whole mask that Asterisk reads as every class (`ast_true`) or none (`ast_false`).
_MASK_WORDS = ("on", "off", "yes", "no", "true", "false", "y", "n", "t", "f")


def event_mask(value: str, parser: argparse.ArgumentParser) -> str:
    """`--mask` as Asterisk reads it: lower case, no spaces; an unknown class is refused."""
    mask = value.strip().lower()
    if mask in _MASK_WORDS or mask.isdigit():  # a whole word, or a numeric bitmask
        return mask
    classes = [name.strip() for name in mask.split(",")]
    unknown = [name for name in classes if name not in EVENT_CLASSES]
    if unknown or not mask:
        shown = ", ".join(repr(name) for name in unknown) or "an empty list"
        raise UsageError(
            f"--mask: {shown} is not an AMI event class (known: {', '.join(EVENT_CLASSES)}; "
            "or on/off)",
            parser,
        )
    return ",".join(classes)


def where_predicate(conditions: Sequence[tuple[str, str]]) -> Callable[[Event], bool] | None:
    """Every `(key, pattern)` must match one of the event's values for that key."""
    if not conditions:
        return None

    def matches(event: Event) -> bool:
        return all(
            any(fnmatch.fnmatchcase(value, pattern) for value in event.get_all(key))
            for key, pattern in conditions
        )

    return matches


def _run_events(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1", parser)
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds", parser)
    where = pairs(args.where, "--where", parser)
    if args.mask is not None:
        args.mask = event_mask(args.mask, parser)
    servers = resolve_servers(args, os.environ)
    if servers is not None:
        return run_async(lambda: _fleet_events(args, servers, where))
    settings = resolve_settings(args, os.environ)
    return run_async(lambda: _events(args, settings, where))


class _ReconnectNote:
    """A connect hook: says on stderr, with or without -v, each time the tail reconnects."""

    def __init__(self, name: str = "") -> None:
        self.connections = 0
        self.name = f"{name}: " if name else ""

    def __call__(self, client: Client) -> None:
        self.connections += 1
        if self.connections == 1 and self.name:
            log.info("%sconnected to %s:%s", self.name, client.host, client.port)
        if self.connections > 1:
            say("note", f"{self.name}reconnected to {client.host}:{client.port}")


async def _events(
    args: argparse.Namespace, settings: Settings, where: list[tuple[str, str]]
) -> int:
    mask: bool | str = args.mask if args.mask else True
    async with open_client(
        settings,
        events=mask,
        reconnect=True,
        ping_interval=TAIL_PING_INTERVAL,
        trace=verbosity(args) >= 2,
    ) as ami:
        # Subscribed before connecting: nothing sent after the login is missed.
        subscription = ami.events(*args.names, predicate=where_predicate(where))
        ami.add_connect_hook(_ReconnectNote())
        await ami.connect()
        log.info("connected; waiting for events (Ctrl-C to stop)")
        await _tail(args, subscription, tagged=False)
    return EXIT_OK


async def _fleet_events(
    args: argparse.Namespace, servers: dict[str, Settings], where: list[tuple[str, str]]
) -> int:
    """Several servers: one `Fleet`, each line naming its server; one down blocks nobody."""
    mask: bool | str = args.mask if args.mask else True
    async with open_fleet(
        servers, events=mask, ping_interval=TAIL_PING_INTERVAL, trace=verbosity(args) >= 2
    ) as fleet:
        subscription = fleet.events(*args.names, predicate=where_predicate(where))
        for name, client in fleet.items():
            client.add_connect_hook(_ReconnectNote(name))
        # Lines are printed from the first server up: a slow one holds nobody back.
        await while_connecting(fleet, _tail(args, subscription, tagged=True))
    return EXIT_OK


async def while_connecting(fleet: Fleet, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` while the fleet makes its first attempts; fail if none gets through."""
    doing = asyncio.ensure_future(work)
    # Each server's first attempt (the ones down are retried in the background).
    connecting = asyncio.ensure_future(fleet.connect())
    try:
        await asyncio.wait((connecting, doing), return_when=asyncio.FIRST_COMPLETED)
        if not doing.done():
            connecting.result()
            if not fleet.up:
                failures = "; ".join(f"{s.name}: {s.error}" for s in fleet.status().values())
                raise AMIConnectionError(f"no server could be reached ({failures})")
            log.info("connected to %s; waiting for events (Ctrl-C to stop)", ", ".join(fleet.up))
        await doing
    finally:
        for task in (doing, connecting):
            if not task.done():
                task.cancel()
                await asyncio.wait((task,))


def server_line(event: Event) -> str:
    """`event_line` with the event's server after the time: `HH:MM:SS.mmm SERVER Name ...`."""
    stamp, _, rest = event_line(event).partition(" ")
    return f"{stamp} {printable(event.server)} {rest}"


async def _tail(args: argparse.Namespace, subscription: Subscription, *, tagged: bool) -> None:
    """Print the subscription's events until --count, --duration or the end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.duration if args.duration is not None else None
    seen = 0
    while args.count is None or seen < args.count:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            break
        try:
            event = await subscription.get(timeout=remaining)
        except TimeoutError:
            break
        except SubscriptionOverflowError as exc:
            warn(f"{exc.dropped} event(s) lost: this terminal read too slowly")
            continue
        if args.json:
            shown = message_json(event)
            out(
                dumps({"server": valid_text(event.server), **shown} if tagged else shown),
                flush=True,
            )
        else:
            out(server_line(event) if tagged else event_line(event), flush=True)
        seen += 1


def add_events(subparsers: Any) -> None:
    """The `events` subcommand."""
    events = subparser(
        subparsers,
        "events",
        "tail events, one per line",
        "Print events as they arrive: one line per event (time, name, Key=value\n"
        "fields), or one JSON object per line with --json. Names are exact (any case)\n"
        "or fnmatch patterns; none means every event.",
        "examples:\n"
        f"  {PROG} events\n"
        f"  {PROG} events Hangup 'Queue*' --where Channel='PJSIP/100-*'\n"
        f"  {PROG} events --json --count 10 > events.jsonl\n"
        f"  {PROG} events Hangup --server east=10.0.0.1 --server west=10.0.0.2:5038",
    )
    events.add_argument("names", nargs="*", metavar="NAME", help="event name or pattern")
    events.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only events whose KEY header matches VALUE (an fnmatch pattern); repeatable, "
        "all must match",
    )
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument("--count", type=int, metavar="N", help="stop after N events")
    events.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    events.add_argument(
        "--mask",
        metavar="CLASSES",
        help="event classes asked for at login, e.g. call,agent (default: all); one of "
        "on, off or a list of: " + ",".join(EVENT_CLASSES),
    )
    add_servers(events)
    add_connection(events)
    add_verbose(events, "verbose")
    events.set_defaults(handler=_run_events)
