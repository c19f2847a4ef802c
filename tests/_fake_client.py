"""A raw AMI client over asyncio streams and the fixtures the FakeAsterisk tests share."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _fixtures import FIXTURES as _FIXTURES

from ami_async.message import Message
from ami_async.protocol import Parser, encode_action
from ami_async.testing import FakeAsterisk

FIXTURES = _FIXTURES
TIMEOUT = 5.0

Headers = tuple[tuple[str, str], ...]


def read_ami(path: Path) -> list[tuple[str, float, bytes]]:
    """The reader from fixtures/README.md."""
    data = path.read_bytes()
    pos = 0
    recs: list[tuple[str, float, bytes]] = []
    while pos < len(data):
        nl = data.index(b"\n", pos)
        line = data[pos:nl]
        if line.startswith(b"# ") and not recs:
            pos = nl + 1
            continue
        m = re.fullmatch(rb"(>>>|<<<|###) (\d+\.\d{3}) (\d+)", line)
        assert m is not None
        n = int(m.group(3))
        recs.append((m.group(1).decode(), float(m.group(2)), data[nl + 1 : nl + 1 + n]))
        pos = nl + 1 + n + 1
    return recs


def fixture_messages(name: str) -> list[Message]:
    return Parser().feed((FIXTURES / name).read_bytes())


def recorded(name: str, action_id: str) -> list[Message]:
    """The recorded messages of a ``.bin`` fixture that carry ``action_id``."""
    return [m for m in fixture_messages(name) if m.get("ActionID") == action_id]


class RawClient:
    """Just enough of an AMI client: asyncio streams plus the sans-IO parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Parser()
        self.messages: deque[Message] = deque()
        self.raw = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        except ConnectionError:
            return False
        if not data:
            return False
        self.raw += data
        self.messages.extend(self.parser.feed(data))
        return True

    async def banner(self) -> str | None:
        while self.parser.banner is None and not self.messages:
            if not await self._fill():
                raise EOFError("closed before the banner")
        return self.parser.banner

    def send(self, action: str, **headers: str) -> None:
        self.writer.write(encode_action(action, headers))

    async def read(self) -> Message:
        while not self.messages:
            if not await self._fill():
                raise EOFError("connection closed")
        return self.messages.popleft()

    async def read_event(self, name: str) -> Message:
        """The next event ``name``, skipping everything before it."""
        while True:
            message = await self.read()
            if message.get("Event") == name:
                return message

    async def read_response(self) -> Message:
        """The next response, skipping events."""
        while True:
            message = await self.read()
            if "Event" not in message:
                return message

    async def ask(self, action: str, **headers: str) -> Message:
        self.send(action, **headers)
        return await self.read()

    async def login(self, **headers: str) -> Message:
        await self.banner()
        fields = {"ActionID": "login-1", "Username": "admin", "Secret": "amp111", **headers}
        return await self.ask("Login", **fields)

    async def eof(self) -> list[Message]:
        """Read until the server closes; the messages that came before."""
        while await self._fill():
            pass
        rest = list(self.messages)
        self.messages.clear()
        return rest

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


Connect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(auth_failure_delay=0.01) as server:
        yield server


@pytest.fixture
async def connect(fake: FakeAsterisk) -> AsyncIterator[Connect]:
    opened: list[RawClient] = []

    async def open_client(server: FakeAsterisk | None = None, **kwargs: Any) -> RawClient:
        target = server or fake
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, **kwargs), TIMEOUT
        )
        client = RawClient(reader, writer)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


async def logged_in(connect: Connect, **headers: str) -> RawClient:
    client = await connect()
    response = await client.login(**{"Events": "off", **headers})
    assert response["Message"] == "Authentication accepted"
    return client
