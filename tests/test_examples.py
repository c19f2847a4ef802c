"""The examples in examples/ run: each is exercised against a FakeAsterisk on 127.0.0.1.

The examples are loaded by path (examples/ is not a package). Calls run on the
simulated PBX behind FakeAsterisk (``pbx``); where a test needs exact control of
the events (their order, a stream's content) it uses the fake without the PBX
(``bare``) and emits them itself, with the headers a real Asterisk 22 sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _fixtures import FIXTURES
from _waiting import eventually as wait_until

from ami_async import Client, Event, Message, Parser
from ami_async.testing import FakeAsterisk, FakeSession, make_response, with_action_id

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WAIT = 5.0  # the bound on every wait in this file


def load_example(name: str, *needs: str) -> ModuleType:
    """Import examples/<name>.py (skipping the test if a framework it needs is missing)."""
    for framework in needs:
        pytest.importorskip(framework)
    key = f"_example_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # pydantic resolves the annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def pbx() -> AsyncIterator[FakeAsterisk]:
    """The simulated PBX, its clock 100 times faster (Wait(1) lasts 10 ms)."""
    async with FakeAsterisk(auth_failure_delay=0.05, time_scale=0.01) as server:
        yield server


def add_long_call(pbx: FakeAsterisk, exten: str = "700") -> str:
    """An extension of [test] that answers and stays up (100 hangs up after Wait(2))."""
    pbx.pbx.add_extension("test", exten, "Answer")
    pbx.pbx.add_extension("test", exten, "Wait", "100000")
    return f"Local/{exten}@test"


@pytest.fixture
async def bare() -> AsyncIterator[FakeAsterisk]:
    """The fake without a PBX behind it: only the events a test emits."""
    async with FakeAsterisk(auth_failure_delay=0.05, pbx=False) as server:
        yield server


def client_for(pbx: FakeAsterisk, **options: Any) -> Client:
    settings: dict[str, Any] = {"ping_interval": None, "timeout": WAIT, "action_timeout": WAIT}
    settings.update(options)
    return Client(pbx.host, pbx.port, username="admin", secret="amp111", **settings)


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most WAIT seconds) until ``condition()`` holds."""
    await wait_until(condition, what, timeout=WAIT)


def hangup_headers(channel: str, uniqueid: str, linkedid: str, cause: int = 16) -> dict[str, str]:
    """A Hangup as Asterisk 22 sends it (asterisk-22/originate_async.bin)."""
    causes = {16: "Normal Clearing", 17: "User busy", 0: "Unknown"}
    return {
        "Privilege": "call,all",
        "Channel": channel,
        "ChannelState": "6",
        "ChannelStateDesc": "Up",
        "CallerIDNum": "<unknown>",
        "CallerIDName": "<unknown>",
        "ConnectedLineNum": "<unknown>",
        "ConnectedLineName": "<unknown>",
        "Language": "en",
        "AccountCode": "",
        "Context": "test",
        "Exten": "100",
        "Priority": "1",
        "Uniqueid": uniqueid,
        "Linkedid": linkedid,
        "Cause": str(cause),
        "Cause-txt": causes[cause],
    }


# -- FastAPI ---------------------------------------------------------------------------------


class ASGIStream:
    """Drive one streaming GET through an ASGI app and read it chunk by chunk.

    httpx's ASGITransport gathers the whole body before returning (httpx 0.28,
    ``_transports/asgi.py``), so an endless event stream cannot be read through
    it; this speaks ASGI directly, and ends the request the way a server does
    when the browser goes away (``http.disconnect``).
    """

    def __init__(self, app: Any, path: str, query: str = "") -> None:
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"test"), (b"accept", b"text/event-stream")],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
        }
        self.app = app
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.requested = False
        self.buffer = ""
        self.ended = False
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> dict[str, Any]:
        if not self.requested:
            self.requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        await self.messages.put(message)

    async def start(self) -> tuple[int, dict[str, str]]:
        self.task = asyncio.ensure_future(self.app(self.scope, self.receive, self.send))
        message = await asyncio.wait_for(self.messages.get(), WAIT)
        assert message["type"] == "http.response.start", message
        headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        return message["status"], headers

    async def block(self) -> str | None:
        """The next SSE block (up to its blank line), or None once the body ended."""
        while "\n\n" not in self.buffer:
            if self.ended:
                return None
            message = await asyncio.wait_for(self.messages.get(), WAIT)
            assert message["type"] == "http.response.body", message
            self.buffer += message.get("body", b"").decode()
            self.ended = not message.get("more_body", False)
        block, self.buffer = self.buffer.split("\n\n", 1)
        return block

    async def data(self) -> dict[str, Any]:
        """The JSON of the next ``data:`` block, skipping comments."""
        while True:
            block = await self.block()
            assert block is not None, "the stream ended"
            lines = [line for line in block.split("\n") if not line.startswith(":")]
            if lines:
                assert lines[0].startswith("data: "), block
                result: dict[str, Any] = json.loads(lines[0][len("data: ") :])
                return result

    async def disconnect(self) -> None:
        """The browser goes away; wait for the app to finish the request."""
        self.gone.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, WAIT)


