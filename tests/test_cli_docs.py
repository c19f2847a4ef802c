"""docs/cli.md says what the CLI does: every sample on the page is run or checked.

- each `ami-async` command of a `sh` block parses, and runs against a FakeAsterisk of this
  test (reached through AMI_HOST / AMI_PORT / AMI_USERNAME / AMI_SECRET), exit status 0
  (1 allowed for PJSIP, which the simulated PBX does not have);
- a `text` block starting with `$ ami-async ...` is run, and its output must read as shown,
  numbers aside, `...` standing for any lines; the demo's output likewise;
- a synopsis (`ami-async CMD [...]`) names only options the command has;
- the INI sample is a valid config file, the JSON samples parse, the stderr lines have the
  one format.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import FIXTURES, REPO, Cli, Result, cli

from ami_async.cli import build_parser, read_config
from ami_async.testing import FakeAsterisk

__all__ = ["cli"]  # the fixture

PAGE = REPO / "docs" / "cli.md"
FENCE = re.compile(r"^```(\w*)\s*$")
STDERR_LINE = re.compile(r"^ami-async( [a-z-]+)?: (error|warning|note): \S")
EVENT_LINE = re.compile(r'^\d\d:\d\d:\d\d\.\d{3} [A-Za-z]+( [\w-]+=("[^"]*"|[^\s"]+))+$')
#: Long-running commands are stopped by the test.
STOP_AFTER = ("--duration", "1")


def blocks() -> Iterator[tuple[str, int, str]]:
    """(language, line number, text) of every fenced block of the page."""
    lines = PAGE.read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        yield match.group(1), index + 1, "\n".join(lines[index + 1 : end])
        index = end + 1


def commands(text: str) -> list[tuple[list[str], bool]]:
    """The `ami-async` commands of a shell block: (argv, reads stdin from a pipe)."""
    found: list[tuple[list[str], bool]] = []
    for line in text.replace("\\\n", " ").split("\n"):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenting = "#"
        lexer.whitespace_split = True
        segment: list[str] = []
        piped = False
        for token in [*lexer, ";"]:
            if token in ("|", "&", ";", ">", "&&"):
                if segment and segment[0] == "ami-async":
                    found.append((segment[1:], piped))
                piped = token == "|"
                segment = [] if token != ">" else ["redirect"]
            else:
                segment.append(token)
    return found


SHELL = [
    (argv, piped, number)
    for language, number, text in blocks()
    if language == "sh"
    for argv, piped in commands(text)
]


def test_the_page_has_shell_samples() -> None:
    assert len(SHELL) > 20


@pytest.mark.parametrize(
    ("argv", "piped", "number"), SHELL, ids=[f"line{n}:{' '.join(a)[:40]}" for a, _, n in SHELL]
)
def test_every_shell_command_parses(argv: list[str], piped: bool, number: int) -> None:
    build_parser().parse_args(argv)


def runnable(argv: list[str]) -> list[str]:
    """`argv` made to end by itself against the test's PBX."""
    if argv[0] == "events" and "--duration" not in argv:
        return [*argv, *STOP_AFTER]
    if argv[0] == "calls" and "--duration" not in argv and "--fake" not in argv:
        return [*argv, *STOP_AFTER]  # with --fake it places calls of its own, and --count ends it
    if argv[0] == "fake-pbx":
        return [*argv, "--port", "0", *STOP_AFTER]
    return argv


