"""Every real capture in shared/fixtures, parsed whole, in pieces and byte by byte.

The chunking tests show that where reads split the stream never changes the
messages. The ``FACTS`` table holds, for every capture, what its bytes say
(counted and read off the ``.bin`` files with grep, not with this parser):
the number of messages and of events, the order of messages, list items per
ActionID, and header values.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _fixtures import (
    VERSIONS,
    bin_files,
    feed_chunks,
    fixture_id,
    fixtures_dir,
    parse,
    random_chunks,
    read_ami,
    snapshot,
)

from ami_async.message import Event, Message, Response
from ami_async.protocol import Parser

BINS = bin_files()
IDS = [fixture_id(p) for p in BINS]
SMALL = [p for p in BINS if p.stat().st_size < 20_000]
BANNERS = {"asterisk-22": "11.0.0", "asterisk-13": "2.10.6"}


def test_fixture_set_is_complete() -> None:
    names = {fixture_id(p) for p in BINS}
    assert len([n for n in names if n.startswith("asterisk-22/")]) == 43
    assert len([n for n in names if n.startswith("asterisk-13/")]) == 17
    assert names == set(FACTS), sorted(names ^ set(FACTS))
    assert set(VERSIONS) == set(BANNERS)


def test_missing_fixtures_directory_is_an_error_not_a_skip(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import _fixtures

    monkeypatch.setattr(_fixtures, "FIXTURES", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="AMI_FIXTURES"):
        _fixtures.bin_files()


# -- chunking never matters ------------------------------------------------------------------


@pytest.mark.parametrize("path", BINS, ids=IDS)
def test_random_chunkings_give_identical_messages(path: Path) -> None:
    data = path.read_bytes()
    parser, whole = parse(data)
    assert parser.buffered == 0
    expected = snapshot(whole)
    for seed, max_size in ((1, 7), (2, 100), (3, 1500), (4, 70_000)):
        chunked = Parser()
        got = feed_chunks(random_chunks(data, seed, max_size), chunked)
        assert snapshot(got) == expected, (seed, max_size)
        assert chunked.banner == parser.banner
        assert chunked.buffered == 0


@pytest.mark.parametrize("path", BINS, ids=IDS)
def test_real_recv_chunking_of_the_transcript(path: Path) -> None:
    records = read_ami(path.with_suffix(".ami"))
    received = [r.data for r in records if r.direction == "<<<"]
    data = path.read_bytes()
    assert b"".join(received) == data
    # The banner came alone, in the first read, with no blank line after it.
    assert received[0] == f"Asterisk Call Manager/{BANNERS[path.parent.name]}\r\n".encode()
    assert {r.direction for r in records} == {">>>", "<<<", "###"}
    assert all(a.seconds <= b.seconds for a, b in itertools.pairwise(records))
    assert snapshot(feed_chunks(received)) == snapshot(parse(data)[1])


@pytest.mark.parametrize("path", SMALL, ids=[fixture_id(p) for p in SMALL])
def test_byte_at_a_time_gives_identical_messages(path: Path) -> None:
    data = path.read_bytes()
    parser = Parser()
    got: list[Message] = []
    for i in range(len(data)):
        got.extend(parser.feed(data[i : i + 1]))
    assert snapshot(got) == snapshot(parse(data)[1])
    assert parser.buffered == 0


def test_every_small_fixture_is_fed_byte_at_a_time() -> None:
    # event_burst (both), dial_bridge (both), queue_sales_answered, playback_moh and
    # confbridge are the only captures of 20 KB or more.
    assert len(SMALL) == len(BINS) - 7


# -- what each capture says --------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the bytes of one capture say.

    ``sequence``: every message in order, ``R:<Response value>`` or the event name.
    ``counts``: exact number of events of each listed name.
    ``lists``: ActionID -> names of the events that carry it, in order.
    ``values``: ``(selector, key, every value of key)``; a selector is ``#<ActionID>``
    (the response with that ActionID), ``@<index>`` (a message by position) or
    ``<EventName>`` / ``<EventName>:<n>`` (the n-th event of that name, 0-based).
    """

    messages: int
    events: int
    sequence: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    lists: Mapping[str, str] = field(default_factory=dict)
    values: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def select(msgs: list[Message], selector: str) -> Message:
    if selector.startswith("@"):
        return msgs[int(selector[1:])]
    if selector.startswith("#"):
        found = [m for m in msgs if isinstance(m, Response) and m.action_id == selector[1:]]
        assert len(found) == 1, selector
        return found[0]
    name, _, nth = selector.partition(":")
    events = [m for m in msgs if isinstance(m, Event) and m.name == name]
    return events[int(nth or 0)]


