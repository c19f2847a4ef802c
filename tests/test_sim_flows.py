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
from collections.abc import Sequence

from _simpbx_wire import (
    Wire,
    _channel_base,
    assert_same_streams,
    call_events,
    fake,
    recording,
    warm_up,
    wire,
)

__all__ = ["fake", "wire"]  # fixtures (tests/_simpbx_wire.py)

from ami_async.message import Message
from ami_async.testing import FakeAsterisk


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


def assert_like_capture(got: Sequence[Message], name: str) -> None:
    recorded = recording(name)
    assert_same_streams(got, recorded)
    assert facts(got) == facts(recorded)


async def originate(wire: Wire, exten: str, data: str, tag: str) -> None:
    """The recorder's Originate: `Local/<exten>@test` runs Wait(<data>), Uniqueids `<tag>-1/2`."""
    response = await wire.ask(
        "Originate",
        Channel=f"Local/{exten}@test",
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
