"""Issue 12 item 3: `ami-async events` with several servers (a Fleet), each line naming its server.

`--server NAME=HOST:PORT` (repeated) or the `[ami:NAME]` sections of the config
file; one server down, never reachable or silent never holds the others back.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _cli import REPO, Cli, cli, free_port, wait_line, wait_stderr

from ami_async.cli import build_parser
from ami_async.cli.servers import resolve_servers
from ami_async.testing import FakeAsterisk, FaultProxy

__all__ = ["cli"]  # the fixture

CREDENTIALS = ["--username", "admin", "--secret", "amp111", "--timeout", "2"]
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (\S+) (\S+)(.*)$")


@pytest.fixture
async def pbxs() -> AsyncIterator[tuple[FakeAsterisk, FakeAsterisk]]:
    async with FakeAsterisk(pbx=False) as a, FakeAsterisk(pbx=False) as b:
        yield a, b


def address(pbx: FakeAsterisk | FaultProxy | int) -> str:
    if isinstance(pbx, int):
        return f"127.0.0.1:{pbx}"
    return f"{pbx.host}:{pbx.port}"


async def silent_server() -> asyncio.Server:
    """Accepts TCP and never says a word (no banner): a login that can only time out."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    return await asyncio.start_server(hold, "127.0.0.1", 0)


async def wait_all(proc: asyncio.subprocess.Process, *texts: str) -> None:
    """Read stderr until a line has each of ``texts`` (in any order)."""
    left = set(texts)
    while left:
        line = await wait_line(proc.stderr)
        assert line, f"stderr ended before {left}"
        left -= {text for text in left if text in line}


def parsed(out: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in out.splitlines():
        match = LINE.match(line)
        assert match, line
        rows.append((match.group(1), match.group(2), match.group(3)))
    return rows


async def test_two_servers_each_line_names_its_server_in_each_servers_order(
    cli: Cli, pbxs: tuple[FakeAsterisk, FakeAsterisk]
) -> None:
    a, b = pbxs
    proc = await cli.start(
        "events", "Seq", "--count", "40", "-v",
        "--server", f"east={address(a)}", "--server", f"west={address(b)}",
        *CREDENTIALS,
    )  # fmt: skip
    await wait_stderr(proc, "waiting for events")
    for n in range(20):
        await a.emit("Seq", N=str(n))
        await b.emit("Seq", N=str(n))
    result = await cli.finish(proc)
    assert result.code == 0, result
    rows = parsed(result.out)
    assert {name for _, name, _ in rows} == {"Seq"}
    for server in ("east", "west"):
        assert [rest for s, _, rest in rows if s == server] == [f" N={n}" for n in range(20)]


async def test_json_lines_carry_the_server(
    cli: Cli, pbxs: tuple[FakeAsterisk, FakeAsterisk]
) -> None:
    a, b = pbxs
    result = await cli(
        "events", "FullyBooted", "--json", "--count", "2",
        "--server", f"east={address(a)}", "--server", f"west={address(b)}",
        *CREDENTIALS,
    )  # fmt: skip
    assert result.code == 0, result
    objects = [json.loads(line) for line in result.out.splitlines()]
    assert sorted(o["server"] for o in objects) == ["east", "west"]
    assert {o["name"] for o in objects} == {"FullyBooted"}


async def test_a_server_down_or_silent_never_blocks_the_others(
    cli: Cli, pbxs: tuple[FakeAsterisk, FakeAsterisk]
) -> None:
    a, _ = pbxs
    silent = await silent_server()
    try:
        # The silent server's login could take 60 s: the tail does not wait for it.
        proc = await cli.start(
            "events", "Seq", "--count", "3",
            "--server", f"down={address(free_port())}",
            "--server", f"silent=127.0.0.1:{silent.sockets[0].getsockname()[1]}",
            "--server", f"up={address(a)}",
            *CREDENTIALS, "--timeout", "60", "-v",
        )  # fmt: skip
        await wait_all(proc, "fleet: down is not reachable", "up: connected to")
        for n in range(3):
            await a.emit("Seq", N=str(n))
        result = await cli.finish(proc)  # within 15 s, --count 3 reached
    finally:
        silent.close()
    assert result.code == 0, result
    assert [(s, rest) for s, _, rest in parsed(result.out)] == [("up", f" N={n}") for n in range(3)]
    assert "silent" not in result.err  # still connecting when the tail ended


async def test_a_server_that_comes_up_later_joins_and_a_cut_one_reconnects(
    cli: Cli, pbxs: tuple[FakeAsterisk, FakeAsterisk]
) -> None:
    a, b = pbxs
    proxy = FaultProxy(b.host, b.port)
    await proxy.start()
    proxy.refuse()
    try:
        proc = await cli.start(
            "events", "Seq",
            "--server", f"steady={address(a)}", "--server", f"late={address(proxy)}",
            *CREDENTIALS, "-v",
        )  # fmt: skip
        await wait_all(proc, "fleet: late is not reachable", "steady: connected to")
        await a.emit("Seq", N="0")
        assert (await wait_line(proc.stdout)).split()[1:3] == ["steady", "Seq"]
        proxy.refuse(False)
        await _emit_until_seen(b, proc, "late")
        proxy.cut()
        await wait_stderr(proc, "late: reconnected to")
        await _emit_until_seen(b, proc, "late")
        await a.emit("Seq", N="1")
        await _read_until(proc, "steady")
        proc.terminate()
        result = await cli.finish(proc)
    finally:
        await proxy.close()
    assert result.code in (0, 130, -15), result


async def _emit_until_seen(pbx: FakeAsterisk, proc: asyncio.subprocess.Process, name: str) -> None:
    """Emit on ``pbx`` until a line of ``name`` shows (its login may still be under way)."""

    async def go() -> None:
        while True:
            await pbx.emit("Seq", N="x")
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), 0.2)  # type: ignore[union-attr]
            except asyncio.TimeoutError:
                continue
            if line.decode().split()[1] == name:
                return

    await asyncio.wait_for(go(), 15)


