"""The simulated PBX's call flows against the Asterisk 22 captures of the same flows.

Each test does on the simulated PBX what the capture's recorder did on the lab
(the same Originate, ChannelId/OtherChannelId tags and actions, the same
``[test]`` extensions, which the simulation's default dialplan copies), then
compares the two event streams as tests/test_simpbx.py does: per channel (and
per CEL / Cdr / device stream), the same events in the same order with the same
header keys and telling values. `facts` adds the values that do not change from
run to run: Uniqueids given by the Originate, Linkedids, causes, dial statuses
and the CDRs' dispositions and applications.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from _simpbx_wire import (
    FIXTURES,
    TIMEOUT,
    Shape,
    Wire,
    _channel_base,
    call_events,
    fake,
    recording,
    shape,
    streams,
    warm_up,
    wire,
)

__all__ = ["fake", "wire"]  # fixtures (tests/_simpbx_wire.py)

import ami_async
from ami_async import Client
from ami_async.live import (
    CallParked,
    CallTransferred,
    CallUnparked,
    Change,
    ChangeStream,
    ConferenceJoined,
    ConferenceLeft,
    Live,
)
from ami_async.message import Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, SimChannel
from ami_async.testing._actions import _ACTION_NAMES


def _tagged(value: str) -> str:
    """A Uniqueid a recorder chose (``blind-1``) stays; Asterisk's own (``1796163914.16``) goes."""
    return "<auto>" if re.fullmatch(r"\d+\.\d+", value) else value


def facts(messages: Sequence[Message]) -> list[tuple[str, ...]]:
    """The values of a flow that are the same in every run, in a stable order."""
    out: list[tuple[str, ...]] = []
    for m in call_events(messages):
        name = m["Event"]
        if name in ("Hangup", "HangupRequest", "SoftHangupRequest"):
            out.append((name, _channel_base(m["Channel"]), m["Cause"]))
        elif name in ("DialEnd", "DialState"):
            out.append((name, _channel_base(m["DestChannel"]), m["DialStatus"]))
        elif name == "Newchannel":
            out.append((name, _channel_base(m["Channel"]), _tagged(m["Uniqueid"]), m["Linkedid"]))
        elif name == "Cdr":
            out.append(
                (
                    name,
                    _channel_base(m["Channel"]),
                    m["Destination"],
                    _channel_base(m["DestinationChannel"]),
                    m["LastApplication"],
                    m["LastData"],
                    m["Disposition"],
                )
            )
        elif name == "CEL":
            out.append((name, _channel_base(m["Channel"]), m["EventName"], m["LinkedID"]))
        elif name == "OriginateResponse":
            out.append((name, m["Response"], m["Reason"]))
    return sorted(out)


def flow_streams(messages: Sequence[Message]) -> dict[str, list[Shape]]:
    """`streams`, with the events of each bridge (BridgeCreate, BlindTransfer, BridgeMerge,
    BridgeDestroy...) a stream of their own, the bridges numbered as they appear: Asterisk
    runs each bridge in a thread of its own, so two bridges' events interleave freely.
    """
    names: dict[str, str] = {}
    events = [_numbered(m, names) for m in call_events(messages)]
    # app_confbridge publishes its events from the conference's own thread: in
    # conference_three.bin each member's ConfbridgeJoin/Leave lands at another place
    # among its channel's events. One stream per conference, in their own order.
    conferences: dict[str, list[Shape]] = {}
    for m in events:
        if m["Event"].startswith("Confbridge"):
            conferences.setdefault(f"Confbridge {m['Conference']}", []).append(shape(m))
    events = [m for m in events if not m["Event"].startswith("Confbridge")]
    order: list[str] = []
    for m in events:
        bridge = m.get("BridgeUniqueid")
        if bridge and bridge not in order:
            order.append(bridge)
    out = streams([m for m in events if _channel_key(m) or not m.get("BridgeUniqueid")])
    for number, bridge in enumerate(order, 1):
        own = [m for m in events if m.get("BridgeUniqueid") == bridge and not _channel_key(m)]
        out.update({f"{key} {number}": shapes for key, shapes in streams(own).items()})
    out.update(conferences)
    return out


# Flows whose calls end on timers of their own run slower than the file's scale: at 0.02
# those ends were 40 ms apart, and one stall of a loaded machine could make them fall due
# together, their steps then interleaved otherwise than on the lab (conference_three failed
# so once under load).
SLOWER = pytest.mark.time_scale(0.1)


_NAMED = ("Channel", "DestChannel", "LocalOneChannel", "LocalTwoChannel")


def _numbered(message: Message, names: dict[str, str]) -> Message:
    """Two calls to one extension make channels of one name but for their number: each
    is told apart by the order it appeared in (``Local/2011@test#2;1``), not mixed.
    """
    headers = []
    for key, value in message.headers:
        match = re.fullmatch(r"(.*)-[0-9a-f]{8}(;[12])", value) if key in _NAMED else None
        if match is not None:
            base, half = match.groups()
            if value[:-2] not in names:
                same = sum(1 for n in names.values() if n.startswith(base + "#"))
                names[value[:-2]] = f"{base}#{same + 1}"
            value = names[value[:-2]] + half
        headers.append((key, value))
    return Message(headers)


