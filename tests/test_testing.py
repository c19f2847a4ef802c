"""FakeAsterisk, tested over raw asyncio streams (no client class involved)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ami_async.message import Message
from ami_async.protocol import Parser, encode_action
from ami_async.testing import FakeAsterisk, FakeSession, make_response, with_action_id

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
TIMEOUT = 5.0

Headers = tuple[tuple[str, str], ...]


def read_ami(path: Path) -> list[tuple[str, float, bytes]]:
    """The reader from fixtures/README.md."""
    data = path.read_bytes()
    pos = 0
    recs: list[tuple[str, float, bytes]] = []
    while pos < len(data):
        nl = data.index(b"\n", pos)
        line = data[pos:nl]
        if line.startswith(b"# ") and not recs:
            pos = nl + 1
            continue
        m = re.fullmatch(rb"(>>>|<<<|###) (\d+\.\d{3}) (\d+)", line)
        assert m is not None
        n = int(m.group(3))
        recs.append((m.group(1).decode(), float(m.group(2)), data[nl + 1 : nl + 1 + n]))
        pos = nl + 1 + n + 1
    return recs


def fixture_messages(name: str) -> list[Message]:
    return Parser().feed((FIXTURES / name).read_bytes())


def recorded(name: str, action_id: str) -> list[Message]:
    """The recorded messages of a ``.bin`` fixture that carry ``action_id``."""
    return [m for m in fixture_messages(name) if m.get("ActionID") == action_id]


class RawClient:
    """Just enough of an AMI client: asyncio streams plus the sans-IO parser."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Parser()
        self.messages: deque[Message] = deque()
        self.raw = bytearray()

    async def _fill(self) -> bool:
        try:
            data = await asyncio.wait_for(self.reader.read(65536), TIMEOUT)
        except ConnectionError:
            return False
        if not data:
            return False
        self.raw += data
        self.messages.extend(self.parser.feed(data))
        return True

    async def banner(self) -> str | None:
        while self.parser.banner is None and not self.messages:
            if not await self._fill():
                raise EOFError("closed before the banner")
        return self.parser.banner

    def send(self, action: str, **headers: str) -> None:
        self.writer.write(encode_action(action, headers))

    async def read(self) -> Message:
        while not self.messages:
            if not await self._fill():
                raise EOFError("connection closed")
        return self.messages.popleft()

    async def read_event(self, name: str) -> Message:
        """The next event ``name``, skipping everything before it."""
        while True:
            message = await self.read()
            if message.get("Event") == name:
                return message

    async def read_response(self) -> Message:
        """The next response, skipping events."""
        while True:
            message = await self.read()
            if "Event" not in message:
                return message

    async def ask(self, action: str, **headers: str) -> Message:
        self.send(action, **headers)
        return await self.read()

    async def login(self, **headers: str) -> Message:
        await self.banner()
        fields = {"ActionID": "login-1", "Username": "admin", "Secret": "amp111", **headers}
        return await self.ask("Login", **fields)

    async def eof(self) -> list[Message]:
        """Read until the server closes; the messages that came before."""
        while await self._fill():
            pass
        rest = list(self.messages)
        self.messages.clear()
        return rest

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


Connect = Callable[..., Awaitable[RawClient]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(auth_failure_delay=0.01) as server:
        yield server


@pytest.fixture
async def connect(fake: FakeAsterisk) -> AsyncIterator[Connect]:
    opened: list[RawClient] = []

    async def open_client(server: FakeAsterisk | None = None, **kwargs: Any) -> RawClient:
        target = server or fake
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port, **kwargs), TIMEOUT
        )
        client = RawClient(reader, writer)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        await client.close()


async def logged_in(connect: Connect, **headers: str) -> RawClient:
    client = await connect()
    response = await client.login(**{"Events": "off", **headers})
    assert response["Message"] == "Authentication accepted"
    return client


# -- banner and login ---------------------------------------------------------------------


