"""Issue 11: AsyncAGI replayed from ``async_agi_full`` and ``async_agi_hangup`` (22 and 13).

A small AMI server plays Asterisk's side of each capture: each action the
client sends is matched to the recorded one (its name and, for ``AGI``, its
``Command``), and the recorded bytes that followed it are sent back with the
recorded ``ActionID`` and ``CommandId`` values replaced by the client's, so
the library's own CommandIDs are what correlates each ``AsyncAGIExec``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
from _fixtures import fixtures_dir

from ami_async import Client
from ami_async._transcript import read_transcript
from ami_async.agi import (
    AGIError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGISession,
    AGITimeoutError,
    AGIUsageError,
    AsyncAGI,
)

BOTH = pytest.mark.parametrize("version", ["asterisk-22", "asterisk-13"])
_ID_LINE = re.compile(rb"^(ActionID|CommandId): ([^\r\n]*)\r\n", re.MULTILINE)


def _headers(frame: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in frame.decode().split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            headers.setdefault(key.lower(), value)
    return headers


@dataclass
class _Step:
    action: dict[str, str]
    reply: bytes
    used: bool = False


@dataclass
class Replay:
    """Asterisk's side of ``<version>/<name>.ami`` for every connection made to it."""

    version: str
    name: str
    drop: tuple[str, ...] = ()  # recorded CommandIDs of actions the library is not to send
    hold: tuple[str, ...] = ()  # AGI commands whose reply is withheld (Asterisk stalls)
    strip: tuple[str, ...] = ()  # events taken out of the replies
    received: list[dict[str, str]] = field(default_factory=list)
    unexpected: list[dict[str, str]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    held: list[bytes] = field(default_factory=list)  # the withheld replies, ID-rewritten
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set at each action

    def steps(self) -> tuple[bytes, list[_Step]]:
        banner = b""
        steps: list[_Step] = []
        for direction, _, payload in read_transcript(
            (fixtures_dir() / self.version / f"{self.name}.ami").read_bytes()
        ):
            if direction == ">>>":
                steps.append(_Step(_headers(payload), b""))
            elif direction == "<<<" and steps:
                steps[-1].reply += payload
            elif direction == "<<<":
                banner += payload
        for step in steps:
            if step.action.get("commandid") in self.drop:
                step.used = True
            for name in self.strip:
                step.reply = re.sub(
                    rb"Event: " + name.encode() + rb"\r\n.*?\r\n\r\n", b"", step.reply, flags=re.S
                )
        return banner, steps

    def commands(self) -> list[str]:
        """The AGI command lines the client sent, in order."""
        return [a["command"] for a in self.received if a.get("action", "").lower() == "agi"]

    async def sent(self, command: str) -> None:
        """Wait until the client has sent the AGI ``command``."""
        while command not in self.commands():
            self.changed.clear()
            await self.changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        banner, steps = self.steps()
        ids: dict[bytes, bytes] = {}
        writer.write(banner)

        def rewrite(match: re.Match[bytes]) -> bytes:
            return match.group(1) + b": " + ids.get(match.group(2), match.group(2)) + b"\r\n"

        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                action = _headers(await reader.readuntil(b"\r\n\r\n"))
                name = action.get("action", "").lower()
                if name == "logoff":
                    writer.write(
                        f"Response: Goodbye\r\nActionID: {action.get('actionid', '')}\r\n"
                        "Message: Thanks for all the fish.\r\n\r\n".encode()
                    )
                    continue
                self.received.append(action)
                self.changed.set()
                step = next(
                    (
                        s
                        for s in steps
                        if not s.used
                        and s.action.get("action", "").lower() == name
                        and s.action.get("command") == action.get("command")
                    ),
                    None,
                )
                if step is None:
                    self.unexpected.append(action)
                    writer.write(
                        f"Response: Error\r\nActionID: {action.get('actionid', '')}\r\n"
                        "Message: not in the capture\r\n\r\n".encode()
                    )
                    continue
                step.used = True
                for key in ("actionid", "commandid"):
                    if key in step.action and key in action:
                        ids[step.action[key].encode()] = action[key].encode()
                if action.get("command") in self.hold:
                    self.held.append(_ID_LINE.sub(rewrite, step.reply))
                    continue
                writer.write(_ID_LINE.sub(rewrite, step.reply))
                await writer.drain()

    def release(self) -> None:
        """Send the withheld replies (late, as a stalled Asterisk would)."""
        data, self.held = b"".join(self.held), []
        self.writers[-1].write(data)

    def cut(self) -> None:
        """The AMI link breaks (every connection is reset)."""
        for writer in self.writers:
            writer.transport.abort()

    @contextlib.asynccontextmanager
    async def client(self, **options: object) -> AsyncIterator[Client]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings: dict[str, object] = {
            "username": "admin",
            "secret": "amp111",
            "ping_interval": None,
            "timeout": 5,
            "action_timeout": 5,
            "reconnect_delay": 0.01,
            **options,
        }
        client = Client("127.0.0.1", port, **settings)  # type: ignore[arg-type]
        try:
            await client.connect()
            yield client
        finally:
            await client.close()
            server.close()
            self.cut()
            await server.wait_closed()


def recorded_env(version: str, name: str) -> dict[str, str]:
    """The ``agi_*`` block of the capture's AsyncAGIStart, decoded here independently."""
    data = (fixtures_dir() / version / f"{name}.bin").read_bytes().decode()
    encoded = re.search(r"Event: AsyncAGIStart\r\n.*?Env: ([^\r\n]*)", data, re.S)
    assert encoded is not None
    env = {}
    for line in unquote(encoded.group(1)).split("\n"):
        if line:
            key, _, value = line.partition(": ")
            env[key] = value
    return env


async def originate(client: Client, tag: str) -> None:
    """The capture's Originate of Local/720@test (its ;2 leg runs AGI(agi:async))."""
    await client.send_action(
        "Originate",
        Channel="Local/720@test",
        Application="Wait",
        Data="60",
        Async="true",
        ChannelId=f"{tag}-1",
        OtherChannelId=f"{tag}-2",
    )


async def next_session(sessions: AsyncAGI) -> AGISession:
    return await asyncio.wait_for(sessions.__anext__(), 5)


async def full_script(agi: AGISession, version: str) -> None:
    """The commands of ``async_agi_full`` with what each answer means."""
    env = recorded_env(version, "async_agi_full")
    assert dict(agi.env) == env
    assert agi.env["agi_request"] == "async" and agi.env["agi_accountcode"] == ""
    assert agi.channel == env["agi_channel"] and agi.channel.endswith(";2")
    assert agi.uniqueid == "asyncfull-2" and agi.script == "" and agi.args == []
    assert agi.transport == "async"
    await agi.answer()
    assert await agi.get_variable("CHANNEL") == agi.channel
    await agi.set_variable("FOO", "bar baz")
    assert await agi.get_variable("FOO") == "bar baz"
    await agi.set_variable("LABENC", "50% + a&b=c/d? é")
    assert await agi.get_variable("LABENC") == "50% + a&b=c/d? é"
    played = await agi.stream_file("hello-world")
    assert (played.result, played.data, dict(played.extra)) == (0, None, {"endpos": "11360"})
    assert await agi.get_data("beep", 0.5, 2) == ""
    assert (await agi.exec("Playback", "beep")).result == 0
    with pytest.raises(AGIInvalidCommandError) as invalid:
        await agi.command("FOOBAR")
    assert invalid.value.answer == "510 Invalid or unknown command"
    with pytest.raises(AGIUsageError) as usage:
        await agi.command("STREAM FILE")
    assert usage.value.answer is not None
    lines = usage.value.answer.split("\n")
    assert lines[0] == "520-Invalid command syntax.  Proper usage follows:"
    assert lines[-1] == "520 End of proper usage." and len(lines) > 2


FULL_COMMANDS = [
    "ANSWER",
    "GET VARIABLE CHANNEL",
    'SET VARIABLE FOO "bar baz"',
    "GET VARIABLE FOO",
    'SET VARIABLE LABENC "50% + a&b=c/d? é"',
    "GET VARIABLE LABENC",
    'STREAM FILE hello-world ""',
    "GET DATA beep 500 2",
    "EXEC Playback beep",
    "FOOBAR",
    "STREAM FILE",
    "NOOP",  # sent by the test without a CommandID, as in the capture
    "ASYNCAGI BREAK",
]


@BOTH
async def test_full_session_iterated(version: str) -> None:
    replay = Replay(version, "async_agi_full")
    async with replay.client() as client:
        async with AsyncAGI(client) as sessions:
            await originate(client, "asyncfull")
            agi = await next_session(sessions)
            async with agi:
                await full_script(agi, version)
                # Someone else's AGI action without a CommandID: its AsyncAGIExec has no
                # CommandId and is nobody's answer.
                await client.send_action("AGI", Channel=agi.channel, Command="NOOP")
            assert agi.closed
            with pytest.raises(AGIError):
                await agi.noop()
        await client.send_action("CoreShowChannels")
        assert replay.commands() == FULL_COMMANDS
        ids = [a.get("commandid") for a in replay.received if a.get("action") == "AGI"]
        ids.remove(None)  # the test's NOOP
        assert len(set(ids)) == len(ids) and all(ids), ids
        assert replay.unexpected == []


@BOTH
async def test_full_session_by_handler_ends_with_break(version: str) -> None:
    replay = Replay(version, "async_agi_full")
    done: list[str] = []

    async def handler(agi: AGISession) -> None:
        await full_script(agi, version)
        done.append(agi.channel)

    async with replay.client() as client:
        async with AsyncAGI(client, handler):
            await originate(client, "asyncfull")
            await asyncio.wait_for(replay.sent("ASYNCAGI BREAK"), 5)
        assert done and done[0].startswith("Local/720@test")
        expected = [c for c in FULL_COMMANDS if c != "NOOP"]
        assert replay.commands() == expected
        assert replay.unexpected == []


@BOTH
async def test_hangup_during_a_command(version: str) -> None:
    replay = Replay(version, "async_agi_hangup", drop=("queued-2", "late-3"))
    async with replay.client() as client:
        async with AsyncAGI(client) as sessions:
            await originate(client, "asynchup")
            agi = await next_session(sessions)
            waiting = asyncio.ensure_future(agi.wait_for_digit(10))
            queued = asyncio.ensure_future(agi.noop())
            await replay.sent("WAIT FOR DIGIT 10000")
            await client.send_action("Hangup", Channel=agi.channel)
            with pytest.raises(AGIHangupError):
                await asyncio.wait_for(waiting, 5)
            with pytest.raises(AGIHangupError):  # never sent: AsyncAGIEnd came first
                await asyncio.wait_for(queued, 5)
            assert agi.hung_up and agi.closed
            assert await agi.wait_hangup(0) is True
            with pytest.raises(AGIHangupError):
                await agi.noop()
        await client.send_action("CoreShowChannels")
    assert replay.commands() == ["WAIT FOR DIGIT 10000"]
    assert replay.unexpected == []


@BOTH
async def test_command_for_a_gone_channel_is_a_hangup(version: str) -> None:
    # The AsyncAGIEnd is taken out: the session learns of the hangup from the
    # -1 answer and from the "does not exist" error of the next AGI action.
    replay = Replay(version, "async_agi_hangup", drop=("queued-2",), strip=("AsyncAGIEnd",))
    async with replay.client() as client, AsyncAGI(client) as sessions:
        await originate(client, "asynchup")
        agi = await next_session(sessions)
        waiting = asyncio.ensure_future(agi.command("WAIT FOR DIGIT 10000"))
        await replay.sent("WAIT FOR DIGIT 10000")
        await client.send_action("Hangup", Channel=agi.channel)
        assert (await asyncio.wait_for(waiting, 5)).result == -1
        with pytest.raises(AGIHangupError, match="does not exist"):
            await agi.noop()
    assert replay.commands() == ["WAIT FOR DIGIT 10000", "NOOP"]
    assert replay.unexpected == []


async def test_unanswered_command_times_out_and_the_session_goes_on() -> None:
    replay = Replay("asterisk-22", "async_agi_full", hold=("ANSWER",))
    async with replay.client() as client, AsyncAGI(client) as sessions:
        await originate(client, "asyncfull")
        agi = await next_session(sessions)
        with pytest.raises(AGITimeoutError):
            await agi.answer(timeout=0.05)
        assert not agi.closed
        # The next command waits for the late answer, which is dropped, not taken as its own.
        variable = asyncio.ensure_future(agi.get_variable("CHANNEL", timeout=5))
        await asyncio.sleep(0.02)
        assert replay.commands() == ["ANSWER"]
        replay.release()
        assert await variable == agi.channel
        assert replay.commands() == ["ANSWER", "GET VARIABLE CHANNEL"]


@pytest.mark.parametrize("how", ["link lost", "client closed"])
async def test_the_end_of_the_ami_link_ends_every_session_at_once(how: str) -> None:
    replay = Replay("asterisk-22", "async_agi_full", hold=("ANSWER",))
    async with replay.client() as client:
        sessions = AsyncAGI(client)
        async with sessions:
            await originate(client, "asyncfull")
            agi = await next_session(sessions)
            running = asyncio.ensure_future(agi.answer())
            queued = asyncio.ensure_future(agi.noop())
            await replay.sent("ANSWER")
            if how == "link lost":
                replay.cut()
            else:
                await client.close()
            with pytest.raises(AGIHangupError):
                await asyncio.wait_for(running, 5)
            with pytest.raises(AGIHangupError):
                await asyncio.wait_for(queued, 5)
            assert agi.closed
            with pytest.raises(AGIHangupError):
                await agi.noop()
            if how == "link lost":
                # After the reconnect the channel gets ASYNCAGI BREAK: its call goes on.
                await asyncio.wait_for(replay.sent("ASYNCAGI BREAK"), 5)
                assert sessions.sessions == []
            else:
                with pytest.raises(StopAsyncIteration):
                    await next_session(sessions)
        assert replay.unexpected == []


async def test_close_removes_its_hooks_and_breaks_open_sessions() -> None:
    replay = Replay("asterisk-22", "async_agi_full")
    async with replay.client() as client:
        connect_hooks = list(client._connect_hooks)
        disconnect_hooks = list(client._disconnect_hooks)
        sessions = AsyncAGI(client)
        async with sessions:
            assert len(client._connect_hooks) == len(connect_hooks) + 1
            await originate(client, "asyncfull")
            agi = await next_session(sessions)
            await agi.answer()
        # the session nobody closed got ASYNCAGI BREAK: its call goes on in the dialplan
        assert replay.commands() == ["ANSWER", "ASYNCAGI BREAK"]
        assert agi.closed
        assert client._connect_hooks == connect_hooks
        assert client._disconnect_hooks == disconnect_hooks
        with pytest.raises(StopAsyncIteration):
            await next_session(sessions)
        await sessions.close()  # idempotent
        never_started = AsyncAGI(client)
        await never_started.close()
        assert client._connect_hooks == connect_hooks


async def test_handler_errors_are_logged_and_the_channel_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    replay = Replay("asterisk-22", "async_agi_full")

    async def broken(agi: AGISession) -> None:
        await agi.answer()
        raise RuntimeError("a bug in the IVR")

    async with replay.client() as client, AsyncAGI(client, broken):
        await originate(client, "asyncfull")
        await asyncio.wait_for(replay.sent("ASYNCAGI BREAK"), 5)
    assert "a bug in the IVR" in caplog.text
    assert replay.commands() == ["ANSWER", "ASYNCAGI BREAK"]


async def test_cancelled_commands_leave_the_session_usable() -> None:
    replay = Replay("asterisk-22", "async_agi_full")
    async with replay.client() as client, AsyncAGI(client) as sessions:
        await originate(client, "asyncfull")
        agi = await next_session(sessions)
        for _ in range(3):  # cancelled at once, before or while each is sent
            task = asyncio.ensure_future(agi.answer())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await agi.get_variable("CHANNEL", timeout=5) == agi.channel


async def test_close_cancels_stuck_handlers_and_is_bounded() -> None:
    replay = Replay("asterisk-22", "async_agi_full")
    release, entered = asyncio.Event(), asyncio.Event()
    cancelled: list[str] = []

    async def stubborn(agi: AGISession) -> None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(agi.channel)
            await release.wait()  # swallows the cancellation: close() does not wait for it

    async with replay.client() as client:
        sessions = AsyncAGI(client, stubborn, action_timeout=0.2)
        async with sessions:
            await originate(client, "asyncfull")
            await asyncio.wait_for(entered.wait(), 5)
            await asyncio.wait_for(sessions.close(timeout=0.05), 5)
        assert cancelled and replay.commands() == ["ASYNCAGI BREAK"]
        release.set()
        await asyncio.sleep(0)
