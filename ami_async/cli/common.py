"""What every command shares: exit statuses, usage errors, stdout/stderr, running a coroutine.

Every message for the user goes to stderr in one format, `ami-async COMMAND: LEVEL: text`
(`ami-async: LEVEL: text` before a command is known), LEVEL being `error`, `warning` or
`note`; stdout carries results only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, cast

from ..errors import (
    ActionError,
    ActionTimeoutError,
    AMIConnectionError,
    AuthenticationError,
    InvalidActionError,
    ProtocolError,
)

EXIT_OK = 0
EXIT_ACTION = 1  #: an error response, a failed call, an action timeout, an undecodable file
EXIT_USAGE = 2  #: bad arguments or configuration
EXIT_CONNECTION = 3  #: cannot connect, login refused, connection lost
EXIT_INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT)
EXIT_PIPE = 141  #: stdout closed under us (128 + SIGPIPE), e.g. `| head`

PROG = "ami-async"


class _Running:
    """The subcommand being run, named in every message on stderr."""

    command: str | None = None


def set_command(name: str | None) -> None:
    _Running.command = name


def prefix() -> str:
    """`ami-async COMMAND`, or `ami-async` before a command is known."""
    return f"{PROG} {_Running.command}" if _Running.command else PROG


# -- usage errors --------------------------------------------------------------------------


class UsageError(Exception):
    """Bad arguments, configuration or input file: exit status 2."""

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class CliParser(argparse.ArgumentParser):
    """Raises `UsageError` instead of exiting, so `main` can redact and return 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


def out(line: str = "", *, flush: bool = False) -> None:
    sys.stdout.write(line + "\n")
    if flush:
        sys.stdout.flush()


def say(level: str, message: str) -> None:
    """One line on stderr: `ami-async COMMAND: LEVEL: message`."""
    sys.stderr.write(f"{prefix()}: {level}: {message}\n")
    sys.stderr.flush()


def err(message: str) -> None:
    say("error", message)


def warn(message: str) -> None:
    say("warning", message)


# -- the argument parser ---------------------------------------------------------------------

FORMATTER = argparse.RawDescriptionHelpFormatter

EXIT_CODES = """\
exit status: 0 ok, 1 action failed, 2 usage, 3 connection or login failure,
130 interrupted (Ctrl-C), 141 output pipe closed (e.g. | head)"""


def add_verbose(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest=dest,
        help="log to stderr: -v connection events, -vv debug with the wire trace (secrets hidden)",
    )


def subparser(
    subparsers: Any,
    name: str,
    summary: str,
    description: str,
    epilog: str,
    exit_codes: str = EXIT_CODES,
) -> argparse.ArgumentParser:
    parser = cast(
        argparse.ArgumentParser,
        subparsers.add_parser(
            name,
            help=summary,
            description=description,
            epilog=f"{epilog}\n\n{exit_codes}",
            formatter_class=FORMATTER,
        ),
    )
    parser.set_defaults(subparser=parser)
    return parser


# -- running a command: asyncio, Ctrl-C and the exit status ----------------------------------


def run_async(make: Callable[[], Awaitable[int]]) -> int:
    return asyncio.run(_guarded(make))


async def _guarded(make: Callable[[], Awaitable[int]]) -> int:
    """Run a command, map library errors to exit statuses, turn Ctrl-C into 130 quietly."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        if task is not None:
            task.cancel()

    handler_installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        handler_installed = True
    try:
        return await make()
    except asyncio.CancelledError:
        if interrupted:
            return EXIT_INTERRUPTED
        raise
    except AuthenticationError as exc:
        text = str(exc)  # it says "refused" itself, once is enough
        err(text if "refused" in text.lower() else f"login refused: {text}")
        return EXIT_CONNECTION
    except (AMIConnectionError, ProtocolError) as exc:
        err(str(exc))
        return EXIT_CONNECTION
    except InvalidActionError as exc:
        err(str(exc))
        return EXIT_USAGE
    except ActionTimeoutError as exc:
        text = str(exc)
        err(text if "within" in text or "timed out" in text else f"timed out: {text}")
        return EXIT_ACTION
    except ActionError as exc:
        err(f"error response: {exc}")
        return EXIT_ACTION
    finally:
        if handler_installed:
            loop.remove_signal_handler(signal.SIGINT)


def verbosity(args: argparse.Namespace) -> int:
    return int(getattr(args, "verbose_top", 0)) + int(getattr(args, "verbose", 0))


def pairs(
    values: Sequence[str], what: str, parser: argparse.ArgumentParser
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} must look like KEY=VALUE, not {item!r}", parser)
        pairs.append((key.strip(), value))
    return pairs
