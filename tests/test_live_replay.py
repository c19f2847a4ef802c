"""The oracle is Asterisk itself: every capture of both versions, replayed through a real
client into `Live`, gives call records that agree with Asterisk's own `Cdr` (disposition)
and `CEL` (duration, billsec) events, and leaves exactly the channels the capture leaves up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures import fixture_id
from _live_replay import (
    capture_files,
    expected_disposition,
    load_capture,
    records_by_linkedid,
    replay_into_live,
)

#: CEL times are whole seconds (cel.conf has no `dateformat` in the lab): 1.5 s of slack.
SLACK = 1.5

CAPTURES = capture_files()


@pytest.mark.parametrize("path", CAPTURES, ids=fixture_id)
async def test_item3_records_agree_with_asterisk_cdr_and_cel(path: Path) -> None:
    capture = load_capture(path)
    async with replay_into_live(capture) as live:
        records = records_by_linkedid(live.history)
        left_up = set(capture.left_up)
        # Every call CEL saw end has exactly one record, and it agrees with CDR and CEL.
        for linkedid, facts in capture.cel.items():
            if facts.end is None:
                continue
            assert linkedid in records, f"no record for call {linkedid}"
            assert len(records[linkedid]) == 1, f"{linkedid} ended {len(records[linkedid])} times"
            record = records[linkedid][0]
            uniqueids = [c.uniqueid for c in record.channels]
            wanted = expected_disposition(capture.cdrs, uniqueids)
            if wanted is not None:
                assert record.disposition == wanted, (linkedid, record)
            first_start = facts.starts.get(uniqueids[0])
            if first_start is None:  # the first channel's CHAN_START has the old linkedid
                first_start = min(
                    f.starts[uniqueids[0]] for f in capture.cel.values() if uniqueids[0] in f.starts
                )
            duration = facts.end - first_start
            assert abs(record.duration - duration) <= SLACK, (linkedid, record.duration, duration)
            billsec = 0.0 if facts.first_answer is None else facts.end - facts.first_answer
            assert abs(record.billsec - billsec) <= SLACK, (linkedid, record.billsec, billsec)
        # What is left is what the capture leaves up (a call still waiting, talking, parked).
        assert set(live.channels) == left_up
        assert set(live.bridges) == capture.bridges_left
        assert set(live.calls) == {live.channels[u].linkedid for u in left_up}


#: Captures that end with something still up, what stays, and why (channels, bridges, calls).
LEFT_UP = {
    "coreshowchannels": (4, 0, 2, "two Originates to Wait(30); the recording ends after the list"),
    "confbridge": (4, 1, 2, "two calls still in ConfBridge 1234 when the recording ends"),
    "getvar_setvar": (2, 0, 1, "the call the variables were set on is still up"),
    "parking": (2, 1, 1, "the parked call waits in its space; the lot's holding bridge stays"),
    "queue": (2, 0, 1, "the caller still waits in queue support"),
    "park_and_retrieve": (0, 1, 0, "Asterisk keeps the parking lot's holding bridge"),
}


@pytest.mark.parametrize("path", CAPTURES, ids=fixture_id)
async def test_item3_what_each_capture_leaves_up(path: Path) -> None:
    capture = load_capture(path)
    channels, bridges, calls, _why = LEFT_UP.get(path.stem, (0, 0, 0, "every call ended"))
    async with replay_into_live(capture) as live:
        assert (len(live.channels), len(live.bridges), len(live.calls)) == (
            channels,
            bridges,
            calls,
        )
        if path.stem == "queue":
            assert [len(q.callers) for q in live.queues.values() if q.callers] == [1]
        elif path.stem == "confbridge":
            assert len(live.conferences["1234"].participants) == 2
        elif path.stem == "parking":
            assert len(live.parked) == 1
        else:
            assert not live.conferences
            assert not live.parked
            assert not any(q.callers for q in live.queues.values())


NAMED = (
    "dial_bridge",
    "dial_noanswer",
    "dial_busy",
    "dial_congestion",
    "blind_transfer",
    "attended_transfer",
    "redirect_both_legs",
    "queue_call_answered",
    "conference_three",
    "bridge_action",
    "restart_live_call",
    "originate_async",
    "originate_fail_async",
)
ONLY_22 = ("park_and_retrieve", "local_optimization", "hangup_causes", "originate_sync")


def test_item3_the_named_flows_are_among_the_captures_walked() -> None:
    walked = {fixture_id(p) for p in CAPTURES}
    for name in NAMED:
        assert f"asterisk-22/{name}" in walked
        assert f"asterisk-13/{name}" in walked
    for name in ONLY_22:
        assert f"asterisk-22/{name}" in walked
