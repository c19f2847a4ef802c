"""Test helpers: where the recorded AMI captures live, how to read them, how to compare parses.

The captures are in ``../shared/fixtures`` (next to this checkout) unless the
``AMI_FIXTURES`` environment variable names another directory. A missing
directory is an error, never a reason to skip: these tests are the parser's
evidence.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ami_async.client import Client
from ami_async.message import Event, Message, Response
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk

__all__ = [
    "BANNERS",
    "FIXTURES",
    "VERSIONS",
    "Facts",
    "Peer",
    "Record",
    "Snapshot",
    "agi_transcripts",
    "bin_files",
    "check_facts",
    "feed_chunks",
    "fixture_id",
    "fixtures_dir",
    "parse",
    "random_chunks",
    "read_ami",
    "replayed",
    "replayed_with_server",
    "serial_server",
    "snapshot",
    "with_id",
]

#: The fixture folders whose captures every parser test covers.
VERSIONS = ("asterisk-22", "asterisk-13")
#: The AMI version each folder's banner announces (``Asterisk Call Manager/<version>``).
BANNERS = {"asterisk-22": "11.0.0", "asterisk-13": "2.10.6"}

_DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
#: The fixtures directory (``AMI_FIXTURES`` overrides the default location).
FIXTURES = Path(os.environ["AMI_FIXTURES"]) if os.environ.get("AMI_FIXTURES") else _DEFAULT


def fixtures_dir() -> Path:
    """The fixtures directory; raise a clear error if it (or a version folder) is missing."""
    missing = [FIXTURES / v for v in VERSIONS if not (FIXTURES / v).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"AMI fixtures not found: {', '.join(map(str, missing))} does not exist. "
            "The parser tests need the recorded captures: check out shared/fixtures next "
            "to this project or set AMI_FIXTURES to the directory that holds "
            f"{' and '.join(VERSIONS)}."
        )
    return FIXTURES


def bin_files() -> list[Path]:
    """Every ``.bin`` capture of asterisk-22 and asterisk-13, sorted."""
    root = fixtures_dir()
    files: list[Path] = []
    for version in VERSIONS:
        found = sorted((root / version).glob("*.bin"))
        if not found:
            raise FileNotFoundError(f"no .bin captures in {root / version}")
        files.extend(found)
    return files


def agi_transcripts() -> list[Path]:
    """Every FastAGI transcript (``.agi``; its joined ``<<<`` payloads are the ``.raw`` file).

    These are AGI, not AMI: no AMI parser test reads them.
    """
    root = fixtures_dir()
    return [p for version in VERSIONS for p in sorted((root / version).glob("*.agi"))]


def fixture_id(path: Path) -> str:
    """``asterisk-22/ping`` for ``.../asterisk-22/ping.bin``: a readable test id."""
    return f"{path.parent.name}/{path.stem}"


class Record(NamedTuple):
    """One record of an ``.ami`` transcript."""

    direction: str  # ">>>" sent by the client, "<<<" received, "###" recorder note
    seconds: float
    data: bytes


_RECORD = re.compile(rb"(>>>|<<<|###) (\d+\.\d{3}) (\d+)")


def read_ami(path: Path) -> list[Record]:
    """Read an ``.ami`` transcript (format in ``fixtures/README.md``); strict about framing."""
    data = path.read_bytes()
    records: list[Record] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            raise ValueError(f"{path}: unterminated line at byte {pos}")
        line = data[pos:nl]
        if not records and line.startswith(b"# "):
            pos = nl + 1  # header comment, allowed only before the first record
            continue
        m = _RECORD.fullmatch(line)
        if m is None:
            raise ValueError(f"{path}: bad record header {line[:60]!r} at byte {pos}")
        length = int(m.group(3))
        start = nl + 1
        end = start + length
        if end >= len(data) or data[end : end + 1] != b"\n":
            raise ValueError(f"{path}: record at byte {pos} is truncated or lacks its separator")
        records.append(Record(m.group(1).decode("ascii"), float(m.group(2)), data[start:end]))
        pos = end + 1
    return records


class Snapshot(NamedTuple):
    """What a user can observe of one parsed message."""

    type: str
    headers: tuple[tuple[str, str], ...]
    bare_lines: tuple[str, ...]
    body: str | None


def snapshot(messages: Iterable[Message]) -> list[Snapshot]:
    """Comparable view of messages: type, headers, bare lines and body."""
    return [Snapshot(type(m).__name__, m.headers, m.bare_lines, m.body) for m in messages]


def feed_chunks(chunks: Iterable[bytes], parser: Parser | None = None) -> list[Message]:
    """Feed ``chunks`` one ``feed()`` call each and return every message, in order."""
    parser = parser if parser is not None else Parser()
    out: list[Message] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def parse(data: bytes) -> tuple[Parser, list[Message]]:
    """Feed ``data`` whole to a fresh parser; return the parser and the messages."""
    parser = Parser()
    return parser, parser.feed(data)


def random_chunks(data: bytes, seed: int, max_size: int) -> Iterator[bytes]:
    """Split ``data`` at seeded random points into pieces of 1..max_size bytes."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):
        size = rng.randint(1, max_size)
        yield data[pos : pos + size]
        pos += size


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given offsets."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class Facts:
    """What the bytes of one capture say (counted with grep, not with this parser).

    ``sequence``: every message in order, ``R:<Response value>`` or the event name.
    ``counts``: exact number of events of each listed name.
    ``lists``: ActionID -> names of the events that carry it, in order.
    ``values``: ``(selector, key, every value of key)``; a selector is ``#<ActionID>``
    (the response with that ActionID), ``@<index>`` (a message by position) or
    ``<EventName>`` / ``<EventName>:<n>`` (the n-th event of that name, 0-based).
    ``unanswered``: ActionIDs the client sent that no response carries.
    """

    messages: int
    events: int
    sequence: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    lists: Mapping[str, str] = field(default_factory=dict)
    values: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    unanswered: tuple[str, ...] = ()


