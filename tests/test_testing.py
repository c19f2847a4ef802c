"""FakeAsterisk over raw asyncio streams (no client class): login, output, handlers, replay."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from typing import Any

import pytest
from _fake_client import (
    FIXTURES,
    TIMEOUT,
    Connect,
    connect,
    fake,
    fixture_messages,
    logged_in,
)

__all__ = ["connect", "fake"]  # fixtures (tests/_fake_client.py)

from ami_async.message import Message
from ami_async.protocol import encode_action
from ami_async.testing import FakeAsterisk, FakeSession, make_response, with_action_id

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