def _channel_key(message: Message) -> bool:
    return any(k in message for k in ("Channel", "DestChannel", "LocalOneChannel"))


def assert_like_capture(got: Sequence[Message], name: str) -> None:
    """The same streams (`flow_streams`) and the same `facts` as the capture ``name``."""
    recorded = recording(name)
    mine, theirs = flow_streams(got), flow_streams(recorded)
    assert sorted(mine) == sorted(theirs)
    for key in theirs:
        assert mine[key] == theirs[key], key
    assert facts(got) == facts(recorded)


async def originate(wire: Wire, exten: str, data: str, tag: str) -> None:
    """The recorder's Originate: `Local/<exten>@test` (or ``exten@context``) runs Wait(<data>),
    Uniqueids `<tag>-1/2`."""
    response = await wire.ask(
        "Originate",
        Channel=f"Local/{exten}" if "@" in exten else f"Local/{exten}@test",
        Application="Wait",
        Data=data,
        Async="true",
        ChannelId=f"{tag}-1",
        OtherChannelId=f"{tag}-2",
    )
    assert response["Message"] == "Originate successfully queued"


# -- Dial that fails ----------------------------------------------------------------------


async def test_flow_dial_noanswer_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """2001 dials 2002, which rings (Ringing(), Wait(30)) past Dial's 3 s timeout."""
    start = await warm_up(wire, fake)
    await originate(wire, "2001", "10", "noanswer")
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "dial_noanswer")
    states = [m["DialStatus"] for m in got if m.get("Event") in ("DialState", "DialEnd")]
    assert states == ["RINGING", "RINGING", "NOANSWER", "NOANSWER"]


async def test_flow_dial_busy_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """2003 dials 460, which does Busy(5): the callee is in state Busy, its ;2 has cause 17."""
    start = await warm_up(wire, fake)
    await originate(wire, "2003", "10", "busy")
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "dial_busy")
    cdrs = [(m["Channel"][:15], m["Disposition"]) for m in got if m.get("Event") == "Cdr"]
    assert ("Local/2003@test", "BUSY") in cdrs


async def test_flow_dial_congestion_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """2004 dials 470, which does Congestion(5): DialEnd CONGESTION, cause 34."""
    start = await warm_up(wire, fake)
    await originate(wire, "2004", "10", "congestion")
    await wire.settle(fake.pbx)
    assert_like_capture(wire.messages[start:], "dial_congestion")


# -- Hangup with a cause ----------------------------------------------------------------


async def test_flow_hangup_causes_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """Hangup action with Cause 17 and 34 (answered 2011) and 21 (ringing 2002), Hangup(16)."""
    start = await warm_up(wire, fake)
    calls = [("2011", "cause17", "17"), ("2002", "cause21", "21"), ("2011", "cause34", "34")]
    for exten, tag, cause in calls:
        await originate(wire, exten, "30", tag)
        running = await wire.event("Newexten", Uniqueid=f"{tag}-2", Application="Wait")
        hungup = await wire.ask("Hangup", Channel=running["Channel"][:-1] + "1", Cause=cause)
        assert hungup["Message"] == "Channel Hungup"
        await wire.settle(fake.pbx)
    await originate(wire, "2030", "30", "cause16")
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "hangup_causes")
    causes = {(m["Uniqueid"], m["Cause"]) for m in got if m.get("Event") == "Hangup"}
    assert causes == {(f"cause{c}-{n}", c) for c in ("17", "21", "34", "16") for n in (1, 2)}


# -- Queue --------------------------------------------------------------------------------


async def test_flow_queue_call_answered_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """410 queues in sales; Bob (Local/100@test) answers, talks 2 s and hangs up."""
    start = await warm_up(wire, fake)
    await originate(wire, "410", "10", "queue")
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "queue_call_answered")
    (complete,) = [m for m in got if m.get("Event") == "AgentComplete"]
    assert (complete["Uniqueid"], complete["Reason"]) == ("queue-2", "agent")


# -- transfers ----------------------------------------------------------------------------


async def test_flow_blind_transfer_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """2010 (A) dials 2011 (B); BlindTransfer of A's leg to 2012, which dials 2013 (C)."""
    start = await warm_up(wire, fake)
    await originate(wire, "2010", "30", "blind")
    await wire.event("BridgeEnter", Uniqueid="blind-2")
    transferer = fake.pbx.find_channel("blind-2")
    assert transferer is not None
    (transferee,) = transferer.bridge_peers
    response = await wire.ask(
        "BlindTransfer", Channel=transferer.name, Context="test", Exten="2012"
    )
    assert response["Message"] == "Transfer succeeded"
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "blind_transfer")
    (event,) = [m for m in got if m.get("Event") == "BlindTransfer"]
    assert (event["TransfererUniqueid"], event["TransfereeChannel"]) == ("blind-2", transferee.name)
    assert (event["Context"], event["Extension"], event["IsExternal"]) == ("test", "2012", "Yes")
    # B and C are one call with A's: every channel keeps Linkedid blind-1.
    assert {m["Linkedid"] for m in got if m.get("Event") == "Newchannel"} == {"blind-1"}


