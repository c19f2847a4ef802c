"""The simulated PBX's AGI: ``AGI(agi:async)`` over the fake AMI and ``AGI(agi://...)`` dialling
a FastAGI server, so that an IVR can be tested without a PBX.

What it plays comes from the recordings (``shared/fixtures/asterisk-22``):
``async_agi_full`` / ``async_agi_hangup`` for AsyncAGI (``AsyncAGIStart`` with
the URL-encoded ``Env``, the ``AGI`` action answered ``Added AGI command to
queue``, ``AGIExecStart`` / ``AGIExecEnd`` / ``AsyncAGIExec`` with the
URL-encoded ``Result`` and the action's ``CommandId``, ``AsyncAGIEnd``), and
``fastagi_*`` for FastAGI (the ``agi_*`` block, answers such as ``200
result=35 endpos=4800``, ``HANGUP`` after the running command's answer, when
idle, and again when the script ends). The digits the caller presses are
scripted with `SimAGI.press` or `AGIRun.press`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import quote as _url_quote
from urllib.parse import urlsplit

from ..agi._commands import split_command
from ._pbx_model import UP, SimChannel, separate_args
from ._wire import _header

if TYPE_CHECKING:
    from ..message import Message
    from ._actions import _ActionsBase
    from ._pbx import SimPBX
    from ._session import FakeSession

__all__ = ["AGIRun", "SimAGI", "agi_action", "app_agi"]

logger = logging.getLogger("ami_async.testing")

#: Where the lab's extensions 721-723 dial (``AGI(agi://127.0.0.1:4573/lab...)``).
LAB_FASTAGI: Final = ("127.0.0.1", 4573)
_SAMPLE_RATE: Final = 8000
_DEAD: Final = "511 Command Not Permitted on a dead channel or intercept routine"
_INVALID: Final = "510 Invalid or unknown command"
# res_agi.c: the commands that run on a dead channel (the others answer 511).
_DEAD_OK: Final = frozenset(
    {
        "ASYNCAGI BREAK",
        "CHANNEL STATUS",
        "DATABASE DEL",
        "DATABASE DELTREE",
        "DATABASE GET",
        "DATABASE PUT",
        "EXEC",
        "GET FULL VARIABLE",
        "GET VARIABLE",
        "HANGUP",
        "NOOP",
        "SET VARIABLE",
        "VERBOSE",
    }
)


class _Usage(Exception):
    """The command's arguments are wrong: Asterisk answers its 520 usage block."""


def _usage(command: str) -> str:
    return (
        "520-Invalid command syntax.  Proper usage follows:\n"
        f"Usage: {command} (see 'agi show commands' on a real Asterisk)\n"
        "520 End of proper usage."
    )


def _url_encode(text: str) -> str:
    """AsyncAGI's encoding of ``Env`` and ``Result`` (``%3A%20``, ``%0A``; ``(`` ``)`` kept)."""
    return _url_quote(text, safe="()")


@dataclass
class AGIRun:
    """One run of the ``AGI`` application on a simulated channel.

    ``transport`` is ``"async"`` or ``"fastagi"``; ``commands`` lists each
    command line received with the answer it got; ``status`` is the
    ``AGISTATUS`` once the run ended (``SUCCESS``, ``FAILURE``, ``HANGUP``).
    """

    channel: str
    exten: str
    transport: str
    env: dict[str, str]
    commands: list[tuple[str, str]] = field(default_factory=list)
    status: str | None = None
    exec_id: str = field(default="", repr=False)  # AGIExecStart's CommandId of the running one
    goto: tuple[str, str, int] | None = field(default=None, repr=False)  # from SET CONTEXT...
    digits: collections.deque[str] = field(default_factory=collections.deque)
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    hungup: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def press(self, digits: str) -> None:
        """The caller presses ``digits`` (one at a time, as the commands ask for input)."""
        self.digits.extend(digits)

    async def wait(self, timeout: float = 5.0) -> str:
        """Wait until the run ended (`TimeoutError` after ``timeout`` s); its ``status``."""
        await asyncio.wait_for(self.ended.wait(), timeout)
        assert self.status is not None
        return self.status

    @property
    def lines(self) -> list[str]:
        """The command lines received, in order."""
        return [line for line, _ in self.commands]


