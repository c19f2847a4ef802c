"""Issue 13 under attack: how ``client.actions`` asks the server's version (once, shared
by concurrent callers, cancellable, within the action's timeout), versions it cannot
read, each catalogue version's missing actions, header injection."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import keyword
import logging

import pytest
from _client import ami, client_for, pbx

from ami_async import (
    ActionError,
    ActionTimeoutError,
    Client,
    ConnectionLostError,
    EventList,
    InvalidActionError,
    catalogue,
)
from ami_async.catalogue._actions import Actions
from ami_async.catalogue._calls import ActionCaller
from ami_async.catalogue._naming import argument
from ami_async.protocol import HeaderValue
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures


def count(server: FakeAsterisk, name: str) -> int:
    return sum(1 for m in server.actions if m.get("Action", "").lower() == name.lower())


def core_settings(version: str) -> dict[str, str]:
    return {"Response": "Success", "AMIversion": "11.0.0", "AsteriskVersion": version}


async def test_fifty_concurrent_first_actions_ask_the_version_once(
    pbx: FakeAsterisk, ami: Client
) -> None:
    answers = await asyncio.gather(*(ami.actions.ping() for _ in range(50)))
    assert all(a.success for a in answers)
    assert count(pbx, "CoreSettings") == 1
    assert count(pbx, "Ping") == 50
    assert ami.asterisk_version == "22.0.0"
    assert ami.pending_actions == 0


async def test_concurrent_callers_share_one_refusal(pbx: FakeAsterisk) -> None:
    """A user without CoreSettings: asked once for all, every caller goes by the banner."""
    client = Client(
        pbx.host, pbx.port, username="callonly", secret="cal111", ping_interval=None, timeout=5
    )
    async with client:
        results = await asyncio.gather(
            *(client.actions.sip_peers() for _ in range(20)), return_exceptions=True
        )
    assert all(isinstance(r, InvalidActionError) for r in results), results
    assert count(pbx, "CoreSettings") == 1
    assert count(pbx, "SIPpeers") == 0


async def test_cancelled_while_the_version_is_asked_leaves_nothing_behind(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.script("CoreSettings")  # never answered
    task = asyncio.create_task(ami.actions.ping())
    await pbx.wait_for_action("CoreSettings")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)  # the shared ask's own cancellation runs
    assert ami.pending_actions == 0
    # The next call asks afresh (not the abandoned ask), and gets its answer.
    pbx.script("CoreSettings", core_settings("20.7.0"))
    assert (await ami.actions.ping()).success
    assert ami.asterisk_version == "20.7.0"
    assert count(pbx, "CoreSettings") == 2
    assert count(pbx, "Ping") == 1


async def test_one_caller_cancelled_the_others_still_get_the_version(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.script("CoreSettings")  # the first one is answered by hand below
    first = asyncio.create_task(ami.actions.ping())
    asked = await pbx.wait_for_action("CoreSettings")
    second = asyncio.create_task(ami.fetch_asterisk_version(timeout=5))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not second.done()  # still waiting on the one CoreSettings in flight
    assert ami.pending_actions == 1
    # Answer the CoreSettings in flight by its ActionID.
    answer = f"Response: Success\r\nActionID: {asked['ActionID']}\r\nAsteriskVersion: 18.20.0\r\n"
    await pbx.send_raw(answer.encode() + b"\r\n")
    assert await asyncio.wait_for(second, 5) == "18.20.0"
    assert count(pbx, "CoreSettings") == 1 and count(pbx, "Ping") == 0


async def test_the_version_fetch_counts_against_the_actions_timeout(
    pbx: FakeAsterisk, ami: Client
) -> None:
    pbx.script("CoreSettings")  # never answered
    with pytest.raises(ActionTimeoutError, match="CoreSettings"):
        await ami.actions.queue_reload(timeout=0.2)
    assert count(pbx, "QueueReload") == 0  # nothing sent after the version fetch failed
    assert ami.pending_actions == 0
    assert ami.asterisk_version is None
    # Asked again on the next call (a timeout is not an answer).
    pbx.script("CoreSettings", core_settings("22.1.0"))
    await ami.actions.ping(timeout=5)
    assert ami.asterisk_version == "22.1.0"


async def test_not_connected_names_the_action_not_coresettings() -> None:
    client = Client("127.0.0.1", 1, username="u", secret="s")
    with pytest.raises(ConnectionLostError, match=r"^Ping: not connected"):
        await client.actions.ping()
    with pytest.raises(ValueError, match="timeout"):
        await client.actions.ping(timeout=-1)


@pytest.mark.parametrize(
    ("server_kw", "version", "present", "absent"),
    [
        # AMI 2.x is Asterisk 13: no DBGetTree, no PJSIPSetMaintenance; MixMonitorMute and
        # the SIP actions are there (Asterisk documents MixMonitorMute from 13.38 on).
        (
            {"command_format": "legacy", "version": "2.10.4"},
            "13.38.3",
            ["mix_monitor_mute", "sip_peers"],
            ["db_get_tree", "pjsip_set_maintenance"],
        ),
        ({"version": "7.0.0"}, "18.0.0", ["db_get_tree", "sip_peers"], ["pjsip_set_maintenance"]),
        ({"version": "9.0.0"}, "20.0.0", ["pjsip_set_maintenance", "sip_peers"], ["filter_list"]),
        ({"version": "11.0.0"}, "22.0.0", ["pjsip_set_maintenance"], ["sip_peers", "monitor"]),
    ],
)
async def test_each_version_refuses_what_it_lacks_before_sending(
    server_kw: dict[str, str], version: str, present: list[str], absent: list[str]
) -> None:
    required = {
        "mix_monitor_mute": {"channel": "PJSIP/1-1", "direction": "both", "state": "1"},
        "db_get_tree": {},
        "sip_peers": {},
        "pjsip_set_maintenance": {"endpoint": "100", "state": "on"},
        "filter_list": {},
        "monitor": {"channel": "PJSIP/1-1"},
    }
    async with FakeAsterisk(auth_failure_delay=0.05, **server_kw) as server:  # type: ignore[arg-type]
        async with client_for(server) as client:
            for method in absent:
                with pytest.raises(InvalidActionError, match=f"Asterisk {version}"):
                    await getattr(client.actions, method)(**required[method])
            for method in present:
                # The fake may not model it: what counts is that it was sent.
                with contextlib.suppress(ActionError):
                    await getattr(client.actions, method)(**required[method])
            assert client.asterisk_version == version
        names = {m.get("Action", "") for m in server.actions}
    for method in absent:
        assert not {n for n in names if catalogue.method_name(n) == method}
    for method in present:
        assert {n for n in names if catalogue.method_name(n) == method}, method


@pytest.mark.parametrize(
    ("reported", "refused", "allowed"),
    [
        # No number: by the banner (AMI 11.0.0, Asterisk 22).
        ("GIT-master-abc1234", "sip_peers", "pjsip_set_maintenance"),
        ("SVN-trunk-r400000", "sip_peers", "pjsip_set_maintenance"),
        ("", "sip_peers", "pjsip_set_maintenance"),
        # A certified release: its major (18).
        ("certified/18.9-cert5", "pjsip_set_maintenance", "sip_peers"),
        ("GIT-18-1a2b3c4", "pjsip_set_maintenance", "sip_peers"),
        # Older than the catalogue: its oldest (13); newer: its newest (22).
        ("1.8.32.3", "db_get_tree", "sip_peers"),
        ("99.0.0", "sip_peers", "pjsip_set_maintenance"),
    ],
)
async def test_versions_the_catalogue_does_not_know_degrade(
    pbx: FakeAsterisk, ami: Client, reported: str, refused: str, allowed: str
) -> None:
    pbx.script("CoreSettings", core_settings(reported))
    args = {"pjsip_set_maintenance": {"endpoint": "100", "state": "on"}}
    with pytest.raises(InvalidActionError, match="does not have this action") as refusal:
        await getattr(ami.actions, refused)(**args.get(refused, {}))
    # A version with no number says which catalogue version it was read as (the banner's).
    read_as = "read as 22.11.0-rc1" in str(refusal.value)
    assert read_as == (catalogue.resolve_version(reported) is None), refusal.value
    with pytest.raises(ActionError):  # sent: the fake has no such action
        await getattr(ami.actions, allowed)(**args.get(allowed, {}), timeout=5)
    assert ami.asterisk_version == (reported or None)
    assert count(pbx, "CoreSettings") == 1


async def test_header_injection_is_refused_before_anything_of_it_is_sent(
    pbx: FakeAsterisk, ami: Client
) -> None:
    bad_values: list[HeaderValue] = [
        "x\r\nAction: Hangup",
        "x\nChannel: all",
        "x\r",
        ["ok", "b\r\nc"],
    ]
    for bad in bad_values:
        with pytest.raises(InvalidActionError, match="not allowed in a value"):
            await ami.actions.setvar(variable="X", value=bad)
    with pytest.raises(InvalidActionError):
        await ami.actions.originate(channel="Local/1@x\r\nAction: Logoff")
    assert count(pbx, "Setvar") == count(pbx, "Originate") == count(pbx, "Hangup") == 0
    assert count(pbx, "Logoff") == 0


async def test_list_actions_answer_eventlists_on_every_version() -> None:
    server = FakeAsterisk(command_format="legacy", version="2.10.4")
    async with server, client_for(server) as client:
        channels = await client.actions.core_show_channels()
    assert isinstance(channels, EventList)
    assert channels.complete is not None
    assert channels.complete.name == "CoreShowChannelsComplete"


async def test_warning_never_carries_header_values(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The check names the action and the missing headers, never what was given."""
    pbx.script("Login", {"Response": "Error", "Message": "Authentication failed"})
    with caplog.at_level(logging.DEBUG, logger="ami_async"):
        await ami.send_action("Login", Secret="s3cr3t-value", check=False)
        await ami.send_action("QueueAdd", Queue="q", Penalty="s3cr3t-value", check=False)
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert "QueueAdd" in text and "s3cr3t-value" not in text


