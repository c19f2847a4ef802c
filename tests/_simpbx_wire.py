"""What the simulated-PBX tests share: recordings as event streams, a raw AMI wire, fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from _fixtures import FIXTURES as _FIXTURES

from ami_async.message import Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, SimPBX

FIXTURES = _FIXTURES / "asterisk-22"
TIMEOUT = 5.0
SCALE = 0.02

# Answers to list actions, and login events: not part of a call's event stream.
_NOT_CALL_EVENTS = frozenset(
    {
        "FullyBooted",
        "SuccessfulAuth",
        "Status",
        "StatusComplete",
        "CoreShowChannel",
        "CoreShowChannelsComplete",
        "QueueParams",
        "QueueMember",
        "QueueEntry",
        "QueueStatusComplete",
        "QueueSummary",
        "QueueSummaryComplete",
    }
)
# The value that tells events of one type apart, compared along with the header keys.
_LABEL_KEYS = {
    "CEL": "EventName",
    "Newexten": "Application",
    "Newstate": "ChannelStateDesc",
    "VarSet": "Variable",
    "DialEnd": "DialStatus",
    "Hangup": "Cause",
    "HangupRequest": "Cause",
    "OriginateResponse": "Reason",
    "DeviceStateChange": "State",
    "QueueMemberStatus": "Status",
}
# Event types Asterisk sends from threads of their own.
_OWN_STREAM = frozenset(
    {"CEL", "Cdr", "DeviceStateChange", "QueueMemberStatus", "OriginateResponse"}
)

Shape = tuple[str, tuple[str, ...]]


def recording(name: str, *, stop_at: str | None = None) -> list[Message]:
    """A recording's messages after login, up to the response to ActionID ``stop_at``."""
    messages = Parser().feed((FIXTURES / f"{name}.bin").read_bytes())
    out = []
    for message in messages[1:]:  # [0] is the Login response
        if stop_at is not None and message.get("ActionID") == stop_at and "Event" not in message:
            break
        if message.get("Event") not in _NOT_CALL_EVENTS:
            out.append(message)
    return out


def call_events(messages: Sequence[Message]) -> list[Message]:
    return [m for m in messages if "Event" in m and m["Event"] not in _NOT_CALL_EVENTS]


def shape(message: Message) -> Shape:
    """What is compared: the event (or response) name, a telling value, the header keys."""
    name = message.get("Event") or f"Response:{message.get('Response')}"
    key = _LABEL_KEYS.get(name)
    label = f"{name}:{message.get(key)}" if key else name
    return label, tuple(k for k, _ in message.headers)


def _channel_base(name: str) -> str:
    """``Local/100@test-0000004b;1`` -> ``Local/100@test;1`` (the number is the run's)."""
    return re.sub(r"-[0-9a-f]{8};", ";", name)


def streams(messages: Sequence[Message]) -> dict[str, list[Shape]]:
    """Events per stream: each thread-of-its-own type by channel or device, others by channel."""
    out: dict[str, list[Shape]] = {}
    for message in messages:
        name = message["Event"]
        if name in ("CEL", "Cdr"):
            key = f"{name} {_channel_base(message['Channel'])}"
        elif name == "DeviceStateChange":
            key = f"{name} {message['Device']}"
        elif name == "QueueMemberStatus":
            key = f"{name} {message['Queue']}/{message['MemberName']}"
        elif name in _OWN_STREAM:
            key = name
        else:
            channel = next(
                (message[k] for k in ("Channel", "DestChannel", "LocalOneChannel") if k in message),
                None,
            )
            key = (
                _channel_base(channel)
                if channel
                else "bridge"
                if "BridgeUniqueid" in message
                else name
            )
        out.setdefault(key, []).append(shape(message))
    return out


def assert_same_streams(got: Sequence[Message], recorded: Sequence[Message]) -> None:
    mine, theirs = streams(call_events(got)), streams(call_events(recorded))
    assert sorted(mine) == sorted(theirs)
    for key in theirs:
        assert mine[key] == theirs[key], key


