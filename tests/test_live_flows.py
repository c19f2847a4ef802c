"""What the live model makes of each call flow of the captures: transfers, joins, causes,
queue, conference and parking changes, on Asterisk 22 and 13 alike."""

from __future__ import annotations

import pytest
from _fixtures import fixtures_dir
from _live_replay import load_capture, replay_into_live

from ami_async.events import HangupCause
from ami_async.live import (
    CallAnswered,
    CallEnded,
    CallParked,
    CallRecord,
    CallStarted,
    CallTransferred,
    CallUnparked,
    Change,
    ChannelAdded,
    ChannelRemoved,
    ConferenceJoined,
    ConferenceLeft,
    Live,
    QueueCallerJoined,
    QueueCallerLeft,
    QueueMemberUpdated,
)

BOTH = pytest.mark.parametrize("version", ["asterisk-22", "asterisk-13"])


async def replay(version: str, scenario: str) -> tuple[Live, list[Change]]:
    changes: list[Change] = []
    capture = load_capture(fixtures_dir() / version / f"{scenario}.ami")
    async with replay_into_live(capture, changes=changes) as live:
        return live, changes


def only(records: tuple[CallRecord, ...]) -> CallRecord:
    assert len(records) == 1, records
    return records[0]


@BOTH
async def test_item2_dial_busy_is_busy_with_the_callee_cause(version: str) -> None:
    live, _ = await replay(version, "dial_busy")
    record = only(live.history)
    assert record.disposition == "BUSY"
    assert record.cause == HangupCause.USER_BUSY
    assert record.answered_at is None and record.billsec == 0
    assert record.callee.num == "460"
    assert record.linkedid == "busy-1"
    assert [c.uniqueid for c in record.channels][:2] == ["busy-1", "busy-2"]


@BOTH
async def test_item2_dial_noanswer(version: str) -> None:
    live, _ = await replay(version, "dial_noanswer")
    record = only(live.history)
    assert record.disposition == "NO ANSWER"
    assert 2.5 < record.duration < 4  # the Dial timeout is 3 s


@BOTH
async def test_item2_dial_bridge_answered_with_its_changes_in_order(version: str) -> None:
    live, changes = await replay(version, "dial_bridge")
    record = only(live.history)
    assert record.disposition == "ANSWERED"
    assert record.billsec > 1.5
    assert len(record.channels) == 4
    kinds = [type(c) for c in changes if isinstance(c, (CallStarted, CallAnswered, CallEnded))]
    assert kinds == [CallStarted, CallAnswered, CallEnded]
    added = [c for c in changes if isinstance(c, ChannelAdded)]
    removed = [c for c in changes if isinstance(c, ChannelRemoved)]
    assert len(added) == len(removed) == 4
    (ended,) = [c for c in changes if isinstance(c, CallEnded)]
    assert ended.record is record
    assert changes.index(ended) > max(changes.index(c) for c in removed)
    assert ended.call.record is record and ended.call.ended_at == record.ended_at


@BOTH
async def test_item2_blind_transfer_keeps_one_call_and_records_the_transfer(version: str) -> None:
    live, changes = await replay(version, "blind_transfer")
    record = only(live.history)
    assert [t.kind for t in record.transfers] == ["blind"]
    transfer = record.transfers[0]
    assert transfer.result == "Success"
    assert transfer.target is not None and transfer.target.startswith("2012")
    assert [type(c) for c in changes if isinstance(c, CallTransferred)] == [CallTransferred]


@BOTH
async def test_item2_attended_transfer_keeps_one_call(version: str) -> None:
    live, _ = await replay(version, "attended_transfer")
    record = only(live.history)
    assert [t.kind for t in record.transfers] == ["attended"]
    assert record.disposition == "ANSWERED"
    assert len(record.channels) == 6


@BOTH
async def test_item2_bridge_action_joins_the_second_call_as_linkedid_does(version: str) -> None:
    live, _ = await replay(version, "bridge_action")
    records = {r.linkedid: r for r in live.history}
    assert set(records) == {"bridge-a-1", "bridge-b-1"}
    joined = records["bridge-a-1"]
    assert [t.kind for t in joined.transfers] == ["join"]
    assert joined.transfers[0].transferee == "bridge-b-2"
    assert {c.uniqueid for c in joined.channels} == {"bridge-a-1", "bridge-a-2", "bridge-b-2"}
    # the channel that moved is still counted in the call it came from, as CDR does
    assert {c.uniqueid for c in records["bridge-b-1"].channels} == {"bridge-b-1", "bridge-b-2"}


