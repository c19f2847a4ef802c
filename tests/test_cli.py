"""The ``ami-async`` command line, run as a subprocess (``python -m ami_async``).

Subprocesses that can run at once are started together (``asyncio.gather``): an
interpreter start costs more than anything they do. Servers are
``FakeAsterisk`` instances in this process on 127.0.0.1, port 0. Every wait
has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _cli import (
    FIXTURES,
    SECRET,
    SUBCOMMANDS,
    TIMEOUT,
    Cli,
    cli,
    free_port,
    login,
    wait_line,
    wait_stderr,
)

import ami_async.testing
from ami_async.cli import (
    UsageError,
    action_headers,
    build_parser,
    decode_capture,
    main,
    read_transcript,
    resolve_settings,
)
from ami_async.message import Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, FakeSession, make_response

__all__ = ["cli"]  # the fixture

# -- demo and help -----------------------------------------------------------------------------


async def test_demo_runs_with_no_pbx_and_closes_cleanly(cli: Cli) -> None:
    result = await cli("demo")
    assert result.code == 0, result
    out = result.out
    for step in (
        "1. Connect and log in",
        "2. Ping",
        "3. Run a CLI command",
        "4. Place",
        "5. Close",
    ):
        assert step in out
    assert "Pong: round trip" in out
    assert "| Asterisk " in out  # the output of core show version
    assert "OriginateResponse" in out
    assert "success, reason 4 (answered)" in out
    assert "closed cleanly (connected: False)" in out
    assert result.err == ""


async def test_help_for_every_subcommand(cli: Cli) -> None:
    results = await asyncio.gather(
        cli("--help"), *(cli(name, "--help") for name in SUBCOMMANDS), cli("--version")
    )
    top, *subs, version = results
    assert top.code == 0
    for name in SUBCOMMANDS:
        assert name in top.out
    assert "exit status: 0 ok, 1 action failed, 2 usage, 3 connection" in top.out
    for name, result in zip(SUBCOMMANDS, subs, strict=True):
        assert result.code == 0, (name, result)
        assert result.out.startswith(f"usage: ami-async {name}"), result.out
        assert "exit status:" in result.out
    assert "--fake" in subs[SUBCOMMANDS.index("action")].out
    originate_help = subs[SUBCOMMANDS.index("originate")].out
    assert "--app APP | --exten E" in originate_help
    assert "--connect-timeout" in originate_help
    assert version.code == 0
    assert version.out.startswith("ami-async ")


# -- against the embedded simulated PBX (--fake) -----------------------------------------------


async def test_fake_action_command_and_originate(cli: Cli) -> None:
    ping, ping_json, channels, unknown, version, originate, failed = await asyncio.gather(
        cli("action", "Ping", "--fake"),
        cli("action", "Ping", "--fake", "--json"),
        cli("action", "CoreShowChannels", "--fake", "--json"),
        cli("action", "NoSuchAction", "--fake"),
        cli("command", "core show version", "--fake"),
        cli("originate", "Local/100@test", "--app", "Wait", "--data", "1", "--fake"),
        cli("originate", "Local/999@test", "--app", "Wait", "--fake", "--json"),
    )
    assert ping.code == 0, ping
    assert "Response: Success" in ping.out
    assert "Ping: Pong" in ping.out

    (obj,) = [json.loads(line) for line in ping_json.out.splitlines()]
    assert obj["type"] == "response"
    assert obj["response"] == "Success"
    assert obj["headers"][0] == ["Response", "Success"]
    assert ["Ping", "Pong"] in obj["headers"]

    # A list action: the response, then the items, then the completing event.
    objs = [json.loads(line) for line in channels.out.splitlines()]
    assert channels.code == 0, channels
    assert objs[0]["type"] == "response"
    assert ["EventList", "start"] in objs[0]["headers"]
    assert objs[-1]["name"] == "CoreShowChannelsComplete"

    assert unknown.code == 1, unknown
    assert "Response: Error" in unknown.out
    assert "Invalid/unknown command: NoSuchAction" in unknown.err

    assert version.code == 0, version
    assert version.out.startswith("Asterisk ")

    assert originate.code == 0, originate
    assert originate.out.startswith("success, reason 4 (answered), channel Local/100@test-")

    assert failed.code == 1, failed  # a call that failed is exit status 1
    result = json.loads(failed.out)
    assert result["type"] == "originate"
    assert result["success"] is False
    assert result["reason"] == 0
    assert result["event"]["name"] == "OriginateResponse"


# -- events ------------------------------------------------------------------------------------


async def test_events_text_and_json_with_names_where_and_count(cli: Cli) -> None:
    async with FakeAsterisk() as pbx:
        text = await cli.start("events", "Hangup", "--count", "1", "-v", *login(pbx))
        as_json = await cli.start(
            "events",
            *("User*", "--where", "UserEvent=Demo*", "--json", "--count", "2", "-v"),
            *login(pbx),
        )
        # -v logs this once logged in (and subscribed, which happens before the login).
        await asyncio.gather(
            wait_stderr(text, "waiting for events"), wait_stderr(as_json, "waiting for events")
        )
        await pbx.emit("UserEvent", {"Privilege": "user,all", "UserEvent": "Other"})
        await pbx.emit(
            "UserEvent",
            [("Privilege", "user,all"), ("UserEvent", "Demo1"), ("Tag", "a"), ("Tag", "b c")],
        )
        await pbx.emit(
            "Hangup",
            {
                "Privilege": "call,all",
                "Channel": "PJSIP/100-00000001",
                "Cause-txt": "Normal Clearing",
            },
        )
        await pbx.emit("UserEvent", {"Privilege": "user,all", "UserEvent": "Demo2"})
        text_result, json_result = await asyncio.gather(cli.finish(text), cli.finish(as_json))

    assert text_result.code == 0, text_result
    (line,) = text_result.out.splitlines()
    stamp, name, rest = line.split(" ", 2)  # stderr (the -v log) is not in stdout
    assert len(stamp) == len("12:00:00.000")
    assert name == "Hangup"
    assert rest == 'Privilege=call,all Channel=PJSIP/100-00000001 Cause-txt="Normal Clearing"'

    assert json_result.code == 0, json_result
    first, second = (json.loads(line) for line in json_result.out.splitlines())
    assert first == {
        "type": "event",
        "name": "UserEvent",
        "headers": [
            ["Event", "UserEvent"],
            ["Privilege", "user,all"],
            ["UserEvent", "Demo1"],
            ["Tag", "a"],
            ["Tag", "b c"],
        ],
    }
    assert second["headers"][2] == ["UserEvent", "Demo2"]


async def test_ctrl_c_exits_130_quietly(cli: Cli) -> None:
    async with FakeAsterisk() as pbx:
        proc = await cli.start("events", "Hangup", *login(pbx))
        await pbx.wait_for_action("Login", timeout=TIMEOUT)
        proc.send_signal(signal.SIGINT)
        result = await cli.finish(proc)
    assert result.code == 130, result
    assert result.out == ""
    assert result.err == ""


# -- decode ------------------------------------------------------------------------------------


async def test_decode_fixtures(cli: Cli) -> None:
    ami22 = FIXTURES / "asterisk-22" / "command.ami"
    bin13 = FIXTURES / "asterisk-13" / "command.bin"
    text22, json22, text13, json13 = await asyncio.gather(
        cli("decode", str(ami22)),
        cli("decode", "--json", str(ami22)),
        cli("decode", str(bin13)),
        cli("decode", str(bin13), "--json"),
    )
    for result in (text22, json22, text13, json13):
        assert result.code == 0, result
        assert "amp111" not in result.out  # the recorded Login's secret is hidden

    assert "<<< 0.000 banner: Asterisk Call Manager/11.0.0" in text22.out
    assert "Secret: ********" in text22.out
    assert "Output: 0 active channels" in text22.out
    objs = [json.loads(line) for line in json22.out.splitlines()]
    login_action = next(o for o in objs if o.get("name") == "Login")
    assert login_action["from"] == "client"
    assert ["Secret", "********"] in login_action["headers"]
    unknown = next(
        o
        for o in objs
        if o.get("from") == "server" and ["ActionID", "command-4"] in o.get("headers", [])
    )
    assert unknown["type"] == "response"
    assert unknown["response"] == "Error"

    assert "<<< banner: Asterisk Call Manager/2.10.6" in text13.out
    assert "\nAsterisk 13.38.3 built by" in text13.out  # a Response: Follows body, as text
    objs13 = [json.loads(line) for line in json13.out.splitlines()]
    assert objs13[0] == {"from": "server", "type": "banner", "text": "Asterisk Call Manager/2.10.6"}
    follows = [o for o in objs13 if o.get("response") == "Follows"]
    assert follows[0]["body"].startswith("Asterisk 13.38.3 built by")


# -- connection settings -----------------------------------------------------------------------


async def test_env_config_file_and_precedence(cli: Cli, tmp_path: Path) -> None:
    async with FakeAsterisk(users={"admin": SECRET, "other": "x"}) as pbx:
        good, dead = str(pbx.port), str(free_port())
        config = tmp_path / "ami.ini"
        config.write_text(f"[ami]\nhost = 127.0.0.1\nport = {good}\nusername = admin\n")
        # The default config file, found through HOME.
        default = cli.home / ".config" / "ami-async.ini"
        default.parent.mkdir()
        default.write_text(f"[ami]\nport = {good}\nusername = admin\nsecret = {SECRET}\n")
        env = {"AMI_HOST": "127.0.0.1", "AMI_PORT": good, "AMI_USERNAME": "admin"}
        results = await asyncio.gather(
            # environment only
            cli("action", "Ping", env={**env, "AMI_SECRET": SECRET}),
            # config file (--config) + secret from the environment
            cli("action", "Ping", "--config", str(config), env={"AMI_SECRET": SECRET}),
            # the default config file alone
            cli("command", "core show version"),
            # env beats the config file: the default file's port is good, $AMI_PORT is dead
            cli("action", "Ping", env={"AMI_PORT": dead}),
            # flags beat env
            cli(
                "action",
                "Ping",
                *("--port", good, "--secret", SECRET),
                env={**env, "AMI_PORT": dead, "AMI_SECRET": "not-this-one"},
            ),
            # --secret - reads stdin when it is not a terminal
            cli("action", "Ping", "--secret", "-", env=env, stdin=f"{SECRET}\n".encode()),
        )
    by_env, by_config, by_default, env_over_config, flag_over_env, from_stdin = results
    for result in (by_env, by_config, by_default, flag_over_env, from_stdin):
        assert result.code == 0, result
    assert env_over_config.code == 3, env_over_config
    assert dead in env_over_config.err
    assert by_default.out.startswith("Asterisk ")


async def test_login_refused_and_nothing_listening_exit_3(cli: Cli) -> None:
    async with FakeAsterisk(users={"admin": SECRET}, auth_failure_delay=0.05) as pbx:
        refused, refused_md5, nothing = await asyncio.gather(
            cli("command", "core show version", *login(pbx, "Wrong-Secret-0815")),
            cli("action", "Ping", "--md5", *login(pbx, "Wrong-Secret-0815")),
            cli("action", "Ping", "--port", str(free_port()), "--username", "a", "--secret", "b"),
        )
    for result in (refused, refused_md5):
        assert result.code == 3, result
        assert "refused" in result.err
        assert "Authentication failed" in result.err
    assert nothing.code == 3, nothing
    assert "cannot connect" in nothing.err


async def test_secret_never_printed_even_with_debug_logging(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "ami.ini"
    config.write_text("[ami]\nusername = admin\nsecret " + SECRET + "\n")  # a broken line
    async with FakeAsterisk(users={"admin": SECRET}, auth_failure_delay=0.05) as pbx:
        env = {"AMI_SECRET": SECRET}
        results = await asyncio.gather(
            cli("action", "Ping", "-vv", *login(pbx, SECRET)),
            cli("action", "Ping", "-vv", "--md5", *login(pbx, SECRET)),
            cli("action", "Ping", "-vv", "--port", str(pbx.port), "-u", "admin", env=env),
            cli("action", "Ping", "-vv", *login(pbx, SECRET, user="nobody")),
            cli("decode", "nothing.bin", "--secret", SECRET),  # a usage error
            cli("action", "Ping", f"--secret={SECRET}", "--port", "x"),
            cli("action", "Ping", "--config", str(config)),
            cli("events", "--help"),
        )
    plain, md5, from_env, refused, usage, bad_port, bad_config, _help = results
    for result in (plain, md5, from_env):
        assert result.code == 0, result
        assert "ami_async.wire" in result.err  # -vv turned the wire trace on
    assert "Secret: ********" in plain.err
    assert "Key: ********" in md5.err
    assert refused.code == 3, refused
    for result in (usage, bad_port, bad_config):
        assert result.code == 2, result
    assert "line 3" in bad_config.err
    for result in results:
        assert SECRET not in result.out + result.err, result


async def test_tls_with_a_ca_file(cli: Cli, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    config = tmp_path / "tls.ini"
    config.write_text(f"[ami]\ntls = yes\ncafile = {cafile}\nusername = admin\nsecret = amp111\n")
    async with FakeAsterisk(ssl=server_context) as pbx:
        verified, from_config, unverified = await asyncio.gather(
            cli("action", "Ping", "--tls", "--cafile", str(cafile), *login(pbx)),
            cli("action", "Ping", "--config", str(config), "--port", str(pbx.port)),
            cli("action", "Ping", "--tls", *login(pbx)),
        )
    assert verified.code == 0, verified
    assert "Ping: Pong" in verified.out
    assert from_config.code == 0, from_config
    assert unverified.code == 3, unverified  # the system CAs do not know this one
    assert "certificate" in unverified.err.lower()


# -- exit status 2 -----------------------------------------------------------------------------


async def test_bad_usage_exits_2(cli: Cli, tmp_path: Path) -> None:
    results = await asyncio.gather(
        cli(),
        cli("no-such-command"),
        cli("action"),
        cli("action", "Ping", "NotAHeader", "--fake"),
        cli("originate", "Local/100@test", "--fake"),
        cli("originate", "Local/100@test", "--exten", "100", "--fake"),
        cli("originate", "Local/100@test", "--app", "Wait", "--context", "x", "--fake"),
        cli("events", "--count", "0", "--fake"),
        cli("action", "Ping", "--port", "abc"),
        cli("action", "Ping", "--secret", "s"),  # no username anywhere
        cli("action", "Ping", "--username", "admin"),  # no secret, stdin not a terminal
        cli("action", "Ping", "--config", str(tmp_path / "missing.ini")),
        cli("action", "Ping", "-u", "a", "--secret", "b", env={"AMI_PORT": "70000"}),
        cli("decode", str(tmp_path / "missing.bin")),
        cli("action", "Bad\rName", "--fake"),
        cli("calls", "--fake", "--bogus", "x"),
    )
    for result in results:
        assert result.code == 2, result
        assert result.out == ""
        assert "Traceback" not in result.err
    assert "--exten needs --context" in results[5].err
    assert "no username" in results[9].err
    assert "no secret" in results[10].err
    assert "AMI_PORT" in results[12].err
    # An option no command has: the usage shown is that command's own.
    assert results[15].err.startswith("usage: ami-async calls")
    assert "ami-async calls: error: unrecognized arguments: --bogus x" in results[15].err


# -- the fake-pbx server -----------------------------------------------------------------------


async def test_fake_pbx_serves_other_processes(cli: Cli) -> None:
    server = await cli.start("fake-pbx", "--port", "0")
    try:
        first = await wait_line(server.stdout)
        assert first.startswith("FakeAsterisk listening on 127.0.0.1:")
        port = first.rsplit(":", 1)[1].strip()
        result = await cli(
            "action", "Ping", "--port", port, "--username", "admin", "--secret", "amp111"
        )
        assert result.code == 0, result
        assert "Ping: Pong" in result.out
    finally:
        server.send_signal(signal.SIGINT)
        stopped = await cli.finish(server)
    assert stopped.code == 130, stopped
    assert "Traceback" not in stopped.err


# -- in-process: the demo follows a real-looking call, decoding, settings ----------------------


class ScriptedPbx(FakeAsterisk):
    """A FakeAsterisk whose Originate plays the events of asterisk-22/originate_async.bin."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_action("Originate", self._originate)

    async def _originate(self, session: FakeSession, action: Message) -> None:
        await session.send(
            make_response(action, "Success", Message="Originate successfully queued")
        )
        recorded = Parser().feed((FIXTURES / "asterisk-22" / "originate_async.bin").read_bytes())
        start = next(i for i, m in enumerate(recorded) if m.get("ActionID") == "originate_async-2")
        for msg in recorded[start + 1 :]:
            headers = [
                (k, action["ActionID"] if k == "ActionID" else v)
                for k, v in msg.headers
                if k != "Event"
            ]
            await self.emit(msg["Event"], headers)


