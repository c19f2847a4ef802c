"""Sans-IO AMI protocol: bytes in, `ami_async.message.Message` objects out.

``Parser.feed(data)`` returns the messages that ``data`` completed; it never
touches a socket, a loop or a clock. ``encode_action(name, headers)`` turns an
action into the bytes to write, refusing anything that could inject a second
action.

Framing rules (see ``shared/PROTOCOL.md``):

* The banner (``Asterisk Call Manager/11.0.0``) is one line with **no** blank
  line after it; it is recognised only as the first line of the stream, and
  any first line that is not a ``Key: value`` header is taken as the banner
  (``Asterisk Call Manager`` without a version too: `Parser.ami_version` is
  then ``None``).
* A message is lines ended by ``\\r\\n`` (a bare ``\\n`` is accepted too) and
  closed by an empty line.
* A pre-14 ``Response: Follows`` answer carries raw CLI text with bare ``\\n``
  line ends, blank lines included; only ``--END COMMAND--`` (on its own line
  or glued to the last output line) followed by an empty line ends it. Its
  header lines (``Response``, ``Privilege``, ``ActionID``) end in CRLF, or all
  in a bare LF. A ``Response: Follows`` frame whose lines all end in CRLF and
  that has no marker before its first empty line (proxies and fakes send
  them, some with ``Output:`` lines) is an ordinary message: every line is a
  header and it has no body.
* Bytes that are not valid UTF-8 are decoded with ``surrogateescape``: nothing
  is dropped and ``value.encode("utf-8", "surrogateescape")`` gives back the
  original bytes. Valid UTF-8 split across two ``feed()`` calls is decoded
  whole, because decoding happens per frame, never per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

from .errors import InvalidActionError, ProtocolError
from .message import SECRET_KEYS, Message, Response, make_message, new_event, new_response
from .message import _split_lines as split_lines

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "HeaderScalar", "HeaderValue", "Parser", "encode_action"]

#: Default cap on one frame (banner, message or Command body), in bytes.
DEFAULT_MAX_FRAME_SIZE: Final = 4 * 1024 * 1024

_END_COMMAND: Final = b"--END COMMAND--"
_FOLLOWS: Final = b"response: follows"
#: How many event names (as written) the parser remembers the wanted-or-not of.
_KNOWN_NAMES_MAX: Final = 1024
#: ... only of names up to this long (a server could send names as long as a frame).
_KNOWN_NAME_LEN: Final = 64
_FOLLOWS_HEADER_KEYS: Final = frozenset({"response", "privilege", "actionid"})

HeaderScalar: TypeAlias = "str | int | float | bool"
HeaderValue: TypeAlias = (
    "HeaderScalar | list[HeaderScalar] | tuple[HeaderScalar, ...] | Mapping[str, HeaderScalar]"
)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape")


class Parser:
    """Incremental AMI stream parser.

    ``max_frame_size`` bounds the bytes held for one incomplete frame; beyond it
    `ami_async.errors.ProtocolError` is raised and the buffer is not
    grown further (the parser is then unusable: the stream cannot be re-synced).
    """

    __slots__ = (
        "_broken",
        "_buf",
        "_expect_banner",
        "_follows_decided",
        "_max",
        "_only_for",
        "_only_names",
        "_scan",
        "banner",
        "only_events",
    )

    def __init__(
        self, *, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, expect_banner: bool = True
    ) -> None:
        if max_frame_size < 64:
            raise ValueError("max_frame_size must be at least 64 bytes")
        self._max = max_frame_size
        self._buf = bytearray()
        # Offset from which the blank-line search resumes (everything before it
        # in the current frame was already searched): feeding one byte at a time
        # stays linear.
        self._scan = 0
        self._follows_decided = False
        self._expect_banner = expect_banner
        self._broken: ProtocolError | None = None
        #: The banner line (``"Asterisk Call Manager/11.0.0"``) once seen.
        self.banner: str | None = None
        #: When set, frames that start with ``Event: <name>`` whose lower-cased
        #: name is not in it are skipped without being decoded or parsed (the
        #: client sets it to the names its subscribers want, when that is known).
        #: If the set's ``scan_lists`` attribute is true, a frame that is no
        #: event and carries ``EventList:`` (an answer opening a list) ends the
        #: skipping for the rest of the read: the list's end must be seen.
        self.only_events: frozenset[bytes] | None = None
        # Whether each event name, as written, is in `only_events` (for that set).
        self._only_for: frozenset[bytes] | None = None
        self._only_names: dict[bytes, bool] = {}

    @property
    def ami_version(self) -> str | None:
        """The version in the banner (``"11.0.0"``), or ``None``."""
        if self.banner is None or "/" not in self.banner:
            return None
        return self.banner.rsplit("/", 1)[1].strip()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        """Add ``data``; return every message it completed, in order."""
        if self._broken is not None:
            # A fresh exception each call: re-raising the stored one would chain
            # one more traceback entry (and keep a frame alive) every time.
            raise ProtocolError(str(self._broken), self._broken.data) from self._broken
        buf = self._buf
        if buf or self._expect_banner:
            buf += data
            work: bytes | bytearray = buf
            if self._expect_banner and not self._take_banner():
                self._check_size()
                return []
        else:
            # Nothing pending (the usual case): parse the chunk in place, no copy.
            work = data
        out: list[Message] = []
        append = out.append
        build = _build
        only = self.only_events
        if only is not None:
            if only is not self._only_for:
                self._only_for = only
                self._only_names = {}
            known = self._only_names
            scan_lists = getattr(only, "scan_lists", False)
        start = 0
        n = len(work)
        while start < n:
            first = work[start]
            if first == 0x0A or first == 0x0D:  # stray empty lines between frames
                if first == 0x0A:
                    start += 1
                    continue
                if start + 1 >= n:
                    break  # a lone CR: wait for the next byte
                if work[start + 1] == 0x0A:
                    start += 2
                    continue
            if (
                (first == 0x52 or first == 0x72)
                and n > start + 10
                and work[start + 10] | 0x20 == 0x66  # "Response: F...": no slice for the others
                and work[start : start + 17].lower() == _FOLLOWS
            ):
                content_end, frame_end, marked = self._find_follows_end(work, start, n)
                if frame_end < 0:
                    break
                content = work[start:content_end]
                append(_build_follows(content) if marked else build(content))
                start = frame_end
                continue
            # One find covers CRLF CRLF (and LF CRLF); a second, bounded by the
            # first hit, covers bare LF LF. Both resume where the last call stopped.
            scan = self._scan if self._scan > start else start
            crlf = work.find(b"\n\r\n", scan)
            lflf = work.find(b"\n\n", scan, n if crlf < 0 else crlf + 1)
            if lflf >= 0:
                end, next_start = lflf + 1, lflf + 2
            elif crlf >= 0:
                end, next_start = crlf + 1, crlf + 3
            else:
                if (first == 0x52 or first == 0x72) and n < start + 17:
                    # It may yet prove a `Response: Follows`, whose search resumes its
                    # own way: nothing is kept of this one (at most 16 bytes are read again).
                    self._scan = 0
                else:
                    self._scan = max(start, n - 2)
                break
            self._scan = 0
            if only is not None:
                if work.startswith(b"Event: ", start):
                    # The name as written (CR included) decides, looked up once per name.
                    raw = bytes(work[start + 7 : work.find(b"\n", start, end)])
                    wanted = known.get(raw)
                    if wanted is None:
                        wanted = raw.rstrip(b"\r").lower() in only
                        if len(raw) <= _KNOWN_NAME_LEN and len(known) < _KNOWN_NAMES_MAX:
                            known[raw] = wanted
                    if not wanted:
                        start = next_start
                        continue  # nobody wants it: never decoded, never parsed
                elif scan_lists and work.find(b"EventList:", start, end) >= 0:
                    # The answer of an action that may open a list the client does
                    # not know: its items and its end may follow in this very read,
                    # and the end must be seen. Nothing more is skipped in this read.
                    only = None
            append(build(work[start:end]))
            start = next_start
        if work is data:
            if start < n:
                self._buf = bytearray(data[start:])
                self._scan = max(0, self._scan - start)
        elif start:
            del buf[:start]
            self._scan = max(0, self._scan - start)
        if len(self._buf) > self._max:
            self._check_size()
        return out

    def _check_size(self) -> None:
        if len(self._buf) > self._max:
            head = bytes(self._buf[:200])
            self._buf = bytearray()
            self._broken = ProtocolError(
                f"frame exceeds max_frame_size ({self._max} bytes) without a terminator",
                head,
            )
            raise self._broken

    def _take_banner(self) -> bool:
        """Consume the banner if the stream starts with one; False while undecided."""
        buf = self._buf
        nl = buf.find(b"\n", self._scan)  # resume: a dribbled first line stays linear
        if nl < 0:
            self._scan = len(buf)
            return False
        line = bytes(buf[:nl]).rstrip(b"\r")
        self._expect_banner = False
        self._scan = 0
        # Any first line that is not a `Key: value` header is the banner: Asterisk
        # Call Manager/x.y.z, the proxy/fork variants, and those without a
        # version. A stream that starts with a header (or a blank line) has none.
        if line.strip() and not _is_header_line(line):
            self.banner = _decode(line)
            del buf[: nl + 1]
        return True

    def _find_follows_end(
        self, buf: bytes | bytearray, start: int, n: int
    ) -> tuple[int, int, bool]:
        """``(content_end, next_frame_start, marked)`` of a ``Response: Follows`` frame,
        or ``(-1, -1, False)`` while it is incomplete.

        It ends at ``--END COMMAND--`` followed by an empty line (``marked``). A
        Follows frame with no CLI text and no marker (proxies and fakes send them)
        ends at its first empty line, as long as only CRLF lines came before it;
        it is then an ordinary header frame (``marked`` false).
        """
        scan = max(start, self._scan - len(_END_COMMAND))
        if not self._follows_decided:
            # Only the frame's first empty line can end it early: decide once.
            # (_scan is the end of the last search less the marker's length.)
            resume = self._scan + len(_END_COMMAND) - 3 if self._scan else start
            blank = buf.find(b"\r\n\r\n", max(start, resume))
            if blank >= 0:
                self._follows_decided = True
                head = buf[start:blank]
                if _END_COMMAND not in head and head.count(b"\n") == head.count(b"\r\n"):
                    self._scan = 0
                    self._follows_decided = False
                    return blank + 2, blank + 4, False  # no CLI line began: headers only
        while True:
            marker = buf.find(_END_COMMAND, scan)
            if marker < 0:
                self._scan = max(start, n - len(_END_COMMAND))
                return -1, -1, False
            # The marker must end its line, and an empty line must follow.
            p = marker + len(_END_COMMAND)
            complete = False
            for _ in range(2):
                if p < n and buf[p] == 0x0D:
                    p += 1
                if p >= n:
                    break
                if buf[p] != 0x0A:
                    p = -1
                    break
                p += 1
            else:
                complete = True
            if complete:
                self._scan = 0
                self._follows_decided = False
                return marker, p, True
            if p >= 0:
                self._scan = marker  # wait for the rest of the terminator
                return -1, -1, False
            scan = marker + 1  # the marker's text inside the output: keep looking


def _is_header_line(line: bytes) -> bool:
    """``Key: value`` (or ``Key:value``): a non-empty key without spaces before a colon."""
    key, sep, _ = line.partition(b":")
    return bool(sep) and bool(key) and b" " not in key and b"\t" not in key


def _build(content: bytes | bytearray) -> Message:
    """One frame (without its terminating empty line) as a message."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = content.decode("utf-8", "surrogateescape")
    if text.startswith("Event: "):
        # The common case: the name is read now, the rest only when asked for.
        eol = text.find("\n")
        name = text[7:eol] if eol >= 0 else text[7:]
        if name[-1:] == "\r":
            name = name[:-1]
        return new_event(text, name)
    if text.startswith("Response: ") and (
        # No line starts with an e: no Event header (the usual answer, no lower() copy).
        ("\ne" not in text and "\nE" not in text) or "\nevent:" not in text.lower()
    ):
        return new_response(text)
    headers, bare = split_lines(text)
    return make_message(headers, bare_lines=bare)


