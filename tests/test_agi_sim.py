"""Issue 11: the simulated PBX's AGI (``fake.pbx.agi``) against the recordings.

720@test runs ``AGI(agi:async)`` over the fake AMI, 721-723@test dial a
FastAGI server: the events, environments and answers are compared with
``async_agi_*`` and ``fastagi_*`` (Asterisk 22), and the library's own
`AsyncAGI` and `serve` drive them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from urllib.parse import unquote

import pytest
from _fixtures import fixtures_dir

from ami_async import Client
from ami_async._transcript import read_transcript
from ami_async.agi import (
    AGIHangupError,
    AGIInvalidCommandError,
    AGISession,
    AGIUsageError,
    AsyncAGI,
    serve,
)
from ami_async.message import Event
from ami_async.testing import FakeAsterisk

AGI_EVENTS = ("AsyncAGIStart", "AGIExecStart", "AGIExecEnd", "AsyncAGIExec", "AsyncAGIEnd")


def recorded_events(name: str) -> list[str]:
    """The AGI events of ``asterisk-22/<name>.bin`` (and Hangup), in order."""
    data = (fixtures_dir() / "asterisk-22" / f"{name}.bin").read_bytes().decode()
    names = re.findall(r"^Event: (\w+)\r$", data, re.MULTILINE)
    return [n for n in names if n in (*AGI_EVENTS, "Hangup")]


def recorded_fastagi_env(name: str) -> dict[str, str]:
    records = read_transcript((fixtures_dir() / "asterisk-22" / f"{name}.agi").read_bytes())
    block = b""
    for direction, _, payload in records:
        if direction == ">>>":
            break
        if direction == "<<<":
            block += payload
    return dict(line.split(": ", 1) for line in block.decode().splitlines() if ": " in line)


def recorded_async_env() -> dict[str, str]:
    data = (fixtures_dir() / "asterisk-22" / "async_agi_full.bin").read_bytes().decode()
    match = re.search(r"^Env: (.*)\r$", data, re.MULTILINE)
    assert match is not None
    return dict(line.split(": ", 1) for line in unquote(match.group(1)).splitlines() if line)


@contextlib.asynccontextmanager
async def pbx() -> AsyncIterator[tuple[FakeAsterisk, Client]]:
    async with FakeAsterisk(time_scale=0.01) as fake:
        client = Client(fake.host, fake.port, username="admin", secret="amp111", ping_interval=None)
        async with client:
            yield fake, client


async def originate(client: Client, exten: str) -> None:
    await client.send_action(
        "Originate", Channel=f"Local/{exten}@test", Application="Wait", Data="60", Async="true"
    )


def agi_events(events: list[Event], channel: str | None = None) -> list[str]:
    return [
        e.name
        for e in events
        if e.name in (*AGI_EVENTS, "Hangup") and (channel is None or e.get("Channel") == channel)
    ]


async def test_async_agi_full_as_recorded() -> None:
    async with pbx() as (fake, client):
        events: list[Event] = []
        client.on("*")(events.append)
        async with AsyncAGI(client) as sessions:
            await originate(client, "720")
            agi = await asyncio.wait_for(sessions.__anext__(), 5)
            assert list(agi.env) == list(recorded_async_env())
            assert agi.env["agi_extension"] == "720" and agi.env["agi_priority"] == "2"
            async with agi:
                await agi.answer()
                assert await agi.get_variable("CHANNEL") == agi.channel
                await agi.set_variable("LABENC", "50% + a&b=c/d? é")
                assert await agi.get_variable("LABENC") == "50% + a&b=c/d? é"
                played = await agi.stream_file("hello-world")
                assert (played.result, played.extra["endpos"]) == (0, "11360")
                assert await agi.get_data("beep", 0.5, 2) == ""
                assert (await agi.exec("Playback", "beep")).result == 0
                with pytest.raises(AGIInvalidCommandError):
                    await agi.command("FOOBAR")
                with pytest.raises(AGIUsageError):
                    await agi.command("STREAM FILE")
                await client.send_action("AGI", Channel=agi.channel, Command="NOOP")
        await fake.pbx.wait_idle()
        run = fake.pbx.agi.runs[0]
        assert run.status == "SUCCESS" and run.lines[-1] == "ASYNCAGI BREAK"
    expected = recorded_events("async_agi_full")
    got = agi_events(events)
    # the recording has 2 commands more (GET/SET VARIABLE FOO) of 3 AGI events each
    assert got == [e for i, e in enumerate(expected) if not 4 <= i < 10], got
    encoded = [e for e in events if e.name == "AsyncAGIExec"]
    assert (
        encoded[3].get("Result")
        == "200%20result%3D1%20(50%25%20%2B%20a%26b%3Dc%2Fd%3F%20%C3%A9)%0A"
    )
    assert "CommandId" not in encoded[-2]  # the NOOP sent without a CommandID


async def test_async_agi_hangup_as_recorded() -> None:
    async with pbx() as (fake, client):
        events: list[Event] = []
        client.on("*")(events.append)
        async with AsyncAGI(client) as sessions:
            await originate(client, "720")
            agi = await asyncio.wait_for(sessions.__anext__(), 5)
            waiting = asyncio.ensure_future(agi.wait_for_digit(10))
            await asyncio.sleep(0.05)
            await client.send_action("Hangup", Channel=agi.channel)
            with pytest.raises(AGIHangupError):
                await asyncio.wait_for(waiting, 5)
            assert agi.closed
            response = await client.send_action(
                "AGI", Channel=agi.channel, Command="NOOP", CommandID="late-3", check=False
            )
            assert response.get("Message") == f"Channel {agi.channel} does not exist."
        await fake.pbx.wait_idle()
    recorded = recorded_events("async_agi_hangup")
    assert recorded[-2:] == ["Hangup", "Hangup"]  # the ;1's and the ;2's
    assert agi_events(events, agi.channel) == recorded[:-1]


async def test_digits_scripted_for_async_agi() -> None:
    async with pbx() as (fake, client):
        fake.pbx.agi.press("5")
        fake.pbx.agi.press("42#", exten="720")
        async with AsyncAGI(client) as sessions:
            await originate(client, "720")
            agi = await asyncio.wait_for(sessions.__anext__(), 5)
            async with agi:
                stopped = await agi.stream_file("hello-world", "#")
                assert stopped.digit is None, "4 is not an escape digit: it waits"
                assert await agi.get_data("beep", 3, 4) == "42"  # '#' ends the input
                assert await agi.wait_for_digit(5) == "5"
                assert await agi.wait_for_digit(0.1) == ""
        await fake.pbx.wait_idle()


@contextlib.asynccontextmanager
async def fastagi(fake: FakeAsterisk, handler: object) -> AsyncIterator[int]:
    server = await serve(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    fake.pbx.agi.fastagi_port = server.port
    async with server:
        yield server.port


async def test_fastagi_basic_environment_and_answers() -> None:
    seen: dict[str, object] = {}

    async def ivr(agi: AGISession) -> None:
        seen["env"] = dict(agi.env)
        seen["where"] = (agi.script, agi.query, agi.args)
        await agi.answer()
        seen["status"] = await agi.channel_status()
        await agi.set_variable("LABVAR", 'value with spaces and "quotes"')
        seen["full"] = await agi.get_full_variable("${LABVAR} on ${CHANNEL}")
        seen["played"] = await agi.stream_file("hello-world", "#")
        seen["missing"] = await agi.stream_file("nonexistent-file")
        seen["data"] = await agi.get_data("beep", 3, 2)
        seen["noapp"] = (await agi.exec("NoSuchApp", "x")).result
        await agi.database_put("lab", "agikey", "some value")
        seen["db"] = await agi.database_get("lab", "agikey")
        await agi.hangup()
        await agi.wait_hangup(5)
        with pytest.raises(AGIHangupError):
            await agi.answer()  # 511
        await agi.noop()  # works on a dead channel

    async with pbx() as (fake, client), fastagi(fake, ivr):
        fake.pbx.agi.press("#42")
        await originate(client, "721")
        run = await fake.pbx.agi.next_run()
        assert await run.wait() == "HANGUP"
        await fake.pbx.wait_idle()
    recorded = recorded_fastagi_env("fastagi_basic")
    env = seen["env"]
    assert isinstance(env, dict) and list(env) == list(recorded)
    for key in ("agi_network_script", "agi_request", "agi_extension", "agi_priority"):
        assert env[key] == recorded[key], key
    assert seen["where"] == ("lab", {"mode": "test", "n": "1"}, ["first arg", "second arg"])
    assert seen["status"] == 6
    assert seen["full"].endswith(' "quotes" on ' + env["agi_channel"])  # type: ignore[union-attr]
    assert str(seen["played"]).endswith("text='200 result=35 endpos=4000')")
    assert "text='200 result=-1 endpos=0'" in str(seen["missing"])
    assert seen["data"] == "42" and seen["noapp"] == -2 and seen["db"] == "some value"
    assert run.commands[-2:] == [
        ("ANSWER", "511 Command Not Permitted on a dead channel or intercept routine"),
        ("NOOP", "200 result=0"),
    ]


async def test_fastagi_hangup_during_a_command_and_when_idle() -> None:
    lines: list[str] = []

    async def ivr(agi: AGISession) -> None:
        if agi.env["agi_extension"] == "722":
            with pytest.raises(AGIHangupError):
                await agi.wait_for_digit(10)
        else:
            assert await agi.wait_hangup(5)
        lines.append(str(await agi.get_variable("CHANNEL")))

    async with pbx() as (fake, client), fastagi(fake, ivr):
        for exten in ("722", "721"):
            await originate(client, exten)
            run = await fake.pbx.agi.next_run()
            await asyncio.sleep(0.05)
            await client.send_action("Hangup", Channel=run.channel)
            assert await run.wait() == "HANGUP"
        await fake.pbx.wait_idle()
    assert len(lines) == 2 and lines[0].startswith("Local/722@test")


async def test_fastagi_continue_and_failure_go_on_in_the_dialplan() -> None:
    async def ivr(agi: AGISession) -> None:
        await agi.verbose("the script ends now")

    async with pbx() as (fake, client):
        events: list[Event] = []
        client.on("VarSet")(events.append)
        async with fastagi(fake, ivr):
            await originate(client, "723")
            assert await (await fake.pbx.agi.next_run()).wait() == "SUCCESS"
            await fake.pbx.wait_idle()
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            fake.pbx.agi.fastagi_port = sock.getsockname()[1]
        await originate(client, "723")
        assert await (await fake.pbx.agi.next_run()).wait() == "FAILURE"
        await fake.pbx.wait_idle()
    statuses = [e.get("Value") for e in events if e.get("Variable") == "AGISTATUS"]
    assert statuses == ["SUCCESS", "FAILURE"]
    assert [e.get("Value") for e in events if e.get("Variable") == "AFTER"] == ["1", "1"]


async def test_fastagi_garbage_and_unknown_commands_get_510() -> None:
    async with pbx() as (fake, client):
        received: list[bytes] = []

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while (await reader.readline()).strip():
                pass  # the environment
            writer.write(b"\x00\xffnot a command\nFOOBAR\nSTREAM FILE\nNOOP\n")
            received.append(await reader.readuntil(b"200 result=0\n"))
            writer.write(b"NOOP " + b"x" * 100_000)  # then a line longer than any buffer
            await writer.drain()
            received.append(await reader.read())
            writer.close()

        server = await asyncio.start_server(peer, "127.0.0.1", 0)
        fake.pbx.agi.fastagi_port = server.sockets[0].getsockname()[1]
        async with server:
            await originate(client, "723")
            assert await (await fake.pbx.agi.next_run()).wait() == "FAILURE"
            await fake.pbx.wait_idle()
    assert received[1] == b""  # the simulated Asterisk hung up on it
    answers = received[0].decode().split("\n")
    assert answers[:2] == ["510 Invalid or unknown command"] * 2
    assert answers[2].startswith("520-") and "520 End of proper usage." in answers


async def test_set_context_extension_priority_take_effect_when_the_agi_ends() -> None:
    async def ivr(agi: AGISession) -> None:
        await agi.set_context("test")
        await agi.set_extension("600")
        await agi.set_priority(2)
        assert (await agi.exec("Playback", "beep")).result == 0  # still runs in full
        await agi.verbose("done")

    async with pbx() as (fake, client), fastagi(fake, ivr):
        events: list[Event] = []
        client.on("Newexten", "VarSet")(events.append)
        await originate(client, "723")
        run = await fake.pbx.agi.next_run()
        assert await run.wait() == "SUCCESS"
        await fake.pbx.wait_idle()
    mine = [e for e in events if e.get("Channel") == run.channel]
    playback = [e.get("Value") for e in mine if e.get("Variable") == "PLAYBACKSTATUS"]
    assert playback == ["SUCCESS"]
    after = [(e.get("Exten"), e.get("Priority")) for e in mine if e.name == "Newexten"]
    assert after == [("723", "1"), *(("600", str(n)) for n in range(2, 6))]  # not 723's Set