async def attended_transfer(wire: Wire, fake: FakeAsterisk) -> tuple[SimChannel, SimChannel]:
    """The recorder's attended_transfer: 2014 (A, with FEATUREMAP(atxfer)=*2) dials 2011 (B)
    with option T; Atxfer of A's leg to 2015 (C: Answer, Wait(6), Hangup()); once C talks, the
    Hangup action on A's leg completes the transfer. A's leg and B's leg.
    """
    await originate(wire, "2014", "30", "atxfer")
    await wire.event("BridgeEnter", Uniqueid="atxfer-2")
    transferer = fake.pbx.find_channel("atxfer-2")
    assert transferer is not None
    (transferee,) = transferer.bridge_peers
    await wire.event("Newexten", Channel=transferee.name[:-1] + "2", Application="Wait")
    response = await wire.ask("Atxfer", Channel=transferer.name, Exten="2015", Context="test")
    assert response["Message"] == "Atxfer successfully queued"
    target = await wire.event("Newexten", Exten="2015", Application="Wait")
    response = await wire.ask("Hangup", Channel=transferer.name)
    assert response["Message"] == "Channel Hungup"
    await wire.event("Hangup", Channel=target["Channel"])
    await wire.settle(fake.pbx)
    return transferer, transferee


async def test_flow_attended_transfer_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    _, transferee = await attended_transfer(wire, fake)
    got = wire.messages[start:]
    assert_like_capture(got, "attended_transfer")
    digits = [m["Digit"] for m in got if m.get("Event") == "DTMFEnd"]
    assert digits == ["*", "2", "2", "0", "1", "5"]
    (event,) = [m for m in got if m.get("Event") == "AttendedTransfer"]
    assert (event["Result"], event["OrigTransfererUniqueid"]) == ("Success", "atxfer-2")
    assert event["TransfereeChannel"] == transferee.name
    assert event["TransferTargetChannel"].startswith("Local/2015@test-")
    (merge,) = [m for m in got if m.get("Event") == "BridgeMerge"]
    assert merge["ToBridgeUniqueid"] == event["OrigBridgeUniqueid"] == event["DestBridgeUniqueid"]
    assert merge["FromBridgeUniqueid"] == event["SecondBridgeUniqueid"]
    # One call all along: every channel keeps Linkedid atxfer-1.
    assert {m["Linkedid"] for m in got if m.get("Event") == "Newchannel"} == {"atxfer-1"}


async def test_live_follows_an_attended_transfer(fake: FakeAsterisk, wire: Wire) -> None:
    async with following(fake) as (client, live, stream):
        await attended_transfer(wire, fake)
        changes = await caught_up(client, stream)
        assert_empty_at_the_end(live)
    (record,) = live.history
    assert record.linkedid == "atxfer-1"
    assert [t.kind for t in record.transfers] == ["attended"]
    assert record.disposition == "ANSWERED"
    assert len(record.channels) == 6
    assert [c.call.linkedid for c in changes if isinstance(c, CallTransferred)] == ["atxfer-1"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No channel specified"),
        ({"Channel": "Local/2014@test-00000000;2"}, "No extension specified"),
        ({"Channel": "Local/nope-00000000;2", "Exten": "2015"}, "Channel specified does not exist"),
    ],
)
async def test_atxfer_errors(wire: Wire, headers: dict[str, str], message: str) -> None:
    response = await wire.ask("Atxfer", **headers)
    assert (response["Response"], response["Message"]) == ("Error", message)


async def test_atxfer_without_a_feature_code(fake: FakeAsterisk, wire: Wire) -> None:
    """2010 sets no FEATUREMAP(atxfer) and the lab's features.conf has none."""
    await originate(wire, "2010", "30", "nocode")
    await wire.event("BridgeEnter", Uniqueid="nocode-2")
    channel = fake.pbx.find_channel("nocode-2")
    assert channel is not None
    response = await wire.ask("Atxfer", Channel=channel.name, Exten="2015")
    assert (response["Response"], response["Message"]) == (
        "Error",
        "No attended transfer feature code found",
    )
    await wire.ask("Hangup", Channel=channel.name)
    await wire.settle(fake.pbx)


async def test_atxfer_target_hangs_up_first(fake: FakeAsterisk, wire: Wire) -> None:
    """The target ends the consultation: the transferer is back with the transferee."""
    fake.pbx.dialplan.set("test", "2016", "Answer()", "Wait(1)", "Hangup()")
    await originate(wire, "2014", "30", "back")
    await wire.event("BridgeEnter", Uniqueid="back-2")
    transferer = fake.pbx.find_channel("back-2")
    assert transferer is not None
    (transferee,) = transferer.bridge_peers
    original = transferer.bridge_id
    await wire.ask("Atxfer", Channel=transferer.name, Exten="2016", Context="test")
    target = await wire.event("Newexten", Exten="2016", Application="Hangup")
    await wire.event("Hangup", Channel=target["Channel"])
    await wire.event("Unhold", Uniqueid="back-2")
    assert transferer.bridge_id == original
    assert transferer.bridge_peers == [transferee]
    assert not [m for m in wire.messages if m.get("Event") == "AttendedTransfer"]
    await wire.ask("Hangup", Channel=transferer.name)
    await wire.settle(fake.pbx)


