"""Every real capture in shared/fixtures, parsed whole, in pieces and byte by byte.

The chunking tests show that where reads split the stream never changes the
messages. These checks are generic: they run on every ``.bin`` capture found,
with no list of names or counts of files, so a capture added later fails here
only where the parser misreads it. What each capture says (message counts,
order, values) is in the tables of ``test_recordings_facts_22.py`` and
``test_recordings_facts_13.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from _fixtures import (
    BANNERS,
    VERSIONS,
    agi_transcripts,
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
# Captures of 20 KB or more are fed in pieces of 1 to 7 bytes by the random chunkings;
# byte by byte they would cost seconds each.
SMALL = [p for p in BINS if p.stat().st_size < 20_000]


def test_every_file_is_a_known_kind_of_capture() -> None:
    """AMI captures are ``.bin`` + ``.ami`` pairs, FastAGI ones ``.agi`` + ``.raw``."""
    assert set(VERSIONS) == set(BANNERS)
    root = fixtures_dir()
    for version in VERSIONS:
        for path in (root / version).iterdir():
            pair = {".bin": ".ami", ".ami": ".bin", ".agi": ".raw", ".raw": ".agi"}.get(path.suffix)
            if pair is None:
                assert path.name.startswith("cli-") and path.suffix == ".txt", path
            else:
                assert path.with_suffix(pair).is_file(), path


@pytest.mark.parametrize("path", BINS, ids=IDS)
def test_every_ami_capture_parses_to_responses_and_events(path: Path) -> None:
    parser, msgs = parse(path.read_bytes())
    version = BANNERS[path.parent.name]
    assert parser.banner == f"Asterisk Call Manager/{version}"
    assert parser.ami_version == version
    assert parser.buffered == 0
    # Every message of a real capture is a Response or an Event, and only
    # events carry an Event header.
    assert all(isinstance(m, (Event, Response)) for m in msgs)
    assert all(("Event" in m) == isinstance(m, Event) for m in msgs)


AGI = agi_transcripts()


@pytest.mark.parametrize("path", AGI, ids=[fixture_id(p) for p in AGI])
def test_agi_transcripts_are_not_ami_streams(path: Path) -> None:
    """The FastAGI files keep the ``.ami`` record format, but carry AGI (bare LF lines)."""
    assert path.read_bytes().startswith(b"# FastAGI transcript v1")
    records = read_ami(path)
    raw = path.with_suffix(".raw").read_bytes()
    assert b"".join(r.data for r in records if r.direction == "<<<") == raw
    assert raw.startswith(b"agi_network: yes\n")
    assert b"\r" not in raw


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
