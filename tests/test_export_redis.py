"""Issue 12 item 4: events exported to a Redis Stream, against a real redis-server.

Each test starts its own redis-server (tests/_redis.py) and FakeAsterisk
servers; a consumer in another process reads the stream with a consumer group.
Redis is killed, restarted, frozen (SIGSTOP) and made to refuse writes while
the AMI side floods; the client's other subscriptions must keep up all along.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from _cli import Cli, cli, free_port, wait_stderr
from _redis import RedisServer, redis_server
from _waiting import eventually as wait_until

from ami_async import Client, Fleet
from ami_async.export import RedisStreamExporter, StreamEntry, decode_entry
from ami_async.testing import FakeAsterisk

__all__ = ["cli", "redis_server"]  # the fixtures

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0  # the bound on every wait in this file
STREAM = "ami:events"
FAST = {"retry_delay": 0.01, "max_retry_delay": 0.05, "timeout": 1.0}


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(pbx=False) as server:
        yield server


def client_for(pbx: FakeAsterisk, name: str = "pbx1") -> Client:
    return Client(
        pbx.host,
        pbx.port,
        username="admin",
        secret="amp111",
        name=name,
        ping_interval=None,
        timeout=WAIT,
        action_timeout=WAIT,
    )


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most WAIT seconds) until ``condition()`` holds."""
    await wait_until(condition, what, timeout=WAIT)


async def flood(pbx: FakeAsterisk, start: int, stop: int, name: str = "Seq") -> None:
    for n in range(start, stop):
        await pbx.emit(name, N=str(n))


async def read_all(client: Client, count: int, name: str = "Seq") -> list[int]:
    """What another subscription of ``client`` receives: the AMI side keeps up."""
    sub = client.events(name)
    got = [int((await sub.get(timeout=WAIT))["N"]) for _ in range(count)]
    sub.close()
    return got


async def stream(server: RedisServer) -> list[StreamEntry]:
    redis = server.client()
    try:
        return [decode_entry(fields) for _, fields in await redis.xrange(STREAM)]
    finally:
        await redis.aclose()


def numbers(entries: list[StreamEntry]) -> list[int]:
    return [int(dict(e.headers)["N"]) for e in entries if not e.gap]


# -- a consumer in another process ----------------------------------------------------------

CONSUMER = textwrap.dedent(
    """
    import json, sys, time
    import redis
    from ami_async.export import decode_entry

    url, stream, group, wanted, limit = sys.argv[1:6]
    r = redis.Redis.from_url(url)
    try:
        r.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:  # BUSYGROUP: made by an earlier run
        if "BUSYGROUP" not in str(exc):
            raise
    print("ready", flush=True)
    seen, deadline = 0, time.monotonic() + float(limit)
    while seen < int(wanted) and time.monotonic() < deadline:
        for _, entries in r.xreadgroup(group, "c1", {stream: ">"}, count=100, block=100) or []:
            for entry_id, fields in entries:
                e = decode_entry(fields)
                print(json.dumps([e.server, e.event, dict(e.headers).get("N"), e.seq, e.gap]))
                r.xack(stream, group, entry_id)
                seen += 1
    pending = r.xpending(stream, group)["pending"]
    print(json.dumps({"pending": pending}), flush=True)
    """
)


async def start_consumer(server: RedisServer, wanted: int) -> asyncio.subprocess.Process:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CONSUMER,
        server.url,
        STREAM,
        "readers",
        str(wanted),
        str(WAIT),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
    assert line == b"ready\n", line + await proc.stderr.read()  # type: ignore[union-attr]
    return proc


async def consumed(proc: asyncio.subprocess.Process) -> tuple[list[list[Any]], int]:
    out, err = await asyncio.wait_for(proc.communicate(), WAIT + 5)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    return lines[:-1], lines[-1]["pending"]


# -- the tests ------------------------------------------------------------------------------