def _build_follows(content: bytes | bytearray) -> Response:
    """A pre-14 Command answer: header lines, then raw CLI text up to the marker.

    The header lines are the leading ``Response``/``Privilege``/``ActionID`` lines
    (each once), all ended like the first one: CRLF as Asterisk sends them, or a
    bare LF (seen from other servers). The rest is the CLI text.
    """
    text = _decode(bytes(content))
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    crlf: bool | None = None
    pos = 0
    while True:
        eol = text.find("\n", pos)
        if eol <= pos:
            break
        cr = text[eol - 1] == "\r"
        if crlf is None:
            crlf = cr  # the Response line sets the line end of every header line
        elif cr != crlf:
            break
        key, sep, value = text[pos : eol - 1 if cr else eol].partition(":")
        lower = key.lower()
        if not sep or lower not in _FOLLOWS_HEADER_KEYS or lower in seen:
            break
        seen.add(lower)
        headers.append((key, value[1:] if value[:1] == " " else value))
        pos = eol + 1
    return Response(headers, body=text[pos:])


def _scalar(key: str, value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise InvalidActionError(f"header {key!r}: unsupported value type {type(value).__name__}")


def _check(kind: str, key: str, text: str) -> None:
    for bad, label in (("\r", "CR"), ("\n", "LF"), ("\x00", "NUL")):
        if bad in text:
            shown = "" if key.lower() in SECRET_KEYS or kind == "key" else f": {text[:60]!r}"
            raise InvalidActionError(f"header {key!r}: {label} is not allowed in a {kind}{shown}")


def encode_action(
    name: str,
    headers: Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]] = (),
) -> bytes:
    """Encode ``Action: name`` and ``headers`` as one AMI frame.

    A list or tuple value repeats its key in order; a mapping value (for
    ``Variable``) becomes one ``Variable: name=value`` line per entry; booleans
    become ``true``/``false``. CR, LF or NUL anywhere, ``:`` in a key, or an
    empty key or action name raise `ami_async.errors.InvalidActionError`
    (a ``ValueError``) before anything is produced.
    """
    items = headers.items() if isinstance(headers, Mapping) else list(headers)
    if type(name) is not str or not name.strip() or ":" in name:
        return _encode_checked(name, items)
    data = _encode_fast([f"Action: {name}\r\n"], items)
    return _encode_checked(name, items) if data is None else data


