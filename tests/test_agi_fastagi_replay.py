"""Issue 11, item 5: every FastAGI capture replayed against the library's server.

The test plays Asterisk's side from ``shared/fixtures/<version>/fastagi_*.agi``:
it connects to `ami_async.agi.serve`, writes the environment in the recorded
reads, checks that each command line the handler sends is the recorded one,
answers it with the recorded bytes (with the ``HANGUP`` lines that followed
it), and at script end expects the server's half-close, then sends the last
``HANGUP`` and closes, as Asterisk did.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from _fixtures import fixtures_dir

import ami_async
from ami_async._transcript import read_transcript
from ami_async.agi import (
    AGIHangupError,
    AGIInvalidCommandError,
    AGISession,
    AGIUsageError,
)

BOTH = pytest.mark.parametrize("version", ["asterisk-22", "asterisk-13"])


@dataclass
class Capture:
    env: list[bytes]
    steps: list[tuple[str, list[bytes]]]  # a command and the writes that answered it
    tail: bytes  # what Asterisk sent after the script ended
    no_answer: list[str] = field(default_factory=list)


def _units(data: bytes) -> list[bytes]:
    """The recorded bytes cut into answers (a 520 block is one) and HANGUP lines."""
    units: list[bytes] = []
    block: list[bytes] = []
    for line in data.splitlines(keepends=True):
        if block:
            block.append(line)
            if line.startswith(b"520 "):
                units.append(b"".join(block))
                block = []
        elif line.startswith(b"520-"):
            block = [line]
        else:
            units.append(line)
    assert not block
    return units


def load(version: str, name: str, *, unanswered: int | None = None) -> Capture:
    records = read_transcript((fixtures_dir() / version / f"{name}.agi").read_bytes())
    env: list[bytes] = []
    commands: list[str] = []
    answers = b""
    tail = b""
    ended = False
    for direction, _, payload in records:
        if direction == ">>>":
            commands += payload.decode().splitlines()
        elif direction == "<<<" and not commands:
            env.append(payload)
        elif direction == "<<<":
            if ended:
                tail += payload
            else:
                answers += payload
        elif b"shutdown(SHUT_WR)" in payload:
            ended = True
    dropped = []
    if unanswered is not None:
        dropped.append(commands.pop(unanswered))
    steps: list[tuple[str, list[bytes]]] = []
    units = _units(answers)
    for command in commands:
        reply = [units.pop(0)]
        while units and units[0] == b"HANGUP\n":
            reply.append(units.pop(0))
        steps.append((command, reply))
    assert not units, f"{name}: answers left over: {units!r}"
    return Capture(env, steps, tail, dropped)


async def play(port: int, capture: Capture) -> list[str]:
    """Asterisk's side: returns the command lines the library sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent: list[str] = []
    try:
        for chunk in capture.env:
            writer.write(chunk)
            await writer.drain()
        for expected, reply in capture.steps:
            line = await reader.readline()
            sent.append(line.decode())
            assert line == expected.encode() + b"\n", (line, expected)
            for chunk in reply:  # an answer, then each HANGUP line in a write of its own
                writer.write(chunk)
                await writer.drain()
        assert await reader.read() == b"", "the server half-closes when the script ends"
        writer.write(capture.tail)
        await writer.drain()
    finally:
        writer.close()
    return sent


Handler = Callable[[AGISession], Awaitable[None]]


async def replay(capture: Capture, script: Handler) -> None:
    outcome: list[BaseException | None] = []

    async def handler(agi: AGISession) -> None:
        try:
            await script(agi)
        except BaseException as exc:
            outcome.append(exc)
            raise
        outcome.append(None)

    server = await ami_async.agi.serve(handler, "127.0.0.1", 0, linger=5.0)
    async with server:
        sent = await asyncio.wait_for(play(server.port, capture), 30)
    assert outcome == [None]
    assert [line.rstrip("\n") for line in sent] == [command for command, _ in capture.steps]


