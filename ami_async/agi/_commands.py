"""Sans-IO AGI: command lines out, answers and the environment in (no asyncio here).

Facts from the recordings (``shared/fixtures/*/fastagi_*.agi``, ``async_agi_*.ami``):

* Asterisk splits a command line on spaces and tabs; ``"`` toggles quoting and
  ``\\`` makes the next character literal. ``""`` after a space is an empty
  argument (``STREAM FILE hello-world ""``).
* An answer is one line ``<code> <text>``: ``200 result=<n>`` then ``(<data>)``
  and/or ``key=value`` (``endpos=11360``); ``510 Invalid or unknown command``;
  ``511 Command Not Permitted on a dead channel ...``; the usage answer spans
  lines from ``520-...`` up to the line that starts with ``520 ``.
* ``HANGUP`` alone on a line is a notification, not an answer: it comes after
  the answer of the running command, alone when idle, and again at script end.
* The environment is ``agi_<key>: <value>`` lines ended by an empty line,
  written line by line (it arrives in several reads); ``agi_accountcode: ``
  keeps its space, an unset value is ``unknown``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import (
    AGIError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGIUsageError,
    InvalidActionError,
    ProtocolError,
)

__all__ = [
    "AGIResult",
    "Answer",
    "AnswerReader",
    "EnvReader",
    "HangupLine",
    "build_command",
    "parse_result",
    "quote",
    "session_args",
    "session_query",
    "session_script",
    "url_decode",
]

#: Longest answer line accepted (Asterisk's own buffer is 2 KiB; variables may be longer).
MAX_LINE: Final = 64 * 1024
#: Longest 520 usage answer (lines joined) and longest environment block.
MAX_BLOCK: Final = 256 * 1024

_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_RESULT = re.compile(r"result=(\S*)")
_EXTRA = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)")
_DATA_THEN_EXTRA = re.compile(r"\((.*)\)((?: +[A-Za-z_][A-Za-z0-9_]*=\S*)*) *")


def quote(arg: str, *, always: bool = False) -> str:
    """One argument as Asterisk's AGI parser reads it back whole.

    Quoted when empty, when it holds a space, a tab, ``"`` or ``\\`` (or when
    ``always``); inside quotes ``"`` and ``\\`` are escaped with ``\\``.
    """
    if _FORBIDDEN.search(arg):
        raise InvalidActionError("an AGI argument cannot contain CR, LF or NUL")
    if not always and arg and not _NEEDS_QUOTES.search(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_command(*words: str, quoted: Sequence[str | None] = ()) -> str:
    """The command line (without its ``\\n``): plain ``words``, then each of ``quoted``.

    A `None` in ``quoted`` ends the arguments there (an optional argument left
    out); every other one goes through `quote` with ``always=True``.
    """
    parts: list[str] = []
    for word in words:
        if not word or _NEEDS_QUOTES.search(word) or _FORBIDDEN.search(word):
            parts.append(quote(word))
        else:
            parts.append(word)
    for arg in quoted:
        if arg is None:
            break
        parts.append(quote(arg, always=True))
    return " ".join(parts)


def split_command(line: str) -> list[str]:
    """Split a command line the way Asterisk's AGI parser does (used by the fakes and tests)."""
    args: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
            continue
        elif char == '"':
            quoted = not quoted
            if current is None:
                current = []
                args.append("")
            continue
        elif char in " \t" and not quoted:
            if current is not None:
                args[-1] = "".join(current)
            current = None
            continue
        if current is None:
            current = []
            args.append("")
        current.append(char)
        args[-1] = "".join(current)
    return args


