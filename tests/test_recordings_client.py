"""The later recordings (restart, read=call user, broken Events, ...) through the whole Client.

Two kinds of peer serve the captured bytes:

* `FakeAsterisk.replay` (`replayed`), step by step as recorded, for one connection;
* `serial_server`, a raw server whose n-th connection runs the n-th script, for
  cases that span connections or need the server to hold something back (the
  restart's late `FullyBooted`). The scripts send the capture's own messages,
  with the client's ActionIDs put in.

The assertions are what a user of the client sees.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from _fixtures import Peer, fixtures_dir, parse, read_ami, serial_server
from _fixtures import replayed_with_server as replayed

from ami_async import (
    ActionTimeoutError,
    AuthenticationError,
    Client,
    Event,
    OriginateReason,
)
from ami_async.message import Response
from ami_async.testing import FakeAsterisk

BOTH = pytest.mark.parametrize("version", ["asterisk-22", "asterisk-13"])


def capture_messages(version: str, scenario: str) -> tuple[bytes, list[bytes]]:
    """The banner line and every message of ``<scenario>.bin``, as raw bytes."""
    data = (fixtures_dir() / version / f"{scenario}.bin").read_bytes()
    banner, _, rest = data.partition(b"\r\n")
    return banner + b"\r\n", [m + b"\r\n\r\n" for m in rest.split(b"\r\n\r\n") if m]


def client_for(port: int, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "username": "admin",
        "secret": "amp111",
        "ping_interval": None,
        "timeout": 5,
        "action_timeout": 5,
        "reconnect_delay": 0.01,
        **options,
    }
    return Client("127.0.0.1", port, **settings)


def losses(client: Client) -> list[asyncio.Event]:
    """Each disconnect hook call (a lost link, a refused credential) sets the next event."""
    events = [asyncio.Event() for _ in range(8)]

    def lost(_: Client, __: BaseException) -> None:
        next(e for e in events if not e.is_set()).set()

    client.add_disconnect_hook(lost)
    return events


async def login_script(peer: Peer, version: str, scenario: str, count: int) -> None:
    """Banner, then the first ``count`` messages of ``scenario`` as the Login's answer."""
    banner, msgs = capture_messages(version, scenario)
    await peer.send(banner)
    await peer.answer("Login", *msgs[:count])


# -- a restart while logged in -----------------------------------------------------------------


@BOTH
async def test_restart_midsession_shutdown_reconnect_and_the_new_fully_booted(
    version: str,
) -> None:
    """restart_midsession + restart_reconnect: Shutdown, EOF, a reset before any banner,
    then a Login accepted while booting, whose FullyBooted comes later on its own: the
    client reconnects and is connected only once that FullyBooted has come."""
    shutdown_now = asyncio.Event()
    probed = asyncio.Event()
    booted_now = asyncio.Event()
    _, midsession = capture_messages(version, "restart_midsession")
    _, reconnect = capture_messages(version, "restart_reconnect")
    assert b"Event: Shutdown" in midsession[4] and b"Event: FullyBooted" in reconnect[2]

    async def before_restart(peer: Peer) -> None:
        await login_script(peer, version, "restart_midsession", 3)
        await shutdown_now.wait()
        await peer.send(*midsession[3:])  # another SuccessfulAuth, then Shutdown; EOF

    async def old_process_still_listening(peer: Peer) -> None:
        return  # accepted, then closed before any banner

    async def booting(peer: Peer) -> None:
        banner, _ = capture_messages(version, "restart_reconnect")
        await peer.send(banner)
        await peer.answer("Login", reconnect[0], reconnect[1])  # no FullyBooted yet
        await peer.answer("Ping", reconnect[3])
        probed.set()
        await booted_now.wait()
        await peer.send(reconnect[2])
        await peer.idle()

    async with serial_server(before_restart, old_process_still_listening, booting) as port:
        client = client_for(port, boot_timeout=60, timeout=30)
        shutdowns = client.events("Shutdown")
        booted = client.events("FullyBooted")
        async with client:
            first = await booted.get(timeout=5)
            shutdown_now.set()
            event = await shutdowns.get(timeout=5)
            assert (event["Shutdown"], event["Restart"]) == ("Cleanly", "True")
            await probed.wait()
            await asyncio.sleep(0.2)  # let the Ping's answer reach the client
            assert not client.connected  # still waiting for the new FullyBooted
            booted_now.set()
            await client.wait_connected(timeout=5)
            assert client.reconnects == 1
            second = await booted.get(timeout=5)
            assert first.get("Uptime") != "0"
            assert second.get("Uptime") == ("0" if version == "asterisk-22" else None)
            assert (await client.ping())["Ping"] == "Pong"


