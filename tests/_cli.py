"""Shared by the CLI tests: run `python -m ami_async` as a subprocess with a clean environment."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from _fixtures import FIXTURES as _FIXTURES

from ami_async.testing import FakeAsterisk

REPO = Path(__file__).resolve().parents[1]
FIXTURES = _FIXTURES
TIMEOUT = 15.0
SECRET = "Zebra-Secret-4711"
SUBCOMMANDS = (
    "demo",
    "events",
    "export",
    "action",
    "command",
    "originate",
    "calls",
    "decode",
    "agi-serve",
    "fake-pbx",
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class Cli:
    """Runs `python -m ami_async` with a clean environment (no AMI_*, an empty HOME)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMI_")}
        env["HOME"] = str(home)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env

    async def start(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bool = False,
        cwd: Path = REPO,
    ) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ami_async",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env={**self.env, **(env or {})},
        )

    async def finish(self, proc: asyncio.subprocess.Process, stdin: bytes | None = None) -> Result:
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            raise AssertionError(
                f"ami-async did not finish within {TIMEOUT} s\n{out.decode()}\n{err.decode()}"
            ) from None
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        cwd: Path = REPO,
    ) -> Result:
        proc = await self.start(*args, env=env, stdin=stdin is not None, cwd=cwd)
        return await self.finish(proc, stdin)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home)


def login(pbx: FakeAsterisk, secret: str = "amp111", user: str = "admin") -> list[str]:
    return ["--port", str(pbx.port), "--username", user, "--secret", secret]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_stderr(proc: asyncio.subprocess.Process, text: str) -> None:
    """Read the process's stderr until a line contains `text`."""
    stream = proc.stderr
    assert stream is not None
    seen: list[str] = []

    async def scan() -> None:
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"stderr ended without {text!r}: {seen}")
            seen.append(line)
            if text in line:
                return

    try:
        await asyncio.wait_for(scan(), TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {text!r} on stderr within {TIMEOUT} s: {seen}") from None


async def wait_line(stream: asyncio.StreamReader | None) -> str:
    assert stream is not None
    return (await asyncio.wait_for(stream.readline(), TIMEOUT)).decode()
