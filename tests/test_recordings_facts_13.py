"""What each Asterisk 13 capture in shared/fixtures/asterisk-13 says, read off its bytes.

One entry per capture: the number of messages and of events, their order,
list items per ActionID and header values, counted with grep on the ``.bin``
files, never with this parser. This file is a data table, hence its length.
A capture with no entry here still gets every generic check of
``test_fixtures.py``; an entry whose capture is gone fails.
"""

from __future__ import annotations

import pytest
from _fixtures import Facts, check_facts

ORIGINATE_QUEUED = ("Originate successfully queued",)
AUTH_OK = ("Authentication accepted",)
UNKNOWN_FOO = (
    "Invalid/unknown command: Foo. Use Action: ListCommands to show available commands.",
)

FACTS: dict[str, Facts] = {
    "challenge_md5_login": Facts(
        5,
        2,
        "R:Success R:Success FullyBooted SuccessfulAuth R:Success",
        values=(
            ("#challenge_md5_login-1", "Challenge", ("177418261",)),
            ("#challenge_md5_login-2", "Message", AUTH_OK),
            ("#challenge_md5_login-3", "Timestamp", ("1795776484.773169",)),
        ),
    ),
    "command": Facts(
        7,
        0,
        "R:Success R:Success R:Follows R:Follows R:Follows R:Follows R:Error",
        values=(
            ("#command-3", "Privilege", ("Command",)),
            ("#command-3", "Message", ()),
            ("#command-7", "Message", ("No command provided",)),
        ),
    ),
    "coreshowchannels": Facts(
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
    "db": Facts(
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
    "dial_bridge": Facts(
        103,
        101,
        counts={"VarSet": 25, "CEL": 21, "QueueMemberStatus": 4, "BridgeEnter": 2, "Hangup": 4},
        values=(
            ("BridgeCreate", "BridgeTechnology", ("simple_bridge",)),
            ("DialEnd:0", "DestChannel", ("Local/100@test-0000000c;1",)),
            ("DialEnd:1", "DialStatus", ("ANSWER",)),
        ),
    ),
    "event_burst": Facts(
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
    "events_off_on": Facts(
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
    "login_failure": Facts(
        1, 0, "R:Error", values=(("@0", "Message", ("Authentication failed",)),)
    ),
    "login_success": Facts(
        3,
        2,
        "R:Success FullyBooted SuccessfulAuth",
        values=(
            ("FullyBooted", "Status", ("Fully Booted",)),
            ("FullyBooted", "Uptime", ()),  # 13 has no Uptime/LastReload
            ("FullyBooted", "Privilege", ("system,all",)),
        ),
    ),
    "logoff": Facts(
        2,
        0,
        "R:Success R:Goodbye",
        values=(("#logoff-2", "Message", ("Thanks for all the fish.",)),),
    ),
    "originate_async": Facts(
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
    "originate_fail_async": Facts(
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
    "ping": Facts(
        3,
        0,
        "R:Success R:Success R:Success",
        values=(
            ("#ping-2", "Ping", ("Pong",)),
            ("@2", "ActionID", ()),
            ("@2", "Timestamp", ("1795776484.775752",)),
        ),
    ),
    "queue": Facts(
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
    "status": Facts(
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
    "unknown_action": Facts(
        3,
        0,
        "R:Success R:Error R:Success",
        values=(("#unknown_action-2", "Message", UNKNOWN_FOO), ("#lowercase-1", "Ping", ("Pong",))),
    ),
    "userevent": Facts(
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
    # ------------------------------------------------------------ later recordings
    "async_agi_full": Facts(
        96,
        80,
        counts={"AsyncAGIStart": 1, "AGIExecStart": 13, "AGIExecEnd": 13, "AsyncAGIExec": 13},
        lists={"async_agi_full-16": "CoreShowChannelsComplete"},
        values=(
            ("AsyncAGIExec:0", "Result", ("200%20result%3D0%0A",)),
            ("AsyncAGIExec:0", "CommandId", ("answer-1",)),
            ("AGIExecEnd:9", "ResultCode", ("510",)),
        ),
    ),
    "async_agi_hangup": Facts(
        46,
        39,
        counts={"AsyncAGIExec": 1, "AsyncAGIEnd": 1},
        values=(
            ("AsyncAGIExec", "Result", ("200%20result%3D-1%0A",)),
            (
                "#async_agi_hangup-6",
                "Message",
                ("Channel Local/720@test-00000023;2 does not exist.",),
            ),
        ),
    ),
    "attended_transfer": Facts(
        168,
        163,
        counts={"DTMFEnd": 6, "DTMFBegin": 0, "BridgeMerge": 1, "AttendedTransfer": 1},
        lists={"attended_transfer-5": "CoreShowChannelsComplete"},
        values=(
            ("AttendedTransfer", "Result", ("Success",)),
            ("AttendedTransfer", "TransferTargetChannel", ("Local/2015@test-0000000c;1",)),
        ),
    ),
    "blind_transfer": Facts(
        177,
        173,
        counts={"BlindTransfer": 1, "Hangup": 6},
        lists={"blind_transfer-4": "CoreShowChannelsComplete"},
        values=(("BlindTransfer", "Result", ("Success",)),),
    ),
    "bridge_action": Facts(
        83,
        78,
        counts={"OriginateResponse": 2, "Hangup": 4},
        lists={"bridge_action-5": "CoreShowChannelsComplete"},
    ),
    "command_large_output": Facts(
        2,
        0,
        "R:Success R:Follows",
        values=(("#command_large_output-2", "Privilege", ("Command",)),),
    ),
    "confbridge_list_rooms_empty": Facts(
        2,
        0,
        "R:Success R:Error",
        values=(("#confbridge_list_rooms_empty-2", "Message", ("No active conferences.",)),),
    ),
    "conference_three": Facts(
        140,
        135,
        counts={
            "ConfbridgeStart": 1,
            "ConfbridgeJoin": 3,
            "ConfbridgeLeave": 3,
            "ConfbridgeEnd": 1,
        },
        lists={"conference_three-5": "CoreShowChannelsComplete"},
    ),
    "dial_busy": Facts(
        69,
        66,
        counts={"OriginateResponse": 1, "Hangup": 4},
        lists={"dial_busy-3": "CoreShowChannelsComplete"},
        values=(
            ("DialEnd:0", "DialStatus", ("BUSY",)),
            ("Hangup:1", "Cause", ("17",)),
            ("OriginateResponse", "Response", ("Failure",)),
        ),
    ),
    "dial_congestion": Facts(
        69,
        66,
        counts={"OriginateResponse": 1, "Hangup": 4},
        lists={"dial_congestion-3": "CoreShowChannelsComplete"},
        values=(("DialEnd:0", "DialStatus", ("CONGESTION",)), ("Hangup:1", "Cause", ("34",))),
    ),
    "dial_noanswer": Facts(
        74,
        71,
        # Asterisk 13 has no DialState event.
        counts={"DialState": 0, "OriginateResponse": 1, "Hangup": 4},
        lists={"dial_noanswer-3": "CoreShowChannelsComplete"},
        values=(
            ("DialEnd:0", "DialStatus", ("NOANSWER",)),
            ("OriginateResponse", "Reason", ("0",)),
        ),
    ),
    "fastagi_basic_ami": Facts(
        130,
        123,
        counts={"AGIExecStart": 37, "AGIExecEnd": 37, "DTMFEnd": 4},
        lists={"fastagi_basic_ami-7": "CoreShowChannelsComplete"},
    ),
    "fastagi_continue_ami": Facts(
        38,
        35,
        counts={"AGIExecStart": 2, "AGIExecEnd": 2},
        lists={"fastagi_continue_ami-3": "CoreShowChannelsComplete"},
    ),
    "fastagi_hangup_ami": Facts(
        41,
        37,
        counts={"AGIExecStart": 5, "AGIExecEnd": 5},
        lists={"fastagi_hangup_ami-4": "CoreShowChannelsComplete"},
    ),
    "fastagi_hangup_idle_ami": Facts(
        37,
        33,
        counts={"AGIExecStart": 3, "AGIExecEnd": 3},
        lists={"fastagi_hangup_idle_ami-4": "CoreShowChannelsComplete"},
    ),
    "fastagi_pipelined_ami": Facts(
        53,
        50,
        counts={"AGIExecStart": 7, "AGIExecEnd": 7},
        lists={"fastagi_pipelined_ami-3": "CoreShowChannelsComplete"},
    ),
    "login_already_in_use": Facts(
        1,
        0,
        "R:Error",
        values=(("#login_already_in_use-1", "Message", ("Login Already In Use",)),),
    ),
    "login_already_in_use_holder": Facts(
        5,
        3,
        "R:Success FullyBooted SuccessfulAuth SessionLimit R:Goodbye",
        values=(("SessionLimit", "AccountID", ("",)),),
    ),
    "queue_call_answered": Facts(
        95,
        92,
        # 13 sends each QueueMemberStatus twice.
        counts={"AgentConnect": 1, "AgentComplete": 1, "QueueMemberStatus": 4},
        lists={"queue_call_answered-3": "CoreShowChannelsComplete"},
        values=(("AgentComplete", "TalkTime", ("2",)),),
    ),
    "read_call_only_user": Facts(
        32,
        29,
        # 13's Newexten is call class, so a read=call user gets it.
        counts={"FullyBooted": 0, "SuccessfulAuth": 0, "Newexten": 3, "VarSet": 0, "CEL": 9},
        values=(("#read_call_only_user-2", "Ping", ("Pong",)),),
    ),
    "redirect_both_legs": Facts(
        106,
        102,
        counts={"Hangup": 4},
        lists={"redirect_both_legs-4": "CoreShowChannelsComplete"},
        values=(("#redirect_both_legs-3", "Message", ("Dual Redirect successful",)),),
    ),
    "restart_live_call": Facts(
        38,
        36,
        counts={"SoftHangupRequest": 3, "Hangup": 2, "Shutdown": 1},
        values=(("SoftHangupRequest:0", "Cause", ("4",)), ("@-1", "Event", ("Shutdown",))),
    ),
    "restart_midsession": Facts(
        5,
        4,
        "R:Success FullyBooted SuccessfulAuth SuccessfulAuth Shutdown",
        values=(("Shutdown", "Shutdown", ("Cleanly",)), ("Shutdown", "Restart", ("True",))),
    ),
    "restart_reconnect": Facts(
        4,
        2,
        "R:Success SuccessfulAuth FullyBooted R:Success",
        values=(("FullyBooted", "Status", ("Fully Booted",)), ("FullyBooted", "Uptime", ())),
    ),
}


@pytest.mark.parametrize("scenario", sorted(FACTS))
def test_capture_facts(scenario: str) -> None:
    check_facts("asterisk-13", scenario, FACTS[scenario])
