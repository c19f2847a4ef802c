"""The simulated PBX: state queries, actions on channels, the CLI, the dialplan, options."""

from __future__ import annotations

import asyncio
import re

import pytest
from _simpbx_wire import (
    FIXTURES,
    SCALE,
    Wire,
    assert_same_streams,
    call_events,
    fake,
    recording,
    shape,
    warm_up,
    wire,
)

__all__ = ["fake", "wire"]  # fixtures (tests/_simpbx_wire.py)

from ami_async.message import Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, SimChannel, SimPBX

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
        # A hangup before the answer is Reason 0, not 1 (AST_CONTROL_HANGUP): a Hangup
        # action on the unanswered ;2 in fastagi_hangup_ami.bin, Dial then Hangup() in
        # dial_noanswer.bin.
        (["Hangup()"], "0"),
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
