"""examples/wallboard.py: the live wallboard, in a real headless chromium and over HTTP.

The service runs in this process on 127.0.0.1 (port 0) against the simulated
PBX behind a FakeAsterisk; the browser is Debian's chromium driven over the
DevTools protocol (tests/_chromium.py). Calls are placed with Originate and
ended with Hangup; the test waits (with a bound) until the page shows each
change, never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import _chromium
import pytest
from _waiting import eventually as wait_until

from ami_async import Client
from ami_async.testing import FakeAsterisk

pytest.importorskip("aiohttp")
from aiohttp import ClientSession, web

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "wallboard.py"
WAIT = 15.0  # the bound on every wait in this file
#: Set AMI_WALLBOARD_SHOTS=DIR to keep the screenshots (docs/img/wallboard.png is one of
#: `python examples/wallboard.py --fake`, 15 s in: see docs/live.md).
SHOTS = os.environ.get("AMI_WALLBOARD_SHOTS")


def load_wallboard() -> ModuleType:
    key = "_example_wallboard"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


@pytest.fixture
def wallboard() -> ModuleType:
    return load_wallboard()


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    # Real time: the calls of this test last until it hangs them up.
    async with FakeAsterisk(auth_failure_delay=0.05) as server:
        yield server


def client_for(pbx: FakeAsterisk) -> Client:
    return Client(
        pbx.host, pbx.port, username="admin", secret="amp111", timeout=WAIT, action_timeout=WAIT
    )


@contextlib.asynccontextmanager
async def serve(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """`app` on 127.0.0.1 and `port` (0: a free one); yields its base URL."""
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/"
    finally:
        await runner.cleanup()


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most WAIT seconds) until ``condition()`` holds."""
    await wait_until(condition, what, timeout=WAIT, interval=0.02)


# -- the page ----------------------------------------------------------------------------------


def test_wallboard_page_is_one_self_contained_file(wallboard: ModuleType) -> None:
    page = wallboard.PAGE.read_text(encoding="utf-8")
    # Nothing is fetched from elsewhere (this machine reaches no CDN): no src= or
    # href= at all, no URL but the stream's own relative path.
    assert not re.search(r"\b(src|href)\s*=", page)
    assert not re.search(r"https?://|//[a-z]", page.replace("http://www.w3.org", ""))
    assert 'new EventSource("events")' in page
    # Text from the PBX is placed as text, never parsed as HTML.
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page


# -- in a real browser -------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(
    not _chromium.available(),
    reason=f"chromium is not installed ({_chromium.CHROMIUM}); apt-get install chromium",
)


def row_text(selector: str) -> str:
    """JavaScript: the text of the elements `selector` matches, joined by newlines."""
    return (
        f"Array.from(document.querySelectorAll({json.dumps(selector)}))"
        ".map(e => e.innerText).join('\\n')"
    )