ORIGINATE_QUEUED = ("Originate successfully queued",)
AUTH_OK = ("Authentication accepted",)
UNKNOWN_FOO = (
    "Invalid/unknown command: Foo. Use Action: ListCommands to show available commands.",
)

FACTS: dict[str, Facts] = {
    # ---------------------------------------------------------------- asterisk-13
    "asterisk-13/challenge_md5_login": Facts(
        5,
        2,
        "R:Success R:Success FullyBooted SuccessfulAuth R:Success",
        values=(
            ("#challenge_md5_login-1", "Challenge", ("177418261",)),
            ("#challenge_md5_login-2", "Message", AUTH_OK),
            ("#challenge_md5_login-3", "Timestamp", ("1795776484.773169",)),
        ),
    ),
    "asterisk-13/command": Facts(
        7,
        0,
        "R:Success R:Success R:Follows R:Follows R:Follows R:Follows R:Error",
        values=(
            ("#command-3", "Privilege", ("Command",)),
            ("#command-3", "Message", ()),
            ("#command-7", "Message", ("No command provided",)),
        ),
    ),
    "asterisk-13/coreshowchannels": Facts(
        45,
        41,
        counts={"CoreShowChannel": 4, "OriginateResponse": 2, "CEL": 8, "DeviceStateChange": 4},
        lists={
            "coreshowchannels-4": "CoreShowChannel CoreShowChannel CoreShowChannel "
            "CoreShowChannel CoreShowChannelsComplete",
            "coreshowchannels-2": "OriginateResponse",
        },
        values=(
            ("CoreShowChannel:1", "Channel", ("Local/700@test-00000001;2",)),
            ("CoreShowChannel:3", "BridgeId", ("",)),
            ("CoreShowChannelsComplete", "ListItems", ("4",)),
            ("#coreshowchannels-4", "EventList", ("start",)),
        ),
    ),
    "asterisk-13/db": Facts(
        11,
        2,
        "R:Success R:Success R:Success R:Success DBGetResponse DBGetComplete "
        "R:Error R:Error R:Success R:Success R:Success",
        values=(
            ("DBGetResponse", "Val", ("v1",)),
            ("#db-5", "Message", ("Database entry not found",)),
            (
                "#db-6",
                "Message",
                (
                    "Invalid/unknown command: DBGetTree. "
                    "Use Action: ListCommands to show available commands.",
                ),
            ),
            ("#db-8", "Message", ("Key deleted successfully",)),
        ),
    ),
    "asterisk-13/dial_bridge": Facts(
        103,
        101,
        counts={"VarSet": 25, "CEL": 21, "QueueMemberStatus": 4, "BridgeEnter": 2, "Hangup": 4},
        values=(
            ("BridgeCreate", "BridgeTechnology", ("simple_bridge",)),
            ("DialEnd:0", "DestChannel", ("Local/100@test-0000000c;1",)),
            ("DialEnd:1", "DialStatus", ("ANSWER",)),
        ),
    ),
    "asterisk-13/event_burst": Facts(
        1953,
        1902,
        counts={
            "OriginateResponse": 50,
            "QueueMemberStatus": 200,
            "CEL": 450,
            "DeviceStateChange": 200,
            "Hangup": 100,
            "FullyBooted": 1,
        },
        values=(("#event_burst-51", "Message", ORIGINATE_QUEUED),),
    ),
    "asterisk-13/events_off_on": Facts(
        44,
        37,
        counts={"OriginateResponse": 1, "UserEvent": 1, "QueueMemberStatus": 4},
        lists={"events_off_on-3": "", "events_off_on-5": "OriginateResponse"},
        values=(
            ("#events_off_on-2", "Events", ("Off",)),
            ("#events_off_on-4", "Events", ("On",)),
            ("#events_off_on-4", "Message", ()),
        ),
    ),
    "asterisk-13/login_failure": Facts(
        1, 0, "R:Error", values=(("@0", "Message", ("Authentication failed",)),)
    ),
    "asterisk-13/login_success": Facts(
        3,
        2,
        "R:Success FullyBooted SuccessfulAuth",
        values=(
            ("FullyBooted", "Status", ("Fully Booted",)),
            ("FullyBooted", "Uptime", ()),  # 13 has no Uptime/LastReload
            ("FullyBooted", "Privilege", ("system,all",)),
        ),
    ),
    "asterisk-13/logoff": Facts(
        2,
        0,
        "R:Success R:Goodbye",
        values=(("#logoff-2", "Message", ("Thanks for all the fish.",)),),
    ),
    "asterisk-13/originate_async": Facts(
        47,
        45,
        counts={"OriginateResponse": 1, "VarSet": 4, "QueueMemberStatus": 4},
        values=(
            ("OriginateResponse", "Response", ("Success",)),
            ("OriginateResponse", "Channel", ("Local/100@test-00000003;1",)),
            ("OriginateResponse", "Reason", ("4",)),
            ("OriginateResponse", "CallerIDName", ("Lab",)),
        ),
    ),
    "asterisk-13/originate_fail_async": Facts(
        23,
        21,
        counts={"OriginateResponse": 1, "Hangup": 2, "CEL": 7},
        values=(
            ("OriginateResponse", "Response", ("Failure",)),
            ("OriginateResponse", "Channel", ("Local/999@test",)),
            ("OriginateResponse", "Reason", ("0",)),
            ("OriginateResponse", "Uniqueid", ("<unknown>",)),
        ),
    ),
    "asterisk-13/ping": Facts(
        3,
        0,
        "R:Success R:Success R:Success",
        values=(
            ("#ping-2", "Ping", ("Pong",)),
            ("@2", "ActionID", ()),
            ("@2", "Timestamp", ("1795776484.775752",)),
        ),
    ),
    "asterisk-13/queue": Facts(
        42,
        36,
        lists={
            "queue-3": "QueueParams QueueMember QueueEntry QueueParams QueueMember "
            "QueueStatusComplete",
            "queue-4": "QueueParams QueueMember QueueEntry QueueStatusComplete",
            "queue-5": "QueueSummary QueueSummary QueueSummaryComplete",
            "queue-6": "QueueSummaryComplete",
        },
        values=(
            ("QueueMember:0", "StateInterface", ("Local/999@test",)),
            ("QueueMember:0", "Status", ("4",)),
            ("QueueMember:0", "LastPause", ()),
            ("QueueParams", "ServicelevelPerf2", ()),
            ("QueueCallerJoin", "Queue", ("support",)),
        ),
    ),
    "asterisk-13/status": Facts(
        43,
        37,
        lists={
            "status-3": "Status Status StatusComplete",
            "status-4": "Status StatusComplete",
            "status-5": "",
        },
        values=(
            ("Status:2", "Variable", ("FOO=(null)", "CHANNEL(state)=Up")),
            ("Status:0", "Accountcode", ("",)),
            ("Status:0", "Language", ()),
            ("StatusComplete:0", "Items", ("2",)),
            ("#status-5", "Message", ("No such channel",)),
        ),
    ),
    "asterisk-13/unknown_action": Facts(
        3,
        0,
        "R:Success R:Error R:Success",
        values=(("#unknown_action-2", "Message", UNKNOWN_FOO), ("#lowercase-1", "Ping", ("Pong",))),
    ),
    "asterisk-13/userevent": Facts(
        41,
        38,
        counts={"UserEvent": 2, "OriginateResponse": 1},
        lists={"userevent-3": "UserEvent"},
        values=(
            ("UserEvent:0", "UserEvent", ("TestEvent",)),
            ("UserEvent:0", "Foo", ("bar",)),
            ("UserEvent:1", "Header2", ("value: with colon",)),
            ("#userevent-3", "Message", ("Event Sent",)),
        ),
    ),
    # ---------------------------------------------------------------- asterisk-22
    "asterisk-22/async_agi": Facts(
        51,
        45,
        counts={"AsyncAGIExec": 3, "AGIExecStart": 3, "AGIExecEnd": 3, "AsyncAGIStart": 1},
        values=(
            ("AGIExecStart:0", "Command", ('EXEC Verbose "hello from AMI"',)),
            ("AGIExecStart:0", "CommandId", ("1861761056",)),
            ("AsyncAGIExec:0", "Result", ("200%20result%3D0%0A",)),
            ("AsyncAGIExec:2", "CommandId", ("cmd-3",)),
            ("#async_agi-6", "Message", ("Channel Local/nope-00000000;2 does not exist.",)),
        ),
    ),
    "asterisk-22/bad_input": Facts(
        9,
        0,
        "R:Success R:Error R:Success R:Success R:Error R:Error R:Error R:Success R:Success",
        values=(
            ("#noaction-1", "Message", ("Missing action in request",)),
            ("#lf-only-1", "Ping", ("Pong",)),
            ("@4", "ActionID", ()),
            ("@5", "Message", ("Missing action in request",)),
            ("@7", "ActionID", ("spaced-1   ",)),
            ("#nospace-1", "Timestamp", ("1795772607.816614",)),
        ),
    ),
    "asterisk-22/challenge_md5_bad_key": Facts(
        2,
        0,
        "R:Success R:Error",
        values=(
            ("#challenge_md5_bad_key-1", "Challenge", ("112895365",)),
            ("#challenge_md5_bad_key-2", "Message", ("Authentication failed",)),
        ),
    ),
    "asterisk-22/challenge_md5_login": Facts(
        5,
        2,
        "R:Success R:Success FullyBooted SuccessfulAuth R:Success",
        values=(("#challenge_md5_login-1", "Challenge", ("157470689",)),),
    ),
    "asterisk-22/command": Facts(
        6,
        0,
        "R:Success R:Success R:Success R:Error R:Success R:Error",
        values=(
            (
                "#command-2",
                "Output",
                (
                    "Asterisk 22.11.0-rc1 built by root @ vm on a x86_64 running Linux "
                    "on 2026-11-27 09:35:16 UTC",
                ),
            ),
            (
                "#command-4",
                "Output",
                (
                    "No such command 'this is not a command' "
                    "(type 'core show help this is' for other possible commands)",
                ),
            ),
            ("#command-4", "Message", ("Command output follows",)),
            ("#command-6", "Message", ("No command provided",)),
            ("#command-6", "Output", ()),
        ),
    ),
    "asterisk-22/confbridge": Facts(
        59,
        53,
        counts={"ConfbridgeJoin": 2, "ConfbridgeStart": 1, "OriginateResponse": 2},
        lists={
            "confbridge-4": "ConfbridgeListRooms ConfbridgeListRoomsComplete",
            "confbridge-5": "ConfbridgeList ConfbridgeList ConfbridgeListComplete",
            "confbridge-6": "",
        },
        values=(
            ("ConfbridgeListRooms", "Parties", ("2",)),
            ("ConfbridgeList:1", "Channel", ("Local/300@test-0000000d;2",)),
            ("ConfbridgeStart", "BridgeUniqueid", ("2dc57f7d-e538-4974-9b63-c50fe36022f8",)),
            ("#confbridge-6", "Message", ("No Conference by that name found.",)),
        ),
    ),
    "asterisk-22/coresettings": Facts(
        2,
        0,
        "R:Success R:Success",
        values=(
            ("#coresettings-2", "AMIversion", ("11.0.0",)),
            ("#coresettings-2", "AsteriskVersion", ("22.11.0-rc1",)),
            ("#coresettings-2", "SystemName", ("",)),
            ("#coresettings-2", "CoreMaxLoadAvg", ("0.000000",)),
        ),
    ),
    "asterisk-22/coreshowchannels": Facts(
        45,
        41,
        counts={"CoreShowChannel": 4, "OriginateResponse": 2},
        lists={
            "coreshowchannels-4": "CoreShowChannel CoreShowChannel CoreShowChannel "
            "CoreShowChannel CoreShowChannelsComplete",
            "coreshowchannels-3": "OriginateResponse",
        },
        values=(
            ("CoreShowChannel:0", "Channel", ("Local/700@test-00000001;1",)),
            ("CoreShowChannel:1", "Channel", ("Local/700@test-00000000;1",)),
            ("CoreShowChannel:2", "Duration", ("00:00:01",)),
        ),
    ),
    "asterisk-22/coreshowchannels_empty": Facts(
        3,
        1,
        "R:Success R:Success CoreShowChannelsComplete",
        values=(
            ("CoreShowChannelsComplete", "ListItems", ("0",)),
            ("CoreShowChannelsComplete", "EventList", ("Complete",)),
            ("#coreshowchannels_empty-2", "Message", ("Channels will follow",)),
        ),
    ),
    "asterisk-22/corestatus": Facts(
        2,
        0,
        "R:Success R:Success",
        values=(
            ("#corestatus-2", "CoreStartupTime", ("09:42:15",)),
            ("#corestatus-2", "CoreProcessedCalls", ("14",)),
        ),
    ),
    "asterisk-22/db": Facts(
        14,
        5,
        "R:Success R:Success R:Success R:Success DBGetResponse DBGetComplete R:Error "
        "R:Success DBGetTreeResponse DBGetTreeResponse DBGetTreeComplete R:Success R:Error "
        "R:Success",
        lists={
            "db-4": "DBGetResponse DBGetComplete",
            "db-6": "DBGetTreeResponse DBGetTreeResponse DBGetTreeComplete",
        },
        values=(
            ("DBGetResponse", "Key", ("k1",)),
            ("DBGetTreeResponse:1", "Key", ("/lab/k2",)),
            ("DBGetTreeResponse:1", "Val", ("value with spaces",)),
            ("DBGetTreeComplete", "ListItems", ("2",)),
            ("#db-8", "Message", ("Database entry could not be deleted",)),
        ),
    ),
    "asterisk-22/dial_bridge": Facts(
        102,
        100,
        counts={"VarSet": 26, "CEL": 21, "QueueMemberStatus": 2, "BridgeLeave": 2},
        values=(
            ("DialEnd:0", "DestChannel", ("Local/100@test-0000004b;1",)),
            ("DialEnd:0", "DestExten", ("",)),
            ("BridgeCreate", "BridgeUniqueid", ("a2d151b0-e6f3-4bd8-ad82-68b415f0a131",)),
        ),
    ),
    "asterisk-22/event_burst": Facts(
        1755,
        1704,
        counts={
            "OriginateResponse": 50,
            "QueueMemberStatus": 2,
            "CEL": 450,
            "DeviceStateChange": 200,
            "Newexten": 150,
            "SuccessfulAuth": 1,
        },
        values=(
            ("#event_burst-1", "Message", AUTH_OK),
            ("#event_burst-51", "Message", ORIGINATE_QUEUED),
        ),
    ),
    "asterisk-22/events_off_on": Facts(
        42,
        35,
        counts={"OriginateResponse": 1, "UserEvent": 1},
        lists={"events_off_on-3": "", "events_off_on-5": "OriginateResponse"},
        values=(
            ("#events_off_on-2", "Events", ("Off",)),
            ("#events_off_on-6", "Events", ("On",)),
            ("UserEvent", "UserEvent", ("TestEvent",)),
        ),
    ),
    "asterisk-22/filter_action": Facts(
        12,
        6,
        "R:Success FullyBooted SuccessfulAuth R:Error R:Error R:Success R:Success R:Success "
        "Newchannel Newchannel Hangup Hangup",
        values=(
            ("#filter_action-2", "Message", ("Unknown operation",)),
            (
                "#filter_action-3",
                "Message",
                ("Filter did not compile.  Check the syntax of the filter given.",),
            ),
            ("Hangup:1", "Cause-txt", ("Unknown",)),
        ),
    ),
    "asterisk-22/filtered_legacy_user": Facts(
        6,
        4,
        "R:Success FullyBooted R:Success HangupRequest Hangup Hangup",
        values=(("HangupRequest", "Channel", ("Local/100@test-00000015;2",)),),
    ),
    "asterisk-22/filtered_user": Facts(
        5,
        3,
        "R:Success FullyBooted R:Success Hangup Hangup",
        values=(("Hangup:1", "Uniqueid", ("1795772609.41",)), ("FullyBooted", "Uptime", ("74",))),
    ),
    "asterisk-22/getvar_setvar": Facts(
        31,
        21,
        counts={"VarSet": 2, "OriginateResponse": 1},
        values=(
            ("#getvar_setvar-3", "Value", ("42",)),
            ("#getvar_setvar-4", "Value", ("",)),
            ("#getvar_setvar-7", "Value", ("hello world",)),
            ("#getvar_setvar-8", "Variable", ("CHANNEL(state)",)),
            ("#getvar_setvar-10", "Message", ("No variable specified",)),
        ),
    ),
    "asterisk-22/listcommands": Facts(
        2,
        0,
        "R:Success R:Success",
        values=(
            (
                "#listcommands-2",
                "AGI",
                ("Add an AGI command to execute by Async AGI.  (Priv: agi,all)",),
            ),
            ("#listcommands-2", "WaitEvent", ("Wait for an event to occur.  (Priv: <none>)",)),
        ),
    ),
    "asterisk-22/login_failure": Facts(
        1, 0, "R:Error", values=(("#login_failure-1", "Message", ("Authentication failed",)),)
    ),
    "asterisk-22/login_success": Facts(
        3,
        2,
        "R:Success FullyBooted SuccessfulAuth",
        values=(
            ("FullyBooted", "Uptime", ("0",)),
            ("SuccessfulAuth", "AccountID", ("admin",)),
        ),
    ),
    "asterisk-22/login_unknown_user": Facts(
        1, 0, "R:Error", values=(("#login_unknown_user-1", "Message", ("Authentication failed",)),)
    ),
    "asterisk-22/logoff": Facts(
        2, 0, "R:Success R:Goodbye", values=(("@1", "ActionID", ("logoff-2",)),)
    ),
    "asterisk-22/missing_actionid": Facts(
        12,
        3,
        "R:Success R:Success R:Success R:Success R:Error R:Success R:Success DBGetResponse "
        "DBGetComplete R:Success CoreShowChannelsComplete R:Success",
        values=(
            (
                "@3",
                "Output",
                ("System uptime: 1 minute, 8 seconds", "Last reload: 1 minute, 8 seconds"),
            ),
            ("@4", "Message", UNKNOWN_FOO),
            ("DBGetComplete", "EventList", ("Complete",)),
            ("@11", "Message", ("Key tree deleted successfully",)),
        ),
    ),
    "asterisk-22/mixmonitor": Facts(
        38,
        36,
        counts={"MixMonitorStart": 1, "VarSet": 1},
        values=(
            ("VarSet", "Variable", ("MIXMONITOR_FILENAME",)),
            ("VarSet", "Value", ("/var/spool/asterisk/monitor/lab-1795775563.1.wav",)),
            ("MixMonitorStart", "Channel", ("Local/710@test-00000000;2",)),
        ),
    ),
    "asterisk-22/originate_async": Facts(
        45,
        43,
        counts={"OriginateResponse": 1, "NewCallerid": 2, "VarSet": 4},
        values=(
            ("OriginateResponse", "ActionID", ("originate_async-2",)),
            ("OriginateResponse", "Uniqueid", ("1795772543.4",)),
            ("OriginateResponse", "CallerIDNum", ("1000",)),
        ),
    ),
    "asterisk-22/originate_async_channelid": Facts(
        44,
        42,
        counts={"OriginateResponse": 1, "UserEvent": 1},
        values=(
            ("OriginateResponse", "Uniqueid", ("lab-chan-1",)),
            ("OriginateResponse", "Exten", ("600",)),
            ("UserEvent", "Linkedid", ("lab-chan-1",)),
        ),
    ),
    "asterisk-22/originate_bad_channel": Facts(
        5,
        2,
        "R:Success FullyBooted SuccessfulAuth R:Error R:Error",
        values=(
            ("#originate_bad_channel-2", "Message", ("Originate failed",)),
            ("#originate_bad_channel-3", "Message", ("Channel not specified",)),
        ),
    ),
    "asterisk-22/originate_fail_async": Facts(
        21,
        19,
        counts={"OriginateResponse": 1, "Hangup": 2},
        lists={"originate_fail_async-2": "OriginateResponse"},
        values=(
            ("OriginateResponse", "Response", ("Failure",)),
            ("OriginateResponse", "Reason", ("0",)),
        ),
    ),
    "asterisk-22/originate_fail_sync": Facts(
        20,
        18,
        counts={"OriginateResponse": 0, "Hangup": 2, "CEL": 7},
        values=(("#originate_fail_sync-2", "Message", ("Originate failed",)),),
    ),
    "asterisk-22/originate_sync": Facts(
        35,
        33,
        counts={"OriginateResponse": 0, "CEL": 9, "DialBegin": 1},
        values=(("#originate_sync-2", "Message", ORIGINATE_QUEUED),),
    ),
    "asterisk-22/parking": Facts(
        32,
        28,
        lists={
            "parking-3": "ParkedCall ParkedCallsComplete",
            "parking-4": "Parkinglot ParkinglotsComplete",
        },
        values=(
            ("ParkedCall:0", "ParkingSpace", ("7001",)),
            ("ParkedCall:1", "ParkeeChannel", ("Local/900@test-0000004e;2",)),
            ("ParkedCallsComplete", "Total", ("1",)),
            ("Parkinglot", "StopSpace", ("7020",)),
        ),
    ),
    "asterisk-22/permission_denied": Facts(
        5,
        0,
        "R:Success R:Error R:Error R:Success R:Error",
        values=(
            ("#permission_denied-2", "Message", ("Permission denied",)),
            ("#permission_denied-4", "Ping", ("Pong",)),
        ),
    ),
    "asterisk-22/ping": Facts(
        3,
        0,
        "R:Success R:Success R:Success",
        values=(("#ping-2", "Timestamp", ("1795772540.542892",)), ("@2", "ActionID", ())),
    ),
    "asterisk-22/pipelined_actions": Facts(
        5,
        0,
        "R:Success R:Success R:Success R:Success R:Success",
        values=(
            ("@1", "ActionID", ("pipe-0",)),
            ("@2", "ActionID", ("pipe-1",)),
            ("@3", "CoreProcessedCalls", ("18",)),
            ("@4", "ActionID", ("pipe-3",)),
        ),
    ),
    "asterisk-22/playback_moh": Facts(
        69,
        66,
        counts={"MusicOnHoldStart": 1, "MusicOnHoldStop": 1, "OriginateResponse": 2, "CEL": 18},
        values=(
            ("MusicOnHoldStart", "Class", ("default",)),
            ("VarSet", "Variable", ("PLAYBACKSTATUS",)),
            ("VarSet", "Value", ("SUCCESS",)),
        ),
    ),
    "asterisk-22/queue": Facts(
        48,
        42,
        lists={
            "queue-3": "QueueParams QueueMember QueueEntry QueueParams QueueMember "
            "QueueStatusComplete",
            "queue-4": "QueueParams QueueMember QueueEntry QueueStatusComplete",
            "queue-5": "QueueSummary QueueSummary QueueSummaryComplete",
            "queue-6": "QueueSummaryComplete",
        },
        values=(
            ("QueueMember:0", "Paused", ("1",)),
            ("QueueMember:0", "LastPause", ("1795772535",)),
            ("QueueParams:1", "Strategy", ("rrmemory",)),
            ("QueueParams:0", "ServicelevelPerf2", ("0.0",)),
        ),
    ),
    "asterisk-22/queue_sales_answered": Facts(
        105,
        103,
        counts={"AgentCalled": 1, "AgentConnect": 1, "AgentComplete": 1, "VarSet": 19},
        values=(
            ("AgentConnect", "MemberName", ("Bob",)),
            ("AgentComplete", "TalkTime", ("2",)),
            ("AgentComplete", "Reason", ("agent",)),
        ),
    ),
    "asterisk-22/status": Facts(
        43,
        37,
        lists={"status-3": "Status Status StatusComplete", "status-4": "Status StatusComplete"},
        values=(
            ("Status:2", "Variable", ("FOO=(null)", "CHANNEL(state)=Up")),
            ("Status:2", "ActionID", ("status-4",)),
            ("Status:0", "AccountCode", ("",)),
            ("Status:0", "Language", ("en",)),
            ("StatusComplete:1", "Items", ("1",)),
        ),
    ),
    "asterisk-22/tls_login_ping": Facts(
        3,
        0,
        "R:Success R:Success R:Goodbye",
        values=(("#tls_login_ping-2", "Timestamp", ("1795772624.429998",)),),
    ),
    "asterisk-22/unauthenticated_action": Facts(
        3,
        0,
        "R:Error R:Error R:Goodbye",
        values=(("#unauthenticated_action-1", "Message", ("Permission denied",)),),
    ),
    "asterisk-22/unknown_action": Facts(
        3,
        0,
        "R:Success R:Error R:Success",
        values=(("#unknown_action-2", "Message", UNKNOWN_FOO), ("#lowercase-1", "Ping", ("Pong",))),
    ),
    "asterisk-22/userevent": Facts(
        41,
        38,
        counts={"UserEvent": 2},
        lists={"userevent-3": "UserEvent", "userevent-2": "OriginateResponse"},
        values=(
            ("UserEvent:1", "UserEvent", ("FromAMI",)),
            ("UserEvent:1", "Header1", ("value1",)),
            ("UserEvent:1", "Header2", ("value: with colon",)),
        ),
    ),
}


