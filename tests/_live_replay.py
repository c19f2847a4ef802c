"""Test helpers for the live model: a capture's events, replayed through a real client
at their recorded times, and what Asterisk's own CDR and CEL say about its calls.

The events of a capture are sent by a `FakeAsterisk` (`send_raw`), one recorded
read's worth at a time; the `Live` under test runs on a clock that reads the
recorded time, and a marker `UserEvent` after each read proves the model has
applied it before the clock moves on.
"""

from __future__ import annotations

import asyncio
import calendar
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from _fixtures import VERSIONS, fixtures_dir, read_ami

import ami_async
from ami_async.live import CallRecord, Change, Live
from ami_async.message import Event, Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk

__all__ = [
    "CallFacts",
    "Capture",
    "capture_files",
    "expected_disposition",
    "load_capture",
    "replay_into_live",
]

#: Where the replayed clock starts (any epoch time works: only differences are compared).
BASE = 1_800_000_000.0


def capture_files() -> list[Path]:
    """Every AMI `.ami` capture of both versions (the FastAGI `.agi` files are not AMI)."""
    root = fixtures_dir()
    return [p for v in VERSIONS for p in sorted((root / v).glob("*.ami"))]


def _cel_time(text: str) -> float:
    """A CEL `EventTime` (`2026-11-27 09:43:50`, or with a fraction) as epoch seconds."""
    whole, _, frac = text.partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%d %H:%M:%S"))
    return seconds + (float("0." + frac) if frac.isdigit() else 0.0)


@dataclass
class CallFacts:
    """What CEL says of one call (by linkedid)."""

    starts: dict[str, float] = field(default_factory=dict)  # uniqueid -> CHAN_START
    first_answer: float | None = None
    end: float | None = None  # LINKEDID_END


@dataclass
class Capture:
    """One capture's events (with the time of the read that completed each) and its CDR/CEL."""

    path: Path
    events: list[tuple[float, Event]]
    cdrs: list[Event]
    cel: dict[str, CallFacts]
    created: list[str]  # uniqueids with a Newchannel, in order
    hung_up: set[str]
    bridges_left: set[str]  # BridgeCreate without BridgeDestroy

    @property
    def left_up(self) -> list[str]:
        """The channels the capture leaves up (created, never hung up)."""
        return [u for u in self.created if u not in self.hung_up]


def load_capture(path: Path) -> Capture:
    parser = Parser()
    events: list[tuple[float, Event]] = []
    for rec in read_ami(path):
        if rec.direction != "<<<":
            continue
        for msg in parser.feed(rec.data):
            # List items and the answers to the recorded client's actions are that
            # client's; the model follows the event stream.
            if isinstance(msg, Event) and msg.get("ActionID") is None:
                events.append((rec.seconds, msg))
    cdrs: list[Event] = []
    cel: dict[str, CallFacts] = {}
    created: list[str] = []
    hung_up: set[str] = set()
    bridges: set[str] = set()
    for _, ev in events:
        name = ev.name
        if name == "Cdr":
            cdrs.append(ev)
        elif name == "CEL":
            facts = cel.setdefault(ev.get("LinkedID") or "", CallFacts())
            at = _cel_time(ev.get("EventTime") or "")
            kind = ev.get("EventName")
            if kind == "CHAN_START":
                facts.starts.setdefault(ev.get("UniqueID") or "", at)
            elif kind == "ANSWER" and facts.first_answer is None:
                facts.first_answer = at
            elif kind == "LINKEDID_END":
                facts.end = at
        elif name == "Newchannel":
            created.append(ev.get("Uniqueid") or "")
        elif name == "Hangup":
            hung_up.add(ev.get("Uniqueid") or "")
        elif name == "BridgeCreate":
            bridges.add(ev.get("BridgeUniqueid") or "")
        elif name == "BridgeDestroy":
            bridges.discard(ev.get("BridgeUniqueid") or "")
    return Capture(path, events, cdrs, cel, created, hung_up, bridges)


def expected_disposition(cdrs: list[Event], uniqueids: list[str]) -> str | None:
    """DESIGN's rule over the `Cdr` events of a call's channels (`None`: no Cdr at all).

    `ANSWERED` if any is; otherwise the first with a `DestinationChannel` (the
    dialled leg); otherwise the first channel's.
    """
    mine = [c for c in cdrs if c.get("UniqueID") in uniqueids]
    if not mine:
        return None
    if any(c.get("Disposition") == "ANSWERED" for c in mine):
        return "ANSWERED"
    for cdr in mine:
        if cdr.get("DestinationChannel"):
            return cdr.get("Disposition")
    for cdr in mine:
        if cdr.get("UniqueID") == uniqueids[0]:
            return cdr.get("Disposition")
    return mine[0].get("Disposition")


def _frame(msg: Message) -> bytes:
    return (
        "".join(f"{k}: {v}\r\n" for k, v in msg.headers).encode("utf-8", "surrogateescape")
        + b"\r\n"
    )


@asynccontextmanager
async def replay_into_live(
    capture: Capture, *, history: int = 10_000, changes: list[Change] | None = None
) -> AsyncIterator[Live]:
    """A `Live` on a real client that has seen every event of `capture` at its recorded time.

    `changes`, if given, receives every change the replay made, in order.
    """
    now = [BASE]
    async with FakeAsterisk(pbx=False) as fake:
        client = ami_async.Client(
            fake.host, fake.port, username="admin", secret="amp111", ping_interval=None
        )
        async with client:
            marks: dict[str, asyncio.Future[None]] = {}

            def on_mark(ev: Event) -> None:
                waiter = marks.pop(ev.get("Mark") or "", None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)

            async with Live(client, history=history, clock=lambda: now[0]) as live:
                client.on("UserEvent")(on_mark)
                stream = live.changes(maxsize=1_000_000)
                counter = itertools.count()
                for seconds, group in itertools.groupby(capture.events, key=lambda p: p[0]):
                    now[0] = BASE + seconds
                    mark = str(next(counter))
                    waiter = asyncio.get_running_loop().create_future()
                    marks[mark] = waiter
                    data = b"".join(_frame(ev) for _, ev in group)
                    data += (
                        f"Event: UserEvent\r\nUserEvent: LiveMark\r\nMark: {mark}\r\n\r\n".encode()
                    )
                    await fake.send_raw(data)
                    await asyncio.wait_for(waiter, 10)
                if changes is not None:
                    while (change := stream.get_nowait()) is not None:
                        changes.append(change)
                yield live


def records_by_linkedid(records: tuple[CallRecord, ...]) -> dict[str, list[CallRecord]]:
    out: dict[str, list[CallRecord]] = {}
    for record in records:
        out.setdefault(record.linkedid, []).append(record)
    return out