class SimAGI:
    """The AGI of a `SimPBX` (``fake.pbx.agi``).

    ``fastagi_host`` / ``fastagi_port`` are where ``AGI(agi://127.0.0.1:4573/...)``
    connects (the lab's extensions 721-723; default the lab's own address,
    so a test sets ``fastagi_port`` to its server's port); any other address
    in an ``agi://`` URL is dialled as written. `press` scripts the caller's
    digits, `runs` records every AGI run.
    """

    def __init__(self, pbx: SimPBX) -> None:
        self._pbx = pbx
        self.fastagi_host, self.fastagi_port = LAB_FASTAGI
        self.connect_timeout = 5.0
        """Seconds to connect to the FastAGI server (then ``AGISTATUS=FAILURE``)."""
        self.version = "22.11.0-rc1"
        """``agi_version`` in the environment."""
        self.sounds: dict[str, float] = {"hello-world": 1.42, "beep": 0.44}
        """Seconds each sound file plays (others: `default_sound_seconds`)."""
        self.default_sound_seconds = 1.0
        self.missing_files: set[str] = {"nonexistent-file"}
        """Files that do not exist (``STREAM FILE`` answers ``result=-1 endpos=0``)."""
        self.press_delay = 0.5
        """Simulated seconds from a prompt to the caller's scripted digit."""
        self.runs: list[AGIRun] = []
        """Every AGI run, oldest first."""
        self._digits: dict[str | None, collections.deque[str]] = {}
        self._async: dict[str, _AsyncState] = {}
        self._exec_ids = random.Random()
        self._threads = itertools.count(140287111038656)
        self._waiters: list[asyncio.Future[AGIRun]] = []
        self._handed = 0

    # -- scripting -------------------------------------------------------------------------

    def press(self, digits: str, *, exten: str | None = None) -> None:
        """The caller of the next AGI runs (on extension ``exten``, or any) presses ``digits``.

        A digit is used by the first command that reads one and accepts it:
        ``STREAM FILE`` / ``GET OPTION`` / ``CONTROL STREAM FILE`` and the ``SAY``
        commands when it is one of their escape digits (playback stops,
        ``result`` is its ASCII code), ``WAIT FOR DIGIT`` and ``GET DATA``
        always (``GET DATA`` reads up to its maximum, a ``#`` ends it).
        Unscripted prompts play to the end and reads time out.
        """
        self._digits.setdefault(exten, collections.deque()).extend(digits)

    async def next_run(self, timeout: float = 5.0) -> AGIRun:
        """The oldest run `next_run` has not returned yet, once it started
        (`TimeoutError` after ``timeout`` s)."""
        if self._handed >= len(self.runs):
            waiter: asyncio.Future[AGIRun] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
        self._handed += 1
        return self.runs[self._handed - 1]

    # -- the AGI application ------------------------------------------------------------

    async def app(self, channel: SimChannel, data: str) -> int:
        """``AGI(url,arg1,arg2,...)`` on ``channel``: the dialplan application."""
        args = separate_args(data)
        if not args or not args[0]:
            return -1
        url, extra = args[0], args[1:]
        transport = "async" if url == "agi:async" else "fastagi"
        if transport == "fastagi" and not url.startswith("agi://"):
            logger.warning("simulated AGI: only agi:async and agi:// are simulated: %r", url)
            self._pbx.set_variable(channel, "AGISTATUS", "NOTFOUND")
            return 0
        run = AGIRun(channel.name, channel.exten, transport, self._env(channel, url, extra))
        self.runs.append(run)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(run)

        def hung_up() -> None:
            run.hungup.set()
            state = self._async.get(channel.name)
            if state is not None:
                state.hung_up()

        channel._cleanups.append(hung_up)
        body = (
            self._async_run(channel, run) if transport == "async" else self._fast_run(channel, run)
        )
        # The run outlives a hangup (the script may go on with dead-channel commands):
        # it is the PBX's task, not the channel's, which a hangup cancels.
        task = self._pbx._spawn(body)
        await asyncio.shield(task)
        with contextlib.suppress(ValueError):
            channel._cleanups.remove(hung_up)
        if channel.alive and run.status is not None:
            self._pbx.set_variable(channel, "AGISTATUS", run.status)
        if channel.alive and run.goto is not None and channel._goto is None:
            channel._goto = run.goto
        return -1 if run.status == "HANGUP" else 0

    def _env(self, channel: SimChannel, url: str, args: list[str]) -> dict[str, str]:
        env: dict[str, str] = {}
        if url != "agi:async":
            parts = urlsplit(url)
            script = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
            env["agi_network"] = "yes"
            env["agi_network_script"] = script
        env.update(
            {
                "agi_request": "async" if url == "agi:async" else url,
                "agi_channel": channel.name,
                "agi_language": channel.language,
                "agi_type": channel.name.partition("/")[0],
                "agi_uniqueid": channel.uniqueid,
                "agi_version": self.version,
                "agi_callerid": channel.caller_num or "unknown",
                "agi_calleridname": channel.caller_name or "unknown",
                "agi_callingpres": "0" if channel.caller_num else "67",
                "agi_callingani2": "0",
                "agi_callington": "0",
                "agi_callingtns": "0",
                "agi_dnid": "unknown",
                "agi_rdnis": "unknown",
                "agi_context": channel.context,
                "agi_extension": channel.exten,
                "agi_priority": str(channel.priority),
                "agi_enhanced": "0.0",
                "agi_accountcode": channel.account_code,
                "agi_threadid": str(next(self._threads)),
            }
        )
        for number, arg in enumerate(args, 1):
            env[f"agi_arg_{number}"] = arg
        return env

    # -- FastAGI: the simulated Asterisk is the TCP client --------------------------------

    async def _fast_run(self, channel: SimChannel, run: AGIRun) -> None:
        parts = urlsplit(run.env["agi_request"])
        host, port = parts.hostname or "127.0.0.1", parts.port or 4573
        if (host, port) == LAB_FASTAGI:
            host, port = self.fastagi_host, self.fastagi_port
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.connect_timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            logger.warning("simulated AGI: cannot reach FastAGI %s:%s: %s", host, port, exc)
            self._finish(run, "FAILURE")
            return
        hangup_sent = False
        try:
            block = "".join(f"{key}: {value}\n" for key, value in run.env.items()) + "\n"
            writer.write(block.encode())
            await writer.drain()
            while True:
                line = await self._next_line(reader, run)
                if line is None:  # the channel hung up while the script was idle
                    if not hangup_sent:
                        hangup_sent = True
                        writer.write(b"HANGUP\n")
                        await writer.drain()
                    line = await self._next_line(reader, None)
                if not line:
                    break  # the script ended
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                answer = await self._execute(channel, run, text)
                writer.write(answer.encode() + b"\n")
                if run.hungup.is_set() and not hangup_sent:
                    hangup_sent = True
                    writer.write(b"HANGUP\n")
                await writer.drain()
            # The script ended: Asterisk says HANGUP once more and closes (fastagi_continue).
            writer.write(b"HANGUP\n")
            with contextlib.suppress(OSError):
                await writer.drain()
            self._finish(run, "HANGUP" if run.hungup.is_set() else "SUCCESS")
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:  # ValueError: a line
            # over the StreamReader's limit (Asterisk's own buffer is 2 KiB)
            logger.info("simulated AGI: the FastAGI connection of %s ended: %s", run.channel, exc)
            self._finish(run, "HANGUP" if run.hungup.is_set() else "FAILURE")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    @staticmethod
    async def _next_line(reader: asyncio.StreamReader, run: AGIRun | None) -> bytes | None:
        """The script's next line (``b""`` at its end); `None` if the channel hangs up first."""
        reading = asyncio.ensure_future(reader.readline())
        if run is None or run.hungup.is_set():
            return await reading
        hangup = asyncio.ensure_future(run.hungup.wait())
        try:
            await asyncio.wait((reading, hangup), return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()
        if reading.done():
            return reading.result()
        reading.cancel()  # nothing read yet: StreamReader keeps the bytes for the next read
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        return None

    # -- AsyncAGI: commands from the AGI action --------------------------------------------

    async def _async_run(self, channel: SimChannel, run: AGIRun) -> None:
        state = _AsyncState(self, channel, run)
        self._async[channel.name] = state
        env = "".join(f"{key}: {value}\n" for key, value in run.env.items()) + "\n"
        self._pbx._channel_event(
            "AsyncAGIStart", channel, ("Env", _url_encode(env)), privilege="agi,all"
        )
        try:
            await state.serve()
        finally:
            self._async.pop(channel.name, None)
        self._finish(run, "HANGUP" if run.hungup.is_set() else "SUCCESS")

    def queue(self, channel_name: str, command: str, command_id: str | None) -> str | None:
        """The ``AGI`` action: queue ``command``; the error text when it cannot be."""
        if self._pbx.find_channel(channel_name) is None:
            return f"Channel {channel_name} does not exist."
        state = self._async.get(channel_name)
        if state is None or state.done:
            return "Failed to add AGI command to queue"
        state.commands.put_nowait((command, command_id))
        return None

    def _exec_event(self, name: str, channel: SimChannel, *extra: tuple[str, str]) -> None:
        self._pbx._channel_event(name, channel, *extra, privilege="agi,all")

    def _finish(self, run: AGIRun, status: str) -> None:
        run.status = status
        run.ended.set()

    # -- the commands ----------------------------------------------------------------------

    async def _execute(self, channel: SimChannel, run: AGIRun, line: str) -> str:
        """Run one command line; its whole answer (without the final ``\\n``)."""
        words = split_command(line)
        name, handler, args = _lookup(words)
        exec_id = run.exec_id = str(self._exec_ids.randrange(1, 2**31))
        self._exec_event("AGIExecStart", channel, ("CommandId", exec_id), ("Command", line))
        if handler is None:
            answer = _INVALID
        elif run.hungup.is_set() and name not in _DEAD_OK:
            answer = _DEAD
        else:
            try:
                answer = await handler(self, channel, run, args)
            except _Usage:
                answer = _usage(name)
        if not (run.transport == "async" and run.hungup.is_set()):
            code = answer[:3]
            result = {"200": "Success", "510": "Invalid or unknown command", "520": "Usage"}
            text = result.get(code, _DEAD[4:])
            if answer.startswith("200 result=-1"):
                text = "Failure"
            self._exec_event(
                "AGIExecEnd",
                channel,
                ("CommandId", exec_id),
                ("Command", line),
                ("ResultCode", code),
                ("Result", text),
            )
        run.commands.append((line, answer))
        return answer

    async def _pause(self, run: AGIRun, seconds: float | None) -> bool:
        """Let simulated time pass; `False` if the channel hung up meanwhile."""
        if run.hungup.is_set():
            return False
        scaled = None if seconds is None else max(0.0, seconds) * self._pbx.time_scale
        hangup = asyncio.ensure_future(run.hungup.wait())
        try:
            await asyncio.wait((hangup,), timeout=scaled)
        finally:
            hangup.cancel()
        return not run.hungup.is_set()

    def _digit(self, run: AGIRun, accept: str | None) -> str | None:
        """The caller's next scripted digit if ``accept`` (None: any) takes it (it is used)."""
        for queue in (run.digits, self._digits.get(run.exten), self._digits.get(None)):
            if queue:
                if accept is None or queue[0] in accept:
                    return queue.popleft()
                return None
        return None

    def _seconds(self, filename: str) -> float:
        return self.sounds.get(filename, self.default_sound_seconds)

    async def _play(self, run: AGIRun, filename: str, escape: str) -> str:
        """Play ``filename``: ``result=<digit> endpos=N``, ``result=0``, or ``result=-1``."""
        if filename in self.missing_files:
            return "200 result=-1 endpos=0"
        digit = self._digit(run, escape)
        seconds = (
            self._seconds(filename)
            if digit is None
            else min(self.press_delay, self._seconds(filename))
        )
        if not await self._pause(run, seconds):
            return "200 result=-1"
        endpos = int(seconds * _SAMPLE_RATE)
        return f"200 result={ord(digit) if digit else 0} endpos={endpos}"


Handler = Callable[[SimAGI, SimChannel, AGIRun, list[str]], Awaitable[str]]


class _AsyncState:
    """One channel in ``AGI(agi:async)``: its queue of commands from ``AGI`` actions."""

    def __init__(self, sim: SimAGI, channel: SimChannel, run: AGIRun) -> None:
        self.sim = sim
        self.channel = channel
        self.run = run
        self.commands: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
        self.running: tuple[str, str | None] | None = None
        self.done = False

    def _answered(self, answer: str, command_id: str | None) -> None:
        extra = [] if command_id is None else [("CommandId", command_id)]
        self.sim._exec_event(
            "AsyncAGIExec", self.channel, ("Result", _url_encode(answer + "\n")), *extra
        )

    def _end(self) -> None:
        if not self.done:
            self.done = True
            self.sim._exec_event("AsyncAGIEnd", self.channel)

    def hung_up(self) -> None:
        """At the hangup (before its Hangup events, as in async_agi_hangup): the running
        command is answered -1, the queued ones are dropped, then AsyncAGIEnd."""
        if self.done:
            return
        if self.running is not None:
            line, command_id = self.running
            self.sim._exec_event(
                "AGIExecEnd",
                self.channel,
                ("CommandId", self.run.exec_id),
                ("Command", line),
                ("ResultCode", "200"),
                ("Result", "Failure"),
            )
            self._answered("200 result=-1", command_id)
        self._end()

    async def serve(self) -> None:
        while not self.done:
            getting = asyncio.ensure_future(self.commands.get())
            hangup = asyncio.ensure_future(self.run.hungup.wait())
            try:
                await asyncio.wait((getting, hangup), return_when=asyncio.FIRST_COMPLETED)
            finally:
                hangup.cancel()
            if not getting.done():
                getting.cancel()
                break
            self.running = getting.result()
            line, command_id = self.running
            answer = await self.sim._execute(self.channel, self.run, line)
            self.running = None
            if self.done:
                break  # the hangup answered it
            self._answered(answer, command_id)
            if split_command(line.upper())[:2] == ["ASYNCAGI", "BREAK"]:
                break
        self._end()


# -- the command table -------------------------------------------------------------------


def _int(value: str, default: int | None = None) -> int:
    try:
        return int(value)
    except ValueError:
        if default is None:
            raise _Usage from None
        return default


async def _answer(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if channel.state != UP:
        sim._pbx._answer(channel)
    return "200 result=0"


async def _hangup(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    target = channel if not args else sim._pbx.find_channel(args[0])
    if target is None or not target.alive:
        return "200 result=-1"
    sim._pbx.hangup(target)
    return "200 result=1"


async def _channel_status(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    target = channel if not args else sim._pbx.find_channel(args[0])
    return "200 result=-1" if target is None else f"200 result={target.state}"


async def _stream_file(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if len(args) < 2:
        raise _Usage
    return await sim._play(run, args[0], args[1])


async def _get_option(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if len(args) < 2:
        raise _Usage
    played = await sim._play(run, args[0], args[1])
    if not played.startswith("200 result=0 "):
        return played
    seconds = _int(args[2], 5000) / 1000 if len(args) > 2 else 5.0
    digit = sim._digit(run, args[1])
    if not await sim._pause(run, sim.press_delay if digit else seconds):
        return "200 result=-1"
    return f"200 result={ord(digit) if digit else 0} endpos={played.rsplit('=', 1)[1]}"


async def _wait_for_digit(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    ms = _int(args[0])
    digit = sim._digit(run, None)
    if digit is not None:
        return (
            "200 result=-1"
            if not await sim._pause(run, sim.press_delay)
            else (f"200 result={ord(digit)}")
        )
    if not await sim._pause(run, None if ms < 0 else ms / 1000):
        return "200 result=-1"
    return "200 result=0"


async def _get_data(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    timeout = _int(args[1], 0) / 1000 if len(args) > 1 else 0.0
    timeout = timeout if timeout > 0 else 6.0  # Asterisk's default for a prompt
    most = _int(args[2], 1024) if len(args) > 2 else 1024
    digits = ""
    first = sim._digit(run, None)
    seconds = sim._seconds(args[0]) if first is None else sim.press_delay
    if not await sim._pause(run, seconds):
        return "200 result=-1"
    while first is not None and first != "#" and len(digits) < most:
        digits += first
        if len(digits) >= most:
            break
        first = sim._digit(run, None)
        if first is not None and not await sim._pause(run, sim.press_delay):
            return "200 result=-1"
    if first is None:
        if not await sim._pause(run, timeout):
            return "200 result=-1"
        return f"200 result={digits} (timeout)"
    return f"200 result={digits}"


async def _say(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if len(args) < 2:
        raise _Usage
    digit = sim._digit(run, args[1])
    if not await sim._pause(run, sim.press_delay if digit else 0.5 * max(1, len(args[0]))):
        return "200 result=-1"
    return f"200 result={ord(digit) if digit else 0}"


async def _record_file(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if len(args) < 4:
        raise _Usage
    digit = sim._digit(run, args[2])
    ms = _int(args[3])
    seconds = sim.press_delay if digit else (5.0 if ms < 0 else ms / 1000)
    if not await sim._pause(run, seconds):
        return "200 result=-1"
    endpos = int(seconds * _SAMPLE_RATE)
    if digit:
        return f"200 result={ord(digit)} (dtmf) endpos={endpos}"
    return f"200 result=0 (timeout) endpos={endpos}"


async def _set_variable(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if len(args) < 2:
        raise _Usage
    sim._pbx.set_variable(channel, args[0], args[1])
    return "200 result=1"


async def _get_variable(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    value = sim._pbx.get_variable(channel, args[0])
    return "200 result=0" if value is None else f"200 result=1 ({value})"


async def _get_full_variable(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    target = channel if len(args) < 2 else sim._pbx.find_channel(args[1])
    if target is None:
        return "200 result=0"
    return f"200 result=1 ({sim._pbx._substitute(target, args[0])})"


async def _exec(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    app = sim._pbx.applications.get(args[0].lower())
    if app is None or args[0].lower() == "agi":
        return "200 result=-2"
    data = " ".join(args[1:])
    result = await app(sim._pbx, channel, sim._pbx._substitute(channel, data))
    return f"200 result={int(result or 0)}"


def _set_location(part: int) -> Handler:
    """SET CONTEXT (0), SET EXTENSION (1), SET PRIORITY (2): where the dialplan goes on after
    the AGI (applied when it ends, so that EXEC'd applications still run meanwhile)."""

    async def handler(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
        if not args:
            raise _Usage
        context, exten, priority = run.goto or (
            channel.context,
            channel.exten,
            channel.priority + 1,
        )
        if part == 0:
            context = args[0]
        elif part == 1:
            exten = args[0]
        else:
            priority = _int(args[0])
        run.goto = (context, exten, priority)
        return "200 result=0"

    return handler


async def _set_callerid(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    name, _, number = args[0].partition("<")
    if number:
        channel.caller_num, channel.caller_name = number.rstrip(">").strip(), name.strip(' "')
    else:
        channel.caller_num = args[0]
    return "200 result=1"


async def _set_music(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args or args[0].lower() not in ("on", "off"):
        raise _Usage
    if args[0].lower() == "on":
        music_class = args[1] if len(args) > 1 else "default"
        sim._pbx._channel_event("MusicOnHoldStart", channel, ("Class", music_class))
    else:
        sim._pbx._channel_event("MusicOnHoldStop", channel)
    return "200 result=0"


async def _ok(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    return "200 result=0"


async def _verbose(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    if not args:
        raise _Usage
    return "200 result=1"


async def _database(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    db = sim._pbx.astdb
    what, rest = args[0], args[1:]
    if what == "GET" and len(rest) == 2:
        value = db.get(f"/{rest[0]}/{rest[1]}")
        return "200 result=0" if value is None else f"200 result=1 ({value})"
    if what == "PUT" and len(rest) == 3:
        db[f"/{rest[0]}/{rest[1]}"] = rest[2]
        return "200 result=1"
    if what == "DEL" and len(rest) == 2:
        db.pop(f"/{rest[0]}/{rest[1]}", None)
        return "200 result=1"  # a missing key too, as fastagi_basic shows
    if what == "DELTREE" and rest:
        prefix = "/" + "/".join(rest[:2])
        gone = [key for key in db if key == prefix or key.startswith(prefix + "/")]
        for key in gone:
            del db[key]
        return "200 result=1" if gone else "200 result=0"
    raise _Usage


async def _break(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
    return "200 result=0"


def _database_of(what: str) -> Handler:
    async def handler(sim: SimAGI, channel: SimChannel, run: AGIRun, args: list[str]) -> str:
        return await _database(sim, channel, run, [what, *args])

    return handler


_COMMANDS: Final[dict[tuple[str, ...], Handler]] = {
    ("ANSWER",): _answer,
    ("ASYNCAGI", "BREAK"): _break,
    ("CHANNEL", "STATUS"): _channel_status,
    ("CONTROL", "STREAM", "FILE"): _stream_file,
    ("DATABASE", "DEL"): _database_of("DEL"),
    ("DATABASE", "DELTREE"): _database_of("DELTREE"),
    ("DATABASE", "GET"): _database_of("GET"),
    ("DATABASE", "PUT"): _database_of("PUT"),
    ("EXEC",): _exec,
    ("GET", "DATA"): _get_data,
    ("GET", "FULL", "VARIABLE"): _get_full_variable,
    ("GET", "OPTION"): _get_option,
    ("GET", "VARIABLE"): _get_variable,
    ("HANGUP",): _hangup,
    ("NOOP",): _ok,
    ("RECORD", "FILE"): _record_file,
    ("SAY", "ALPHA"): _say,
    ("SAY", "DATE"): _say,
    ("SAY", "DATETIME"): _say,
    ("SAY", "DIGITS"): _say,
    ("SAY", "NUMBER"): _say,
    ("SAY", "PHONETIC"): _say,
    ("SAY", "TIME"): _say,
    ("SET", "AUTOHANGUP"): _ok,
    ("SET", "CALLERID"): _set_callerid,
    ("SET", "CONTEXT"): _set_location(0),
    ("SET", "EXTENSION"): _set_location(1),
    ("SET", "MUSIC"): _set_music,
    ("SET", "PRIORITY"): _set_location(2),
    ("SET", "VARIABLE"): _set_variable,
    ("STREAM", "FILE"): _stream_file,
    ("VERBOSE",): _verbose,
    ("WAIT", "FOR", "DIGIT"): _wait_for_digit,
}


def _lookup(words: list[str]) -> tuple[str, Handler | None, list[str]]:
    """The command's name, handler and arguments (the longest match of its first words)."""
    upper = [word.upper() for word in words[:3]]
    for size in (3, 2, 1):
        handler = _COMMANDS.get(tuple(upper[:size]))
        if handler is not None and len(upper) >= size:
            return " ".join(upper[:size]), handler, words[size:]
    return " ".join(upper), None, words[1:]


async def app_agi(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    """The ``AGI`` dialplan application of the simulated PBX."""
    return await pbx.agi.app(channel, data)


async def agi_action(actions: _ActionsBase, session: FakeSession, action: Message) -> None:
    """The ``AGI`` action (res_agi.c action_add_agi_cmd): queue a command for AsyncAGI."""
    name, command = _header(action, "Channel"), _header(action, "Command")
    if not name:
        await actions.error(session, action, "Channel not specified")
        return
    if not command:
        await actions.error(session, action, "Command not specified")
        return
    sim = actions.server._sim
    error = (
        f"Channel {name} does not exist."
        if sim is None
        else sim.agi.queue(name, command, _header(action, "CommandID") or None)
    )
    if error is not None:
        await actions.error(session, action, error)
        return
    await actions.ok(session, action, "Added AGI command to queue")