@pytest.mark.parametrize("path", BINS, ids=IDS)
def test_fixture_facts(path: Path) -> None:
    facts = FACTS[fixture_id(path)]
    parser, msgs = parse(path.read_bytes())
    version = BANNERS[path.parent.name]
    assert parser.banner == f"Asterisk Call Manager/{version}"
    assert parser.ami_version == version
    assert len(msgs) == facts.messages
    events = [m for m in msgs if isinstance(m, Event)]
    assert len(events) == facts.events
    # Everything else is a Response here: no capture has a message without either.
    assert all(isinstance(m, Response) for m in msgs if not isinstance(m, Event))
    if facts.sequence:
        got = [m.name if isinstance(m, Event) else f"R:{m['Response']}" for m in msgs]
        assert got == facts.sequence.split()
    counts = Counter(e.name for e in events)
    for name, n in facts.counts.items():
        assert counts[name] == n, name
    for action_id, names in facts.lists.items():
        carried = [e.name for e in events if e.action_id == action_id]
        assert carried == names.split(), action_id
    for selector, key, values in facts.values:
        assert select(msgs, selector).get_all(key) == list(values), (selector, key)


# -- Command output, both formats ---------------------------------------------------------------


def test_asterisk13_command_bodies() -> None:
    _, msgs = parse((fixtures_dir() / "asterisk-13" / "command.bin").read_bytes())
    follows = [m for m in msgs if isinstance(m, Response) and m.response == "Follows"]
    assert [m.action_id for m in follows] == ["command-3", "command-4", "command-5", "command-6"]
    assert all(m.body is not None and m.body.endswith("\n") for m in follows)
    bodies = [m.body or "" for m in follows]
    assert [len(b.splitlines()) for b in bodies] == [1, 6, 1, 104]
    assert bodies[0] == (
        "Asterisk 13.38.3 built by root @ vm on a x86_64 running Linux on 2026-11-27 10:46:00 UTC\n"
    )
    assert bodies[1].splitlines()[4] == "1 of 500 max active call ( 0.20% of capacity)"
    assert bodies[2].startswith("No such command 'this is not a command'")
    assert (
        bodies[3].splitlines()[-1]
        == "  WaitEvent                       Wait for an event to occur. "
    )
    assert "--END COMMAND--" not in "".join(bodies)
    assert follows[0].headers == (
        ("Response", "Follows"),
        ("Privilege", "Command"),
        ("ActionID", "command-3"),
    )
    # Every other message has no body.
    assert [m.body for m in msgs if m not in follows] == [None, None, None]