def select(msgs: Sequence[Message], selector: str) -> Message:
    """The message a `Facts` selector names (see `Facts`)."""
    if selector.startswith("@"):
        return msgs[int(selector[1:])]
    if selector.startswith("#"):
        found = [m for m in msgs if isinstance(m, Response) and m.action_id == selector[1:]]
        assert len(found) == 1, selector
        return found[0]
    name, _, nth = selector.partition(":")
    events = [m for m in msgs if isinstance(m, Event) and m.name == name]
    return events[int(nth or 0)]


def check_facts(version: str, scenario: str, facts: Facts) -> None:
    """Parse ``<version>/<scenario>.bin`` whole and assert every one of ``facts``."""
    parser, msgs = parse((fixtures_dir() / version / f"{scenario}.bin").read_bytes())
    assert parser.ami_version == BANNERS[version]
    assert len(msgs) == facts.messages
    events = [m for m in msgs if isinstance(m, Event)]
    assert len(events) == facts.events
    if facts.sequence:
        got = [m.name if isinstance(m, Event) else f"R:{m['Response']}" for m in msgs]
        assert got == facts.sequence.split()
    counts = Counter(e.name for e in events)
    for name, n in facts.counts.items():
        assert counts[name] == n, name
    for action_id, names in facts.lists.items():
        carried = [e.name for e in events if e.action_id == action_id]
        assert carried == names.split(), action_id
    for selector, key, values in facts.values:
        assert select(msgs, selector).get_all(key) == list(values), (selector, key)
    answered = {m.action_id for m in msgs if isinstance(m, Response)}
    for action_id in facts.unanswered:
        assert action_id not in answered, action_id


@asynccontextmanager
async def replayed_with_server(
    version: str, scenario: str, **options: Any
) -> AsyncIterator[tuple[FakeAsterisk, Client]]:
    """A connected Client whose FakeAsterisk replays ``<version>/<scenario>.ami``."""
    async with FakeAsterisk() as pbx:
        await pbx.replay(fixtures_dir() / version / f"{scenario}.ami")
        settings: dict[str, Any] = {
            "username": "admin",
            "secret": "amp111",
            "ping_interval": None,
            "timeout": 5,
            "action_timeout": 5,
            **options,
        }
        client = Client(pbx.host, pbx.port, **settings)
        await client.connect()
        try:
            yield pbx, client
        finally:
            await client.close()


@asynccontextmanager
async def replayed(version: str, scenario: str, **options: Any) -> AsyncIterator[Client]:
    """`replayed_with_server`, for tests that need only the client."""
    async with replayed_with_server(version, scenario, **options) as (_, client):
        yield client


# -- raw peers -----------------------------------------------------------------------------

_ACTION_ID = re.compile(rb"^ActionID: [^\r\n]*\r\n", re.MULTILINE)


def with_id(message: bytes, action_id: str) -> bytes:
    """``message`` with its ActionID line naming ``action_id``."""
    line = f"ActionID: {action_id}\r\n".encode()
    return _ACTION_ID.sub(lambda _: line, message)


class Peer:
    """One accepted connection of `serial_server`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def action(self) -> dict[str, str]:
        """Read the client's next action (headers, first value of each key, keys lower-cased)."""
        frame = await self.reader.readuntil(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in frame.decode().split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                headers.setdefault(key.lower(), value)
        return headers

    async def answer(self, expected: str, *messages: bytes) -> dict[str, str]:
        """Read one action named ``expected`` and send ``messages`` with its ActionID."""
        action = await self.action()
        assert action["action"].lower() == expected.lower(), action
        await self.send(*(with_id(m, action["actionid"]) for m in messages))
        return action

    async def send(self, *messages: bytes) -> None:
        self.writer.write(b"".join(messages))
        await self.writer.drain()

    async def idle(self) -> None:
        """Answer Ping and Logoff (as Asterisk does) until the client goes away."""
        pong = b"Response: Success\r\nActionID: x\r\nPing: Pong\r\nTimestamp: 0.0\r\n\r\n"
        goodbye = b"Response: Goodbye\r\nActionID: x\r\nMessage: Thanks for all the fish.\r\n\r\n"
        with suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                action = await self.action()
                name = action.get("action", "").lower()
                action_id = action.get("actionid", "")
                if name == "logoff":
                    await self.send(with_id(goodbye, action_id))
                    return
                await self.send(with_id(pong, action_id))


Script = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def serial_server(*scripts: Script) -> AsyncIterator[int]:
    """A server whose n-th connection runs ``scripts[n]`` (the last one again after that)."""
    count = 0
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        script = scripts[min(count, len(scripts) - 1)]
        count += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            with suppress(asyncio.IncompleteReadError, ConnectionError):
                await script(Peer(reader, writer))
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await server.wait_closed()
