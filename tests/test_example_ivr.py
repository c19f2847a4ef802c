"""examples/ivr.py over both transports on the simulated PBX.

The example runs as a script, as a user runs it; the simulated PBX places
calls to 720@test (``AGI(agi:async)``, over its fake AMI) and 721@test
(``AGI(agi://...)``, dialling the example's FastAGI port), and the scripted
digits play the caller.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ami_async import Client
from ami_async.testing import AGIRun, FakeAsterisk

REPO = Path(__file__).resolve().parents[1]
WAIT = 15.0


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(time_scale=0.01) as fake:
        yield fake


async def start(*args: str, fake: FakeAsterisk) -> tuple[asyncio.subprocess.Process, str]:
    """Run the example; it and its ``ready: ...`` line."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AMI_")},
        "AMI_HOST": fake.host,
        "AMI_PORT": str(fake.port),
        "AMI_USERNAME": "admin",
        "AMI_SECRET": "amp111",
        "PYTHONPATH": str(REPO),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "examples" / "ivr.py"),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    ready = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
    if not ready.startswith("ready: "):
        proc.kill()
        raise AssertionError(ready + (await proc.stderr.read()).decode())
    return proc, ready


async def stop(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def call(fake: FakeAsterisk, exten: str, digits: str) -> AGIRun:
    """A caller on ``exten@test`` who presses ``digits``; the AGI run, once it ended."""
    fake.pbx.agi.press(digits)
    async with Client(fake.host, fake.port, username="admin", secret="amp111") as client:
        await client.send_action(
            "Originate", Channel=f"Local/{exten}@test", Application="Wait", Data="60", Async="true"
        )
        run = await fake.pbx.agi.next_run(WAIT)
    await run.wait(WAIT)
    return run


MENU = "GET DATA ivr-menu 5000 1"


@pytest.mark.parametrize("transport", ["fastagi", "async"])
async def test_ivr_routes_each_choice(pbx: FakeAsterisk, transport: str) -> None:
    if transport == "fastagi":
        proc, ready = await start("--fastagi", "0", fake=pbx)
        pbx.pbx.agi.fastagi_port = int(ready.rsplit(":", 1)[1])
        exten = "721"  # AGI(agi://127.0.0.1:4573/lab...): dials fastagi_port
    else:
        proc, ready = await start("--async", fake=pbx)
        exten = "720"  # AGI(agi:async)
    try:
        sales = await call(pbx, exten, "1")
        support = await call(pbx, exten, "92")  # a wrong key, then 2
        nobody = await call(pbx, exten, "")  # three silent tries
        await pbx.pbx.wait_idle(WAIT)
    finally:
        code, err = await stop(proc)
    assert code == 0, err
    if transport == "async":  # the handler returned: ASYNCAGI BREAK, the dialplan goes on
        for run in (sales, support):
            assert run.commands.pop()[0] == "ASYNCAGI BREAK"
    assert sales.lines == [
        "ANSWER",
        MENU,
        "SET VARIABLE IVR_CHOICE sales",
        'STREAM FILE transfer-to-sales ""',
    ]
    assert sales.status == "SUCCESS"
    assert support.lines[1:] == [
        MENU,
        'STREAM FILE option-is-invalid ""',
        MENU,
        "SET VARIABLE IVR_CHOICE support",
        'STREAM FILE transfer-to-support ""',
    ]
    assert nobody.lines[-4:] == [
        'STREAM FILE please-try-again ""',
        "SET VARIABLE IVR_CHOICE none",
        'STREAM FILE goodbye ""',
        "HANGUP",
    ]
    assert nobody.lines.count(MENU) == 3 and nobody.status == "HANGUP"
    assert "Traceback" not in err


async def test_ivr_without_ami_exits_3(pbx: FakeAsterisk) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "examples" / "ivr.py"),
        "--async",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "AMI_PORT": "1"},
    )
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 3 and b"no AMI connection" in err
