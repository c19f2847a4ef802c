"""FakeAsterisk's built-in actions, tested over raw asyncio streams against the recordings."""

from __future__ import annotations

import re

import pytest
from _fake_client import (
    FIXTURES,
    Connect,
    Headers,
    connect,
    fake,
    fixture_messages,
    logged_in,
    read_ami,
    recorded,
)

__all__ = ["connect", "fake"]  # fixtures (tests/_fake_client.py)

from ami_async.message import Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk

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