async def test_banner_is_one_line_without_blank_line(fake: FakeAsterisk, connect: Connect) -> None:
    assert fake.host == "127.0.0.1"
    assert fake.port > 0
    client = await connect()
    assert await client.banner() == "Asterisk Call Manager/11.0.0"
    await client.ask("Ping", ActionID="p1")
    assert bytes(client.raw) == (
        b"Asterisk Call Manager/11.0.0\r\n"
        b"Response: Error\r\nActionID: p1\r\nMessage: Permission denied\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"version": "2.10.6"}, b"Asterisk Call Manager/2.10.6\r\n"),
        ({"banner": "Asterisk Call Manager Proxy/1.0"}, b"Asterisk Call Manager Proxy/1.0\r\n"),
        ({"banner": ""}, b""),
    ],
)
async def test_banner_options(connect: Connect, kwargs: dict[str, Any], expected: bytes) -> None:
    async with FakeAsterisk(**kwargs) as server:
        client = await connect(server)
        client.send("Ping", ActionID="p1")
        assert (await client.read())["Message"] == "Permission denied"
        assert bytes(client.raw).startswith(expected + b"Response: Error\r\n")


async def test_plain_login_accepted_then_fully_booted(fake: FakeAsterisk, connect: Connect) -> None:
    client = await connect()
    response = await client.login()
    assert response.headers == (
        ("Response", "Success"),
        ("ActionID", "login-1"),
        ("Message", "Authentication accepted"),
    )
    booted = await client.read()
    keys = [k for k, _ in booted.headers]
    assert keys == [k for k, _ in fixture_messages("asterisk-22/login_success.bin")[1].headers]
    assert booted["Event"] == "FullyBooted"
    assert booted["Privilege"] == "system,all"
    assert booted["Status"] == "Fully Booted"
    session = fake.sessions[-1]
    assert session.authenticated
    assert session.username == "admin"
    assert session.peer[0] == "127.0.0.1"


@pytest.mark.parametrize(("username", "secret"), [("admin", "wrong"), ("nosuchuser", "x")])
async def test_login_refused_then_closed(
    fake: FakeAsterisk, connect: Connect, username: str, secret: str
) -> None:
    client = await connect()
    response = await client.login(Username=username, Secret=secret)
    assert response.headers == (
        ("Response", "Error"),
        ("ActionID", "login-1"),
        ("Message", "Authentication failed"),
    )
    assert await client.eof() == []
    assert fake.sessions == []


async def test_md5_login(connect: Connect) -> None:
    client = await connect()
    await client.banner()
    challenge = await client.ask("Challenge", ActionID="c1", AuthType="MD5")
    assert [k for k, _ in challenge.headers] == ["Response", "ActionID", "Challenge"]
    assert challenge["Challenge"].isdigit()
    key = hashlib.md5((challenge["Challenge"] + "amp111").encode()).hexdigest()
    response = await client.ask("Login", ActionID="l1", AuthType="MD5", Username="admin", Key=key)
    assert response["Message"] == "Authentication accepted"

    bad = await connect()
    await bad.banner()
    await bad.ask("Challenge", ActionID="c1", AuthType="MD5")
    refused = await bad.ask("Login", AuthType="MD5", Username="admin", Key="0" * 32)
    assert refused["Message"] == "Authentication failed"
    assert await bad.eof() == []


async def test_only_login_challenge_logoff_before_login(connect: Connect) -> None:
    client = await connect()
    await client.banner()
    for action in ("Ping", "Originate", "Command"):
        answer = await client.ask(action, ActionID=action)
        assert answer.headers == (
            ("Response", "Error"),
            ("ActionID", action),
            ("Message", "Permission denied"),
        )
    goodbye = await client.ask("Logoff", ActionID="bye")
    assert goodbye.headers == (
        ("Response", "Goodbye"),
        ("ActionID", "bye"),
        ("Message", "Thanks for all the fish."),
    )
    assert await client.eof() == []


