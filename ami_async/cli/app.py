"""The `ami-async` argument parser and `main`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence

from . import actions, agi, calls, decode, describe, events, export, simulated
from .common import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_USAGE,
    FORMATTER,
    PROG,
    CliParser,
    UsageError,
    add_verbose,
    err,
    prefix,
    set_command,
    verbosity,
)

#: The subcommands, in the order `--help` lists them.
ADDERS = (
    simulated.add_demo,
    events.add_events,
    export.add_export,
    calls.add_calls,
    actions.add_action,
    actions.add_command,
    actions.add_originate,
    decode.add_decode,
    describe.add_describe,
    agi.add_agi_serve,
    simulated.add_fake_pbx,
)


def _secrets_in(argv: Sequence[str]) -> list[str]:
    """Values given to `--secret` on the command line (to keep them out of error messages)."""
    found: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--secret" and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--secret="):
            found.append(arg.partition("=")[2])
    return [s for s in found if s and s != "-"]


def _redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with each secret hidden where it stands as a word (`x`, `--secret=x`)."""
    for secret in secrets:
        text = re.sub(rf"(?<![^\s='\"]){re.escape(secret)}(?![^\s'\"])", "********", text)
    return text


def build_parser() -> argparse.ArgumentParser:
    """The `ami-async` argument parser (every subcommand has its own `--help`)."""
    from .. import __version__

    parser = CliParser(
        prog=PROG,
        description="Talk to an Asterisk Manager Interface (AMI) from the shell, "
        "with ami_async. New here? Run: ami-async demo",
        epilog=f"'{PROG} COMMAND --help' describes each command.\n\n{EXIT_CODES}",
        formatter_class=FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_verbose(parser, "verbose_top")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    for add in ADDERS:
        add(subparsers)
    return parser


# -- main --------------------------------------------------------------------------------------


class _PlainFormatter(logging.Formatter):
    """`warning`, `error`: the level in lower case, as in the CLI's own messages."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        lowered = logging.makeLogRecord({**record.__dict__, "levelname": record.levelname.lower()})
        return super().formatMessage(lowered)


@contextlib.contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Log `ami_async` to stderr: warnings always, -v info, -vv debug with the wire trace."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if verbosity:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:  # the same shape as every other message: `ami-async COMMAND: warning: ...`
        handler.setFormatter(_PlainFormatter(f"{prefix()}: %(levelname)s: %(message)s"))
    root = logging.getLogger("ami_async")
    saved = (root.level, root.propagate)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at devnull so the interpreter's flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ami-async` with `argv` (default `sys.argv[1:]`); return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    secrets = _secrets_in(arguments)
    parser = build_parser()
    args: argparse.Namespace | None = None
    try:
        try:
            args, extra = parser.parse_known_args(arguments)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if extra:  # refused by the command's own parser, so its usage is the one shown
            refuser = getattr(args, "subparser", None) or parser
            refuser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        set_command(args.command)
        with _logging(verbosity(args)):
            handler: Callable[[argparse.Namespace], int] = args.handler
            return handler(args)
    except UsageError as exc:
        # The usage of the command at fault: the parser that refused an argument, else
        # the subcommand whose settings or input were found wrong after parsing.
        subcommand: argparse.ArgumentParser | None = getattr(args, "subparser", None)
        shown = exc.parser or subcommand or parser
        set_command(shown.prog[len(PROG) :].strip() or None)
        shown.print_usage(sys.stderr)
        err(_redact(str(exc), secrets))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    finally:
        set_command(None)
