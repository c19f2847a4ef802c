"""FakeAsterisk: an in-process asyncio AMI server for tests (this project's and yours).

It speaks the wire protocol the way Asterisk 22 does (texts copied from the
recordings in ``shared/fixtures/asterisk-22``): the one-line banner, plain and
MD5 login, ``Permission denied`` before login, Ping, Events, Command (modern
``Output:`` lines or the Asterisk 13 ``Response: Follows`` frame), UserEvent,
AstDB and variables. Behind it runs a simulated PBX (:class:`SimPBX`, on by
default): Originate creates Local channels that run a small dialplan (the
recordings' ``[test]`` context: 100 answers and waits 2 s, 450 dials 100, 600
sends a UserEvent, 400/410 queue, 999 does not exist) and sends the events a
real Asterisk 22 sends; Hangup, Redirect, Status, CoreShowChannels,
Getvar/Setvar, QueueStatus/QueueSummary and ``core show channels`` see those
channels::

    async with FakeAsterisk(time_scale=0.05) as fake:   # Wait(1) lasts 50 ms
        fake.pbx.add_extension("test", "123", "Answer")
        fake.pbx.add_extension("test", "123", "Wait", "1")
        reader, writer = await asyncio.open_connection(fake.host, fake.port)
        ...
        await fake.emit("Hangup", {"Privilege": "call,all", "Channel": "PJSIP/100-00000001"})
        action = await fake.wait_for_action("Originate")
        await fake.pbx.wait_idle()                        # every call has ended

Any action can be overridden with :meth:`FakeAsterisk.on_action` (a handler)
or :meth:`FakeAsterisk.script` (fixed answers), and :meth:`FakeAsterisk.replay`
serves later connections from a recorded ``.ami`` transcript instead. Fault
injection: :meth:`~FakeAsterisk.drop`, :meth:`~FakeAsterisk.stall` /
:meth:`~FakeAsterisk.resume`, :meth:`~FakeAsterisk.send_raw`.

``FakeAsterisk(pbx=False)`` is the bare test double: no channels, so lists are
empty, actions on a channel answer ``No such channel``, and Originate answers
at once with an ``OriginateResponse`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import random
import re
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, TypeAlias, cast

from ._faultproxy import FaultProxy
from ._simpbx import (
    Dialplan,
    OriginateRequest,
    OriginateResult,
    SimChannel,
    SimPBX,
    SimQueue,
    SimQueueMember,
    state_text,
)
from ._transcript import read_transcript
from .errors import ProtocolError
from .message import Message
from .protocol import Parser

__all__ = [
    "ActionHandler",
    "Dialplan",
    "FakeAsterisk",
    "FakeSession",
    "FaultProxy",
    "MessageLike",
    "OriginateRequest",
    "OriginateResult",
    "Reply",
    "SimChannel",
    "SimPBX",
    "SimQueue",
    "SimQueueMember",
    "make_response",
    "with_action_id",
]

logger = logging.getLogger("ami_async.testing")

#: One message to send: ``{"Key": "value"}``, ``[("Key", "value"), ...]`` (keys may
#: repeat), a parsed :class:`~ami_async.message.Message`, or raw ``bytes`` (sent as is).
MessageLike: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]] | bytes
#: What an action handler may return: one message, or a sequence of messages.
Reply: TypeAlias = MessageLike | Sequence[MessageLike]

# Actions Asterisk accepts before login (manager.c process_message).
_PRE_AUTH_ACTIONS: Final = frozenset({"login", "challenge", "logoff"})
# Event classes (the Privilege: values), include/asterisk/manager.h.
_EVENT_CLASSES: Final = frozenset(
    {
        "system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
        "reporting", "cdr", "dialplan", "originate", "agi", "hookresponse", "cc", "aoc",
        "test", "security", "message",
    }
)  # fmt: skip
_TRUE: Final = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE: Final = frozenset({"no", "false", "n", "f", "0", "off"})
# Originate to one of these extensions fails (Local/999@test in originate_fail_async.bin).
_FAILING_EXTENS: Final = frozenset({"404", "999"})
_LEGACY_ASTERISK_VERSION: Final = "13.38.3"
_END_COMMAND: Final = b"--END COMMAND--\r\n\r\n"
_ACTION_ID_LINE: Final = re.compile(rb"^ActionID: ([^\r\n]*)\r\n", re.MULTILINE)
_CLOSE: Final = None  # marker in a session's held output: close the connection here


# -- encoding helpers ---------------------------------------------------------------


def _encode_lines(headers: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{key}: {value}\r\n" for key, value in headers).encode(
        "utf-8", "surrogateescape"
    )


def _encode_message(headers: Iterable[tuple[str, str]]) -> bytes:
    """``Key: value\\r\\n`` per header, then the empty line that ends the message."""
    return _encode_lines(headers) + b"\r\n"


def _pairs(message: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(message, Message):
        return list(message.headers)  # keeps repeated keys
    if isinstance(message, Mapping):
        return [(str(k), str(v)) for k, v in message.items()]
    return [(str(k), str(v)) for k, v in message]


def _encode(message: MessageLike) -> bytes:
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    return _encode_message(_pairs(message))


def _is_pair(item: object) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)


def _messages(reply: Reply) -> list[MessageLike]:
    """Split a handler's reply into messages (a list of pairs is one message)."""
    if isinstance(reply, (bytes, bytearray, memoryview, Mapping)):
        return [cast(MessageLike, reply)]
    items = list(reply)
    if items and all(_is_pair(item) for item in items):
        return [cast(MessageLike, items)]
    return cast(list[MessageLike], items)


def _header(message: Message, key: str) -> str:
    """A header as Asterisk reads it: first value, leading blanks skipped, "" if absent."""
    return message.get(key, "").lstrip(" \t")


def make_response(
    action: Message,
    status: str = "Success",
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    /,
    **more: str,
) -> list[tuple[str, str]]:
    """``Response: <status>``, then ``ActionID`` if the action had one, then the headers.

    This is the order Asterisk writes (``astman_send_response_full``)::

        make_response(action, "Error", Message="No such channel")
    """
    pairs = [("Response", status), *_pairs(headers), *more.items()]
    return with_action_id(action, pairs)