async def test_pattern_headers_take_a_mapping_or_a_numbered_list(
    pbx: FakeAsterisk, ami: Client
) -> None:
    """``HeaderN``, ``Action-000000``, ``UnitAmount(0)`` stand for families of headers."""
    pbx.script("UserEvent", {"Response": "Success"})
    await ami.actions.user_event(user_event="Crm", header_n={"CallerID": "100", "Queue": "q"})
    sent = next(m for m in pbx.actions if m.get("Action") == "UserEvent")
    assert (sent["UserEvent"], sent["CallerID"], sent["Queue"]) == ("Crm", "100", "q")
    assert sent.get("HeaderN") is None
    pbx.script("UpdateConfig", {"Response": "Success"})
    await ami.actions.update_config(
        src_filename="a.conf",
        dst_filename="a.conf",
        action_000000=["NewCat", "Append"],
        cat_000000=["sales", "sales"],
        var_000000={"Var-000001": "strategy"},
        value_000000={"Value-000001": "ringall"},
    )
    sent = next(m for m in pbx.actions if m.get("Action") == "UpdateConfig")
    assert (sent["Action-000000"], sent["Action-000001"]) == ("NewCat", "Append")
    assert (sent["Cat-000000"], sent["Cat-000001"]) == ("sales", "sales")
    assert (sent["Var-000001"], sent["Value-000001"]) == ("strategy", "ringall")
    assert sent.get("Var-000000") is None
    pbx.script("AOCMessage", {"Response": "Success"})
    await ami.actions.aoc_message(msg_type="D", channel="PJSIP/1-1", unit_amount_0=["5", "7"])
    sent = next(m for m in pbx.actions if m.get("Action") == "AOCMessage")
    assert (sent["UnitAmount(0)"], sent["UnitAmount(1)"]) == ("5", "7")
    # A family header that clashes with a named one, or carries CR/LF, is refused.
    with pytest.raises(InvalidActionError, match="given twice"):
        await ami.actions.user_event(user_event="Crm", header_n={"userevent": "other"})
    with pytest.raises(InvalidActionError):
        await ami.actions.user_event(user_event="Crm", header_n={"X": "1\r\nAction: Logoff"})
    with pytest.raises(InvalidActionError):
        await ami.actions.user_event(user_event="Crm", header_n={"X\r\nAction": "Logoff"})
    assert count(pbx, "UserEvent") == 1 and count(pbx, "Logoff") == 0