@pytest.fixture
def fastapi_example() -> ModuleType:
    return load_example("fastapi_app", "fastapi", "httpx")


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[Any]:
    """Run the app's lifespan (ASGITransport does not) and yield an httpx client for it."""
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


async def test_fastapi_lifespan_owns_one_client(
    fastapi_example: ModuleType, pbx: FakeAsterisk
) -> None:
    made: list[Client] = []

    def factory() -> Client:
        made.append(client_for(pbx))
        return made[-1]

    app = fastapi_example.create_app(factory)
    async with running(app) as http:
        assert len(made) == 1 and made[0].connected
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json()["connected"] is True
        assert health.json()["ami_version"] == "11.0.0"
        # Concurrent requests share the one connection.
        answers = await asyncio.gather(*(http.get("/channels") for _ in range(5)))
        assert {a.status_code for a in answers} == {200}
        assert len(pbx.sessions) == 1
    assert made[0].closed
    assert pbx.actions[-1]["Action"] == "Logoff"


async def test_fastapi_post_calls_originates_and_returns_the_outcome(
    fastapi_example: ModuleType, pbx: FakeAsterisk
) -> None:
    app = fastapi_example.create_app(lambda: client_for(pbx))
    async with running(app) as http:
        body = {
            "channel": "Local/100@test",
            "application": "Wait",
            "data": "1",
            "variables": {"CALL_ID": "42"},
            "caller_id": '"Lab" <1000>',
            "timeout": 20,
        }
        answer = await http.post("/calls", json=body)
        assert answer.status_code == 200, answer.text
        call = answer.json()
        assert call["success"] is True
        assert call["reason"] == 4
        assert call["reason_text"] == "answered"
        assert call["uniqueid"]
        assert call["channel"].startswith("Local/100@test-")

        sent = await pbx.wait_for_action("Originate", timeout=WAIT)
        assert sent["Channel"] == "Local/100@test"
        assert sent["Application"] == "Wait"
        assert sent["Timeout"] == "20000"  # seconds in the API, milliseconds on the wire
        assert sent["Variable"] == "CALL_ID=42"
        assert sent["CallerID"] == '"Lab" <1000>'

        # While a call is up, /channels lists its channels (the simulated PBX's).
        long_call = await http.post(
            "/calls", json={**body, "channel": add_long_call(pbx), "data": "100000"}
        )
        up = long_call.json()["channel"]
        channels = (await http.get("/channels")).json()
        assert up in [c["Channel"] for c in channels]
        assert all(c["Event"] == "CoreShowChannel" for c in channels)

        # Local/999@test cannot be created: the call fails (originate_fail_async.bin).
        failed = await http.post("/calls", json={**body, "channel": "Local/999@test"})
        assert failed.status_code == 200  # the call failed, the request did not
        assert failed.json()["success"] is False
        assert failed.json()["reason"] == 0
        # An extension the dialplan lacks: Asterisk refuses the action itself.
        nowhere = {"channel": "Local/100@test", "context": "test", "exten": "12345"}
        refused = await http.post("/calls", json=nowhere)
        assert refused.status_code == 502
        assert refused.json() == {"detail": "Extension does not exist."}


async def test_fastapi_post_calls_validates_its_body(
    fastapi_example: ModuleType, pbx: FakeAsterisk
) -> None:
    app = fastapi_example.create_app(lambda: client_for(pbx))
    async with running(app) as http:
        both = {"channel": "PJSIP/100", "application": "Wait", "exten": "100", "context": "x"}
        neither = {"channel": "PJSIP/100"}
        no_context = {"channel": "PJSIP/100", "exten": "100"}
        for body in (both, neither, no_context):
            assert (await http.post("/calls", json=body)).status_code == 422
        # A caller ID that tries to smuggle in a second action is refused unsent.
        injected = {
            "channel": "PJSIP/100",
            "application": "Wait",
            "caller_id": "x\r\nAction: Hangup",
        }
        answer = await http.post("/calls", json=injected)
        assert answer.status_code == 422
        assert not [a for a in pbx.actions if a.get("Action") == "Originate"]


async def test_fastapi_maps_ami_errors_to_http_statuses(
    fastapi_example: ModuleType, pbx: FakeAsterisk
) -> None:
    # What Asterisk 22 answers an Originate to a channel it cannot create
    # (asterisk-22/originate_bad_channel.bin).
    pbx.script("Originate", {"Response": "Error", "Message": "Originate failed"})
    pbx.script("CoreShowChannels")  # never answered
    app = fastapi_example.create_app(
        lambda: client_for(pbx, action_timeout=0.2, reconnect_delay=60.0)
    )
    call = {"channel": "PJSIP/nobody", "context": "from-internal", "exten": "100"}
    async with running(app) as http:
        refused = await http.post("/calls", json=call)
        assert refused.status_code == 502
        assert refused.json() == {"detail": "Originate failed"}

        slow = await http.get("/channels")
        assert slow.status_code == 504

        lost = asyncio.Event()
        app.state.ami.add_disconnect_hook(lambda client, exc: lost.set())
        await pbx.drop()
        await asyncio.wait_for(lost.wait(), WAIT)
        down = await http.post("/calls", json=call)
        assert down.status_code == 503
        assert down.headers["retry-after"] == "5"
        health = await http.get("/health")
        assert health.status_code == 503
        assert health.json()["connected"] is False