# -- actions --------------------------------------------------------------------------------


async def test_ping_with_and_without_action_id(connect: Connect) -> None:
    client = await logged_in(connect)
    pong = await client.ask("Ping", ActionID="p1")
    assert [k for k, _ in pong.headers] == ["Response", "ActionID", "Ping", "Timestamp"]
    assert pong["Ping"] == "Pong"
    assert re.fullmatch(r"\d+\.\d{6}", pong["Timestamp"])
    bare = await client.ask("Ping")
    assert [k for k, _ in bare.headers] == ["Response", "Ping", "Timestamp"]


async def test_modern_command_matches_asterisk_22(connect: Connect) -> None:
    client = await logged_in(connect)
    version = await client.ask("Command", ActionID="v", Command="core show version")
    assert version["Message"] == "Command output follows"
    assert version.get_all("Output")[0].startswith("Asterisk 22.0.0 built by")

    channels = await client.ask("Command", ActionID="c", Command="core show channels")
    (expected,) = recorded("asterisk-22/command.bin", "command-3")
    assert channels.headers[2:] == expected.headers[2:]

    unknown = await client.ask("Command", ActionID="u", Command="this is not a command")
    (expected,) = recorded("asterisk-22/command.bin", "command-4")
    assert unknown.headers[0] == ("Response", "Error")
    assert unknown.headers[2:] == expected.headers[2:]

    missing = await client.ask("Command", ActionID="m")
    assert missing["Message"] == "No command provided"

    uptime = await client.ask("Command", ActionID="t", Command="core show uptime")
    assert [line.split(":")[0] for line in uptime.get_all("Output")] == [
        "System uptime",
        "Last reload",
    ]


async def test_legacy_command_is_asterisk_13_follows(connect: Connect) -> None:
    async with FakeAsterisk(command_format="legacy") as server:
        client = await connect(server)
        await client.login(Events="off")
        version = await client.ask("Command", ActionID="v", Command="core show version")
        assert version.body is not None
        assert bytes(client.raw).endswith(
            b"Response: Follows\r\nPrivilege: Command\r\nActionID: v\r\n"
            + version.body.encode()
            + b"--END COMMAND--\r\n\r\n"
        )
        assert version.body.startswith("Asterisk 13.38.3 built by")

        unknown = await client.ask("Command", ActionID="u", Command="this is not a command")
        (expected,) = recorded("asterisk-13/command.bin", "command-5")
        assert unknown["Response"] == "Follows"
        assert unknown.body == expected.body

        channels = await client.ask("Command", Command="core show channels")
        assert channels.headers == (("Response", "Follows"), ("Privilege", "Command"))
        assert channels.body is not None
        assert channels.body.split("\n")[1:] == [
            "0 active channels",
            "0 of 500 max active calls ( 0.00% of capacity)",
            "0 calls processed",
            "",
        ]


async def test_user_event_carries_action_id(connect: Connect) -> None:
    client = await logged_in(connect, Events="on")
    await client.read_event("SuccessfulAuth")  # the last message of a login
    client.send(
        "UserEvent",
        ActionID="userevent-3",
        UserEvent="FromAMI",
        Header1="value1",
        Header2="value: with colon",
    )
    response, event = await client.read(), await client.read()
    assert response["Message"] == "Event Sent"
    recorded_event = recorded("asterisk-22/userevent.bin", "userevent-3")[1]
    assert event.headers == recorded_event.headers


