"""FakeAsterisk against the later recordings (issue 9, items 5 and 22): each case it models.

Login events (`SuccessfulAuth`, 13's short `FullyBooted`), a restart while logged in,
the lab's manager users (read=call, no write, event filters, allowmultiplelogin = no),
`brokeneventsaction`, ConfbridgeListRooms with no conference, a Command answer over 64 KB.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import pytest
from _fake_client import RawClient
from _fixtures import FIXTURES as _FIXTURES

from ami_async.message import Message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk, FakeUser
from ami_async.testing._users import LAB_USERS

FIXTURES = _FIXTURES
TIMEOUT = 5.0
SECRETS = {name: user.secret for name, user in LAB_USERS.items()}


def captured(version: str, name: str) -> list[Message]:
    return Parser().feed((FIXTURES / f"asterisk-{version}" / f"{name}.bin").read_bytes())


def captured_event(version: str, name: str, event: str) -> Message:
    return next(m for m in captured(version, name) if m.get("Event") == event)


def keys(message: Message) -> list[str]:
    return [key for key, _ in message.headers]


@contextlib.asynccontextmanager
async def connected(fake: FakeAsterisk) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(fake.host, fake.port), TIMEOUT)
    client = RawClient(reader, writer)
    try:
        await client.banner()
        yield client
    finally:
        await client.close()


async def login(client: RawClient, user: str = "admin", **headers: str) -> Message:
    fields = {"ActionID": "login-1", "Username": user, "Secret": SECRETS[user], **headers}
    return await client.ask("Login", **fields)


async def events_until_answered(client: RawClient, action: str, **headers: str) -> list[str]:
    """Send an action; the names of the events read before its answer."""
    client.send(action, ActionID="wanted", **headers)
    names = []
    while (message := await client.read()).get("ActionID") != "wanted" or "Event" in message:
        if "Event" in message:
            names.append(message["Event"])
    return names


async def events_of_a_call(client: RawClient, fake: FakeAsterisk) -> list[str]:
    """The names of the events a session gets from login to the end of a short call."""
    call = {"Channel": "Local/100@test", "Application": "Wait", "Data": "1", "Async": "1"}
    names = await events_until_answered(client, "Originate", **call)
    await fake.pbx.wait_idle()
    return names + await events_until_answered(client, "Ping")


async def until_eof(client: RawClient) -> list[Message]:
    return await asyncio.wait_for(client.eof(), TIMEOUT)


# -- item 22: the events of a login ------------------------------------------------------------


@pytest.mark.parametrize(("version", "options"), [("22", {}), ("13", {"version": "2.10.6"})])
async def test_item22_login_sends_successful_auth_as_recorded(
    version: str, options: dict[str, str]
) -> None:
    recorded = captured(version, "login_success")
    async with FakeAsterisk(**options) as fake, connected(fake) as client:  # type: ignore[arg-type]
        assert (await login(client))["Message"] == "Authentication accepted"
        booted, auth = await client.read(), await client.read()
    assert keys(booted) == keys(recorded[1])  # 13: only Status; 22: Uptime, LastReload, Status
    assert keys(auth) == keys(recorded[2])
    for key in ("Event", "Privilege", "Severity", "Service", "EventVersion", "AccountID"):
        assert auth[key] == recorded[2][key]
    assert auth["UsingPassword"] == "0"
    local_port = client.writer.get_extra_info("sockname")[1]
    assert auth["RemoteAddress"] == f"IPV4/TCP/127.0.0.1/{local_port}"
    assert auth["LocalAddress"] == f"IPV4/TCP/127.0.0.1/{fake.port}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", auth["EventTV"])
    assert re.fullmatch(r"0x[0-9a-f]+", auth["SessionID"])


async def test_item22_md5_login_sends_successful_auth_too() -> None:
    import hashlib

    async with FakeAsterisk() as fake, connected(fake) as client:
        challenge = (await client.ask("Challenge", AuthType="MD5"))["Challenge"]
        key = hashlib.md5((challenge + "amp111").encode()).hexdigest()
        response = await client.ask("Login", AuthType="MD5", Username="admin", Key=key)
        assert response["Message"] == "Authentication accepted"
        auth = await client.read_event("SuccessfulAuth")
    assert keys(auth) == keys(captured_event("22", "challenge_md5_login", "SuccessfulAuth"))


async def test_item22_security_events_follow_the_event_mask() -> None:
    async with FakeAsterisk() as fake, connected(fake) as client:
        await login(client, Events="system")
        assert (await client.read())["Event"] == "FullyBooted"
        assert (await client.ask("Ping"))["Ping"] == "Pong"  # no SuccessfulAuth in between


# -- item 5: a restart while logged in ---------------------------------------------------------


async def test_item5_restart_sends_shutdown_closes_and_boots_again() -> None:
    recorded_shutdown = captured_event("22", "restart_midsession", "Shutdown")
    recorded_boot = captured_event("22", "restart_reconnect", "FullyBooted")
    async with FakeAsterisk() as fake:
        port = fake.port
        async with connected(fake) as client:
            await login(client)
            await client.read_event("SuccessfulAuth")
            restarting = asyncio.create_task(fake.restart(down=0.01, boot=0.05))
            rest = await until_eof(client)
            await asyncio.wait_for(restarting, TIMEOUT)
        assert [m.headers for m in rest] == [recorded_shutdown.headers]
        assert fake.port == port
        async with connected(fake) as client:
            await login(client)
            # Logged in during the boot: no FullyBooted yet, it comes on its own.
            assert (await client.read())["Event"] == "SuccessfulAuth"
            booted = await client.read()
        assert keys(booted) == keys(recorded_boot)  # Status first, then Uptime, LastReload
        assert (booted["Uptime"], booted["LastReload"]) == ("0", "0")


async def test_item5_restart_with_a_call_up_ends_the_call_first() -> None:
    recorded = [
        (m["Event"], m.get("Cause"))
        for m in captured("22", "restart_live_call")
        if m.get("Event") in ("SoftHangupRequest", "Hangup", "Shutdown")
    ]
    async with FakeAsterisk(time_scale=0.01, cel=False, cdr=False) as fake:
        async with connected(fake) as client:
            await login(client)
            fake.pbx.dialplan.set("test", "2011", "Answer()", "Wait(100000)")
            client.send(
                "Originate", Channel="Local/2011@test", Application="Wait", Data="1000", Async="1"
            )
            await client.read_event("OriginateResponse")
            await fake.restart(down=0.01, boot=0)
            got = [
                (m["Event"], m.get("Cause"))
                for m in await until_eof(client)
                if m.get("Event") in ("SoftHangupRequest", "Hangup", "Shutdown")
            ]
        assert fake.pbx.channels == {}
    # The recording's order; the peer's extra SoftHangupRequest (Cause 16) included.
    assert sorted(got) == sorted(recorded)
    assert got[:2] == [("SoftHangupRequest", "4")] * 2 and got[-1] == ("Shutdown", None)


# -- item 5: the lab's manager users -----------------------------------------------------------


async def test_item5_the_lab_users_are_known_with_admin_first() -> None:
    fake = FakeAsterisk()
    assert fake.users == {
        "admin": "amp111",
        "monitor": "mon111",
        "filtered": "flt111",
        "filtered_legacy": "flt222",
        "callonly": "cal111",
        "single": "sgl111",
    }
    assert next(iter(fake.users)) == "admin"
    assert FakeAsterisk(users={"me": "pw"}).users == {"me": "pw"}


@pytest.mark.parametrize("version", ["22", "13"])
async def test_item5_read_call_user_gets_call_events_only(version: str) -> None:
    recorded = captured(version, "read_call_only_user")
    options = {"version": "2.10.6"} if version == "13" else {}
    async with (
        FakeAsterisk(time_scale=0.01, **options) as fake,  # type: ignore[arg-type]
        connected(fake) as client,
    ):
        assert (await login(client, "callonly"))["Message"] == "Authentication accepted"
        assert (await client.ask("Ping", ActionID="p"))["Ping"] == "Pong"  # nothing before it
        seen = set(await events_of_a_call(client, fake))
    events = [m for m in recorded if "Event" in m]
    assert {m["Privilege"].split(",")[0] for m in events} == {"call"}
    # 13's Newexten is call class (22: dialplan); the fake writes 22's privileges.
    assert seen == {m["Event"] for m in events} - {"Newexten"}


async def test_item5_monitor_may_not_write() -> None:
    recorded = [m for m in captured("22", "permission_denied") if m.get("Response")]
    async with FakeAsterisk() as fake, connected(fake) as client:
        assert (await login(client, "monitor"))["Message"] == "Authentication accepted"
        denied = [
            await client.ask("Originate", ActionID="a", Channel="Local/100@test", Exten="100"),
            await client.ask("Command", ActionID="b", Command="core show version"),
            await client.ask("CoreStatus", ActionID="c"),
        ]
        assert (await client.ask("Ping"))["Ping"] == "Pong"
    expected = [m["Message"] for m in recorded if m["Response"] == "Error"]
    assert [m["Message"] for m in denied] == expected == ["Permission denied"] * 3


@pytest.mark.parametrize(
    ("user", "recording"),
    [("filtered", "filtered_user"), ("filtered_legacy", "filtered_legacy_user")],
)
async def test_item5_filtered_users_get_what_their_filter_lets_through(
    user: str, recording: str
) -> None:
    recorded = [m["Event"] for m in captured("22", recording) if "Event" in m]
    async with FakeAsterisk(time_scale=0.01) as fake, connected(fake) as client:
        await login(client, user)
        seen = await events_of_a_call(client, fake)
    # FullyBooted passes (it is sent at login, not filtered); OriginateResponse does not.
    assert sorted(seen) == sorted(recorded)


async def test_item5_single_login_is_refused_while_one_is_open() -> None:
    recorded_limit = captured_event("22", "login_already_in_use_holder", "SessionLimit")
    recorded_refusal = captured("22", "login_already_in_use")[0]
    async with (
        FakeAsterisk(auth_failure_delay=0.01) as fake,
        connected(fake) as holder,
        connected(fake) as second,
    ):
        await login(holder, "single")
        await holder.read_event("SuccessfulAuth")
        refusal = await login(second, "single", ActionID="login_already_in_use-1")
        assert await until_eof(second) == []
        limit = await holder.read()
        assert (await holder.ask("Ping"))["Ping"] == "Pong"  # the holder stays
    assert refusal.headers == recorded_refusal.headers
    assert keys(limit) == keys(recorded_limit)
    for key in ("Privilege", "Severity", "AccountID", "SessionTV"):
        assert limit[key] == recorded_limit[key]
    assert limit["RemoteAddress"].endswith(f"/{second.writer.get_extra_info('sockname')[1]}")


# -- item 5: Events under brokeneventsaction, ConfbridgeListRooms, a large Command -------------


async def test_item5_broken_events_action_answers_as_recorded() -> None:
    recorded = {m["ActionID"]: m for m in captured("22", "broken_events_action") if "ActionID" in m}
    async with FakeAsterisk(broken_events_action=True) as fake, connected(fake) as client:
        await login(client, Events="off")
        client.send("Events", ActionID="broken_events_action-2", EventMask="on")
        client.send("Events", ActionID="no-mask")
        off = await client.ask("Events", ActionID="broken_events_action-3", EventMask="off")
        call = await client.ask("Events", ActionID="broken_events_action-5", EventMask="call")
    assert "broken_events_action-2" not in recorded  # no answer in the recording either
    assert off.headers == recorded["broken_events_action-3"].headers
    assert call.headers == recorded["broken_events_action-5"].headers


@pytest.mark.parametrize("version", ["22", "13"])
async def test_item5_confbridge_list_rooms_with_no_conference(version: str) -> None:
    recorded = captured(version, "confbridge_list_rooms_empty")[-1]
    async with FakeAsterisk() as fake, connected(fake) as client:
        await login(client, Events="off")
        answer = await client.ask("ConfbridgeListRooms", ActionID=recorded["ActionID"])
    assert answer.headers == recorded.headers


@pytest.mark.parametrize(("version", "options"), [("22", {}), ("13", {"command_format": "legacy"})])
async def test_item5_command_output_over_64_kb(version: str, options: dict[str, str]) -> None:
    recorded = captured(version, "command_large_output")[-1]
    async with FakeAsterisk(**options) as fake, connected(fake) as client:  # type: ignore[arg-type]
        for exten in range(10000, 12000):
            fake.pbx.dialplan.set("lab-big", str(exten), "NoOp()")
        await login(client, Events="off")
        answer = await client.ask(
            "Command", ActionID=recorded["ActionID"], Command="dialplan show lab-big"
        )

    def lines(message: Message) -> list[str]:
        text = message.get_all("Output") or (message.body or "").split("\n")
        # 22 names the file and line an extension came from; the fake says pbx_config.
        return [re.sub(r"\[extensions_lab_big\.conf:\d+\]", "[pbx_config]", x) for x in text]

    assert len(client.raw) > 65536
    assert lines(answer) == lines(recorded)
    assert [k for k in keys(answer) if k != "Output"] == [
        k for k in keys(recorded) if k != "Output"
    ]


async def test_item5_a_user_of_ones_own_with_fakeuser() -> None:
    users = {"app": FakeUser("s3cret", read="user", write="user")}
    async with FakeAsterisk(users=users) as fake, connected(fake) as client:
        response = await client.ask("Login", Username="app", Secret="s3cret")
        assert response["Message"] == "Authentication accepted"
        # read=user: no FullyBooted (system), no SuccessfulAuth (security).
        assert (await client.ask("UserEvent", ActionID="u", UserEvent="Mine"))["ActionID"] == "u"
        assert (await client.read())["UserEvent"] == "Mine"
        denied = await client.ask("Originate", Channel="Local/100@test", Exten="100")
        assert denied["Message"] == "Permission denied"


async def test_item5_a_client_lives_through_a_restart() -> None:
    import ami_async

    async with (
        FakeAsterisk() as fake,
        ami_async.connect(
            fake.host,
            fake.port,
            username="admin",
            secret="amp111",
            ping_interval=None,
            reconnect_delay=0.05,
        ) as ami,
    ):
        async with ami.events("Shutdown", "FullyBooted") as events:
            await fake.restart(down=0.1, boot=0.05)
            shutdown = await events.get(timeout=TIMEOUT)
            # The new session's FullyBooted comes on its own once the boot ends.
            booted = await events.get(timeout=TIMEOUT)
        assert (shutdown["Shutdown"], shutdown["Restart"]) == ("Cleanly", "True")
        assert (booted["Status"], booted["Uptime"]) == ("Fully Booted", "0")
        await ami.wait_connected(timeout=TIMEOUT)
        assert (await ami.ping())["Ping"] == "Pong"
        assert ami.reconnects == 1