async def test_fastapi_events_streams_sse_per_request(
    fastapi_example: ModuleType, bare: FakeAsterisk
) -> None:
    app = fastapi_example.create_app(lambda: client_for(bare))
    async with running(app) as http:
        assert (await http.get("/events", params={"name": ""})).status_code == 422
        hangups = ASGIStream(app, "/events", "name=Hangup")
        everything = ASGIStream(app, "/events")
        status, headers = await hangups.start()
        assert status == 200
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"] == "no-cache"
        await everything.start()
        # The first block says the subscription exists: from here nothing is missed.
        assert (await hangups.block() or "").startswith("retry: 3000")
        assert (await everything.block() or "").startswith("retry: 3000")
        assert app.state.event_streams == 2

        await bare.emit("Newchannel", {"Privilege": "call,all", "Channel": "PJSIP/100-00000001"})
        first = hangup_headers("PJSIP/100-00000001", "1795772543.4", "1795772543.4")
        await bare.emit("Hangup", first)
        await bare.emit("Hangup", hangup_headers("PJSIP/200-00000002", "1795772543.5", "1.5", 17))

        one, two = await hangups.data(), await hangups.data()
        assert (one["Event"], one["Channel"], one["Cause-txt"]) == (
            "Hangup",
            "PJSIP/100-00000001",
            "Normal Clearing",
        )
        assert (two["Channel"], two["Cause"]) == ("PJSIP/200-00000002", "17")
        names = [(await everything.data())["Event"] for _ in range(3)]
        assert names == ["Newchannel", "Hangup", "Hangup"]

        # The browser leaves: its subscription is closed with the request.
        await hangups.disconnect()
        await eventually(lambda: app.state.event_streams == 1, "one stream is left")
        await bare.emit("Hangup", first)
        assert (await everything.data())["Event"] == "Hangup"
        await everything.disconnect()
        await eventually(lambda: app.state.event_streams == 0, "no stream is left")


async def test_fastapi_events_stream_ends_at_shutdown(
    fastapi_example: ModuleType, pbx: FakeAsterisk
) -> None:
    app = fastapi_example.create_app(lambda: client_for(pbx), keepalive=0.01)
    async with running(app):
        stream = ASGIStream(app, "/events")
        await stream.start()
        assert (await stream.block() or "").startswith("retry:")
        assert await stream.block() == ": keepalive"  # an idle stream stays alive
    # Closing the client (the lifespan's exit) ended the stream: the body is complete.
    while (await stream.block()) is not None:
        pass
    assert stream.ended
    assert stream.task is not None
    await asyncio.wait_for(stream.task, WAIT)


# -- aiohttp ----------------------------------------------------------------------------------


@pytest.fixture
def aiohttp_example() -> ModuleType:
    return load_example("aiohttp_app", "aiohttp")


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[Any]:
    """Run the app on 127.0.0.1, a free port (cleanup_ctx included), with a test client."""
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as http:
        yield http


async def next_sse_data(stream: Any) -> dict[str, Any]:
    """The JSON of the next ``data:`` block of an aiohttp response body, skipping comments."""
    while True:
        block = await asyncio.wait_for(stream.readuntil(b"\n\n"), WAIT)
        lines = [line for line in block.decode().split("\n") if line and not line.startswith(":")]
        if lines:
            assert lines[0].startswith("data: "), block
            result: dict[str, Any] = json.loads(lines[0][len("data: ") :])
            return result


async def test_aiohttp_cleanup_ctx_owns_one_client(
    aiohttp_example: ModuleType, pbx: FakeAsterisk
) -> None:
    made: list[Client] = []

    def factory() -> Client:
        made.append(client_for(pbx))
        return made[-1]

    app = aiohttp_example.create_app(factory)
    async with serving(app) as http:
        assert len(made) == 1 and made[0].connected
        health = await http.get("/health")
        assert health.status == 200
        assert (await health.json())["connected"] is True
        answers = await asyncio.gather(*(http.get("/channels") for _ in range(5)))
        assert {a.status for a in answers} == {200}
        assert await answers[0].json() == []  # the fake has no channels
        assert len(pbx.sessions) == 1
    assert made[0].closed
    assert pbx.actions[-1]["Action"] == "Logoff"