async def test_async_originate_emits_originate_response(connect: Connect) -> None:
    client = await logged_in(connect, Events="on")
    await client.read_event("SuccessfulAuth")  # the last message of a login
    client.send(
        "Originate",
        ActionID="o1",
        Channel="Local/100@test",
        Application="Wait",
        Data="1",
        Async="true",
        CallerID="Lab <1000>",
    )
    response = await client.read()
    assert response.headers == (
        ("Response", "Success"),
        ("ActionID", "o1"),
        ("Message", "Originate successfully queued"),
    )
    # The simulated PBX sends the call's events first (test_simpbx.py checks them).
    event = await client.read_event("OriginateResponse")
    model = next(
        m
        for m in fixture_messages("asterisk-22/originate_async.bin")
        if m.get("Event") == "OriginateResponse"
    )
    assert [k for k, _ in event.headers] == [k for k, _ in model.headers]
    assert event["ActionID"] == "o1"
    assert event["Response"] == "Success"
    assert event["Reason"] == "4"
    assert re.fullmatch(r"Local/100@test-[0-9a-f]{8};1", event["Channel"])
    assert (event["CallerIDNum"], event["CallerIDName"]) == ("1000", "Lab")

    client.send("Originate", ActionID="o2", Channel="Local/404@test", Exten="s", Async="yes")
    assert (await client.read_response())["Message"] == "Originate successfully queued"
    failed = await client.read_event("OriginateResponse")
    assert failed["Response"] == "Failure"
    assert failed["Reason"] == "0"
    assert failed["Uniqueid"] == "<unknown>"

    client.send("Originate", ActionID="o3", Channel="Local/404@test", Exten="1")
    sync_fail = await client.read_response()
    assert sync_fail["Message"] == "Originate failed"
    client.send("Originate", ActionID="o4", Application="Wait")
    no_channel = await client.read_response()
    assert no_channel["Message"] == "Channel not specified"


async def test_originate_without_pbx_answers_at_once(connect: Connect) -> None:
    """``pbx=False``: no channels, the OriginateResponse comes right after the Response."""
    async with FakeAsterisk(pbx=False) as server:
        client = await connect(server)
        await client.login(Events="on")
        await client.read_event("SuccessfulAuth")  # the last message of a login
        client.send(
            "Originate", ActionID="o1", Channel="Local/100@test", Application="Wait", Async="1"
        )
        response, event = await client.read(), await client.read()
        assert response["Message"] == "Originate successfully queued"
        assert (event["Event"], event["Response"], event["Reason"]) == (
            "OriginateResponse",
            "Success",
            "4",
        )
        channels = await client.ask("Command", ActionID="c", Command="core show channels")
        assert channels.get_all("Output")[1] == "0 active channels"
        with pytest.raises(RuntimeError):
            server.pbx  # noqa: B018


async def test_empty_lists(connect: Connect) -> None:
    client = await logged_in(connect)
    client.send("CoreShowChannels", ActionID="coreshowchannels_empty-2")
    got = [await client.read(), await client.read()]
    expected = recorded("asterisk-22/coreshowchannels_empty.bin", "coreshowchannels_empty-2")
    assert [m.headers for m in got] == [m.headers for m in expected]

    client.send("Status", ActionID="s")
    start, complete = await client.read(), await client.read()
    assert start["Message"] == "Channel status will follow"
    assert complete.headers == (
        ("Event", "StatusComplete"),
        ("ActionID", "s"),
        ("EventList", "Complete"),
        ("ListItems", "0"),
        ("Items", "0"),
    )