async def test_warnings_stop_after_many_distinct_names(
    ami: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are the caller's: what the check remembers about them is bounded."""
    from ami_async.catalogue import _validate

    monkeypatch.setattr(_validate, "CACHE_MAX", 3)
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        for index in range(6):
            for _ in range(2):
                await ami.send_action(f"NoSuch{index}", check=False)
    found = [r.getMessage() for r in caplog.records if "NoSuch" in r.getMessage()]
    assert len(found) == 3, found
    assert "no more such warnings" in found[-1]
    assert len(ami._action_warned) == 3 and len(ami._action_checks) <= 3


@pytest.mark.parametrize(
    ("ami_version", "version"), [("9.0.0", "20.20.1"), ("11.0.0", "22.11.0-rc1")]
)
async def test_every_list_action_ends_on_the_catalogues_completion(
    ami_version: str, version: str
) -> None:
    """Every list coroutine of the server's version, against a server that marks no list:
    only the catalogue's completion event can end it."""
    listed = [
        info
        for info in (catalogue.action(n, version) for n in catalogue.action_names(version))
        if info is not None and info.is_list and not info.conditional_list
    ]
    assert len(listed) > 40
    async with FakeAsterisk(version=ami_version) as server:
        for info in listed:
            assert info.complete_event is not None, info.name
            server.script(
                info.name,
                {"Response": "Success", "Message": "will follow"},
                {"Event": info.item_events[0] if info.item_events else "Item", "N": "1"},
                {"Event": info.complete_event, "ListItems": "1"},
            )
        async with client_for(server) as client:
            for info in listed:
                args = {argument(p.name): "x" for p in info.parameters if p.required}
                got = await getattr(client.actions, info.method)(**args, timeout=5)
                assert isinstance(got, EventList), info.name
                assert got.complete is not None, info.name
                assert got.complete.name == info.complete_event, info.name
                assert [item["N"] for item in got] == ["1"], info.name


async def test_actions_check_required_headers_as_send_action_does(
    pbx: FakeAsterisk, caplog: pytest.LogCaptureFixture
) -> None:
    """A required header given as None is left out: strict=True refuses it, the default
    warns once per name and sends."""
    async with client_for(pbx, strict=True) as client:
        with pytest.raises(InvalidActionError, match=r"QueueAdd: missing required.*Interface"):
            await client.actions.queue_add(queue="sales", interface=None)  # type: ignore[arg-type]
    assert count(pbx, "QueueAdd") == 0
    pbx.script("QueueAdd", {"Response": "Error", "Message": "Unable to add interface"})
    with caplog.at_level(logging.WARNING, logger="ami_async"):
        async with client_for(pbx) as client:
            for _ in range(2):
                with pytest.raises(ActionError):
                    await client.actions.queue_add(queue="s", interface=None)  # type: ignore[arg-type]
    warned = [r.getMessage() for r in caplog.records if "QueueAdd" in r.getMessage()]
    assert len(warned) == 1 and "Interface" in warned[0]
    assert count(pbx, "QueueAdd") == 2


async def test_a_header_required_only_in_the_servers_version_is_checked() -> None:
    """AOCMessage needs Channel on 13 (not on 22, whose signature the coroutine has)."""
    server = FakeAsterisk(command_format="legacy", version="2.10.4")
    async with server, client_for(server, strict=True) as client:
        with pytest.raises(InvalidActionError, match=r"AOCMessage: missing required.*Channel"):
            await client.actions.aoc_message(msg_type="D")
    assert count(server, "AOCMessage") == 0


async def test_a_name_with_control_characters_is_refused_not_logged(
    pbx: FakeAsterisk, ami: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The check must not write a caller's CR/LF into the log (a forged log line)."""
    with caplog.at_level(logging.DEBUG, logger="ami_async"):
        with pytest.raises(InvalidActionError, match="not allowed"):
            await ami.send_action("Ping\r\nAction: Logoff")
        ami.strict = True
        with pytest.raises(InvalidActionError, match="not allowed"):
            await ami.send_action("Ping\nX")
        for empty in ("", " "):
            with pytest.raises(InvalidActionError, match="non-empty"):
                await ami.send_action(empty)
        for not_a_name in (["Ping"], {"Ping": 1}, b"Ping", None):
            with pytest.raises(InvalidActionError, match="non-empty"):
                await ami.send_action(not_a_name)  # type: ignore[arg-type]
    assert not [r for r in caplog.records if "\n" in r.getMessage() or "\r" in r.getMessage()]
    assert count(pbx, "Logoff") == 0


def test_generated_names_are_plain_snake_case_identifiers() -> None:
    methods = [n for n, _ in inspect.getmembers(Actions) if not n.startswith("_")]
    assert len(methods) == len(catalogue.action_names()) == 172
    assert not set(methods) & set(dir(ActionCaller))  # nothing of the caller shadowed
    for method in methods:
        assert method.isidentifier() and method == method.lower(), method
        assert not keyword.iskeyword(method) and "__" not in method, method
        params = list(inspect.signature(getattr(Actions, method)).parameters)
        assert params[0] == "self" and params[-1] == "timeout", method
        for arg in params[1:]:
            assert arg.isidentifier() and arg == arg.lower(), (method, arg)
            assert not keyword.iskeyword(arg), (method, arg)
    for info in map(catalogue.action, catalogue.action_names("22.11.0-rc1")):
        assert info is not None and hasattr(Actions, info.method), info


async def test_an_action_documented_but_never_registered_is_refused() -> None:
    """FilterList: in 13.38.3's documentation, registered by no Asterisk."""
    info = catalogue.action("FilterList", "13.38.3")
    assert info is not None and not info.available and info.privilege == ""
    server = FakeAsterisk(command_format="legacy", version="2.10.4")
    async with server, client_for(server) as client:
        with pytest.raises(InvalidActionError, match=r"documents this action.*never registers"):
            await client.actions.filter_list()
    assert count(server, "FilterList") == 0