async def test_aiohttp_post_calls(aiohttp_example: ModuleType, pbx: FakeAsterisk) -> None:
    app = aiohttp_example.create_app(lambda: client_for(pbx))
    async with serving(app) as http:
        body = {
            "channel": "Local/100@test",
            "context": "test",
            "exten": "100",
            "variables": {"CALL_ID": "42"},
            "timeout": 15,
        }
        answer = await http.post("/calls", json=body)
        assert answer.status == 200, await answer.text()
        call = await answer.json()
        assert (call["success"], call["reason"], call["reason_text"]) == (True, 4, "answered")
        assert call["uniqueid"]
        sent = await pbx.wait_for_action("Originate", timeout=WAIT)
        assert (sent["Context"], sent["Exten"], sent["Priority"]) == ("test", "100", "1")
        assert sent["Timeout"] == "15000"

        failed = await http.post("/calls", json={**body, "channel": "Local/999@test"})
        assert failed.status == 200, await failed.text()
        assert (await failed.json())["success"] is False
        refused = await http.post("/calls", json={**body, "exten": "12345"})
        assert refused.status == 502
        assert await refused.json() == {"detail": "Extension does not exist."}

        for bad in (
            {"channel": "PJSIP/100"},
            {"channel": "PJSIP/100", "application": "Wait", "exten": "1", "context": "x"},
            {"channel": "PJSIP/100", "exten": "100"},
            {"channel": "PJSIP/100", "application": "Wait", "timeout": "soon"},
            {"channel": "PJSIP/100", "application": "Wait", "variables": {"A": 1}},
            {"channel": "PJSIP/100", "application": "Wait", "colour": "blue"},
            ["PJSIP/100"],
        ):
            answer = await http.post("/calls", json=bad)
            assert answer.status == 422, bad
            assert (await answer.json())["detail"]
        not_json = await http.post(
            "/calls", data=b"{", headers={"Content-Type": "application/json"}
        )
        assert not_json.status == 422
        injected = {"channel": "PJSIP/100", "application": "Wait", "caller_id": "x\nAction: Hangup"}
        assert (await http.post("/calls", json=injected)).status == 422
        assert len([a for a in pbx.actions if a.get("Action") == "Originate"]) == 3


async def test_aiohttp_maps_ami_errors_to_http_statuses(
    aiohttp_example: ModuleType, pbx: FakeAsterisk
) -> None:
    pbx.script("Originate", {"Response": "Error", "Message": "Originate failed"})
    pbx.script("CoreShowChannels")  # never answered
    app = aiohttp_example.create_app(
        lambda: client_for(pbx, action_timeout=0.2, reconnect_delay=60.0)
    )
    call = {"channel": "PJSIP/nobody", "application": "Playback", "data": "hello-world"}
    async with serving(app) as http:
        refused = await http.post("/calls", json=call)
        assert refused.status == 502
        assert await refused.json() == {"detail": "Originate failed"}
        assert (await http.get("/channels")).status == 504

        lost = asyncio.Event()
        app[aiohttp_example.AMI].add_disconnect_hook(lambda client, exc: lost.set())
        await pbx.drop()
        await asyncio.wait_for(lost.wait(), WAIT)
        down = await http.post("/calls", json=call)
        assert down.status == 503
        assert down.headers["Retry-After"] == "5"
        health = await http.get("/health")
        assert health.status == 503
        assert (await health.json())["connected"] is False


async def test_aiohttp_events_streams_sse_per_request(
    aiohttp_example: ModuleType, bare: FakeAsterisk
) -> None:
    app = aiohttp_example.create_app(lambda: client_for(bare))
    streams = app[aiohttp_example.STREAMS]
    async with serving(app) as http:
        assert (await http.get("/events", params={"name": ""})).status == 422
        hangups = await http.get("/events", params={"name": "Hangup"})
        everything = await http.get("/events")
        assert hangups.status == 200
        assert hangups.headers["Content-Type"] == "text/event-stream"
        assert hangups.headers["Cache-Control"] == "no-cache"
        # The first block says the subscription exists: from here nothing is missed.
        for response in (hangups, everything):
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), WAIT)
            assert first.startswith(b"retry: 3000\n")
        assert len(streams) == 2

        await bare.emit("Newchannel", {"Privilege": "call,all", "Channel": "PJSIP/100-00000001"})
        await bare.emit("Hangup", hangup_headers("PJSIP/100-00000001", "1795772543.4", "1.4"))
        await bare.emit("Hangup", hangup_headers("PJSIP/200-00000002", "1795772543.5", "1.5", 17))
        one = await next_sse_data(hangups.content)
        two = await next_sse_data(hangups.content)
        assert (one["Channel"], one["Cause-txt"]) == ("PJSIP/100-00000001", "Normal Clearing")
        assert (two["Channel"], two["Cause-txt"]) == ("PJSIP/200-00000002", "User busy")
        names = [(await next_sse_data(everything.content))["Event"] for _ in range(3)]
        assert names == ["Newchannel", "Hangup", "Hangup"]

        hangups.close()  # the browser leaves: its subscription goes with the request
        await eventually(lambda: len(streams) == 1, "one stream is left")
        await bare.emit("Hangup", hangup_headers("PJSIP/300-00000003", "1795772543.6", "1.6"))
        assert (await next_sse_data(everything.content))["Channel"] == "PJSIP/300-00000003"
        everything.close()
        await eventually(lambda: not streams, "no stream is left")