async def test_item2_local_optimization_leaves_no_phantom() -> None:
    live, changes = await replay("asterisk-22", "local_optimization")
    record = only(live.history)
    added = {c.channel.uniqueid for c in changes if isinstance(c, ChannelAdded)}
    removed = {c.channel.uniqueid for c in changes if isinstance(c, ChannelRemoved)}
    assert added == removed == {c.uniqueid for c in record.channels}
    assert not live.channels and not live.bridges


async def test_item2_hangup_causes_reach_the_records() -> None:
    live, _ = await replay("asterisk-22", "hangup_causes")
    causes = {r.linkedid: r.cause for r in live.history}
    assert causes == {
        "cause17-1": HangupCause.USER_BUSY,
        "cause21-1": HangupCause.CALL_REJECTED,
        "cause34-1": HangupCause.NORMAL_CIRCUIT_CONGESTION,
        "cause16-1": HangupCause.NORMAL_CLEARING,
    }
    dispositions = {r.linkedid: r.disposition for r in live.history}
    assert dispositions["cause21-1"] == "NO ANSWER"
    assert dispositions["cause17-1"] == "ANSWERED"


@BOTH
async def test_item5_queue_caller_joins_and_leaves(version: str) -> None:
    live, changes = await replay(version, "queue_call_answered")
    joined = [c for c in changes if isinstance(c, QueueCallerJoined)]
    left = [c for c in changes if isinstance(c, QueueCallerLeft)]
    assert [c.queue.name for c in joined] == ["sales"]
    assert [c.caller.uniqueid for c in left] == [joined[0].caller.uniqueid]
    assert joined[0].caller.position == 1
    assert not live.queues["sales"].callers
    members = [c for c in changes if isinstance(c, QueueMemberUpdated)]
    assert members and members[-1].member.interface == "Local/100@test"
    assert only(live.history).disposition == "ANSWERED"


@BOTH
async def test_item5_conference_joins_and_leaves(version: str) -> None:
    live, changes = await replay(version, "conference_three")
    joins = [c for c in changes if isinstance(c, ConferenceJoined)]
    leaves = [c for c in changes if isinstance(c, ConferenceLeft)]
    assert [len(c.conference.participants) for c in joins] == [1, 2, 3]
    assert [len(c.conference.participants) for c in leaves] == [2, 1, 0]
    assert {c.participant.uniqueid for c in joins} == {c.participant.uniqueid for c in leaves}
    assert not live.conferences
    assert len(live.history) == 3


async def test_item5_park_and_retrieve() -> None:
    live, changes = await replay("asterisk-22", "park_and_retrieve")
    parked = [c for c in changes if isinstance(c, CallParked)]
    unparked = [c for c in changes if isinstance(c, CallUnparked)]
    assert [(p.parked.lot, p.parked.space) for p in parked] == [("default", "7001")]
    assert [(u.parked.uniqueid, u.how) for u in unparked] == [
        (parked[0].parked.uniqueid, "retrieved")
    ]
    assert not live.parked


async def test_item1_parking_capture_leaves_the_call_parked() -> None:
    live, _ = await replay("asterisk-22", "parking")
    (parked,) = live.parked.values()
    assert parked.lot == "default"
    assert parked.uniqueid in live.channels


@BOTH
async def test_item1_restart_live_call_ends_the_call_before_shutdown(version: str) -> None:
    live, _ = await replay(version, "restart_live_call")
    record = only(live.history)
    assert record.disposition == "ANSWERED"
    assert not live.channels and not live.calls


@BOTH
async def test_item3_event_burst_fifty_calls(version: str) -> None:
    live, changes = await replay(version, "event_burst")
    assert len(live.history) == 50
    assert all(r.disposition == "ANSWERED" for r in live.history)
    assert sum(isinstance(c, CallEnded) for c in changes) == 50
