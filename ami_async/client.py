"""The AMI client: connect, log in, send actions, subscribe to events, stay connected.

`Client` composes `AMIProtocol` (bytes, `ami_async.connection`), the
`Dispatcher` (routing, `ami_async.dispatch`), the sending machinery
(`ami_async._sending`), the keepalive (`ami_async._keepalive`) and the
helpers of `ami_async.actions.ActionsMixin`. It owns every task it starts
(keepalive, reconnect, async handlers, hooks) and ``close()`` ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import logging
import ssl as _ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from ._action_sessions import ActionSessions
from ._deadlines import Deadlines
from ._keepalive import Keepalive
from ._login import LoginMixin, is_credential_refusal
from ._options import OPTIONS, backoff, check_option, check_options, event_mask, seconds
from ._subscribing import SubscriberMixin
from ._tagging import TaggingDispatcher
from .actions import ActionsMixin
from .connection import AMIProtocol
from .dispatch import (
    LIST_COMPLETIONS,
    Pending,
)
from .errors import (
    AMIConnectionError,
    AMIError,
    AuthenticationError,
    ConnectionLostError,
)
from .message import Event
from .protocol import DEFAULT_MAX_FRAME_SIZE

if TYPE_CHECKING:
    from .catalogue._actions import Actions

__all__ = ["Client", "connect"]

logger = logging.getLogger("ami_async")

#: Seconds `Client.close` waits for the tasks it cancelled (handlers, hooks)
#: before leaving the stubborn ones behind with a WARNING naming them.
CLOSE_GRACE: Final = 2.0

ConnectHook = Callable[["Client"], "Awaitable[None] | None"]
DisconnectHook = Callable[["Client", "BaseException | None"], "Awaitable[None] | None"]

_H = Callable[[Event], Any]


class Client(SubscriberMixin, LoginMixin, ActionsMixin):
    """An AMI client. Use ``async with ami_async.connect(...)`` or ``await client.connect()``.

    Timeouts are in seconds. ``timeout`` bounds one whole connection attempt
    (TCP, TLS, banner, login, waiting for ``FullyBooted``); ``action_timeout`` is
    the default for every action. ``reconnect`` keeps the client connected
    through server restarts and dead links, waiting between half and all of
    ``min(reconnect_max_delay, reconnect_delay * 2**n)`` before attempt ``n``.
    ``ping_interval`` (``None``: no keepalive) is the silence after which a
    keepalive Ping is sent; nothing at all received within ``ping_timeout`` of
    it marks the link dead. A value that would harm the client raises
    `ValueError`, at construction and when set on a running client: every time
    must be a finite number, and ``ping_interval`` and ``ping_timeout`` at least
    0.05 s, ``reconnect_delay`` and ``reconnect_max_delay`` at least 0.001 s,
    ``max_frame_size`` at least 64 bytes.

    ``name`` (default ``"host:port"``) is what every event this client
    receives carries as `Event.server`, and the key of a `Fleet` member.

    ``action_sessions`` (default 0) opens that many more sessions, events off,
    for the actions that block Asterisk's session (a synchronous ``Originate``,
    ``Command``, ``Reload``..., or ``send_action(..., blocking=True)``): each
    goes to the session with the fewest actions in flight, and every other
    action (lists too) stays on the main session. They log in, reconnect and
    keep alive like the main one; while none is up those actions run on the
    main session, and one in flight on a session whose link is lost fails with
    `ConnectionLostError`. `connect` returns once their first attempts are
    over (within ``timeout``); `close` closes them.
    """

    list_completions: dict[str, str]
    """Lower-case action name -> the event that ends its list, for servers that
    send no ``EventList:`` markers (Asterisk 11 and older). Add to it as needed."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5038,
        *,
        username: str,
        secret: str,
        auth: Literal["plain", "md5"] = "plain",
        ssl: _ssl.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        events: bool | str = True,
        timeout: float = 10.0,
        action_timeout: float = 30.0,
        reconnect: bool = True,
        reconnect_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        reconnect_max_attempts: int | None = None,
        max_auth_failures: int = 3,
        ping_interval: float | None = 20.0,
        ping_timeout: float = 5.0,
        boot_timeout: float = 5.0,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        event_queue_size: int = 10_000,
        trace: bool = False,
        strict: bool = False,
        on_connect: ConnectHook | None = None,
        on_disconnect: DisconnectHook | None = None,
        name: str | None = None,
        action_sessions: int = 0,
    ) -> None:
        if auth not in ("plain", "md5"):
            raise ValueError(f"auth must be 'plain' or 'md5', not {auth!r}")
        check_options(
            timeout=timeout,
            action_timeout=action_timeout,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
            reconnect_max_attempts=reconnect_max_attempts,
            max_auth_failures=max_auth_failures,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            boot_timeout=boot_timeout,
            max_frame_size=max_frame_size,
            event_queue_size=event_queue_size,
            action_sessions=action_sessions,
        )
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.auth = auth
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._event_mask = event_mask(events)
        self.timeout = timeout
        self.action_timeout = action_timeout
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.reconnect_max_attempts = reconnect_max_attempts
        self.max_auth_failures = max_auth_failures
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.boot_timeout = boot_timeout
        self.max_frame_size = max_frame_size
        self.event_queue_size = event_queue_size
        self.trace = trace
        self.strict = strict
        self.list_completions = dict(LIST_COMPLETIONS)
        self._connect_hooks: list[ConnectHook] = [on_connect] if on_connect else []
        self._disconnect_hooks: list[DisconnectHook] = [on_disconnect] if on_disconnect else []
        self._filters: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dispatcher = self._tagger = TaggingDispatcher(self._spawn)
        self.name = f"{host}:{port}" if name is None else name
        self._protocol: AMIProtocol | None = None
        self._ready = False
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self._shut = False
        self._spare: asyncio.Task[Any] | None = None
        self._open_lock = asyncio.Lock()
        # Whether this user has been sent FullyBooted (it needs the system class).
        self._saw_fully_booted = False
        self._failure: BaseException | None = None
        self._state_waiters: set[asyncio.Future[None]] = set()
        self._watch = Keepalive(
            ping_interval or 1.0, ping_timeout, self._send_ping, self._dispatcher.discard
        )
        self._keepalive: asyncio.Task[None] | None = None
        # One timer for the deadlines of all the actions in flight (ami_async._deadlines).
        self._deadlines = Deadlines(self._expire)
        self._sessions = ActionSessions(self, action_sessions) if action_sessions else None
        self._reconnector: asyncio.Task[None] | None = None
        self._id_prefix = ""
        # Structured logging: every record about this client carries its server.
        self._log_extra = {"ami_host": f"{host}:{port}"}
        self._counter = itertools.count(1)
        self._ami_version: str | None = None
        self._asterisk_version: str | None = None
        self._version_asked = False
        self._version_asking = None  # a CoreSettings in flight (fetch_asterisk_version)
        # The catalogue check of send_action (ami_async.catalogue._validate).
        self._action_checks: dict[str, tuple[str, ...] | str] = {}
        self._action_warned: set[str] = set()
        self._actions: Actions | None = None
        self._banner: str | None = None
        self._reconnects = 0

    @property
    def name(self) -> str:
        """`Event.server` of the events this client receives (default ``"host:port"``)."""
        return self._tagger.server

    @name.setter
    def name(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"name must be a str, not {type(value).__name__}")
        self._tagger.server = value

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closed else "disconnected"
        return f"<Client {self.username}@{self.host}:{self.port} {state}>"

    # -- state ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while logged in on a live link."""
        return self._ready and self._protocol is not None and not self._protocol.closed

    @property
    def closed(self) -> bool:
        """True once `close` was called or reconnecting gave up."""
        return self._closed

    @property
    def ami_version(self) -> str | None:
        """The AMI version of the server's banner (``"11.0.0"``), once connected;
        ``None`` before, or when the banner carries no version."""
        return self._ami_version

    @property
    def asterisk_version(self) -> str | None:
        """The server's Asterisk version (``"22.5.0"``, the ``AsteriskVersion`` of
        ``CoreSettings``) once `fetch_asterisk_version` asked it on this connection
        (the first `actions` call does); ``None`` before, or when the user may not
        run ``CoreSettings``. Meanwhile the catalogue checks go by the banner's AMI
        version (``11.0.0`` is Asterisk 22)."""
        return self._asterisk_version

    @property
    def actions(self) -> Actions:
        """Every AMI action as a typed coroutine: ``await ami.actions.queue_add(queue=...)``.

        See `ami_async.catalogue`; an action the server's version does not
        document raises `InvalidActionError` before anything is sent."""
        if self._actions is None:
            from .catalogue._actions import Actions

            self._actions = Actions(self)
        return self._actions

    @property
    def banner(self) -> str | None:
        """The server's whole banner line (``"Asterisk Call Manager/11.0.0"``), once connected."""
        return self._banner

    @property
    def reconnects(self) -> int:
        """How many times the client reconnected by itself after losing the link."""
        return self._reconnects

    @property
    def action_sessions(self) -> int:
        """How many action sessions the client keeps (``action_sessions=``), up or not."""
        return 0 if self._sessions is None else self._sessions.count

    @property
    def pending_actions(self) -> int:
        """Actions sent and not yet answered."""
        return len(self._dispatcher.pending)

    def add_connect_hook(self, hook: ConnectHook) -> None:
        """Call ``hook(client)`` (sync or async) after every successful (re)connection."""
        self._connect_hooks.append(hook)

    def add_disconnect_hook(self, hook: DisconnectHook) -> None:
        """Call ``hook(client, cause)`` when the link is lost or a reconnect login is refused."""
        self._disconnect_hooks.append(hook)

    def remove_connect_hook(self, hook: ConnectHook) -> None:
        """Stop calling ``hook`` after connections; a hook not registered is ignored.

        What builds on a client (``Live``, ``AsyncAGI``...) removes its hooks when it closes,
        so a closed helper leaves nothing behind on a long-lived client.
        """
        with contextlib.suppress(ValueError):
            self._connect_hooks.remove(hook)

    def remove_disconnect_hook(self, hook: DisconnectHook) -> None:
        """Stop calling ``hook`` when the link is lost; a hook not registered is ignored."""
        with contextlib.suppress(ValueError):
            self._disconnect_hooks.remove(hook)

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once connected; raise if the client is closed or gave up.

        ``TimeoutError`` after ``timeout`` seconds (default: the connect timeout;
        ``0`` checks without waiting).
        """
        deadline = self.timeout if timeout is None else seconds("timeout", timeout, zero=True)
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline
        while not self.connected:
            self._raise_if_done()
            left = end - loop.time()
            if left <= 0:
                raise TimeoutError(f"not connected within {deadline} s")
            waiter = loop.create_future()
            self._state_waiters.add(waiter)
            try:
                # asyncio.wait: a cancel landing with the timeout stays a cancel (3.10 too).
                await asyncio.wait((waiter,), timeout=left)
            finally:
                self._state_waiters.discard(waiter)  # timed out or cancelled too

    def _raise_if_done(self) -> None:
        failure = self._failure
        if failure is not None:
            # A fresh exception each time, chained to the stored one: raising the
            # stored object itself would grow its traceback on every call.
            try:
                fresh = copy.copy(failure)
            except Exception:  # an exception type copy cannot rebuild
                fresh = AMIConnectionError(f"the client gave up: {failure}")
            fresh.__traceback__ = None
            raise fresh from failure
        if self._closed:
            raise AMIConnectionError("the client is closed")

    def _wake_state_waiters(self) -> None:
        waiters, self._state_waiters = self._state_waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in OPTIONS:
            check_option(name, value)  # a running client is as safe as a new one
        super().__setattr__(name, value)

    # -- tasks -----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connecting --------------------------------------------------------------------

    async def connect(self) -> Client:
        """Connect and log in (raises `AMIConnectionError` or `AuthenticationError`).

        While the client is reconnecting by itself, this waits for that instead
        of opening a second session.
        """
        if self._closed:
            self._raise_if_done()
        if self.connected:
            return self
        if self._reconnector is not None and not self._reconnector.done():
            try:
                await self.wait_connected(timeout=self.timeout)
            except TimeoutError:
                raise AMIConnectionError(
                    f"still reconnecting to {self.host}:{self.port} after {self.timeout} s"
                ) from None
            return self
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with self._open_lock:
            if self.connected:
                return self
            await self._open()
            if self._sessions is not None:
                await self._open_sessions(self.timeout - (loop.time() - started))
        self._after_connect()
        return self

    async def _open_sessions(self, timeout: float) -> None:
        """After the login: the action sessions' first attempts, within ``timeout``.

        The client counts as connected only once they are over (up or not), so
        nothing is sent meanwhile; cancelled, closed or the link lost meanwhile,
        this connection attempt is given up like one that failed at its login.
        """
        assert self._sessions is not None
        self._ready = False
        try:
            self._sessions.start()
            await self._sessions.ready(timeout)
            if self._closed or self._closing is not None:
                self._raise_if_done()
                raise AMIConnectionError("the client was closed while connecting")
            protocol = self._protocol
            if protocol is None or protocol.closed:
                raise AMIConnectionError(
                    f"the connection to {self.host}:{self.port} was lost right after login"
                )
        except BaseException:
            self._sessions.shut_now()
            protocol, self._protocol = self._protocol, None
            if protocol is not None:
                protocol.abort()
            raise
        self._ready = True

    def _after_connect(self) -> None:
        self._wake_state_waiters()
        if self.ping_interval and (self._keepalive is None or self._keepalive.done()):
            self._keepalive = self._spawn(self._keepalive_loop())
        if self._sessions is not None:
            self._sessions.start()
        for hook in tuple(self._connect_hooks):
            self._call_hook(hook, self)

    def _call_hook(self, hook: Callable[..., Any], *args: Any) -> None:
        try:
            result = hook(*args)
            if inspect.isawaitable(result):
                self._spawn(self._await_hook(hook, result))
        except Exception:
            logger.exception("connection hook %r raised", hook, extra=self._log_extra)

    async def _await_hook(self, hook: object, awaitable: Awaitable[Any]) -> None:
        try:
            await awaitable
        except Exception:
            logger.exception("connection hook %r raised", hook, extra=self._log_extra)

    # -- losing the link ------------------------------------------------------------------

    def _on_lost(self, protocol: AMIProtocol, cause: BaseException | None) -> None:
        if protocol is not self._protocol:
            return
        was_ready = self._ready
        self._protocol = None
        self._ready = False
        reason = f": {cause}" if cause else ""
        label = f"{self.host}:{self.port}"
        self._dispatcher.fail_all(
            lambda p: ConnectionLostError(
                f"{p.action}: connection to {label} lost before the answer{reason}"
            )
        )
        if not was_ready or self._closed:
            return  # a failed attempt: _open() reports it
        if protocol.expect_close:
            logger.info("logged off from %s", label, extra={"ami_host": label})
            self._spawn(self.close(logoff=False))
            return
        logger.warning("connection to %s lost%s", label, reason, extra={"ami_host": label})
        lost = ConnectionLostError(f"connection to {label} lost{reason}")
        if cause is not None:
            lost.__cause__ = cause
        for hook in tuple(self._disconnect_hooks):
            self._call_hook(hook, self, lost)
        self._wake_state_waiters()
        if self.reconnect:
            if self._reconnector is None or self._reconnector.done():
                self._reconnector = self._spawn(self._reconnect_loop())
        else:
            self._give_up(lost)

    def _give_up(self, exc: BaseException) -> None:
        """Stop for good: subscriptions end with ``exc``, handlers stop, waiters wake."""
        self._failure = exc
        self._closed = True
        self._dispatcher.end_subscriptions(exc)
        self._dispatcher.stop_handlers()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._sessions is not None:
            self._sessions.shut_now()
        self._wake_state_waiters()

    async def _reconnect_loop(self) -> None:
        attempt = 0
        auth_failures = 0
        label = f"{self.host}:{self.port}"
        while not self._closed:
            await asyncio.sleep(backoff(attempt, self.reconnect_delay, self.reconnect_max_delay))
            attempt += 1
            try:
                async with self._open_lock:
                    await self._open()
            except AuthenticationError as exc:
                if is_credential_refusal(exc):
                    auth_failures += 1
                    logger.error(
                        "reconnect to %s: login refused (%d/%d): %s",
                        label,
                        auth_failures,
                        self.max_auth_failures,
                        exc,
                        extra=self._log_extra,
                    )
                    for hook in tuple(self._disconnect_hooks):
                        self._call_hook(hook, self, exc)
                    if auth_failures >= self.max_auth_failures:
                        self._give_up(exc)
                        return
                    continue
                # 'Login Already In Use' (a stale session of ours), 'Asterisk is
                # shutting down': the credentials are fine; try again later.
                failure: AMIError = exc
            except AMIError as exc:
                failure = exc
            else:
                self._reconnects += 1
                self._after_connect()
                return
            logger.info(
                "reconnect to %s, attempt %d failed: %s",
                label,
                attempt,
                failure,
                extra=self._log_extra,
            )
            if self.reconnect_max_attempts is not None and attempt >= self.reconnect_max_attempts:
                self._give_up(
                    AMIConnectionError(f"gave up reconnecting to {label} after {attempt} attempts")
                )
                return

    # -- keepalive ----------------------------------------------------------------------------

    def _send_ping(self, protocol: AMIProtocol) -> Pending:
        """Write a keepalive Ping on ``protocol``; the keepalive forgets it when done."""
        pending, data, protocol = self._prepare(protocol, "Ping", {}, check=False)
        try:
            protocol.write(data)
        except BaseException:
            self._dispatcher.discard(pending)
            raise
        return pending

    async def _keepalive_loop(self) -> None:
        """Watch each link in turn; abort one found dead (the reconnect takes over)."""
        watch = self._watch
        while not self._closed and self.ping_interval:
            watch.interval, watch.timeout = self.ping_interval, self.ping_timeout
            protocol = self._protocol
            if protocol is None or not self._ready:
                await asyncio.sleep(min(self.ping_interval, 0.5))
                continue
            reason = await watch.watch(protocol)
            if reason is not None and protocol is self._protocol:
                logger.warning("keepalive: %s: the link is dead", reason, extra=self._log_extra)
                protocol.cause = ConnectionLostError(f"keepalive: {reason}")
                protocol.abort()

    # -- closing -----------------------------------------------------------------------------

    async def close(self, *, logoff: bool = True) -> None:
        """Log off (best effort, briefly), close the link and end every task the client started.

        Pending actions fail with `ConnectionLostError`; ``events()``
        iterators end; nothing the client started keeps running. Safe to call
        more than once, and from several tasks at a time. Cancelled (a timeout
        around it), it still closes: the link, pending actions, subscriptions
        and tasks are shut at once, and the rest finishes in the background (a
        later ``close()`` waits for it).

        The tasks it cancels (async handlers, hooks) get `CLOSE_GRACE` (2 s) to
        end; one still running then is left behind and named in a WARNING.
        Called from one of those tasks (a handler's cancel cleanup) while
        another ``close()`` runs, it shuts everything at once and returns
        without waiting for the teardown, which waits for that very task.
        """
        closing = self._closing
        current = asyncio.current_task()
        if closing is not None and not closing.done() and current in self._tasks:
            # One of the client's own tasks (a handler or hook in its cancel
            # cleanup): the teardown waits for it, so it must not wait for the teardown.
            self._shut_now()
            return
        if closing is None or (closing.done() and closing.cancelled()):
            # Only the first close() logs off; a teardown cut short is finished.
            self._spare = asyncio.current_task()
            closing = self._closing = asyncio.ensure_future(
                self._teardown(logoff and closing is None)
            )
        try:
            await asyncio.shield(closing)
        except asyncio.CancelledError:
            self._shut_now()  # cancelled: no more waiting for the Logoff answer
            raise

    async def _teardown(self, logoff: bool) -> None:
        if self._sessions is not None:
            await self._sessions.close()  # each logs off, all at once
        protocol = self._protocol
        try:
            if logoff and protocol is not None and self.connected:
                protocol.expect_close = True  # the Goodbye's close is not a loss
                with contextlib.suppress(AMIError, OSError):
                    await self._request(protocol, "Logoff", {}, timeout=1.0, check=False)
        finally:
            protocol = self._shut_now() or protocol
        spare = self._spare
        try:
            tasks = [t for t in self._tasks if t is not spare]
            if tasks:
                await self._await_tasks(tasks)
            if protocol is not None:
                await protocol.shut(grace=1.0)
        except BaseException:
            if protocol is not None:
                protocol.abort()  # cut short: never leave the socket open
            raise
        finally:
            self._wake_state_waiters()

    async def _await_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Wait up to `CLOSE_GRACE` seconds for the cancelled tasks; log those that outlive it."""
        done, late = await asyncio.wait(tasks, timeout=CLOSE_GRACE)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: the task was ours to end
        if late:
            names = ", ".join(sorted(task.get_name() for task in late))
            logger.warning(
                "close(): %d task(s) still running %s s after their cancel, left behind: %s",
                len(late),
                CLOSE_GRACE,
                names,
                extra=self._log_extra,
            )

    def _shut_now(self) -> AMIProtocol | None:
        """The part of closing that cannot wait: everything stops at once. Idempotent.

        Returns the link it started closing, if any.
        """
        self._closed = True
        self._ready = False
        self._deadlines.clear()
        if self._sessions is not None:
            self._sessions.shut_now()
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()
        if not self._shut:
            self._shut = True
            self._dispatcher.fail_all(
                lambda p: ConnectionLostError(f"{p.action}: the client was closed")
            )
            self._dispatcher.end_subscriptions(None)
            # An async handler may be what called close(): its own task is spared.
            self._dispatcher.stop_handlers(spare=self._spare)
        for task in self._tasks:
            if task is not self._spare:
                task.cancel()
        self._wake_state_waiters()
        return protocol

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class _Connect:
    """``ami_async.connect(...)``: an async context manager (and awaitable) yielding a Client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __await__(self) -> Any:
        return self._client.connect().__await__()

    async def __aenter__(self) -> Client:
        return await self._client.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.close()


def connect(
    host: str = "127.0.0.1",
    port: int = 5038,
    *,
    username: str,
    secret: str,
    **options: Any,
) -> _Connect:
    """Connect and log in: ``async with ami_async.connect(host, username=..., secret=...) as ami``.

    Takes every keyword argument of `Client`. ``await connect(...)``
    also works and returns the connected client (close it yourself).
    """
    return _Connect(Client(host, port, username=username, secret=secret, **options))