async def test_aiohttp_events_notices_a_vanished_browser_without_handler_cancellation(
    aiohttp_example: ModuleType, pbx: FakeAsterisk
) -> None:
    # The test server cancels a handler whose client left; web.run_app does not
    # (handler_cancellation=False): there the keepalive write finds the browser gone.
    import aiohttp
    from aiohttp import web

    app = aiohttp_example.create_app(lambda: client_for(pbx), keepalive=0.01)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        async with aiohttp.ClientSession() as http:
            stream = await http.get(f"http://127.0.0.1:{port}/events")
            await asyncio.wait_for(stream.content.readuntil(b"\n\n"), WAIT)
            assert len(app[aiohttp_example.STREAMS]) == 1
            stream.close()
            await eventually(lambda: not app[aiohttp_example.STREAMS], "the stream is closed")
    finally:
        await asyncio.wait_for(runner.cleanup(), WAIT)


async def test_aiohttp_shutdown_ends_open_event_streams(
    aiohttp_example: ModuleType, pbx: FakeAsterisk
) -> None:
    app = aiohttp_example.create_app(lambda: client_for(pbx), keepalive=0.01)
    async with serving(app) as http:
        stream = await http.get("/events")
        assert (await asyncio.wait_for(stream.content.readuntil(b"\n\n"), WAIT)).startswith(
            b"retry:"
        )
        keepalive = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), WAIT)
        assert keepalive == b": keepalive\n\n"  # an idle stream stays alive
        # Shutting the server down while a browser is still reading: on_shutdown
        # ends the stream, so shutdown does not wait for it (aiohttp would wait
        # up to its 60 s shutdown_timeout).
        await asyncio.wait_for(http.server.close(), WAIT)
        rest = await asyncio.wait_for(stream.content.read(), WAIT)
        assert rest.endswith(b"\n\n") or rest == b""
        assert not app[aiohttp_example.STREAMS]
        client = app[aiohttp_example.AMI]
        assert client.closed


# -- click_to_call ----------------------------------------------------------------------------


@pytest.fixture
def click_to_call() -> ModuleType:
    return load_example("click_to_call")


def c2c_args(pbx: FakeAsterisk, *args: str) -> list[str]:
    login = ["--host", pbx.host, "--port", str(pbx.port), "--username", "admin"]
    return [*args, *login, "--secret", "amp111"]


async def run_main(module: ModuleType, argv: Sequence[str]) -> int:
    code: int = await asyncio.wait_for(module.main(argv), WAIT)
    return code


