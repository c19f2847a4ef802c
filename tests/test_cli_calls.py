"""`ami-async calls`: the CDR tail, `--json`, and `--live`, against the simulated PBX.

The commands run as subprocesses (``python -m ami_async``) against a FakeAsterisk
of this process on 127.0.0.1, its clock 20 times faster (the lab's 2011 answers
and hangs up after a simulated 20 s: one real second). Each waits until the
command says (with -v) that it follows the calls before placing any.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import ClassVar

import pytest
from _cli import TIMEOUT, Cli, cli, login, wait_stderr

from ami_async import ActionError, Client
from ami_async.cli.calls import live_table, record_json, record_line
from ami_async.events import HangupCause
from ami_async.live import CallerID, CallRecord
from ami_async.testing import FakeAsterisk

__all__ = ["cli"]  # the fixture

READY = "following calls"  # what -v logs once the model has its snapshot


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(time_scale=0.05, auth_failure_delay=0.05) as server:
        yield server


def caller_client(pbx: FakeAsterisk) -> Client:
    return Client(pbx.host, pbx.port, username="admin", secret="amp111", timeout=TIMEOUT)


async def place(client: Client, exten: str, caller_id: str) -> None:
    await client.originate(
        f"Local/{exten}@test", application="Wait", data="1", caller_id=caller_id, wait=False
    )


async def test_calls_prints_one_line_per_finished_call(cli: Cli, pbx: FakeAsterisk) -> None:
    text = await cli.start("calls", "--count", "3", "-v", *login(pbx))
    as_json = await cli.start("calls", "--json", "--count", "3", "-v", *login(pbx))
    await asyncio.gather(wait_stderr(text, READY), wait_stderr(as_json, READY))
    async with caller_client(pbx) as client:
        # answered (2010 dials 2011), busy (2003 dials 460), no answer (2001 dials 2002)
        await place(client, "2010", '"Ada Lovelace" <5550001>')
        await place(client, "2003", '"Alan Turing" <5550002>')
        await place(client, "2001", "5550003")
        text_result, json_result = await asyncio.gather(cli.finish(text), cli.finish(as_json))

    assert text_result.code == 0, text_result
    lines = {line.split(" ", 2)[1]: line for line in text_result.out.splitlines()}
    assert set(lines) == {"Ada", "Alan", "5550003"}, text_result
    assert " Ada Lovelace <5550001> -> " in lines["Ada"]
    assert " ANSWERED duration=0:0" in lines["Ada"]
    assert " BUSY " in lines["Alan"] and "cause=USER_BUSY(17)" in lines["Alan"]
    assert " 5550003 -> " in lines["5550003"] and " NO ANSWER " in lines["5550003"]
    for line in lines.values():
        stamp = line.split(" ", 1)[0]
        datetime.strptime(stamp, "%H:%M:%S")  # the local time the call ended

    assert json_result.code == 0, json_result
    records = {r["caller"]["num"]: r for r in map(json.loads, json_result.out.splitlines())}
    assert set(records) == {"5550001", "5550002", "5550003"}
    ada = records["5550001"]
    assert ada["type"] == "call" and ada["disposition"] == "ANSWERED"
    assert ada["caller"] == {"num": "5550001", "name": "Ada Lovelace"}
    assert ada["callee"]["num"] == "2011"
    assert ada["duration"] >= ada["billsec"] > 0
    assert datetime.fromisoformat(ada["ended_at"]) >= datetime.fromisoformat(ada["started_at"])
    assert records["5550002"]["disposition"] == "BUSY"
    assert records["5550002"]["cause"] == 17 and records["5550002"]["cause_name"] == "USER_BUSY"
    assert records["5550003"]["disposition"] == "NO ANSWER"
    assert records["5550003"]["billsec"] == 0 and records["5550003"]["answered_at"] is None


async def test_calls_live_redraws_as_plain_tables_when_not_a_terminal(
    cli: Cli, pbx: FakeAsterisk
) -> None:
    pbx.pbx.add_extension("test", "7000", "Answer")
    pbx.pbx.add_extension("test", "7000", "Wait", "100000")
    proc = await cli.start("calls", "--live", "-v", *login(pbx))
    await wait_stderr(proc, READY)
    assert proc.stdout is not None
    seen: list[str] = []

    async def table_with(text: str) -> None:
        assert proc.stdout is not None
        while not any(text in line for line in seen[-8:]):
            seen.append((await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode())

    await table_with(" 0 calls")
    async with caller_client(pbx) as client:
        await place(client, "7000", '"Grace Hopper" <5550004>')
        await table_with("Grace Hopper <5550004>")
        channels = [e["Channel"] for e in await client.core_show_channels()]
        for channel in channels:
            with contextlib.suppress(ActionError):  # gone with its Local pair's other half
                await client.hangup(channel)
        await table_with(" 0 calls")
    proc.send_signal(signal.SIGINT)
    result = await cli.finish(proc)
    assert result.code == 130, result
    output = "".join(seen) + result.out
    assert "\x1b" not in output  # no escape codes into a pipe
    row = next(line for line in seen if "Grace Hopper" in line)
    assert row.split()[-3:-2] == ["up"] or "ringing" in row, row
    head = next(line for line in seen if line.startswith("caller"))
    assert head.split() == ["caller", "callee", "state", "duration", "channels"]


async def test_calls_live_with_json_is_a_usage_error(cli: Cli) -> None:
    result = await cli("calls", "--live", "--json", "--fake")
    assert result.code == 2, result
    assert "ami-async calls: error: --live draws a table" in result.err


async def test_calls_stops_after_duration_with_no_call(cli: Cli, pbx: FakeAsterisk) -> None:
    result = await cli("calls", "--duration", "0.5", *login(pbx))
    assert result.code == 0, result
    assert result.out == ""


# -- the formats, in this process --------------------------------------------------------------


def record(**changes: object) -> CallRecord:
    start = datetime(2026, 12, 6, 9, 0, 0, tzinfo=timezone.utc)
    fields: dict[str, object] = {
        "linkedid": "1795778731.4",
        "caller": CallerID("100", "Alice"),
        "callee": CallerID("200", None),
        "started_at": start,
        "answered_at": start + timedelta(seconds=2),
        "ended_at": start + timedelta(seconds=75),
        "duration": 75.2,
        "billsec": 73.0,
        "disposition": "ANSWERED",
        "cause": HangupCause(16),
        "transfers": (),
        "channels": (),
    }
    fields.update(changes)
    return CallRecord(**fields)  # type: ignore[arg-type]


def test_record_line_and_json_shapes() -> None:
    line = record_line(record())
    assert line.split(" ", 1)[1] == (
        "Alice <100> -> 200 ANSWERED duration=1:15 talk=1:13 cause=NORMAL_CLEARING(16)"
    )
    shape = record_json(record(cause=None, answered_at=None, billsec=0.0))
    assert shape["cause"] is None and shape["cause_name"] is None
    assert shape["answered_at"] is None and shape["transfers"] == []
    assert json.loads(json.dumps(shape)) == shape


def test_record_line_escapes_what_a_caller_id_smuggles() -> None:
    # A caller ID is set by whoever calls: no escape code reaches the terminal.
    line = record_line(record(caller=CallerID("100", "Evil\x1b[2J\nName")))
    assert "\x1b" not in line and "\n" not in line
    assert "Evil\\x1b[2J\\x0aName <100>" in line


def test_live_table_fits_long_names_in_the_width() -> None:
    class FakeCall:
        linkedid = "1.1"
        caller = CallerID("100", "A" * 300)
        callee = CallerID("200", None)
        started_at = datetime.now(timezone.utc) - timedelta(seconds=3725)
        answered_at = started_at
        channels: ClassVar[dict[str, object]] = {}

    lines = live_table([FakeCall()], datetime.now(timezone.utc), width=80)  # type: ignore[list-item]
    assert lines[0].endswith("  1 call")
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[2].split()[-3:] == ["up", "1:02:05", "0"]
