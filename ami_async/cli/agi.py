"""`ami-async agi-serve`: run an AGI handler as a FastAGI server.

The dialplan reaches it with ``AGI(agi://HOST:PORT/script?query,arg1,...)``;
each connection runs ``handler(session)`` with an `ami_async.agi.AGISession`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import os
import signal
import sys
from typing import Any

from ..agi import AGIHandler, serve
from .common import EXIT_OK, PROG, UsageError, add_verbose, out, run_async, say, subparser

__all__ = ["add_agi_serve", "load_handler"]

_EXIT_CODES = (
    "exit status: 0 stopped (SIGTERM, or --duration over), 2 bad handler or arguments,\n"
    "3 cannot listen on the address, 130 interrupted (Ctrl-C)"
)
EXIT_LISTEN = 3


def add_agi_serve(subparsers: Any) -> None:
    """The `agi-serve` subcommand."""
    parser = subparser(
        subparsers,
        "agi-serve",
        "run an AGI handler as a FastAGI server (AGI(agi://host:port/...))",
        "Import HANDLER (module:function, the module found from the current directory\n"
        "too) and serve it over FastAGI: each connection from Asterisk's\n"
        "AGI(agi://HOST:PORT/script?query) runs `async def function(agi)` with an\n"
        "ami_async.agi.AGISession. A handler that raises is logged with its channel\n"
        "and never stops the server. Prints `listening on HOST:PORT` once ready;\n"
        "Ctrl-C or SIGTERM stops it (running sessions get --grace seconds).",
        "examples:\n"
        f"  {PROG} agi-serve examples.ivr:ivr\n"
        f"  {PROG} agi-serve myapp.agi:handler --host 0.0.0.0 --port 4573 --max-sessions 200",
        _EXIT_CODES,
    )
    parser.add_argument("target", metavar="HANDLER", help="module:function to run per call")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=4573, help="port to listen on (4573; 0 picks a free one)"
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=100,
        metavar="N",
        help="calls served at once; more are refused (the dialplan goes on) (100)",
    )
    parser.add_argument(
        "--command-timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="default bound on each AGI command's answer, in seconds (300)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="S",
        help="at stop, seconds running sessions get before they are cancelled (10)",
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: when stopped)"
    )
    add_verbose(parser, "verbose")
    parser.set_defaults(handler=_run)


def load_handler(spec: str) -> AGIHandler:
    """The coroutine function named by ``module:function`` (`UsageError` if there is none)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"HANDLER must look like module:function, not {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise UsageError(f"{module_name!r} has no {attribute!r}")
    if not callable(target):
        raise UsageError(f"{spec} is not callable")
    if not (
        inspect.iscoroutinefunction(target)
        or inspect.iscoroutinefunction(type(target).__call__)  # an instance, async __call__
    ):
        raise UsageError(f"{spec} must be an async function: async def {attribute}(agi): ...")
    handler: AGIHandler = target
    return handler


def _run(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, not {args.port}", parser)
    if args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be at least 1, not {args.max_sessions}", parser)
    for name in ("command_timeout", "grace", "duration"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, not {value}", parser)
    try:
        handler = load_handler(args.target)
    except UsageError as exc:
        raise UsageError(str(exc), parser) from None
    return run_async(lambda: _serve(args, handler))


async def _serve(args: argparse.Namespace, handler: AGIHandler) -> int:
    try:
        server = await serve(
            handler,
            args.host,
            args.port,
            max_sessions=args.max_sessions,
            command_timeout=args.command_timeout,
        )
    except OSError as exc:
        say("error", f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_LISTEN
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    try:
        out(f"listening on {args.host}:{server.port}", flush=True)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((stopping,), timeout=args.duration)
        finally:
            stopping.cancel()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
        await server.close(args.grace)
    return EXIT_OK
