"""Read-only AMI messages: `Message`, `Response` and `Event`.

A message keeps its ``(key, value)`` pairs in wire order with their original
casing (``msg.headers``), answers case-insensitive look-ups (``msg["channel"]``
is the first value, ``msg.get_all("Output")`` every value in order), keeps lines
that have no colon (``msg.bare_lines``) and, for a pre-14 ``Command`` answer,
the raw CLI text (``msg.body``).

Messages made by the parser are parsed lazily: the event name is read at once,
the other headers only when first asked for. Nothing a user sees depends on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Final, TypeVar, overload

__all__ = [
    "Event",
    "Message",
    "Response",
    "make_message",
    "new_event",
    "new_response",
]

_T = TypeVar("_T")
_MISSING: Final = object()
_UNKNOWN: Final = object()
#: ``Message._index`` after one look-up answered from the raw text.
_PEEKED: Final[dict[str, str]] = {}

#: Header names whose values are never shown in a repr, a log line or an error.
SECRET_KEYS: Final = frozenset({"secret", "key"})

Headers = tuple[tuple[str, str], ...]


def _split_lines(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Split the text of a frame into ``(key, value)`` pairs and colon-less lines.

    Exactly one space after the first colon separates key from value; further
    leading spaces and every trailing space belong to the value (CLI tables in
    ``Output:`` lines depend on it). ``Key:value`` with no space is tolerated.
    """
    headers: list[tuple[str, str]] = []
    bare: list[str] = []
    append = headers.append
    for line in text.split("\n"):
        if line[-1:] == "\r":
            line = line[:-1]
        key, sep, value = line.partition(":")
        if sep:
            if value[:1] == " ":
                value = value[1:]
            append((key, value))
        elif line:
            bare.append(line)
    return headers, bare