def encode_with_id(
    name: str, action_id: str, headers: dict[str, HeaderValue], trusted: bool = False
) -> bytes:
    """`encode_action` of ``name``, ``ActionID: action_id`` and then ``headers``.

    The client's path: no list of pairs to build, the same checks. The name is
    checked once (its first two lines are cached by name); an action without
    headers is then one string, checked once. ``trusted``: the ActionID is the
    client's own (hex digits, ``-`` and a counter), which needs no check.
    """
    try:
        head = _HEADS.get(name)
    except TypeError:  # not hashable: not a name (the checking encoder says so)
        head = None
    if head is None:
        head = _head(name)
    if head is not None and type(action_id) is str:
        if not headers:
            text = f"{head}{action_id}\r\n\r\n"
            if trusted or (text.count("\n") == 3 and text.count("\r") == 3 and "\x00" not in text):
                try:
                    return text.encode("utf-8", "surrogateescape")
                except UnicodeEncodeError:
                    pass  # a lone surrogate: the checking encoder raises, outside this handler
        else:
            # The first part holds two lines (Action, ActionID).
            data = _encode_fast([f"{head}{action_id}\r\n"], headers.items(), 1)
            if data is not None:
                return data
    return _encode_checked(name, [("ActionID", action_id), *headers.items()])


