"""docs/scale.md's examples run: examples/fleet.py and examples/export_redis.py (real Redis).

Each runs as its users would run it, in its own process: ``--fake`` (embedded
simulated PBXs), and against servers of this test through the environment.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from _cli import free_port
from _redis import RedisServer, redis_server

from ami_async.testing import FakeAsterisk

__all__ = ["redis_server"]  # the fixture

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
WAIT = 30.0


async def start(
    script: str, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def read_until(proc: asyncio.subprocess.Process, text: str) -> list[str]:
    """Lines printed until one contains ``text``."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or text not in lines[-1]:
        line = (await asyncio.wait_for(proc.stdout.readline(), WAIT)).decode()
        assert line, f"ended before {text!r}: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


async def test_fleet_example_fake_merges_two_pbxs_and_a_dead_one_blocks_nobody() -> None:
    code, out = await finish(await start("fleet.py", "--fake", "--calls", "2"))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:3] == ["east: up", "west: up", "gone: connecting"], out
    hangups = [line.split() for line in lines if "Local/100@test" in line]
    assert len(hangups) == 8, out
    for server in ("east", "west"):
        channels = [h[1] for h in hangups if h[0] == server]
        assert sorted(channels) == sorted(
            f"Local/100@test-0000000{n};{half}" for n in (0, 1) for half in (1, 2)
        ), out
    assert lines[-1] == "gone: connecting"


async def test_fleet_example_against_servers_named_on_the_command_line() -> None:
    async with FakeAsterisk(pbx=False) as east:
        proc = await start(
            "fleet.py", f"east={east.host}:{east.port}", f"west=127.0.0.1:{free_port()}",
            "--status-every", "0.2",
            env={"AMI_USERNAME": "admin", "AMI_SECRET": "amp111"},
        )  # fmt: skip
        try:
            await read_until(proc, "-- up: east")
            await east.emit("Hangup", {"Channel": "PJSIP/100-00000001", "Cause-txt": "Normal"})
            lines = await read_until(proc, "PJSIP/100-00000001")
            assert lines[-1].split() == ["east", "PJSIP/100-00000001", "Normal"]
        finally:
            proc.send_signal(signal.SIGINT)
            code, out = await finish(proc)
    assert code == 130, out


async def test_export_redis_example_exports_and_a_consumer_group_reads(
    redis_server: RedisServer,
) -> None:
    url = ["--redis", redis_server.url]
    consumer = await start("export_redis.py", "consume", *url, "--count", "20")
    await read_until(consumer, "reading ami:events as readers/c1")
    code, out = await finish(await start("export_redis.py", "export", "--fake", *url))
    assert code == 0, out
    exported = int(re.fullmatch(r"exported (\d+) events, 0 dropped\n", out).group(1))  # type: ignore[union-attr]
    assert exported > 20
    code, read = await finish(consumer)
    assert code == 0, read
    lines = read.splitlines()
    assert len(lines) == 20 and all(line.startswith("pbx1 ") for line in lines), read
    # A second consumer of the group takes the rest; nothing is handed out twice.
    code, rest = await finish(
        await start(
            "export_redis.py", "consume", *url, "--consumer", "c2", "--count", str(exported - 20)
        )
    )
    assert code == 0, rest
    lines = rest.splitlines()[1:]
    assert len(lines) == exported - 20
    assert sum("pbx1 Hangup Channel=Local/100@test-" in line for line in lines) == 4, rest


async def test_export_redis_example_against_a_pbx_from_the_environment(
    redis_server: RedisServer,
) -> None:
    async with FakeAsterisk(pbx=False) as pbx:
        env = {
            "AMI_HOST": pbx.host,
            "AMI_PORT": str(pbx.port),
            "AMI_USERNAME": "admin",
            "AMI_SECRET": "amp111",
        }
        proc = await start("export_redis.py", "export", "--redis", redis_server.url, env=env)
        redis = redis_server.client()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while not await redis.xlen("ami:events"):  # the login's own events
                assert loop.time() < deadline, "nothing exported"
                await pbx.emit("Ping")
                await asyncio.sleep(0.05)
        finally:
            await redis.aclose()
            proc.send_signal(signal.SIGINT)
            code, out = await finish(proc)
    assert code == 130, out


async def test_export_redis_consumer_survives_a_redis_restart(redis_server: RedisServer) -> None:
    url = ["--redis", redis_server.url]
    consumer = await start("export_redis.py", "consume", *url, "--count", "3")
    await read_until(consumer, "reading ami:events")
    await redis_server.restart()  # empty again: the group is gone (NOGROUP)
    redis = redis_server.client()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while not await redis.exists("ami:events"):  # the consumer made the group again
            assert loop.time() < deadline, "the group was not made again"
            await asyncio.sleep(0.02)
        for n in range(3):
            fields = {"server": "pbx1", "event": "Hangup", "headers": "[]", "seq": str(n + 1)}
            await redis.xadd("ami:events", fields)
    finally:
        await redis.aclose()
    code, out = await finish(consumer)
    assert code == 0, out
    assert out.splitlines() == ["pbx1 Hangup"] * 3  # (the "reading" line was read above)
