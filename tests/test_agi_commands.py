"""Issue 11, item 1: the sans-IO AGI layer (quoting, answers, the environment), fuzzed."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami_async.agi._commands import (
    HANGUP,
    AGIResult,
    Answer,
    AnswerReader,
    EnvReader,
    answer_from_text,
    parse_env,
    parse_result,
    quote,
    session_args,
    session_query,
    session_script,
    split_command,
    url_decode,
)
from ami_async.errors import (
    AGIError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGIUsageError,
    AMIError,
    InvalidActionError,
)

ARG = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)))


# -- quoting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "wire"),
    [
        ("hello-world", "hello-world"),
        ("", '""'),
        ("bar baz", '"bar baz"'),
        ('value with spaces and "quotes"', '"value with spaces and \\"quotes\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("tab\there", '"tab\there"'),
    ],
)
def test_item1_quote_as_the_recordings_send_it(arg: str, wire: str) -> None:
    assert quote(arg) == wire
    assert split_command(f"SET VARIABLE X {wire}") == ["SET", "VARIABLE", "X", arg]


def test_item1_escape_digits_are_always_quoted_like_fastagi_basic() -> None:
    assert quote("#", always=True) == '"#"'
    assert split_command('STREAM FILE hello-world ""') == ["STREAM", "FILE", "hello-world", ""]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_item1_line_breaks_cannot_be_quoted_into_a_second_command(bad: str) -> None:
    with pytest.raises(InvalidActionError):
        quote(bad)


@given(st.lists(ARG, min_size=1, max_size=6), st.booleans())
def test_item1_fuzz_quoted_arguments_split_back_whole(args: list[str], always: bool) -> None:
    line = " ".join(["EXEC", *(quote(a, always=always) for a in args)])
    assert split_command(line) == ["EXEC", *args]


# -- answers -----------------------------------------------------------------------------------


def test_item1_result_with_data_and_endpos() -> None:
    r = parse_result(Answer(200, '200 result=1 (value with spaces and "quotes")'))
    assert (r.code, r.result, r.data, dict(r.extra)) == (
        200,
        1,
        'value with spaces and "quotes"',
        {},
    )
    r = parse_result(Answer(200, "200 result=35 endpos=4960"))
    assert (r.result, r.data, r.extra["endpos"], r.digit) == (35, None, "4960", "#")
    r = parse_result(Answer(200, "200 result=-1 endpos=0"))
    assert (r.result, r.extra["endpos"], r.digit) == (-1, "0", None)


def test_item1_get_data_timeout_keeps_empty_result_text() -> None:
    r = parse_result(Answer(200, "200 result= (timeout)"))
    assert (r.result, r.result_text, r.data) == (0, "", "timeout")
    r = parse_result(Answer(200, "200 result=042"))
    assert (r.result, r.result_text) == (42, "042")


def test_item1_parentheses_inside_data_are_kept() -> None:
    r = parse_result(Answer(200, "200 result=1 (a (b) c) endpos=3"))
    assert (r.data, r.extra["endpos"]) == ("a (b) c", "3")


def test_item1_error_codes_map_to_the_error_tree() -> None:
    with pytest.raises(AGIInvalidCommandError):
        parse_result(Answer(510, "510 Invalid or unknown command"), "FOOBAR")
    with pytest.raises(AGIHangupError):
        parse_result(
            Answer(511, "511 Command Not Permitted on a dead channel or intercept routine")
        )
    with pytest.raises(AGIUsageError) as usage:
        parse_result(Answer(520, "520-Invalid\nusage\n520 End of proper usage."), "STREAM FILE")
    assert usage.value.answer is not None and "usage" in usage.value.answer
    with pytest.raises(AGIError):
        parse_result(Answer(599, "599 what"))


def test_item1_multiline_520_up_to_end_of_proper_usage_in_pieces() -> None:
    reader = AnswerReader()
    assert reader.feed(b"520-Invalid command syntax.  Proper usage follows:\n") == []
    assert reader.feed(b"Send the given file...\n    <value>SUCCESS</value>\n520 End") == []
    items = reader.feed(b" of proper usage.\n200 result=0\n")
    assert isinstance(items[0], Answer) and items[0].code == 520
    assert items[0].text.splitlines()[-1] == "520 End of proper usage."
    assert items[1] == Answer(200, "200 result=0")


def test_item1_hangup_line_is_a_notification_not_an_answer() -> None:
    reader = AnswerReader()
    assert reader.feed(b"200 result=1\nHANGUP\n") == [Answer(200, "200 result=1"), HANGUP]
    assert reader.feed(b"HANG") == []
    assert reader.feed(b"UP\n") == [HANGUP]


def test_item1_asyncagi_result_is_one_whole_answer() -> None:
    text = url_decode("200%20result%3D1%20(50%25%20%2B%20a%26b%3Dc%2Fd%3F%20%C3%A9)%0A")
    assert text == "200 result=1 (50% + a&b=c/d? é)\n"
    assert parse_result(answer_from_text(text.rstrip("\n"))).data == "50% + a&b=c/d? é"


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_item1_fuzz_answer_reader_raises_only_library_errors(chunks: list[bytes]) -> None:
    reader = AnswerReader()
    try:
        for chunk in chunks:
            for item in reader.feed(chunk):
                if isinstance(item, Answer):
                    try:
                        result = parse_result(item)
                    except AGIError:
                        continue
                    assert isinstance(result, AGIResult)
    except AMIError:
        pass


@given(st.text(max_size=200))
def test_item1_fuzz_answer_text_raises_only_library_errors(text: str) -> None:
    with contextlib.suppress(AMIError):
        parse_result(answer_from_text(text))


# -- the environment ---------------------------------------------------------------------------

ENV = (
    b"agi_network: yes\nagi_network_script: lab?mode=test&n=1\n"
    b"agi_request: agi://127.0.0.1:4573/lab?mode=test&n=1\nagi_channel: Local/721@test-0000001a;2\n"
    b"agi_accountcode: \nagi_dnid: unknown\nagi_arg_1: first arg\nagi_arg_2: second arg\n\n"
)


def test_item1_env_in_several_reads_with_answers_behind_it() -> None:
    reader = EnvReader()
    for i in range(0, len(ENV), 7):
        assert not reader.done
        reader.feed(ENV[i : i + 7])
    assert reader.feed(b"200 result=0\n")
    assert reader.rest == b"200 result=0\n"
    env = reader.env
    assert env["agi_accountcode"] == "" and env["agi_dnid"] == "unknown"
    assert session_script(env) == "lab"
    assert session_query(env) == {"mode": "test", "n": "1"}
    assert session_args(env) == ["first arg", "second arg"]


def test_item1_asyncagi_env_has_no_script() -> None:
    env = parse_env(
        url_decode("agi_request%3A%20async%0Aagi_channel%3A%20Local%2F720%40test%0A%0A")
    )
    assert env == {"agi_request": "async", "agi_channel": "Local/720@test"}
    assert (session_script(env), session_query(env), session_args(env)) == ("", {}, [])


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_item1_fuzz_env_reader_raises_only_library_errors(chunks: list[bytes]) -> None:
    reader = EnvReader()
    try:
        for chunk in chunks:
            reader.feed(chunk)
        session_query(reader.env)
        session_script(reader.env)
    except AMIError:
        pass


def test_item1_over_long_lines_are_refused_not_buffered_forever() -> None:
    with pytest.raises(AMIError):
        AnswerReader().feed(b"2" * (70 * 1024))
    with pytest.raises(AMIError):
        EnvReader().feed(b"agi_x: " + b"y" * (300 * 1024))
