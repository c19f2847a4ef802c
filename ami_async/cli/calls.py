"""`ami-async calls`: a tail of finished calls (one line each, like a CDR), or `--live` calls."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import SubscriptionOverflowError
from .common import (
    EXIT_OK,
    PROG,
    UsageError,
    add_verbose,
    out,
    run_async,
    subparser,
    verbosity,
    warn,
)
from .connection import Settings, add_connection, log, open_client, resolve_settings
from .events import TAIL_PING_INTERVAL, _ReconnectNote
from .output import dumps, printable, valid_text

if TYPE_CHECKING:  # imported when the command runs: `ami-async --help` stays quick
    from ..client import Client
    from ..live import Call, CallerID, CallRecord, ChangeStream, Live

#: `--live` on a terminal: redraw at least this often (durations move).
REDRAW_INTERVAL = 1.0
_CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen (ANSI; every terminal emulator has it)


def party(who: CallerID) -> str:
    """`Name <number>`, the number, the name, or `-`: terminal-safe."""
    if who.name and who.num:
        return printable(f"{who.name} <{who.num}>")
    return printable(who.num or who.name or "-")


def clock(seconds: float) -> str:
    """`M:SS` or `H:MM:SS`."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cause_text(record: CallRecord) -> str:
    """`NORMAL_CLEARING(16)`: the hang-up cause by name and number, `-` if none."""
    cause = record.cause
    if cause is None:
        return "-"
    name = getattr(cause, "name", None)
    return f"{name}({int(cause)})" if name else str(int(cause))


def record_line(record: CallRecord) -> str:
    """One line per finished call: end time, caller, callee, disposition, duration, talk, cause."""
    ended = record.ended_at.astimezone().strftime("%H:%M:%S")
    return (
        f"{ended} {party(record.caller)} -> {party(record.callee)} {record.disposition} "
        f"duration={clock(record.duration)} talk={clock(record.billsec)} "
        f"cause={cause_text(record)}"
        + (f" transfers={len(record.transfers)}" if record.transfers else "")
        + (" (ended while disconnected)" if record.reason == "resync" else "")
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone().isoformat(timespec="milliseconds")


def _party_json(who: CallerID) -> dict[str, str | None]:
    return {
        "num": None if who.num is None else valid_text(who.num),
        "name": None if who.name is None else valid_text(who.name),
    }


def record_json(record: CallRecord) -> dict[str, Any]:
    """The JSON shape of a finished call (docs/cli.md)."""
    cause = record.cause
    return {
        "type": "call",
        "linkedid": record.linkedid,
        "caller": _party_json(record.caller),
        "callee": _party_json(record.callee),
        "started_at": _iso(record.started_at),
        "answered_at": _iso(record.answered_at),
        "ended_at": _iso(record.ended_at),
        "duration": round(record.duration, 3),
        "billsec": round(record.billsec, 3),
        "disposition": record.disposition,
        "cause": None if cause is None else int(cause),
        "cause_name": getattr(cause, "name", None),
        "transfers": [transfer.kind for transfer in record.transfers],
        "channels": [valid_text(channel.name) for channel in record.channels],
        "reason": record.reason,
    }


# -- --live: the current calls as a table ------------------------------------------------------


def _call_state(call: Call) -> str:
    if call.answered_at is not None:
        return "on hold" if any(c.on_hold for c in call.channels.values()) else "up"
    return "ringing"


def live_table(calls: Sequence[Call], now: datetime, *, width: int = 100) -> list[str]:
    """The current calls, oldest first: caller, callee, state, duration, channels."""
    rows = [
        (
            party(call.caller),
            party(call.callee),
            _call_state(call),
            clock((now - call.started_at).total_seconds()),
            str(len(call.channels)),
        )
        for call in sorted(calls, key=lambda c: c.started_at)
    ]
    head = ("caller", "callee", "state", "duration", "channels")
    widths = [max(len(row[i]) for row in (head, *rows)) for i in range(len(head))]
    # The two party columns share what the terminal leaves; the others keep their width.
    room = max(20, width - sum(widths[2:]) - 8)
    for i in (0, 1):
        widths[i] = min(widths[i], room // 2)

    def line(row: Sequence[str]) -> str:
        cells = [_fit(cell, widths[i]) for i, cell in enumerate(row)]
        return (
            f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]:<{widths[2]}}  "
            f"{cells[3]:>{widths[3]}}  {cells[4]:>{widths[4]}}"
        ).rstrip()

    stamp = now.astimezone().strftime("%H:%M:%S")
    title = f"{stamp}  {len(rows)} call{'s' if len(rows) != 1 else ''}"
    return [title, line(head), *(line(row) for row in rows)]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "~"


def _is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# -- running -----------------------------------------------------------------------------------