@BOTH
async def test_item5_fastagi_basic_every_answer_as_asterisk_meant_it(version: str) -> None:
    capture = load(version, "fastagi_basic")

    async def script(agi: AGISession) -> None:
        assert agi.script == "lab" and agi.query == {"mode": "test", "n": "1"}
        assert agi.args == ["first arg", "second arg"]
        assert agi.channel.startswith("Local/721@test-") and agi.uniqueid == "fagi-basic-2"
        assert agi.env["agi_accountcode"] == "" and agi.env["agi_dnid"] == "unknown"
        await agi.answer()
        assert await agi.channel_status() == 6
        assert await agi.get_variable("LAB_NOT_SET") is None
        assert await agi.get_variable("CHANNEL") == agi.channel
        value = 'value with spaces and "quotes"'
        await agi.set_variable("LABVAR", value)
        assert await agi.get_variable("LABVAR") == value
        assert await agi.get_full_variable("${CALLERID(num)}") == "1000"
        assert await agi.get_full_variable("${LABVAR} on ${CHANNEL}") == f"{value} on {agi.channel}"
        played = await agi.stream_file("hello-world")
        assert (played.result, played.digit) == (0, None) and int(played.extra["endpos"]) > 0
        interrupted = await agi.stream_file("hello-world", "#")
        assert (interrupted.result, interrupted.digit) == (35, "#")
        missing = await agi.stream_file("nonexistent-file")  # -1 on a live channel: no file
        assert (missing.result, missing.extra["endpos"]) == (-1, "0") and not agi.hung_up
        assert await agi.wait_for_digit(0.1) == ""
        assert await agi.wait_for_digit(5) == "5"
        assert await agi.get_data("beep", 0.5, 2) == ""
        assert await agi.get_data("beep", 3, 2) == "42"
        assert (await agi.say_number(42)).result == 0
        assert (await agi.say_digits(123)).result == 0
        assert (await agi.exec("Playback", "beep")).result == 0
        assert (await agi.exec("NoSuchApp", "x")).result == -2
        await agi.set_context("test")
        await agi.set_extension("721")
        await agi.set_priority(3)
        await agi.database_put("lab", "agikey", "some value")
        assert await agi.database_get("lab", "agikey") == "some value"
        assert await agi.database_del("lab", "agikey")
        assert await agi.database_get("lab", "agikey") is None
        assert await agi.database_del("lab", "agikey")  # a missing key: still result=1
        await agi.verbose("hello", 1)
        await agi.noop()
        await agi.set_music(True, "default")
        await agi.set_music(False)
        with pytest.raises(AGIInvalidCommandError):
            await agi.command("FOOBAR")
        with pytest.raises(AGIUsageError) as usage:
            await agi.command("STREAM FILE")
        assert usage.value.answer is not None
        assert "<variable>PLAYBACKSTATUS</variable>" in usage.value.answer
        assert usage.value.answer.endswith("520 End of proper usage.")
        await agi.set_autohangup(0)
        await agi.hangup()
        assert await agi.wait_hangup(timeout=10)
        with pytest.raises(AGIHangupError):
            await agi.answer()  # 511 on the dead channel
        await agi.noop()  # allowed on a dead channel

    await replay(capture, script)


@BOTH
async def test_item5_fastagi_hangup_while_a_command_runs(version: str) -> None:
    capture = load(version, "fastagi_hangup")

    async def script(agi: AGISession) -> None:
        assert await agi.channel_status() == 4  # not answered: Ring
        assert await agi.get_variable("CHANNEL") == agi.channel
        with pytest.raises(AGIHangupError):
            await agi.wait_for_digit(10)  # 200 result=-1, then HANGUP
        assert await agi.wait_hangup(timeout=10)
        with pytest.raises(AGIHangupError):
            await agi.stream_file("hello-world")  # 511
        assert await agi.get_variable("CHANNEL") == agi.channel  # still allowed

    await replay(capture, script)


@BOTH
async def test_item5_fastagi_hangup_when_idle(version: str) -> None:
    capture = load(version, "fastagi_hangup_idle")

    async def script(agi: AGISession) -> None:
        assert await agi.get_variable("CHANNEL") == agi.channel
        assert await agi.wait_hangup(timeout=10)  # HANGUP alone, no command running
        await agi.noop()
        with pytest.raises(AGIHangupError):
            await agi.answer()

    await replay(capture, script)


@BOTH
async def test_item5_fastagi_continue_script_end_on_a_live_channel(version: str) -> None:
    capture = load(version, "fastagi_continue")

    async def script(agi: AGISession) -> None:
        assert (agi.script, agi.query, agi.args) == ("lab", {}, [])
        assert await agi.get_variable("CHANNEL") == agi.channel
        await agi.verbose("the script ends now", 1)
        assert not agi.hung_up

    await replay(capture, script)


@BOTH
async def test_item5_fastagi_pipelined_commands_are_sent_one_at_a_time(version: str) -> None:
    # The recorder wrote STREAM FILE while another STREAM FILE played: that one got no
    # answer at all. The library never writes before the previous answer, so that
    # situation cannot arise; the rest of the conversation is replayed in lock-step.
    capture = load(version, "fastagi_pipelined", unanswered=4)
    assert capture.no_answer == ['STREAM FILE hello-world ""']

    async def script(agi: AGISession) -> None:
        await agi.answer()
        # From two tasks at once, as the recorder wrote them in one write.
        played, _ = await asyncio.gather(agi.stream_file("hello-world"), agi.noop())
        assert played.extra["endpos"] != "0"
        await agi.verbose("one more", 1)
        await agi.noop()
        await agi.hangup()
        assert await agi.wait_hangup(timeout=10)

    await replay(capture, script)