async def test_a_second_atxfer_during_the_consultation_only_sends_digits(
    fake: FakeAsterisk, wire: Wire
) -> None:
    await originate(wire, "2014", "30", "twice")
    await wire.event("BridgeEnter", Uniqueid="twice-2")
    transferer = fake.pbx.find_channel("twice-2")
    assert transferer is not None
    await wire.ask("Atxfer", Channel=transferer.name, Exten="2015", Context="test")
    await wire.event("Newexten", Exten="2015", Application="Wait")
    response = await wire.ask("Atxfer", Channel=transferer.name, Exten="2015", Context="test")
    assert response["Message"] == "Atxfer successfully queued"
    for _ in "*22015":
        await wire.event("DTMFEnd", Uniqueid="twice-2")
    await wire.ask("Hangup", Channel=transferer.name)
    await wire.settle(fake.pbx)
    names = [m.get("Event") for m in wire.messages]
    assert names.count("Hold") == 1 and names.count("AttendedTransfer") == 1
    assert names.count("DTMFEnd") == 12


async def test_atxfer_to_a_missing_extension_keeps_the_call(fake: FakeAsterisk, wire: Wire) -> None:
    await originate(wire, "2014", "30", "nowhere")
    await wire.event("BridgeEnter", Uniqueid="nowhere-2")
    transferer = fake.pbx.find_channel("nowhere-2")
    assert transferer is not None
    (transferee,) = transferer.bridge_peers
    await wire.ask("Atxfer", Channel=transferer.name, Exten="9999", Context="test")
    await wire.event("Unhold", Uniqueid="nowhere-2")
    assert transferer.bridge_peers == [transferee]
    await wire.ask("Hangup", Channel=transferer.name)
    await wire.settle(fake.pbx)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "No channel specified"),
        ({"Channel": "Local/2010@test-00000000;2"}, "No extension specified"),
        ({"Channel": "Local/nope-00000000;2", "Exten": "2012"}, "Channel specified does not exist"),
    ],
)
async def test_blind_transfer_errors(wire: Wire, headers: dict[str, str], message: str) -> None:
    response = await wire.ask("BlindTransfer", **headers)
    assert (response["Response"], response["Message"]) == ("Error", message)


async def test_blind_transfer_of_a_channel_in_no_bridge_is_invalid(
    fake: FakeAsterisk, wire: Wire
) -> None:
    await originate(wire, "2011", "30", "alone")
    running = await wire.event("Newexten", Uniqueid="alone-2", Application="Wait")
    response = await wire.ask("BlindTransfer", Channel=running["Channel"], Exten="2013")
    assert (response["Response"], response["Message"]) == ("Error", "Transfer invalid")
    await wire.ask("Hangup", Channel=running["Channel"])
    await wire.settle(fake.pbx)


async def test_flow_redirect_both_legs_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """Redirect with ExtraChannel of both parties of a Dial to 2013: both run it, no hangup."""
    start = await warm_up(wire, fake)
    await originate(wire, "2010", "30", "redirect")
    await wire.event("BridgeEnter", Uniqueid="redirect-2")
    caller = fake.pbx.find_channel("redirect-2")
    assert caller is not None
    (callee,) = caller.bridge_peers
    response = await wire.ask(
        "Redirect",
        Channel=caller.name,
        ExtraChannel=callee.name,
        Context="test",
        Exten="2013",
        Priority="1",
        ExtraContext="test",
        ExtraExten="2013",
        ExtraPriority="1",
    )
    assert response["Message"] == "Dual Redirect successful"
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "redirect_both_legs")
    waits = {m["Channel"] for m in got if m.get("Event") == "Newexten" and m["Exten"] == "2013"}
    assert waits == {caller.name, callee.name}


# -- the Bridge action ------------------------------------------------------------------


@SLOWER
async def test_flow_bridge_action_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """Two calls to 2011 (Answer, Wait(20)); the Bridge action joins their ;2 legs, and the
    one left when the other hangs up goes on at its next priority (Hangup()).
    """
    start = await warm_up(wire, fake)
    await originate(wire, "2011", "6", "bridge-a")
    await originate(wire, "2011", "12", "bridge-b")
    first = await wire.event("Newexten", Uniqueid="bridge-a-2", Application="Wait")
    second = await wire.event("Newexten", Uniqueid="bridge-b-2", Application="Wait")
    response = await wire.ask("Bridge", Channel1=first["Channel"], Channel2=second["Channel"])
    assert response["Message"] == "Channels have been bridged"
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "bridge_action")
    # The second call's ;2 joined the first's, older call: its Linkedid is bridge-a-1 from
    # its BridgeEnter on, while its ;1 keeps bridge-b-1.
    entered = [m for m in got if m.get("Event") == "BridgeEnter"]
    assert [(m["Uniqueid"], m["Linkedid"]) for m in entered] == [
        ("bridge-a-2", "bridge-a-1"),
        ("bridge-b-2", "bridge-a-1"),
    ]
    ends = [m["UniqueID"] for m in got if m.get("EventName") == "LINKEDID_END"]
    assert ends == ["bridge-b-2", "bridge-b-1"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Channel1": "x"}, "Missing channel parameter in request"),
        ({"Channel1": "Local/x-00000000;1", "Channel2": "y"}, "Channel1 does not exist: "),
    ],
)
async def test_bridge_action_errors(wire: Wire, headers: dict[str, str], message: str) -> None:
    response = await wire.ask("Bridge", **headers)
    assert response["Response"] == "Error" and response["Message"].startswith(message)


