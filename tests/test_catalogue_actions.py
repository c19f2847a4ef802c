"""Issue 13, item 2: ``client.actions`` against the simulated PBX, a sample of every family
(channel, queue, bridge, confbridge, parking, PJSIP lists, database, MixMonitor, config),
and the version check before anything is sent.

Where FakeAsterisk does not model an action, ``pbx.script`` answers it as Asterisk 22 does.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from _client import ami, client_for, pbx

from ami_async import ActionError, ActionTimeoutError, Client, EventList, InvalidActionError
from ami_async.message import Message, Response
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures


def names_sent(server: FakeAsterisk) -> list[str]:
    return [m.get("Action", "") for m in server.actions]


def sent(server: FakeAsterisk, name: str) -> Message:
    return next(m for m in reversed(server.actions) if m.get("Action", "").lower() == name.lower())


def script_list(server: FakeAsterisk, action: str, items: list[dict[str, str]], end: str) -> None:
    server.script(
        action,
        {"Response": "Success", "EventList": "start", "Message": "will follow"},
        *items,
        {"Event": end, "EventList": "Complete", "ListItems": str(len(items))},
    )


async def test_item2_first_action_asks_the_version_once(pbx: FakeAsterisk, ami: Client) -> None:
    assert ami.asterisk_version is None  # not asked at login: nothing extra on the wire
    assert "CoreSettings" not in names_sent(pbx)
    await ami.actions.ping()
    assert ami.asterisk_version == "22.0.0"
    await ami.actions.ping()
    assert names_sent(pbx).count("CoreSettings") == 1


async def test_item2_channel_family(pbx: FakeAsterisk, ami: Client) -> None:
    await ami.actions.setvar(variable="GLOBALX", value="1")
    got = await ami.actions.getvar(variable="GLOBALX")
    assert got["Value"] == "1"
    channels = await ami.actions.core_show_channels()
    assert isinstance(channels, EventList) and channels.complete is not None
    assert channels.complete.name == "CoreShowChannelsComplete"
    status = await ami.actions.status()
    assert isinstance(status, EventList)
    with pytest.raises(ActionError):
        await ami.actions.hangup(channel="PJSIP/nobody-00000000")
    assert sent(pbx, "Hangup")["Channel"] == "PJSIP/nobody-00000000"


async def test_item2_queue_family(pbx: FakeAsterisk, ami: Client) -> None:
    status = await ami.actions.queue_status()
    assert isinstance(status, EventList)
    assert status.complete is not None and status.complete.name == "QueueStatusComplete"
    summary = await ami.actions.queue_summary(queue="sales")
    assert isinstance(summary, EventList)
    pbx.script("QueueAdd", {"Response": "Success", "Message": "Added interface to queue"})
    answer = await ami.actions.queue_add(queue="sales", interface="PJSIP/100", paused=True)
    assert isinstance(answer, Response) and answer.success
    action = sent(pbx, "QueueAdd")
    assert action["Queue"] == "sales" and action["Interface"] == "PJSIP/100"
    assert action["Paused"] == "true"
    assert action.get("Penalty") is None  # None leaves a header out


async def test_item2_bridge_and_parking_lists(pbx: FakeAsterisk, ami: Client) -> None:
    script_list(
        pbx,
        "BridgeList",
        [{"Event": "BridgeListItem", "BridgeUniqueid": "b1", "BridgeType": "basic"}],
        "BridgeListComplete",
    )
    bridges = await ami.actions.bridge_list(bridge_type="basic")
    assert [item["BridgeUniqueid"] for item in bridges] == ["b1"]
    assert sent(pbx, "BridgeList")["BridgeType"] == "basic"
    script_list(pbx, "ParkedCalls", [], "ParkedCallsComplete")
    parked = await ami.actions.parked_calls()
    assert len(parked) == 0 and parked.complete is not None


async def test_item2_confbridge_error(ami: Client) -> None:
    with pytest.raises(ActionError, match="No active conferences"):
        await ami.actions.confbridge_list_rooms()


async def test_item2_pjsip_list_ends_by_the_catalogues_completion(pbx: FakeAsterisk) -> None:
    """A server that marks no list: the catalogue's completion event ends it (the client's
    own table does not know PJSIPShowContacts)."""
    client = client_for(pbx)
    assert "pjsipshowcontacts" not in client.list_completions
    pbx.script(
        "PJSIPShowContacts",
        {"Response": "Success", "Message": "A listing of Contacts follows"},
        {"Event": "ContactList", "ObjectName": "100;@abc"},
        {"Event": "ContactListComplete", "ListItems": "1"},
    )
    async with client:
        contacts = await client.actions.pjsip_show_contacts(timeout=5)
    assert [c["ObjectName"] for c in contacts] == ["100;@abc"]
    assert contacts.complete is not None and contacts.complete.name == "ContactListComplete"


async def test_item2_database_family(pbx: FakeAsterisk, ami: Client) -> None:
    await ami.actions.db_put(family="cf", key="100", val="200")
    got = await ami.actions.db_get(family="cf", key="100")
    assert isinstance(got, EventList) and got.items[0]["Val"] == "200"
    await ami.actions.db_del(family="cf", key="100")
    with pytest.raises(ActionError):
        await ami.actions.db_get(family="cf", key="100")


async def test_item2_mixmonitor_and_config(pbx: FakeAsterisk, ami: Client) -> None:
    pbx.script("MixMonitor", {"Response": "Success", "MixMonitorID": "0x1"})
    answer = await ami.actions.mix_monitor(channel="PJSIP/100-1", file="x.wav", options="b")
    assert answer["MixMonitorID"] == "0x1"
    assert sent(pbx, "MixMonitor")["Options"] == "b"
    pbx.script("GetConfig", {"Response": "Success", "Category-000000": "general"})
    config = await ami.actions.get_config(filename="manager.conf")
    assert config["Category-000000"] == "general"


async def test_item2_timeout_bounds_the_action(pbx: FakeAsterisk, ami: Client) -> None:
    pbx.script("QueueReload")  # never answered
    with pytest.raises(ActionTimeoutError):
        await ami.actions.queue_reload(timeout=0.2)
    assert ami.pending_actions == 0


async def test_item2_action_the_server_lacks_fails_before_sending(pbx: FakeAsterisk) -> None:
    """SIPpeers is gone from Asterisk 22: refused, and the server never sees it."""
    async with client_for(pbx) as client:
        with pytest.raises(InvalidActionError, match=r"SIPpeers.*22\.0\.0.*20\.20\.1"):
            await client.actions.sip_peers()
        await client.actions.ping()
    assert "SIPpeers" not in names_sent(pbx)


async def test_item2_asterisk_13_lacks_the_newer_actions() -> None:
    async with FakeAsterisk(command_format="legacy", version="2.10.4") as server:
        async with client_for(server) as client:
            with pytest.raises(InvalidActionError, match="PJSIPShowAors"):
                await client.actions.pjsip_show_aors()
            assert client.asterisk_version == "13.38.3"
            with pytest.raises(InvalidActionError, match="DBGetTree"):
                await client.actions.db_get_tree(family="cf")
        assert "PJSIPShowAors" not in names_sent(server)
        assert "DBGetTree" not in names_sent(server)


async def test_item2_user_without_coresettings_goes_by_the_banner(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    """``callonly`` may not run CoreSettings: no version, asked once, the banner's AMI
    11.0.0 (Asterisk 22) still refuses SIPpeers; allowed actions go through."""
    client = Client(
        pbx.host, pbx.port, username="callonly", secret="cal111", ping_interval=None, timeout=5
    )
    with caplog.at_level(logging.INFO, logger="ami_async"):
        async with client:
            with pytest.raises(InvalidActionError, match=r"AMI 11\.0\.0"):
                await client.actions.sip_peers()
            assert client.asterisk_version is None
            assert isinstance(await client.actions.status(), EventList)
    assert names_sent(pbx).count("CoreSettings") == 1
    assert any("no AsteriskVersion" in r.getMessage() for r in caplog.records)


async def test_item2_version_is_asked_again_after_a_reconnect(pbx: FakeAsterisk) -> None:
    client = client_for(pbx, reconnect_delay=0.01)
    async with client:
        assert await client.fetch_asterisk_version() == "22.0.0"
        pbx.version = "9.0.0"  # the server came back as Asterisk 20
        await pbx.drop()
        for _ in range(500):
            if client.reconnects and client.connected:
                break
            await asyncio.sleep(0.01)
        assert client.asterisk_version is None
        await client.actions.ping()
        assert client.asterisk_version == "20.0.0"


def test_item2_required_parameters_are_required() -> None:
    client = Client(username="u", secret="s")
    with pytest.raises(TypeError):
        client.actions.queue_add(queue="sales")  # type: ignore[call-arg]
    assert repr(client.actions).startswith("<Actions of <Client u@")
    assert client.actions is client.actions
