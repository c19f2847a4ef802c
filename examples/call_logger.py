"""Call logger: one CSV row per finished call, from the live model's call records.

`ami_async.Live` groups the channels of each call and, when its last channel is
gone, hands over a `CallRecord` that agrees with Asterisk's own CDR (caller,
callee, times, duration, billsec, disposition, hang-up cause). This script
appends each one to a CSV file as the calls end::

    python examples/call_logger.py calls.csv                  # until Ctrl-C
    python examples/call_logger.py calls.csv --count 100      # 100 calls, then exit
    python examples/call_logger.py - --fake                   # the simulated PBX, 3 calls

Connection from ``--host``/``--port``/``--username`` and ``AMI_HOST``/``AMI_PORT``/
``AMI_USERNAME``/``AMI_SECRET`` (the secret only from the environment: arguments
are visible to other local users). The manager user needs ``read = call``
(docs/live.md, "Limits"). The header row is written when the file is new.
Exit status: 0 done (or Ctrl-C), 2 bad usage, 3 no connection or login refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TextIO

from ami_async import AMIConnectionError, AuthenticationError, Client
from ami_async.live import CallEnded, CallRecord, Live

__all__ = ["COLUMNS", "CsvLog", "log_calls", "main", "row"]

COLUMNS = (
    "linkedid", "caller_num", "caller_name", "callee", "started_at", "answered_at",
    "ended_at", "duration", "billsec", "disposition", "cause", "transfers",
)  # fmt: skip


def row(record: CallRecord) -> list[str]:
    """The CSV row of a finished call (times in UTC, ISO 8601; seconds as decimals)."""
    answered = record.answered_at
    return [
        record.linkedid,
        record.caller.num or "",
        record.caller.name or "",
        record.callee.num or "",
        record.started_at.isoformat(timespec="seconds"),
        answered.isoformat(timespec="seconds") if answered else "",
        record.ended_at.isoformat(timespec="seconds"),
        f"{record.duration:.1f}",
        f"{record.billsec:.1f}",
        record.disposition,
        "" if record.cause is None else str(int(record.cause)),
        " ".join(transfer.kind for transfer in record.transfers),
    ]


class CsvLog:
    """A CSV file (``-``: standard output) each record is appended to, line by line."""

    def __init__(self, path: Path) -> None:
        if str(path) == "-":
            self._file: TextIO = sys.stdout
        else:
            self._file = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if not (self._file.seekable() and self._file.tell() > 0):  # a new file
            self._writer.writerow(COLUMNS)

    def write(self, record: CallRecord) -> None:
        self._writer.writerow(row(record))
        self._file.flush()  # a line is whole on disk as soon as the call has ended

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()


async def log_calls(live: Live, log: CsvLog, count: int | None = None) -> int:
    """Write every call that ends from now on (``count`` of them, or until cancelled)."""
    written = 0
    async with live.changes() as changes:
        async for change in changes:
            if isinstance(change, CallEnded):
                record = change.record
                log.write(record)
                written += 1
                print(  # progress on stderr: the CSV may be on stdout
                    f"{record.caller.num} -> {record.callee.num}: {record.disposition}",
                    file=sys.stderr,
                )
                if written == count:
                    break
    return written


# -- running it --------------------------------------------------------------------------------

#: --fake: an answered call (2010 dials 2011), a busy one (2003), one nobody answers (2001).
DEMO_CALLS = (("2010", '"Ada Lovelace" <5550001>'), ("2003", "5550002"), ("2001", "5550003"))


@contextlib.asynccontextmanager
async def connected(args: argparse.Namespace) -> AsyncIterator[Client]:
    """A client of the PBX ``args`` name, or of an embedded simulated PBX (``--fake``)."""
    if not args.fake:
        secret = os.environ["AMI_SECRET"]  # parse_args checked it is set
        async with Client(args.host, args.port, username=args.username, secret=secret) as client:
            yield client
        return
    from ami_async.testing import FakeAsterisk

    async with FakeAsterisk(time_scale=0.1) as pbx:
        username, secret = next(iter(pbx.users.items()))
        async with Client(pbx.host, pbx.port, username=username, secret=secret) as client:
            yield client


async def run(args: argparse.Namespace) -> int:
    async with connected(args) as client, Live(client) as live:
        log = CsvLog(args.file)
        try:
            print(f"logging calls to {args.file}", file=sys.stderr)
            task = asyncio.ensure_future(log_calls(live, log, args.count))
            if args.fake:
                for exten, caller_id in DEMO_CALLS:
                    await client.originate(
                        f"Local/{exten}@test",
                        application="Wait",
                        data="5",
                        caller_id=caller_id,
                        wait=False,
                    )
            await task
        finally:
            log.close()
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="call_logger.py", description="Append one CSV row per finished call to FILE."
    )
    parser.add_argument("file", type=Path, help="the CSV file (created, or appended to; - stdout)")
    parser.add_argument("--count", type=int, help="stop after this many calls")
    parser.add_argument("--host", default=os.environ.get("AMI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AMI_PORT", "5038")))
    parser.add_argument("--username", default=os.environ.get("AMI_USERNAME"))
    parser.add_argument("--fake", action="store_true", help="an embedded simulated PBX, 3 calls")
    args = parser.parse_args(argv)
    if args.fake and args.count is None:
        args.count = len(DEMO_CALLS)
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if not args.fake and not (args.username and os.environ.get("AMI_SECRET")):
        parser.error("set AMI_USERNAME (or --username) and AMI_SECRET, or give --fake")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    except (AuthenticationError, AMIConnectionError) as exc:
        print(f"call_logger: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