# -- Local channel optimization -----------------------------------------------------------


async def test_flow_local_optimization_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """2020 dials 2021, which dials 2022 (no /n): the middle pair optimizes away."""
    start = await warm_up(wire, fake)
    await originate(wire, "2020", "10", "lopt")
    await wire.settle(fake.pbx)
    got = wire.messages[start:]
    assert_like_capture(got, "local_optimization")
    begin, end = [m for m in got if m.get("Event", "").startswith("LocalOptimization")]
    assert (begin["SourceUniqueid"], begin["LocalOneChannel"][:15]) == ("lopt-2", "Local/2021@test")
    assert (end["Id"], end["Success"]) == (begin["Id"], "No")
    # 2020's leg ends up bridged with 2022's ;1, in the bridge the middle pair's ;2 left.
    swapped = next(m for m in got if m.get("Event") == "BridgeEnter" and "SwapUniqueid" in m)
    assert (swapped["Uniqueid"], swapped["SwapUniqueid"]) == ("lopt-2", begin["DestUniqueId"])


async def test_no_optimization_with_the_n_option(fake: FakeAsterisk, wire: Wire) -> None:
    fake.pbx.dialplan.set("test", "2020", "Dial(Local/2021@test/n,20)")
    await originate(wire, "2020", "10", "nopt")
    await wire.settle(fake.pbx)
    assert not [m for m in wire.messages if m.get("Event", "").startswith("LocalOptimization")]


# -- parking ------------------------------------------------------------------------------


async def park_and_retrieve(wire: Wire, fake: FakeAsterisk) -> SimChannel:
    """The recorder's park_and_retrieve: 2010 dials 2011; the Park action parks the called leg
    (2011's ;1) in 7001; an Originate of Local/7001@parkedcalls (ParkedCall(default,7001))
    takes it back; everything ends. The parkee.
    """
    await originate(wire, "2010", "30", "park")
    await wire.event("BridgeEnter", Uniqueid="park-2")
    caller = fake.pbx.find_channel("park-2")
    assert caller is not None
    (parkee,) = caller.bridge_peers
    await wire.event("Newexten", Channel=parkee.name[:-1] + "2", Application="Wait")
    response = await wire.ask("Park", Channel=parkee.name)
    assert response["Message"] == "Park successful"  # sent with 22's bare LF before the CRLF
    parked = await wire.event("ParkedCall")
    assert (parked["ParkeeChannel"], parked["ParkingSpace"]) == (parkee.name, "7001")
    await wire.event("Hangup", Uniqueid="park-1")  # the caller's Dial ended
    _, items = await wire.collect("ParkedCalls")
    assert [(m["ParkeeUniqueid"], m["Parkinglot"]) for m in items] == [(parkee.uniqueid, "default")]
    await originate(wire, "7001@parkedcalls", "3", "retriever")
    await wire.settle(fake.pbx)
    return parkee


async def test_flow_park_and_retrieve_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    parkee = await park_and_retrieve(wire, fake)
    got = [m for m in wire.messages[start:] if m.get("ActionID") not in _list_ids(wire)]
    assert_like_capture(got, "park_and_retrieve")
    (unparked,) = [m for m in got if m.get("Event") == "UnParkedCall"]
    assert (unparked["ParkeeChannel"], unparked["RetrieverUniqueid"]) == (
        parkee.name,
        "retriever-2",
    )
    _, items = await wire.collect("ParkedCalls")
    assert items == []


def _list_ids(wire: Wire) -> set[str]:
    """The ActionIDs of list actions the recorder did not send (their items are not events)."""
    return {m["ActionID"] for m in wire.messages if m.get("EventList") == "start"}


async def test_live_follows_park_and_retrieve(fake: FakeAsterisk, wire: Wire) -> None:
    async with following(fake) as (client, live, stream):
        parkee = await park_and_retrieve(wire, fake)
        changes = await caught_up(client, stream)
        assert_empty_at_the_end(live)
    parked = [c.parked for c in changes if isinstance(c, CallParked)]
    assert [(p.lot, p.space, p.uniqueid) for p in parked] == [("default", "7001", parkee.uniqueid)]
    unparked = [(c.parked.uniqueid, c.how) for c in changes if isinstance(c, CallUnparked)]
    assert unparked == [(parkee.uniqueid, "retrieved")]
    records = {r.linkedid: r for r in live.history}
    assert set(records) == {"park-1", "retriever-1"}
    assert all(r.disposition == "ANSWERED" for r in records.values())
    assert "park-2" in {c.uniqueid for c in records["park-1"].channels}