async def test_db_keeps_state(fake: FakeAsterisk, connect: Connect) -> None:
    client = await logged_in(connect)
    put = await client.ask("DBPut", ActionID="1", Family="lab", Key="k1", Val="v1")
    assert put["Message"] == "Updated database successfully"
    assert fake.db == {"/lab/k1": "v1"}
    client.send("DBGet", ActionID="2", Family="lab", Key="k1")
    start, item, complete = await client.read(), await client.read(), await client.read()
    assert start["EventList"] == "start"
    assert item.headers == (
        ("Event", "DBGetResponse"),
        ("Family", "lab"),
        ("Key", "k1"),
        ("Val", "v1"),
        ("ActionID", "2"),
    )
    assert (complete["Event"], complete["ListItems"]) == ("DBGetComplete", "1")
    missing = await client.ask("DBGet", ActionID="3", Family="lab", Key="nope")
    assert (missing["Response"], missing["Message"]) == ("Error", "Database entry not found")
    deleted = await client.ask("DBDel", ActionID="4", Family="lab", Key="k1")
    assert deleted["Message"] == "Key deleted successfully"
    again = await client.ask("DBDel", ActionID="5", Family="lab", Key="k1")
    assert again["Message"] == "Database entry could not be deleted"
    fake.db["/lab/a/b"] = "x"
    tree = await client.ask("DBDelTree", ActionID="6", Family="lab")
    assert tree["Message"] == "Key tree deleted successfully"
    assert fake.db == {}


async def test_getvar_setvar_globals(fake: FakeAsterisk, connect: Connect) -> None:
    client = await logged_in(connect, Events="on")
    await client.read_event("SuccessfulAuth")  # the last message of a login
    client.send("Setvar", ActionID="s", Variable="LABGLOBAL", Value="42")
    response, varset = await client.read(), await client.read()
    expected = recorded("asterisk-22/getvar_setvar.bin", "getvar_setvar-2")
    assert response.headers[2:] == expected[0].headers[2:]
    assert varset.headers == fixture_messages("asterisk-22/getvar_setvar.bin")[4].headers
    assert fake.global_variables == {"LABGLOBAL": "42"}
    value = await client.ask("Getvar", ActionID="g", Variable="LABGLOBAL")
    assert value.headers[2:] == (("Variable", "LABGLOBAL"), ("Value", "42"))
    unset = await client.ask("Getvar", ActionID="g", Variable="NOT_SET_ANYWHERE")
    assert unset["Value"] == ""
    on_channel = await client.ask("Getvar", Channel="Local/nope-00000000;1", Variable="X")
    assert on_channel["Message"] == "No such channel"


async def test_unknown_and_missing_action(connect: Connect) -> None:
    client = await logged_in(connect)
    unknown = await client.ask("Foo", ActionID="f")
    assert unknown["Message"] == (
        "Invalid/unknown command: Foo. Use Action: ListCommands to show available commands."
    )
    client.writer.write(b"ActionID: noaction-1\r\nFoo: bar\r\n\r\n")
    missing = await client.read()
    assert missing.headers == (
        ("Response", "Error"),
        ("ActionID", "noaction-1"),
        ("Message", "Missing action in request"),
    )


@pytest.mark.parametrize(
    "scenario",
    [
        "coreshowchannels_empty",
        "db",
        "logoff",
        "ping",
        "unauthenticated_action",
        "unknown_action",
        "login_failure",
        "login_unknown_user",
        "challenge_md5_bad_key",
    ],
)
async def test_built_ins_answer_like_the_recordings(connect: Connect, scenario: str) -> None:
    """Send a recording's actions; the answers equal the recorded ones (timestamps aside)."""
    records = read_ami(FIXTURES / "asterisk-22" / f"{scenario}.ami")
    server = Parser()
    steps: list[tuple[bytes, list[Message]]] = []
    for direction, _, payload in records:
        if direction == ">>>":
            steps.append((payload, []))
        elif direction == "<<<":
            messages = server.feed(payload)
            if steps:
                steps[-1][1].extend(messages)
    closes = any(b"EOF: server closed" in p for d, _, p in records if d == "###")

    def masked(message: Message) -> Headers:
        random_keys = ("timestamp", "challenge")
        return tuple((k, "*" if k.lower() in random_keys else v) for k, v in message.headers)

    client = await connect()
    assert await client.banner() == server.banner
    for payload, expected in steps:
        client.writer.write(payload)
        got = [await client.read() for _ in expected]
        assert [masked(m) for m in got] == [masked(m) for m in expected]
    if closes:
        assert await client.eof() == []
    else:
        assert (await client.ask("Logoff"))["Response"] == "Goodbye"