def with_action_id(
    action: Message, message: Mapping[str, str] | Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``message`` with the action's ActionID inserted after its first header.

    Unchanged when the action had no (non-empty) ActionID or the message has one.
    """
    pairs = _pairs(message)
    action_id = _header(action, "ActionID")
    if not action_id or any(key.lower() == "actionid" for key, _ in pairs):
        return pairs
    return [*pairs[:1], ("ActionID", action_id), *pairs[1:]]


# -- event masks ----------------------------------------------------------------------


def _is_true(value: str) -> bool:
    return value.strip().lower() in _TRUE


def _normalise_mask(value: str) -> str:
    """An ``Events``/``EventMask`` value as ``"on"``, ``"off"`` or a class list."""
    text = value.strip().lower()
    if text.isdigit():
        return "on" if int(text) else "off"
    if text in _TRUE:
        return "on"
    if text in _FALSE:
        return "off"
    classes = [c.strip() for c in text.split(",") if c.strip()]
    if "all" in classes:
        return "on"
    return ",".join(c for c in classes if c in _EVENT_CLASSES) or "off"


def _mask_allows(mask: str, event: Sequence[tuple[str, str]]) -> bool:
    """Whether a session with ``mask`` receives ``event`` (judged by its Privilege classes)."""
    if mask == "off":
        return False
    if mask == "on":
        return True
    privilege = next((v for k, v in event if k.lower() == "privilege"), None)
    if privilege is None:
        return True  # an event without classes passes every mask but "off"
    wanted = set(mask.split(","))
    return any(c.strip().lower() in wanted for c in privilege.split(","))


# -- transcripts ------------------------------------------------------------------------


@dataclass
class _Step:
    """Client actions (name, recorded ActionID) and what the server sent after them."""

    actions: list[tuple[str, str]]
    reply: list[bytes] = field(default_factory=list)
    close: bool = False


@dataclass
class _Transcript:
    banner: bytes
    steps: list[_Step]
    close_after_banner: bool = False
    rewrite_action_ids: bool = True


def _transcript_from_ami(data: bytes, rewrite_action_ids: bool) -> _Transcript:
    banner: list[bytes] = []
    steps: list[_Step] = []
    close_after_banner = False
    parser = Parser(expect_banner=False)
    for direction, _, payload in read_transcript(data):
        if direction == ">>>":
            frames = parser.feed(payload)
            # A write that completed no frame (bare blank lines, half an action) adds
            # no step: what the server sent next belongs to the current step.
            if frames:
                steps.append(
                    _Step([(_header(f, "Action"), _header(f, "ActionID")) for f in frames])
                )
        elif direction == "<<<":
            (steps[-1].reply if steps else banner).append(payload)
        elif b"EOF: server closed the connection" in payload:
            if steps:
                steps[-1].close = True
            else:
                close_after_banner = True
    return _Transcript(b"".join(banner), steps, close_after_banner, rewrite_action_ids)


def _transcript_from_bin(data: bytes) -> _Transcript:
    nl = data.find(b"\n")
    first = data[: nl + 1] if nl >= 0 else b""
    if not first or b":" in first:  # no banner line: everything is the answer
        first = b""
    rest = data[len(first) :]
    return _Transcript(first, [_Step([("*", "")], [rest])], rewrite_action_ids=False)


class _ReplayState:
    """One connection's position in a transcript."""

    def __init__(self, transcript: _Transcript) -> None:
        self.transcript = transcript
        self.step = 0
        self.pos = 0
        self.ids: dict[bytes, bytes | None] = {}  # recorded ActionID -> the client's

    def expected(self) -> str | None:
        steps = self.transcript.steps
        return steps[self.step].actions[self.pos][0] if self.step < len(steps) else None

    def rewrite(self, data: bytes) -> bytes:
        if not self.transcript.rewrite_action_ids or not self.ids:
            return data
        ids = self.ids

        def sub(match: re.Match[bytes]) -> bytes:
            if match.group(1) not in ids:
                return match.group(0)
            new = ids[match.group(1)]
            return b"" if new is None else b"ActionID: " + new + b"\r\n"

        return _ACTION_ID_LINE.sub(sub, data)


# -- sessions ---------------------------------------------------------------------------


class FakeSession:
    """One client connection to a :class:`FakeAsterisk`.

    Handlers receive it; tests find it in ``fake.sessions``. Output honours
    :meth:`FakeAsterisk.stall` (it is held, in order, until resume).
    """

    def __init__(
        self,
        server: FakeAsterisk,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        transcript: _Transcript | None,
    ) -> None:
        #: The server this session belongs to.
        self.server = server
        #: True after a successful Login.
        self.authenticated = False
        #: The logged-in user, or None.
        self.username: str | None = None
        #: ``"on"``, ``"off"`` or a class list such as ``"call,system"`` (Login/Events).
        self.events_mask = "on"
        #: Every frame this client sent, in order.
        self.actions: list[Message] = []
        peer = writer.get_extra_info("peername")
        #: The client's address.
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self._reader = reader
        self._writer = writer
        self._replay = _ReplayState(transcript) if transcript is not None else None
        self._challenge: str | None = None
        self._held: list[bytes | None] = []
        # Events held while this session's action blocks (a synchronous Originate).
        self._deferred: list[bytes] | None = None
        self._closing = False
        self._closed = False
        self._drain_lock = asyncio.Lock()
        self._task: asyncio.Task[object] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "authenticated" if self.authenticated else "new"
        return f"<FakeSession {self.peer[0]}:{self.peer[1]} {state} user={self.username!r}>"

    @property
    def closed(self) -> bool:
        """True once the connection is closed (or its close is queued behind a stall)."""
        return self._closing or self._closed

    async def send(self, *messages: MessageLike) -> None:
        """Write messages to this client, in order (mappings, pair lists or raw bytes)."""
        for message in messages:
            self._write(_encode(message))
        await self._drain()

    def close(self) -> None:
        """Close the connection after everything already sent (held output included)."""
        if self._closing:
            return
        self._closing = True
        if self.server._stalled:
            self._held.append(_CLOSE)
        else:
            self._close_now()

    # -- internals ---------------------------------------------------------------

    def _write_event(self, data: bytes) -> None:
        if self._deferred is not None:
            self._deferred.append(data)
        else:
            self._write(data)

    def _defer_events(self) -> None:
        """Hold events, like Asterisk's session thread does while an action blocks it."""
        if self._deferred is None:
            self._deferred = []

    def _release_events(self) -> None:
        deferred, self._deferred = self._deferred, None
        for data in deferred or ():
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._closing or self._closed or not data:
            return
        if self.server._stalled:
            self._held.append(data)
        elif not self._writer.transport.is_closing():  # the peer is gone: nothing to send to
            self._writer.write(data)

    async def _drain(self) -> None:
        if self._closed or self.server._stalled:
            return
        # One drain at a time: concurrent drain() calls on one writer are not safe
        # on every supported Python.
        async with self._drain_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._writer.drain()

    def _flush(self) -> None:
        held, self._held = self._held, []
        for item in held:
            if item is None:
                self._close_now()
                return
            self._writer.write(item)

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closing = self._closed = True
        self._held.clear()
        self._writer.close()
        self.server._forget(self)

    def _abort(self) -> None:
        if self._closed:
            return
        self._closing = self._closed = True
        self._held.clear()
        self._writer.transport.abort()
        self.server._forget(self)

    async def _serve(self) -> None:
        parser = Parser(expect_banner=False)
        try:
            if self._replay is not None:
                transcript = self._replay.transcript
                self._write(transcript.banner)
                if transcript.close_after_banner:
                    self.close()
            else:
                self._write(self.server._banner_bytes())
            while not self._closing:
                data = await self._reader.read(65536)
                if not data:
                    break
                try:
                    frames = parser.feed(data)
                except ProtocolError:
                    logger.warning("FakeAsterisk: over-long frame from %s, closing", self.peer)
                    break
                for frame in frames:
                    if self._closing:
                        break
                    await self.server._receive(self, frame)
        except ConnectionError:
            pass
        except Exception:
            logger.exception("FakeAsterisk: session %s failed", self.peer)
        finally:
            # A close queued behind a stall is done by resume(), after the held output.
            if not (self._held and self._held[-1] is _CLOSE):
                self._close_now()


#: ``handler(session, action)``: returns None (it answered itself, or never answers),
#: a :data:`Reply`, or an awaitable of either.
ActionHandler: TypeAlias = Callable[
    [FakeSession, Message], "Reply | Awaitable[Reply | None] | None"
]
_Builtin: TypeAlias = Callable[[FakeSession, Message], Awaitable[None]]


# -- the server -------------------------------------------------------------------------


class FakeAsterisk:
    """An in-process AMI server on ``host:port`` (port 0: a free port, see ``.port``).

    ``banner`` overrides the whole banner line (``""`` sends none);
    ``command_format="legacy"`` answers Command like Asterisk 13 (``Response:
    Follows`` ... ``--END COMMAND--``); ``auth_failure_delay`` is the pause before
    ``Authentication failed`` (Asterisk sleeps 1 s); ``fully_booted`` sends
    ``Event: FullyBooted`` after a login whose event mask includes ``system``.

    ``pbx`` (default True) runs the simulated PBX (:attr:`pbx`) behind the
    actions; ``time_scale`` is real seconds per simulated second (``0.05``:
    ``Wait(1)`` lasts 50 ms); ``cel=False`` / ``cdr=False`` leave out the CEL /
    Cdr events, which a real Asterisk with cel_manager and cdr_manager sends.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str] | None = None,
        version: str = "11.0.0",
        banner: str | None = None,
        command_format: Literal["modern", "legacy"] = "modern",
        auth_failure_delay: float = 1.0,
        fully_booted: bool = True,
        ssl: _ssl.SSLContext | None = None,
        pbx: bool = True,
        time_scale: float = 1.0,
        cel: bool = True,
        cdr: bool = True,
    ) -> None:
        if command_format not in ("modern", "legacy"):
            raise ValueError(f"command_format must be 'modern' or 'legacy': {command_format!r}")
        #: The bound address once started.
        self.host = host
        self.port = port
        #: ``{username: secret}`` accepted by Login (plain and MD5).
        self.users: dict[str, str] = dict(users) if users is not None else {"admin": "amp111"}
        self.version = version
        self.command_format: Literal["modern", "legacy"] = command_format
        self.auth_failure_delay = auth_failure_delay
        self.fully_booted = fully_booted
        self.ssl = ssl
        #: Open sessions, most recent last.
        self.sessions: list[FakeSession] = []
        #: Every frame received by any session, in order (a log for assertions).
        self.actions: list[Message] = []
        self._banner = banner
        self._server: asyncio.AbstractServer | None = None
        self._handlers: dict[str, ActionHandler] = {}
        self._cli: dict[str, str] = {}
        self._stalled = False
        self._transcript: _Transcript | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._returned: set[int] = set()
        self._sim = SimPBX(self._publish, time_scale=time_scale, cel=cel, cdr=cdr) if pbx else None
        self._builtins = _Builtins(self)
        if self._sim is not None:
            self._sim.astdb = self._builtins.db

    def __repr__(self) -> str:
        state = "listening" if self._server is not None else "stopped"
        return f"<FakeAsterisk {self.host}:{self.port} {state} sessions={len(self.sessions)}>"

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and listen; afterwards ``host``/``port`` hold the bound address."""
        if self._server is not None:
            raise RuntimeError("FakeAsterisk is already started")
        self._builtins.started = time.time()
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port, ssl=self.ssl
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        """Close every session (after its pending output) and stop listening."""
        if self._sim is not None:
            await self._sim.close()
        server, self._server = self._server, None
        if server is not None:
            server.close()
        sessions = list(self.sessions)
        for session in sessions:
            session._held.clear()
            session._close_now()
        await self._cancel_tasks(sessions)
        for session in sessions:
            try:
                await asyncio.wait_for(session._writer.wait_closed(), 1.0)
            except (asyncio.TimeoutError, ConnectionError, OSError):
                session._writer.transport.abort()
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FakeAsterisk:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- configuration ---------------------------------------------------------------

    def on_action(self, name: str, handler: ActionHandler) -> None:
        """Answer action ``name`` (any case) with ``handler`` instead of the built-in.

        ``handler(session, action)`` may ``await session.send(...)`` itself and return
        None, or return a :data:`Reply`; it echoes the ActionID itself (use
        :func:`make_response` / :func:`with_action_id`). Actions of one session are
        handled one at a time, in order; to answer out of order, keep the action
        and ``send`` later from a task. Before login, only Login, Challenge and
        Logoff reach a handler (others get ``Permission denied``).
        """
        self._handlers[name.lower()] = handler

    def script(self, name: str, *replies: Mapping[str, str] | Sequence[tuple[str, str]]) -> None:
        """Answer every action ``name`` with ``replies``, in order, ActionID added to each.

        The ActionID goes right after each message's first header::

            fake.script("QueueAdd", {"Response": "Success", "Message": "Added interface to queue"})

        With no replies the action is never answered (for timeout tests).
        """
        messages = [_pairs(reply) for reply in replies]

        def answer(session: FakeSession, action: Message) -> Reply:
            return [with_action_id(action, message) for message in messages]

        self.on_action(name, answer)

    def add_cli_command(self, command: str, output: str) -> None:
        """Teach the Command action a CLI command (``output`` uses ``\\n`` line ends)."""
        self._cli[" ".join(command.lower().split())] = output

    @property
    def db(self) -> dict[str, str]:
        """The AstDB as ``{"/family/key": value}`` (DBPut/DBGet/DBDel/DBDelTree)."""
        return self._builtins.db

    @property
    def global_variables(self) -> dict[str, str]:
        """Global channel variables (Setvar/Getvar without a Channel)."""
        return self._builtins.variables

    @property
    def pbx(self) -> SimPBX:
        """The simulated PBX: channels, dialplan, queues (``pbx.add_extension(...)``).

        Raises RuntimeError for a ``FakeAsterisk(pbx=False)``.
        """
        if self._sim is None:
            raise RuntimeError("this FakeAsterisk runs without a simulated PBX (pbx=False)")
        return self._sim

    async def replay(
        self, path: str | os.PathLike[str], *, rewrite_action_ids: bool = True
    ) -> None:
        """Serve connections made from now on from a recorded transcript.

        ``.ami`` (format in ``shared/fixtures/README.md``): the ``<<<`` records before
        the first ``>>>`` are the banner; then for each recorded ``>>>`` write the
        server waits for the client's next action(s) and sends every ``<<<`` record
        up to the next ``>>>``, byte for byte except that ``ActionID: <recorded>``
        lines carry the client's ActionID (unless ``rewrite_action_ids`` is false;
        a client action without ActionID drops the line). A ``### ... EOF: server
        closed the connection`` note closes the connection there. Login is not
        checked. A client Ping or Logoff that is not the expected action gets the
        built-in answer; any other mismatch, or an action after the end, gets
        ``Response: Error`` / ``Message: replay: unexpected action X (expected Y)``.

        ``.bin`` (a raw server byte stream), for parser-level tests: the banner line
        is sent on connect and the whole rest of the file at once after the
        client's first action, whatever it is, without ActionID rewriting.
        """
        data = await asyncio.to_thread(Path(path).read_bytes)
        if os.fspath(path).endswith(".bin"):
            self._transcript = _transcript_from_bin(data)
        else:
            self._transcript = _transcript_from_ami(data, rewrite_action_ids)

    # -- driving the clients ---------------------------------------------------------

    async def emit(
        self,
        event: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        /,
        **more: str,
    ) -> None:
        """Send ``Event: <event>`` + headers to every logged-in session whose mask allows it.

        The mask is judged on the ``Privilege`` header (``"call,all"``); an event
        without one reaches every session whose events are not off. Returns once
        every receiving transport has drained (a client that never reads blocks it).
        """
        await self._broadcast([("Event", event), *_pairs(headers), *more.items()])

    async def send_raw(self, data: bytes) -> None:
        """Write ``data`` unchanged to every session (logged in or not)."""
        sessions = list(self.sessions)
        for session in sessions:
            session._write(data)
        for session in sessions:
            await session._drain()

    async def drop(self) -> None:
        """Abort every session's connection at once; the server keeps listening."""
        sessions = list(self.sessions)
        for session in sessions:
            session._abort()
        await self._cancel_tasks(sessions)

    def stall(self) -> None:
        """Keep reading and handling actions, but hold all output until :meth:`resume`.

        Answers, events, raw bytes, closes, and the banner of a connection made
        meanwhile are all held, in order, per session.
        """
        self._stalled = True

    def resume(self) -> None:
        """Send everything held since :meth:`stall`, in order, and stop holding."""
        self._stalled = False
        for session in list(self.sessions):
            session._flush()

    async def wait_for_action(self, name: str, timeout: float = 5.0) -> Message:
        """The oldest action ``name`` (any case) received and not yet returned by this call.

        Waits for it if needed; raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        wanted = name.lower()
        loop = asyncio.get_running_loop()

        async def wait() -> Message:
            while True:
                for index, action in enumerate(self.actions):
                    if index not in self._returned and _header(action, "Action").lower() == wanted:
                        self._returned.add(index)
                        return action
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)

        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            seen = [_header(a, "Action") for a in self.actions]
            raise TimeoutError(
                f"no {name!r} action within {timeout} s (received: {seen})"
            ) from None

    # -- internals -------------------------------------------------------------------

    def _banner_bytes(self) -> bytes:
        if self._banner is None:
            return f"Asterisk Call Manager/{self.version}\r\n".encode()
        if not self._banner:
            return b""
        return self._banner.rstrip("\r\n").encode("utf-8", "surrogateescape") + b"\r\n"

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = FakeSession(self, reader, writer, self._transcript)
        session._task = asyncio.current_task()
        self.sessions.append(session)
        await session._serve()

    def _forget(self, session: FakeSession) -> None:
        with contextlib.suppress(ValueError):
            self.sessions.remove(session)

    async def _cancel_tasks(self, sessions: Iterable[FakeSession]) -> None:
        current = asyncio.current_task()
        tasks = [s._task for s in sessions if s._task is not None and s._task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _broadcast(self, event: Sequence[tuple[str, str]]) -> None:
        data = _encode_message(event)
        targets = [
            s for s in self.sessions if s.authenticated and _mask_allows(s.events_mask, event)
        ]
        for session in targets:
            session._write_event(data)
        for session in targets:
            await session._drain()

    def _publish(self, event: list[tuple[str, str]]) -> None:
        """The simulated PBX's event sink: written at once, in order, to every listener."""
        data = _encode_message(event)
        for session in self.sessions:
            if session.authenticated and _mask_allows(session.events_mask, event):
                session._write_event(data)

    async def _send_event(self, session: FakeSession, event: Sequence[tuple[str, str]]) -> None:
        if _mask_allows(session.events_mask, event):
            await session.send(event)

    async def _receive(self, session: FakeSession, frame: Message) -> None:
        self.actions.append(frame)
        session.actions.append(frame)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        if session._replay is not None:
            await self._replay_action(session, session._replay, frame)
        else:
            await self._dispatch(session, frame)

    async def _dispatch(self, session: FakeSession, frame: Message) -> None:
        name = _header(frame, "Action")
        if not name:
            await session.send(make_response(frame, "Error", Message="Missing action in request"))
            return
        key = name.lower()
        if not session.authenticated and key not in _PRE_AUTH_ACTIONS:
            await session.send(make_response(frame, "Error", Message="Permission denied"))
            return
        try:
            handler = self._handlers.get(key)
            if handler is not None:
                result = handler(session, frame)
                if inspect.isawaitable(result):
                    result = await result
                if result is not None:
                    await session.send(*_messages(result))
                return
            builtin = self._builtins.actions.get(key)
            if builtin is None:
                text = (
                    f"Invalid/unknown command: {name}. "
                    "Use Action: ListCommands to show available commands."
                )
                await session.send(make_response(frame, "Error", Message=text))
                return
            await builtin(session, frame)
        except Exception as exc:
            logger.exception("FakeAsterisk: handler for %s failed", name)
            text = f"FakeAsterisk: the {name} handler raised {exc!r}"
            await session.send(make_response(frame, "Error", Message=text))

    async def _replay_action(
        self, session: FakeSession, state: _ReplayState, frame: Message
    ) -> None:
        name = _header(frame, "Action")
        expected = state.expected()
        if expected is not None and (expected == "*" or expected.lower() == name.lower()):
            step = state.transcript.steps[state.step]
            recorded_id = step.actions[state.pos][1]
            if recorded_id:
                actual = _header(frame, "ActionID")
                state.ids[recorded_id.encode("utf-8", "surrogateescape")] = (
                    actual.encode("utf-8", "surrogateescape") if actual else None
                )
            if name.lower() == "login":  # replayed logins are not checked
                session.authenticated = True
                session.username = _header(frame, "Username") or None
                if _header(frame, "Events"):
                    session.events_mask = _normalise_mask(_header(frame, "Events"))
            state.pos += 1
            if state.pos == len(step.actions):
                state.step += 1
                state.pos = 0
                session._write(state.rewrite(b"".join(step.reply)))
                await session._drain()
                if step.close:
                    session.close()
            return
        if name.lower() == "ping":  # a keepalive between recorded actions
            await self._builtins.ping(session, frame)
        elif name.lower() == "logoff":  # a client shutting down after the transcript
            await self._builtins.logoff(session, frame)
        else:
            wanted = expected if expected is not None else "end of transcript"
            text = f"replay: unexpected action {name} (expected {wanted})"
            await session.send(make_response(frame, "Error", Message=text))


# -- the built-in actions -----------------------------------------------------------------


def _parse_callerid(text: str) -> tuple[str, str]:
    """``(number, name)`` of a CallerID such as ``"Lab" <1000>``; ``<unknown>`` if absent."""
    text = text.strip()
    if not text:
        return "<unknown>", "<unknown>"
    match = re.fullmatch(r'"?([^"<]*?)"?\s*<([^>]*)>', text)
    if match:
        return match.group(2).strip() or "<unknown>", match.group(1).strip() or "<unknown>"
    if re.fullmatch(r"[0-9*#+]+", text):
        return text, "<unknown>"
    return "<unknown>", text


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


def _uptime_text(seconds: int) -> str:
    """Asterisk's ``print_uptimestr`` (a unit is used only when strictly exceeded)."""
    parts = []
    for unit, size in (
        ("year", 365 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if seconds > size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count} {unit}{_plural(count)}")
    if seconds > 0 or not parts:
        parts.append(f"{seconds} second{_plural(seconds)}")
    return ", ".join(parts)


def _variables(action: Message) -> list[tuple[str, str]]:
    """Originate's ``Variable:`` headers, each ``name=value`` or several comma-separated."""
    pairs = []
    for header in action.get_all("Variable"):
        for item in header.split(","):
            name, sep, value = item.partition("=")
            if sep and name.strip():
                pairs.append((name.strip(), value))
    return pairs


# ListCommands: the synopses and privileges of asterisk-22/listcommands.bin.
_LISTED: Final = (
    ("Challenge", "Generate Challenge for MD5 Auth.", "<none>"),
    ("Command", "Execute Asterisk CLI Command.", "command,all"),
    ("CoreSettings", "Show PBX core settings (version etc).", "system,reporting,all"),
    ("CoreShowChannels", "List currently active channels.", "system,reporting,all"),
    ("CoreStatus", "Show PBX core status variables.", "system,reporting,all"),
    ("DBDel", "Delete DB entry.", "system,all"),
    ("DBDelTree", "Delete DB Tree.", "system,all"),
    ("DBGet", "Get DB Entry.", "system,reporting,all"),
    ("DBGetTree", "Get DB entries, optionally at a particular family/key", "system,reporting,all"),
    ("DBPut", "Put DB entry.", "system,all"),
    ("Events", "Control Event Flow.", "<none>"),
    ("Filter", "Dynamically add filters for the current manager session.", "system,all"),
    ("Getvar", "Gets a channel variable or function value.", "call,reporting,all"),
    ("Hangup", "Hangup channel.", "system,call,all"),
    ("ListCommands", "List available manager commands.", "<none>"),
    ("Login", "Login Manager.", "<none>"),
    ("Logoff", "Logoff Manager.", "<none>"),
    ("Originate", "Originate a call.", "originate,all"),
    ("Ping", "Keepalive command.", "<none>"),
    ("QueueStatus", "Show queue status.", "<none>"),
    ("QueueSummary", "Show queue summary.", "<none>"),
    ("Redirect", "Redirect (transfer) a call.", "call,all"),
    ("Setvar", "Sets a channel variable or function value.", "call,all"),
    ("Status", "List channel status.", "system,call,reporting,all"),
    ("UserEvent", "Send an arbitrary event.", "user,all"),
)
_ACTION_NAMES: Final = {name.lower(): name for name, _, _ in _LISTED}
_SYNOPSES: Final = {name.lower(): f"{text}  (Priv: {priv})" for name, text, priv in _LISTED}
_NORMAL_CLEARING: Final = 16


class _Builtins:
    """The built-in action handlers, their little state (AstDB, uptime) and the CLI."""

    def __init__(self, server: FakeAsterisk) -> None:
        self.server = server
        self.started = time.time()
        self.db: dict[str, str] = {}
        sim = server._sim
        self.variables: dict[str, str] = sim.global_variables if sim is not None else {}
        self.calls = 0  # Originates seen without the simulated PBX
        self.actions: dict[str, _Builtin] = {
            "login": self.login,
            "challenge": self.challenge,
            "logoff": self.logoff,
            "ping": self.ping,
            "events": self.events,
            "command": self.command,
            "listcommands": self.listcommands,
            "userevent": self.userevent,
            "originate": self.originate,
            "coreshowchannels": self.coreshowchannels,
            "status": self.status,
            "hangup": self.hangup,
            "redirect": self.redirect,
            "queuestatus": self.queuestatus,
            "queuesummary": self.queuesummary,
            "dbput": self.dbput,
            "dbget": self.dbget,
            "dbgettree": self.dbgettree,
            "dbdel": self.dbdel,
            "dbdeltree": self.dbdeltree,
            "getvar": self.getvar,
            "setvar": self.setvar,
            "filter": self.filter,
            "coresettings": self.coresettings,
            "corestatus": self.corestatus,
        }

    # -- helpers ---------------------------------------------------------------------

    @property
    def uptime(self) -> int:
        return max(0, int(time.time() - self.started))

    @property
    def asterisk_version(self) -> str:
        if self.server.command_format == "legacy":
            return _LEGACY_ASTERISK_VERSION
        major = self.server.version.split(".", 1)[0]
        # AMI 4.0.0 came with Asterisk 15, ... AMI 11.0.0 with Asterisk 22.
        return f"{int(major) + 11}.0.0" if major.isdigit() and int(major) >= 4 else "22.0.0"

    @property
    def channels(self) -> list[SimChannel]:
        sim = self.server._sim
        return list(sim.channels.values()) if sim is not None else []

    @property
    def active_calls(self) -> int:
        sim = self.server._sim
        return sim.active_calls if sim is not None else 0

    @property
    def processed_calls(self) -> int:
        sim = self.server._sim
        return sim.calls_processed if sim is not None else self.calls

    def find(self, name: str) -> SimChannel | None:
        sim = self.server._sim
        return sim.find_channel(name) if sim is not None and name else None

    @staticmethod
    async def ok(session: FakeSession, action: Message, message: str) -> None:
        await session.send(make_response(action, "Success", Message=message))

    @staticmethod
    async def error(session: FakeSession, action: Message, message: str) -> None:
        await session.send(make_response(action, "Error", Message=message))

    @staticmethod
    def list_start(action: Message, message: str) -> list[tuple[str, str]]:
        return make_response(action, "Success", EventList="start", Message=message)

    @staticmethod
    def list_complete(
        action: Message, event: str, count: int, *extra: tuple[str, str]
    ) -> list[tuple[str, str]]:
        return with_action_id(
            action,
            [("Event", event), ("EventList", "Complete"), ("ListItems", str(count)), *extra],
        )

    @staticmethod
    def action_id_last(action: Message, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """List items of Status, QueueStatus, QueueSummary carry the ActionID last."""
        action_id = _header(action, "ActionID")
        return [*headers, ("ActionID", action_id)] if action_id else headers

    # -- session control ---------------------------------------------------------------

    async def login(self, session: FakeSession, action: Message) -> None:
        if session.authenticated:
            await self.ok(session, action, "Already authenticated")
            return
        username = _header(action, "Username")
        secret = self.server.users.get(username) if username else None
        accepted = False
        if secret is not None:
            if _header(action, "AuthType").lower() == "md5":
                if session._challenge is not None:
                    digest = hashlib.md5((session._challenge + secret).encode()).hexdigest()
                    accepted = _header(action, "Key") == digest
            else:
                accepted = _header(action, "Secret") == secret
        if not accepted:
            if self.server.auth_failure_delay > 0:
                await asyncio.sleep(self.server.auth_failure_delay)
            await self.error(session, action, "Authentication failed")
            session.close()
            return
        session.authenticated = True
        session.username = username
        if _header(action, "Events"):
            session.events_mask = _normalise_mask(_header(action, "Events"))
        await self.ok(session, action, "Authentication accepted")
        if self.server.fully_booted:
            uptime = str(self.uptime)
            event = [
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Uptime", uptime),
                ("LastReload", uptime),
                ("Status", "Fully Booted"),
            ]
            await self.server._send_event(session, event)

    async def challenge(self, session: FakeSession, action: Message) -> None:
        if _header(action, "AuthType").lower() != "md5":
            await self.error(session, action, "Must specify AuthType")
            return
        if session._challenge is None:
            session._challenge = str(random.randint(100_000_000, 999_999_999))
        await session.send(make_response(action, "Success", Challenge=session._challenge))

    async def logoff(self, session: FakeSession, action: Message) -> None:
        await session.send(make_response(action, "Goodbye", Message="Thanks for all the fish."))
        session.close()

    async def ping(self, session: FakeSession, action: Message) -> None:
        await session.send(
            make_response(action, "Success", Ping="Pong", Timestamp=f"{time.time():.6f}")
        )

    async def events(self, session: FakeSession, action: Message) -> None:
        mask = _header(action, "EventMask")
        if mask:
            session.events_mask = _normalise_mask(mask)
        state = "Off" if session.events_mask == "off" else "On"
        await session.send(make_response(action, "Success", Events=state))

    # -- Command -----------------------------------------------------------------------

    def cli(self, command: str) -> tuple[bool, str]:
        """``(known, output)`` of a CLI command; output lines end with ``\\n``."""
        words = command.split()
        key = " ".join(word.lower() for word in words)
        text = self.server._cli.get(key)
        if text is not None:
            return True, text if not text or text.endswith("\n") else text + "\n"
        if key == "core show version":
            built = "built by ami_async @ fake-asterisk on a x86_64 running Linux on 2026-01-01"
            return True, f"Asterisk {self.asterisk_version} {built} 00:00:00 UTC\n"
        if key == "core show channels":
            return True, self.cli_channels()
        if key == "core show calls":
            return True, self.cli_calls()
        if key in ("core show uptime", "core show uptime seconds"):
            if key.endswith("seconds"):
                return True, f"System uptime: {self.uptime}\nLast reload: {self.uptime}\n"
            uptime = _uptime_text(self.uptime)
            return True, f"System uptime: {uptime}\nLast reload: {uptime}\n"
        if key.startswith("database show") and len(words) <= 4:
            return True, self.cli_database(words[2:])
        sim = self.server._sim
        if sim is not None and key.startswith("dialplan show") and len(words) <= 3:
            return self.cli_dialplan(sim, words[2] if len(words) == 3 else "")
        if sim is not None and key.startswith("channel request hangup") and len(words) == 4:
            return True, self.cli_hangup(sim, words[3])
        hint = " ".join(words[:2])
        return False, (
            f"No such command '{command}' "
            f"(type 'core show help {hint}' for other possible commands)\n"
        )

    def cli_calls(self) -> str:
        calls, processed = self.active_calls, self.processed_calls
        return (
            f"{calls} of 500 max active call{_plural(calls)} "
            f"({calls / 500 * 100:5.2f}% of capacity)\n"
            f"{processed} call{_plural(processed)} processed\n"
        )

    def cli_channels(self) -> str:
        """``core show channels`` (main/cli.c handle_chanlist), 13 and 22 column widths."""
        fmt = (
            "%-20.20s %-20.20s %-7.7s %-30.30s"
            if self.server.command_format == "legacy"
            else "%-64.64s %-32.32s %-7.7s %-30.30s"
        )
        lines = [fmt % ("Channel", "Location", "State", "Application(Data)")]
        channels = self.channels
        for channel in channels:
            location = (
                f"{channel.exten}@{channel.context}:{channel.priority}"
                if channel.context and channel.exten
                else "(None)"
            )
            app = f"{channel.appl}({channel.data})" if channel.appl else "(None)"
            lines.append(fmt % (channel.name, location, state_text(channel.state), app))
        count = len(channels)
        lines.append(f"{count} active channel{_plural(count)}")
        return "\n".join(lines) + "\n" + self.cli_calls()

    def cli_database(self, args: list[str]) -> str:
        """``database show [family [key]]`` (main/db.c)."""
        prefix = "/" + "/".join(args) if args else ""
        keys = sorted(k for k in self.db if not prefix or k == prefix or k.startswith(prefix + "/"))
        lines = [f"{key:<50}: {self.db[key]:<25}" for key in keys]
        lines.append(f"{len(keys)} results found.")  # always "results" (main/db.c)
        return "\n".join(lines) + "\n"

    def cli_dialplan(self, sim: SimPBX, which: str) -> tuple[bool, str]:
        """``dialplan show [[exten@]context]`` (main/pbx.c show_dialplan_helper)."""
        exten_filter, _, context_filter = which.rpartition("@") if "@" in which else ("", "", which)
        lines: list[str] = []
        extens = priorities = contexts = 0
        for context, extensions in sim.dialplan.contexts.items():
            if context_filter and context != context_filter:
                continue
            shown = [
                (exten, steps)
                for exten, steps in extensions.items()
                if not exten_filter or exten == exten_filter
            ]
            if exten_filter and not shown:
                continue
            contexts += 1
            lines.append(f"[ Context '{context}' created by 'pbx_config' ]")
            for exten, steps in shown:
                extens += 1
                for number, (app, data) in enumerate(steps, 1):
                    priorities += 1
                    label = f"'{exten}' =>" if number == 1 else ""
                    lines.append(f"  {label:<17} {f'{number}. {app}({data})':<45} [pbx_config]")
            lines.append("")
        if not contexts:
            if context_filter:
                return False, f"There is no existence of '{which}' context\n"
            return False, "There are no contexts\n"
        lines.append(
            f"-= {extens} extension{_plural(extens)} ({priorities} "
            f"priorit{'y' if priorities == 1 else 'ies'}) in {contexts} "
            f"context{_plural(contexts)}. =-"
        )
        return True, "\n".join(lines) + "\n"

    def cli_hangup(self, sim: SimPBX, name: str) -> str:
        """``channel request hangup <channel|all>``: an explicit soft hangup (SoftHangupRequest)."""
        targets = (
            self.channels if name.lower() == "all" else [c for c in [sim.find_channel(name)] if c]
        )
        if not targets:
            return f"{name} is not a known channel\n"
        for channel in targets:
            if channel.alive:
                sim.soft_hangup(channel)
        if name.lower() == "all":
            return "Requested Hangup on all channels\n"
        return f"Requested Hangup on channel '{targets[0].name}'\n"

    async def command(self, session: FakeSession, action: Message) -> None:
        command = _header(action, "Command")
        if not command:
            await self.error(session, action, "No command provided")
            return
        known, text = self.cli(command)
        if self.server.command_format == "legacy":
            # Asterisk 13: ActionID third, raw CLI text with bare \n, then the marker.
            head = [("Response", "Follows"), ("Privilege", "Command")]
            if _header(action, "ActionID"):
                head.append(("ActionID", _header(action, "ActionID")))
            body = text.encode("utf-8", "surrogateescape")
            await session.send(_encode_lines(head) + body + _END_COMMAND)
            return
        lines = text[:-1].split("\n") if text else []
        output = [("Message", "Command output follows"), *(("Output", line) for line in lines)]
        await session.send(make_response(action, "Success" if known else "Error", output))

    async def listcommands(self, session: FakeSession, action: Message) -> None:
        lines = [
            (name, _SYNOPSES[name.lower()])
            for name in sorted(_ACTION_NAMES.values(), key=str.lower)
            if name.lower() in self.actions
        ]
        await session.send(make_response(action, "Success", lines))

    # -- events and calls --------------------------------------------------------------

    async def userevent(self, session: FakeSession, action: Message) -> None:
        await self.ok(session, action, "Event Sent")
        body = [(k, v) for k, v in action.headers if k.lower() not in ("action", "userevent")]
        event = [
            ("Event", "UserEvent"),
            ("Privilege", "user,all"),
            ("UserEvent", _header(action, "UserEvent")),
            *body,
        ]
        await self.server._broadcast(event)

    async def originate(self, session: FakeSession, action: Message) -> None:
        channel = _header(action, "Channel")
        if not channel:
            await self.error(session, action, "Channel not specified")
            return
        sim = self.server._sim
        if sim is None:
            await self.originate_without_pbx(session, action, channel)
            return
        # The checks of manager.c action_originate, in its order.
        priority_text = _header(action, "Priority")
        priority = 1
        if priority_text:
            try:
                priority = int(priority_text)
            except ValueError:
                await self.error(session, action, "Invalid priority")
                return
        timeout_text = _header(action, "Timeout")
        timeout_ms = 30000
        if timeout_text:
            try:
                timeout_ms = int(timeout_text)
            except ValueError:
                await self.error(session, action, "Invalid timeout")
                return
        if "/" not in channel:
            await self.error(session, action, "Invalid channel")
            return
        context, exten = _header(action, "Context"), _header(action, "Exten")
        if (
            priority_text
            and context
            and exten
            and not sim.dialplan.exists(context, exten, priority)
        ):
            await self.error(session, action, "Extension does not exist.")
            return
        request = OriginateRequest(
            channel=channel,
            context=context,
            exten=exten,
            priority=priority,
            application=_header(action, "Application"),
            data=_header(action, "Data"),
            variables=_variables(action),
            caller_id=_header(action, "CallerID"),
            account=_header(action, "Account"),
            timeout=max(timeout_ms, 0) / 1000,
            channel_id=_header(action, "ChannelId"),
            other_channel_id=_header(action, "OtherChannelId"),
            action_id=_header(action, "ActionID"),
            response_event=_is_true(_header(action, "Async")),
        )
        if request.response_event:
            await self.ok(session, action, "Originate successfully queued")
            sim.originate(request)
            return
        # A synchronous Originate holds the session until the call is answered or
        # fails; its events wait and follow the Response (originate_sync.bin).
        session._defer_events()
        try:
            result = await sim.originate(request)
            if result.success:
                await self.ok(session, action, "Originate successfully queued")
            else:
                await self.error(session, action, "Originate failed")
        finally:
            session._release_events()

    async def originate_without_pbx(
        self, session: FakeSession, action: Message, channel: str
    ) -> None:
        exten = _header(action, "Exten")
        local = re.match(r"(?i)local/([^@]*)@", channel)
        fails = exten in _FAILING_EXTENS or bool(local and local.group(1) in _FAILING_EXTENS)
        if not fails:
            self.calls += 1
        if not _is_true(_header(action, "Async")):
            # A synchronous Originate answers once the call is up and sends no event.
            if fails:
                await self.error(session, action, "Originate failed")
            else:
                await self.ok(session, action, "Originate successfully queued")
            return
        await self.ok(session, action, "Originate successfully queued")
        await self.server._broadcast(self.originate_response(action, channel, fails))

    def originate_response(
        self, action: Message, channel: str, fails: bool
    ) -> list[tuple[str, str]]:
        """The ``OriginateResponse`` event (asterisk-22/originate_async.bin)."""
        if fails:
            name, uniqueid = channel, "<unknown>"
        else:
            suffix = ";1" if channel.lower().startswith("local/") else ""
            name = f"{channel}-{self.calls:08x}{suffix}"
            uniqueid = _header(action, "ChannelId") or f"{int(self.started)}.{self.calls}"
        event = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
        if _header(action, "ActionID"):
            event.append(("ActionID", _header(action, "ActionID")))
        event += [("Response", "Failure" if fails else "Success"), ("Channel", name)]
        if _header(action, "Application"):
            event += [("Application", _header(action, "Application"))]
            event += [("Data", _header(action, "Data"))]
        else:
            event += [("Context", _header(action, "Context")), ("Exten", _header(action, "Exten"))]
        number, caller = _parse_callerid(_header(action, "CallerID"))
        event += [("Reason", "0" if fails else "4"), ("Uniqueid", uniqueid)]
        event += [("CallerIDNum", number), ("CallerIDName", caller)]
        return event

    async def coreshowchannels(self, session: FakeSession, action: Message) -> None:
        now = self.server._sim.now() if self.server._sim is not None else time.time()
        items = []
        for channel in self.channels:
            seconds = max(0, int(now - channel.created))
            duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            item = [
                ("Event", "CoreShowChannel"),
                *channel.snapshot(),
                ("Application", channel.appl),
                ("ApplicationData", channel.data),
                ("Duration", duration),
                ("BridgeId", channel.bridge_id),
            ]
            items.append(with_action_id(action, item))
        await session.send(
            self.list_start(action, "Channels will follow"),
            *items,
            self.list_complete(action, "CoreShowChannelsComplete", len(items)),
        )

    async def status(self, session: FakeSession, action: Message) -> None:
        name = _header(action, "Channel")
        if name:
            found = self.find(name)
            if found is None:
                await self.error(session, action, "No such channel")
                return
            channels = [found]
        else:
            channels = self.channels
        wanted = [v.strip() for v in _header(action, "Variables").split(",") if v.strip()]
        every = _is_true(_header(action, "AllVariables"))
        items = [self.status_item(action, channel, wanted, every) for channel in channels]
        count = str(len(items))
        await session.send(
            self.list_start(action, "Channel status will follow"),
            *items,
            self.list_complete(action, "StatusComplete", len(items), ("Items", count)),
        )

    def status_item(
        self, action: Message, channel: SimChannel, wanted: list[str], every: bool
    ) -> list[tuple[str, str]]:
        """One ``Status`` event (asterisk-22/status.bin; ``Privilege: Call`` as written)."""
        sim = self.server.pbx
        item = [
            ("Event", "Status"),
            ("Privilege", "Call"),
            *channel.snapshot(),
            ("Type", "Local" if channel.half else "Sim"),
            ("DNID", ""),
            ("EffectiveConnectedLineNum", channel.connected_num or "<unknown>"),
            ("EffectiveConnectedLineName", channel.connected_name or "<unknown>"),
            ("TimeToHangup", "0"),
            ("BridgeID", channel.bridge_id),
            ("Application", channel.appl),
            ("Data", channel.data),
            ("Nativeformats", "(slin)"),
            ("Readformat", "slin"),
            ("Readtrans", ""),
            ("Writeformat", "slin"),
            ("Writetrans", ""),
            ("Callgroup", "0"),
            ("Pickupgroup", "0"),
            ("Seconds", str(max(0, int(sim.now() - channel.created)))),
        ]
        for variable in wanted:
            value = sim.get_variable(channel, variable)
            # An unset variable prints as "(null)" (status.bin: Variable: FOO=(null)).
            item.append(("Variable", f"{variable}={'(null)' if value is None else value}"))
        if every:
            item += [("Variable", f"{k}={v}") for k, v in channel.variables.items()]
        return self.action_id_last(action, item)

    async def hangup(self, session: FakeSession, action: Message) -> None:
        name = _header(action, "Channel")
        if not name:
            await self.error(session, action, "No channel specified")
            return
        sim = self.server._sim
        cause_text = _header(action, "Cause")
        cause = 0
        if cause_text:
            # manager.c: an invalid cause hangs up all the same, without a cause.
            with contextlib.suppress(ValueError):
                cause = int(cause_text)
            cause = cause if 0 <= cause <= 127 else 0
        if len(name) > 1 and name.startswith("/") and name.endswith("/"):
            await self.hangup_matching(session, action, name[1:-1], cause)
            return
        channel = self.find(name)
        if sim is None or channel is None:
            await self.error(session, action, "No such channel")
            return
        await self.ok(session, action, "Channel Hungup")
        sim.hangup(channel, cause or _NORMAL_CLEARING)

    async def hangup_matching(
        self, session: FakeSession, action: Message, pattern: str, cause: int
    ) -> None:
        """``Channel: /regex/``: hang up every match, listed as ChannelHungup events."""
        try:
            regex = re.compile(pattern)
        except re.error:
            await self.error(session, action, f"Regex compile failed on: {pattern}")
            return
        matches = [c for c in self.channels if regex.search(c.name)]
        items = [
            self.action_id_last(action, [("Event", "ChannelHungup"), ("Channel", c.name)])
            for c in matches
        ]
        await session.send(
            self.list_start(action, "Channels hung up will follow"),
            *items,
            self.list_complete(action, "ChannelsHungupListComplete", len(items)),
        )
        for channel in matches:
            self.server.pbx.hangup(channel, cause or _NORMAL_CLEARING)

    async def redirect(self, session: FakeSession, action: Message) -> None:
        """Redirect (manager.c action_redirect): its checks and texts, then ast_async_goto."""
        name, extra = _header(action, "Channel"), _header(action, "ExtraChannel")
        context, exten = _header(action, "Context"), _header(action, "Exten")
        priority_text = _header(action, "Priority")
        for value, missing in (
            (name, "Channel not specified"),
            (context, "Context not specified"),
            (exten, "Exten not specified"),
            (priority_text, "Priority not specified"),
        ):
            if not value:
                await self.error(session, action, missing)
                return
        try:
            priority = int(priority_text)
        except ValueError:
            priority = 0
        if priority < 1:
            await self.error(session, action, "Priority is invalid")
            return
        channel = self.find(name)
        if channel is None:
            await self.error(session, action, f"Channel does not exist: {name}")
            return
        other = self.find(extra) if extra else None
        if extra and other is None:
            await self.error(session, action, f"ExtraChannel does not exist: {extra}")
            return
        sim = self.server.pbx
        if other is None:
            await self.ok(session, action, "Redirect successful")
            sim.redirect(channel, context, exten, priority)
            return
        await self.ok(session, action, "Dual Redirect successful")
        sim.redirect(channel, context, exten, priority)
        sim.redirect(
            other,
            _header(action, "ExtraContext") or context,
            _header(action, "ExtraExten") or exten,
            int(_header(action, "ExtraPriority") or priority),
        )

    # -- queues ----------------------------------------------------------------------

    def queues(self, action: Message) -> list[SimQueue]:
        sim = self.server._sim
        if sim is None:
            return []
        name = _header(action, "Queue")
        return [q for q in sim.queues.values() if not name or q.name == name]

    async def queuestatus(self, session: FakeSession, action: Message) -> None:
        """QueueStatus (app_queue.c manager_queues_status; queue.bin): params, members, callers."""
        now = self.server.pbx.now() if self.server._sim is not None else time.time()
        items: list[list[tuple[str, str]]] = []
        for queue in self.queues(action):
            items.append(self.action_id_last(action, _queue_params(queue)))
            for member in queue.members:
                items.append(self.action_id_last(action, _queue_member(queue, member)))
            for position, caller in enumerate(queue.callers, 1):
                waited = int(now - queue.joined.get(caller, now))
                entry = _queue_entry(queue, position, caller, waited)
                items.append(self.action_id_last(action, entry))
        await session.send(
            self.list_start(action, "Queue status will follow"),
            *items,
            self.list_complete(action, "QueueStatusComplete", len(items)),
        )

    async def queuesummary(self, session: FakeSession, action: Message) -> None:
        """QueueSummary (queue.bin); an unknown queue gives an empty list."""
        now = self.server.pbx.now() if self.server._sim is not None else time.time()
        items = []
        for queue in self.queues(action):
            logged_in = [m for m in queue.members if m.status not in (4, 5)]  # INVALID, UNAVAIL.
            available = [m for m in logged_in if not m.paused and m.status == 1]  # NOT_INUSE
            longest = max((int(now - t) for t in queue.joined.values()), default=0)
            summary = [
                ("Event", "QueueSummary"),
                ("Queue", queue.name),
                ("LoggedIn", str(len(logged_in))),
                ("Available", str(len(available))),
                ("Callers", str(len(queue.callers))),
                ("HoldTime", str(queue.holdtime)),
                ("TalkTime", str(queue.talktime)),
                ("LongestHoldTime", str(longest)),
            ]
            items.append(self.action_id_last(action, summary))
        await session.send(
            self.list_start(action, "Queue summary will follow"),
            *items,
            self.list_complete(action, "QueueSummaryComplete", len(items)),
        )

    # -- AstDB -----------------------------------------------------------------------

    async def dbput(self, session: FakeSession, action: Message) -> None:
        family, key = _header(action, "Family"), _header(action, "Key")
        if not family:
            await self.error(session, action, "No family specified")
        elif not key:
            await self.error(session, action, "No key specified")
        else:
            self.db[f"/{family}/{key}"] = _header(action, "Val")
            await self.ok(session, action, "Updated database successfully")

    async def dbget(self, session: FakeSession, action: Message) -> None:
        family, key = _header(action, "Family"), _header(action, "Key")
        if not family:
            await self.error(session, action, "No family specified.")
            return
        if not key:
            await self.error(session, action, "No key specified.")
            return
        value = self.db.get(f"/{family}/{key}")
        if value is None:
            await self.error(session, action, "Database entry not found")
            return
        # DBGetResponse carries its ActionID last (main/db.c).
        item = [("Event", "DBGetResponse"), ("Family", family), ("Key", key), ("Val", value)]
        if _header(action, "ActionID"):
            item.append(("ActionID", _header(action, "ActionID")))
        await session.send(
            self.list_start(action, "Result will follow"),
            item,
            self.list_complete(action, "DBGetComplete", 1),
        )

    def tree(self, family: str, key: str) -> list[str]:
        prefix = f"/{family}/{key}" if key else f"/{family}"
        return sorted(k for k in self.db if k == prefix or k.startswith(prefix + "/"))

    async def dbgettree(self, session: FakeSession, action: Message) -> None:
        family = _header(action, "Family")
        if not family:
            await self.error(session, action, "No family specified.")
            return
        keys = self.tree(family, _header(action, "Key"))
        if not keys:
            await self.error(session, action, "Database entry not found")
            return
        action_id = _header(action, "ActionID")
        items = [
            [("Event", "DBGetTreeResponse"), ("Key", k), ("Val", self.db[k])]
            + ([("ActionID", action_id)] if action_id else [])
            for k in keys
        ]
        await session.send(
            self.list_start(action, "Result will follow"),
            *items,
            self.list_complete(action, "DBGetTreeComplete", len(items)),
        )

    async def dbdel(self, session: FakeSession, action: Message) -> None:
        family, key = _header(action, "Family"), _header(action, "Key")
        if not family:
            await self.error(session, action, "No family specified.")
        elif not key:
            await self.error(session, action, "No key specified.")
        elif self.db.pop(f"/{family}/{key}", None) is None:
            await self.error(session, action, "Database entry could not be deleted")
        else:
            await self.ok(session, action, "Key deleted successfully")

    async def dbdeltree(self, session: FakeSession, action: Message) -> None:
        family = _header(action, "Family")
        if not family:
            await self.error(session, action, "No family specified.")
            return
        keys = self.tree(family, _header(action, "Key"))
        for k in keys:
            del self.db[k]
        if keys:
            await self.ok(session, action, "Key tree deleted successfully")
        else:
            await self.error(session, action, "Database entry not found")

    # -- variables -------------------------------------------------------------------

    async def getvar(self, session: FakeSession, action: Message) -> None:
        variable = _header(action, "Variable")
        if not variable:
            await self.error(session, action, "No variable specified")
            return
        name = _header(action, "Channel")
        channel = self.find(name)
        if name and channel is None:
            await self.error(session, action, "No such channel")
            return
        sim = self.server._sim
        if sim is not None:
            value = sim.get_variable(channel, variable) or ""
        else:
            value = self.variables.get(variable, "")
        await session.send(make_response(action, "Success", Variable=variable, Value=value))

    async def setvar(self, session: FakeSession, action: Message) -> None:
        variable = _header(action, "Variable")
        if not variable:
            await self.error(session, action, "No variable specified")
            return
        name = _header(action, "Channel")
        channel = self.find(name)
        if name and channel is None:
            await self.error(session, action, "No such channel")
            return
        value = _header(action, "Value")
        await self.ok(session, action, "Variable Set")
        sim = self.server._sim
        if sim is not None:
            sim.set_variable(channel, variable, value)
            return
        self.variables[variable] = value
        event = [
            ("Event", "VarSet"),
            ("Privilege", "dialplan,all"),
            ("Channel", "none"),
            ("Uniqueid", "none"),
            ("Variable", variable),
            ("Value", value),
        ]
        await self.server._broadcast(event)

    # -- misc ------------------------------------------------------------------------

    async def filter(self, session: FakeSession, action: Message) -> None:
        # Accepted, not applied: the fake does not filter events.
        if _header(action, "Operation").lower() != "add":
            await self.error(session, action, "Unknown operation")
        else:
            await self.ok(session, action, "Success")

    async def coresettings(self, session: FakeSession, action: Message) -> None:
        settings = [
            ("AMIversion", self.server.version),
            ("AsteriskVersion", self.asterisk_version),
            ("SystemName", ""),
            ("CoreMaxCalls", "500"),
            ("CoreMaxLoadAvg", "0.000000"),
            ("CoreRunUser", ""),
            ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"),
            ("CoreRealTimeEnabled", "No"),
            ("CoreCDRenabled", "Yes"),
            ("CoreHTTPenabled", "No"),
            ("SoundsSearchCustomDir", "No"),
        ]
        await session.send(make_response(action, "Success", settings))

    async def corestatus(self, session: FakeSession, action: Message) -> None:
        started = time.localtime(self.started)
        date, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
        status = [
            ("CoreStartupDate", date),
            ("CoreStartupTime", clock),
            ("CoreReloadDate", date),
            ("CoreReloadTime", clock),
            ("CoreCurrentCalls", str(self.active_calls)),
            ("CoreProcessedCalls", str(self.processed_calls)),
        ]
        await session.send(make_response(action, "Success", status))


def _queue_params(queue: SimQueue) -> list[tuple[str, str]]:
    return [
        ("Event", "QueueParams"),
        ("Queue", queue.name),
        ("Max", str(queue.max_callers)),
        ("Strategy", queue.strategy),
        ("Calls", str(len(queue.callers))),
        ("Holdtime", str(queue.holdtime)),
        ("TalkTime", str(queue.talktime)),
        ("Completed", str(queue.completed)),
        ("Abandoned", str(queue.abandoned)),
        ("ServiceLevel", str(queue.service_level)),
        ("ServicelevelPerf", "0.0"),
        ("ServicelevelPerf2", "0.0"),
        ("Weight", str(queue.weight)),
    ]


def _queue_member(queue: SimQueue, member: SimQueueMember) -> list[tuple[str, str]]:
    return [
        ("Event", "QueueMember"),
        ("Queue", queue.name),
        ("Name", member.name),
        ("Location", member.interface),
        ("StateInterface", member.state_interface),
        ("Membership", member.membership),
        ("Penalty", str(member.penalty)),
        ("CallsTaken", str(member.calls_taken)),
        ("LastCall", str(member.last_call)),
        ("LastPause", str(member.last_pause)),
        ("LoginTime", str(member.login_time)),
        ("InCall", "1" if member.in_call else "0"),
        ("Status", str(member.status)),
        ("Paused", "1" if member.paused else "0"),
        ("PausedReason", member.paused_reason),
        ("Wrapuptime", str(member.wrapuptime)),
    ]


def _queue_entry(
    queue: SimQueue, position: int, caller: SimChannel, waited: int
) -> list[tuple[str, str]]:
    # QueueEntry writes a missing caller ID as "unknown", without the angle brackets.
    return [
        ("Event", "QueueEntry"),
        ("Queue", queue.name),
        ("Position", str(position)),
        ("Channel", caller.name),
        ("Uniqueid", caller.uniqueid),
        ("CallerIDNum", caller.caller_num or "unknown"),
        ("CallerIDName", caller.caller_name or "unknown"),
        ("ConnectedLineNum", caller.connected_num or "unknown"),
        ("ConnectedLineName", caller.connected_name or "unknown"),
        ("Wait", str(waited)),
        ("Priority", "0"),
    ]
