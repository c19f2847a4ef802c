"""Message / Response / Event: the read-only, case-insensitive, multi-valued mapping users see."""

from __future__ import annotations

import pytest
from _fixtures import fixtures_dir, parse
from hypothesis import given
from hypothesis import strategies as st

from ami_async.message import Event, Message, Response, make_message
from ami_async.protocol import Parser


def parsed(data: bytes) -> Message:
    msgs = Parser(expect_banner=False).feed(data)
    assert len(msgs) == 1
    return msgs[0]


STATUS = (
    b"Event: Status\r\nPrivilege: Call\r\nChannel: Local/700@test-00000008;1\r\n"
    b"AccountCode: \r\nVariable: FOO=(null)\r\nVariable: CHANNEL(state)=Up\r\n"
    b"ActionID: status-4\r\n\r\n"
)


@pytest.fixture(params=["parsed", "constructed"])
def status(request: pytest.FixtureRequest) -> Message:
    """The same Status event, from the parser (lazy) and from the constructor."""
    if request.param == "parsed":
        return parsed(STATUS)
    return Event(
        [
            ("Event", "Status"),
            ("Privilege", "Call"),
            ("Channel", "Local/700@test-00000008;1"),
            ("AccountCode", ""),
            ("Variable", "FOO=(null)"),
            ("Variable", "CHANNEL(state)=Up"),
            ("ActionID", "status-4"),
        ]
    )


def test_getitem_is_case_insensitive_and_gives_first_value(status: Message) -> None:
    assert status["Channel"] == "Local/700@test-00000008;1"
    assert status["channel"] == status["CHANNEL"] == "Local/700@test-00000008;1"
    assert status["Variable"] == "FOO=(null)"
    assert status["AccountCode"] == ""
    with pytest.raises(KeyError):
        status["Missing"]


def test_get_with_default(status: Message) -> None:
    assert status.get("privilege") == "Call"
    assert status.get("Missing") is None
    assert status.get("Missing", "x") == "x"
    assert status.get("AccountCode", "x") == ""  # present but empty is not missing


def test_get_all_in_order_any_case(status: Message) -> None:
    assert status.get_all("variable") == ["FOO=(null)", "CHANNEL(state)=Up"]
    assert status.get_all("VARIABLE") == ["FOO=(null)", "CHANNEL(state)=Up"]
    assert status.get_all("Missing") == []
    assert status.get_all("Event") == ["Status"]


def test_contains(status: Message) -> None:
    assert "Channel" in status
    assert "actionid" in status
    assert "AccountCode" in status
    assert "Missing" not in status
    assert "Status" not in status  # a value, not a key
    assert 42 not in status  # type: ignore[comparison-overlap]


def test_iteration_len_and_headers(status: Message) -> None:
    # Iteration yields each key once (first spelling), len counts distinct keys.
    assert list(status) == [
        "Event",
        "Privilege",
        "Channel",
        "AccountCode",
        "Variable",
        "ActionID",
    ]
    assert len(status) == 6
    assert len(status.headers) == 7
    assert isinstance(status.headers, tuple)
    assert status.headers[4:6] == (("Variable", "FOO=(null)"), ("Variable", "CHANNEL(state)=Up"))
    assert dict(status.items())["Variable"] == "FOO=(null)"
    assert status.bare_lines == ()
    assert status.body is None


def test_iteration_keeps_first_key_spelling() -> None:
    msg = parsed(b"Event: X\r\nUniqueID: 1\r\nUniqueid: 2\r\n\r\n")
    assert list(msg) == ["Event", "UniqueID"]
    assert msg.get_all("uniqueid") == ["1", "2"]
    assert len(msg) == 2