@BOTH
async def test_restart_live_call_events_arrive_before_the_shutdown(version: str) -> None:
    """restart_live_call: the call's SoftHangupRequest (Cause 4) and Hangup events, then
    Shutdown and EOF; the subscription keeps all of them and survives the reconnect."""
    events = ("SoftHangupRequest", "Hangup", "Shutdown", "FullyBooted")
    async with replayed(version, "restart_live_call", reconnect_delay=0.01) as (pbx, ami):
        seen = ami.events(*events)
        await pbx.replay(fixtures_dir() / version / "login_success.ami")
        queued = await ami.originate(
            "Local/2011@test",
            application="Wait",
            data="20",
            channel_id="restart-1",
            other_channel_id="restart-2",
            wait=False,
        )
        assert queued.success
        names: list[str] = []
        while "FullyBooted" not in names:  # the one of the new session
            names.append((await seen.get(timeout=5)).name)
        _, recorded = parse((fixtures_dir() / version / "restart_live_call.bin").read_bytes())
        call = [m.name for m in recorded[3:] if isinstance(m, Event) and m.name in events]
        assert call[0] == "SoftHangupRequest" and call[-1] == "Shutdown"
        assert names == [*call, "FullyBooted"]
        await ami.wait_connected(timeout=5)
        assert ami.reconnects == 1


# -- a read=call user ------------------------------------------------------------------------


@BOTH
async def test_read_call_only_user_never_waits_for_fully_booted(version: str) -> None:
    """read_call_only_user: no FullyBooted, no SuccessfulAuth; connecting (and
    reconnecting) must not wait ``boot_timeout`` for an event that never comes."""
    # A client that waited for it would hang here (timeout and boot_timeout: 10 minutes).
    options = {"username": "callonly", "secret": "cal111", "boot_timeout": 600, "timeout": 600}
    async with replayed(version, "read_call_only_user", **options) as (pbx, ami):
        everything = ami.events()
        result = await ami.originate("Local/100@test", application="Wait", data="1")
        assert result.success
        assert result.reason is OriginateReason.ANSWERED
        names: list[str] = []
        while names.count("Hangup") < 2:
            names.append((await everything.get(timeout=5)).name)
        assert "CEL" in names
        assert not {"FullyBooted", "SuccessfulAuth", "VarSet", "Cdr"} & set(names)
        assert ("Newexten" in names) == (version == "asterisk-13")  # call class on 13
        lost = losses(ami)
        await pbx.drop()  # a reconnect does not wait either
        await lost[0].wait()
        await ami.wait_connected(timeout=10)
        assert (await ami.ping())["Ping"] == "Pong"


# -- Events under brokeneventsaction -----------------------------------------------------------


async def test_broken_events_action_unanswered_events_time_out_and_the_link_goes_on() -> None:
    """broken_events_action (22): ``EventMask: on`` and no EventMask get no answer at all."""
    async with replayed("asterisk-22", "broken_events_action") as (_, ami):
        with pytest.raises(ActionTimeoutError):
            await ami.set_events(True, timeout=0.5)
        assert (await ami.set_events(False))["Events"] == "Off"
        assert (await ami.ping())["Ping"] == "Pong"
        assert (await ami.set_events("call"))["Events"] == "On"
        assert (await ami.ping())["Ping"] == "Pong"
        with pytest.raises(ActionTimeoutError):
            await ami.send_action("Events", timeout=0.5)
        assert (await ami.ping())["Ping"] == "Pong"
        assert ami.connected


# -- ConfbridgeListRooms with no conference ----------------------------------------------------


@BOTH
async def test_confbridge_list_rooms_empty_is_an_empty_list(version: str) -> None:
    async with replayed(version, "confbridge_list_rooms_empty") as (_, ami):
        assert await ami.confbridge_list_rooms() == []


# -- Login Already In Use ----------------------------------------------------------------------


@BOTH
async def test_login_already_in_use_on_connect_is_an_authentication_error(version: str) -> None:
    async with serial_server(
        lambda peer: login_script(peer, version, "login_already_in_use", 1)
    ) as port:
        with pytest.raises(AuthenticationError, match="Login Already In Use") as caught:
            await client_for(port, username="single", secret="sgl111", reconnect=False).connect()
        assert "sgl111" not in str(caught.value)