def test_demo_follows_the_call_until_every_channel_hung_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(ami_async.testing, "FakeAsterisk", ScriptedPbx)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    first = lines.index("   the call's events, in wire order:") + 1
    last = next(i for i, line in enumerate(lines) if "every channel of the call hung up" in line)
    shown = [line.split()[0] for line in lines[first:last]]
    assert shown[0] == "CEL"
    assert shown.count("Newchannel") == 2
    assert shown.count("Hangup") == 2
    assert "OriginateResponse" in shown
    assert "DeviceStateChange" not in shown  # not the call's
    assert "every channel of the call hung up (2 channel(s))" in out
    assert "other event(s) not shown" in out
    hangup = next(line for line in lines[first:last] if line.split()[0] == "Hangup")
    assert "Cause=0 Cause-txt=Unknown" in hangup  # as recorded: Wait() ends with cause 0


@pytest.mark.parametrize(
    "path",
    sorted(FIXTURES.glob("asterisk-*/*.ami")) + sorted(FIXTURES.glob("asterisk-*/*.bin")),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_decode_every_fixture_as_the_parser_does(path: Path) -> None:
    items = list(decode_capture(path.read_bytes()))
    messages = [i.message for i in items if i.message is not None and i.source == "server"]
    raw = path.with_suffix(".bin").read_bytes()
    assert messages == Parser().feed(raw)  # the .ami's <<< records are the .bin, in order
    if path.suffix == ".ami":
        assert [r for r in read_transcript(path.read_bytes()) if r[0] == "<<<"]


def test_read_transcript_refuses_a_damaged_file() -> None:
    good = b"# AMI transcript v1\n<<< 0.000 4\nabcd\n"
    assert read_transcript(good) == [("<<<", 0.0, b"abcd")]
    for bad in (b"<<< 0.000 9\nabcd\n", b"<<< 0.000 2\nabcd\n", b"<<< zero\nab\n"):
        with pytest.raises(ValueError, match="byte"):
            read_transcript(bad)


def test_decode_json_shape_for_non_utf8_and_bare_lines(capsys: pytest.CaptureFixture[str]) -> None:
    capture = FIXTURES / "asterisk-22" / "bad_input.ami"
    assert main(["decode", "--json", str(capture)]) == 0
    for line in capsys.readouterr().out.splitlines():
        obj = json.loads(line)
        assert obj["type"] in ("note", "banner", "action", "response", "event", "message")


def test_action_headers_repeat_keys_and_avoid_keyword_clashes() -> None:
    pairs = [("Variable", "A=1"), ("variable", "B=2"), ("timeout", "3000"), ("Channel", "x")]
    assert action_headers(pairs) == {
        "Variable": ["A=1", "B=2"],
        "Timeout": "3000",
        "Channel": "x",
    }


def test_settings_precedence(tmp_path: Path) -> None:
    config = tmp_path / "ami.ini"
    config.write_text(
        "[ami]\nhost = conf-host\nport = 1111\nusername = conf-user\nsecret = conf\n"
        "auth = md5\ntls = yes\ntimeout = 4\n"
    )

    def resolve(argv: Sequence[str], env: Mapping[str, str]) -> Any:
        args = build_parser().parse_args(["action", "Ping", "--config", str(config), *argv])
        return resolve_settings(args, env, read_secret=lambda: "from-stdin")

    from_config = resolve([], {})
    assert (from_config.host, from_config.port, from_config.username) == (
        "conf-host",
        1111,
        "conf-user",
    )
    assert (from_config.auth, from_config.tls, from_config.timeout) == ("md5", True, 4.0)
    assert SECRET not in repr(resolve(["--secret", SECRET], {}))
    env = {"AMI_HOST": "env-host", "AMI_PORT": "2222", "AMI_USERNAME": "env-user"}
    from_env = resolve([], env)
    assert (from_env.host, from_env.port, from_env.username) == ("env-host", 2222, "env-user")
    flags = resolve(["--host", "h", "--port", "3333", "--secret", "-", "--timeout", "2"], env)
    assert (flags.host, flags.port, flags.secret, flags.timeout) == ("h", 3333, "from-stdin", 2.0)
    with pytest.raises(UsageError, match="AMI_PORT"):
        resolve([], {"AMI_PORT": "0"})
