"""Issue 10 item 6, memory: short calls through the live model leave nothing behind.

Thousands of copies of a real answered call (`_live_calls`: each with new
uniqueids, linkedids and bridge id) are fed straight into the model, without a
socket, so that the test runs in seconds; `benchmarks/live.py --memory` does the
full million and reports the resident memory. What is checked is what the model
holds, never a time: no channel, call, bridge or per-channel cache of an ended
call stays; `history` keeps the last N records; after a warm-up, the memory the
model's own code allocates (tracemalloc) and the count of live objects stay flat
while thousands more calls go through.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest
from _live_calls import call_events, followed_names

import ami_async.live
from ami_async.live import CallRecord
from ami_async.live._model import Model

LIVE_DIR = str(Path(ami_async.live.__file__).parent)
HISTORY = 50
WARM_UP = 200
CALLS = 1_500


def feed(model: Model, first: int, count: int) -> None:
    only = followed_names()
    for n in range(first, first + count):
        for ev in call_events(n, only):
            model.apply(ev)


def holds_nothing_of_ended_calls(model: Model) -> None:
    assert not model.channels
    assert not model.calls
    assert not model.bridges
    assert not model._seen  # the per-channel snapshot blocks go with their channels
    assert len(model.history) == HISTORY


def test_each_copy_is_a_whole_answered_call_the_model_forgets() -> None:
    model = Model(lambda: 1_800_000_000.0, HISTORY)
    feed(model, 0, 3)
    holds_nothing_of_ended_calls_but = model.history
    assert [r.linkedid for r in holds_nothing_of_ended_calls_but] == [
        f"1795772630.148-{n}" for n in range(3)
    ]
    assert all(r.disposition == "ANSWERED" for r in model.history)
    assert all(len(r.channels) == 4 for r in model.history)
    assert not model.channels and not model.calls and not model.bridges and not model._seen


@pytest.mark.parametrize("emitting", [True, False], ids=["changes built", "no reader"])
def test_thousands_of_short_calls_leave_the_model_and_the_object_count_flat(
    emitting: bool,
) -> None:
    model = Model(lambda: 1_800_000_000.0, HISTORY)
    model.emitting = emitting
    feed(model, 0, WARM_UP)
    holds_nothing_of_ended_calls(model)
    gc.collect()
    objects_before = len(gc.get_objects())
    feed(model, WARM_UP, CALLS)
    gc.collect()
    holds_nothing_of_ended_calls(model)
    # One call is hundreds of objects (channels, events, record): a leak of even
    # one object per call would be 1,500 more.
    assert len(gc.get_objects()) - objects_before < 200
    # The records kept are the last ones, oldest first, each holding its own channels.
    last = list(model.history)
    assert [r.linkedid for r in last] == [
        f"1795772630.148-{n}" for n in range(WARM_UP + CALLS - HISTORY, WARM_UP + CALLS)
    ]
    assert all(isinstance(r, CallRecord) and len(r.channels) == 4 for r in last)


def test_memory_the_model_allocates_stays_flat_once_history_is_full() -> None:
    """tracemalloc, on the live package's own allocations: slow, hence fewer calls."""
    model = Model(lambda: 1_800_000_000.0, 20)
    live_only = [tracemalloc.Filter(True, f"{LIVE_DIR}/*")]
    tracemalloc.start()
    try:
        feed(model, 0, 40)  # history full of records allocated while tracing
        gc.collect()
        before = tracemalloc.take_snapshot().filter_traces(live_only)
        feed(model, 40, 300)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(live_only)
    finally:
        tracemalloc.stop()
    assert not model.channels and not model.calls and not model.bridges and not model._seen
    stats = after.compare_to(before, "lineno")
    grown = sum(stat.size_diff for stat in stats)
    # One call's objects are kilobytes (four channels, a record, a call): 300 calls
    # leaking a single small object each would already be more than this.
    assert grown < 8 * 1024, [str(s) for s in stats[:5]]


def test_history_zero_keeps_no_record_and_nothing_else() -> None:
    model = Model(lambda: 1_800_000_000.0, 0)
    feed(model, 0, 50)
    assert not model.history
    assert not model.channels and not model.calls and not model.bridges and not model._seen
