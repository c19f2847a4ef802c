"""`benchmarks/live.py --unfollow`: what following each kind of event costs the model.

The option makes the model ignore the events named, so their cost can be measured
(`--instructions --cache-sim`); the figures are the benchmark's business, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ami_async
from ami_async.live import Live

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "live.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(BENCH.parent))
    import live  # type: ignore[import-not-found]

    return live


def test_unfollowed_events_are_left_to_nobody_and_the_others_kept(bench: object) -> None:
    live = Live(ami_async.Client("127.0.0.1", 1, username="u", secret="s"))
    followed = set(live._names)
    bench._unfollow(live, ["Newexten", "HANGUPREQUEST"])  # type: ignore[attr-defined]
    assert set(live._names) == followed - {"newexten", "hanguprequest"}
    assert "newexten" not in live._model._appliers


def test_an_event_the_model_does_not_follow_is_refused_and_nothing_is_removed(
    bench: object,
) -> None:
    live = Live(ami_async.Client("127.0.0.1", 1, username="u", secret="s"))
    followed = tuple(live._names)
    with pytest.raises(SystemExit, match="does not follow \\['cel'\\]"):
        bench._unfollow(live, ["Newexten", "Cel"])  # type: ignore[attr-defined]
    assert live._names == followed and "newexten" in live._model._appliers


@pytest.mark.timeout(60)
def test_one_run_with_an_event_unfollowed_still_ends_its_calls() -> None:
    cmd = [sys.executable, str(BENCH), "--one", "live", "--events", "3000"]
    proc = subprocess.run(
        [*cmd, "--unfollow", "Newexten,NewCallerid"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["events"] == 3000 and result["calls_ended"] > 0


def test_unfollow_without_a_run_that_uses_it_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--unfollow", "Newexten"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0
    assert "--unfollow goes with --instructions or --one" in proc.stderr
