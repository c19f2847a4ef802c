"""What each Asterisk 22 capture in shared/fixtures/asterisk-22 says, read off its bytes.

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
    "async_agi": Facts(
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
    "bad_input": Facts(
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
    "challenge_md5_bad_key": Facts(
        2,
        0,
        "R:Success R:Error",
        values=(
            ("#challenge_md5_bad_key-1", "Challenge", ("112895365",)),
            ("#challenge_md5_bad_key-2", "Message", ("Authentication failed",)),
        ),
    ),
    "challenge_md5_login": Facts(
        5,
        2,
        "R:Success R:Success FullyBooted SuccessfulAuth R:Success",
        values=(("#challenge_md5_login-1", "Challenge", ("157470689",)),),
    ),
    "command": Facts(
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
    "confbridge": Facts(
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
    "coresettings": Facts(
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
    "coreshowchannels": Facts(
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
    "coreshowchannels_empty": Facts(
        3,
        1,
        "R:Success R:Success CoreShowChannelsComplete",
        values=(
            ("CoreShowChannelsComplete", "ListItems", ("0",)),
            ("CoreShowChannelsComplete", "EventList", ("Complete",)),
            ("#coreshowchannels_empty-2", "Message", ("Channels will follow",)),
        ),
    ),
    "corestatus": Facts(
        2,
        0,
        "R:Success R:Success",
        values=(
            ("#corestatus-2", "CoreStartupTime", ("09:42:15",)),
            ("#corestatus-2", "CoreProcessedCalls", ("14",)),
        ),
    ),
    "db": Facts(
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
    "dial_bridge": Facts(
        102,
        100,
        counts={"VarSet": 26, "CEL": 21, "QueueMemberStatus": 2, "BridgeLeave": 2},
        values=(
            ("DialEnd:0", "DestChannel", ("Local/100@test-0000004b;1",)),
            ("DialEnd:0", "DestExten", ("",)),
            ("BridgeCreate", "BridgeUniqueid", ("a2d151b0-e6f3-4bd8-ad82-68b415f0a131",)),
        ),
    ),
    "event_burst": Facts(
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
    "events_off_on": Facts(
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
    "filter_action": Facts(
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
    "filtered_legacy_user": Facts(
        6,
        4,
        "R:Success FullyBooted R:Success HangupRequest Hangup Hangup",
        values=(("HangupRequest", "Channel", ("Local/100@test-00000015;2",)),),
    ),
    "filtered_user": Facts(
        5,
        3,
        "R:Success FullyBooted R:Success Hangup Hangup",
        values=(("Hangup:1", "Uniqueid", ("1795772609.41",)), ("FullyBooted", "Uptime", ("74",))),
    ),
    "getvar_setvar": Facts(
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
    "listcommands": Facts(
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
    "login_failure": Facts(
        1, 0, "R:Error", values=(("#login_failure-1", "Message", ("Authentication failed",)),)
    ),
    "login_success": Facts(
        3,
        2,
        "R:Success FullyBooted SuccessfulAuth",
        values=(
            ("FullyBooted", "Uptime", ("0",)),
            ("SuccessfulAuth", "AccountID", ("admin",)),
        ),
    ),
    "login_unknown_user": Facts(
        1, 0, "R:Error", values=(("#login_unknown_user-1", "Message", ("Authentication failed",)),)
    ),
    "logoff": Facts(2, 0, "R:Success R:Goodbye", values=(("@1", "ActionID", ("logoff-2",)),)),
    "missing_actionid": Facts(
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
    "mixmonitor": Facts(
        38,
        36,
        counts={"MixMonitorStart": 1, "VarSet": 1},
        values=(
            ("VarSet", "Variable", ("MIXMONITOR_FILENAME",)),
            ("VarSet", "Value", ("/var/spool/asterisk/monitor/lab-1795775563.1.wav",)),
            ("MixMonitorStart", "Channel", ("Local/710@test-00000000;2",)),
        ),
    ),
    "originate_async": Facts(
        45,
        43,
        counts={"OriginateResponse": 1, "NewCallerid": 2, "VarSet": 4},
        values=(
            ("OriginateResponse", "ActionID", ("originate_async-2",)),
            ("OriginateResponse", "Uniqueid", ("1795772543.4",)),
            ("OriginateResponse", "CallerIDNum", ("1000",)),
        ),
    ),
    "originate_async_channelid": Facts(
        44,
        42,
        counts={"OriginateResponse": 1, "UserEvent": 1},
        values=(
            ("OriginateResponse", "Uniqueid", ("lab-chan-1",)),
            ("OriginateResponse", "Exten", ("600",)),
            ("UserEvent", "Linkedid", ("lab-chan-1",)),
        ),
    ),
    "originate_bad_channel": Facts(
        5,
        2,
        "R:Success FullyBooted SuccessfulAuth R:Error R:Error",
        values=(
            ("#originate_bad_channel-2", "Message", ("Originate failed",)),
            ("#originate_bad_channel-3", "Message", ("Channel not specified",)),
        ),
    ),
    "originate_fail_async": Facts(
        21,
        19,
        counts={"OriginateResponse": 1, "Hangup": 2},
        lists={"originate_fail_async-2": "OriginateResponse"},
        values=(
            ("OriginateResponse", "Response", ("Failure",)),
            ("OriginateResponse", "Reason", ("0",)),
        ),
    ),
    "originate_fail_sync": Facts(
        20,
        18,
        counts={"OriginateResponse": 0, "Hangup": 2, "CEL": 7},
        values=(("#originate_fail_sync-2", "Message", ("Originate failed",)),),
    ),
    "originate_sync": Facts(
        35,
        33,
        counts={"OriginateResponse": 0, "CEL": 9, "DialBegin": 1},
        values=(("#originate_sync-2", "Message", ORIGINATE_QUEUED),),
    ),
    "parking": Facts(
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
    "permission_denied": Facts(
        5,
        0,
        "R:Success R:Error R:Error R:Success R:Error",
        values=(
            ("#permission_denied-2", "Message", ("Permission denied",)),
            ("#permission_denied-4", "Ping", ("Pong",)),
        ),
    ),
    "ping": Facts(
        3,
        0,
        "R:Success R:Success R:Success",
        values=(("#ping-2", "Timestamp", ("1795772540.542892",)), ("@2", "ActionID", ())),
    ),
    "pipelined_actions": Facts(
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
    "playback_moh": Facts(
        69,
        66,
        counts={"MusicOnHoldStart": 1, "MusicOnHoldStop": 1, "OriginateResponse": 2, "CEL": 18},
        values=(
            ("MusicOnHoldStart", "Class", ("default",)),
            ("VarSet", "Variable", ("PLAYBACKSTATUS",)),
            ("VarSet", "Value", ("SUCCESS",)),
        ),
    ),
    "queue": Facts(
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
    "queue_sales_answered": Facts(
        105,
        103,
        counts={"AgentCalled": 1, "AgentConnect": 1, "AgentComplete": 1, "VarSet": 19},
        values=(
            ("AgentConnect", "MemberName", ("Bob",)),
            ("AgentComplete", "TalkTime", ("2",)),
            ("AgentComplete", "Reason", ("agent",)),
        ),
    ),
    "status": Facts(
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
    "tls_login_ping": Facts(
        3,
        0,
        "R:Success R:Success R:Goodbye",
        values=(("#tls_login_ping-2", "Timestamp", ("1795772624.429998",)),),
    ),
    "unauthenticated_action": Facts(
        3,
        0,
        "R:Error R:Error R:Goodbye",
        values=(("#unauthenticated_action-1", "Message", ("Permission denied",)),),
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
        counts={"UserEvent": 2},
        lists={"userevent-3": "UserEvent", "userevent-2": "OriginateResponse"},
        values=(
            ("UserEvent:1", "UserEvent", ("FromAMI",)),
            ("UserEvent:1", "Header1", ("value1",)),
            ("UserEvent:1", "Header2", ("value: with colon",)),
        ),
    ),
    # ------------------------------------------------------------ later recordings
    "async_agi_full": Facts(
        96,
        80,
        counts={"AsyncAGIStart": 1, "AGIExecStart": 13, "AGIExecEnd": 13, "AsyncAGIExec": 13},
        lists={"async_agi_full-16": "CoreShowChannelsComplete"},
        values=(
            ("#async_agi_full-3", "Message", ("Added AGI command to queue",)),
            ("AsyncAGIExec:0", "Result", ("200%20result%3D0%0A",)),
            ("AsyncAGIExec:0", "CommandId", ("answer-1",)),
            (
                "AsyncAGIExec:5",
                "Result",
                ("200%20result%3D1%20(50%25%20%2B%20a%26b%3Dc%2Fd%3F%20%C3%A9)%0A",),
            ),
            ("AGIExecEnd:9", "ResultCode", ("510",)),
            ("AGIExecEnd:10", "Result", ("Usage",)),
        ),
    ),
    "async_agi_hangup": Facts(
        46,
        39,
        counts={"AsyncAGIExec": 1, "AsyncAGIEnd": 1},
        values=(
            ("AsyncAGIExec", "Result", ("200%20result%3D-1%0A",)),
            ("#async_agi_hangup-5", "Message", ("Channel Hungup",)),
            (
                "#async_agi_hangup-6",
                "Message",
                ("Channel Local/720@test-00000020;2 does not exist.",),
            ),
        ),
    ),
    "attended_transfer": Facts(
        172,
        167,
        counts={"DTMFEnd": 6, "DTMFBegin": 0, "BridgeMerge": 1, "AttendedTransfer": 1},
        lists={"attended_transfer-5": "CoreShowChannelsComplete"},
        values=(
            ("AttendedTransfer", "Result", ("Success",)),
            ("AttendedTransfer", "DestType", ("Bridge",)),
            ("AttendedTransfer", "TransferTargetChannel", ("Local/2015@test-0000000c;1",)),
        ),
    ),
    "blind_transfer": Facts(
        178,
        174,
        counts={"BlindTransfer": 1, "Hangup": 6},
        lists={"blind_transfer-4": "CoreShowChannelsComplete"},
        values=(
            ("BlindTransfer", "Result", ("Success",)),
            ("BlindTransfer", "Extension", ("2012",)),
            ("BlindTransfer", "TransfereeChannel", ("Local/2011@test-00000008;1",)),
        ),
    ),
    "bridge_action": Facts(
        82,
        77,
        counts={"OriginateResponse": 2, "Hangup": 4},
        lists={"bridge_action-5": "CoreShowChannelsComplete"},
        values=(("CoreShowChannelsComplete", "ListItems", ("0",)),),
    ),
    "broken_events_action": Facts(
        8,
        2,
        "R:Success FullyBooted SuccessfulAuth R:Success R:Success R:Success R:Success R:Success",
        values=(
            ("#broken_events_action-3", "Events", ("Off",)),
            ("#broken_events_action-5", "Events", ("On",)),
            ("#broken_events_action-8", "Ping", ("Pong",)),
        ),
        # EventMask: on, and no EventMask at all: no answer under brokeneventsaction.
        unanswered=("broken_events_action-2", "broken_events_action-7"),
    ),
    "command_large_output": Facts(
        2,
        0,
        "R:Success R:Success",
        values=(("#command_large_output-2", "Message", ("Command output follows",)),),
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
        values=(("ConfbridgeJoin:2", "Conference", ("1234",)),),
    ),
    "dial_busy": Facts(
        70,
        67,
        counts={"DialState": 0, "OriginateResponse": 1, "Hangup": 4},
        lists={"dial_busy-3": "CoreShowChannelsComplete"},
        values=(
            ("DialEnd:0", "DialStatus", ("BUSY",)),
            ("Hangup:1", "Cause", ("17",)),
            ("OriginateResponse", "Response", ("Failure",)),
            ("OriginateResponse", "Reason", ("0",)),
        ),
    ),
    "dial_congestion": Facts(
        70,
        67,
        counts={"DialState": 0, "OriginateResponse": 1, "Hangup": 4},
        lists={"dial_congestion-3": "CoreShowChannelsComplete"},
        values=(
            ("DialEnd:0", "DialStatus", ("CONGESTION",)),
            ("Hangup:2", "Cause", ("34",)),
            ("OriginateResponse", "Response", ("Failure",)),
        ),
    ),
    "dial_noanswer": Facts(
        77,
        74,
        counts={"DialState": 2, "OriginateResponse": 1, "Hangup": 4},
        lists={"dial_noanswer-3": "CoreShowChannelsComplete"},
        values=(
            ("DialState:0", "DialStatus", ("RINGING",)),
            ("DialEnd:0", "DialStatus", ("NOANSWER",)),
            ("OriginateResponse", "Response", ("Failure",)),
            ("OriginateResponse", "Reason", ("0",)),
        ),
    ),
    "fastagi_basic_ami": Facts(
        130,
        123,
        counts={"AGIExecStart": 37, "AGIExecEnd": 37, "DTMFEnd": 4},
        lists={"fastagi_basic_ami-7": "CoreShowChannelsComplete"},
        values=(("#fastagi_basic_ami-3", "Message", ("DTMF successfully queued",)),),
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
        values=(("#fastagi_hangup_ami-3", "Message", ("Channel Hungup",)),),
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
    "hangup_causes": Facts(
        130,
        121,
        counts={"Hangup": 8, "HangupRequest": 4, "OriginateResponse": 4},
        lists={"hangup_causes-9": "CoreShowChannelsComplete"},
        values=(("#hangup_causes-3", "Message", ("Channel Hungup",)),),
    ),
    "local_optimization": Facts(
        176,
        173,
        counts={"LocalOptimizationBegin": 1, "LocalOptimizationEnd": 1, "Hangup": 6},
        lists={"local_optimization-3": "CoreShowChannelsComplete"},
        values=(("LocalOptimizationBegin", "LocalOneChannel", ("Local/2021@test-0000001b;1",)),),
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
        values=(
            ("SessionLimit", "AccountID", ("",)),
            ("SessionLimit", "SessionTV", ("1970-01-01T00:00:00.000+0000",)),
        ),
    ),
    "park_and_retrieve": Facts(
        161,
        156,
        counts={"ParkedCall": 1, "UnParkedCall": 1},
        lists={"park_and_retrieve-5": "CoreShowChannelsComplete"},
        values=(
            # The line is `Message: Park successful\n\r\n`: the bare LF ends it.
            ("#park_and_retrieve-3", "Message", ("Park successful",)),
            ("UnParkedCall", "ParkingSpace", ("7001",)),
        ),
    ),
    "queue_call_answered": Facts(
        107,
        104,
        counts={"QueueCallerJoin": 1, "AgentCalled": 1, "AgentConnect": 1, "AgentComplete": 1},
        lists={"queue_call_answered-3": "CoreShowChannelsComplete"},
        values=(("AgentComplete", "TalkTime", ("2",)), ("AgentConnect", "MemberName", ("Bob",))),
    ),
    "read_call_only_user": Facts(
        29,
        26,
        # read=call: no FullyBooted (system), SuccessfulAuth (security), Newexten (dialplan).
        counts={"FullyBooted": 0, "SuccessfulAuth": 0, "Newexten": 0, "VarSet": 0, "CEL": 9},
        values=(("#read_call_only_user-2", "Ping", ("Pong",)),),
    ),
    "redirect_both_legs": Facts(
        107,
        103,
        counts={"Hangup": 4},
        lists={"redirect_both_legs-4": "CoreShowChannelsComplete"},
        values=(("#redirect_both_legs-3", "Message", ("Dual Redirect successful",)),),
    ),
    "restart_live_call": Facts(
        38,
        36,
        counts={"SoftHangupRequest": 3, "Hangup": 2, "Shutdown": 1},
        values=(
            ("SoftHangupRequest:0", "Cause", ("4",)),
            ("Shutdown", "Shutdown", ("Cleanly",)),
            ("@-1", "Event", ("Shutdown",)),
        ),
    ),
    "restart_midsession": Facts(
        5,
        4,
        "R:Success FullyBooted SuccessfulAuth SuccessfulAuth Shutdown",
        values=(
            ("Shutdown", "Privilege", ("system,all",)),
            ("Shutdown", "Shutdown", ("Cleanly",)),
            ("Shutdown", "Restart", ("True",)),
        ),
    ),
    "restart_reconnect": Facts(
        4,
        2,
        # Login during boot: FullyBooted comes later, on its own, Status first.
        "R:Success SuccessfulAuth FullyBooted R:Success",
        values=(
            ("FullyBooted", "Status", ("Fully Booted",)),
            ("FullyBooted", "Uptime", ("0",)),
            ("@1", "Privilege", ("security,all",)),
        ),
    ),
}


@pytest.mark.parametrize("scenario", sorted(FACTS))
def test_capture_facts(scenario: str) -> None:
    check_facts("asterisk-22", scenario, FACTS[scenario])