async def test_events_tagged_with_their_server_reach_a_consumer_group_in_another_process(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    consumer = await start_consumer(redis_server, 300)
    async with (
        client_for(pbx) as client,
        RedisStreamExporter(client, redis_server.url, maxlen=10_000) as exporter,
    ):
        seen = asyncio.ensure_future(read_all(client, 300))
        await flood(pbx, 0, 300)
        assert await seen == list(range(300))
        await exporter.wait_flushed(WAIT)
        assert (exporter.exported, exporter.dropped, exporter.pending) == (300, 0, 0)
        assert exporter.redis_up is True
    rows, pending = await consumed(consumer)
    assert rows == [["pbx1", "Seq", str(n), n + 1, 0] for n in range(300)]
    assert pending == 0  # every entry acknowledged


async def test_xadd_uses_approximate_maxlen_and_batches_are_pipelined(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    monitor_lines: list[str] = []
    redis = redis_server.client()
    pipelines = 0

    class Counting(type(redis)):  # type: ignore[misc]
        def pipeline(self, *args: Any, **kwargs: Any) -> Any:
            nonlocal pipelines
            pipelines += 1
            return super().pipeline(*args, **kwargs)

    counted = Counting(host="127.0.0.1", port=redis_server.port)
    watcher = redis_server.client()
    async with watcher.monitor() as monitor:

        async def watch() -> None:
            async for command in monitor.listen():
                monitor_lines.append(command["command"])

        watching = asyncio.ensure_future(watch())
        async with client_for(pbx) as client:
            exporter = RedisStreamExporter(
                client, maxlen=50, batch=100, redis=counted, timeout=WAIT
            )
            async with exporter:
                redis_server.pause()  # the first write waits: the rest piles up
                seen = asyncio.ensure_future(read_all(client, 1000))
                await flood(pbx, 0, 1000)
                assert await seen == list(range(1000))
                redis_server.resume()
                await exporter.wait_flushed(WAIT)
                assert exporter.exported == 1000
            await eventually(lambda: sum("XADD" in c for c in monitor_lines) >= 1000, "seen")
        watching.cancel()
    # 1000 events went out in pipelines of up to `batch` XADDs, not 1000 round trips.
    assert pipelines <= 1000 // 100 + 2, pipelines
    xadds = [c for c in monitor_lines if c.startswith("XADD")]
    assert xadds[0].startswith(f"XADD {STREAM} MAXLEN ~ 50 * server pbx1 event Seq")
    assert len(await stream(redis_server)) < 1000  # trimmed as it goes
    await counted.aclose()
    await redis.aclose()
    await watcher.aclose()


async def test_redis_down_buffers_in_order_drops_past_the_bound_and_the_ami_side_keeps_up(
    redis_server: RedisServer, pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ami_async.export")
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(client, redis_server.url, buffer=200, batch=50, **FAST)
        async with exporter:
            await flood(pbx, 0, 1)
            await eventually(lambda: exporter.exported == 1, "the first event is written")
            await redis_server.stop()
            seen = asyncio.ensure_future(read_all(client, 999))
            await flood(pbx, 1, 1000)
            assert await seen == list(range(1, 1000))  # the AMI side never waited
            await client.ping()
            await eventually(lambda: exporter.dropped > 0, "the drops are counted")
            await eventually(
                lambda: any("dropped" in r.getMessage() for r in caplog.records), "logged"
            )
            assert exporter.redis_up is False and "unreachable" in (exporter.last_error or "")
            dropped = exporter.dropped
            await redis_server.start()
            await eventually(lambda: exporter.redis_up is True, "Redis is back")
            await flood(pbx, 1000, 1010)
            await eventually(lambda: exporter.exported + exporter.dropped == 1010, "all told")
            await exporter.wait_flushed(WAIT)
            assert exporter.dropped == dropped  # nothing lost once Redis was back
    entries = await stream(redis_server)  # the restarted Redis: from the buffer on
    # Arrival order, each gap entry standing exactly where its events were lost (the
    # buffer may take events again after a gap, once the exporter made room).
    expected = 1
    for entry in entries:
        if entry.gap:
            expected += entry.gap
        else:
            assert int(dict(entry.headers)["N"]) == expected, entry
            expected += 1
    assert expected == 1010
    assert sum(e.gap for e in entries) == dropped and 0 < dropped < 999
    assert len(numbers(entries)) >= 200 + 10  # at least the buffer's worth, and the new ones
    assert numbers(entries)[-10:] == list(range(1000, 1010))
    assert [e.seq for e in entries] == list(range(entries[0].seq, entries[-1].seq + 1))
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"{dropped} dropped in all" in m for m in messages), messages


async def test_a_redis_restart_in_the_middle_of_a_flood(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    total = 3000
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(client, redis_server.url, batch=100, **FAST)
        async with exporter:
            seen = asyncio.ensure_future(read_all(client, total))
            flooding = asyncio.ensure_future(flood(pbx, 0, total))
            await eventually(lambda: exporter.exported >= 300, "a part is written")
            at_restart = exporter.exported
            await redis_server.restart()
            await flooding
            assert await seen == list(range(total))
            await exporter.wait_flushed(WAIT)
            assert exporter.dropped == 0
            assert exporter.last_error is not None  # the restart was noticed
    assert not flooding.cancelled()
    entries = await stream(redis_server)
    seqs = [e.seq for e in entries]
    # What the empty restarted Redis holds: the batch the kill cut, sent again, and all after.
    assert seqs == list(range(seqs[0], total + 1))
    assert seqs[0] <= at_restart + 101 and seqs[-1] == total
    assert numbers(entries) == [s - 1 for s in seqs]


async def test_a_frozen_redis_never_stalls_the_ami_side_and_resends_what_timed_out(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(
            client, redis_server.url, retry_delay=0.01, max_retry_delay=0.05, timeout=0.2
        )
        async with exporter:
            await flood(pbx, 0, 10)
            await eventually(lambda: exporter.exported == 10, "written")
            redis_server.pause()
            seen = asyncio.ensure_future(read_all(client, 500))
            await flood(pbx, 10, 510)
            assert await seen == list(range(10, 510))
            await client.ping()
            await eventually(lambda: exporter.redis_up is False, "the write timed out")
            redis_server.resume()
            await exporter.wait_flushed(WAIT)
            assert (exporter.exported >= 510, exporter.dropped) == (True, 0)
    entries = await stream(redis_server)
    # A write that timed out may have been carried out once Redis woke: a copy, same seq.
    first: dict[int, StreamEntry] = {}
    for entry in entries:
        first.setdefault(entry.seq, entry)
    assert list(first) == list(range(1, 511))
    assert numbers(list(first.values())) == list(range(510))


async def test_a_redis_that_refuses_the_write_keeps_the_events_until_it_accepts(
    redis_server: RedisServer, pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ami_async.export")
    redis = redis_server.client()
    await redis.set(STREAM, "not a stream")  # XADD answers WRONGTYPE
    async with (
        client_for(pbx) as client,
        RedisStreamExporter(client, redis_server.url, **FAST) as exporter,
    ):
        await flood(pbx, 0, 100)
        await eventually(lambda: exporter.redis_up is False, "refused")
        assert "WRONGTYPE" in (exporter.last_error or "")
        await eventually(lambda: exporter.pending == 100, "all buffered")
        assert exporter.exported == 0
        await redis.delete(STREAM)
        await exporter.wait_flushed(WAIT)
        assert exporter.exported == 100
    assert numbers(await stream(redis_server)) == list(range(100))
    assert any("refused" in r.getMessage() for r in caplog.records)
    await redis.aclose()


async def test_close_writes_what_is_buffered(redis_server: RedisServer, pbx: FakeAsterisk) -> None:
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(client, redis_server.url, **FAST)
        exporter.start()
        redis_server.pause()
        seen = asyncio.ensure_future(read_all(client, 300))
        await flood(pbx, 0, 300)
        await seen  # every event is in the exporter's buffer now
        closing = asyncio.ensure_future(exporter.close(timeout=WAIT))
        await asyncio.sleep(0.05)
        redis_server.resume()
        await closing
        assert (exporter.exported, exporter.dropped, exporter.pending) == (300, 0, 0)
    assert numbers(await stream(redis_server)) == list(range(300))


async def test_close_with_redis_down_reports_the_unwritten_as_dropped(
    redis_server: RedisServer, pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ami_async.export")
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(client, redis_server.url, **FAST)
        exporter.start()
        await redis_server.stop()
        seen = asyncio.ensure_future(read_all(client, 50))
        await flood(pbx, 0, 50)
        await seen
        await asyncio.wait_for(exporter.close(timeout=0.2), WAIT)
        assert (exporter.exported, exporter.dropped, exporter.pending) == (0, 50, 0)
        assert exporter._task is not None and exporter._task.done()
        await exporter.close()  # twice is fine
    assert any("closed with 50 event(s) not written" in r.getMessage() for r in caplog.records)


async def test_cancelling_run_flushes_and_the_source_closing_ends_it(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(client, redis_server.url, **FAST)
        running = asyncio.ensure_future(exporter.run())
        await asyncio.sleep(0)
        seen = asyncio.ensure_future(read_all(client, 100))
        await flood(pbx, 0, 100)
        await seen
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert exporter.exported == 100 and exporter._redis is None
        second = RedisStreamExporter(client, redis_server.url, stream="other", **FAST)
        running = asyncio.ensure_future(second.run())
        await flood(pbx, 100, 110)
        await eventually(lambda: second.exported == 10, "written")
    await asyncio.wait_for(running, WAIT)  # the client closed: run() returns
    assert numbers(await stream(redis_server)) == list(range(100))


async def test_a_fleet_is_exported_each_event_with_its_server(redis_server: RedisServer) -> None:
    async with FakeAsterisk(pbx=False) as a, FakeAsterisk(pbx=False) as b:
        servers = {
            name: {"host": p.host, "port": p.port, "username": "admin", "secret": "amp111"}
            for name, p in (("east", a), ("west", b))
        }
        async with Fleet(servers, ping_interval=None) as fleet:
            consumer = await start_consumer(redis_server, 200)
            async with RedisStreamExporter(fleet, redis_server.url, names=["Seq"]) as exporter:
                seen = fleet.events("Seq")
                for n in range(100):
                    await a.emit("Seq", N=str(n))
                    await b.emit("Seq", N=str(n))
                    await a.emit("Other")
                for _ in range(200):
                    await seen.get(timeout=WAIT)
                await exporter.wait_flushed(WAIT)
                assert exporter.exported == 200
    rows, pending = await consumed(consumer)
    assert pending == 0
    for name in ("east", "west"):
        assert [int(r[2]) for r in rows if r[0] == name] == list(range(100))
    assert {r[1] for r in rows} == {"Seq"}


def test_ami_async_and_its_export_module_import_without_redis() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["redis"] = None  # as if not installed
        import ami_async, ami_async.export, ami_async.cli
        from ami_async.export import RedisStreamExporter
        exporter = RedisStreamExporter(ami_async.Client(username="u", secret="s", name="x"))
        try:
            exporter.start()
        except ImportError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'ami_async[redis]'" in done.stdout, done.stdout


def test_bad_options_are_refused() -> None:
    client = Client(username="u", secret="s", name="x")
    for options in ({"buffer": 0}, {"batch": True}, {"maxlen": -1}, {"timeout": float("nan")}):
        with pytest.raises(ValueError, match=next(iter(options))):
            RedisStreamExporter(client, **options)
    with pytest.raises(ValueError, match="stream"):
        RedisStreamExporter(client, stream="")
    with pytest.raises(TypeError):
        RedisStreamExporter(client, names="Hangup")
    assert "secret" not in repr(RedisStreamExporter(client, "redis://u:secret@h:1/0"))


# -- ami-async export ----------------------------------------------------------------------


async def test_cli_export_writes_a_calls_events_from_the_simulated_pbx(
    cli: Cli, redis_server: RedisServer
) -> None:
    async with FakeAsterisk(time_scale=0.01) as pbx:
        proc = await cli.start(
            "export", "--redis", redis_server.url, "--maxlen", "1000", "-v",
            "--port", str(pbx.port), "--username", "admin", "--secret", "amp111",
        )  # fmt: skip
        await wait_stderr(proc, "connected; exporting")
        async with Client(pbx.host, pbx.port, username="admin", secret="amp111") as ami:
            hangups = ami.events("Hangup")
            await ami.originate("Local/100@test", application="Wait", data="1")
            await hangups.get(timeout=WAIT)
        redis = redis_server.client()
        try:
            await eventually_async(lambda: _has_hangup(redis), "the call's Hangup is in the stream")
        finally:
            await redis.aclose()
        proc.send_signal(signal.SIGINT)
        result = await cli.finish(proc)
    assert result.code == 130, result
    assert re.search(r"note: \d+ event\(s\) exported to ami:events at redis://", result.err)
    assert ", 0 dropped" in result.err
    entries = await stream(redis_server)
    server = f"127.0.0.1:{pbx.port}"
    assert {e.server for e in entries} == {server}
    names = [e.event for e in entries]
    assert names.index("Newchannel") < names.index("Hangup")


async def _has_hangup(redis: Any) -> bool:
    return any(f["event"] == "Hangup" for _, f in await redis.xrange(STREAM))


async def eventually_async(condition: Callable[[], Any], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


async def test_cli_export_from_several_servers_tags_each_entry(
    cli: Cli, redis_server: RedisServer
) -> None:
    async with FakeAsterisk(pbx=False) as a, FakeAsterisk(pbx=False) as b:
        proc = await cli.start(
            "export", "Seq", "--redis", redis_server.url, "--stream", "pbxs", "--duration", "30",
            "--server", f"east=127.0.0.1:{a.port}", "--server", f"west=127.0.0.1:{b.port}",
            "--server", f"gone=127.0.0.1:{free_port()}",
            "--username", "admin", "--secret", "amp111", "-v",
        )  # fmt: skip
        await wait_stderr(proc, "connected to east, west")
        for n in range(20):
            await a.emit("Seq", N=str(n))
            await b.emit("Seq", N=str(n))
        redis = redis_server.client()
        try:
            await eventually_async(
                lambda: _length(redis, "pbxs", 40), "every event is in the stream"
            )
        finally:
            await redis.aclose()
        proc.send_signal(signal.SIGINT)
        result = await cli.finish(proc)
    assert result.code == 130, result
    redis = redis_server.client()
    rows = [decode_entry(f) for _, f in await redis.xrange("pbxs")]
    await redis.aclose()
    for name in ("east", "west"):
        assert [dict(e.headers)["N"] for e in rows if e.server == name] == [
            str(n) for n in range(20)
        ]


async def _length(redis: Any, key: str, wanted: int) -> bool:
    return int(await redis.xlen(key)) >= wanted


async def test_cli_export_fails_early_without_redis_or_its_package(
    cli: Cli, tmp_path: Path
) -> None:
    unreachable = await cli("export", "--fake", "--redis", f"redis://:pw@127.0.0.1:{free_port()}/0")
    assert unreachable.code == 3, unreachable
    assert "cannot reach Redis at redis://127.0.0.1:" in unreachable.err
    assert "pw" not in unreachable.err
    shadow = tmp_path / "shadow" / "redis"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named redis')\n")
    pythonpath = os.pathsep.join([str(shadow.parent), cli.env["PYTHONPATH"]])
    missing = await cli("export", "--fake", env={"PYTHONPATH": pythonpath})
    assert missing.code == 2, missing
    assert "pip install 'ami_async[redis]'" in missing.err
    bad = await cli("export", "--fake", "--redis", "http://x", "--maxlen", "5")
    assert bad.code == 2 and "--redis: expected redis://" in bad.err, bad


async def test_a_client_that_gives_up_ends_run_with_its_events_written_and_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "ami_async.export")
    pbx = FakeAsterisk(pbx=False)
    await pbx.start()
    client = Client(
        pbx.host, pbx.port, username="admin", secret="amp111", ping_interval=None,
        reconnect_delay=0.01, reconnect_max_attempts=1, timeout=1.0,
    )  # fmt: skip
    try:
        await client.connect()
        exporter = RedisStreamExporter(client, redis_server.url, **FAST)
        running = asyncio.ensure_future(exporter.run())
        await asyncio.sleep(0)
        seen = asyncio.ensure_future(read_all(client, 50))
        await flood(pbx, 0, 50)
        await seen
        await pbx.close()  # gone for good: the client gives up after one attempt
        await asyncio.wait_for(running, WAIT)
        assert exporter.exported == 50 and exporter.dropped == 0
        assert any("the event source ended" in r.getMessage() for r in caplog.records)
    finally:
        await client.close()
    assert numbers(await stream(redis_server)) == list(range(50))


async def test_close_cancelled_still_stops_everything_and_start_after_close_is_refused(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    async with client_for(pbx) as client:
        exporter = RedisStreamExporter(client, redis_server.url, **FAST)
        exporter.start()
        exporter.start()  # idempotent
        redis_server.pause()
        seen = asyncio.ensure_future(read_all(client, 20))
        await flood(pbx, 0, 20)
        await seen
        closing = asyncio.ensure_future(exporter.close(timeout=WAIT))
        await asyncio.sleep(0.05)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert exporter._task is not None and exporter._task.done()
        assert exporter._redis is None and exporter.dropped == 20
        with pytest.raises(RuntimeError, match="closed"):
            exporter.start()
        redis_server.resume()


async def test_bytes_that_are_not_utf8_reach_the_consumer_as_escapes_in_valid_json(
    redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    async with (
        client_for(pbx, name="p\xe9") as client,
        RedisStreamExporter(client, redis_server.url) as exporter,
    ):
        seen = client.events("Odd")
        await pbx.send_raw(
            b'Event: Odd\r\nChannel: PJSIP/\xff\xfe-caf\xc3\xa9\r\nNote: a "q" \\ b\r\n\r\n'
        )
        await seen.get(timeout=WAIT)
        await exporter.wait_flushed(WAIT)
    (entry,) = [e for e in await stream(redis_server) if e.event == "Odd"]
    assert entry.server == "p\xe9"
    assert dict(entry.headers) == {
        "Event": "Odd",
        "Channel": "PJSIP/\\xff\\xfe-caf\xe9",
        "Note": 'a "q" \\ b',
    }


async def test_cli_export_drops_past_its_buffer_say_so_and_exit_1(
    cli: Cli, redis_server: RedisServer, pbx: FakeAsterisk
) -> None:
    proc = await cli.start(
        "export", "Seq", "--redis", redis_server.url, "--buffer", "10", "--duration", "3",
        "--timeout", "0.3", "-v",
        "--port", str(pbx.port), "--username", "admin", "--secret", "amp111",
    )  # fmt: skip
    try:
        await wait_stderr(proc, "connected; exporting")
        redis_server.pause()
        await flood(pbx, 0, 200)
        await wait_stderr(proc, "dropped: Redis unreachable and the buffer of 10 full")
    finally:
        redis_server.resume()
    result = await cli.finish(proc)
    assert result.code == 1, result
    match = re.search(
        r"note: (\d+) event\(s\) exported to ami:events at \S+, (\d+) dropped", result.err
    )
    assert match, result.err
    exported, dropped = int(match.group(1)), int(match.group(2))
    assert dropped > 0 and exported + dropped == 200, result.err
    assert "warning: some events were dropped" in result.err
    # A write that timed out while Redis was frozen may have been carried out on its
    # wake as well as sent again: one entry per seq.
    entries = list({e.seq: e for e in await stream(redis_server)}.values())
    assert sum(e.gap for e in entries) == dropped
    assert len(numbers(entries)) == exported