# -- emit, raw bytes, faults ------------------------------------------------------------


async def test_emit_respects_event_masks(fake: FakeAsterisk, connect: Connect) -> None:
    listener = await logged_in(connect, Events="on")
    assert (await listener.read())["Event"] == "FullyBooted"
    assert (await listener.read())["Event"] == "SuccessfulAuth"
    deaf = await logged_in(connect, Events="off")
    assert fake.sessions[-1].events_mask == "off"
    # A login is a security event every listening session hears of, as on Asterisk.
    heard = await listener.read()
    assert (heard["Event"], heard["RemoteAddress"]) == (
        "SuccessfulAuth",
        f"IPV4/TCP/127.0.0.1/{fake.sessions[-1].peer[1]}",
    )

    await fake.emit("Hangup", {"Privilege": "call,all", "Channel": "PJSIP/1-01"}, Cause="16")
    event = await listener.read()
    assert event.headers == (
        ("Event", "Hangup"),
        ("Privilege", "call,all"),
        ("Channel", "PJSIP/1-01"),
        ("Cause", "16"),
    )
    # An event would have been written before the answer to this later Ping.
    assert (await deaf.ask("Ping"))["Response"] == "Success"

    switched = await deaf.ask("Events", ActionID="e", EventMask="user")
    assert switched.headers == (("Response", "Success"), ("ActionID", "e"), ("Events", "On"))
    await fake.emit("Hangup", {"Privilege": "call,all"})
    await fake.emit("UserEvent", {"Privilege": "user,all", "UserEvent": "Hi"})
    assert (await deaf.read())["Event"] == "UserEvent"
    off = await deaf.ask("Events", EventMask="off")
    assert off["Events"] == "Off"


async def test_send_raw_reaches_every_session(fake: FakeAsterisk, connect: Connect) -> None:
    client = await connect()
    await client.banner()
    await fake.emit("NotForAnonymous")
    await fake.send_raw(b"Event: Raw\r\nBroken line\r\n\r\n")
    raw = await client.read()
    assert raw["Event"] == "Raw"
    assert raw.bare_lines == ("Broken line",)


async def test_drop_closes_sessions_and_keeps_listening(
    fake: FakeAsterisk, connect: Connect
) -> None:
    first = await logged_in(connect)
    await fake.drop()
    assert await first.eof() == []
    assert fake.sessions == []
    second = await logged_in(connect)
    assert (await second.ask("Ping"))["Ping"] == "Pong"


async def test_stall_holds_answers_and_events_until_resume(
    fake: FakeAsterisk, connect: Connect
) -> None:
    client = await logged_in(connect, Events="on")
    await client.read_event("SuccessfulAuth")  # the last message of a login
    fake.stall()
    client.send("Ping", ActionID="held")
    action = await fake.wait_for_action("Ping")
    assert action["ActionID"] == "held"
    await fake.emit("UserEvent", {"Privilege": "user,all", "UserEvent": "During"})
    client.send("Logoff", ActionID="bye")
    await fake.wait_for_action("Logoff")
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.reader.read(1), 0.1)
    fake.resume()
    rest = await client.eof()
    assert [(m.get("Response"), m.get("Event")) for m in rest] == [
        ("Success", None),
        (None, "UserEvent"),
        ("Goodbye", None),
    ]


# -- handlers, scripts, waiting ------------------------------------------------------------


