"""Real Asterisk 22 and 13 traffic replayed through the whole client.

FakeAsterisk serves each recorded transcript (``shared/fixtures/*/<scenario>.ami``)
byte for byte, ActionIDs mapped to the client's; the assertions are what a user
of the client sees.
"""

from __future__ import annotations

import pytest
from _fixtures import fixtures_dir, replayed

import ami_async
from ami_async import ActionError, Client, OriginateReason
from ami_async.testing import FakeAsterisk

BOTH = pytest.mark.parametrize("version", ["asterisk-22", "asterisk-13"])
VERSIONS = {"asterisk-22": "11.0.0", "asterisk-13": "2.10.6"}


@BOTH
async def test_login_success(version: str) -> None:
    async with replayed(version, "login_success") as ami:
        assert ami.connected
        assert ami.ami_version == VERSIONS[version]
        assert ami.banner == f"Asterisk Call Manager/{VERSIONS[version]}"


@BOTH
async def test_login_success_fully_booted_reaches_a_subscriber(version: str) -> None:
    async with FakeAsterisk() as pbx:
        await pbx.replay(fixtures_dir() / version / "login_success.ami")
        client = Client(pbx.host, pbx.port, username="admin", secret="x", ping_interval=None)
        booted = client.events("FullyBooted")  # registered before connecting
        async with client:
            ev = await booted.get(timeout=2)
        assert ev["Status"] == "Fully Booted"
        if version == "asterisk-22":
            assert "Uptime" in ev
        else:
            assert "Uptime" not in ev  # Asterisk 13 sends only Event/Privilege/Status


@BOTH
async def test_challenge_md5_login(version: str) -> None:
    async with replayed(version, "challenge_md5_login", auth="md5") as ami:
        pong = await ami.ping()
        assert pong["Ping"] == "Pong"


@BOTH
async def test_originate_async(version: str) -> None:
    async with replayed(version, "originate_async") as ami:
        hangups = ami.events("Hangup")
        result = await ami.originate(
            "Local/100@test",
            application="Wait",
            data="1",
            caller_id="Lab <1000>",
            variables={"LABVAR1": "one"},
        )
        assert result.success
        assert result.reason is OriginateReason.ANSWERED
        assert result.channel is not None
        assert result.channel.startswith("Local/100@test-")
        assert result.channel.endswith(";1")
        assert result.uniqueid is not None
        assert result.event is not None
        assert result.event.name == "OriginateResponse"
        # the call's events that followed reach the subscription
        first = await hangups.get(timeout=2)
        assert first["Channel"].startswith("Local/100@test-")


@BOTH
async def test_originate_fail_async(version: str) -> None:
    async with replayed(version, "originate_fail_async") as ami:
        result = await ami.originate("Local/999@test", application="Wait", data="1")
        assert result.success is False
        assert result.reason is OriginateReason.FAILED
        assert result.uniqueid is None
        assert result.channel == "Local/999@test"


@BOTH
async def test_coreshowchannels(version: str) -> None:
    async with replayed(version, "coreshowchannels") as ami:
        for _ in range(2):
            queued = await ami.originate(
                "Local/700@test", application="Wait", data="30", wait=False
            )
            assert queued.success
        channels = await ami.core_show_channels()
        names = sorted(c["Channel"] for c in channels)
        assert len(names) == 4
        assert all(n.startswith("Local/700@test-") for n in names)
        assert {n[-2:] for n in names} == {";1", ";2"}