class Message(Mapping[str, str]):
    """One AMI message: an ordered, multi-valued, case-insensitive, read-only mapping."""

    # `_server`: set by the client that received the message (`Event.server`);
    # left unset (no cost) by the parser.
    __slots__ = ("_bare", "_body", "_headers", "_index", "_server", "_text")

    _text: str | None
    _headers: Headers | None
    _bare: tuple[str, ...]
    _index: dict[str, str] | None
    _body: str | None
    _server: str

    def __init__(
        self,
        headers: Iterable[tuple[str, str]] = (),
        *,
        bare_lines: Iterable[str] = (),
        body: str | None = None,
    ) -> None:
        self._text = None
        self._headers = tuple((str(k), str(v)) for k, v in headers)
        self._bare = tuple(bare_lines)
        self._index = None
        self._body = body

    # -- parsing -----------------------------------------------------------------

    def _parse(self) -> Headers:
        text = self._text
        assert text is not None
        pairs, bare = _split_lines(text)
        self._headers = headers = tuple(pairs)
        self._bare = tuple(bare)
        self._text = None
        return headers

    @property
    def headers(self) -> Headers:
        """Every ``(key, value)`` pair, in wire order, with the original key casing."""
        headers = self._headers
        if headers is None:
            headers = self._parse()
        return headers

    @property
    def bare_lines(self) -> tuple[str, ...]:
        """Lines that had no colon (kept, never dropped), in wire order."""
        if self._headers is None:
            self._parse()
        return self._bare

    @property
    def body(self) -> str | None:
        """The raw CLI text of a pre-14 ``Response: Follows`` answer, else ``None``."""
        return self._body

    def _lookup(self) -> dict[str, str]:
        index = self._index
        if index is None or index is _PEEKED:
            # Reversed, so that the first value of a repeated key wins.
            index = {key.lower(): value for key, value in reversed(self.headers)}
            self._index = index
        return index

    def _find(self, key: str) -> object:
        """The first value of ``key`` read straight from the unparsed text.

        ``_MISSING`` when absent, ``_UNKNOWN`` when this cannot be decided
        without parsing. One header read from an event then costs a search,
        not a parse of every line (values cannot contain a line end, so the
        first line starting with ``key:`` is the first such header).
        """
        text = self._text
        if text is None or ":" in key or "\n" in key:
            return _UNKNOWN
        low = text.lower()
        if len(low) != len(text):  # lower() changed a length: offsets would not match
            return _UNKNOWN
        tag = key.lower() + ":"
        if low.startswith(tag):
            pos = 0
        else:
            pos = low.find("\n" + tag)
            if pos < 0:
                return _MISSING
            pos += 1
        start = pos + len(tag)
        end = text.find("\n", start)
        value = text[start:] if end < 0 else text[start:end]
        if value[-1:] == "\r":
            value = value[:-1]
        return value[1:] if value[:1] == " " else value

    # -- Mapping -----------------------------------------------------------------

    def __getitem__(self, key: str) -> str:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[return-value]

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, /, default: str) -> str: ...
    @overload
    def get(self, key: str, /, default: _T) -> str | _T: ...

    def get(self, key: str, /, default: object = None) -> object:
        """The first value of ``key`` (any case), or ``default``."""
        index = self._index
        if index is None and self._text is not None:
            # The first look-up reads the raw text; a second one parses it all.
            self._index = _PEEKED
            found = self._find(key)
            if found is not _UNKNOWN:
                return default if found is _MISSING else found
        return self._lookup().get(key.lower(), default)

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` (any case), in wire order; ``[]`` when absent."""
        wanted = key.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self.headers:
            low = key.lower()
            if low not in seen:
                seen.add(low)
                yield key

    def __len__(self) -> int:
        return len(self._lookup())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (
            type(self) is type(other)
            and _server(self) == _server(other)
            and self.headers == other.headers
            and self.bare_lines == other.bare_lines
            and self._body == other._body
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.headers, self._body))

    # -- conveniences --------------------------------------------------------------

    @property
    def action_id(self) -> str | None:
        """The ``ActionID`` header, or ``None``."""
        return self.peek("ActionID")

    def peek(self, key: str) -> str | None:
        """Like ``get(key)``, but without parsing every header when it can be avoided.

        Routing reads ``ActionID`` and ``EventList`` of every list item; Asterisk
        writes them exactly so, at a line start, which a plain search finds. Any
        other spelling falls back to the full, case-insensitive parse.
        """
        text = self._text
        if text is None:
            return self.get(key)
        tag = key + ": "
        pos = text.find(tag)
        while pos > 0 and text[pos - 1] != "\n":
            pos = text.find(tag, pos + 1)
        if pos >= 0:
            end = text.find("\n", pos)
            value = text[pos + len(tag) :] if end < 0 else text[pos + len(tag) : end]
            return value[:-1] if value[-1:] == "\r" else value
        if key.lower() + ":" not in text.lower():
            return None
        return self.get(key)

    @property
    def variables(self) -> dict[str, str]:
        """This message's channel variables as ``{name: value}``.

        Reads ``ChanVariable: name=value`` (Stasis snapshots) and
        ``ChanVariable(<channel>): name=value`` (legacy multi-channel events such
        as ``OriginateResponse``), plus the ``Variable: name=value`` lines of a
        ``Status`` event. Prefixed forms (``DestChanVariable``) are in
        `prefixed_variables`. ``VarSet``'s own ``Variable:`` header is an
        ordinary field and is not read here.
        """
        return self.prefixed_variables("")

    def prefixed_variables(self, prefix: str) -> dict[str, str]:
        """Channel variables of the channel whose fields carry ``prefix`` (e.g. ``"Dest"``)."""
        wanted = prefix.lower() + "chanvariable"
        status = prefix == "" and isinstance(self, Event) and self.name.lower() == "status"
        result: dict[str, str] = {}
        for key, value in self.headers:
            low = key.lower()
            if low == wanted or (low.startswith(wanted + "(") and low.endswith(")")):
                pass
            elif not (status and low == "variable"):
                continue
            name, sep, val = value.partition("=")
            if sep:
                result[name] = val
        return result

    def __repr__(self) -> str:
        shown = []
        for key, value in self.headers[:4]:
            if key.lower() in SECRET_KEYS:
                value = "<hidden>"
            elif len(value) > 40:
                value = value[:37] + "..."
            shown.append(f"{key}={value!r}")
        more = len(self.headers) - len(shown)
        tail = f" +{more}" if more > 0 else ""
        return f"<{type(self).__name__} {' '.join(shown)}{tail}>"


class Response(Message):
    """A message with ``Response:`` and no ``Event:`` header: the answer to an action."""

    __slots__ = ()

    @property
    def response(self) -> str:
        """The ``Response:`` value (``Success``, ``Error``, ``Follows``, ``Goodbye``...)."""
        text = self._text
        if text is not None and text.startswith("Response: "):
            end = text.find("\n")
            value = text[10:] if end < 0 else text[10:end]
            return value[:-1] if value[-1:] == "\r" else value
        return self.get("Response", "")

    @property
    def success(self) -> bool:
        """False only for ``Response: Error`` (and ``Failure``)."""
        return self.response.lower() not in ("error", "failure")

    @property
    def message(self) -> str | None:
        """The ``Message:`` header, or ``None``."""
        return self.get("Message")

    @property
    def event_list(self) -> str | None:
        """The ``EventList:`` marker (``start``) when this answer opens a list."""
        return self.get("EventList")


class Event(Message):
    """A message with an ``Event:`` header (``OriginateResponse`` included).

    `server` is the `name` of the `Client` that received it (default
    ``"host:port"``); ``""`` for an event built by hand or by a bare `Parser`.
    """

    __slots__ = ("_name",)

    _name: str | None

    def __init__(
        self,
        headers: Iterable[tuple[str, str]] = (),
        *,
        bare_lines: Iterable[str] = (),
        body: str | None = None,
    ) -> None:
        super().__init__(headers, bare_lines=bare_lines, body=body)
        self._name = None

    @property
    def server(self) -> str:
        """The `name` of the client that received this event (``""`` when none did)."""
        return _server(self)

    @property
    def name(self) -> str:
        """The event's name (the ``Event:`` value)."""
        name = self._name
        if name is None:
            name = self._name = self.get("Event", "")
        return name


def _server(msg: Message) -> str:
    try:
        return msg._server
    except AttributeError:  # built by a parser or by hand: no client received it
        return ""


def new_event(text: str, name: str) -> Event:
    """An Event over the text of a frame whose name is already known (the parser's fast path)."""
    ev = _new(Event)
    ev._text = text
    ev._headers = None
    ev._bare = ()
    ev._index = None
    ev._body = None
    ev._name = name
    return ev


def new_response(text: str) -> Response:
    """A Response over the text of a frame, parsed on first use (the parser's fast path)."""
    msg = _new(Response)
    msg._text = text
    msg._headers = None
    msg._bare = ()
    msg._index = None
    msg._body = None
    return msg


_new = object.__new__


def make_message(
    headers: Iterable[tuple[str, str]],
    *,
    bare_lines: Iterable[str] = (),
    body: str | None = None,
) -> Message:
    """Build the right class for ``headers``: Event if it has ``Event:``, else Response..."""
    pairs = tuple(headers)
    keys = {k.lower() for k, _ in pairs}
    cls: type[Message]
    if "event" in keys:
        cls = Event
    elif "response" in keys:
        cls = Response
    else:
        cls = Message
    return cls(pairs, bare_lines=bare_lines, body=body)
