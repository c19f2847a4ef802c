"""The simulated PBX behind FakeAsterisk, compared with the Asterisk 22 recordings.

The recordings (``shared/fixtures/asterisk-22``) were made on a lab whose
``[test]`` context the simulation copies. Event *values* (Uniqueids, times,
channel numbers) differ from run to run; what must match is which events
come, with which headers in which order. Real Asterisk is multi-threaded, so
the interleaving of event types that come from different threads (CEL, Cdr,
DeviceStateChange, QueueMemberStatus, OriginateResponse) and of different
channels varies between recordings of the same call; `streams` compares
each of those streams, and each channel's own events, in order.
``originate_async`` is reproduced exactly, event for event.

Simulated time runs at ``SCALE`` (``Wait(1)`` lasts 20 ms); where two timers
race, the test gives the one that must lose a long wait, so that the result
never depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from _simpbx_wire import (
    TIMEOUT,
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

import ami_async
from ami_async.protocol import encode_action
from ami_async.testing import FakeAsterisk

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
    # queue_call_answered.bin: the same call as queue_sales_answered.bin, whose
    # AgentComplete lost a race with the hangups and carries no channel snapshots.
    assert_same_streams(wire.messages[start:], recording("queue_call_answered"))
    sales = fake.pbx.queues["sales"]
    assert (sales.completed, sales.members[0].calls_taken, sales.callers) == (1, 1, [])


async def test_playback_and_music_on_hold(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await wire.ask("Originate", Channel="Local/200@test", Application="Wait", Data="300", Async="1")
    await wire.ask("Originate", Channel="Local/800@test", Application="Wait", Data="3", Async="1")
    await wire.settle(fake.pbx)
    assert_same_streams(wire.messages[start:], recording("playback_moh"))


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
