"""Issue 11: `AGISession` itself: queueing, timeouts, cancellation, the error answers.

The session runs over a scripted transport (`Wire`): the test sees each
command line the session writes and answers it when it chooses, with answer
lines as Asterisk writes them (``shared/fixtures/*/fastagi_basic.agi``).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

import pytest

from ami_async.agi import (
    AGIError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGISession,
    AGITimeoutError,
    AGIUsageError,
)
from ami_async.agi._commands import Answer, answer_from_text
from ami_async.errors import InvalidActionError

ENV = {
    "agi_network": "yes",
    "agi_network_script": "lab?mode=test&n=1",
    "agi_request": "agi://127.0.0.1:4573/lab?mode=test&n=1",
    "agi_channel": "Local/721@test-0000001a;2",
    "agi_uniqueid": "fagi-basic-2",
    "agi_arg_1": "first arg",
    "agi_arg_2": "second arg",
}
USAGE = (
    "520-Invalid command syntax.  Proper usage follows:\n"
    "Send the given file, allowing playback to be interrupted by the given digits.\n"
    "520 End of proper usage."
)


class Wire:
    """A transport the test drives: ``lines`` written, ``answer`` the oldest unanswered one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.unanswered: collections.deque[asyncio.Future[Answer]] = collections.deque()
        self.finished = 0
        self.written = asyncio.Event()
        self.gate: asyncio.Event | None = None  # when set, send() waits on it (a slow write)

    async def send(self, line: str) -> asyncio.Future[Answer]:
        if self.gate is not None:
            await self.gate.wait()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.lines.append(line)
        self.unanswered.append(future)
        self.written.set()
        return future

    async def finish(self) -> None:
        self.finished += 1

    async def line(self, count: int) -> None:
        """Wait until ``count`` lines were written."""
        while len(self.lines) < count:
            self.written.clear()
            await asyncio.wait_for(self.written.wait(), 5)

    def answer(self, text: str) -> None:
        self.unanswered.popleft().set_result(answer_from_text(text))


def session(wire: Wire, command_timeout: float | None = 5.0) -> AGISession:
    return AGISession(ENV, wire, transport="test", command_timeout=command_timeout)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_what_the_session_is() -> None:
    agi = session(Wire())
    assert agi.channel == "Local/721@test-0000001a;2" and agi.uniqueid == "fagi-basic-2"
    assert agi.script == "lab" and agi.query == {"mode": "test", "n": "1"}
    assert agi.args == ["first arg", "second arg"]
    assert not agi.hung_up and not agi.closed and "open" in repr(agi)


async def test_concurrent_commands_are_written_one_at_a_time_in_call_order() -> None:
    wire = Wire()
    agi = session(wire)
    names = ["A", "B", "C", "D", "E"]
    tasks = [asyncio.ensure_future(agi.get_variable(name)) for name in names]
    for index, name in enumerate(names):
        await wire.line(index + 1)
        await settle()
        assert wire.lines == [f"GET VARIABLE {n}" for n in names[: index + 1]]
        wire.answer(f"200 result=1 (value of {name})")
    assert await asyncio.gather(*tasks) == [f"value of {n}" for n in names]