async def _read_until(proc: asyncio.subprocess.Process, name: str) -> None:
    while (await wait_line(proc.stdout)).split()[1] != name:
        pass


async def test_config_file_sections_name_the_servers(
    cli: Cli, tmp_path: Path, pbxs: tuple[FakeAsterisk, FakeAsterisk]
) -> None:
    a, b = pbxs
    config = tmp_path / "pbxs.ini"
    config.write_text(
        "[ami]\nusername = admin\nsecret = amp111\ntimeout = 2\n\n"
        f"[ami:east]\nhost = {a.host}\nport = {a.port}\n\n"
        f"[ami:west]\nhost = {b.host}\nport = {b.port}\n",
        encoding="utf-8",
    )
    every, one = await asyncio.gather(
        cli("events", "FullyBooted", "--count", "2", "--config", str(config)),
        cli("events", "FullyBooted", "--count", "1", "--config", str(config), "--server", "west"),
    )
    assert every.code == 0 and one.code == 0, (every, one)
    assert sorted(s for s, _, _ in parsed(every.out)) == ["east", "west"]
    assert [s for s, _, _ in parsed(one.out)] == ["west"]
    # The [ami] section alone still means one server, and its lines stay as they were.
    config.write_text(
        f"[ami]\nusername = admin\nsecret = amp111\nport = {a.port}\n", encoding="utf-8"
    )
    single = await cli("events", "FullyBooted", "--count", "1", "--config", str(config))
    assert single.code == 0, single
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} FullyBooted ", single.out), single.out


async def test_every_server_down_is_a_connection_failure(cli: Cli) -> None:
    result = await cli(
        "events", "--server", f"a={address(free_port())}", "--server", f"b={address(free_port())}",
        *CREDENTIALS,
    )  # fmt: skip
    assert result.code == 3, result
    assert "no server could be reached" in result.err
    assert "amp111" not in result.err


async def test_fake_runs_an_embedded_pbx_per_server(cli: Cli) -> None:
    result = await cli(
        "events", "FullyBooted", "--count", "2", "--fake", "--server", "x", "--server", "y"
    )
    assert result.code == 0, result
    assert sorted(s for s, _, _ in parsed(result.out)) == ["x", "y"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--server", "a=127.0.0.1:1", "--host", "h"], "leave out --host and --port"),
        (["--server", "bad name=h"], "a server's name is letters"),
        (["--server", "a=h:1", "--server", "a=h:2"], "'a' is given twice"),
        (["--server", "nosection"], "no [ami:nosection] section"),
        (["--server", "a=h:99999"], "between 1 and 65535"),
        (["--server", "a=[::1"], "expected HOST or HOST:PORT"),
        (["--fake", "--server", "a=h"], "--fake runs an embedded PBX"),
    ],
)
async def test_bad_server_options_are_usage_errors(cli: Cli, argv: list[str], message: str) -> None:
    result = await cli("events", *argv, *CREDENTIALS)
    assert result.code == 2, result
    assert message in result.err, result.err


# -- the samples of docs/cli.md that need servers this test cannot start -------------------


def cli_page_blocks(language: str) -> list[str]:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def test_the_pages_several_server_commands_parse_and_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ((conf,),) = [[b] for b in cli_page_blocks("conf") if "[ami:east]" in b]
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "pbxs.ini").write_text(conf, encoding="utf-8")
    monkeypatch.setenv("HOME", str(home))
    commands = [
        shlex.split(line[2:], comments=True)
        for block in cli_page_blocks("console")
        for line in block.splitlines()
        if line.startswith("$ ami-async events") or line.startswith("$ ami-async export")
    ]
    assert len(commands) >= 6
    seen: dict[str, dict[str, tuple[str, int, bool, str]]] = {}
    for argv in commands:
        args = build_parser().parse_args(argv[1:])
        # The environment would win over [ami]: only for the commands without the file.
        env = {} if "--config" in argv else {"AMI_USERNAME": "u", "AMI_SECRET": "s"}
        servers = resolve_servers(args, env)
        key = " ".join(argv[1:])
        seen[key] = {
            name: (s.host, s.port, s.tls, s.username) for name, s in (servers or {}).items()
        }
    by_config = [v for k, v in seen.items() if "--config" in k]
    assert by_config[0] == {
        "east": ("10.0.0.1", 5038, False, "monitor"),
        "west": ("10.0.0.2", 5039, True, "monitor"),
    }
    assert by_config[1] == {"west": ("10.0.0.2", 5039, True, "monitor")}
    flagged = [v for k, v in seen.items() if "east=10.0.0.1" in k]
    assert flagged and all(v["east"] == ("10.0.0.1", 5038, False, "u") for v in flagged)


async def test_secret_from_stdin_is_read_once_for_every_server(
    cli: Cli, pbxs: tuple[FakeAsterisk, FakeAsterisk]
) -> None:
    a, b = pbxs
    result = await cli(
        "events", "FullyBooted", "--count", "2", "--username", "admin", "--secret", "-",
        "--server", f"east={address(a)}", "--server", f"west={address(b)}",
        stdin=b"amp111\n",
    )  # fmt: skip
    assert result.code == 0, result
    assert sorted(s for s, _, _ in parsed(result.out)) == ["east", "west"]