def test_read_only(status: Message) -> None:
    with pytest.raises(TypeError):
        status["Channel"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        del status["Channel"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        status.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        status.headers = ()  # type: ignore[misc]
    assert not hasattr(status, "__dict__")
    assert status["Channel"] == "Local/700@test-00000008;1"


def test_read_only_response() -> None:
    resp = Response([("Response", "Success")])
    with pytest.raises(AttributeError):
        resp.success = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        resp.whatever = 1  # type: ignore[attr-defined]
    assert resp.success is True


def test_event_name() -> None:
    assert parsed(b"Event: Hangup\r\nCause: 16\r\n\r\n").name == "Hangup"  # type: ignore[attr-defined]
    assert Event([("Privilege", "call"), ("event", "Newstate")]).name == "Newstate"
    assert Event([("Foo", "bar")]).name == ""
    lower = parsed(b"event: lower\r\nFoo: 1\r\n\r\n")
    assert isinstance(lower, Event)
    assert lower.name == "lower"


def test_response_action_id_success_and_message() -> None:
    ok = parsed(b"Response: Success\r\nActionID: a-1\r\nMessage: Authentication accepted\r\n\r\n")
    assert isinstance(ok, Response)
    assert ok.action_id == "a-1"
    assert ok.success is True
    assert ok.response == "Success"
    assert ok.message == "Authentication accepted"
    assert ok.event_list is None
    err = parsed(b"Response: Error\r\nActionID: a-2\r\nMessage: Permission denied\r\n\r\n")
    assert isinstance(err, Response)
    assert err.success is False
    assert Response([("Response", "error")]).success is False
    assert Response([("Response", "Failure")]).success is False
    for value in ("Follows", "Goodbye", "Pong"):
        assert Response([("Response", value)]).success is True
    assert Response([("Response", "Success")]).action_id is None


def test_make_message_classification() -> None:
    ev = make_message([("Response", "Success"), ("Event", "OriginateResponse")])
    assert type(ev) is Event
    assert ev.name == "OriginateResponse"
    assert type(make_message([("EVENT", "X")])) is Event
    assert type(make_message([("Response", "Error"), ("Message", "x")])) is Response
    assert type(make_message([("response", "Error")])) is Response
    assert type(make_message([("Foo", "bar")])) is Message
    assert type(make_message([])) is Message
    assert make_message([("Foo", "bar")], bare_lines=["loose"]).bare_lines == ("loose",)
    assert make_message([("Response", "Follows")], body="text\n").body == "text\n"


@pytest.mark.parametrize(
    ("data", "cls"),
    [
        (b"Event: A\r\nResponse: Success\r\n\r\n", Event),
        (b"Response: Success\r\nEvent: A\r\n\r\n", Event),
        (b"Response: Success\r\nUserEvent: A\r\n\r\n", Response),
        (b"Response: Success\r\n\r\n", Response),
        (b"Privilege: x\r\nResponse: Success\r\n\r\n", Response),
        (b"Foo: bar\r\nbare\r\n\r\n", Message),
        (b"Foo: bar\r\nevent: late\r\n\r\n", Event),
    ],
)
def test_parser_classification_matches_make_message(data: bytes, cls: type[Message]) -> None:
    msg = parsed(data)
    assert type(msg) is cls
    assert type(make_message(msg.headers)) is cls


def test_variables_chanvariable_forms() -> None:
    ev = parsed(
        b"Event: Newchannel\r\nChannel: PJSIP/foo-00000001\r\n"
        b"ChanVariable: a=b\r\n"
        b"ChanVariable: WITH_EQ=x=y\r\n"
        b"ChanVariable(PJSIP/foo-00000001): c=d\r\n"
        b"ChanVariable: novalue\r\n"
        b"DestChanVariable: dest=1\r\n"
        b"DestChanVariable(PJSIP/bar-00000002): dest2=2\r\n\r\n"
    )
    assert ev.variables == {"a": "b", "WITH_EQ": "x=y", "c": "d"}
    assert ev.prefixed_variables("Dest") == {"dest": "1", "dest2": "2"}
    assert ev.prefixed_variables("Other") == {}


def test_variables_of_status_event_variable_lines(status: Message) -> None:
    assert status.variables == {"FOO": "(null)", "CHANNEL(state)": "Up"}


def test_variables_real_status_event() -> None:
    _, msgs = parse((fixtures_dir() / "asterisk-13" / "status.bin").read_bytes())
    statuses = [m for m in msgs if isinstance(m, Event) and m.name == "Status"]
    assert [s.variables for s in statuses] == [{}, {}, {"FOO": "(null)", "CHANNEL(state)": "Up"}]


def test_varset_variable_header_is_not_a_channel_variable() -> None:
    # asterisk-22/playback_moh.bin: VarSet's own Variable/Value fields.
    _, msgs = parse((fixtures_dir() / "asterisk-22" / "playback_moh.bin").read_bytes())
    varset = next(m for m in msgs if isinstance(m, Event) and m.name == "VarSet")
    assert varset["Variable"] == "PLAYBACKSTATUS"
    assert varset.variables == {}
    made = Event([("Event", "VarSet"), ("Variable", "A=B"), ("Value", "x")])
    assert made.variables == {}
    # Nor on a response (Getvar answers Variable: NAME / Value: ...).
    assert Response([("Response", "Success"), ("Variable", "A=B")]).variables == {}


def test_repr_is_short() -> None:
    msg = Event([("Event", "Newchannel")] + [(f"Key{i}X", "v" * 200) for i in range(50)])
    text = repr(msg)
    assert text.startswith("<Event ")
    assert "Event='Newchannel'" in text
    assert len(text) < 250
    assert "+47" in text  # how many headers are not shown
    assert repr(parsed(b"Response: Success\r\n\r\n")) == "<Response Response='Success'>"


@pytest.mark.parametrize("key", ["Secret", "secret", "SECRET", "Key", "key"])
def test_repr_never_shows_secret_or_key(key: str) -> None:
    value = "hunter2-" + key
    for msg in (
        Message([("Action", "Login"), (key, value)]),
        parsed(f"Action: Login\r\n{key}: {value}\r\nUsername: admin\r\n\r\n".encode()),
        Response([("Response", "Success"), (key, value), ("Message", "x")]),
        Event([(key, value)]),
    ):
        text = repr(msg)
        assert "hunter2" not in text
        assert key in text  # the header is listed, its value hidden
        assert "hunter2" not in str(msg)


def test_repr_never_shows_secret_deeper_in_the_message() -> None:
    headers = [("Action", "Login"), ("ActionID", "1"), ("Username", "u"), ("Events", "off")]
    msg = Message([*headers, ("Secret", "hunter2")])
    assert "hunter2" not in repr(msg)


def test_equality_and_hash(status: Message) -> None:
    same = parsed(STATUS)
    assert status == same
    assert hash(status) == hash(same)
    other_order = Event(list(reversed(status.headers)))
    assert status != other_order
    as_message = Message(status.headers)
    assert status != as_message  # same headers, different kind
    assert Response([("Response", "Follows")], body="a\n") != Response(
        [("Response", "Follows")], body="b\n"
    )
    assert Message([("A", "1")], bare_lines=["x"]) != Message([("A", "1")])
    assert Message([("A", "1")]) == Message([("A", "1")])
    assert len({status, same, as_message}) == 2


def test_bare_lines_and_body_accessors() -> None:
    msg = parsed(b"Response: Success\r\nNo categories found\r\n\r\n")
    assert msg.bare_lines == ("No categories found",)
    assert msg.headers == (("Response", "Success"),)
    assert msg.body is None
    follows = parsed(
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: c1\r\nline 1\n\nline 3\n"
        b"--END COMMAND--\r\n\r\n"
    )
    assert follows.body == "line 1\n\nline 3\n"
    assert "line 1" not in [v for _, v in follows.headers]
    assert follows.bare_lines == ()


# -- the first look-up reads the raw text; it must agree with a full parse -----------------


def _fresh(data: bytes) -> Message:
    (msg,) = Parser(expect_banner=False).feed(data)
    return msg


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("Channel", "PJSIP/100-0001"),
        ("channel", "PJSIP/100-0001"),  # any case
        ("CHANNEL", "PJSIP/100-0001"),
        ("Uniqueid", "1.1"),  # the first of two differently-cased keys
        ("UniqueID", "1.1"),
        ("Data", "  a: b  "),  # one space separates; the rest belongs to the value
        ("Empty", ""),
        ("NoSpace", "x"),
        ("Missing", None),
        ("Bare", None),  # a line without a colon is not a header
        ("Event", "Test"),
    ],
)
def test_first_lookup_from_raw_text_agrees_with_full_parse(key: str, expected: str | None) -> None:
    data = (
        b"Event: Test\r\nChannel: PJSIP/100-0001\r\nUniqueid: 1.1\r\nUniqueID: 2.2\r\n"
        b"Data:   a: b  \r\nEmpty: \r\nNoSpace:x\r\nBare\r\n\r\n"
    )
    assert _fresh(data).get(key) == expected
    parsed = _fresh(data)
    _ = parsed.headers  # parsed in full first
    assert parsed.get(key) == expected
    if expected is None:
        with pytest.raises(KeyError):
            _fresh(data)[key]
    else:
        assert _fresh(data)[key] == expected


