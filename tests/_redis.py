"""A real redis-server for the export tests: started on a free port in a temporary directory.

No persistence (``save ""``, no append-only file): a restart comes back empty,
as a crashed cache would. `RedisServer` stops, restarts (same port), pauses
(``SIGSTOP``: the kernel still accepts connections, nothing answers) and
resumes it. Debian's ``redis-server`` must be installed (``.ci/run`` installs
it when missing); without it these tests fail, they are not skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["RedisServer", "free_port", "redis_server"]

START_WITHIN = 10.0  # seconds a redis-server may take to answer PING


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedisServer:
    """One redis-server process on 127.0.0.1, its files in ``directory``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = port or free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.paused = False
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def _argv(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "redis.log"),
        ]

    async def start(self) -> None:
        """Start the server (on the same port as before) and wait until it answers PING."""
        assert not self.running, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = await asyncio.create_subprocess_exec(
            *self._argv(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        self.paused = False
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_WITHIN
        while not await self._pong():
            if self.process.returncode is not None:
                log = self.directory / "redis.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"redis-server exited {self.process.returncode}: {text}")
            if loop.time() > deadline:
                raise RuntimeError(f"redis-server did not answer within {START_WITHIN} s")
            await asyncio.sleep(0.01)

    async def _pong(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), 1.0
            )
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            writer.write(b"PING\r\n")
            line = await asyncio.wait_for(reader.readline(), 1.0)
            return line.startswith(b"+PONG")
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Kill the server (as a crash would) and wait until it is gone."""
        process = self.process
        if process is None:
            return
        if self.paused:
            process.send_signal(signal.SIGCONT)
            self.paused = False
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), START_WITHIN)
        self.process = None

    async def restart(self) -> None:
        """Stop, then start again on the same port (empty: nothing is persisted)."""
        await self.stop()
        await self.start()

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel, nothing is answered."""
        assert self.process is not None and self.running
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def client(self, **options: Any) -> Any:
        """A ``redis.asyncio.Redis`` for this server, answers decoded to text."""
        import redis.asyncio

        return redis.asyncio.Redis(
            host="127.0.0.1", port=self.port, decode_responses=True, **options
        )


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A running redis-server of this test alone."""
    server = RedisServer(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
