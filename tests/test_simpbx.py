"""The simulated PBX behind FakeAsterisk, compared with the Asterisk 22 recordings.

The recordings (``shared/fixtures/asterisk-22``) were made on a lab whose
``[test]`` context the simulation copies. Event *values* (Uniqueids, times,
channel numbers) differ from run to run; what must match is which events
come, with which headers in which order. Real Asterisk is multi-threaded, so
the interleaving of event types that come from different threads (CEL, Cdr,
DeviceStateChange, QueueMemberStatus, OriginateResponse) and of different
channels varies between recordings of the same call; :func:`streams` compares
each of those streams, and each channel's own events, in order.
``originate_async`` is reproduced exactly, event for event.

Simulated time runs at ``SCALE`` (``Wait(1)`` lasts 20 ms); where two timers
race, the test gives the one that must lose a long wait, so that the result
never depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

import ami_async
from ami_async.message import Message
from ami_async.protocol import Parser, encode_action
from ami_async.testing import FakeAsterisk, SimChannel, SimPBX

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "asterisk-22"
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
        self._seen = 0
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

    async def until(self, done: Callable[[Message], bool]) -> Message:
        """The first message from here on for which ``done`` is true."""
        while True:
            while self._seen < len(self.messages):
                message = self.messages[self._seen]
                self._seen += 1
                if done(message):
                    return message
            await self._more()

    async def ask(self, action: str, **headers: str | list[str]) -> Message:
        action_id = self.send(action, **headers)
        return await self.until(lambda m: "Event" not in m and m.get("ActionID") == action_id)

    async def collect(
        self, action: str, **headers: str | list[str]
    ) -> tuple[Message, list[Message]]:
        """An EventList action: its response and its items (the complete event left out)."""
        action_id = self.send(action, **headers)
        response = await self.until(lambda m: "Event" not in m and m.get("ActionID") == action_id)
        if response["Response"] != "Success":
            return response, []
        items: list[Message] = []
        while True:
            item = await self.until(lambda m: m.get("ActionID") == action_id)
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
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(time_scale=SCALE, auth_failure_delay=0.01) as server:
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


# -- the recordings, call by call ----------------------------------------------------------


async def test_originate_async_is_the_recording_event_for_event(
    fake: FakeAsterisk, wire: Wire
) -> None:
    start = wire.mark()
    response = await wire.ask(
        "Originate",
        Channel="Local/100@test",
        Application="Wait",
        Data="1",
        Async="true",
        CallerID="Lab <1000>",
        Variable=["LABVAR1=one", "LABVAR2=two"],
    )
    assert response["Message"] == "Originate successfully queued"
    await wire.settle(fake.pbx)
    got = [response, *call_events(wire.messages[start:])]
    recorded = recording("originate_async")
    assert [shape(m) for m in got] == [shape(m) for m in recorded]

    one, two = "Local/100@test-00000000;1", "Local/100@test-00000000;2"
    newchannels = [m for m in got if m.get("Event") == "Newchannel"]
    assert [(m["Channel"], m["ChannelStateDesc"]) for m in newchannels] == [
        (one, "Down"),
        (two, "Ring"),
    ]
    epoch, seq = newchannels[0]["Uniqueid"].split(".")
    assert epoch.isdigit() and abs(int(epoch) - int(fake.pbx.now())) < 60
    assert newchannels[1]["Uniqueid"] == f"{epoch}.{int(seq) + 1}"
    assert {m["Linkedid"] for m in got if "Linkedid" in m} == {newchannels[0]["Uniqueid"]}
    states = [(m["Channel"], m["ChannelState"]) for m in got if m.get("Event") == "Newstate"]
    assert states == [(two, "6"), (one, "6")]
    varsets = [(m["Channel"], m["Variable"], m["Value"]) for m in got if m.get("Event") == "VarSet"]
    assert varsets == [
        (one, "LABVAR2", "two"),
        (one, "LABVAR1", "one"),
        (two, "LABVAR1", "one"),
        (two, "LABVAR2", "two"),
    ]
    (originated,) = [m for m in got if m.get("Event") == "OriginateResponse"]
    assert originated["ActionID"] == response["ActionID"]
    assert (originated["Channel"], originated["Reason"]) == (one, "4")
    assert originated["Uniqueid"] == newchannels[0]["Uniqueid"]
    hangups = [
        (m["Channel"], m["Cause"], m["Cause-txt"]) for m in got if m.get("Event") == "Hangup"
    ]
    assert hangups == [(one, "0", "Unknown"), (two, "0", "Unknown")]
    cdr = next(m for m in got if m.get("Event") == "Cdr")
    assert (cdr["LastApplication"], cdr["LastData"]) == ("Wait", "1")
    assert cdr["Duration"].isdigit() and cdr["Disposition"] == "ANSWERED"
    assert cdr["CallerID"] == '"Lab" <1000>'
    assert fake.pbx.channels == {}


async def test_originate_sync_answers_before_the_events(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    response = await wire.ask(
        "Originate", Channel="Local/100@test", Application="Wait", Data="1", Async="false"
    )
    assert response["Message"] == "Originate successfully queued"
    # The session waited for the answer; the call's events come after the response.
    assert call_events(wire.messages[start : wire.messages.index(response)]) == []
    await wire.settle(fake.pbx)
    assert_same_streams(wire.messages[start:], recording("originate_sync"))


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_originate_to_a_missing_extension_fails(
    fake: FakeAsterisk, wire: Wire, mode: str
) -> None:
    start = await warm_up(wire, fake)
    response = await wire.ask(
        "Originate",
        Channel="Local/999@test",
        Application="Wait",
        Data="1",
        Async="true" if mode == "async" else "false",
    )
    await wire.settle(fake.pbx)
    if mode == "async":
        assert response["Message"] == "Originate successfully queued"
        failed = next(m for m in wire.messages[start:] if m.get("Event") == "OriginateResponse")
        assert (failed["Response"], failed["Reason"]) == ("Failure", "0")
        assert (failed["Channel"], failed["Uniqueid"]) == ("Local/999@test", "<unknown>")
    else:
        assert (response["Response"], response["Message"]) == ("Error", "Originate failed")
    assert_same_streams(wire.messages[start:], recording(f"originate_fail_{mode}"))


async def test_originate_to_context_exten_with_channel_ids(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await wire.ask(
        "Originate",
        Channel="Local/100@test",
        Context="test",
        Exten="600",
        Priority="1",
        Async="true",
        Timeout="10000",
        ChannelId="lab-chan-1",
        OtherChannelId="lab-chan-2",
    )
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_same_streams(got, recording("originate_async_channelid"))
    newchannels = [m for m in got if m.get("Event") == "Newchannel"]
    assert [m["Uniqueid"] for m in newchannels] == ["lab-chan-1", "lab-chan-2"]
    assert {m["Linkedid"] for m in newchannels} == {"lab-chan-1"}
    user_event = next(m for m in got if m.get("Event") == "UserEvent")
    assert (user_event["UserEvent"], user_event["Foo"]) == ("TestEvent", "bar")
    assert user_event["Channel"].endswith(";1")  # the ;1 ran 600, the ;2 ran 100


async def test_user_events_from_the_dialplan_and_the_action(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await wire.ask("Originate", Channel="Local/600@test", Application="Wait", Data="200", Async="1")
    await wire.event("Newexten", Application="Wait", Priority="4")
    await wire.ask("UserEvent", UserEvent="FromAMI", Header1="value1", Header2="value: with colon")
    await wire.settle(fake.pbx)
    assert_same_streams(wire.messages[start:], recording("userevent"))


async def test_dial_between_local_channels_bridges_them(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await wire.ask("Originate", Channel="Local/450@test", Application="Wait", Data="500", Async="1")
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_same_streams(got, recording("dial_bridge"))
    bridge_ids = {m["BridgeUniqueid"] for m in got if "BridgeUniqueid" in m}
    assert len(bridge_ids) == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", bridge_ids.pop())
    dial_end = next(m for m in got if m.get("Event") == "DialEnd" and "Channel" in m)
    assert dial_end["Channel"].startswith("Local/450@test-")
    assert dial_end["DestChannel"].startswith("Local/100@test-")
    assert dial_end["DialStatus"] == "ANSWER"
    peers = [
        m["Value"] for m in got if m.get("Event") == "VarSet" and m["Variable"] == "BRIDGEPEER"
    ]
    assert peers[:2] == [dial_end["Channel"], dial_end["DestChannel"]]
    hangups = {m["Channel"][:15]: m["Cause-txt"] for m in got if m.get("Event") == "Hangup"}
    assert set(hangups.values()) == {"Normal Clearing"}


async def test_queue_caller_answered_by_a_member(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await wire.ask("Originate", Channel="Local/410@test", Application="Wait", Data="500", Async="1")
    await wire.settle(fake.pbx)
    assert_same_streams(wire.messages[start:], recording("queue_sales_answered"))
    sales = fake.pbx.queues["sales"]
    assert (sales.completed, sales.members[0].calls_taken, sales.callers) == (1, 1, [])


async def test_playback_and_music_on_hold(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await wire.ask("Originate", Channel="Local/200@test", Application="Wait", Data="300", Async="1")
    await wire.ask("Originate", Channel="Local/800@test", Application="Wait", Data="3", Async="1")
    await wire.settle(fake.pbx)
    assert_same_streams(wire.messages[start:], recording("playback_moh"))


# -- state queries and actions on channels ----------------------------------------------------


async def long_call(wire: Wire, fake: FakeAsterisk, exten: str = "700") -> tuple[str, str]:
    """Originate to ``exten`` (Wait(30), made endless) and wait until both halves wait."""
    fake.pbx.dialplan.set("test", exten, "Answer()", "Wait(100000)")
    await wire.ask(
        "Originate", Channel=f"Local/{exten}@test", Application="Wait", Data="100000", Async="1"
    )
    answered = await wire.event("OriginateResponse")
    one = answered["Channel"]
    await wire.event("Newexten", Channel=one[:-1] + "2", Application="Wait")
    return one, one[:-1] + "2"


async def test_status_then_hangup_like_the_recording(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    one, two = await long_call(wire, fake)
    recorded = Parser().feed((FIXTURES / "status.bin").read_bytes())

    def recorded_items(action_id: str) -> list[Message]:
        return [m for m in recorded if m.get("ActionID") == action_id and "Event" in m]

    response, items = await wire.collect("Status")
    assert response["Message"] == "Channel status will follow"
    model = recorded_items("status-3")
    assert [shape(m) for m in items] == [shape(m) for m in model[:-1]]
    assert [(m["Channel"], m["Application"], m["Data"]) for m in items] == [
        (one, "Wait", "100000"),
        (two, "Wait", "100000"),
    ]
    assert (items[0]["Priority"], items[1]["Priority"]) == ("1", "2")
    complete = wire.messages[-1]
    assert (complete["Event"], complete["ListItems"], complete["Items"]) == (
        "StatusComplete",
        "2",
        "2",
    )

    _, items = await wire.collect("Status", Channel=one, Variables="FOO,CHANNEL(state)")
    assert [shape(m) for m in items] == [shape(m) for m in recorded_items("status-4")[:-1]]
    assert items[0].get_all("Variable") == ["FOO=(null)", "CHANNEL(state)=Up"]

    missing = await wire.ask("Status", Channel="Local/nonexistent-0000;1")
    assert (missing["Response"], missing["Message"]) == ("Error", "No such channel")

    hungup = await wire.ask("Hangup", Channel=one, Cause="16")
    assert hungup["Message"] == "Channel Hungup"
    await wire.settle(fake.pbx)
    assert_same_streams(wire.messages[start:], recording("status"))


async def test_core_show_channels_lists_the_live_channels(fake: FakeAsterisk, wire: Wire) -> None:
    await long_call(wire, fake)
    await long_call(wire, fake)
    response, items = await wire.collect("CoreShowChannels")
    assert response["Message"] == "Channels will follow"
    recorded = Parser().feed((FIXTURES / "coreshowchannels.bin").read_bytes())
    model = [m for m in recorded if m.get("Event") == "CoreShowChannel"]
    assert [shape(m) for m in items] == [shape(m) for m in model]
    assert sorted(m["Channel"] for m in items) == sorted(fake.pbx.channels)
    assert {(m["ChannelStateDesc"], m["Application"]) for m in items} == {("Up", "Wait")}
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", m["Duration"]) for m in items)

    cli = await wire.ask("Command", Command="core show channels")
    lines = cli.get_all("Output")
    idle = next(m for m in recording("command") if m.get("ActionID") == "command-3")
    assert lines[0] == idle.get_all("Output")[0]  # the header of asterisk-22/command.bin
    assert lines[1].startswith("Local/700@test-00000000;1 ")
    assert "700@test:1" in lines[1] and "Up      Wait(100000)" in lines[1]
    assert lines[-3:] == [
        "4 active channels",
        "2 of 500 max active calls ( 0.40% of capacity)",
        "2 calls processed",
    ]
    calls = await wire.ask("Command", Command="core show calls")
    assert calls.get_all("Output") == [
        "2 of 500 max active calls ( 0.40% of capacity)",
        "2 calls processed",
    ]
    status = await wire.ask("CoreStatus")
    assert (status["CoreCurrentCalls"], status["CoreProcessedCalls"]) == ("2", "2")

    hangup = await wire.ask("Command", Command="channel request hangup all")
    assert hangup.get_all("Output") == ["Requested Hangup on all channels"]
    await wire.settle(fake.pbx)
    _, items = await wire.collect("CoreShowChannels")
    assert items == []


async def test_hangup_causes(fake: FakeAsterisk, wire: Wire) -> None:
    one, two = await long_call(wire, fake)
    assert (await wire.ask("Hangup", Channel=two, Cause="17"))["Message"] == "Channel Hungup"
    first = await wire.event("Hangup")
    second = await wire.event("Hangup")
    assert [(m["Channel"], m["Cause"], m["Cause-txt"]) for m in (first, second)] == [
        (two, "17", "User busy"),
        (one, "17", "User busy"),
    ]
    one, _ = await long_call(wire, fake)
    assert (await wire.ask("Hangup", Channel=one))["Message"] == "Channel Hungup"
    default = await wire.event("Hangup")
    assert (default["Channel"], default["Cause"], default["Cause-txt"]) == (
        one,
        "16",
        "Normal Clearing",
    )
    await wire.settle(fake.pbx)
    gone = await wire.ask("Hangup", Channel=one)
    assert (gone["Response"], gone["Message"]) == ("Error", "No such channel")
    nameless = await wire.ask("Hangup")
    assert nameless["Message"] == "No channel specified"


async def test_hangup_by_regex_lists_the_channels(fake: FakeAsterisk, wire: Wire) -> None:
    _, two = await long_call(wire, fake)
    response, items = await wire.collect("Hangup", Channel="/^Local/700@test-.*;2$/")
    assert response["Message"] == "Channels hung up will follow"
    assert [(m["Event"], m["Channel"]) for m in items] == [("ChannelHungup", two)]
    await wire.settle(fake.pbx)
    assert fake.pbx.channels == {}


async def test_getvar_setvar_on_a_channel_like_the_recording(
    fake: FakeAsterisk, wire: Wire
) -> None:
    recorded = Parser().feed((FIXTURES / "getvar_setvar.bin").read_bytes())
    one, _ = await long_call(wire, fake)
    start = wire.mark()
    response = await wire.ask("Setvar", Channel=one, Variable="CHANVAR", Value="hello world")
    assert response["Message"] == "Variable Set"
    varset = await wire.event("VarSet", Variable="CHANVAR")
    model = next(m for m in recorded if m.get("Event") == "VarSet" and m["Variable"] == "CHANVAR")
    assert shape(varset) == shape(model)
    assert (varset["Channel"], varset["Value"]) == (one, "hello world")
    assert call_events(wire.messages[start:]) == [varset]

    value = await wire.ask("Getvar", Channel=one, Variable="CHANVAR")
    assert (value["Variable"], value["Value"]) == ("CHANVAR", "hello world")
    state = await wire.ask("Getvar", Channel=one, Variable="CHANNEL(state)")
    assert state["Value"] == "Up"
    unset = await wire.ask("Getvar", Channel=one, Variable="NOT_SET_ANYWHERE")
    assert unset["Value"] == ""
    await wire.ask("Setvar", Variable="LABGLOBAL", Value="42")
    inherited = await wire.ask("Getvar", Channel=one, Variable="LABGLOBAL")
    assert inherited["Value"] == "42"  # channel variables fall back to the globals
    nobody = await wire.ask("Getvar", Channel="Local/nope-00000000;1", Variable="X")
    assert nobody["Message"] == "No such channel"
    nothing = await wire.ask("Setvar", Value="novar")
    assert nothing["Message"] == "No variable specified"
    assert fake.pbx.find_channel(one) is not None
    channel = fake.pbx.find_channel(one)
    assert channel is not None and channel.variables["CHANVAR"] == "hello world"


async def test_redirect_moves_a_channel_in_the_dialplan(fake: FakeAsterisk, wire: Wire) -> None:
    one, two = await long_call(wire, fake)
    start = wire.mark()
    response = await wire.ask("Redirect", Channel=two, Context="test", Exten="600", Priority="1")
    assert response["Message"] == "Redirect successful"
    user_event = await wire.event("UserEvent")
    assert user_event["Channel"] == two
    await wire.settle(fake.pbx)
    got = call_events(wire.messages[start:])
    steps = [
        (m["Exten"], m["Priority"], m["Application"])
        for m in got
        if m.get("Event") == "Newexten" and m["Channel"] == two
    ]
    assert steps == [
        ("600", "1", "Answer"),
        ("600", "2", "Set"),
        ("600", "3", "UserEvent"),
        ("600", "4", "Wait"),
        ("600", "5", "Hangup"),
    ]
    hangups = [(m["Channel"], m["Cause"]) for m in got if m.get("Event") == "Hangup"]
    assert hangups == [(two, "16"), (one, "16")]

    # An Originate's application has no dialplan: the redirect starts one on that channel.
    one, two = await long_call(wire, fake)
    await wire.ask("Redirect", Channel=one, Context="test", Exten="600", Priority="1")
    assert (await wire.event("UserEvent"))["Channel"] == one
    await wire.settle(fake.pbx)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Channel not specified"),
        ({"Channel": "X"}, "Context not specified"),
        ({"Channel": "X", "Context": "test"}, "Exten not specified"),
        ({"Channel": "X", "Context": "test", "Exten": "600"}, "Priority not specified"),
        (
            {"Channel": "X", "Context": "test", "Exten": "600", "Priority": "0"},
            "Priority is invalid",
        ),
        (
            {"Channel": "Local/nope-0;1", "Context": "test", "Exten": "600", "Priority": "1"},
            "Channel does not exist: Local/nope-0;1",
        ),
    ],
)
async def test_redirect_errors(wire: Wire, headers: dict[str, str], message: str) -> None:
    answer = await wire.ask("Redirect", **headers)
    assert (answer["Response"], answer["Message"]) == ("Error", message)


async def test_queue_status_and_summary_with_a_waiting_caller(
    fake: FakeAsterisk, wire: Wire
) -> None:
    fake.pbx.dialplan.set("test", "400", "Answer()", "Queue(support,,,,100000)")
    start = await warm_up(wire, fake)
    await wire.ask(
        "Originate", Channel="Local/400@test", Application="Wait", Data="9999", Async="1"
    )
    await wire.event("MusicOnHoldStart")
    assert_same_streams(wire.messages[start:], recording("queue", stop_at="queue-3"))

    recorded = Parser().feed((FIXTURES / "queue.bin").read_bytes())
    for action_id, action, headers, message in [
        ("queue-3", "QueueStatus", {}, "Queue status will follow"),
        ("queue-4", "QueueStatus", {"Queue": "support"}, "Queue status will follow"),
        ("queue-5", "QueueSummary", {}, "Queue summary will follow"),
        ("queue-6", "QueueSummary", {"Queue": "nosuchqueue"}, "Queue summary will follow"),
    ]:
        response, items = await wire.collect(action, **headers)
        model = [m for m in recorded if m.get("ActionID") == action_id and "Event" in m][:-1]
        assert response["Message"] == message
        assert [shape(m) for m in items] == [shape(m) for m in model], action_id
    _, items = await wire.collect("QueueStatus", Queue="support")
    entry = next(m for m in items if m["Event"] == "QueueEntry")
    assert (entry["Position"], entry["CallerIDNum"]) == ("1", "unknown")
    assert entry["Channel"].startswith("Local/400@test-") and entry["Channel"].endswith(";2")

    await wire.ask("Hangup", Channel=entry["Channel"])
    abandon = await wire.event("QueueCallerAbandon")
    leave = await wire.event("QueueCallerLeave")
    assert (abandon["Queue"], leave["Queue"], leave["Count"]) == ("support", "support", "0")
    await wire.settle(fake.pbx)
    assert fake.pbx.queues["support"].abandoned == 1


# -- the CLI, the dialplan, options ----------------------------------------------------------


async def test_cli_database_and_dialplan(fake: FakeAsterisk, wire: Wire) -> None:
    await wire.ask("DBPut", Family="lab", Key="k1", Val="v1")
    database = await wire.ask("Command", Command="database show lab")
    assert database.get_all("Output") == [f"{'/lab/k1':<50}: {'v1':<25}", "1 results found."]
    assert (await wire.ask("Getvar", Variable="DB(lab/k1)"))["Value"] == "v1"
    dialplan = await wire.ask("Command", Command="dialplan show 100@test")
    lines = dialplan.get_all("Output")
    assert lines[0] == "[ Context 'test' created by 'pbx_config' ]"
    assert lines[1].startswith("  '100' =>          1. Answer()")
    assert lines[2].startswith(" " * 20 + "2. Wait(2)")
    assert lines[-1] == "-= 1 extension (3 priorities) in 1 context. =-"
    unknown = await wire.ask("Command", Command="dialplan show nosuch")
    assert unknown["Response"] == "Error"
    listed = await wire.ask("ListCommands")
    assert listed["Originate"] == "Originate a call.  (Priv: originate,all)"
    assert "Redirect" in listed and "QueueStatus" in listed


async def test_own_extensions_and_applications(fake: FakeAsterisk, wire: Wire) -> None:
    pbx = fake.pbx
    calls: list[tuple[str, str]] = []

    async def hello(pbx: SimPBX, channel: SimChannel, data: str) -> int:
        calls.append((channel.name, data))
        await pbx.wait(channel, 0.5)
        return 0

    pbx.add_application("Hello", hello)
    pbx.add_extension("demo", "_1XX", "Answer")
    pbx.add_extension("demo", "_1XX", "Hello", "${EXTEN}-${CALLER}")
    pbx.add_extension("demo", "_1XX", "Hangup", "21")
    await wire.ask(
        "Originate",
        Channel="Local/123@demo",
        Application="Wait",
        Data="500",
        Async="1",
        Variable="CALLER=me",
    )
    hangup = await wire.event("Hangup")
    assert (hangup["Channel"].split("-")[0], hangup["Cause-txt"]) == (
        "Local/123@demo",
        "Call Rejected",
    )
    assert calls == [(hangup["Channel"], "123-me")]
    await wire.settle(pbx)

    missing = await wire.ask(
        "Originate", Channel="Local/100@test", Context="demo", Exten="99", Priority="1"
    )
    assert (missing["Response"], missing["Message"]) == ("Error", "Extension does not exist.")
    bad = await wire.ask("Originate", Channel="nochannel", Application="Wait")
    assert bad["Message"] == "Invalid channel"
    # originate_bad_channel.bin: an unknown technology fails, a missing Channel is refused.
    bogus = await wire.ask("Originate", Channel="Bogus/123", Application="Wait", Data="1")
    assert (bogus["Response"], bogus["Message"]) == ("Error", "Originate failed")
    nameless = await wire.ask("Originate", Application="Wait", Data="1")
    assert (nameless["Response"], nameless["Message"]) == ("Error", "Channel not specified")


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (["Busy()"], "5"),
        (["Congestion()"], "8"),
        (["Hangup()"], "1"),
        (["Ringing()", "Wait(100000)"], "3"),
    ],
)
async def test_failed_originate_reasons(
    fake: FakeAsterisk, wire: Wire, steps: list[str], reason: str
) -> None:
    fake.pbx.dialplan.set("test", "555", *steps)
    await wire.ask(
        "Originate", Channel="Local/555@test", Application="Wait", Async="1", Timeout="2000"
    )
    failed = await wire.event("OriginateResponse")
    assert (failed["Response"], failed["Reason"]) == ("Failure", reason)
    await wire.settle(fake.pbx)


async def test_dial_that_nobody_answers_continues_the_dialplan(
    fake: FakeAsterisk, wire: Wire
) -> None:
    fake.pbx.dialplan.set("test", "556", "Ringing()", "Wait(100000)")
    fake.pbx.dialplan.set("test", "557", "Dial(Local/556@test,2)", "Set(AFTER=${DIALSTATUS})")
    await wire.ask("Originate", Channel="Local/557@test", Application="Wait", Data="9", Async="1")
    end = await wire.event("DialEnd", DialStatus="NOANSWER")
    assert end["DestChannel"].startswith("Local/556@test-")
    after = await wire.event("VarSet", Variable="AFTER")
    assert after["Value"] == "NOANSWER"
    await wire.settle(fake.pbx)


async def test_cel_and_cdr_can_be_left_out() -> None:
    async with FakeAsterisk(time_scale=SCALE, cel=False, cdr=False) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        client = Wire(reader, writer)
        await client.ask("Login", Username="admin", Secret="amp111")
        await client.ask("Originate", Channel="Local/100@test", Application="Wait", Data="1")
        await client.settle(server.pbx)
        names = {m["Event"] for m in call_events(client.messages)}
        assert {"Newchannel", "Newexten", "Hangup"} <= names
        assert not names & {"CEL", "Cdr"}
        await client.close()


# -- through ami_async.Client --------------------------------------------------------------


async def test_a_call_through_the_client(fake: FakeAsterisk) -> None:
    async with ami_async.connect(
        fake.host, fake.port, username="admin", secret="amp111", ping_interval=None
    ) as ami:
        async with ami.events("Hangup") as hangups:
            call = await ami.originate("Local/100@test", application="Wait", data="1")
            assert call.success
            assert call.channel is not None and call.uniqueid is not None
            ended = [await hangups.get(timeout=TIMEOUT), await hangups.get(timeout=TIMEOUT)]
        assert [e["Channel"] for e in ended] == [call.channel, call.channel[:-1] + "2"]

        fake.pbx.dialplan.set("test", "700", "Answer()", "Wait(100000)")
        call = await ami.originate(
            "Local/700@test", application="Wait", data="100000", variables={"FOO": "bar"}
        )
        assert call.channel is not None
        assert await ami.getvar("FOO", channel=call.channel) == "bar"
        # Wait until the ;2 runs its Wait, so that both halves are listed as waiting.
        async with ami.events("Newexten") as steps:
            while fake.pbx.channels[call.channel[:-1] + "2"].appl != "Wait":
                await steps.get(timeout=TIMEOUT)
        channels = await ami.core_show_channels()
        assert sorted(e["Channel"] for e in channels) == sorted(fake.pbx.channels)
        (status,) = await ami.status(call.channel)
        assert (status["Application"], status["ChannelStateDesc"]) == ("Wait", "Up")
        await ami.setvar("X", "1", channel=call.channel)
        assert await ami.getvar("X", channel=call.channel) == "1"
        async with ami.events("Hangup") as hangups:
            await ami.hangup(call.channel)
            ended = [await hangups.get(timeout=TIMEOUT), await hangups.get(timeout=TIMEOUT)]
        assert {e["Cause"] for e in ended} == {"16"}
        assert await ami.core_show_channels() == []
        with pytest.raises(ami_async.ActionError):
            await ami.hangup(call.channel)


async def test_the_wire_encoding_helper_agrees() -> None:
    """The Wire client writes what ami_async.protocol.encode_action writes."""
    reader = asyncio.StreamReader()
    sent: list[bytes] = []

    class Writer:
        def write(self, data: bytes) -> None:
            sent.append(data)

    wire = Wire(reader, Writer())  # type: ignore[arg-type]
    wire.send("Ping")
    assert sent == [encode_action("Ping", {"ActionID": "t-1"})]