async def test_live_snapshot_shows_a_call_parked_before_it_started(
    fake: FakeAsterisk, wire: Wire
) -> None:
    await originate(wire, "900", "30", "self")  # Answer(), Park()
    parked = await wire.event("ParkedCall")
    assert (parked["ParkeeUniqueid"], parked["ParkeeExten"]) == ("self-2", "900")
    async with following(fake) as (client, live, _):
        assert "ParkedCalls" not in live.missing
        (call,) = live.parked.values()
        assert (call.lot, call.space, call.uniqueid) == ("default", "7001", "self-2")
        await wire.ask("Hangup", Channel=parked["ParkeeChannel"])
        gave_up = await wire.event("ParkedCallGiveUp")
        assert gave_up["ParkeeUniqueid"] == "self-2"
        await wire.settle(fake.pbx)
        await caught_up(client, live.changes())
        assert_empty_at_the_end(live)


async def test_flow_park_app_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    """900 answers and runs Park(): the call parks itself; ParkedCalls and Parkinglots list
    it (parking.bin ends there, with the call still parked)."""
    start = wire.mark()
    response = await wire.ask(
        "Originate", Channel="Local/900@test", Application="Wait", Data="10", Async="true"
    )
    assert response["Message"] == "Originate successfully queued"
    parked = await wire.event("ParkedCall")
    await wire.event("CEL", EventName="BRIDGE_ENTER", Channel=parked["ParkeeChannel"])
    await wire.collect("ParkedCalls")
    _, lots = await wire.collect("Parkinglots")
    assert [(m["Name"], m["StartSpace"], m["StopSpace"], m["Timeout"]) for m in lots] == [
        ("default", "7001", "7020", "20")
    ]
    got = wire.messages[start:]
    mine, theirs = flow_streams(got), flow_streams(recording("parking"))
    assert mine == theirs
    await wire.ask("Hangup", Channel=parked["ParkeeChannel"])
    await wire.settle(fake.pbx)


async def test_hangup_mid_park_gives_up_and_keeps_the_lot(fake: FakeAsterisk, wire: Wire) -> None:
    """A parked channel hung up: ParkedCallGiveUp, music stops, the lot's bridge stays."""
    await originate(wire, "2010", "30", "giveup")
    await wire.event("BridgeEnter", Uniqueid="giveup-2")
    caller = fake.pbx.find_channel("giveup-2")
    assert caller is not None
    (parkee,) = caller.bridge_peers
    await wire.ask("Park", Channel=parkee.name)
    await wire.event("ParkedCall")
    mark = wire.mark()
    response = await wire.ask("Hangup", Channel=parkee.name, Cause="17")
    assert response["Message"] == "Channel Hungup"
    await wire.settle(fake.pbx)
    got = wire.messages[mark:]
    names = [m.get("Event") for m in got if m.get("Channel", parkee.name) == parkee.name]
    assert names.index("MusicOnHoldStop") < names.index("BridgeLeave") < names.index("Hangup")
    assert "ParkedCallGiveUp" in names
    assert not [m for m in got if m.get("Event") == "BridgeDestroy"]  # the lot's bridge stays
    (hangup,) = [m for m in got if m.get("Event") == "Hangup" and m["Channel"] == parkee.name]
    assert hangup["Cause"] == "17"
    _, items = await wire.collect("ParkedCalls")
    assert items == []
    # The space is free again and the lot's bridge is reused.
    await originate(wire, "900", "30", "again")
    again = await wire.event("ParkedCall", ParkeeUniqueid="again-2")
    assert again["ParkingSpace"] == "7001"
    assert not [m for m in wire.messages[mark:] if m.get("Event") == "BridgeCreate"]
    await wire.ask("Hangup", Channel=again["ParkeeChannel"])
    await wire.settle(fake.pbx)


async def test_a_parked_call_times_out(fake: FakeAsterisk, wire: Wire) -> None:
    await originate(wire, "900", "60", "late")
    parked = await wire.event("ParkedCall")
    assert parked["ParkingTimeout"] == "20"
    timed_out = await wire.event("ParkedCallTimeOut")
    assert timed_out["ParkeeUniqueid"] == "late-2"
    await wire.event("Hangup", Uniqueid="late-2")
    await wire.settle(fake.pbx)
    assert fake.pbx.parked_calls() == []


async def test_parked_call_of_an_empty_space_hangs_up(fake: FakeAsterisk, wire: Wire) -> None:
    await originate(wire, "7005@parkedcalls", "3", "empty")
    await wire.event("Hangup", Uniqueid="empty-2")
    await wire.settle(fake.pbx)
    assert not [m for m in wire.messages if m.get("Event") == "UnParkedCall"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Channel not specified"),
        ({"Channel": "Local/x-00000000;1", "Timeout": "soon"}, "Invalid Timeout value."),
        ({"Channel": "Local/x-00000000;1"}, "Channel does not exist: Local/x-00000000;1"),
    ],
)
async def test_park_errors(wire: Wire, headers: dict[str, str], message: str) -> None:
    response = await wire.ask("Park", **headers)
    assert (response["Response"], response["Message"]) == ("Error", message)