# Every helper with the keyword that bounds its wait (get_data & co. use ``timeout`` for
# Asterisk's own digit timeout, as the dialplan does, and ``wait`` for the whole command).
HELPERS: list[tuple[str, Callable[[AGISession], Awaitable[object]]]] = [
    ("ANSWER", lambda a: a.answer(timeout=0.01)),
    ("HANGUP", lambda a: a.hangup(timeout=0.01)),
    ("CHANNEL STATUS", lambda a: a.channel_status(timeout=0.01)),
    ('STREAM FILE hello-world "#"', lambda a: a.stream_file("hello-world", "#", timeout=0.01)),
    ('CONTROL STREAM FILE x ""', lambda a: a.control_stream_file("x", timeout=0.01)),
    ("GET DATA beep 3000 2", lambda a: a.get_data("beep", 3, 2, wait=0.01)),
    ('GET OPTION beep "12" 2000', lambda a: a.get_option("beep", "12", 2, wait=0.01)),
    ("WAIT FOR DIGIT 5000", lambda a: a.wait_for_digit(5, wait=0.01)),
    ('RECORD FILE msg wav "#" 3000', lambda a: a.record_file("msg", timeout=3, wait=0.01)),
    ('SAY DIGITS 123 ""', lambda a: a.say_digits("123", timeout=0.01)),
    ('SAY NUMBER 42 ""', lambda a: a.say_number(42, timeout=0.01)),
    ('SAY ALPHA abc ""', lambda a: a.say_alpha("abc", timeout=0.01)),
    ('SAY PHONETIC abc ""', lambda a: a.say_phonetic("abc", timeout=0.01)),
    ('SAY DATE 0 ""', lambda a: a.say_date(0, timeout=0.01)),
    ('SAY TIME 0 ""', lambda a: a.say_time(0, timeout=0.01)),
    ('SAY DATETIME 0 ""', lambda a: a.say_datetime(0, timeout=0.01)),
    ("SET VARIABLE X 1", lambda a: a.set_variable("X", "1", timeout=0.01)),
    ("GET VARIABLE X", lambda a: a.get_variable("X", timeout=0.01)),
    ('GET FULL VARIABLE "${X}"', lambda a: a.get_full_variable("${X}", timeout=0.01)),
    ("EXEC Playback beep", lambda a: a.exec("Playback", "beep", timeout=0.01)),
    ("SET CONTEXT test", lambda a: a.set_context("test", timeout=0.01)),
    ("SET EXTENSION 721", lambda a: a.set_extension("721", timeout=0.01)),
    ("SET PRIORITY 3", lambda a: a.set_priority(3, timeout=0.01)),
    ("SET CALLERID 1000", lambda a: a.set_callerid("1000", timeout=0.01)),
    ("SET MUSIC on", lambda a: a.set_music(True, timeout=0.01)),
    ("SET AUTOHANGUP 10", lambda a: a.set_autohangup(10, timeout=0.01)),
    ("DATABASE GET f k", lambda a: a.database_get("f", "k", timeout=0.01)),
    ("DATABASE PUT f k v", lambda a: a.database_put("f", "k", "v", timeout=0.01)),
    ("DATABASE DEL f k", lambda a: a.database_del("f", "k", timeout=0.01)),
    ("DATABASE DELTREE f", lambda a: a.database_deltree("f", timeout=0.01)),
    ('VERBOSE "hi" 1', lambda a: a.verbose("hi", timeout=0.01)),
    ("NOOP", lambda a: a.noop(timeout=0.01)),
    ("SAY NUMBER 7", lambda a: a.command("SAY NUMBER 7", timeout=0.01)),
]


@pytest.mark.parametrize(("line", "call"), HELPERS, ids=[h[0] for h in HELPERS])
async def test_every_command_times_out_and_the_late_answer_is_not_the_next_ones(
    line: str, call: Callable[[AGISession], Awaitable[object]]
) -> None:
    wire = Wire()
    agi = session(wire)
    with pytest.raises(AGITimeoutError) as timed_out:
        await call(agi)
    assert wire.lines == [line] and timed_out.value.command == line
    after = asyncio.ensure_future(agi.get_variable("NEXT", timeout=5))
    await settle()
    assert wire.lines == [line], "the next command waits for the late answer"
    wire.answer("200 result=0")  # the late answer: read and dropped
    await wire.line(2)
    wire.answer("200 result=1 (next)")
    assert await after == "next"


async def test_session_default_timeout_applies_and_none_waits() -> None:
    wire = Wire()
    agi = session(wire, command_timeout=0.01)
    with pytest.raises(AGITimeoutError):
        await agi.noop()
    wire.answer("200 result=0")
    waiting = asyncio.ensure_future(agi.wait_for_digit(None))  # Asterisk waits: so do we
    await wire.line(2)
    await asyncio.sleep(0.03)
    assert not waiting.done()
    wire.answer("200 result=53")
    assert await waiting == "5"
    with pytest.raises(ValueError, match="timeout"):
        await agi.noop(timeout=-1)