# -- answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AGIResult:
    """A ``200`` answer: ``result`` (an int, 0 when the text is not one), ``data`` (the
    text in parentheses or `None`), ``extra`` (``key=value`` pairs such as ``endpos``).

    ``result_text`` keeps the raw ``result=`` value (GET DATA puts the digits
    there, e.g. ``"042"``, ``"*1"`` or ``""`` on timeout) and ``text`` the whole line.
    """

    code: int
    result: int
    data: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    result_text: str = ""
    text: str = ""

    @property
    def digit(self) -> str | None:
        """The DTMF digit a result names as its ASCII code (``35`` -> ``"#"``), else `None`."""
        if self.result > 0 and chr(self.result) in "0123456789*#ABCD":
            return chr(self.result)
        return None


@dataclass(frozen=True)
class Answer:
    """One answer as read: its code and its text, lines joined by ``\\n`` (520 has several)."""

    code: int
    text: str


@dataclass(frozen=True)
class HangupLine:
    """Asterisk's ``HANGUP`` notification line (the channel is gone; not an answer)."""


HANGUP: Final = HangupLine()


def parse_result(answer: Answer, command: str | None = None) -> AGIResult:
    """`AGIResult` of a ``200`` answer; the library's `AGIError` kinds for the others."""
    if answer.code == 510:
        raise AGIInvalidCommandError(
            f"{command or 'command'}: {answer.text}", command=command, answer=answer.text
        )
    if answer.code == 511:
        raise AGIHangupError(
            f"{command or 'command'}: {answer.text}", command=command, answer=answer.text
        )
    if answer.code == 520:
        raise AGIUsageError(
            f"{command or 'command'}: wrong usage", command=command, answer=answer.text
        )
    if answer.code != 200:
        raise AGIError(
            f"{command or 'command'}: {answer.text}", command=command, answer=answer.text
        )
    text = answer.text
    rest = text[4:] if text.startswith("200 ") else text[3:].lstrip()
    match = _RESULT.match(rest)
    if match is None:
        return AGIResult(200, 0, None, {}, "", text)
    result_text = match.group(1)
    try:
        result = int(result_text)
    except ValueError:
        result = 0
    rest = rest[match.end() :].lstrip(" ")
    data: str | None = None
    extra: dict[str, str] = {}
    whole = _DATA_THEN_EXTRA.fullmatch(rest) if rest.startswith("(") else None
    if whole is not None:
        data, rest = whole.group(1), whole.group(2)
    for key, value in _EXTRA.findall(rest):
        extra[key] = value
    return AGIResult(200, result, data, extra, result_text, text)


def _code_of(line: str) -> int | None:
    if len(line) >= 3 and line[:3].isdigit() and (len(line) == 3 or line[3] in " -"):
        return int(line[:3])
    return None


