"""`FakeAsterisk`: the in-process AMI server (listening, sessions, dispatch, fault injection)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import os
import ssl as _ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from .._compat import timeout as _timeout
from ..message import Message
from ._actions import _privilege
from ._call_actions import _Builtins
from ._pbx import SimPBX
from ._replay import _ReplayState, _Transcript, _transcript_from_ami, _transcript_from_bin
from ._session import ActionHandler, FakeSession
from ._users import LAB_USERS, FakeUser, _may_write
from ._wire import (
    _PRE_AUTH_ACTIONS,
    Reply,
    _encode_message,
    _header,
    _messages,
    _normalise_mask,
    _pairs,
    make_response,
    with_action_id,
)

logger = logging.getLogger("ami_async.testing")

# How long closing waits for output a client has not read yet (then the socket is aborted).
_CLOSE_GRACE = 1.0


async def _stop_accepting(server: asyncio.Server) -> None:
    """Stop accepting, then let connections already accepted get their transport.

    ``Server.close()`` right after the loop accepted a socket but before it made
    its transport leaves that socket open and unserved (CPython 3.10 to 3.13): the
    client gets neither banner nor close. With the listening socket no longer read,
    two loop iterations let those transports be made (and their sessions refused);
    connections still in the backlog are reset when ``close()`` closes the socket.
    """
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        with contextlib.suppress(NotImplementedError):  # loops without add_reader
            loop.remove_reader(sock.fileno())
    for _ in range(2):
        await asyncio.sleep(0)


# -- the server -------------------------------------------------------------------------


class FakeAsterisk:
    """An in-process AMI server on ``host:port`` (port 0: a free port, see ``.port``).

    ``banner`` overrides the whole banner line (``""`` sends none);
    ``command_format="legacy"`` answers Command like Asterisk 13 (``Response:
    Follows`` ... ``--END COMMAND--``); ``auth_failure_delay`` is the pause before
    ``Authentication failed`` (Asterisk sleeps 1 s); ``fully_booted`` sends
    ``Event: FullyBooted`` after a login whose event mask includes ``system``,
    and every login sends a ``SuccessfulAuth`` security event, as Asterisk does.

    ``users`` maps user names to secrets or to `FakeUser` entries (read and write
    classes, event filter, ``allow_multiple_login``); by default they are the
    users of the lab the fixtures were recorded on (``admin``/``amp111`` first,
    ``monitor``, ``filtered``, ``filtered_legacy``, ``callonly``, ``single``).
    ``broken_events_action`` plays manager.conf ``brokeneventsaction = yes``.
    A ``version`` below 4.0.0 (Asterisk 13's AMI is 2.10.6) or
    ``command_format="legacy"`` gives Asterisk 13's texts where the fake knows them.

    ``pbx`` (default True) runs the simulated PBX (`pbx`) behind the
    actions; ``time_scale`` is real seconds per simulated second (``0.05``:
    ``Wait(1)`` lasts 50 ms); ``cel=False`` / ``cdr=False`` leave out the CEL /
    Cdr events, which a real Asterisk with cel_manager and cdr_manager sends.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Mapping[str, str | FakeUser] | None = None,
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
        broken_events_action: bool = False,
    ) -> None:
        if command_format not in ("modern", "legacy"):
            raise ValueError(f"command_format must be 'modern' or 'legacy': {command_format!r}")
        self.host = host
        """The bound address once started."""
        self.port = port
        """The bound port once started (``port=0`` picks a free one)."""
        given = dict(users) if users is not None else dict(LAB_USERS)
        self.accounts: dict[str, FakeUser] = {
            name: user if isinstance(user, FakeUser) else FakeUser(user)
            for name, user in given.items()
        }
        """Each user's manager.conf entry (`FakeUser`: read/write classes, multiple logins)."""
        self.users: dict[str, str] = {name: user.secret for name, user in self.accounts.items()}
        """``{username: secret}`` accepted by Login (plain and MD5); the first is the one
        the pytest plugin and the CLI use."""
        self.broken_events_action = broken_events_action
        """manager.conf ``brokeneventsaction = yes``: ``Events`` with an all-events mask or
        with no valid mask gets no answer at all (broken_events_action.bin)."""
        self._booting = False
        self._boot_task: asyncio.Task[None] | None = None
        self.version = version
        self.command_format: Literal["modern", "legacy"] = command_format
        self.auth_failure_delay = auth_failure_delay
        self.fully_booted = fully_booted
        self.ssl = ssl
        self.sessions: list[FakeSession] = []
        """Open sessions, most recent last."""
        self.actions: list[Message] = []
        """Every frame received by any session, in order (a log for assertions)."""
        self._banner = banner
        self._server: asyncio.Server | None = None
        # Bumped whenever listening stops: a connection accepted by an older server is
        # aborted when its session would start (it raced close() or restart()).
        self._generation = 0
        self._closed = False
        self._restart_lock = asyncio.Lock()
        self._wake_restart: asyncio.Event | None = None
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
        self._closed = False
        self._builtins.started = time.time()
        await self._listen()
        assert self._server is not None
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        """Close every session (after its pending output) and stop listening.

        Output a client does not read is given up after a second. A `restart` in
        progress ends without listening again.
        """
        self._closed = True
        if self._wake_restart is not None:
            self._wake_restart.set()
        boot, self._boot_task = self._boot_task, None
        if boot is not None:
            boot.cancel()
            await asyncio.gather(boot, return_exceptions=True)
        if self._sim is not None:
            await self._sim.close()
        await self._stop_listening()

    async def _listen(self) -> None:
        accept = functools.partial(self._on_connect, generation=self._generation)
        self._server = await asyncio.start_server(accept, self.host, self.port, ssl=self.ssl)

    async def _stop_listening(self) -> None:
        """Stop the server and end every session, their tasks included."""
        self._generation += 1
        server, self._server = self._server, None
        if server is not None:
            await _stop_accepting(server)
            server.close()
        sessions = list(self.sessions)
        for session in sessions:
            session._held.clear()
            session._close_now()
        await self._cancel_tasks(sessions)
        # Pending output gets a second (together), as a client that stopped reading
        # would otherwise hold close() and restart() forever.
        with contextlib.suppress(asyncio.TimeoutError):
            async with _timeout(_CLOSE_GRACE):
                await asyncio.gather(
                    *(s._writer.wait_closed() for s in sessions), return_exceptions=True
                )
        for session in sessions:
            session._writer.transport.abort()
        if server is not None:
            abort_clients = getattr(server, "abort_clients", None)
            if abort_clients is not None:  # 3.13: a connection no session was made for
                abort_clients()
            with contextlib.suppress(asyncio.TimeoutError):
                async with _timeout(_CLOSE_GRACE):
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
        None, or return a `Reply`; it echoes the ActionID itself (use
        `make_response` / `with_action_id`). Actions of one session are
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

    async def restart(self, *, down: float = 0.2, boot: float = 0.08) -> None:
        """Restart like `core restart now` does (the restart_* captures), then listen again.

        Live calls end first (`SoftHangupRequest` Cause 4, then their `Hangup`);
        every logged-in session whose classes allow `system` gets `Shutdown`
        (`Shutdown: Cleanly`, `Restart: True`), and every connection closes with
        no Goodbye. For `down` seconds nothing listens (connecting is refused);
        then the server listens on the same port, its uptime back at 0. A Login
        in the first `boot` seconds is accepted without `FullyBooted`, which
        every logged-in session gets on its own when the boot ends. Returns once
        the server listens again; the simulated PBX keeps its dialplan and queues.

        A `close` meanwhile ends it without listening again; a second `restart`
        meanwhile restarts once more after this one.
        """
        if self._server is None and not self._restart_lock.locked():
            raise RuntimeError("FakeAsterisk is not started")
        async with self._restart_lock:  # concurrent restarts run one after the other
            if self._closed:
                return
            await self._restart(down, boot)

    async def _restart(self, down: float, boot: float) -> None:
        wake = self._wake_restart = asyncio.Event()  # set by close()
        try:
            await self._go_down(down, wake)
        finally:
            self._wake_restart = None
        if self._closed:
            return
        self._builtins.started = time.time()
        self._booting = boot > 0
        await self._listen()
        if self._closed:  # close() ran while binding
            await self._stop_listening()
            return
        if self._booting:
            self._boot_task = asyncio.get_running_loop().create_task(self._finish_boot(boot))

    async def _go_down(self, down: float, wake: asyncio.Event) -> None:
        if self._boot_task is not None:
            self._boot_task.cancel()
            self._boot_task = None
        if self._sim is not None:
            self._sim.shut_down()
        shutdown = [("Event", "Shutdown"), ("Privilege", "system,all")]
        shutdown += [("Shutdown", "Cleanly"), ("Restart", "True")]
        # Written, not drained: closing below gives unread output the same second close() does.
        self._publish(shutdown)
        await self._stop_listening()
        with contextlib.suppress(asyncio.TimeoutError):
            async with _timeout(down):
                await wake.wait()

    async def _finish_boot(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._booting = False
        self._boot_task = None
        if self.fully_booted:
            await self._broadcast(self._builtins.fully_booted(at_login=False))

    def stall(self) -> None:
        """Keep reading and handling actions, but hold all output until `resume`.

        Answers, events, raw bytes, closes, and the banner of a connection made
        meanwhile are all held, in order, per session.
        """
        self._stalled = True

    def resume(self) -> None:
        """Send everything held since `stall`, in order, and stop holding."""
        self._stalled = False
        for session in list(self.sessions):
            session._flush()

    async def wait_for_action(self, name: str, timeout: float = 5.0) -> Message:
        """The oldest action ``name`` (any case) received and not yet returned by this call.

        Waits for it if needed; raises `TimeoutError` after ``timeout`` seconds
        (a finite number, at least 0, else `ValueError`).
        """
        if not (math.isfinite(timeout) and timeout >= 0):
            raise ValueError(f"timeout must be a finite number of seconds >= 0: {timeout!r}")
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
            # Not asyncio.wait_for: on 3.10 and 3.11 it can swallow a cancel.
            async with _timeout(timeout):
                return await wait()
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

    async def _on_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, generation: int
    ) -> None:
        if generation != self._generation or self._closed:
            # Accepted while close() or restart() stopped listening: refused, never served.
            writer.transport.abort()
            return
        session = FakeSession(self, reader, writer, self._transcript)
        session._task = asyncio.current_task()
        self.sessions.append(session)
        try:
            await session._serve()
        except asyncio.CancelledError:
            # Only asyncio's server holds this task and nobody awaits it: a cancel
            # (close(), drop(), asyncio.run ending) just ends the session. Ending
            # cancelled instead would reach the loop's exception handler as a
            # traceback on CPython 3.11 and 3.12, whose streams call task.exception().
            return

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
        targets = [s for s in self.sessions if s.authenticated and s._receives(event)]
        for session in targets:
            session._write_event(data)
        for session in targets:
            await session._drain()

    def _publish(self, event: list[tuple[str, str]]) -> None:
        """The simulated PBX's event sink: written at once, in order, to every listener."""
        data = _encode_message(event)
        for session in self.sessions:
            if session.authenticated and session._receives(event):
                session._write_event(data)

    async def _send_event(self, session: FakeSession, event: Sequence[tuple[str, str]]) -> None:
        """An event for `session` alone (`FullyBooted` at login: event filters do not apply)."""
        if session._receives(event, filtered=False):
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
        if (not session.authenticated and key not in _PRE_AUTH_ACTIONS) or (
            session.account is not None and not _may_write(session.account, _privilege(key))
        ):
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
                username = _header(frame, "Username")
                session._log_in(username, self.accounts.get(username, FakeUser("")))
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