def _run_calls(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1", parser)
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds", parser)
    if args.live and args.json:
        raise UsageError(
            "--live draws a table for people; --json is for one record per line", parser
        )
    settings = resolve_settings(args, os.environ)
    return run_async(lambda: _calls(args, settings))


async def _calls(args: argparse.Namespace, settings: Settings) -> int:
    from ..live import Live

    async with open_client(
        settings,
        events=True,
        reconnect=True,
        ping_interval=TAIL_PING_INTERVAL,
        trace=verbosity(args) >= 2,
    ) as ami:
        ami.add_connect_hook(_ReconnectNote())
        await ami.connect()
        async with Live(ami) as live:
            log.info("connected; following calls (Ctrl-C to stop)")
            changes = live.changes()
            # --fake: the embedded simulated PBX is idle; give it calls to show.
            samples = asyncio.ensure_future(_sample_calls(ami)) if settings.fake else None
            try:
                if args.live:
                    await _redraw(live, changes, args.duration, tty=_is_tty())
                else:
                    await _tail(changes, args)
            finally:
                changes.close()
                if samples is not None:
                    samples.cancel()
                    await asyncio.gather(samples, return_exceptions=True)
    return EXIT_OK


#: --fake places these calls on the simulated PBX's lab dialplan: one answered
#: (100 answers and hangs up after 2 s), one busy (2003 dials 460, busy), one
#: nobody answers (2001 dials 2002 for 3 s). They end in that order: busy, answered, no answer.
SAMPLE_CALLS = (
    ("100", '"Ada Lovelace" <5550001>'),
    ("2003", '"Alan Turing" <5550002>'),
    ("2001", "5550003"),
)


async def _sample_calls(ami: Client) -> None:
    for exten, caller_id in SAMPLE_CALLS:
        await ami.originate(
            f"Local/{exten}@test", application="Wait", data="10", caller_id=caller_id, wait=False
        )


def _deadline(duration: float | None) -> float | None:
    return None if duration is None else asyncio.get_running_loop().time() + duration


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - asyncio.get_running_loop().time()


async def _tail(changes: ChangeStream, args: argparse.Namespace) -> None:
    """Print each call as it ends, until `--count` calls or `--duration` seconds."""
    from ..live import CallEnded

    deadline = _deadline(args.duration)
    seen = 0
    while args.count is None or seen < args.count:
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            return
        try:
            change = await changes.get(timeout=remaining)
        except TimeoutError:
            return
        except SubscriptionOverflowError as exc:
            warn(f"{exc.dropped} change(s) lost: this terminal read too slowly")
            continue
        if isinstance(change, CallEnded):
            record = change.record
            out(dumps(record_json(record)) if args.json else record_line(record), flush=True)
            seen += 1


async def _redraw(live: Live, changes: ChangeStream, duration: float | None, *, tty: bool) -> None:
    """Draw the current calls again after each change (and every second on a terminal).

    Not on a terminal (a pipe, a file, a log): no escape codes, and a new table
    only when something changed, each after a blank line.
    """
    deadline = _deadline(duration)
    shown: list[tuple[str, ...]] | None = None
    while True:
        calls = list(live.calls.values())
        lines = live_table(calls, datetime.now().astimezone(), width=_width())
        if tty:
            sys.stdout.write(_CLEAR + "\n".join(lines) + "\n")
            sys.stdout.flush()
        elif shown is None or _shape(calls) != shown:
            out(("\n" if shown is not None else "") + "\n".join(lines), flush=True)
        shown = _shape(calls)
        remaining = _remaining(deadline)
        if remaining is not None and remaining <= 0:
            return
        wait = REDRAW_INTERVAL if tty else None
        if remaining is not None:
            wait = remaining if wait is None else min(wait, remaining)
        try:
            await changes.get(timeout=wait)
        except TimeoutError:
            continue
        except SubscriptionOverflowError:
            pass  # the table is drawn from the model, which lost nothing
        while True:  # one drawing for a burst of changes
            try:
                if changes.get_nowait() is None:
                    break
            except SubscriptionOverflowError:
                continue


def _shape(calls: Sequence[Call]) -> list[tuple[str, ...]]:
    """The table without its durations: what decides whether a pipe is sent a new one."""
    return [
        (c.linkedid, party(c.caller), party(c.callee), _call_state(c), str(len(c.channels)))
        for c in sorted(calls, key=lambda c: c.started_at)
    ]


def _width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 100  # 0: size unknown
    except (AttributeError, ValueError, OSError):
        return 100


def add_calls(subparsers: Any) -> None:
    """The `calls` subcommand."""
    calls = subparser(
        subparsers,
        "calls",
        "one line per finished call (a CDR tail), or the current calls with --live",
        "Follow the PBX with the live model (ami_async.live) and print one line per\n"
        "call as it ends: end time, caller -> callee, disposition (ANSWERED, NO ANSWER,\n"
        "BUSY, FAILED, CONGESTION), duration, talk time (billsec) and hang-up cause;\n"
        "or one JSON object per line with --json. --live instead redraws the calls\n"
        "up now (plain text, one table per change, when stdout is not a terminal).\n"
        "With --fake, three sample calls are placed on the simulated PBX.",
        f"examples:\n  {PROG} calls\n  {PROG} calls --json >> calls.jsonl\n  {PROG} calls --live",
    )
    calls.add_argument("--json", action="store_true", help="one JSON object per finished call")
    calls.add_argument("--live", action="store_true", help="redraw the current calls")
    calls.add_argument("--count", type=int, metavar="N", help="stop after N finished calls")
    calls.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    add_connection(calls)
    add_verbose(calls, "verbose")
    calls.set_defaults(handler=_run_calls)