async def test_on_action_and_script(fake: FakeAsterisk, connect: Connect) -> None:
    async def queue_status(session: FakeSession, action: Message) -> list[list[tuple[str, str]]]:
        await session.send(make_response(action, "Success", EventList="start"))
        return [with_action_id(action, {"Event": "QueueStatusComplete", "ListItems": "0"})]

    def explode(session: FakeSession, action: Message) -> None:
        raise RuntimeError("boom")

    fake.on_action("queuestatus", queue_status)
    fake.on_action("Boom", explode)
    fake.on_action("PING", lambda session, action: make_response(action, Ping="Custom"))
    fake.script("QueueAdd", {"Response": "Success", "Message": "Added interface to queue"})
    fake.script("Never")

    client = await logged_in(connect)
    client.send("QueueStatus", ActionID="q")
    start, done = await client.read(), await client.read()
    assert start.headers == (("Response", "Success"), ("ActionID", "q"), ("EventList", "start"))
    assert done.headers == (
        ("Event", "QueueStatusComplete"),
        ("ActionID", "q"),
        ("ListItems", "0"),
    )
    added = await client.ask("QueueAdd", ActionID="a", Queue="sales")
    assert added.headers == (
        ("Response", "Success"),
        ("ActionID", "a"),
        ("Message", "Added interface to queue"),
    )
    failed = await client.ask("Boom", ActionID="b")
    assert failed["Response"] == "Error"
    assert "boom" in failed["Message"]
    client.send("Never", ActionID="n")
    custom = await client.ask("Ping", ActionID="p")  # the unanswered action sent nothing
    assert custom.headers == (("Response", "Success"), ("ActionID", "p"), ("Ping", "Custom"))


async def test_wait_for_action(fake: FakeAsterisk, connect: Connect) -> None:
    client = await connect()
    await client.banner()
    pending = asyncio.ensure_future(fake.wait_for_action("ping"))
    client.send("Ping", ActionID="1")
    client.send("Ping", ActionID="2")
    assert (await asyncio.wait_for(pending, TIMEOUT))["ActionID"] == "1"
    assert (await fake.wait_for_action("PING"))["ActionID"] == "2"
    with pytest.raises(TimeoutError):
        await fake.wait_for_action("Ping", timeout=0.05)
    assert [a["ActionID"] for a in fake.actions] == ["1", "2"]
    assert [a["ActionID"] for a in fake.sessions[0].actions] == ["1", "2"]


async def test_close_stops_listening(connect: Connect) -> None:
    server = FakeAsterisk()
    await server.start()
    client = await connect(server)
    await client.login()
    await server.close()
    await client.eof()
    assert server.sessions == []
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(server.host, server.port)
    await server.close()  # idempotent


async def test_tls(connect: Connect) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with FakeAsterisk(ssl=server_ctx) as server:
        client = await connect(server, ssl=client_ctx, server_hostname="localhost")
        response = await client.login(Events="off")
        assert response["Message"] == "Authentication accepted"
        await client.close()


# -- replay -------------------------------------------------------------------------------


async def test_replay_asterisk_22_command(fake: FakeAsterisk, connect: Connect) -> None:
    await fake.replay(FIXTURES / "asterisk-22" / "command.ami")
    client = await connect()
    assert await client.banner() == "Asterisk Call Manager/11.0.0"
    login = await client.ask("Login", ActionID="L", Username="who", Secret="not checked")
    assert login.headers == (
        ("Response", "Success"),
        ("ActionID", "L"),
        ("Message", "Authentication accepted"),
    )
    keepalive = await client.ask("Ping", ActionID="k")  # not recorded: built-in answer
    assert (keepalive["ActionID"], keepalive["Ping"]) == ("k", "Pong")
    version = await client.ask("Command", ActionID="v", Command="core show version")
    assert version["ActionID"] == "v"
    assert version["Output"].startswith("Asterisk 22.11.0-rc1 built by root")
    wrong = await client.ask("Foo", ActionID="f")
    assert wrong.headers == (
        ("Response", "Error"),
        ("ActionID", "f"),
        ("Message", "replay: unexpected action Foo (expected Command)"),
    )
    channels = await client.ask("Command", ActionID="c", Command="core show channels")
    assert channels.get_all("Output")[1] == "0 active channels"
    unknown = await client.ask("Command", ActionID="u", Command="this is not a command")
    assert (unknown["Response"], unknown["ActionID"]) == ("Error", "u")
    commands = await client.ask("Command", ActionID="m", Command="manager show commands")
    assert commands["ActionID"] == "m"
    assert len(commands.get_all("Output")) > 100
    no_command = await client.ask("Command", ActionID="n")
    assert no_command.headers == (
        ("Response", "Error"),
        ("ActionID", "n"),
        ("Message", "No command provided"),
    )
    after = await client.ask("CoreStatus", ActionID="x")
    assert after["Message"] == "replay: unexpected action CoreStatus (expected end of transcript)"
    assert b"command-" not in client.raw