async def test_cancellation_at_each_await_leaves_the_session_usable() -> None:
    wire = Wire()
    agi = session(wire)
    # 1. while queued behind a running command: it is never written
    first = asyncio.ensure_future(agi.noop())
    queued = asyncio.ensure_future(agi.get_variable("GONE"))
    await wire.line(1)
    queued.cancel()
    await settle()
    wire.answer("200 result=0")
    await first
    # 2. while the transport writes it (a slow send): the write completes, its answer is dropped
    wire.gate = asyncio.Event()
    writing = asyncio.ensure_future(agi.get_variable("SLOW"))
    await settle()
    writing.cancel()
    await settle()
    wire.gate.set()
    wire.gate = None
    # 3. while its answer is awaited
    waiting = asyncio.ensure_future(agi.get_variable("WAITED"))
    await wire.line(2)
    assert wire.lines == ["NOOP", "GET VARIABLE SLOW"]
    waiting.cancel()
    after = asyncio.ensure_future(agi.get_variable("AFTER"))
    wire.answer("200 result=1 (slow)")  # SLOW's late answer
    await wire.line(3)
    assert wire.lines[2] == "GET VARIABLE AFTER", "WAITED was cancelled before it was written"
    wire.answer("200 result=1 (after)")
    assert await after == "after"
    for task in (queued, writing, waiting):
        assert task.cancelled()


async def test_error_answers() -> None:
    wire = Wire()
    agi = session(wire)
    answers = [
        ("FOOBAR", "510 Invalid or unknown command", AGIInvalidCommandError),
        ("STREAM FILE", USAGE, AGIUsageError),
        ("ANSWER", "511 Command Not Permitted on a dead channel or intercept routine", None),
    ]
    for index, (line, text, kind) in enumerate(answers):
        task = asyncio.ensure_future(agi.command(line))
        await wire.line(index + 1)
        wire.answer(text)
        with pytest.raises(kind or AGIHangupError) as raised:
            await task
        assert raised.value.answer == text and raised.value.command == line
    assert raised.value.answer is not None
    assert not agi.closed, "511 is an answer: the session goes on (NOOP works on a dead channel)"


async def test_hangup_line_then_minus_one_is_a_hangup() -> None:
    wire = Wire()
    agi = session(wire)
    waiting = asyncio.ensure_future(agi.wait_for_digit(10))
    await wire.line(1)
    wire.answer("200 result=-1")  # fastagi_hangup: -1, then the HANGUP line
    with pytest.raises(AGIHangupError):
        await waiting
    agi._on_hangup()
    assert agi.hung_up and await agi.wait_hangup(0)
    raw = asyncio.ensure_future(agi.command("EXEC Playback beep"))
    await wire.line(2)
    wire.answer("200 result=-1")
    with pytest.raises(AGIHangupError):  # any -1 once the channel hung up
        await raw
    noop = asyncio.ensure_future(agi.noop())  # dead-channel commands still work
    await wire.line(3)
    wire.answer("200 result=0")
    await noop
    assert "hung up" in repr(agi)


async def test_wait_hangup_times_out_without_a_hangup() -> None:
    agi = session(Wire())
    assert await agi.wait_hangup(0.01) is False


async def test_transport_end_fails_running_and_queued_commands() -> None:
    wire = Wire()
    agi = session(wire)
    running = asyncio.ensure_future(agi.noop())
    queued = [asyncio.ensure_future(agi.noop()) for _ in range(3)]
    await wire.line(1)
    error = AGIHangupError("Asterisk closed the FastAGI connection")
    agi._end(error)
    wire.unanswered.popleft().set_exception(AGIHangupError(str(error)))
    for task in (running, *queued):
        with pytest.raises(AGIHangupError):
            await task
    assert agi.closed and agi.hung_up
    with pytest.raises(AGIHangupError, match="closed the FastAGI"):
        await agi.noop()
    assert wire.lines == ["NOOP"]


async def test_close_fails_waiting_commands_once_and_is_idempotent() -> None:
    wire = Wire()
    agi = session(wire)
    running = asyncio.ensure_future(agi.noop())
    queued = asyncio.ensure_future(agi.noop())
    await wire.line(1)
    async with agi:
        pass
    await agi.close()
    assert wire.finished == 1 and agi.closed
    for task in (queued, running):  # at once, not at their timeout
        with pytest.raises(AGIError, match="closed"):
            await asyncio.wait_for(task, 1)
    with pytest.raises(AGIError, match="closed"):
        await agi.noop()


async def test_bad_command_lines_are_refused_before_writing() -> None:
    wire = Wire()
    agi = session(wire)
    for line in ("NOOP\nHANGUP", "NOOP\r", "NOOP\x00"):
        with pytest.raises(InvalidActionError):
            await agi.command(line)
    with pytest.raises(InvalidActionError):
        await agi.set_variable("X", "two\nlines")
    assert wire.lines == []
