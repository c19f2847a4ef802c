"""`ami-async export`: every event of one server or several appended to a Redis Stream."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from ..errors import AMIConnectionError
from ..export import EventSource, RedisStreamExporter
from ..export._redis import _redis_module, safe_url
from .common import (
    EXIT_ACTION,
    EXIT_OK,
    PROG,
    UsageError,
    add_verbose,
    pairs,
    run_async,
    say,
    subparser,
    verbosity,
    warn,
)
from .connection import Settings, add_connection, log, open_client, resolve_settings
from .events import (
    TAIL_PING_INTERVAL,
    _ReconnectNote,
    event_mask,
    where_predicate,
    while_connecting,
)
from .servers import add_servers, open_fleet, resolve_servers

__all__ = ["add_export"]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
EXPORT_EXIT_CODES = """\
exit status: 0 ok, 1 events were dropped (Redis away too long), 2 usage (or the
redis package missing), 3 no connection to Redis or to any AMI server,
130 interrupted (Ctrl-C)"""


def _run_export(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds", parser)
    for flag, value in (("--maxlen", args.maxlen), ("--buffer", args.buffer)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be at least 1", parser)
    if not args.stream:
        raise UsageError("--stream must name a key", parser)
    if not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise UsageError(
            f"--redis: expected redis://HOST[:PORT][/DB], rediss://... or unix://PATH, "
            f"not {safe_url(args.redis)!r}",
            parser,
        )
    try:
        _redis_module()
    except ImportError as exc:
        raise UsageError(str(exc), parser) from None
    where = pairs(args.where, "--where", parser)
    if args.mask is not None:
        args.mask = event_mask(args.mask, parser)
    servers = resolve_servers(args, os.environ)
    settings = None if servers is not None else resolve_settings(args, os.environ)
    return run_async(lambda: _export(args, settings, servers, where))


async def _check_redis(url: str, timeout: float) -> None:
    """Fail early (status 3) when Redis cannot be reached at all: a wrong URL, say."""
    module = _redis_module()
    redis = module.asyncio.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await asyncio.wait_for(redis.ping(), timeout)
    except (module.exceptions.RedisError, OSError, asyncio.TimeoutError) as exc:
        raise AMIConnectionError(f"cannot reach Redis at {safe_url(url)}: {exc}") from None
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                redis.aclose() if hasattr(redis, "aclose") else redis.close(), timeout
            )


@contextlib.asynccontextmanager
async def _source(
    args: argparse.Namespace,
    settings: Settings | None,
    servers: dict[str, Settings] | None,
) -> AsyncIterator[tuple[EventSource, Callable[[Coroutine[Any, Any, None]], Awaitable[None]]]]:
    """The client or fleet to export, not yet connected, and how to connect it."""
    mask: bool | str = args.mask if args.mask else True
    trace = verbosity(args) >= 2
    if servers is not None:
        async with open_fleet(
            servers, events=mask, ping_interval=TAIL_PING_INTERVAL, trace=trace
        ) as fleet:
            for name, client in fleet.items():
                client.add_connect_hook(_ReconnectNote(name))

            yield fleet, lambda work: while_connecting(fleet, work)
        return
    assert settings is not None
    async with open_client(
        settings, events=mask, reconnect=True, ping_interval=TAIL_PING_INTERVAL, trace=trace
    ) as client:
        client.add_connect_hook(_ReconnectNote())

        async def connected(work: Coroutine[Any, Any, None]) -> None:
            try:
                await client.connect()
                log.info("connected; exporting (Ctrl-C to stop)")
            except BaseException:
                work.close()
                raise
            await work

        yield client, connected


async def _export(
    args: argparse.Namespace,
    settings: Settings | None,
    servers: dict[str, Settings] | None,
    where: list[tuple[str, str]],
) -> int:
    timeout = (settings or next(iter((servers or {}).values()))).timeout
    await _check_redis(args.redis, timeout)
    async with _source(args, settings, servers) as (source, connect):
        exporter = RedisStreamExporter(
            source,
            args.redis,
            stream=args.stream,
            maxlen=args.maxlen,
            names=args.names,
            predicate=where_predicate(where),
            buffer=args.buffer or 100_000,
            timeout=timeout,
        )
        exporter.start()  # subscribed before the login: nothing sent after it is missed
        task = exporter._task
        assert task is not None

        async def exporting() -> None:
            # Until Ctrl-C, --duration, or the source's end (a server refusing the login).
            await asyncio.wait((task,), timeout=args.duration)

        try:
            await connect(exporting())
        finally:
            await exporter.close(timeout=timeout)
            say(
                "note",
                f"{exporter.exported} event(s) exported to {args.stream} at "
                f"{safe_url(args.redis)}, {exporter.dropped} dropped",
            )
    if exporter.dropped:
        warn("some events were dropped: Redis was away longer than the buffer lasted")
        return EXIT_ACTION
    return EXIT_OK


def add_export(subparsers: Any) -> None:
    """The `export` subcommand."""
    export = subparser(
        subparsers,
        "export",
        "append every event to a Redis Stream",
        "Append every event (or the NAMEs given) to a Redis Stream, tagged with its\n"
        "server, for consumers on other machines (consumer groups: XREADGROUP/XACK).\n"
        "Entries: server, event, headers (a JSON list of [key, value]), seq. While\n"
        "Redis is away events wait in a bounded buffer; past it they are counted as\n"
        "dropped, logged, and a gap entry marks the place. Needs the redis package:\n"
        "pip install 'ami_async[redis]'.",
        "examples:\n"
        f"  {PROG} export --redis redis://127.0.0.1:6379/0\n"
        f"  {PROG} export Hangup 'Queue*' --redis redis://cache:6379/0 --stream pbx:calls\n"
        f"  {PROG} export --redis redis://127.0.0.1:6379/0 --server east=10.0.0.1 "
        "--server west=10.0.0.2",
        EXPORT_EXIT_CODES,
    )
    export.add_argument("names", nargs="*", metavar="NAME", help="event name or pattern")
    export.add_argument(
        "--redis",
        default=DEFAULT_URL,
        metavar="URL",
        help=f"the Redis server, redis://[:PASSWORD@]HOST[:PORT][/DB] (default {DEFAULT_URL})",
    )
    export.add_argument(
        "--stream", default="ami:events", metavar="KEY", help="the stream (default ami:events)"
    )
    export.add_argument(
        "--maxlen",
        type=int,
        default=1_000_000,
        metavar="N",
        help="trim the stream to about N entries (XADD MAXLEN ~; default 1000000)",
    )
    export.add_argument(
        "--buffer",
        type=int,
        metavar="N",
        help="events kept while Redis is away before dropping (default 100000)",
    )
    export.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only events whose KEY header matches VALUE (an fnmatch pattern); repeatable",
    )
    export.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    export.add_argument("--mask", metavar="CLASSES", help="event classes asked for at login")
    add_servers(export)
    add_connection(export)
    add_verbose(export, "verbose")
    export.set_defaults(handler=_run_export)