def test_asterisk22_command_output_equals_cli_text() -> None:
    # The same commands run with `asterisk -rx` (fixtures/asterisk-22/cli-*.txt).
    root = fixtures_dir() / "asterisk-22"
    _, msgs = parse((root / "command.bin").read_bytes())
    by_id = {m.action_id: m for m in msgs}
    version = (root / "cli-core-show-version.txt").read_text().splitlines()
    assert by_id["command-2"].get_all("Output") == version
    commands = (root / "cli-manager-show-commands.txt").read_text().splitlines()
    assert len(commands) == 103
    assert by_id["command-5"].get_all("Output") == commands
    assert all(m.body is None for m in msgs)


def test_listcommands_keeps_every_header() -> None:
    _, msgs = parse((fixtures_dir() / "asterisk-22" / "listcommands.bin").read_bytes())
    assert len(msgs[1].headers) == 103
    assert len(msgs[1]) == 103  # all keys distinct
    assert msgs[1].headers[2] == (
        "AbsoluteTimeout",
        "Set absolute timeout.  (Priv: system,call,all)",
    )


@pytest.mark.parametrize("path", bin_files(), ids=fixture_id)
def test_skipping_unwanted_events_keeps_exactly_the_rest(path: Path) -> None:
    """Parser.only_events drops whole frames nobody wants and nothing else."""
    data = path.read_bytes()
    everything = Parser().feed(data)
    wanted = frozenset({b"hangup", b"newchannel", b"originateresponse"})
    parser = Parser()
    parser.only_events = wanted
    kept = parser.feed(data)

    def survives(msg: Message) -> bool:
        return not (
            isinstance(msg, Event)
            and msg.headers[0][0] == "Event"
            and msg.name.lower().encode() not in wanted
        )

    assert snapshot(kept) == snapshot([m for m in everything if survives(m)])
