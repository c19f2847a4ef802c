"""`benchmarks/live.py --paired`: the harness runs and reports what its docs say.

Timings are never asserted (they are the benchmark's business): only that every
mode's clients served their floods and that each mode is set against the bare
subscription of the same rounds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "live.py"


@pytest.mark.timeout(150)
def test_paired_rounds_report_each_mode_against_bare(tmp_path: Path) -> None:
    out = tmp_path / "paired.json"
    cmd = [sys.executable, str(BENCH), "--paired", "3", "--events", "3000"]
    cmd += ["--modes", "bare,live,live_changes", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=110, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text(encoding="utf-8"))["timings"]
    assert set(figures) == {"bare", "live", "live_changes"}
    for mode, f in figures.items():
        assert f["events_per_s"] > 0 and f["cpu_us_per_event"] > 0, mode
    assert "ratio" not in figures["bare"]
    for mode in ("live", "live_changes"):
        f = figures[mode]
        assert f["ratio_q1"] <= f["ratio_q3"]
        assert f["ratio"] > 0 and f["ratio_quiet"] > 0
    # The printed summary names the quartiles and the quiet-machine ratio.
    assert "quartiles" in proc.stdout and "20th percentile" in proc.stdout


# A child that says it is ready, then stops reading and hangs (the write to it breaks).
_STALLED = 'import os, time; print(\'{"ready": "live"}\', flush=True); os.close(0); time.sleep(120)'


@pytest.mark.timeout(120)
def test_a_child_gone_wrong_ends_the_run_with_an_error_and_no_child_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCH.parent))
    import live  # type: ignore[import-not-found]

    started: list[subprocess.Popen[str]] = []

    class Sub:  # the harness's `subprocess`, its "live" child replaced by a stalled one
        PIPE = subprocess.PIPE
        TimeoutExpired = subprocess.TimeoutExpired

        @staticmethod
        def Popen(cmd: list[str], **options: object) -> subprocess.Popen[str]:
            if cmd[cmd.index("--serve") + 1] == "live":
                cmd = [sys.executable, "-c", _STALLED]
            proc: subprocess.Popen[str] = subprocess.Popen(cmd, **options)  # type: ignore[call-overload]
            started.append(proc)
            return proc

    monkeypatch.setattr(live, "subprocess", Sub)
    monkeypatch.setattr(live, "CHILD_EXIT_WAIT", 0.5)  # (the stalled one is killed after it)
    try:
        with pytest.raises(RuntimeError, match="live"):
            live.paired(["bare", "live"], 1000, 2)
        assert len(started) == 2 and all(p.poll() is not None for p in started)
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