class AnswerReader:
    """Bytes from Asterisk in, `Answer` and `HangupLine` items out, in order.

    ``feed(data)`` returns the items ``data`` completed. A line that is neither
    an answer nor ``HANGUP`` raises `ProtocolError`, as does a line over
    `MAX_LINE` or a usage answer over `MAX_BLOCK`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._usage: list[str] | None = None
        self._usage_size = 0

    def feed(self, data: bytes) -> list[Answer | HangupLine]:
        """Items completed by ``data`` (may be none)."""
        self._buffer += data
        items: list[Answer | HangupLine] = []
        while True:
            nl = self._buffer.find(b"\n")
            if nl < 0:
                if len(self._buffer) > MAX_LINE:
                    raise ProtocolError("AGI answer line too long", bytes(self._buffer[:200]))
                return items
            raw = bytes(self._buffer[:nl])
            del self._buffer[: nl + 1]
            if len(raw) > MAX_LINE:
                raise ProtocolError("AGI answer line too long", raw)
            item = self._line(raw.rstrip(b"\r").decode("utf-8", "replace"))
            if item is not None:
                items.append(item)

    def _line(self, line: str) -> Answer | HangupLine | None:
        if self._usage is not None:
            self._usage.append(line)
            self._usage_size += len(line) + 1
            if line.startswith("520 "):
                text, self._usage = "\n".join(self._usage), None
                return Answer(520, text)
            if self._usage_size > MAX_BLOCK:
                raise ProtocolError("AGI usage answer too long")
            return None
        if line == "HANGUP":
            return HANGUP
        code = _code_of(line)
        if code is None:
            raise ProtocolError("not an AGI answer line", line.encode("utf-8", "replace"))
        if line[3:4] == "-":  # "520-Invalid command syntax.  Proper usage follows:"
            self._usage, self._usage_size = [line], len(line)
            return None
        return Answer(code, line)

    @property
    def buffered(self) -> int:
        """Bytes read but not yet part of a complete item."""
        return len(self._buffer) + (self._usage_size if self._usage is not None else 0)


def answer_from_text(text: str) -> Answer:
    """The `Answer` in a whole answer text (an AsyncAGIExec ``Result`` once URL-decoded)."""
    reader = AnswerReader()
    items = [i for i in reader.feed(text.encode("utf-8") + b"\n") if isinstance(i, Answer)]
    if not items or reader.buffered:
        raise ProtocolError("not an AGI answer", text.encode("utf-8", "replace"))
    return items[0]


# -- the environment ------------------------------------------------------------------------


class EnvReader:
    """The ``agi_*`` block, fed in pieces: ``feed`` returns `True` once the empty line came.

    `env` holds the variables in order; `rest` the bytes after the block
    (answers Asterisk wrote in the same read).
    """

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.rest = b""
        self.done = False
        self._buffer = bytearray()
        self._size = 0

    def feed(self, data: bytes) -> bool:
        """Take ``data``; `True` when the block is complete."""
        if self.done:
            self.rest += data
            return True
        self._buffer += data
        while True:
            nl = self._buffer.find(b"\n")
            if nl < 0:
                if len(self._buffer) + self._size > MAX_BLOCK:
                    raise ProtocolError("AGI environment too long")
                return False
            raw = bytes(self._buffer[:nl]).rstrip(b"\r")
            del self._buffer[: nl + 1]
            self._size += nl + 1
            if self._size > MAX_BLOCK:
                raise ProtocolError("AGI environment too long")
            if not raw:
                self.done, self.rest = True, bytes(self._buffer)
                self._buffer.clear()
                return True
            key, sep, value = raw.decode("utf-8", "replace").partition(":")
            if not sep or not key:
                raise ProtocolError("not an AGI environment line", raw)
            self.env[key.strip()] = value[1:] if value.startswith(" ") else value


def parse_env(text: str) -> dict[str, str]:
    """The environment in a whole block of text (AsyncAGIStart's ``Env`` once decoded)."""
    reader = EnvReader()
    reader.feed(text.encode("utf-8"))
    if not reader.done:
        reader.feed(b"\n")  # a block that lost its final empty line still counts
    return reader.env


def url_decode(value: str) -> str:
    """AsyncAGI's ``%XX`` encoding undone (a ``+`` stays a ``+``: Asterisk writes ``%2B``)."""
    return unquote(value, errors="replace")


def _request(env: Mapping[str, str]) -> tuple[str, str]:
    script = env.get("agi_network_script")
    if script is None:
        request = env.get("agi_request", "")
        if "://" not in request:
            return "", ""  # AsyncAGI ("async") or a local script
        parts = urlsplit(request)
        return parts.path.lstrip("/"), parts.query
    path, _, query = script.partition("?")
    return path.lstrip("/"), query


def session_script(env: Mapping[str, str]) -> str:
    """The FastAGI request's path without its leading ``/`` and query (``""`` for AsyncAGI)."""
    return _request(env)[0]


def session_query(env: Mapping[str, str]) -> dict[str, str]:
    """Each query parameter of the FastAGI URL with its first value."""
    parsed = parse_qs(_request(env)[1], keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def session_args(env: Mapping[str, str]) -> list[str]:
    """``agi_arg_1``, ``agi_arg_2``, ... in order (up to the first missing one)."""
    args: list[str] = []
    while f"agi_arg_{len(args) + 1}" in env:
        args.append(env[f"agi_arg_{len(args) + 1}"])
    return args