@BOTH
async def test_login_already_in_use_while_reconnecting_is_transient(
    version: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A stale session of ours still holds the single login: the refusal is not a bad
    credential, so ``max_auth_failures=1`` does not end the client; the next try gets in."""
    drop = asyncio.Event()

    async def holder(peer: Peer) -> None:
        await login_script(peer, version, "login_already_in_use_holder", 3)
        await drop.wait()

    async def in_use(peer: Peer) -> None:
        await login_script(peer, version, "login_already_in_use", 1)

    async def freed(peer: Peer) -> None:
        await login_script(peer, version, "login_success", 3)
        await peer.idle()

    async with serial_server(holder, in_use, in_use, freed) as port:
        client = client_for(port, username="single", secret="sgl111", max_auth_failures=1)
        lost = losses(client)  # a refusal taken for a bad credential would set lost[1]
        async with client:
            caplog.set_level(logging.INFO, logger="ami_async")
            drop.set()
            await lost[0].wait()
            await client.wait_connected(timeout=10)
            assert client.reconnects == 1
            assert not client.closed
            assert not lost[1].is_set()
        assert "Login Already In Use" in caplog.text


@BOTH
async def test_login_already_in_use_holder_sees_the_session_limit_event(version: str) -> None:
    """The session that holds the single login is told of the refused one (22 and 13)."""
    async with FakeAsterisk() as pbx:
        await pbx.replay(fixtures_dir() / version / "login_already_in_use_holder.ami")
        client = client_for(pbx.port, username="single", secret="sgl111")
        limits = client.events("SessionLimit")  # it comes right after the Login's answer
        async with client:
            event = await limits.get(timeout=5)
            assert (event["AccountID"], event["Severity"]) == ("", "Error")
            assert event["SessionTV"] == "1970-01-01T00:00:00.000+0000"


# -- Command output larger than 64 KB ----------------------------------------------------------


@BOTH
async def test_command_large_output_returns_the_whole_text(version: str) -> None:
    """command_large_output: 211 KB of Output lines (22) or a 158 KB Follows body (13)."""
    async with replayed(version, "command_large_output") as (_, ami):
        text = await ami.command("dialplan show lab-big")
    lines = text.split("\n")
    assert len(text) > 150_000
    assert len(lines) == 2003
    assert lines[0] == "[ Context 'lab-big' created by 'pbx_config' ]"
    assert lines[1].startswith("  '10000' =>        1. NoOp()")
    assert lines[-2:] == ["", "-= 2000 extensions (2000 priorities) in 1 context. =-"]


# -- call flows: every recorded action sent by the client, every event delivered ---------------

CALL_FLOWS = [
    "async_agi_full",
    "async_agi_hangup",
    "attended_transfer",
    "blind_transfer",
    "bridge_action",
    "conference_three",
    "dial_busy",
    "dial_congestion",
    "dial_noanswer",
    "fastagi_basic_ami",
    "fastagi_continue_ami",
    "fastagi_hangup_ami",
    "fastagi_hangup_idle_ami",
    "fastagi_pipelined_ami",
    "hangup_causes",
    "local_optimization",
    "park_and_retrieve",
    "queue_call_answered",
    "redirect_both_legs",
]
FLOW_CASES = [
    pytest.param(v, s, id=f"{v}/{s}")
    for v in ("asterisk-22", "asterisk-13")
    for s in CALL_FLOWS
    if (fixtures_dir() / v / f"{s}.ami").exists()
]


def recorded_actions(version: str, scenario: str) -> list[dict[str, list[str]]]:
    """The actions the recorder sent, Login excepted (headers in order, ActionID dropped)."""
    actions: list[dict[str, list[str]]] = []
    for record in read_ami(fixtures_dir() / version / f"{scenario}.ami"):
        if record.direction != ">>>":
            continue
        for frame in record.data.split(b"\r\n\r\n"):
            headers: dict[str, list[str]] = {}
            for line in frame.decode().split("\r\n"):
                key, sep, value = line.partition(": ")
                if sep and key != "ActionID":
                    headers.setdefault(key, []).append(value)
            if headers and headers["Action"] != ["Login"]:
                actions.append(headers)
    return actions


def without_action_id(event: Event) -> tuple[tuple[str, str], ...]:
    return tuple(h for h in event.headers if h[0] != "ActionID")


@pytest.mark.parametrize(("version", "scenario"), FLOW_CASES)
async def test_call_flow_every_event_reaches_the_client(version: str, scenario: str) -> None:
    """The client sends each recorded action (lists with `collect()`); every event of the
    capture reaches an `events()` subscription or the list, in order, none lost or doubled,
    and the final CoreShowChannels finds no channel left."""
    _, recorded = parse((fixtures_dir() / version / f"{scenario}.bin").read_bytes())
    # What came with the Login's answer precedes the subscription.
    first_action = [i for i, m in enumerate(recorded) if isinstance(m, Response)][1]
    recorded_events = [
        without_action_id(m) for m in recorded[first_action:] if isinstance(m, Event)
    ]
    async with replayed(version, scenario, event_queue_size=10_000) as (_, ami):
        everything = ami.events()
        listed: list[Event] = []
        responses: list[Response] = []
        for action in recorded_actions(version, scenario):
            name = action.pop("Action")[0]
            headers = {k: v[0] if len(v) == 1 else v for k, v in action.items()}
            if name in ("CoreShowChannels", "Status", "QueueStatus"):
                result = await ami.collect(name, **headers)
                listed.extend(result.items)
                if result.complete is not None:
                    listed.append(result.complete)
                responses.append(result.response)
            else:
                responses.append(await ami.send_action(name, check=False, **headers))
        assert responses[-1]["EventList"] == "start"
        assert [e.name for e in listed] == ["CoreShowChannelsComplete"]
        got: list[Event] = []
        while everything.qsize():
            event = everything.get_nowait()
            assert event is not None
            got.append(event)
    assert [without_action_id(e) for e in got] + [
        without_action_id(e) for e in listed
    ] == recorded_events


async def test_item22_except_asyncio_timeout_error_catches_an_action_timeout() -> None:
    """On 3.10 `asyncio.TimeoutError` is not the builtin `TimeoutError`; it catches it anyway."""
    async with replayed("asterisk-22", "broken_events_action") as (_, ami):
        caught: BaseException | None = None
        try:
            await ami.set_events(True, timeout=0.2)  # never answered under this setting
        except asyncio.TimeoutError as exc:
            caught = exc
        assert isinstance(caught, ActionTimeoutError)


# -- calls that fail, hang-up causes, Park --------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "exten", "tag", "dial_status"),
    [
        ("dial_noanswer", "2001", "noanswer", "NOANSWER"),
        ("dial_busy", "2003", "busy", "BUSY"),
        ("dial_congestion", "2004", "congestion", "CONGESTION"),
    ],
)
@BOTH
async def test_originate_of_a_call_that_is_never_answered_fails(
    version: str, scenario: str, exten: str, tag: str, dial_status: str
) -> None:
    """No answer, busy, congestion behind a Local channel: `originate()` gives
    ``success=False`` with Reason 0 (FAILED), not BUSY/CONGESTION; the DialEnd says why."""
    async with replayed(version, scenario) as (_, ami):
        dial_ends = ami.events("DialEnd")
        result = await ami.originate(
            f"Local/{exten}@test",
            application="Wait",
            data="10",
            channel_id=f"{tag}-1",
            other_channel_id=f"{tag}-2",
        )
        assert result.success is False
        assert result.reason is OriginateReason.FAILED
        assert result.uniqueid == f"{tag}-1"
        assert (await dial_ends.get(timeout=5))["DialStatus"] == dial_status
        assert await ami.core_show_channels() == []


async def test_hangup_with_a_cause_shows_on_both_local_legs() -> None:
    """hangup_causes (22): ``Hangup`` action with Cause 17; both legs' Hangup carry it."""
    async with replayed("asterisk-22", "hangup_causes") as (_, ami):
        hangups = ami.events("Hangup")
        call = await ami.originate(
            "Local/2011@test",
            application="Wait",
            data="30",
            channel_id="cause17-1",
            other_channel_id="cause17-2",
            wait=False,
        )
        assert call.success
        answer = await ami.hangup("Local/2011@test-0000001d;1", cause=17)
        assert answer["Message"] == "Channel Hungup"
        causes = {}
        while len(causes) < 2:
            event = await hangups.get(timeout=5)
            causes[event["Uniqueid"]] = event["Cause"]
        assert causes == {"cause17-1": "17", "cause17-2": "17"}


async def test_park_answer_with_a_bare_lf_in_its_message() -> None:
    """park_and_retrieve (22): ``Message: Park successful\\n\\r\\n`` reads as the message."""
    async with replayed("asterisk-22", "park_and_retrieve") as (_, ami):
        parked = ami.events("ParkedCall")
        await ami.originate(
            "Local/2010@test",
            application="Wait",
            data="30",
            channel_id="park-1",
            other_channel_id="park-2",
            wait=False,
        )
        answer = await ami.send_action("Park", Channel="Local/2011@test-00000010;1")
        assert answer["Message"] == "Park successful"
        assert (await parked.get(timeout=5))["ParkingSpace"] == "7001"
        assert (await ami.ping())["Ping"] == "Pong"  # the stray blank line broke nothing
