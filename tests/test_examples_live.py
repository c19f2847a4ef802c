"""The live model's recipes (docs/live.md): examples/call_logger.py and examples/crm_popup.py.

Each runs as a script (``python examples/NAME.py ...``) against a FakeAsterisk of
this process on 127.0.0.1 with its simulated PBX (clock 20 times faster), the
way a user runs it against Asterisk: the connection from AMI_* variables. The
test waits until the script says it follows the calls, then places calls with
Originate and reads what the script wrote.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ami_async import Client
from ami_async.testing import FakeAsterisk

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
WAIT = 15.0  # the bound on every wait in this file


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(time_scale=0.05, auth_failure_delay=0.05) as server:
        yield server


def environment(pbx: FakeAsterisk | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    if pbx is not None:
        env.update(AMI_PORT=str(pbx.port), AMI_USERNAME="admin", AMI_SECRET="amp111")
    return env


async def start(script: str, *args: str, pbx: FakeAsterisk | None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(pbx),
    )


async def first_line(proc: asyncio.subprocess.Process, stream: str = "stdout") -> str:
    reader = getattr(proc, stream)
    assert reader is not None
    return (await asyncio.wait_for(reader.readline(), WAIT)).decode()


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"did not end within {WAIT} s:\n{out.decode()}\n{err.decode()}"
        ) from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def place(pbx: FakeAsterisk, *calls: tuple[str, str]) -> None:
    async with Client(pbx.host, pbx.port, username="admin", secret="amp111") as client:
        for exten, caller_id in calls:
            await client.originate(
                f"Local/{exten}@test", application="Wait", data="4", caller_id=caller_id
            )


# -- the call logger ---------------------------------------------------------------------------


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


async def test_call_logger_writes_one_row_per_finished_call(
    pbx: FakeAsterisk, tmp_path: Path
) -> None:
    log = tmp_path / "calls.csv"
    proc = await start("call_logger.py", str(log), "--count", "3", pbx=pbx)
    assert (await first_line(proc, "stderr")).startswith("logging calls to")
    # answered (2010 dials 2011), busy (2003 dials 460), no answer (2001 dials 2002)
    await place(pbx, ("2010", '"Ada Lovelace" <5550001>'), ("2003", "5550002"), ("2001", "5550003"))
    code, out, err = await finish(proc)
    assert code == 0, (out, err)
    rows = {row["caller_num"]: row for row in read_rows(log)}
    assert set(rows) == {"5550001", "5550002", "5550003"}
    ada = rows["5550001"]
    assert ada["caller_name"] == "Ada Lovelace" and ada["callee"] == "2011"
    assert ada["disposition"] == "ANSWERED" and float(ada["billsec"]) > 0
    assert ada["answered_at"] >= ada["started_at"] and ada["ended_at"] >= ada["answered_at"]
    assert float(ada["duration"]) >= float(ada["billsec"])
    assert (rows["5550002"]["disposition"], rows["5550002"]["cause"]) == ("BUSY", "17")
    assert rows["5550003"]["disposition"] == "NO ANSWER"
    assert rows["5550003"]["answered_at"] == "" and float(rows["5550003"]["billsec"]) == 0
    assert "5550001 -> 2011: ANSWERED" in err

    # A second run appends, under the one header row.
    proc = await start("call_logger.py", str(log), "--count", "1", pbx=pbx)
    await first_line(proc, "stderr")
    await place(pbx, ("2012", "5550004"))
    code, out, err = await finish(proc)
    assert code == 0, (out, err)
    assert log.read_text(encoding="utf-8").count("linkedid,") == 1
    assert [row["caller_num"] for row in read_rows(log)][-1] == "5550004"


async def test_call_logger_fake_logs_its_demo_calls_to_stdout() -> None:
    code, out, err = await finish(await start("call_logger.py", "-", "--fake", pbx=None))
    assert code == 0, (out, err)
    rows = list(csv.DictReader(out.splitlines()))
    assert sorted(row["disposition"] for row in rows) == ["ANSWERED", "BUSY", "NO ANSWER"]
    assert "logging calls to -" in err


async def test_call_logger_without_credentials_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = await finish(await start("call_logger.py", str(tmp_path / "x"), pbx=None))
    assert code == 2 and "AMI_SECRET" in err and not (tmp_path / "x").exists()


async def test_call_logger_login_refused_exits_3(pbx: FakeAsterisk, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "call_logger.py"),
        str(tmp_path / "calls.csv"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**environment(pbx), "AMI_SECRET": "wrong"},
    )
    code, out, err = await finish(proc)
    assert code == 3 and "call_logger:" in err and "Traceback" not in err, (out, err)
    assert "wrong" not in err


# -- the CRM pop-up ----------------------------------------------------------------------------

CONTACTS = "number,name,account\n+1 (555) 000-1,Ada Lovelace,1042\n555 0002,Alan Turing,1043\n"


async def test_crm_popup_shows_the_caller_to_each_ringing_phone(
    pbx: FakeAsterisk, tmp_path: Path
) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS.replace("+1 (555) 000-1", "(555) 000-1"), encoding="utf-8")
    proc = await start("crm_popup.py", str(contacts), "--count", "2", pbx=pbx)
    assert await first_line(proc) == "waiting for calls\n"
    # Ada calls 2010, whose Dial rings Local/2011; an unknown number calls queue
    # sales, which rings its agent Bob (Local/100@test).
    await place(pbx, ("2010", '"Ada Lovelace" <5550001>'), ("410", "5550099"))
    code, out, err = await finish(proc)
    assert code == 0, (out, err)
    assert out.splitlines() == [
        "Local/2011@test: call from Ada Lovelace <5550001>: Ada Lovelace, account 1042",
        "Local/100@test: call from <5550099> (not in contacts)",
    ]


async def test_crm_popup_fake_shows_its_demo_calls() -> None:
    proc = await start("crm_popup.py", str(EXAMPLES / "contacts.csv"), "--fake", pbx=None)
    code, out, err = await finish(proc)
    assert code == 0, (out, err)
    lines = out.splitlines()
    assert len(lines) == 3 and "account 1042" in lines[1] and "not in contacts" in lines[2]


async def test_crm_popup_unreadable_contacts_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "contacts.csv"
    bad.write_text("phone,who\n1,x\n", encoding="utf-8")
    code, _, err = await finish(await start("crm_popup.py", str(bad), "--fake", pbx=None))
    assert code == 2 and "cannot read" in err and "Traceback" not in err


def test_crm_popup_matches_numbers_by_their_digits(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import crm_popup
    finally:
        sys.path.remove(str(EXAMPLES))
    path = tmp_path / "contacts.csv"
    path.write_text(CONTACTS, encoding="utf-8")
    contacts = crm_popup.load_contacts(path)
    assert set(contacts) == {"15550001", "5550002"}
    assert contacts["5550002"]["name"] == "Alan Turing"
