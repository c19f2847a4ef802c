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

The action scenarios count instructions per action the same way, the size
being the number of Pings: ``--scenario ping_seq`` (sequential ``ping()``
round trips) and ``--scenario ping_flight`` (Pings from 500 tasks, so 500 are
in flight); ``--scenario actions`` runs both::

    python benchmarks/instructions.py --scenario actions    # per Ping, both ways
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

#: The option of run.py that sizes a scenario (events, unless it is about actions).
SIZE_OPTION = {"ping_seq": "--pings", "ping_flight": "--flight-total"}
#: Shorthands of ``--scenario``.
GROUPS = {"actions": ("ping_seq", "ping_flight")}
#: Default sizes of the small and large runs of the action scenarios (Pings).
ACTION_SIZES = (2_000, 10_000)


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
            SIZE_OPTION.get(scenario, "--events"),
            str(events),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    match = _IREFS.search(proc.stderr)
    if proc.returncode != 0 or match is None:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise RuntimeError(f"valgrind run failed ({client}, {scenario}, {events}):\n{tail}")
    return int(match.group(1).replace(",", ""))


def measure(
    clients: list[str], scenario: str, port: int, small: int, large: int, valgrind: str
) -> dict[str, dict[str, float]]:
    """Per client: both counts and the instructions per unit (event or action) of ``scenario``."""
    unit = "action" if scenario in SIZE_OPTION else "event"
    results: dict[str, dict[str, float]] = {}
    for client in clients:
        low = count_instructions(client, scenario, port, small, valgrind=valgrind)
        high = count_instructions(client, scenario, port, large, valgrind=valgrind)
        per_unit = (high - low) / (large - small)
        results[client] = {"small": low, "large": high, "per_event": per_unit}
        print(
            f"{scenario:<11} {client:<11} I({small})={low:>14,}  I({large})={high:>14,}  "
            f"-> {per_unit:,.0f} instructions/{unit}",
            flush=True,
        )
    base = results.get("baseline", {}).get("per_event")
    if base:
        for client, figures in results.items():
            if client != "baseline":
                ratio = figures["per_event"] / base
                print(f"{scenario}: {client}: {ratio:.2f}x the baseline's instructions/{unit}")
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--clients", default="ours,baseline", help="comma-separated (default ours,baseline)"
    )
    ap.add_argument(
        "--scenario",
        default="events_all",
        help="scenarios of run.py, comma-separated, or 'actions' (default events_all)",
    )
    ap.add_argument(
        "--small", type=int, help="events (Pings) in the small run (default 5000; Pings 2000)"
    )
    ap.add_argument(
        "--large", type=int, help="events (Pings) in the large run (default 25000; Pings 10000)"
    )
    ap.add_argument("--json", metavar="FILE", help="write the counts and the figures as JSON")
    args = ap.parse_args(argv)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    scenarios: list[str] = []
    for name in args.scenario.split(","):
        scenarios.extend(GROUPS.get(name.strip(), (name.strip(),)))
    out: dict[str, object] = {"python": sys.version.split()[0]}
    with loadserver.ServerProcess() as server:
        for scenario in scenarios:
            sizes = ACTION_SIZES if scenario in SIZE_OPTION else (5_000, 25_000)
            small = sizes[0] if args.small is None else args.small
            large = sizes[1] if args.large is None else args.large
            if large <= small:
                raise SystemExit("--large must be greater than --small")
            results = measure(clients, scenario, server.port, small, large, valgrind)
            out[scenario] = {"small": small, "large": large, "results": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
