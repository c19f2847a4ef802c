"""The sans-IO core against the quirk checklist of shared/PROTOCOL.md, and encode_action.

Each ``test_quirk_*`` names the quirk it covers. Real bytes come from the
captures in shared/fixtures; hand-built frames are used only where no capture
shows the case.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from _fixtures import bin_files, feed_chunks, fixtures_dir, snapshot, split_at

from ami_async.dispatch import _ScanLists
from ami_async.errors import AMIError, InvalidActionError, ProtocolError
from ami_async.message import Event, Message, Response
from ami_async.protocol import HeaderScalar, HeaderValue, Parser, encode_action

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def one(data: bytes) -> Message:
    """Parse ``data`` (which must complete exactly one message) and return it."""
    msgs = Parser(expect_banner=False).feed(data)
    assert len(msgs) == 1, msgs
    return msgs[0]


def command13_frames() -> list[bytes]:
    """The four ``Response: Follows`` frames of asterisk-13/command.bin, terminator included."""
    data = (fixtures_dir() / "asterisk-13" / "command.bin").read_bytes()
    frames = []
    pos = data.find(b"Response: Follows\r\n")
    while pos >= 0:
        end = data.index(b"--END COMMAND--\r\n\r\n", pos) + len(b"--END COMMAND--\r\n\r\n")
        frames.append(data[pos:end])
        pos = data.find(b"Response: Follows\r\n", end)
    assert len(frames) == 4
    return frames


def fixture(name: str) -> Path:
    return fixtures_dir() / name


# -- framing -------------------------------------------------------------------------


def test_quirk_crlf_frames() -> None:
    msgs = Parser().feed(
        BANNER
        + b"Response: Success\r\nActionID: a1\r\nPing: Pong\r\n\r\n"
        + b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    )
    assert [m.headers for m in msgs] == [
        (("Response", "Success"), ("ActionID", "a1"), ("Ping", "Pong")),
        (("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted")),
    ]
    assert [type(m) for m in msgs] == [Response, Event]
    # No stray "\r" survives in keys or values.
    assert all("\r" not in k + v for m in msgs for k, v in m.headers)


def test_quirk_banner_without_blank_line_is_not_glued_to_first_message() -> None:
    # The real first read of asterisk-22/login_success: the banner line alone.
    data = fixture("asterisk-22/login_success.bin").read_bytes()
    assert data.startswith(BANNER + b"Response: Success\r\n")
    parser = Parser()
    assert parser.feed(data[: len(BANNER)]) == []
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert parser.ami_version == "11.0.0"
    assert parser.buffered == 0
    first = parser.feed(data[len(BANNER) :])[0]
    assert first.headers == (
        ("Response", "Success"),
        ("ActionID", "login_success-1"),
        ("Message", "Authentication accepted"),
    )
    assert first.bare_lines == ()


def test_quirk_banner_split_across_feeds() -> None:
    parser = Parser()
    assert parser.feed(b"Asterisk Call Man") == []
    assert parser.banner is None
    msgs = parser.feed(b"ager/2.10.6\r\nResponse: Success\r\n\r\n")
    assert parser.banner == "Asterisk Call Manager/2.10.6"
    assert parser.ami_version == "2.10.6"
    assert [m.headers for m in msgs] == [(("Response", "Success"),)]


@pytest.mark.parametrize(
    ("banner", "version"),
    [
        ("Asterisk Call Manager/1.0", "1.0"),
        ("Asterisk Call Manager Proxy/1.2.3", "1.2.3"),
        ("Asterisk Manager Proxy/4.0", "4.0"),
        ("OpenPBX Call Manager/1.0", "1.0"),
        ("CallWeaver Call Manager/1.4", "1.4"),
    ],
)
def test_quirk_other_banners(banner: str, version: str) -> None:
    parser = Parser()
    msgs = parser.feed(banner.encode() + b"\r\nResponse: Pong\r\nActionID: 7\r\n\r\n")
    assert parser.banner == banner
    assert parser.ami_version == version
    assert [m.headers for m in msgs] == [(("Response", "Pong"), ("ActionID", "7"))]


def test_quirk_stream_without_banner_keeps_first_message_whole() -> None:
    parser = Parser()
    msgs = parser.feed(b"Response: Success\r\nMessage: no banner here\r\n\r\n")
    assert parser.banner is None
    assert parser.ami_version is None
    assert msgs[0].headers == (("Response", "Success"), ("Message", "no banner here"))


def test_quirk_repeated_keys_in_order() -> None:
    # asterisk-22/status.bin, the Status event of one channel: two Variable lines.
    data = fixture("asterisk-22/status.bin").read_bytes()
    status = [m for m in Parser().feed(data) if isinstance(m, Event) and m.name == "Status"]
    assert status[-1].get_all("Variable") == ["FOO=(null)", "CHANNEL(state)=Up"]
    assert status[-1]["Variable"] == "FOO=(null)"
    msg = one(b"Event: X\r\nA: 1\r\nB: 2\r\na: 3\r\nA: 4\r\n\r\n")
    assert msg.get_all("A") == ["1", "3", "4"]
    assert [k for k, _ in msg.headers] == ["Event", "A", "B", "a", "A"]


def test_quirk_empty_value_key_colon_space() -> None:
    msg = one(b"Event: Newchannel\r\nAccountCode: \r\nExten: \r\nContext: test\r\n\r\n")
    assert msg["AccountCode"] == ""
    assert msg["Exten"] == ""
    assert "AccountCode" in msg
    assert msg.headers[1] == ("AccountCode", "")
    assert msg.get("AccountCode", "default") == ""


def test_quirk_key_colon_without_space_is_tolerated() -> None:
    msg = one(b"Response:Success\r\nActionID:nospace-1\r\nKey:\r\n\r\n")
    assert isinstance(msg, Response)
    assert msg.headers == (("Response", "Success"), ("ActionID", "nospace-1"), ("Key", ""))


def test_quirk_exactly_one_space_separates_rest_belongs_to_value() -> None:
    msg = one(b"Response: Success\r\nA:  two\r\nB:   three  \r\nC: x \r\nD:\tt\r\nE:  \r\n\r\n")
    assert msg["A"] == " two"
    assert msg["B"] == "  three  "
    assert msg["C"] == "x "
    assert msg["D"] == "\tt"
    assert msg["E"] == " "
    # Real bytes: asterisk-22/bad_input.bin echoes a padded ActionID with its trailing spaces.
    pings = Parser().feed(fixture("asterisk-22/bad_input.bin").read_bytes())
    assert "spaced-1   " in [m.get("ActionID") for m in pings]


def test_quirk_values_containing_colon_space() -> None:
    # asterisk-22/userevent.bin: the UserEvent sent by the action.
    data = fixture("asterisk-22/userevent.bin").read_bytes()
    ue = [m for m in Parser().feed(data) if m.get("UserEvent") == "FromAMI"]
    assert ue[0]["Header2"] == "value: with colon"
    msg = one(b"Event: X\r\nUri: sip:100@10.0.0.1:5060\r\nAppData: a: b: c\r\n\r\n")
    assert msg["Uri"] == "sip:100@10.0.0.1:5060"
    assert msg["AppData"] == "a: b: c"


def test_quirk_keys_with_parens_slash_dash() -> None:
    msg = one(
        b"Event: OriginateResponse\r\n"
        b"ChanVariable(PJSIP/foo-00000001): FOO=bar\r\n"
        b"Cause-txt: Normal Clearing\r\n"
        b"SIP-AuthInsecure: no\r\n"
        b"Category-000000: general\r\n"
        b"Line-000000-000000: foo=bar\r\n\r\n"
    )
    assert msg["ChanVariable(PJSIP/foo-00000001)"] == "FOO=bar"
    assert msg["cause-txt"] == "Normal Clearing"
    assert msg["SIP-AuthInsecure"] == "no"
    assert msg["Category-000000"] == "general"
    assert msg["Line-000000-000000"] == "foo=bar"


def test_quirk_headerless_lines_kept_in_bare_lines() -> None:
    msg = one(
        b"Response: Success\r\nActionID: g1\r\nNo categories found\r\n"
        b"Event: UserEvent\r\nsome body line\r\n\r\n"
    )
    assert msg.bare_lines == ("No categories found", "some body line")
    assert msg.headers == (("Response", "Success"), ("ActionID", "g1"), ("Event", "UserEvent"))


# -- Command (pre-14 Response: Follows) ---------------------------------------------------


def test_quirk_follows_body_real_bytes_bare_lf() -> None:
    frames = command13_frames()
    channels = frames[1]  # core show channels with 2 live channels
    raw_body = channels[channels.index(b"ActionID: command-4\r\n") + 21 : -19]
    assert raw_body.endswith(b"1 call processed\n")
    assert b"\r" not in raw_body  # the CLI text has bare "\n" line ends only
    msg = one(channels)
    assert isinstance(msg, Response)
    assert msg.headers == (
        ("Response", "Follows"),
        ("Privilege", "Command"),
        ("ActionID", "command-4"),
    )
    assert msg.action_id == "command-4"
    assert msg.body == (
        "Channel              Location             State   Application(Data)             \n"
        "Local/700@test-00000 700@test:1           Up      Wait(30)                      \n"
        "Local/700@test-00000 700@test:2           Up      Wait(30)                      \n"
        "2 active channels\n"
        "1 of 500 max active call ( 0.20% of capacity)\n"
        "1 call processed\n"
    )
    assert msg.bare_lines == ()


def test_quirk_follows_body_with_blank_lines() -> None:
    # Built from the real "core show channels" frame: blank CLI lines (bare "\n\n").
    frame = command13_frames()[1].replace(b"2 active channels\n", b"\n2 active channels\n\n\n")
    msg = one(frame)
    assert msg.action_id == "command-4"
    assert msg.body is not None
    assert "(Data)             \n" in msg.body
    assert "Wait(30)                      \n\n2 active channels\n\n\n1 of 500" in msg.body
    assert msg.body.endswith("1 call processed\n")


def test_quirk_follows_end_command_glued_to_last_line() -> None:
    frame = command13_frames()[2]  # the unknown-command text
    assert frame.endswith(b"commands)\n--END COMMAND--\r\n\r\n")
    glued = frame.replace(b"commands)\n--END", b"commands)--END")
    msgs = Parser(expect_banner=False).feed(glued + b"Response: Success\r\nActionID: n\r\n\r\n")
    assert len(msgs) == 2
    assert msgs[0].action_id == "command-5"
    assert msgs[0].body == (
        "No such command 'this is not a command' "
        "(type 'core show help this is' for other possible commands)"
    )
    assert msgs[1].headers == (("Response", "Success"), ("ActionID", "n"))


def test_quirk_follows_cli_text_recoverable_line_for_line() -> None:
    frames = command13_frames()
    version = one(frames[0])
    assert version.body is not None
    assert version.body.splitlines() == [
        "Asterisk 13.38.3 built by root @ vm on a x86_64 running Linux on 2026-11-27 10:46:00 UTC"
    ]
    commands = one(frames[3])
    assert commands.body is not None
    lines = commands.body.split("\n")
    assert lines[0] == "  Action                          Synopsis"
    assert lines[1] == "  ------                          --------"
    assert lines[2] == "  AbsoluteTimeout                 Set absolute timeout. "
    assert lines[-2] == "  WaitEvent                       Wait for an event to occur. "
    assert lines[-1] == ""  # the CLI text ended with "\n"
    raw = frames[3].split(b"ActionID: command-6\r\n", 1)[1][: -len(b"--END COMMAND--\r\n\r\n")]
    assert commands.body.encode() == raw


def test_quirk_follows_marker_text_inside_output_does_not_end_frame() -> None:
    frame = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: e1\r\n"
        b"echo --END COMMAND--\n--END COMMAND--x\n--END COMMAND--\nlast\n"
        b"--END COMMAND--\r\n\r\n"
    )
    msg = one(frame)
    assert msg.body == "echo --END COMMAND--\n--END COMMAND--x\n--END COMMAND--\nlast\n"


def test_quirk_follows_split_at_every_byte() -> None:
    frame = command13_frames()[1]
    whole = snapshot([one(frame)])
    for cut in range(1, len(frame)):
        parser = Parser(expect_banner=False)
        assert snapshot(feed_chunks(split_at(frame, [cut]), parser)) == whole, cut


def test_quirk_output_lists() -> None:
    # asterisk-22/command.bin, "core show channels": one Output line per CLI line.
    msgs = Parser().feed(fixture("asterisk-22/command.bin").read_bytes())
    chans = next(m for m in msgs if m.action_id == "command-3")
    assert chans.get_all("Output") == [
        "Channel                                                          "
        "Location                         State   Application(Data)             ",
        "0 active channels",
        "0 of 500 max active calls ( 0.00% of capacity)",
        "0 calls processed",
    ]
    assert chans.body is None
    msg = one(b"Response: Success\r\nOutput: first\r\nOutput: \r\nOutput:   indented \r\n\r\n")
    assert msg.get_all("output") == ["first", "", "  indented "]


# -- classification and lists ---------------------------------------------------------------


def test_quirk_event_and_response_in_one_frame_is_event() -> None:
    data = fixture("asterisk-22/originate_fail_async.bin").read_bytes()
    oresp = [m for m in Parser().feed(data) if m.get("Event") == "OriginateResponse"]
    assert len(oresp) == 1
    assert isinstance(oresp[0], Event)
    assert oresp[0].name == "OriginateResponse"
    assert oresp[0]["Response"] == "Failure"
    assert oresp[0]["ActionID"] == "originate_fail_async-2"
    # Response first, Event later: still an Event.
    msg = one(b"Response: Success\r\nEvent: OriginateResponse\r\n\r\n")
    assert isinstance(msg, Event)
    assert msg.name == "OriginateResponse"
    msg = one(b"response: Success\r\nevent: Lower\r\n\r\n")
    assert isinstance(msg, Event)
    assert msg.name == "Lower"


@pytest.mark.parametrize("marker", ["start", "Start", "Complete", "cancelled"])
def test_quirk_eventlist_markers_readable(marker: str) -> None:
    resp = one(f"Response: Success\r\nActionID: l1\r\nEventList: {marker}\r\n\r\n".encode())
    assert isinstance(resp, Response)
    assert resp.event_list == marker
    ev = one(f"Event: FaxSessionsComplete\r\nActionID: l1\r\nEventList: {marker}\r\n\r\n".encode())
    assert isinstance(ev, Event)
    assert ev["eventlist"] == marker


def test_quirk_pre_ami2_list_without_eventlist() -> None:
    # Asterisk 11 DBGet: "Result will follow", then DBGetResponse, then a bare DBGetComplete.
    msgs = Parser(expect_banner=False).feed(
        b"Response: Success\r\nActionID: d1\r\nMessage: Result will follow\r\n\r\n"
        b"Event: DBGetResponse\r\nFamily: lab\r\nKey: k1\r\nVal: v1\r\nActionID: d1\r\n\r\n"
        b"Event: DBGetComplete\r\nActionID: d1\r\n\r\n"
    )
    assert [type(m) for m in msgs] == [Response, Event, Event]
    assert [m.get("EventList") for m in msgs] == [None, None, None]
    assert [m.action_id for m in msgs] == ["d1", "d1", "d1"]
    assert msgs[1]["Val"] == "v1"


def test_quirk_frames_without_actionid() -> None:
    msgs = Parser().feed(fixture("asterisk-22/missing_actionid.bin").read_bytes())
    assert len(msgs) == 12
    assert all(m.action_id is None for m in msgs)
    assert msgs[1].headers == (
        ("Response", "Success"),
        ("Ping", "Pong"),
        ("Timestamp", "1795772603.294393"),
    )


def test_quirk_actionid_echoed_on_broadcast_events() -> None:
    msgs = Parser().feed(fixture("asterisk-13/userevent.bin").read_bytes())
    echoed = [(m.name, m.action_id) for m in msgs if isinstance(m, Event) and m.action_id]
    assert echoed == [("OriginateResponse", "userevent-2"), ("UserEvent", "userevent-3")]


def test_quirk_goodbye_response() -> None:
    msgs = Parser().feed(fixture("asterisk-13/logoff.bin").read_bytes())
    bye = msgs[-1]
    assert isinstance(bye, Response)
    assert bye.response == "Goodbye"
    assert bye.success is True
    assert bye.message == "Thanks for all the fish."


def test_quirk_shutdown_event() -> None:
    ev = one(
        b"Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\nRestart: True\r\n\r\n"
    )
    assert isinstance(ev, Event)
    assert ev.name == "Shutdown"
    assert (ev["Shutdown"], ev["Restart"]) == ("Cleanly", "True")


# -- line ends, encodings, stray input --------------------------------------------------------


def test_quirk_bare_lf_line_ends() -> None:
    parser = Parser()
    msgs = parser.feed(
        b"Asterisk Call Manager/1.0\nResponse: Success\nActionID: lf-only-1\nPing: Pong\n\n"
    )
    assert parser.banner == "Asterisk Call Manager/1.0"
    assert [m.headers for m in msgs] == [
        (("Response", "Success"), ("ActionID", "lf-only-1"), ("Ping", "Pong"))
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"Response: Success\r\nA: 1\nB: 2\r\n\n",
        b"Response: Success\nA: 1\r\nB: 2\n\r\n",
        b"Response: Success\r\nA: 1\nB: 2\r\n\r\n",
        b"Response: Success\nA: 1\nB: 2\n\n",
    ],
    ids=["crlf-lf", "lf-crlf", "crlf-crlf-mixed", "lf-lf"],
)
def test_quirk_mixed_line_ends(data: bytes) -> None:
    msgs = Parser(expect_banner=False).feed(data + b"Event: Next\r\n\r\n")
    assert [m.headers for m in msgs] == [
        (("Response", "Success"), ("A", "1"), ("B", "2")),
        (("Event", "Next"),),
    ]


def test_quirk_utf8_character_split_across_feeds() -> None:
    frame = "Event: Newchannel\r\nCallerIDName: Zoë 😀 Ünal\r\n\r\n".encode()
    e_umlaut = frame.index("ë".encode())
    emoji = frame.index("😀".encode())
    for cuts in ([e_umlaut + 1], [emoji + 1, emoji + 2, emoji + 3], [e_umlaut + 1, emoji + 2]):
        msgs = feed_chunks(split_at(frame, cuts), Parser(expect_banner=False))
        assert len(msgs) == 1
        assert msgs[0]["CallerIDName"] == "Zoë 😀 Ünal"


def test_quirk_invalid_utf8_never_raises_and_is_lossless() -> None:
    raw_value = b"caf\xe9 \xff\xfe ok \xc3"
    raw_key = b"X-\x80Key"
    data = (
        b"Event: Bad\xffName\r\nCallerIDName: "
        + raw_value
        + b"\r\nGood: Zo\xc3\xab\r\n"
        + raw_key
        + b": v\r\nbare \xfe line\r\n\r\n"
    )
    msg = one(data)
    assert isinstance(msg, Event)
    assert msg.name.encode("utf-8", "surrogateescape") == b"Bad\xffName"
    assert msg["CallerIDName"].encode("utf-8", "surrogateescape") == raw_value
    assert msg["Good"] == "Zoë"  # valid sequences in the same frame still decode
    key = msg.headers[3][0]
    assert key.encode("utf-8", "surrogateescape") == raw_key
    assert msg.bare_lines[0].encode("utf-8", "surrogateescape") == b"bare \xfe line"
    # The same holds for a Command body and the banner.
    parser = Parser()
    body_msgs = parser.feed(
        b"Asterisk \xffManager/1.0\r\n"
        b"Response: Follows\r\nPrivilege: Command\r\nout\xff\xc3\n--END COMMAND--\r\n\r\n"
    )
    assert parser.banner is not None
    assert parser.banner.encode("utf-8", "surrogateescape") == b"Asterisk \xffManager/1.0"
    assert body_msgs[0].body is not None
    assert body_msgs[0].body.encode("utf-8", "surrogateescape") == b"out\xff\xc3\n"


def test_quirk_stray_blank_lines_between_frames_skipped() -> None:
    data = (
        BANNER
        + b"\r\n\r\n"
        + b"Response: Success\r\nActionID: 1\r\n\r\n"
        + b"\r\n\n\r\n"
        + b"Response: Success\r\nActionID: 2\r\n\r\n"
        + b"\r\n"
    )
    parser = Parser()
    msgs = parser.feed(data)
    assert [m.headers for m in msgs] == [
        (("Response", "Success"), ("ActionID", "1")),
        (("Response", "Success"), ("ActionID", "2")),
    ]
    assert parser.buffered == 0
    # Byte at a time (a lone "\r" waiting for its "\n") gives the same.
    assert snapshot(feed_chunks([data[i : i + 1] for i in range(len(data))])) == snapshot(msgs)


# -- limits ------------------------------------------------------------------------------------


def test_max_frame_size_raises_protocol_error_and_buffer_stops_growing() -> None:
    parser = Parser(max_frame_size=1024)
    parser.feed(BANNER + b"Response: Success\r\n\r\n")
    parser.feed(b"Event: Big\r\n" + b"Data: " + b"x" * 900 + b"\r\n")
    assert 900 < parser.buffered <= 1024
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"More: " + b"y" * 200 + b"\r\n")
    assert isinstance(info.value, AMIError)
    assert info.value.data.startswith(b"Event: Big\r\nData: xxx")
    assert len(info.value.data) <= 200
    assert parser.buffered == 0
    for _ in range(3):
        with pytest.raises(ProtocolError):
            parser.feed(b"Response: Success\r\n\r\n")
        assert parser.buffered == 0


def test_max_frame_size_a_complete_frame_under_the_cap_is_fine() -> None:
    parser = Parser(max_frame_size=1024)
    frame = b"Event: Ok\r\nData: " + b"x" * 900 + b"\r\n\r\n"
    assert [m["Data"] for m in parser.feed(BANNER + frame)] == ["x" * 900]
    assert [m["Data"] for m in parser.feed(frame)] == ["x" * 900]


def test_max_frame_size_repeated_feeds_after_error_do_not_accumulate() -> None:
    # Re-raising one stored exception would chain a traceback entry (and keep a
    # frame alive) per call: unbounded memory for a caller that keeps feeding.
    parser = Parser(max_frame_size=64)
    with pytest.raises(ProtocolError):
        parser.feed(b"x" * 100)
    last: ProtocolError | None = None
    for _ in range(5000):
        try:
            parser.feed(b"y")
        except ProtocolError as exc:
            last = exc
    assert last is not None
    depth = 0
    tb = last.__traceback__
    while tb is not None:
        depth += 1
        tb = tb.tb_next
    assert depth < 10
    assert "max_frame_size" in str(last)


_LINE = b"Output: " + b"x" * 54 + b"\r\n"  # 64 bytes


@pytest.mark.parametrize(
    ("head", "chunk"),
    [
        (b"", b"A" * 65536),  # not even a newline (the banner is never complete)
        (BANNER, _LINE * 1024),  # header lines that never end with a blank line
        (BANNER + b"Response: Follows\r\nPrivilege: Command\r\n", b"cli text\n" * 7281),
    ],
    ids=["no-newline", "no-blank-line", "follows-without-end-command"],
)
def test_max_frame_size_100_mb_stream_memory_stays_bounded(head: bytes, chunk: bytes) -> None:
    total = 100 * 1024 * 1024
    parser = Parser(max_frame_size=1024 * 1024)
    raised = 0
    fed = 0
    tracemalloc.start()
    try:
        parser.feed(head)
        while fed < total:
            try:
                parser.feed(chunk)
            except ProtocolError:
                raised += 1
            fed += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    chunks = -(-total // len(chunk))
    # The cap is passed after ~1 MiB (17 chunks); every later feed is refused.
    assert raised >= chunks - 17
    assert parser.buffered == 0
    assert peak < 4 * 1024 * 1024, peak


def test_byte_at_a_time_large_fixture_same_messages() -> None:
    path = fixture("asterisk-22/event_burst.bin")
    assert path in bin_files()
    data = path.read_bytes()
    assert len(data) > 600_000
    whole = Parser().feed(data)
    parser = Parser()
    out: list[Message] = []
    feed = parser.feed
    for i in range(len(data)):
        out.extend(feed(data[i : i + 1]))
    assert len(out) == 1755
    assert parser.buffered == 0
    assert snapshot(out) == snapshot(whole)


class _CountingBuffer(bytearray):
    """A bytearray that counts the bytes its ``find`` calls examine."""

    scanned = 0

    def find(self, sub: bytes, start: int = 0, end: int | None = None) -> int:  # type: ignore[override]
        stop = len(self) if end is None else min(end, len(self))
        hit = super().find(sub, start, stop)
        self.scanned += (hit + len(sub) if hit >= 0 else stop) - start
        return hit


@pytest.mark.parametrize(
    ("head", "pattern"),
    [
        (b"", b"A"),  # a first line that never ends (is it a banner?)
        (BANNER + b"Response: Success\r\nOutput: ", b"x"),  # one very long header line
        (BANNER + b"Event: Long\r\n", b"Output: some text\r\n"),  # many lines, no blank one
        (BANNER + b"Response: Follows\r\nPrivilege: Command\r\n", b"cli line\n"),  # CLI body
    ],
    ids=["first-line", "header-line", "header-lines", "follows-body"],
)
def test_byte_at_a_time_scanning_is_linear(head: bytes, pattern: bytes) -> None:
    # White-box: count the bytes the parser's buffer searches examine while one
    # long frame arrives a byte per feed(). Re-scanning the pending frame from
    # its start on every call would examine about n*n/2 bytes.
    n = 100_000
    data = (pattern * (n // len(pattern) + 1))[:n]
    parser = Parser(max_frame_size=16 * 1024 * 1024)
    assert parser.feed(head) == []
    buf = _CountingBuffer(parser._buf)
    parser._buf = buf
    for i in range(n):
        assert parser.feed(data[i : i + 1]) == []
    assert parser._buf is buf
    assert parser.buffered >= n
    assert buf.scanned <= 40 * n, buf.scanned


# -- encode_action ----------------------------------------------------------------------------


def test_encode_action_exact_bytes() -> None:
    assert encode_action("Ping", {"ActionID": "a1"}) == b"Action: Ping\r\nActionID: a1\r\n\r\n"
    assert encode_action("Logoff") == b"Action: Logoff\r\n\r\n"
    assert encode_action("Login", [("Username", "admin"), ("Secret", "amp111")]) == (
        b"Action: Login\r\nUsername: admin\r\nSecret: amp111\r\n\r\n"
    )


def test_encode_action_round_trips_through_parser() -> None:
    data = encode_action(
        "Originate",
        {"Channel": "Local/100@test", "CallerID": '"Zoë" <100>', "Data": "  padded  "},
    )
    msg = one(data)
    assert msg.headers == (
        ("Action", "Originate"),
        ("Channel", "Local/100@test"),
        ("CallerID", '"Zoë" <100>'),
        ("Data", "  padded  "),
    )


def test_encode_action_list_and_tuple_repeat_key_in_order() -> None:
    headers: dict[str, HeaderValue] = {"Filter": ["b", "a"], "X": ("1", 2)}
    assert encode_action("Filter", headers) == (
        b"Action: Filter\r\nFilter: b\r\nFilter: a\r\nX: 1\r\nX: 2\r\n\r\n"
    )


def test_encode_action_variable_mapping_one_line_per_entry() -> None:
    variables: dict[str, HeaderScalar] = {"FOO": "bar", "N": 3, "EMPTY": ""}
    data = encode_action("Originate", {"Variable": variables})
    assert data == (
        b"Action: Originate\r\nVariable: FOO=bar\r\nVariable: N=3\r\nVariable: EMPTY=\r\n\r\n"
    )


def test_encode_action_bools_ints_floats() -> None:
    data = encode_action(
        "Originate", {"Async": True, "EarlyMedia": False, "Timeout": 30000, "Ratio": 1.5}
    )
    assert data == (
        b"Action: Originate\r\nAsync: true\r\nEarlyMedia: false\r\n"
        b"Timeout: 30000\r\nRatio: 1.5\r\n\r\n"
    )


_BAD_CHARS = ["\r", "\n", "\x00", "\r\n"]


@pytest.mark.parametrize("bad", _BAD_CHARS, ids=["CR", "LF", "NUL", "CRLF"])
@pytest.mark.parametrize(
    "where",
    ["name", "key", "value", "list-item", "variable-name", "variable-value"],
)
def test_encode_action_refuses_cr_lf_nul_anywhere(bad: str, where: str) -> None:
    inject = f"x{bad}Action: Originate"
    cases: dict[str, tuple[str, dict[str, object]]] = {
        "name": (f"Ping{bad}", {}),
        "key": ("Ping", {f"Act{bad}ionID": "1"}),
        "value": ("Setvar", {"Value": inject}),
        "list-item": ("Setvar", {"Value": ["ok", inject]}),
        "variable-name": ("Originate", {"Variable": {inject: "1"}}),
        "variable-value": ("Originate", {"Variable": {"A": inject}}),
    }
    name, headers = cases[where]
    with pytest.raises(InvalidActionError) as info:
        encode_action(name, headers)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, AMIError)


@pytest.mark.parametrize(
    ("name", "headers"),
    [
        ("Ping", {"Action:ID": "1"}),
        ("Ping", {"": "1"}),
        ("Ping", {" Pad": "1"}),
        ("Ping", {"Action": "Originate"}),
        ("Ping", {"X": None}),
        ("Ping", {"X": b"bytes"}),
        ("", {}),
        ("   ", {}),
        ("Ping:Pong", {}),
    ],
    ids=[
        "colon-in-key",
        "empty-key",
        "padded-key",
        "action-header",
        "none-value",
        "bytes-value",
        "empty-name",
        "blank-name",
        "colon-in-name",
    ],
)
def test_encode_action_refuses_bad_keys_and_names(name: str, headers: dict[str, object]) -> None:
    with pytest.raises(InvalidActionError):
        encode_action(name, headers)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["Secret", "secret", "Key", "KEY"])
@pytest.mark.parametrize("bad", _BAD_CHARS, ids=["CR", "LF", "NUL", "CRLF"])
def test_encode_action_error_never_shows_secret(key: str, bad: str) -> None:
    secret = f"hunter2{bad}Action: Originate"
    values: list[HeaderValue] = [secret, [secret], (secret,)]
    for value in values:
        with pytest.raises(InvalidActionError) as info:
            encode_action("Login", {"Username": "admin", key: value})
        text = str(info.value) + repr(info.value) + repr(info.value.args)
        assert "hunter2" not in text
        assert key in str(info.value)  # it does say which header was refused


def test_encode_action_error_shows_non_secret_value_for_debugging() -> None:
    with pytest.raises(InvalidActionError) as info:
        encode_action("Originate", {"CallerID": "evil\r\nAction: Hangup"})
    assert "CallerID" in str(info.value)
    assert "CR" in str(info.value)


def test_encode_action_unencodable_text_is_invalid_action_without_secret() -> None:
    # A lone surrogate cannot be written as UTF-8: refused like any other bad
    # value (an AMIError), and the error does not carry the frame's Secret.
    with pytest.raises(InvalidActionError) as info:
        encode_action("Login", {"Secret": "hunter2", "Username": "bad\ud800name"})
    assert isinstance(info.value, ValueError)
    assert "hunter2" not in str(info.value)
    assert "Username" in str(info.value)
    # Not chained to the UnicodeEncodeError, whose .object holds the whole frame.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    # Surrogate escapes of raw bytes (what the parser produces) still encode back.
    assert encode_action("Setvar", {"Value": "caf\udce9"}) == (
        b"Action: Setvar\r\nValue: caf\xe9\r\n\r\n"
    )


def test_a_follows_frame_without_marker_or_body_ends_at_its_empty_line() -> None:
    """Not Asterisk (it always sends the marker), but proxies and fakes do."""
    parser = Parser(expect_banner=False)
    msgs = parser.feed(
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 1\r\n\r\n"
        b"Response: Success\r\nActionID: 2\r\nPing: Pong\r\n\r\n"
        b"Event: Hangup\r\nChannel: A\r\n\r\n"
    )
    assert [m.get("ActionID") or m.get("Event") for m in msgs] == ["1", "2", "Hangup"]
    assert msgs[0].body is None  # an ordinary header frame (see item 25)
    assert parser.buffered == 0


def test_a_follows_frame_without_marker_split_before_it_shows_it_is_one() -> None:
    """The first chunk too short to tell `Response: Follows` (hypothesis found it: the
    search for the frame's empty line resumed where the other kind of frame's had
    stopped, read as the Follows search's own, and skipped the empty line)."""
    for frame in (
        b"\nResponse: Follows\r\n\r\n",
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n\r\n",
    ):
        whole = snapshot(Parser(expect_banner=False).feed(frame))
        assert len(whole) == 1
        for cut in range(1, len(frame)):
            parser = Parser(expect_banner=False)
            assert snapshot(feed_chunks(split_at(frame, [cut]), parser)) == whole, (frame, cut)
            assert parser.buffered == 0


def test_a_follows_body_with_crlf_blank_line_inside_still_needs_the_marker() -> None:
    parser = Parser(expect_banner=False)
    data = (
        b"Response: Follows\r\nPrivilege: Command\r\n"
        b"line one\n\r\n\r\nmore\n--END COMMAND--\r\n\r\n"
    )
    (msg,) = parser.feed(data)
    assert msg.body == "line one\n\r\n\r\nmore\n"


def assert_same_at_every_split(data: bytes, expected: list[Message]) -> None:
    """Whole, and cut in two at every byte: the same messages."""
    whole = snapshot(expected)
    for cut in range(1, len(data)):
        parser = Parser(expect_banner=False)
        assert snapshot(feed_chunks(split_at(data, [cut]), parser)) == whole, cut
        assert parser.buffered == 0


# Item 23: a pre-14 Command answer whose header lines end in a bare LF (other
# projects' test data; Asterisk itself ends them in CRLF).
FOLLOWS_LF = (
    b"Response: Follows\nPrivilege: Command\nActionID: 42\n"
    b"Channel              Location             State   Application(Data)\n"
    b"0 active channels\n--END COMMAND--\n\n"
    b"Response: Success\nActionID: 43\nPing: Pong\n\n"
)


def test_item23_follows_with_bare_lf_header_lines_keeps_its_headers() -> None:
    parser = Parser(expect_banner=False)
    follows, pong = parser.feed(FOLLOWS_LF)
    assert isinstance(follows, Response)
    assert follows.headers == (
        ("Response", "Follows"),
        ("Privilege", "Command"),
        ("ActionID", "42"),
    )
    assert follows.action_id == "42"
    assert follows.body == (
        "Channel              Location             State   Application(Data)\n0 active channels\n"
    )
    assert pong.headers == (("Response", "Success"), ("ActionID", "43"), ("Ping", "Pong"))
    assert_same_at_every_split(FOLLOWS_LF, [follows, pong])


def test_item23_follows_header_lines_end_alike_cli_text_is_never_a_header() -> None:
    # CRLF headers, then a CLI line that looks like a header: it is text.
    crlf = one(
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: x\nmore\n--END COMMAND--\r\n\r\n"
    )
    assert crlf.headers == (("Response", "Follows"), ("Privilege", "Command"))
    assert crlf.body == "ActionID: x\nmore\n"
    # A repeated key ends the headers too.
    lf = one(b"Response: Follows\nActionID: 1\nActionID: 2\n--END COMMAND--\n\n")
    assert lf.headers == (("Response", "Follows"), ("ActionID", "1"))
    assert lf.body == "ActionID: 2\n"


# Item 24: a banner without "/<version>" (proxies and mock servers).
@pytest.mark.parametrize(
    "banner", [b"Asterisk Call Manager", b"Asterisk Call Manager Proxy", b"AMI ready: yes"]
)
def test_item24_any_first_line_that_is_not_a_header_is_the_banner(banner: bytes) -> None:
    data = banner + b"\r\nResponse: Success\r\nActionID: 1\r\n\r\n"
    whole = Parser()
    msgs = whole.feed(data)
    assert whole.banner == banner.decode()
    assert whole.ami_version is None
    assert [m.headers for m in msgs] == [(("Response", "Success"), ("ActionID", "1"))]
    for cut in range(1, len(data)):
        parser = Parser()
        assert snapshot(feed_chunks(split_at(data, [cut]), parser)) == snapshot(msgs), cut
        assert parser.banner == banner.decode()


@pytest.mark.parametrize("first", [b"Response: Success", b"Response:Success", b"\r"])
def test_item24_a_stream_that_starts_with_a_header_or_blank_has_no_banner(first: bytes) -> None:
    parser = Parser()
    msgs = parser.feed(first + b"\r\nActionID: 1\r\n\r\nResponse: Success\r\n\r\n")
    assert parser.banner is None
    assert msgs[-1].headers == (("Response", "Success"),)


# Item 25: `Response: Follows` with `Output:` lines and no --END COMMAND--.
FOLLOWS_OUTPUT = (
    b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
    b"Output: Name/username    Host\r\nOutput: 100/100        (Unspecified)\r\n"
    b"Output: 1 sip peers: 1 online\r\n\r\n"
    b"Event: Hangup\r\nChannel: A\r\n\r\n"
)


def test_item25_follows_with_output_lines_and_no_marker_is_a_header_frame() -> None:
    from ami_async.actions import command_output

    parser = Parser(expect_banner=False)
    follows, hangup = parser.feed(FOLLOWS_OUTPUT)
    assert isinstance(follows, Response)
    assert follows.body is None
    assert follows.action_id == "7"
    assert follows.get_all("Output") == [
        "Name/username    Host",
        "100/100        (Unspecified)",
        "1 sip peers: 1 online",
    ]
    assert command_output(follows) == (
        "Name/username    Host\n100/100        (Unspecified)\n1 sip peers: 1 online"
    )
    assert isinstance(hangup, Event)
    assert_same_at_every_split(FOLLOWS_OUTPUT, [follows, hangup])


# -- skipping the events nobody wants (`only_events`) ----------------------------------------------


def _kinds(messages: list[Message]) -> list[str]:
    return [m.name if isinstance(m, Event) else "<response>" for m in messages]


def test_skipped_event_names_are_remembered_only_when_short() -> None:
    # A server may send an event name as long as a frame: the parser remembers the
    # wanted-or-not of short names only, so skipped giants keep no memory.
    parser = Parser()
    parser.only_events = frozenset({b"hangup"})
    for i in range(50):
        assert parser.feed(b"Event: %d" % i + b"A" * 200_000 + b"\r\nX: 1\r\n\r\n") == []
    assert parser.feed(b"Event: Cel\r\nX: 1\r\n\r\nEvent: HANGUP\r\nX: 2\r\n\r\n")[0]["X"] == "2"
    assert sum(len(name) for name in parser._only_names) < 100


def test_item12_a_list_answer_split_across_reads_stops_skipping_from_it() -> None:
    parser = Parser()
    parser.only_events = _ScanLists({b"hangup"})
    answer = b"Response: Success\r\nActionID: 1\r\nEventList: start\r\nMessage: x\r\n\r\n"
    items = (
        b"Event: Foo\r\nActionID: 1\r\n\r\n"
        b"Event: FooComplete\r\nActionID: 1\r\nEventList: Complete\r\n\r\n"
    )
    before = b"Event: Cel\r\nX: 1\r\n\r\n"
    assert _kinds(parser.feed(before + answer[:30])) == []
    assert _kinds(parser.feed(answer[30:] + items)) == ["<response>", "Foo", "FooComplete"]
    assert _kinds(parser.feed(before)) == []  # the next read is filtered again


def test_skipping_decides_alike_whatever_the_set_case_line_ends_or_split() -> None:
    wanted = frozenset({b"hangup"})
    scan = _ScanLists(wanted)
    parser = Parser()
    frames = [
        b"Event: HANGUP\r\nA: 1\r\n\r\n",
        b"Event: hangup\nA: 1\n\n",
        b"Event: Hangup \r\nA: 1\r\n\r\n",  # Event.name keeps the space: nobody wants it
        b"Event: Hang\xc3\xbcp\r\nA: 1\r\n\r\n",
        b"Event: Cel\r\nA: 1\r\n\r\n",
    ]
    for only in (wanted, scan, wanted, None, scan):
        parser.only_events = only
        got: list[Message] = []
        for frame in frames:
            for part in (frame[:9], frame[9:]):
                got.extend(parser.feed(part))
        assert len(got) == (5 if only is None else 2), (only, _kinds(got))