#: Action name -> ``"Action: <name>\r\nActionID: "``, for the names found valid
#: (the client reads it directly for a headerless action with its own ActionID).
ACTION_HEADS: dict[str, str] = {}
_HEADS = ACTION_HEADS
#: Past this many distinct names the cache stops growing (names are the caller's).
_HEADS_MAX: Final = 1024


def _head(name: object) -> str | None:
    """The cached start of an action named ``name``, or ``None`` if the name is not valid."""
    if (
        type(name) is not str
        or not name.strip()
        or ":" in name
        or "\r" in name
        or "\n" in name
        or "\x00" in name
    ):
        return None
    head = f"Action: {name}\r\nActionID: "
    try:
        head.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    if len(_HEADS) < _HEADS_MAX:
        _HEADS[name] = head
    return head


def _encode_fast(
    parts: list[str], items: Iterable[tuple[str, HeaderValue]], extra: int = 0
) -> bytes | None:
    """The frame of ``parts`` (each one line, but ``extra`` more lines in all) and the
    usual str/int ``items``; ``None`` for anything else, or anything wrong, which the
    checking encoder then explains.

    Built first, then checked once: every line must end in exactly one CRLF, no NUL.
    """
    for key, value in items:
        kind = type(value)
        if (
            (kind is str or kind is int)
            and type(key) is str
            and key
            and ":" not in key
            and key.strip() == key
            and (len(key) != 6 or key.lower() != "action")
        ):
            parts.append(f"{key}: {value}\r\n")
        else:
            return None
    parts.append("\r\n")
    text = "".join(parts)
    lines = len(parts) + extra
    if text.count("\n") != lines or text.count("\r") != lines or "\x00" in text:
        return None
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None  # a lone surrogate: the checking encoder raises, with no secret in context