async def test_park_of_a_parked_call_fails(fake: FakeAsterisk, wire: Wire) -> None:
    await originate(wire, "900", "30", "twice")
    parked = await wire.event("ParkedCall")
    response = await wire.ask("Park", Channel=parked["ParkeeChannel"])
    assert (response["Response"], response["Message"]) == ("Error", "Park action failed")
    response, _ = await wire.collect("ParkedCalls", ParkingLot="nope")
    assert response["Message"] == "Requested parking lot could not be found."
    await wire.ask("Hangup", Channel=parked["ParkeeChannel"])
    await wire.settle(fake.pbx)


# -- ConfBridge -----------------------------------------------------------------------------


async def conference_three(wire: Wire, fake: FakeAsterisk) -> None:
    """The recorder's conference_three: three calls to 300 (Answer(), ConfBridge(1234)) whose
    ;1 legs wait 4, 6 and 8 s, each joining before the next starts; they leave one by one.
    """
    for tag, seconds in (("conf1", "4"), ("conf2", "6"), ("conf3", "8")):
        await originate(wire, "300", seconds, tag)
        await wire.event("ConfbridgeJoin", Uniqueid=f"{tag}-2")
    await wire.settle(fake.pbx)


@SLOWER
async def test_flow_conference_three_like_the_capture(fake: FakeAsterisk, wire: Wire) -> None:
    start = await warm_up(wire, fake)
    await conference_three(wire, fake)
    got = wire.messages[start:]
    assert_like_capture(got, "conference_three")
    names = [
        (m["Event"], m.get("Uniqueid")) for m in got if m.get("Event", "").startswith("Confbridge")
    ]
    assert names == [
        ("ConfbridgeStart", None),
        *(("ConfbridgeJoin", f"conf{n}-2") for n in (1, 2, 3)),
        *(("ConfbridgeLeave", f"conf{n}-2") for n in (1, 2, 3)),
        ("ConfbridgeEnd", None),
    ]
    # Members keep their own Linkedids; each ends its own.
    ends = sorted(m["LinkedID"] for m in got if m.get("EventName") == "LINKEDID_END")
    assert ends == ["conf1-1", "conf2-1", "conf3-1"]


async def test_confbridge_lists_while_it_runs(fake: FakeAsterisk, wire: Wire) -> None:
    response = await wire.ask("ConfbridgeListRooms")
    assert (response["Response"], response["Message"]) == ("Error", "No active conferences.")
    for tag in ("room1", "room2"):
        await originate(wire, "300", "20", tag)
        await wire.event("ConfbridgeJoin", Uniqueid=f"{tag}-2")
    response, rooms = await wire.collect("ConfbridgeListRooms")
    assert response["Message"] == "Confbridge conferences will follow"
    assert [(m["Conference"], m["Parties"]) for m in rooms] == [("1234", "2")]
    recorded = Parser().feed((FIXTURES / "confbridge.bin").read_bytes())
    mine = [m for m in wire.messages if m.get("Event", "").startswith("ConfbridgeListRooms")]
    theirs = [m for m in recorded if m.get("Event", "").startswith("ConfbridgeListRooms")]
    assert [shape(m) for m in mine] == [shape(m) for m in theirs]
    _, members = await wire.collect("ConfbridgeList", Conference="1234")
    assert [m["Uniqueid"] for m in members] == ["room1-2", "room2-2"]
    mine = [m for m in wire.messages if m.get("Event", "").startswith("ConfbridgeList")]
    theirs = [m for m in recorded if m.get("Event", "").startswith("ConfbridgeList")]
    assert [shape(m) for m in mine] == [shape(m) for m in theirs]
    for headers, message in (
        ({}, "No Conference name provided."),
        ({"Conference": "9999"}, "No Conference by that name found."),
    ):
        response = await wire.ask("ConfbridgeList", **headers)
        assert (response["Response"], response["Message"]) == ("Error", message)
    for tag in ("room1", "room2"):
        channel = fake.pbx.find_channel(f"{tag}-2")
        assert channel is not None
        await wire.ask("Hangup", Channel=channel.name)
    await wire.settle(fake.pbx)
    assert not fake.pbx.conferences
    assert [m["Event"] for m in wire.messages if m.get("Event", "").startswith("Confbridge")][
        -1
    ] == "ConfbridgeEnd"


