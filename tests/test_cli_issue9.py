"""The CLI defects and frictions of issue 9 (items 18, 20 and 22), each as a test.

Subprocesses (`python -m ami_async`) where the process boundary is the point (signals,
pipes, a terminal); `main()` in this process otherwise.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest
from _cli import REPO, SECRET, TIMEOUT, Cli, cli, login, wait_line, wait_stderr

import ami_async
from ami_async.cli import main
from ami_async.testing import FakeAsterisk

__all__ = ["cli"]  # the fixture

#: Every line the CLI writes to stderr for an error: `ami-async <command>: error: ...`.
ERROR_LINE = re.compile(r"^ami-async [a-z-]+: error: \S")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith(("usage:", " "))]


# -- item 18: configuration files ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"secret = {SECRET}\n", 1),  # no section header at all
        (f"secret = {SECRET}\n[ami]\nusername = admin\n", 1),  # a key before the header
        (f"[ami]\nsecret = x\nsecret = {SECRET}\n", 3),  # a duplicate key
        (f"[ami]\nusername = admin\n[ami]\nsecret = {SECRET}\n", 3),  # a duplicate section
        (f"[ami]\nusername = admin\n{SECRET}\n", 3),  # a line that is not key = value
    ],
    ids=["no-header", "key-before-header", "duplicate-key", "duplicate-section", "bare-line"],
)
def test_item18_config_errors_exit_2_with_a_line_number_and_never_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int
) -> None:
    config = tmp_path / "ami.ini"
    config.write_text(text)
    assert main(["action", "Ping", "--config", str(config)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert SECRET not in err
    assert f"(line {line})" in err
    assert ERROR_LINE.match(error_lines(err)[0]), err


def test_item18_config_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    config = tmp_path / "ami.ini"
    config.write_bytes(b"\xef\xbb\xbf[ami]\nusername = admin\n")  # as Windows editors save it
    settings = ami_async.cli.read_config(config, required=True)
    assert settings == {"username": "admin"}


# -- item 20: Ctrl-C on fake-pbx with clients connected ----------------------------------------


async def test_item20_ctrl_c_on_fake_pbx_with_clients_connected_prints_no_traceback(
    cli: Cli,
) -> None:
    server = await cli.start("fake-pbx", "--port", "0")
    clients: list[ami_async.Client] = []
    try:
        first = await wait_line(server.stdout)
        port = int(first.rsplit(":", 1)[1])
        for _ in range(2):
            client = ami_async.Client(
                "127.0.0.1", port, username="admin", secret="amp111", reconnect=False
            )
            await client.connect()
            clients.append(client)
    finally:
        server.send_signal(signal.SIGINT)
        stopped = await cli.finish(server)
        for client in clients:
            await client.close()
    assert stopped.code == 130, stopped
    assert stopped.err == "", stopped


# -- item 22: frictions --------------------------------------------------------------------------


async def test_item22_login_refused_is_said_once_in_the_common_error_format(cli: Cli) -> None:
    async with FakeAsterisk(users={"admin": SECRET}, auth_failure_delay=0.05) as pbx:
        result = await cli("command", "core show version", *login(pbx, "Wrong-Secret-0815"))
    assert result.code == 3, result
    (line,) = result.err.splitlines()
    assert line.startswith("ami-async command: error: "), line
    assert "'admin'" in line
    assert line.lower().count("refused") == 1, line  # not "login refused: login refused ..."


def test_item22_action_without_a_name_does_not_say_headers_are_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["action"]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: NAME\n" in err
    assert "KEY=VALUE" not in err.split("error:")[1]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["action", "Ping", "--secret", "s"], "action"),  # no username, found after parsing
        (["command", "core show version", "--username", "admin"], "command"),  # no secret
        (["events", "--count", "0", "--fake"], "events"),
        (["originate", "Local/1@test", "--exten", "1", "--fake"], "originate"),
    ],
)
def test_item22_errors_after_parsing_show_the_subcommand_usage(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    command: str,
) -> None:
    monkeypatch.setenv("HOME", str(Path("/nonexistent-home")))
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 (closed by pytest)
    for name in ("AMI_HOST", "AMI_PORT", "AMI_USERNAME", "AMI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: ami-async {command} "), err
    assert ERROR_LINE.match(error_lines(err)[0]), err
    assert error_lines(err)[0].startswith(f"ami-async {command}: error: "), err


async def test_item22_one_error_format_for_every_command(cli: Cli, tmp_path: Path) -> None:
    not_a_capture = tmp_path / "notes.txt"
    not_a_capture.write_text("just some text\n")
    async with FakeAsterisk() as pbx:
        results = await asyncio.gather(
            cli("action", "NoSuchAction", "--fake"),
            cli("command", "core show nothing", "--fake"),
            cli("originate", "Local/1@test", "--app", "Wait", "--fake", "--channel-id", "x"),
            cli("decode", str(not_a_capture)),
            cli("decode", str(tmp_path / "missing.bin")),
            cli("events", "--mask", "bogus", "--fake"),
            cli("action", "Ping", "--port", "1", "-u", "a", "--secret", "b"),
            cli("action", "Ping", *login(pbx, "wrong")),
            cli("no-such-command"),
        )
    *commands, unknown = results
    for result in commands:
        assert result.code != 0, result
        assert "Traceback" not in result.err
        lines = error_lines(result.err)
        assert lines, result
        for line in lines:
            assert ERROR_LINE.match(line), result
    # No command to name: the program's name alone.
    assert unknown.err.splitlines()[-1].startswith("ami-async: error: argument COMMAND")


async def test_item22_decode_refuses_a_file_that_is_not_a_capture(cli: Cli, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("dear diary,\nthe PBX rang twice.\n")
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 4)
    results = await asyncio.gather(
        cli("decode", str(text)), cli("decode", str(empty)), cli("decode", str(noise))
    )
    for result in results:
        assert result.code == 1, result
        (line,) = result.err.splitlines()
        assert line.startswith("ami-async decode: error: "), line
        assert "not an AMI capture" in line
    decode_help = (await cli("decode", "--help")).out
    assert "README" not in decode_help  # not shipped with the package
    assert "# AMI transcript v1" in decode_help  # the format, described where it is used


async def test_item22_events_says_on_stderr_when_it_reconnects(cli: Cli) -> None:
    async with FakeAsterisk() as pbx:
        proc = await cli.start("events", "UserEvent", *login(pbx))  # no -v
        await pbx.wait_for_action("Login", timeout=TIMEOUT)
        await emit_until_printed(pbx, proc)  # connected, not still connecting
        await pbx.drop()
        await wait_stderr(proc, "reconnected to 127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        result = await cli.finish(proc)
    assert result.code == 130, result


async def emit_until_printed(pbx: FakeAsterisk, proc: asyncio.subprocess.Process) -> None:
    """Emit UserEvents until the `events` tail prints one: it is logged in and reading."""
    assert proc.stdout is not None
    reading = asyncio.ensure_future(proc.stdout.readline())
    try:
        for number in range(int(TIMEOUT / 0.05)):
            await pbx.emit("UserEvent", {"Privilege": "user,all", "UserEvent": f"n{number}"})
            done, _ = await asyncio.wait({reading}, timeout=0.05)
            if done:
                assert b"UserEvent" in reading.result()
                return
        raise AssertionError("the events tail printed nothing")
    finally:
        reading.cancel()


async def test_item22_events_mask_is_checked_against_the_ami_classes(cli: Cli) -> None:
    async with FakeAsterisk() as pbx:
        bogus, spaced, numeric = await asyncio.gather(
            cli("events", "--mask", "call,bogus", "--fake"),
            cli("events", "--mask", "Call, User", "--duration", "0.2", "-vv", *login(pbx)),
            cli("events", "--mask", "on", "--duration", "0.2", *login(pbx)),
        )
    assert bogus.code == 2, bogus
    assert "'bogus'" in bogus.err
    assert "agent" in bogus.err  # the valid classes are listed
    assert spaced.code == 0, spaced
    assert "Events: call,user" in spaced.err  # sent as Asterisk reads it: lower case, no spaces
    assert numeric.code == 0, numeric


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
def test_item22_ctrl_c_at_the_secret_prompt_ends_the_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "ami_async", "action", "Ping", "--username", "admin"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal is its controlling terminal
        os.execve(sys.executable, argv, env)
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while b"AMI secret: " not in seen and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                seen += os.read(fd, 1024)
        assert b"AMI secret: " in seen, seen
        os.write(fd, b"\x03")  # Ctrl-C, made into SIGINT by the terminal
        again = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if time.monotonic() > again and seen.endswith(b"AMI secret: "):
                # A SIGINT landing just before getpass's read() began is only acted on
                # when that read returns (Python's signal race): as a user would, press
                # Ctrl-C again; the read then ends with EINTR.
                os.write(fd, b"\x03")
                again = time.monotonic() + 0.5
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 130, seen
    after = seen.split(b"AMI secret: ", 1)[1]
    assert after.startswith((b"\r\n", b"\n")), seen  # the shell prompt starts on a new line
    assert b"Traceback" not in seen


async def test_item22_fake_pbx_hint_keeps_the_secret_off_the_command_line(cli: Cli) -> None:
    result = await cli("fake-pbx", "--port", "0", "--duration", "0.1")
    assert result.code == 0, result
    hint = next(line for line in result.out.splitlines() if line.startswith("try:"))
    assert "--secret" not in hint
    assert "AMI_SECRET=" in result.out


async def test_item22_events_into_a_closed_pipe_exits_141_quietly(cli: Cli, tmp_path: Path) -> None:
    errors = tmp_path / "stderr.txt"
    async with FakeAsterisk() as pbx:
        args = " ".join(["events", "UserEvent", *login(pbx)])
        script = (
            f"'{sys.executable}' -m ami_async {args} 2>'{errors}' | head -n 1; "
            'echo "status ${PIPESTATUS[0]}"'
        )
        shell = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            script,
            stdout=asyncio.subprocess.PIPE,
            env=cli.env,
            cwd=REPO,
        )
        await pbx.wait_for_action("Login", timeout=TIMEOUT)
        for number in range(1000):  # until `head` has gone and the writer noticed
            await pbx.emit("UserEvent", {"Privilege": "user,all", "UserEvent": f"n{number}"})
            if shell.returncode is not None:
                break
            await asyncio.sleep(0.02)
        out, _ = await asyncio.wait_for(shell.communicate(), TIMEOUT)
    first, status = out.decode().splitlines()
    assert "UserEvent=n0" in first
    assert status == "status 141"
    assert errors.read_text() == ""


async def test_item22_help_lists_every_exit_status(cli: Cli) -> None:
    top, events, decode = await asyncio.gather(
        cli("--help"), cli("events", "--help"), cli("decode", "--help")
    )
    for result in (top, events, decode):
        assert "141" in result.out, result
        assert "130" in result.out, result
