"""Hypothesis properties of the sans-IO core: round trips, robustness, chunking."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from _fixtures import bin_files, feed_chunks, fixture_id, snapshot, split_at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami_async.errors import ProtocolError
from ami_async.message import Event, Message
from ami_async.protocol import HeaderScalar, HeaderValue, Parser, encode_action

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any character but CR, LF, NUL (and lone surrogates, which are not text): the
# parser splits lines on "\n" only, so \x0b, \x0c, \x1c, \x85, \u2028 ... must
# survive in values.
_value_chars = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00")
VALUES = st.text(_value_chars, max_size=40)
# Printable keys: no control characters, no ':', no leading or trailing space.
KEYS = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters=":"),
    min_size=1,
    max_size=20,
).filter(lambda k: k.strip() == k and k.lower() != "action")
NAMES = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00:"),
    min_size=1,
    max_size=20,
).filter(lambda n: n.strip() != "")
SCALARS: st.SearchStrategy[HeaderScalar] = st.one_of(
    VALUES, st.integers(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False)
)


def _text(value: HeaderScalar) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _expected(key: str, value: HeaderValue) -> list[tuple[str, str]]:
    if isinstance(value, Mapping):
        return [(key, f"{_text(k)}={_text(v)}") for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [(key, _text(v)) for v in value]
    return [(key, _text(value))]


HEADER_VALUES: st.SearchStrategy[HeaderValue] = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.tuples(SCALARS, SCALARS),
    st.dictionaries(VALUES.filter(bool), SCALARS, max_size=3),
)


@SETTINGS
@given(name=NAMES, headers=st.lists(st.tuples(KEYS, HEADER_VALUES), max_size=8))
def test_encode_then_parse_gives_back_the_same_headers(
    name: str, headers: list[tuple[str, HeaderValue]]
) -> None:
    data = encode_action(name, headers)
    assert data.endswith(b"\r\n\r\n")
    parser = Parser(expect_banner=False)
    msgs = parser.feed(data)
    assert len(msgs) == 1
    assert parser.buffered == 0
    expected = [("Action", name)]
    for key, value in headers:
        expected += _expected(key, value)
    assert list(msgs[0].headers) == expected
    assert msgs[0].bare_lines == ()
    assert msgs[0]["action"] == name


@SETTINGS
@given(key=KEYS, value=VALUES)
def test_one_space_separator_round_trips_leading_and_trailing_spaces(key: str, value: str) -> None:
    padded = "  " + value + "  "
    msg = Parser(expect_banner=False).feed(encode_action("Ping", {key: padded}))[0]
    assert msg.get_all(key) == [padded]


# Pieces that make the parser's interesting paths likely in random input.
_TOKENS = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b": ",
        b":",
        b" ",
        b"Event: X",
        b"event:",
        b"Response: Success",
        b"Response: Follows\r\n",
        b"Privilege: Command\r\n",
        b"ActionID: a\r\n",
        b"--END COMMAND--",
        b"Asterisk Call Manager/1.0",
        b"ChanVariable(PJSIP/x): a=b",
        b"Variable: a=b",
        b"\xff",
        b"\xc3",
        b"\xa9",
        b"\xf0\x9f\x98",
        b"x",
    ]
)
STREAMS = st.one_of(
    st.binary(max_size=300),
    st.lists(st.one_of(_TOKENS, st.binary(max_size=8)), max_size=60).map(b"".join),
)


def _touch(msg: Message) -> None:
    """Use every lazy accessor: parsing errors must not hide behind laziness."""
    _ = (msg.headers, msg.bare_lines, msg.body, msg.variables, repr(msg), len(msg), list(msg))
    _ = msg.prefixed_variables("Dest")
    for key, _value in msg.headers:
        assert msg.get_all(key)
    if isinstance(msg, Event):
        _ = msg.name


@SETTINGS
@given(data=STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_arbitrary_bytes_and_chunkings_only_raise_protocol_error(
    data: bytes, cuts: list[int]
) -> None:
    chunks = split_at(data, [c for c in cuts if c <= len(data)])
    for max_frame_size in (64, 4096):
        parser = Parser(max_frame_size=max_frame_size)
        try:
            for chunk in chunks:
                for msg in parser.feed(chunk):
                    _touch(msg)
        except ProtocolError:
            pass


@SETTINGS
@given(data=STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_arbitrary_bytes_parse_the_same_whatever_the_chunking(data: bytes, cuts: list[int]) -> None:
    whole = Parser()
    expected = snapshot(whole.feed(data))
    chunked = Parser()
    got = feed_chunks(split_at(data, [c for c in cuts if c <= len(data)]), chunked)
    assert snapshot(got) == expected
    assert chunked.banner == whole.banner
    assert chunked.buffered == whole.buffered


_SMALL = [p for p in bin_files() if p.stat().st_size < 20_000]


@SETTINGS
@given(path=st.sampled_from(_SMALL), fractions=st.lists(st.floats(0, 1), max_size=40))
def test_arbitrary_chunking_of_a_fixture_gives_the_same_messages(
    path: Path, fractions: list[float]
) -> None:
    data = path.read_bytes()
    cuts = [int(f * len(data)) for f in fractions]
    expected = snapshot(Parser().feed(data))
    got = feed_chunks(split_at(data, cuts))
    assert snapshot(got) == expected, fixture_id(path)