async def test_click_to_call_places_a_call_on_the_simulated_pbx(
    click_to_call: ModuleType, pbx: FakeAsterisk, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = c2c_args(pbx, "Local/100@test", "--app", "Wait", "--data", "1", "--caller-id", "1000")
    assert await run_main(click_to_call, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "calling Local/100@test, then Wait(1) ..."
    assert lines[1].startswith("answered on Local/100@test-")
    assert "(Uniqueid c2c-" in lines[1]  # the Uniqueid the script chose (ChannelId)
    channel = lines[1].split()[2]
    assert lines[-1].startswith(f"{channel} hung up after ")
    originate = pbx.actions[1]
    assert (originate["Action"], originate["CallerID"]) == ("Originate", "1000")


async def test_click_to_call_waits_for_the_hangup_of_its_call(
    click_to_call: ModuleType, bare: FakeAsterisk, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = c2c_args(bare, "Local/100@test", "--app", "Wait", "--data", "1", "--var", "A=b")
    task = asyncio.ensure_future(run_main(click_to_call, argv))
    originate = await bare.wait_for_action("Originate", timeout=WAIT)
    uniqueid = originate["ChannelId"]  # the script chose the channel's Uniqueid
    assert uniqueid.startswith("c2c-")
    assert originate["Variable"] == "A=b"
    # Someone else's call ends first: not ours, so the script keeps waiting.
    await bare.emit("Hangup", hangup_headers("PJSIP/300-00000001", "1795772500.1", "1795772500.1"))
    # The far half of the Local channel (same Linkedid), then the call's own channel.
    await bare.emit("Hangup", hangup_headers("Local/100@test-00000001;2", "c2c-other", uniqueid))
    await bare.emit("Hangup", hangup_headers("Local/100@test-00000001;1", uniqueid, uniqueid))
    assert await asyncio.wait_for(task, WAIT) == 0
    out = capsys.readouterr().out
    assert "answered on Local/100@test-" in out
    assert "Local/100@test-00000001;2 hung up (Normal Clearing)" in out
    assert "Local/100@test-00000001;1 hung up after" in out
    assert "Normal Clearing (cause 16)" in out
    assert "PJSIP/300" not in out


async def test_click_to_call_sees_a_hangup_that_comes_before_the_originate_answer(
    click_to_call: ModuleType, bare: FakeAsterisk, capsys: pytest.CaptureFixture[str]
) -> None:
    # A call that ends at once: its Hangup is on the wire before the response and
    # the OriginateResponse. Subscribing before originating is what keeps it.
    async def originate(session: FakeSession, action: Message) -> None:
        uniqueid = action["ChannelId"]
        channel = "PJSIP/100-0000002a"
        await bare.emit("Hangup", hangup_headers(channel, uniqueid, uniqueid, cause=17))
        await session.send(
            make_response(action, "Success", Message="Originate successfully queued")
        )
        response = [
            ("Event", "OriginateResponse"),
            ("Privilege", "call,all"),
            ("Response", "Success"),
            ("Channel", channel),
            ("Context", "from-internal"),
            ("Exten", "200"),
            ("Reason", "4"),
            ("Uniqueid", uniqueid),
            ("CallerIDNum", "<unknown>"),
            ("CallerIDName", "<unknown>"),
        ]
        await session.send(with_action_id(action, response))

    bare.on_action("Originate", originate)
    code = await run_main(click_to_call, c2c_args(bare, "PJSIP/100", "200@from-internal"))
    assert code == 0
    out = capsys.readouterr().out
    assert "PJSIP/100-0000002a hung up after" in out
    assert "User busy (cause 17)" in out
    sent = bare.actions[1]
    assert (sent["Action"], sent["Context"], sent["Exten"]) == ("Originate", "from-internal", "200")


async def test_click_to_call_exit_statuses(
    click_to_call: ModuleType, pbx: FakeAsterisk, capsys: pytest.CaptureFixture[str]
) -> None:
    # A channel that cannot be created (Local/999@test, as in originate_fail_async.bin).
    assert await run_main(click_to_call, c2c_args(pbx, "Local/999@test", "--app", "Wait")) == 1
    assert "the call failed: failed" in capsys.readouterr().out
    # Answered, and still up when --max-duration runs out.
    long_call = add_long_call(pbx)
    argv = c2c_args(pbx, long_call, "--app", "Wait", "--data", "100000", "--max-duration", "0.05")
    assert await run_main(click_to_call, argv) == 4
    assert "still up after 0.05 s" in capsys.readouterr().out
    # Login refused.
    bad_login = [*c2c_args(pbx, "PJSIP/100", "--app", "Wait")[:-1], "wrong"]
    assert await run_main(click_to_call, bad_login) == 3
    assert "login refused" in capsys.readouterr().err
    # Usage errors: no destination, or both kinds of destination, or no credentials.
    assert await run_main(click_to_call, c2c_args(pbx, "PJSIP/100")) == 2
    assert await run_main(click_to_call, c2c_args(pbx, "PJSIP/100", "1@x", "--app", "Wait")) == 2
    assert await run_main(click_to_call, ["PJSIP/100", "200"]) == 2


async def test_click_to_call_reports_a_refused_originate(
    click_to_call: ModuleType, pbx: FakeAsterisk, capsys: pytest.CaptureFixture[str]
) -> None:
    pbx.script("Originate", {"Response": "Error", "Message": "Originate failed"})
    assert await run_main(click_to_call, c2c_args(pbx, "PJSIP/nobody", "200@x")) == 1
    assert "Asterisk refused the call: Originate failed" in capsys.readouterr().err


async def test_click_to_call_fake_runs_an_embedded_pbx(
    click_to_call: ModuleType, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AMI_HOST", "AMI_PORT", "AMI_USERNAME", "AMI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    assert await run_main(click_to_call, ["Local/999@test", "--app", "Wait", "--fake"]) == 1
    assert "the call failed" in capsys.readouterr().out


# -- queue_wallboard ---------------------------------------------------------------------------


@pytest.fixture
def wallboard() -> ModuleType:
    return load_example("queue_wallboard")


def recorded(name: str) -> list[Message]:
    """The messages of a real Asterisk 22 capture."""
    parser = Parser()
    return parser.feed((FIXTURES / "asterisk-22" / name).read_bytes())


def queue_status_items(action_id: str = "queue-3") -> list[Event]:
    """The items of the QueueStatus answer recorded in queue.bin (ActionID queue-3)."""
    return [
        m
        for m in recorded("queue.bin")
        if isinstance(m, Event) and m.get("ActionID") == action_id and "EventList" not in m
    ]


def rows(board: Any) -> dict[str, tuple[int, ...]]:
    return {name: queue.row() for name, queue in board.queues.items()}


def test_wallboard_seeds_from_a_real_queue_status(wallboard: ModuleType) -> None:
    board = wallboard.WallBoard()
    items = queue_status_items()
    assert [i.name for i in items] == [
        "QueueParams",
        "QueueMember",
        "QueueEntry",
        "QueueParams",
        "QueueMember",
    ]
    board.load(items)
    # support: one caller waiting, Alice paused; sales: Bob available.
    #                   waiting, available, busy, paused, unavailable
    assert rows(board) == {"support": (1, 0, 0, 1, 0), "sales": (0, 1, 0, 0, 0)}
    assert board.render().splitlines() == [
        "queue    waiting  available  busy  paused  unavailable",
        "sales          0          1     0       0            0",
        "support        1          0     0       1            0",
    ]
    # The QueueCallerJoin recorded before that QueueStatus is the same caller: no change.
    join = next(m for m in recorded("queue.bin") if m.get("Event") == "QueueCallerJoin")
    assert board.apply(join) is False
    board.load([])
    assert board.queues == {}


def test_wallboard_follows_a_real_answered_queue_call(wallboard: ModuleType) -> None:
    """queue_sales_answered.bin: a caller joins sales, Bob answers, the call ends."""
    board = wallboard.WallBoard()
    board.load(queue_status_items())
    changes = []
    events = [m for m in recorded("queue_sales_answered.bin") if isinstance(m, Event)]
    for event in events:
        if board.apply(event):
            changes.append((event.name, board.queues["sales"].row()))
    assert changes == [
        ("QueueCallerJoin", (1, 1, 0, 0, 0)),  # waiting; Bob still free
        ("QueueCallerLeave", (0, 1, 0, 0, 0)),  # connected to Bob
        ("QueueMemberStatus", (0, 0, 1, 0, 0)),  # Bob in use
        ("QueueMemberStatus", (0, 1, 0, 0, 0)),  # Bob free again
    ]
    assert board.queues["support"].row() == (1, 0, 0, 1, 0)  # untouched
    # The ~100 other events of the capture (Newchannel, AgentCalled, Hangup...) changed nothing.
    assert len(events) > 90


def test_wallboard_member_states_and_idempotence(wallboard: ModuleType) -> None:
    state, MemberState = wallboard.member_state, wallboard.MemberState
    assert state("1", "0") is MemberState.AVAILABLE
    assert state("0", "0") is MemberState.AVAILABLE  # unknown: app_queue rings it
    assert state("1", "0", "1") is MemberState.BUSY
    for busy in ("2", "3", "6", "7", "8"):
        assert state(busy, "0") is MemberState.BUSY
    assert state("2", "1") is MemberState.PAUSED
    assert state("5", "1") is MemberState.UNAVAILABLE
    assert state("4", "0") is MemberState.UNAVAILABLE

    def event(name: str, **headers: str) -> Event:
        return Event([("Event", name), *headers.items()])

    board = wallboard.WallBoard()
    join = event("QueueCallerJoin", Queue="q", Channel="PJSIP/1-1", Uniqueid="1.1", Count="1")
    assert board.apply(join) is True
    assert board.apply(join) is False  # seen twice (seed, then the queued event): once
    assert board.apply(event("QueueCallerLeave", Queue="q", Uniqueid="9.9")) is False
    added = event("QueueMemberAdded", Queue="q", Interface="PJSIP/7", Status="1", Paused="0")
    assert board.apply(added) is True
    assert board.apply(event("QueueMemberPause", Queue="q", Interface="PJSIP/7", Paused="1"))
    assert board.queues["q"].row() == (1, 0, 0, 1, 0)
    assert board.apply(event("QueueMemberRemoved", Queue="q", Interface="PJSIP/7")) is True
    assert board.apply(event("QueueCallerLeave", Queue="q", Uniqueid="1.1")) is True
    assert board.queues["q"].row() == (0, 0, 0, 0, 0)
    assert board.apply(event("Hangup", Queue="q", Channel="PJSIP/1-1")) is False
    assert board.apply(event("QueueCallerJoin", Channel="PJSIP/1-1")) is False  # no Queue


def serve_queue_status(pbx: FakeAsterisk, answers: list[list[Event]]) -> None:
    """Answer QueueStatus with recorded items (their ActionID replaced by the client's)."""

    def answer(session: FakeSession, action: Message) -> list[list[tuple[str, str]]]:
        items = answers.pop(0) if len(answers) > 1 else answers[0]
        start = make_response(
            action, "Success", EventList="start", Message="Queue status will follow"
        )
        body = [
            with_action_id(action, [(k, v) for k, v in item.headers if k != "ActionID"])
            for item in items
        ]
        complete = [("Event", "QueueStatusComplete"), ("EventList", "Complete")]
        return [start, *body, with_action_id(action, [*complete, ("ListItems", str(len(body)))])]

    pbx.on_action("QueueStatus", answer)


async def test_wallboard_follows_recorded_queue_events(
    wallboard: ModuleType, bare: FakeAsterisk
) -> None:
    seed = queue_status_items()
    # After the reconnect the support caller has gone and Alice is back from her pause.
    later = [item for item in seed if item.name != "QueueEntry"]
    alice = next(i for i in later if i.get("Name") == "Alice")
    later[later.index(alice)] = Event([(k, "0" if k == "Paused" else v) for k, v in alice.headers])
    serve_queue_status(bare, [seed, later])
    boards: asyncio.Queue[dict[str, tuple[int, ...]]] = asyncio.Queue()
    client = client_for(bare, reconnect_delay=0.01)
    await client.connect()
    task = asyncio.ensure_future(
        wallboard.follow(client, on_change=lambda b: boards.put_nowait(rows(b)), resync_check=0.02)
    )
    try:
        first = await asyncio.wait_for(boards.get(), WAIT)
        assert first == {"support": (1, 0, 0, 1, 0), "sales": (0, 1, 0, 0, 0)}
        # Replay the real queue events of queue_sales_answered.bin through the fake.
        for message in recorded("queue_sales_answered.bin"):
            if isinstance(message, Event) and message.name in wallboard.EVENTS:
                await bare.emit(message.name, [kv for kv in message.headers if kv[0] != "Event"])
        sales = [(await asyncio.wait_for(boards.get(), WAIT))["sales"] for _ in range(4)]
        assert sales == [(1, 1, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 1, 0, 0, 0)]

        # The link drops; what happened meanwhile is learnt from a fresh QueueStatus.
        await bare.drop()
        resynced = await asyncio.wait_for(boards.get(), WAIT)
        assert resynced == {"support": (0, 1, 0, 0, 0), "sales": (0, 1, 0, 0, 0)}
        assert client.reconnects == 1
        assert [a["Action"] for a in bare.actions].count("QueueStatus") == 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def test_wallboard_reseeds_after_its_subscription_overflowed(
    wallboard: ModuleType, bare: FakeAsterisk
) -> None:
    seed = queue_status_items()
    later = [item for item in seed if item.name != "QueueEntry"]
    answers = [seed, later]

    # Five callers join while the first QueueStatus is being answered: more than
    # the subscription holds (event_queue_size=3), so two are lost.
    async def queue_status(session: FakeSession, action: Message) -> None:
        items = answers.pop(0)
        if len(answers) == 1:
            for n in range(5):
                caller = {"Queue": "sales", "Channel": f"PJSIP/{n}-1", "Uniqueid": f"1.{n}"}
                await bare.emit("QueueCallerJoin", {"Privilege": "agent,all", **caller})
        start = make_response(action, "Success", EventList="start")
        body = [
            with_action_id(action, [kv for kv in i.headers if kv[0] != "ActionID"]) for i in items
        ]
        end = with_action_id(action, [("Event", "QueueStatusComplete"), ("EventList", "Complete")])
        await session.send(start, *body, end)

    bare.on_action("QueueStatus", queue_status)
    boards: asyncio.Queue[dict[str, tuple[int, ...]]] = asyncio.Queue()
    async with client_for(bare, event_queue_size=3) as client:
        task = asyncio.ensure_future(
            wallboard.follow(client, on_change=lambda b: boards.put_nowait(rows(b)))
        )
        try:
            seen = [await asyncio.wait_for(boards.get(), WAIT) for _ in range(5)]
            # The seed, the three callers that fit, then a fresh QueueStatus.
            assert [board["sales"][0] for board in seen[:4]] == [0, 1, 2, 3]
            assert seen[4] == {"support": (0, 0, 0, 1, 0), "sales": (0, 1, 0, 0, 0)}
            assert [a["Action"] for a in bare.actions].count("QueueStatus") == 2
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_wallboard_follows_a_queue_call_on_the_simulated_pbx(
    wallboard: ModuleType, pbx: FakeAsterisk
) -> None:
    boards: asyncio.Queue[dict[str, tuple[int, ...]]] = asyncio.Queue()
    async with client_for(pbx) as client:
        task = asyncio.ensure_future(
            wallboard.follow(client, on_change=lambda b: boards.put_nowait(rows(b)))
        )
        try:
            seeded = await asyncio.wait_for(boards.get(), WAIT)
            assert seeded == {"support": (0, 0, 0, 1, 0), "sales": (0, 1, 0, 0, 0)}
            # A caller dials 410: queue "sales", where Bob answers (queue_sales_answered.bin).
            call = await client.originate("Local/410@test", application="Wait", data="1")
            assert call.success
            # Joins, is connected to Bob (leaves the queue), Bob busy, Bob free again.
            expected = [(1, 1, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 1, 0, 0, 0)]
            changes = [await asyncio.wait_for(boards.get(), WAIT) for _ in expected]
            assert [board["sales"] for board in changes] == expected
            assert all(board["support"] == (0, 0, 0, 1, 0) for board in changes)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_wallboard_main_fake_runs_on_the_simulated_pbx(
    wallboard: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    boards: asyncio.Queue[str] = asyncio.Queue()
    monkeypatch.setattr(wallboard, "print_board", lambda board: boards.put_nowait(board.render()))
    monkeypatch.setattr(wallboard, "DEMO_STEP", 0.01)
    monkeypatch.setattr(wallboard, "DEMO_TIME_SCALE", 0.01)
    task = asyncio.ensure_future(wallboard.main(["--fake"]))
    try:
        first = await asyncio.wait_for(boards.get(), WAIT)
        assert first.splitlines()[1:] == [
            "sales          0          1     0       0            0",
            "support        0          0     0       1            0",
        ]
        # The first demo caller waits in support, whose only agent is paused.
        later = await asyncio.wait_for(boards.get(), WAIT)
        assert later.splitlines()[2].startswith("support        1")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT)
