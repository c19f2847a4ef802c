"""The action helpers against FakeAsterisk: originate, command, db, vars, lists."""

from __future__ import annotations

import pytest
from _client import ami, client_for, pbx

import ami_async
from ami_async import (
    ActionError,
    Client,
)
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures (tests/_client.py)


# -- helpers -------------------------------------------------------------------------------


async def test_originate_waits_for_the_originate_response(pbx: FakeAsterisk, ami: Client) -> None:
    sub = ami.events("OriginateResponse")
    result = await ami.originate(
        "Local/100@test", application="Wait", data="1", variables={"A": "1"}, timeout=5
    )
    assert result.success
    assert result.reason == ami_async.OriginateReason.ANSWERED
    assert result.reason_text == "answered"
    assert result.event is not None
    assert (await sub.get(timeout=2)) is result.event  # subscribers see it too
    sent = [a for a in pbx.actions if a["Action"] == "Originate"][-1]
    assert sent["Async"] == "true"
    assert sent["Timeout"] == "5000"
    assert sent.get_all("Variable") == ["A=1"]


async def test_originate_to_a_missing_extension_is_a_failed_result(
    pbx: FakeAsterisk, ami: Client
) -> None:
    result = await ami.originate("Local/999@test", application="Wait", data="1", timeout=5)
    assert not result.success
    assert result.reason == 0
    assert result.uniqueid is None


async def test_originate_refused_by_the_server_raises(pbx: FakeAsterisk, ami: Client) -> None:
    pbx.script("Originate", {"Response": "Error", "Message": "Permission denied"})
    with pytest.raises(ActionError, match="Permission denied"):
        await ami.originate("Local/100@test", application="Wait", data="1")
    assert ami.pending_actions == 0


async def test_originate_without_waiting(pbx: FakeAsterisk, ami: Client) -> None:
    result = await ami.originate("Local/100@test", exten="100", context="test", wait=False)
    assert result.success
    assert result.event is None
    assert result.reason_text == "queued"


async def test_command_helper_in_both_formats() -> None:
    for fmt in ("modern", "legacy"):
        async with FakeAsterisk(command_format=fmt) as server, client_for(server) as ami:
            out = await ami.command("core show version")
            assert out.startswith("Asterisk ")
            assert "--END COMMAND--" not in out
            assert not out.endswith("\n")


async def test_db_and_var_helpers(ami: Client) -> None:
    await ami.db_put("fam", "k", "v 1")
    assert await ami.db_get("fam", "k") == "v 1"
    await ami.db_del("fam", "k")
    with pytest.raises(ActionError):
        await ami.db_get("fam", "k")
    await ami.setvar("G", "42")
    assert await ami.getvar("G") == "42"
    assert await ami.getvar("UNSET") == ""


async def test_list_helpers_return_events(ami: Client) -> None:
    assert isinstance(await ami.core_show_channels(), list)
    assert isinstance(await ami.status(), list)
    settings = await ami.core_settings()
    assert "AMIversion" in settings


async def test_originate_variables_are_escaped_for_asterisk(pbx: FakeAsterisk, ami: Client) -> None:
    await ami.originate(
        "Local/100@test", application="Wait", data="1", variables={"V": 'a,b "c" \\d'}
    )
    sent = [a for a in pbx.actions if a["Action"] == "Originate"][-1]
    assert sent.get_all("Variable") == ['V=a\\,b \\"c\\" \\\\d']


async def test_originate_refuses_an_async_override(ami: Client) -> None:
    with pytest.raises(ValueError, match="Async"):
        await ami.originate("Local/1@x", application="Wait", Async="false")


async def test_failing_cli_command_error_says_why(pbx: FakeAsterisk, ami: Client) -> None:
    with pytest.raises(ActionError) as info:
        await ami.command("this is not a command")
    assert "No such command" in str(info.value)


async def test_confbridge_list_rooms_with_no_conference_is_empty(
    pbx: FakeAsterisk, ami: Client
) -> None:
    # app_confbridge answers "No active conferences." as an error when there are none
    pbx.script("ConfbridgeListRooms", {"Response": "Error", "Message": "No active conferences."})
    assert await ami.confbridge_list_rooms() == []
    pbx.script("ConfbridgeListRooms", {"Response": "Error", "Message": "Permission denied"})
    with pytest.raises(ActionError, match="Permission denied"):
        await ami.confbridge_list_rooms()


async def test_originate_and_wait_with_call_events_off_fails_fast(pbx: FakeAsterisk) -> None:
    async with client_for(pbx, events="system,user") as ami:
        with pytest.raises(ValueError, match="'call' event class"):
            await ami.originate("Local/100@test", application="Wait", data="1")
        assert "Originate" not in [a["Action"] for a in pbx.actions]
        queued = await ami.originate("Local/100@test", application="Wait", data="1", wait=False)
        assert queued.success
        await ami.set_events("call")
        assert (await ami.originate("Local/100@test", application="Wait", data="1")).success
