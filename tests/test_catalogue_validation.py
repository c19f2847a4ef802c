"""Issue 13, item 3: ``send_action`` checks an action's name and required headers against
the catalogue for the server's version: a WARNING once per name by default,
`InvalidActionError` before anything is sent with ``strict=True``."""

from __future__ import annotations

import logging

import pytest
from _client import ami, client_for, pbx

from ami_async import ActionError, Client, InvalidActionError
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def sent_names(server: FakeAsterisk) -> list[str]:
    return [m.get("Action", "") for m in server.actions]


async def test_item3_missing_required_header_warns_once_and_is_sent(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    pbx.script("QueueAdd", {"Response": "Error", "Message": "Unable to add interface"})
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        for _ in range(3):
            await ami.send_action("QueueAdd", Queue="sales", check=False)
    found = [w for w in warnings_of(caplog) if "QueueAdd" in w]
    assert len(found) == 1, found
    assert "Interface" in found[0] and "strict=True" in found[0]
    assert sent_names(pbx).count("QueueAdd") == 3


async def test_item3_unknown_action_warns_once(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        for _ in range(2):
            with pytest.raises(ActionError):
                await ami.send_action("NoSuchThing")
    found = [w for w in warnings_of(caplog) if "NoSuchThing" in w]
    assert len(found) == 1 and "not an action Asterisk documents" in found[0]


async def test_item3_a_correct_action_logs_nothing(
    ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Header names in any case, as AMI reads them."""
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        await ami.send_action("Ping")
        await ami.send_action("Setvar", variable="X", VALUE="1")
        await ami.send_action("DBPut", Family="f", Key="k", Val="v")
    assert warnings_of(caplog) == []


async def test_item3_strict_refuses_before_sending(pbx: FakeAsterisk) -> None:
    async with client_for(pbx, strict=True) as client:
        with pytest.raises(InvalidActionError, match=r"missing required header.*Interface"):
            await client.send_action("QueueAdd", Queue="sales")
        with pytest.raises(InvalidActionError, match="not an action Asterisk documents"):
            await client.send_action("NoSuchThing")
        # Asterisk 22 (its banner's AMI 11.0.0, CoreSettings not asked yet) has no SIPpeers.
        with pytest.raises(InvalidActionError, match="SIPpeers"):
            await client.send_action("SIPpeers")
        assert client.pending_actions == 0
        await client.send_action("Ping")
    assert not {"QueueAdd", "NoSuchThing", "SIPpeers"} & set(sent_names(pbx))


async def test_item3_strict_can_be_switched_on_a_running_client(
    pbx: FakeAsterisk, ami: Client
) -> None:
    assert ami.strict is False
    ami.strict = True
    with pytest.raises(InvalidActionError):
        await ami.send_action("DBPut", Family="f")
    ami.strict = False
    pbx.script("DBPut", {"Response": "Success", "Message": "Updated database successfully"})
    await ami.send_action("DBPut", Family="f")


async def test_item3_checked_against_the_version_once_known(pbx: FakeAsterisk) -> None:
    """After CoreSettings said 13.38.3, an action only 18+ documents is refused (strict)."""
    old = FakeAsterisk(command_format="legacy", version="2.10.4")
    async with old, client_for(old, strict=True) as client:
        assert await client.fetch_asterisk_version() == "13.38.3"
        with pytest.raises(InvalidActionError, match=r"Asterisk 13\.38\.3.*18\.26\.4"):
            await client.send_action("DBGetTree", Family="cf")
        await client.send_action("Ping")


def test_item3_strict_is_an_option_of_client() -> None:
    assert Client(username="u", secret="s", strict=True).strict is True
    assert Client(username="u", secret="s").strict is False