async def test_conference_members_hung_up_or_redirected_leave_it(
    fake: FakeAsterisk, wire: Wire
) -> None:
    """One member's own leg hung up, one redirected out, the last one's caller gone: each
    leaves (ConfbridgeLeave), the last one ends the conference."""
    for tag in ("gone", "moved", "last"):
        await originate(wire, "300", "2", tag)
        await wire.event("ConfbridgeJoin", Uniqueid=f"{tag}-2")
    gone, moved = fake.pbx.find_channel("gone-2"), fake.pbx.find_channel("moved-2")
    assert gone is not None and moved is not None
    await wire.ask("Hangup", Channel=gone.name)
    response = await wire.ask(
        "Redirect", Channel=moved.name, Context="test", Exten="2013", Priority="1"
    )
    assert response["Response"] == "Success"
    await wire.settle(fake.pbx)
    events = [(m["Event"], m.get("Uniqueid")) for m in wire.messages if "Conference" in m]
    assert events[-4:] == [
        ("ConfbridgeLeave", "gone-2"),
        ("ConfbridgeLeave", "moved-2"),
        ("ConfbridgeLeave", "last-2"),
        ("ConfbridgeEnd", None),
    ]
    peers = [m["Value"] for m in wire.messages if m.get("Variable") == "BRIDGEPEER"]
    assert peers[-1] == ""
    assert not fake.pbx.conferences
    moved_on = [m for m in wire.messages if m.get("Event") == "Newexten" and m["Exten"] == "2013"]
    assert moved_on and moved_on[0]["Uniqueid"] == "moved-2"


async def test_park_a_conference_member(fake: FakeAsterisk, wire: Wire) -> None:
    for tag in ("stay", "park"):
        await originate(wire, "300", "20", tag)
        await wire.event("ConfbridgeJoin", Uniqueid=f"{tag}-2")
    member = fake.pbx.find_channel("park-2")
    assert member is not None
    response = await wire.ask("Park", Channel=member.name)
    assert response["Response"] == "Success"
    await wire.event("ConfbridgeLeave", Uniqueid="park-2")
    (conference,) = fake.pbx.conferences.values()
    assert [c.uniqueid for c in conference.members] == ["stay-2"]
    assert [c.channel for c in fake.pbx.parked_calls()] == [member]
    for tag in ("stay", "park"):
        channel = fake.pbx.find_channel(f"{tag}-1")
        assert channel is not None
        await wire.ask("Hangup", Channel=channel.name)
    await wire.settle(fake.pbx)
    assert not fake.pbx.conferences and not fake.pbx.parked_calls()


@SLOWER
async def test_live_follows_conference_three(fake: FakeAsterisk, wire: Wire) -> None:
    async with following(fake) as (client, live, stream):
        await conference_three(wire, fake)
        changes = await caught_up(client, stream)
        assert_empty_at_the_end(live)
    joins = [c for c in changes if isinstance(c, ConferenceJoined)]
    leaves = [c for c in changes if isinstance(c, ConferenceLeft)]
    assert [len(c.conference.participants) for c in joins] == [1, 2, 3]
    assert [len(c.conference.participants) for c in leaves] == [2, 1, 0]
    assert sorted(r.linkedid for r in live.history) == ["conf1-1", "conf2-1", "conf3-1"]
    assert all(r.disposition == "ANSWERED" for r in live.history)


async def test_live_snapshot_shows_a_running_conference(fake: FakeAsterisk, wire: Wire) -> None:
    await originate(wire, "300", "20", "snap")
    await wire.event("ConfbridgeJoin", Uniqueid="snap-2")
    async with following(fake) as (client, live, _):
        assert "ConfbridgeListRooms" not in live.missing
        (conference,) = live.conferences.values()
        assert [p.uniqueid for p in conference.participants.values()] == ["snap-2"]
        channel = fake.pbx.find_channel("snap-1")
        assert channel is not None
        await wire.ask("Hangup", Channel=channel.name)
        await wire.settle(fake.pbx)
        await caught_up(client, live.changes())
        assert_empty_at_the_end(live)


# -- the live model over the simulated PBX ------------------------------------------------


@asynccontextmanager
async def following(fake: FakeAsterisk) -> AsyncIterator[tuple[Client, Live, ChangeStream]]:
    """A client of its own with the live model on it, and a stream of its changes."""
    async with (
        ami_async.connect(
            fake.host, fake.port, username="admin", secret="amp111", ping_interval=None
        ) as client,
        Live(client) as live,
    ):
        yield client, live, live.changes()


async def caught_up(client: Client, stream: ChangeStream) -> list[Change]:
    """Every change so far: a Ping's answer comes after every event sent before it."""
    await client.ping(timeout=TIMEOUT)
    changes = []
    while (change := stream.get_nowait()) is not None:
        changes.append(change)
    return changes


def assert_empty_at_the_end(live: Live) -> None:
    assert not live.channels, list(live.channels)
    assert not live.calls, list(live.calls)
    assert not live.parked and not live.conferences
    assert not [b for b in live.bridges.values() if b.channels], dict(live.bridges)


# -- what the fake advertises -------------------------------------------------------------


async def test_every_listed_action_has_a_handler(fake: FakeAsterisk, wire: Wire) -> None:
    """ListCommands and the permission table name only actions the fake answers."""
    listed = set(_ACTION_NAMES)
    assert listed <= set(fake._builtins.actions), listed - set(fake._builtins.actions)
    response = await wire.ask("ListCommands")
    names = {k.lower() for k, _ in response.headers} - {"response", "actionid"}
    assert names == listed
