"""Instructions per event: the deterministic figure for regressions.

Runs scenario (a) (a catch-all ``events()`` subscription; ``--scenario`` picks
another) in a client process under ``valgrind --tool=cachegrind`` at two
stream sizes, against the load server in its own process (not under
valgrind), and prints ``(I(large) - I(small)) / (large - small)``: the
instructions the client executes per event, with start-up, imports, connecting
and logging in cancelled out. Unlike a timing it does not depend on the
machine's load; it moves only when the code (or Python) changes.

``perf stat -e instructions`` would do the same faster, but hardware counters
are not available in this sandbox (``perf stat -e instructions true`` reports
``<not supported>``), hence valgrind::

    python benchmarks/instructions.py                       # ours and the baseline
    python benchmarks/instructions.py --clients ours,baseline,panoramisk --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import loadserver

RUN = Path(__file__).resolve().with_name("run.py")
_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count_instructions(
    client: str, scenario: str, port: int, events: int, *, valgrind: str = "valgrind"
) -> int:
    """Instructions the client process executes for one run of ``scenario``."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={tmp}/cachegrind.out",
            sys.executable,
            str(RUN),
            "--one",
            scenario,
            "--client",
            client,
            "--port",
            str(port),
            "--events",
            str(events),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    match = _IREFS.search(proc.stderr)
    if proc.returncode != 0 or match is None:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"valgrind run failed ({client}, {events} events):\n{tail}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--clients", default="ours,baseline", help="comma-separated (default ours,baseline)"
    )
    ap.add_argument("--scenario", default="events_all", help="a scenario of run.py (default a)")
    ap.add_argument(
        "--small", type=int, default=5_000, help="events in the small run (default 5000)"
    )
    ap.add_argument(
        "--large", type=int, default=25_000, help="events in the large run (default 25000)"
    )
    ap.add_argument("--json", metavar="FILE", help="write the counts and the figures as JSON")
    args = ap.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.large <= args.small:
        raise SystemExit("--large must be greater than --small")
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    results: dict[str, dict[str, float]] = {}
    with loadserver.ServerProcess() as server:
        for client in clients:
            small = count_instructions(
                client, args.scenario, server.port, args.small, valgrind=valgrind
            )
            large = count_instructions(
                client, args.scenario, server.port, args.large, valgrind=valgrind
            )
            per_event = (large - small) / (args.large - args.small)
            results[client] = {"small": small, "large": large, "per_event": per_event}
            print(
                f"{client:<11} I({args.small})={small:>14,}  I({args.large})={large:>14,}  "
                f"-> {per_event:,.0f} instructions/event",
                flush=True,
            )
    base = results.get("baseline", {}).get("per_event")
    if base:
        for client, figures in results.items():
            if client != "baseline":
                ratio = figures["per_event"] / base
                print(f"{client}: {ratio:.2f}x the baseline's instructions/event")
    if args.json:
        out = {
            "scenario": args.scenario,
            "small": args.small,
            "large": args.large,
            "python": sys.version.split()[0],
            "results": results,
        }
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