@BOTH
async def test_command_both_formats_give_the_same_kind_of_result(version: str) -> None:
    async with replayed(version, "command", events=False) as ami:
        if version == "asterisk-13":
            await ami.originate("Local/700@test", application="Wait", data="30", wait=False)
        out = await ami.command("core show version")
        expected = "Asterisk 22.11.0-rc1" if version == "asterisk-22" else "Asterisk 13.38.3"
        assert out.startswith(expected)
        assert "\n" not in out  # one line, final newline removed in both formats
        channels = (await ami.command("core show channels")).split("\n")
        assert channels[0].startswith("Channel ")
        assert channels[0].endswith(" ")  # trailing spaces of the CLI table are kept
        active = "0 active channels" if version == "asterisk-22" else "2 active channels"
        assert active in channels
        if version == "asterisk-22":
            with pytest.raises(ActionError):
                await ami.command("this is not a command")
        else:  # 13 answers Follows with the CLI's complaint as text
            text = await ami.command("this is not a command")
            assert text.startswith("No such command 'this is not a command'")
        commands = (await ami.command("manager show commands")).split("\n")
        assert any(line.split()[:1] == ["Originate"] for line in commands)
        with pytest.raises(ActionError, match="No command provided"):
            await ami.send_action("Command")


@BOTH
async def test_db(version: str) -> None:
    async with replayed(version, "db", events=False) as ami:
        await ami.db_put("lab", "k1", "v1")
        await ami.db_put("lab", "k2", "value with spaces")
        assert await ami.db_get("lab", "k1") == "v1"
        with pytest.raises(ActionError, match="Database entry not found"):
            await ami.db_get("lab", "missing")
        if version == "asterisk-22":
            tree = await ami.collect("DBGetTree", Family="lab")
            assert [i["Val"] for i in tree] == ["v1", "value with spaces"]
        else:
            with pytest.raises(ActionError, match="Invalid/unknown command: DBGetTree"):
                await ami.collect("DBGetTree", Family="lab")
        await ami.db_del("lab", "k1")
        if version == "asterisk-22":
            with pytest.raises(ActionError, match="could not be deleted"):
                await ami.db_del("lab", "k1")
        else:
            assert (await ami.db_del("lab", "k1")).success
        await ami.db_del_tree("lab")


async def test_confbridge() -> None:
    async with replayed("asterisk-22", "confbridge") as ami:
        for _ in range(2):
            await ami.originate("Local/300@test", application="Wait", data="20", wait=False)
        rooms = await ami.confbridge_list_rooms()
        assert [r["Conference"] for r in rooms] == ["1234"]
        members = await ami.confbridge_list("1234")
        assert len(members) == 2
        assert all(m.name == "ConfbridgeList" for m in members)
        with pytest.raises(ActionError, match="No Conference by that name found"):
            await ami.confbridge_list("9999")


@BOTH
async def test_status(version: str) -> None:
    async with replayed(version, "status") as ami:
        call = await ami.originate("Local/700@test", application="Wait", data="30", wait=False)
        assert call.success
        everything = await ami.status()
        assert len(everything) == 2
        channel = everything[0]["Channel"]
        one = await ami.status(channel, variables=["FOO", "CHANNEL(state)"])
        assert len(one) == 1
        assert one[0].variables == {"FOO": "(null)", "CHANNEL(state)": "Up"}
        with pytest.raises(ActionError, match="No such channel"):
            await ami.status("Local/nonexistent-0000;1")
        hung = await ami.hangup(channel, cause=16)
        assert hung["Message"] == "Channel Hungup"


@BOTH
async def test_queue(version: str) -> None:
    async with replayed(version, "queue") as ami:
        await ami.originate("Local/400@test", application="Wait", data="20", wait=False)
        status = await ami.queue_status()
        assert [e.name for e in status] == [
            "QueueParams",
            "QueueMember",
            "QueueEntry",
            "QueueParams",
            "QueueMember",
        ]
        support = await ami.queue_status("support")
        assert {e["Queue"] for e in support} == {"support"}
        summary = await ami.queue_summary()
        assert [e["Queue"] for e in summary] == ["support", "sales"]
        assert await ami.queue_summary("nosuchqueue") == []


async def test_recorded_action_ids_never_leak_to_the_user() -> None:
    async with replayed("asterisk-22", "ping", events=False) as ami:
        pong = await ami.ping()
        assert pong.action_id is not None
        assert not pong.action_id.startswith("ping-")
        assert isinstance(ami, ami_async.Client)