def test_raw_lookup_with_text_whose_lower_case_changes_length() -> None:
    # "İ".lower() is two characters: offsets in the lowered text would not match
    data = "Event: Test\r\nName: İstanbul\r\nChannel: c\r\n\r\n".encode()
    msg = _fresh(data)
    assert msg.get("Channel") == "c"
    assert msg.get("Name") == "İstanbul"


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="AbcDeF-()/", min_size=1, max_size=6),
            st.text(alphabet="xyz :İ-", max_size=8),
        ),
        min_size=1,
        max_size=8,
    ),
    st.text(alphabet="AbcDeF-()/", min_size=1, max_size=6),
)
def test_raw_lookup_property(pairs: list[tuple[str, str]], key: str) -> None:
    data = ("Event: P\r\n" + "".join(f"{k}: {v}\r\n" for k, v in pairs) + "\r\n").encode()
    expected = _fresh(data)
    _ = expected.headers
    assert _fresh(data).get(key) == expected.get(key)
    assert _fresh(data).get(key.lower()) == expected.get(key)


# -- the errors built from messages (item 22 of issue 9) ---------------------------------


@pytest.mark.parametrize(
    ("headers", "action", "expected"),
    [
        # A failing CLI command (Asterisk 14+): the output, not "Command output follows".
        (
            [
                ("Response", "Error"),
                ("Message", "Command output follows"),
                ("Output", "No such command 'foo' (type 'core show help foo' for other ...)"),
            ],
            "Command",
            "Command: No such command 'foo' (type 'core show help foo' for other ...)",
        ),
        # A reason that already names the action is not prefixed again.
        ([("Response", "Error"), ("Message", "Originate failed")], "Originate", "Originate failed"),
        (
            [("Response", "Error"), ("Message", "Database entry not found")],
            "DBGet",
            "DBGet: Database entry not found",
        ),
        ([("Response", "Error"), ("Message", "Permission denied")], None, "Permission denied"),
        ([("Response", "Error")], "Foo", "Foo: Response: Error"),
        # A real Message and output: both.
        (
            [("Response", "Error"), ("Message", "Bad thing"), ("Output", "a"), ("Output", "b")],
            "Command",
            "Command: Bad thing: a / b",
        ),
    ],
)
def test_item22_action_error_messages_read_well(
    headers: list[tuple[str, str]], action: str | None, expected: str
) -> None:
    from ami_async.errors import ActionError

    assert str(ActionError(Response(headers), action)) == expected


def test_item22_action_error_for_the_real_failing_command_reads_well() -> None:
    from ami_async.errors import ActionError

    _, msgs = parse((fixtures_dir() / "asterisk-22" / "command.bin").read_bytes())
    (failed,) = [m for m in msgs if isinstance(m, Response) and m.action_id == "command-4"]
    assert str(ActionError(failed, "Command")) == (
        "Command: No such command 'this is not a command' "
        "(type 'core show help this is' for other possible commands)"
    )


def test_item22_action_timeout_error_is_an_asyncio_timeout_error_on_every_python() -> None:
    import asyncio

    from ami_async.errors import ActionTimeoutError, AMIError

    error = ActionTimeoutError("Ping: no answer within 1 s", "Ping")
    assert isinstance(error, asyncio.TimeoutError)
    assert isinstance(error, TimeoutError)
    assert isinstance(error, AMIError)
    assert str(error) == "Ping: no answer within 1 s"
    assert error.action == "Ping"
    with pytest.raises(asyncio.TimeoutError):
        raise error