# -- a raw AMI client -----------------------------------------------------------------


class Wire:
    """asyncio streams plus the sans-IO parser; every event received is kept in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Parser()
        #: Every message received (responses, list items, events), in wire order.
        self.messages: list[Message] = []
        # Where each kind of wait goes on reading: waiting for an answer must not pass
        # over the events a later `event()` waits for (they may come in before it).
        self._cursors = {"events": 0, "answers": 0}
        self._ids = 0

    async def _more(self) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        if not data:
            raise EOFError("the server closed the connection")
        self.messages.extend(self.parser.feed(data))

    def send(self, action: str, **headers: str | list[str]) -> str:
        self._ids += 1
        action_id = f"t-{self._ids}"
        fields: dict[str, str | list[str]] = {"ActionID": action_id, **headers}
        pairs = [
            (k, item) for k, v in fields.items() for item in ([v] if isinstance(v, str) else v)
        ]
        self.writer.write(
            b"".join(f"{k}: {v}\r\n".encode() for k, v in [("Action", action), *pairs]) + b"\r\n"
        )
        return action_id

    async def until(self, done: Callable[[Message], bool], cursor: str = "events") -> Message:
        """The first message from here on for which ``done`` is true (``cursor``: see
        `__init__`; an action's own messages are read with ``"answers"``)."""
        cursors = self._cursors
        while True:
            while cursors[cursor] < len(self.messages):
                message = self.messages[cursors[cursor]]
                cursors[cursor] += 1
                if done(message):
                    return message
            await self._more()

    async def ask(self, action: str, **headers: str | list[str]) -> Message:
        action_id = self.send(action, **headers)
        return await self.until(
            lambda m: "Event" not in m and m.get("ActionID") == action_id, "answers"
        )

    async def collect(
        self, action: str, **headers: str | list[str]
    ) -> tuple[Message, list[Message]]:
        """An EventList action: its response and its items (the complete event left out)."""
        action_id = self.send(action, **headers)
        response = await self.until(
            lambda m: "Event" not in m and m.get("ActionID") == action_id, "answers"
        )
        if response["Response"] != "Success":
            return response, []
        items: list[Message] = []
        while True:
            item = await self.until(lambda m: m.get("ActionID") == action_id, "answers")
            if item.get("EventList") == "Complete":
                return response, items
            items.append(item)

    async def event(self, name: str, **values: str) -> Message:
        """The next event ``name`` whose headers have ``values``."""
        return await self.until(
            lambda m: m.get("Event") == name and all(m.get(k) == v for k, v in values.items())
        )

    async def settle(self, pbx: SimPBX) -> None:
        """Wait until every call ended, then read everything the server sent before a Ping."""
        await pbx.wait_idle(TIMEOUT)
        await self.ask("Ping")

    def mark(self) -> int:
        return len(self.messages)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeAsterisk]:
    """The simulated PBX at `SCALE`, or at a test's ``@pytest.mark.time_scale(seconds)``."""
    marker = request.node.get_closest_marker("time_scale")
    scale = float(marker.args[0]) if marker is not None else SCALE
    async with FakeAsterisk(time_scale=scale, auth_failure_delay=0.01) as server:
        yield server


@pytest.fixture
async def wire(fake: FakeAsterisk) -> AsyncIterator[Wire]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(fake.host, fake.port), TIMEOUT)
    client = Wire(reader, writer)
    login = await client.ask("Login", Username="admin", Secret="amp111")
    assert login["Message"] == "Authentication accepted"
    await client.event("FullyBooted")
    yield client
    await client.close()


async def warm_up(wire: Wire, fake: FakeAsterisk) -> int:
    """One call first, as on the lab: queue ``sales``' cached device state is known after it."""
    await wire.ask("Originate", Channel="Local/100@test", Application="Wait", Data="0")
    await wire.settle(fake.pbx)
    return wire.mark()