async def test_every_shell_command_runs(cli: Cli, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(FIXTURES / "asterisk-22" / "command.ami", work / "capture.ami")
    shutil.copy(FIXTURES / "asterisk-22" / "command.bin", work / "capture.bin")
    gate = asyncio.Semaphore(4)
    async with FakeAsterisk() as pbx:
        env = {
            "AMI_HOST": "127.0.0.1",
            "AMI_PORT": str(pbx.port),
            "AMI_USERNAME": "admin",
            "AMI_SECRET": "amp111",
        }

        async def run(argv: list[str], piped: bool) -> Result:
            async with gate:
                # `--secret -` prompts on a terminal and reads a pipe: the test pipes.
                reads_secret = piped or "--secret" in argv
                stdin = b"amp111\n" if reads_secret else None
                return await cli(*runnable(argv), env=env, stdin=stdin, cwd=work)

        results = await asyncio.gather(*(run(argv, piped) for argv, piped, _ in SHELL))
    for (argv, _, number), result in zip(SHELL, results, strict=True):
        allowed = {0, 1} if any("pjsip" in arg.lower() for arg in argv) else {0}
        assert result.code in allowed, (number, argv, str(result))
        assert "Traceback" not in result.err, (number, argv, str(result))


# -- text blocks -------------------------------------------------------------------------------

NUMBERS = re.compile(r"\b[0-9a-f]{8}-\d+\b|\d+")


def normal(line: str) -> str:
    return NUMBERS.sub("0", line.rstrip())


def reads_as_shown(sample: list[str], actual: list[str]) -> bool:
    """Does `actual` read as `sample`, numbers aside, each `...` line standing for any lines?"""
    chunks: list[list[str]] = [[]]
    for line in sample:
        if line.strip() == "...":
            chunks.append([])
        else:
            chunks[-1].append(normal(line))
    got = [normal(line) for line in actual]
    position = 0
    for number, chunk in enumerate(chunks):
        anchored = number == 0
        last = number == len(chunks) - 1
        found = None
        for start in range(position, len(got) - len(chunk) + 1):
            if got[start : start + len(chunk)] == chunk:
                found = start
                break
            if anchored:
                break
        if found is None:
            return False
        position = found + len(chunk)
        if last and chunk and position != len(got) and sample[-1].strip() != "...":
            return False
    return True


def test_reads_as_shown_matches_gaps_and_numbers() -> None:
    assert reads_as_shown(["a 1", "...", "c"], ["a 22", "b", "b", "c"])
    assert reads_as_shown(["a", "..."], ["a", "b"])
    assert not reads_as_shown(["a", "c"], ["a", "b", "c"])
    assert not reads_as_shown(["b"], ["a", "b"])


TEXT = [(number, text) for language, number, text in blocks() if language == "text"]


@pytest.mark.parametrize(("number", "text"), TEXT, ids=[f"line{n}" for n, _ in TEXT])
async def test_every_text_block_is_run_or_checked(
    cli: Cli, tmp_path: Path, number: int, text: str
) -> None:
    lines = text.split("\n")
    first = lines[0]
    if first.startswith("$ ami-async "):
        argv = shlex.split(first[len("$ ami-async ") :])
        work = tmp_path / "work"
        work.mkdir()
        shutil.copy(FIXTURES / "asterisk-22" / "command.ami", work / "capture.ami")
        result = await cli(*runnable(argv), cwd=work)
        assert result.code == 0, result
        assert reads_as_shown(lines[1:], result.out.rstrip("\n").split("\n")), str(result)
    elif first.startswith("ami-async demo:"):
        result = await cli("demo")
        assert result.code == 0, result
        assert reads_as_shown(lines, result.out.rstrip("\n").split("\n")), str(result)
    elif all(STDERR_LINE.match(line) for line in lines):
        pass  # the stderr format, checked line by line by the condition itself
    elif first.startswith("ami-async ") and "[" in text:  # a synopsis
        name = first.split()[1]
        parser = build_parser()
        (sub,) = [
            action.choices[name]
            for action in parser._subparsers._group_actions  # type: ignore[union-attr]
        ]
        known = {flag for action in sub._actions for flag in action.option_strings}
        known |= {"--timeout", "--connect-timeout"}  # "[connection options]"
        for flag in re.findall(r"(?<![\w-])--?[a-z][\w-]*", text):
            assert flag in known, (number, flag)
        if "[connection options]" in text:
            assert "--host" in known
    elif all(EVENT_LINE.match(line) for line in lines):
        pass  # the one-line event format (tests/test_cli.py checks a real one)
    elif first.startswith('{"type": "originate"'):
        assert '"..."' not in text  # an abridged object: `...` for the rest of a message
    else:
        raise AssertionError(f"docs/cli.md line {number}: a text block no test checks:\n{text}")


def test_the_ini_sample_is_a_valid_config_file(tmp_path: Path) -> None:
    ((text,),) = [[t] for language, _, t in blocks() if language == "ini"]
    path = tmp_path / "ami-async.ini"
    path.write_text(text, encoding="utf-8")
    section = read_config(path, required=True)
    assert section == {
        "host": "pbx.example.com",
        "port": "5038",
        "username": "admin",
        "secret": "amp111",
        "auth": "md5",
        "tls": "no",
        "cafile": "/etc/ssl/pbx-ca.pem",
        "timeout": "10",
    }


def test_the_json_samples_parse() -> None:
    samples = [text for language, _, text in blocks() if language == "json"]
    assert samples
    for text in samples:
        for line in text.split("\n"):
            obj = json.loads(line)
            assert obj["type"] in ("event", "response")
            assert obj["headers"][0][0] in ("Event", "Response")