async def test_replay_asterisk_13_command(fake: FakeAsterisk, connect: Connect) -> None:
    await fake.replay(FIXTURES / "asterisk-13" / "command.ami")
    client = await connect()
    assert await client.banner() == "Asterisk Call Manager/2.10.6"
    await client.ask("Login", ActionID="L", Username="admin", Secret="amp111")
    queued = await client.ask("Originate", ActionID="o", Channel="Local/700@test")
    assert (queued["ActionID"], queued["Message"]) == ("o", "Originate successfully queued")
    version = await client.ask("Command", ActionID="v13", Command="core show version")
    assert b"Response: Follows\r\nPrivilege: Command\r\nActionID: v13\r\n" in client.raw
    assert version.body is not None
    assert version.body.startswith("Asterisk 13.38.3 built by root")
    channels = await client.ask("Command", ActionID="c13", Command="core show channels")
    assert channels["ActionID"] == "c13"
    assert channels.body is not None
    assert "2 active channels\n" in channels.body


async def test_replay_without_rewriting_and_server_close(
    fake: FakeAsterisk, connect: Connect
) -> None:
    await fake.replay(FIXTURES / "asterisk-22" / "logoff.ami", rewrite_action_ids=False)
    client = await connect()
    await client.banner()
    login = await client.ask("Login", ActionID="mine", Username="admin", Secret="amp111")
    assert login["ActionID"] == "logoff-1"
    client.send("Logoff")
    assert [m["ActionID"] for m in await client.eof()] == ["logoff-2"]


async def test_replay_drops_recorded_action_id_when_client_sends_none(
    fake: FakeAsterisk, connect: Connect
) -> None:
    await fake.replay(FIXTURES / "asterisk-22" / "login_failure.ami")
    client = await connect()
    await client.banner()
    refused = await client.ask("Login", Username="admin", Secret="x")
    assert refused.headers == (("Response", "Error"), ("Message", "Authentication failed"))
    assert await client.eof() == []


async def test_replay_bin_sends_everything_after_first_action(
    fake: FakeAsterisk, connect: Connect
) -> None:
    await fake.replay(FIXTURES / "asterisk-22" / "userevent.bin")
    client = await connect()
    assert await client.banner() == "Asterisk Call Manager/11.0.0"
    client.send("Anything", ActionID="x")
    expected = fixture_messages("asterisk-22/userevent.bin")
    got = [await client.read() for _ in expected]
    assert got == expected
    assert bytes(client.raw) == (FIXTURES / "asterisk-22" / "userevent.bin").read_bytes()


async def test_replay_pipelined_actions_answers_after_the_whole_write(
    fake: FakeAsterisk, connect: Connect
) -> None:
    await fake.replay(FIXTURES / "asterisk-22" / "pipelined_actions.ami")
    client = await connect()
    await client.login()
    client.writer.write(
        b"".join(
            encode_action(name, {"ActionID": f"mine-{i}"})
            for i, name in enumerate(["Ping", "Ping", "CoreStatus", "Ping"])
        )
    )
    answers = [await client.read() for _ in range(4)]
    assert [a["ActionID"] for a in answers] == ["mine-0", "mine-1", "mine-2", "mine-3"]
    assert answers[2]["CoreProcessedCalls"] == "18"