async def shot(page: _chromium.Page, name: str, tmp_path: Path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = await page.screenshot(folder / f"{name}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


async def hang_up_call(client: Client, live: Any, linkedid: str) -> None:
    """Hang up every channel of one call (as the model sees it)."""
    for channel in list(live.calls[linkedid].channels.values()):
        with contextlib.suppress(Exception):  # its other half may have gone first
            await client.hangup(channel.name)


def calls_with_caller(live: Any, number: str) -> list[str]:
    return [c.linkedid for c in live.calls.values() if c.caller.num == number]


@needs_chromium
async def test_wallboard_in_chromium_shows_calls_appear_and_leave(
    wallboard: ModuleType, pbx: FakeAsterisk, tmp_path: Path
) -> None:
    app = wallboard.create_app(lambda: client_for(pbx), keepalive=1.0)
    async with serve(app) as url, client_for(pbx) as caller, _chromium.open_page() as page:
        live = app[wallboard.LIVE]
        await page.navigate(url)
        await page.wait_for("document.body.getAttribute('data-updates')", "its first board", WAIT)
        assert await page.evaluate("document.getElementById('status').textContent") == "live"
        assert "No calls right now" in await page.evaluate(row_text("#calls-body"))

        # A dialled call that is answered: 2010 dials 2011, which answers.
        await caller.originate(
            "Local/2010@test",
            application="Wait",
            data="600",
            caller_id='"Ada Lovelace" <5550001>',
            wait=False,
        )
        text = await page.wait_for(
            f"(t => t.includes('Ada Lovelace') && t.includes('talking') && t)"
            f"({row_text('#calls-body tr[data-call]')})",
            "the answered call",
            WAIT,
        )
        assert "5550001" in text and "2011" in text
        await eventually(lambda: bool(calls_with_caller(live, "5550001")), "the model has it")
        [linkedid] = calls_with_caller(live, "5550001")
        # The duration ticks in the browser, without a message from the server.
        await page.wait_for(
            f"document.querySelector('[data-call=\"{linkedid}\"] [data-since]')"
            ".textContent.trim() >= '0:01'",
            "the duration ticking",
            WAIT,
        )
        # A page opened mid-call is right from its first message.
        async with _chromium.open_page() as late:
            await late.navigate(url)
            await late.wait_for(
                f"!!document.querySelector('[data-call=\"{linkedid}\"]')",
                "the call on a page opened during it",
                WAIT,
            )
        await shot(page, "wallboard-call", tmp_path)

        await hang_up_call(caller, live, linkedid)
        await page.wait_for(
            f"!document.querySelector('[data-call=\"{linkedid}\"]')", "the call leaving", WAIT
        )
        record = await page.wait_for(
            f"(r => r && r.innerText)(document.querySelector('[data-record=\"{linkedid}\"]'))",
            "the call under Recently ended",
            WAIT,
        )
        assert "Ada Lovelace" in record and "ANSWERED" in record
        assert "No calls right now" in await page.evaluate(row_text("#calls-body"))
        assert not page.console, page.console


@needs_chromium
async def test_wallboard_in_chromium_shows_queue_callers_and_members(
    wallboard: ModuleType, pbx: FakeAsterisk, tmp_path: Path
) -> None:
    app = wallboard.create_app(lambda: client_for(pbx), keepalive=1.0)
    async with serve(app) as url, client_for(pbx) as caller, _chromium.open_page() as page:
        live = app[wallboard.LIVE]
        await page.navigate(url)
        # The queues of the lab: support (Alice, paused) and sales.
        members = await page.wait_for(
            row_text("[data-queue=support] [data-member]"), "support's members", WAIT
        )
        assert "paused" in members
        # Support's only agent is paused: a caller waits there until hung up.
        await caller.originate(
            "Local/400@test",
            application="Wait",
            data="600",
            caller_id='"Grace Hopper" <5550002>',
            wait=False,
        )
        waiting = await page.wait_for(
            row_text("[data-queue=support] [data-caller]"), "the caller waiting in support", WAIT
        )
        assert "1. Grace Hopper" in waiting
        assert await page.evaluate("document.getElementById('total-waiting').textContent") == "1"
        # Queue() answered the caller, but nobody talks to them yet.
        await page.wait_for(
            f"({row_text('#calls-body tr[data-call]')}).includes('queued')",
            "the call shown as queued",
            WAIT,
        )
        await shot(page, "wallboard-queue", tmp_path)

        await eventually(lambda: bool(calls_with_caller(live, "5550002")), "the model has it")
        [linkedid] = calls_with_caller(live, "5550002")
        await hang_up_call(caller, live, linkedid)
        await page.wait_for(
            "!document.querySelector('[data-queue=support] [data-caller]')",
            "the caller leaving the queue",
            WAIT,
        )
        assert await page.evaluate("document.getElementById('total-waiting').textContent") == "0"


STATUS = "document.getElementById('status').textContent"


@needs_chromium
async def test_wallboard_page_recovers_when_the_service_restarts(
    wallboard: ModuleType, pbx: FakeAsterisk
) -> None:
    async with client_for(pbx) as caller, _chromium.open_page() as page:
        async with serve(wallboard.create_app(lambda: client_for(pbx))) as url:
            await page.navigate(url)
            await page.wait_for(f"{STATUS} === 'live'", "the page live", WAIT)
        await page.wait_for(f"{STATUS} === 'reconnecting'", "the page noticing", WAIT)
        port = int(url.rsplit(":", 1)[1].strip("/"))
        async with serve(wallboard.create_app(lambda: client_for(pbx)), port):
            # The browser reconnects by itself (retry: 3000) and gets the whole board.
            await page.wait_for(f"{STATUS} === 'live'", "the page live again", WAIT)
            await caller.originate(
                "Local/2010@test",
                application="Wait",
                data="600",
                caller_id='"Ada" <5550007>',
                wait=False,
            )
            await page.wait_for(
                f"({row_text('#calls-body tr[data-call]')}).includes('5550007')",
                "a new call on the page",
                WAIT,
            )
        assert not page.console, page.console


PARTICIPANTS = '[data-conference="1234"] [data-participant]'


@needs_chromium
async def test_wallboard_in_chromium_shows_conference_participants_join_and_leave(
    wallboard: ModuleType, pbx: FakeAsterisk
) -> None:
    app = wallboard.create_app(lambda: client_for(pbx), keepalive=1.0)
    async with serve(app) as url, client_for(pbx) as caller, _chromium.open_page() as page:
        live = app[wallboard.LIVE]
        await page.navigate(url)
        await page.wait_for("document.body.getAttribute('data-updates')", "its first board", WAIT)
        assert "No conferences" in await page.evaluate(row_text("#conferences-body"))
        # 300 answers and runs ConfBridge(1234): two callers meet there.
        for caller_id in ('"Ada" <5550005>', '"Grace" <5550006>'):
            await caller.originate(
                "Local/300@test", application="Wait", data="600", caller_id=caller_id
            )
        text = await page.wait_for(
            f"(t => t.includes('Ada') && t.includes('Grace') && t)({row_text(PARTICIPANTS)})",
            "both participants",
            WAIT,
        )
        assert "unknown" not in text
        assert await page.evaluate("document.getElementById('total-conf').textContent") == "2"
        assert (await page.evaluate(row_text("#calls-body tr[data-call]"))).count("conference") == 2

        [ada] = calls_with_caller(live, "5550005")
        await hang_up_call(caller, live, ada)
        await page.wait_for(
            f"!({row_text('[data-conference] [data-participant]')}).includes('Ada')",
            "Ada leaving the conference",
            WAIT,
        )
        assert await page.evaluate("document.getElementById('total-conf').textContent") == "1"
        [grace] = calls_with_caller(live, "5550006")
        await hang_up_call(caller, live, grace)
        await page.wait_for(
            "!document.querySelector('[data-conference]')", "the conference ending", WAIT
        )
        await page.wait_for(
            "!document.querySelector('#calls-body tr[data-call]')", "the calls leaving", WAIT
        )
        assert not page.console, page.console


# -- over HTTP ---------------------------------------------------------------------------------


async def read_state(body: Any) -> dict[str, Any]:
    """The next `event: state` of an SSE body (skipping comments and `retry:`)."""
    event = None
    while True:
        line = (await asyncio.wait_for(body.readline(), WAIT)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "state":
            result: dict[str, Any] = json.loads(line[6:])
            return result


async def test_wallboard_streams_the_board_at_once_and_after_changes(
    wallboard: ModuleType, pbx: FakeAsterisk
) -> None:
    app = wallboard.create_app(lambda: client_for(pbx), keepalive=0.2)
    async with serve(app) as url, client_for(pbx) as caller, ClientSession() as http:
        async with http.get(url + "events") as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = await read_state(stream.content)
            assert first["calls"] == [] and first["synced"] is True
            assert {q["name"] for q in first["queues"]} >= {"support", "sales"}
            await caller.originate(
                "Local/2010@test",
                application="Wait",
                data="600",
                caller_id='"Ada" <5550003>',
                wait=False,
            )
            while True:  # boards until one shows the call answered
                board = await read_state(stream.content)
                calls = [c for c in board["calls"] if c["caller"]["number"] == "5550003"]
                if calls and calls[0]["state"] == "talking":
                    break
            assert calls[0]["callee"]["number"] == "2011"
            assert calls[0]["answered"] >= calls[0]["started"]
        async with http.get(url + "state") as answer:
            assert (await answer.json())["calls"][0]["id"] == calls[0]["id"]
        async with http.get(url + "health") as answer:
            assert answer.status == 200
        async with http.get(url) as answer:
            assert answer.headers["Content-Type"].startswith("text/html")
            assert "default-src 'self'" in answer.headers["Content-Security-Policy"]


async def test_wallboard_streams_end_when_their_browsers_go(
    wallboard: ModuleType, pbx: FakeAsterisk
) -> None:
    app = wallboard.create_app(lambda: client_for(pbx), keepalive=60.0)
    async with serve(app) as url:
        for _ in range(3):  # many browsers come and go, again and again
            async with ClientSession() as http:
                streams = [await http.get(url + "events") for _ in range(20)]
                for stream in streams:
                    await read_state(stream.content)
                assert len(app[wallboard.STREAMS]) == 20
                for stream in streams:
                    stream.close()
            # No change and no keepalive is due: the handlers notice by themselves.
            await eventually(lambda: not app[wallboard.STREAMS], "every stream ended")


async def test_wallboard_says_resyncing_while_asterisk_restarts(
    wallboard: ModuleType, pbx: FakeAsterisk
) -> None:
    pbx.pbx.add_extension("test", "7000", "Answer")
    pbx.pbx.add_extension("test", "7000", "Wait", "600")
    app = wallboard.create_app(lambda: client_for(pbx), keepalive=60.0)
    async with serve(app) as url, client_for(pbx) as caller, ClientSession() as http:
        async with http.get(url + "events") as stream:
            assert (await read_state(stream.content))["synced"] is True
            await caller.originate("Local/7000@test", application="Wait", data="600")
            while not (await read_state(stream.content))["calls"]:
                pass
            restart = asyncio.ensure_future(pbx.restart(down=1.5))
            boards = []
            while not boards or boards[-1]["synced"] is False or len(boards) < 2:
                boards.append(await read_state(stream.content))
            await restart
            # The link went down (the page says so), then the model resynced; the
            # call Asterisk ended on its way down is gone.
            assert any(b["synced"] is False for b in boards)
            assert boards[-1]["synced"] is True and boards[-1]["calls"] == []
        async with http.get(url + "health") as answer:
            assert answer.status == 200