def _encode_checked(
    name: str,
    headers: Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]] = (),
) -> bytes:
    """`encode_action` with every check made as it goes, for precise errors."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidActionError("the action name must be a non-empty string")
    _check("value", "Action", name)
    if ":" in name:
        raise InvalidActionError("':' is not allowed in an action name")
    lines = [f"Action: {name}"]
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if not isinstance(key, str) or not key:
            raise InvalidActionError("header keys must be non-empty strings")
        _check("key", key, key)
        if ":" in key:
            raise InvalidActionError(f"':' is not allowed in a header key: {key!r}")
        if key.strip() != key or not key.strip():
            raise InvalidActionError(f"header key {key!r} has leading or trailing spaces")
        if key.lower() == "action":
            raise InvalidActionError("pass the action as the name, not as an 'Action' header")
        if isinstance(value, Mapping):
            for var, val in value.items():
                var_s = _scalar(key, var)
                val_s = _scalar(key, val)
                _check("value", key, var_s)
                _check("value", key, val_s)
                if not var_s:
                    raise InvalidActionError(f"header {key!r}: empty variable name")
                lines.append(f"{key}: {var_s}={val_s}")
        elif isinstance(value, (list, tuple)):
            for item in value:
                text = _scalar(key, item)
                _check("value", key, text)
                lines.append(f"{key}: {text}")
        else:
            text = _scalar(key, value)
            _check("value", key, text)
            lines.append(f"{key}: {text}")
    lines.append("\r\n")
    text = "\r\n".join(lines)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:  # a lone surrogate
        bad_key = text[: exc.start].rsplit("\r\n", 1)[-1].partition(":")[0]
    # Raised outside the handler: the UnicodeEncodeError's .object is the whole
    # frame, Secret included, and must not ride along as __context__.
    raise InvalidActionError(f"header {bad_key!r}: text that cannot be encoded as UTF-8")
