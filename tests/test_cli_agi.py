"""`ami-async agi-serve`: the CLI serves a handler module and the simulated Asterisk dials it."""

from __future__ import annotations

import asyncio
import signal
import socket
import textwrap
from pathlib import Path

from _cli import Cli, cli, free_port, wait_line

from ami_async import Client
from ami_async.testing import AGIRun, FakeAsterisk

__all__ = ["cli"]  # the fixture

HANDLER = """
from ami_async.agi import AGISession


async def menu(agi: AGISession) -> None:
    await agi.answer()
    digits = await agi.get_data("enter-number", 2, 3)
    await agi.set_variable("CHOICE", digits)
    if digits == "999":
        raise RuntimeError("a bug in the handler")
    await agi.verbose(f"{agi.script} {agi.query} {agi.args}")


def not_async(agi: AGISession) -> None:
    pass
"""


def write_handler(tmp_path: Path) -> None:
    (tmp_path / "callmenu.py").write_text(textwrap.dedent(HANDLER), encoding="utf-8")


async def test_agi_serve_runs_the_handler_for_each_call(cli: Cli, tmp_path: Path) -> None:
    write_handler(tmp_path)
    port = free_port()
    proc = await cli.start("agi-serve", "callmenu:menu", "--port", str(port), cwd=tmp_path)
    try:
        assert await wait_line(proc.stdout) == f"listening on 127.0.0.1:{port}\n"
        async with FakeAsterisk(time_scale=0.01) as fake:
            fake.pbx.agi.fastagi_port = port
            for digits in ("42#", "999", "7"):
                fake.pbx.agi.press(digits)
                run = await _call(fake, "721")
                assert await run.wait() == "SUCCESS"
            await fake.pbx.wait_idle()
        first, failed, timed_out = fake.pbx.agi.runs
        assert first.lines == [
            "ANSWER",
            "GET DATA enter-number 2000 3",
            "SET VARIABLE CHOICE 42",
            "VERBOSE \"lab {'mode': 'test', 'n': '1'} ['first arg', 'second arg']\" 1",
        ]
        assert failed.lines[-1] == "SET VARIABLE CHOICE 999"  # then it raised
        assert timed_out.commands[1] == ("GET DATA enter-number 2000 3", "200 result=7 (timeout)")
        proc.send_signal(signal.SIGTERM)
        result = await cli.finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert result.code == 0, str(result)
    assert "a bug in the handler" in result.err and "Local/721@test" in result.err
    assert result.err.startswith("ami-async agi-serve: error: AGI handler for Local/721@test")


async def _call(fake: FakeAsterisk, exten: str) -> AGIRun:
    """Originate a call to ``exten@test`` (its ;2 runs the AGI); the AGI run it makes."""
    async with Client(fake.host, fake.port, username="admin", secret="amp111") as client:
        await client.send_action(
            "Originate", Channel=f"Local/{exten}@test", Application="Wait", Data="60", Async="true"
        )
        return await fake.pbx.agi.next_run()


async def test_agi_serve_refuses_what_is_not_an_async_handler(cli: Cli, tmp_path: Path) -> None:
    write_handler(tmp_path)
    cases = {
        "callmenu": "module:function",
        "nosuchmodule:menu": "cannot import 'nosuchmodule'",
        "callmenu:missing": "has no 'missing'",
        "callmenu:not_async": "must be an async function",
    }
    results = await asyncio.gather(
        *(cli("agi-serve", spec, "--port", "0", cwd=tmp_path) for spec in cases)
    )
    for (spec, text), result in zip(cases.items(), results, strict=True):
        assert result.code == 2, (spec, str(result))
        assert text in result.err and result.out == "", (spec, str(result))
    bad = await cli("agi-serve", "callmenu:menu", "--max-sessions", "0", cwd=tmp_path)
    assert bad.code == 2 and "--max-sessions" in bad.err


async def test_agi_serve_reports_a_port_in_use(cli: Cli, tmp_path: Path) -> None:
    write_handler(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = await cli("agi-serve", "callmenu:menu", "--port", str(port), cwd=tmp_path)
    assert result.code == 3, str(result)
    assert f"cannot listen on 127.0.0.1:{port}" in result.err


async def test_agi_serve_stops_after_duration(cli: Cli, tmp_path: Path) -> None:
    write_handler(tmp_path)
    result = await cli(
        "agi-serve", "callmenu:menu", "--port", "0", "--duration", "0.2", cwd=tmp_path
    )
    assert result.code == 0, str(result)
    assert result.out.startswith("listening on 127.0.0.1:")
