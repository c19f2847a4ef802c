"""The AMI client: connect, log in, send actions, subscribe to events, stay connected.

``Client`` composes the :class:`~ami_async.connection.AMIProtocol` (bytes),
the :class:`~ami_async.dispatch.Dispatcher` (routing) and the helpers of
:class:`~ami_async.actions.ActionsMixin`. It owns every task it starts
(keepalive, reconnect, async handlers, hooks) and ``close()`` ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import itertools
import logging
import random
import secrets
import socket as _socket
import ssl as _ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal

from ._compat import timeout as _timeout
from .actions import ActionsMixin
from .connection import AMIProtocol
from .dispatch import (
    LIST_COMPLETIONS,
    Dispatcher,
    EventList,
    Handler,
    HandlerRunner,
    OverflowPolicy,
    Pending,
    Subscription,
)
from .errors import (
    ActionTimeoutError,
    AMIConnectionError,
    AMIError,
    AuthenticationError,
    ConnectionLostError,
    InvalidActionError,
)
from .message import Event, Response
from .protocol import DEFAULT_MAX_FRAME_SIZE, HeaderValue, encode_action

__all__ = ["Client", "connect"]

logger = logging.getLogger("ami_async")

ConnectHook = Callable[["Client"], "Awaitable[None] | None"]
DisconnectHook = Callable[["Client", "BaseException | None"], "Awaitable[None] | None"]

_H = Callable[[Event], Any]


class Client(ActionsMixin):
    """An AMI client. Use ``async with ami_async.connect(...)`` or ``await client.connect()``.

    Timeouts are in seconds. ``timeout`` bounds connecting (TCP, TLS, banner,
    login, waiting for ``FullyBooted``); ``action_timeout`` is the default for
    every action. ``reconnect`` keeps the client connected through server
    restarts and dead links; ``ping_interval`` (``None`` to disable) sends a
    keepalive Ping whose missing answer within ``ping_timeout`` marks the link dead.
    """

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
        on_connect: ConnectHook | None = None,
        on_disconnect: DisconnectHook | None = None,
    ) -> None:
        if auth not in ("plain", "md5"):
            raise ValueError(f"auth must be 'plain' or 'md5', not {auth!r}")
        for label, value in (("timeout", timeout), ("action_timeout", action_timeout)):
            if not value > 0:
                raise ValueError(f"{label} must be a positive number of seconds")
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.auth = auth
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._event_mask = _mask(events)
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
        #: Lower-case action name -> completion event, for servers without ``EventList:``.
        self.list_completions: dict[str, str] = dict(LIST_COMPLETIONS)
        self._connect_hooks: list[ConnectHook] = [on_connect] if on_connect else []
        self._disconnect_hooks: list[DisconnectHook] = [on_disconnect] if on_disconnect else []
        self._filters: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._dispatcher = Dispatcher(self._spawn)
        self._protocol: AMIProtocol | None = None
        self._ready = False
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._open_lock = asyncio.Lock()
        #: Whether this user has been sent FullyBooted (it needs the system class).
        self._saw_fully_booted = False
        self._failure: BaseException | None = None
        self._state_waiters: list[asyncio.Future[None]] = []
        self._keepalive: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._id_prefix = ""
        #: Structured logging: every record about this client carries its server.
        self._log_extra = {"ami_host": f"{host}:{port}"}
        self._counter = itertools.count(1)
        #: The banner's version string (``"11.0.0"``), once connected.
        self.ami_version: str | None = None
        #: The whole banner line, once connected.
        self.banner: str | None = None
        #: How many times the client reconnected after a loss.
        self.reconnects = 0

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
        """True once :meth:`close` was called or reconnecting gave up."""
        return self._closed

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

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once connected; raise if the client is closed or gave up.

        ``TimeoutError`` after ``timeout`` seconds (default: the connect timeout).
        """
        deadline = self.timeout if timeout is None else timeout
        try:
            async with _timeout(deadline):
                while not self.connected:
                    self._raise_if_done()
                    waiter = asyncio.get_running_loop().create_future()
                    self._state_waiters.append(waiter)
                    await waiter
        except asyncio.TimeoutError:
            raise TimeoutError(f"not connected within {deadline} s") from None

    def _raise_if_done(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise AMIConnectionError("the client is closed")

    def _wake_state_waiters(self) -> None:
        waiters, self._state_waiters = self._state_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- tasks -----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connecting --------------------------------------------------------------------

    async def connect(self) -> Client:
        """Connect and log in (raises AMIConnectionError or AuthenticationError).

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
        async with self._open_lock:
            if self.connected:
                return self
            await self._open()
        self._after_connect()
        return self

    def _tcp_keepalive(self, protocol: AMIProtocol) -> None:
        """Let the kernel probe the peer too: it notices a vanished host or a dropped
        NAT mapping even while a slow action keeps the AMI keepalive waiting."""
        if not self.ping_interval or protocol.transport is None:
            return
        sock = protocol.transport.get_extra_info("socket")
        if sock is None:
            return
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
            idle = max(1, int(self.ping_interval))
            interval = max(1, int(self.ping_timeout))
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPCNT, 3)

    def _check_not_closed(self) -> None:
        """``close()`` ran while connecting: give up this attempt (and its session)."""
        if self._closed:
            raise AMIConnectionError("the client was closed while connecting")

    def _ssl_context(self) -> _ssl.SSLContext | None:
        if self._ssl is True:
            return _ssl.create_default_context()
        if isinstance(self._ssl, _ssl.SSLContext):
            return self._ssl
        return None

    async def _open(self) -> None:
        """One connection attempt: TCP/TLS, banner, login, filters, FullyBooted."""
        loop = asyncio.get_running_loop()
        label = f"{self.host}:{self.port}"
        ctx = self._ssl_context()
        protocol: AMIProtocol | None = None
        boot: Subscription | None = None
        self._id_prefix = secrets.token_hex(4)
        try:
            async with _timeout(self.timeout):
                try:
                    _, protocol = await loop.create_connection(
                        lambda: AMIProtocol(
                            self._dispatcher.feed,
                            self._on_lost,
                            max_frame_size=self.max_frame_size,
                            trace=self.trace,
                            label=label,
                            interest=self._dispatcher.interest,
                        ),
                        self.host,
                        self.port,
                        ssl=ctx,
                        server_hostname=(self._server_hostname or self.host) if ctx else None,
                    )
                except (OSError, _ssl.SSLError) as exc:
                    raise AMIConnectionError(f"cannot connect to {label}: {exc}") from exc
                self._check_not_closed()
                self._protocol = protocol
                self._tcp_keepalive(protocol)
                self.banner = await protocol.wait_banner()
                self.ami_version = protocol.parser.ami_version
                self._check_not_closed()
                boot = await self._login(protocol)
                self._check_not_closed()
                await self._restore_session(protocol)
            if boot is not None:
                await self._wait_fully_booted(boot, protocol)
            self._check_not_closed()
            if protocol.closed:
                raise AMIConnectionError(f"the connection to {label} was lost right after login")
        except asyncio.TimeoutError:
            if protocol is not None:
                protocol.abort()
            self._protocol = None
            raise AMIConnectionError(
                f"timed out after {self.timeout} s connecting to {label} "
                "(TCP, TLS, banner or login)"
            ) from None
        except BaseException:
            if protocol is not None:
                protocol.abort()
            self._protocol = None
            raise
        finally:
            if boot is not None:
                boot.close()
        self._ready = True
        logger.info(
            "connected to %s (%s) as %s",
            label,
            self.banner,
            self.username,
            extra={"ami_host": label},
        )

    async def _login(self, protocol: AMIProtocol) -> Subscription | None:
        """Log in; return a subscription to ``FullyBooted`` when one is expected."""
        headers: dict[str, HeaderValue] = {"Username": self.username}
        if self.auth == "md5":
            challenge = await self._request(
                protocol, "Challenge", {"AuthType": "MD5"}, timeout=self.timeout, check=False
            )
            if not challenge.success or not challenge.get("Challenge"):
                raise AuthenticationError(
                    f"MD5 challenge refused: {challenge.get('Message', '')}", challenge
                )
            digest = hashlib.md5(
                (challenge["Challenge"] + self._secret).encode(), usedforsecurity=False
            ).hexdigest()
            headers.update({"AuthType": "MD5", "Key": digest})
        else:
            headers["Secret"] = self._secret
        headers["Events"] = self._event_mask
        # Registered before Login is written: FullyBooted follows the answer at once.
        boot: Subscription | None = None
        if self.boot_timeout > 0 and _wants_system(self._event_mask):
            boot = self._dispatcher.subscribe(("FullyBooted",), None, 4, "drop_oldest")
        try:
            response = await self._request(
                protocol, "Login", headers, timeout=self.timeout, check=False
            )
        except ConnectionLostError as exc:
            if boot is not None:
                boot.close()
            raise AMIConnectionError(
                f"the server closed the connection during login: {exc}"
            ) from exc
        except BaseException:
            if boot is not None:
                boot.close()
            raise
        if not response.success:
            if boot is not None:
                boot.close()
            raise AuthenticationError(
                f"login refused for user {self.username!r}: "
                f"{response.get('Message', 'no reason given')}",
                response,
            )
        return boot

    async def _wait_fully_booted(self, boot: Subscription, protocol: AMIProtocol) -> None:
        """Wait for ``FullyBooted`` where it will come: a restarting Asterisk refuses
        actions until then.

        Asterisk writes it right after the login's answer, and only to a user that
        may read the ``system`` class. So a Ping answered without it means it is not
        coming now: either this user never gets it (no waiting, then or later) or,
        for a user that got it on an earlier connection, Asterisk is still booting
        (wait up to ``boot_timeout``).
        """
        if boot.qsize():
            self._saw_fully_booted = True
            return
        await self._request(protocol, "Ping", {}, timeout=self.timeout, check=False)
        if boot.qsize():
            self._saw_fully_booted = True
            return
        if not self._saw_fully_booted:
            logger.debug(
                "no FullyBooted after login (a user without the system class?); continuing",
                extra=self._log_extra,
            )
            return
        try:
            await boot.get(timeout=self.boot_timeout)
        except TimeoutError:
            logger.info(
                "no FullyBooted within %s s after login; continuing",
                self.boot_timeout,
                extra=self._log_extra,
            )

    async def _restore_session(self, protocol: AMIProtocol) -> None:
        """Re-apply every filter added with :meth:`add_filter` (after a reconnect)."""
        for rule in self._filters:
            await self._request(
                protocol,
                "Filter",
                {"Operation": "Add", "Filter": rule},
                timeout=self.timeout,
                check=True,
            )

    def _after_connect(self) -> None:
        self._wake_state_waiters()
        if self.ping_interval and (self._keepalive is None or self._keepalive.done()):
            self._keepalive = self._spawn(self._keepalive_loop())
        for hook in self._connect_hooks:
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
        for hook in self._disconnect_hooks:
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
        self._wake_state_waiters()

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.reconnect_max_delay, self.reconnect_delay * (2.0**attempt))
        return ceiling / 2 + random.random() * ceiling / 2

    async def _reconnect_loop(self) -> None:
        attempt = 0
        auth_failures = 0
        label = f"{self.host}:{self.port}"
        while not self._closed:
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1
            try:
                async with self._open_lock:
                    await self._open()
            except AuthenticationError as exc:
                if _is_credential_refusal(exc):
                    auth_failures += 1
                    logger.error(
                        "reconnect to %s: login refused (%d/%d): %s",
                        label,
                        auth_failures,
                        self.max_auth_failures,
                        exc,
                        extra=self._log_extra,
                    )
                    for hook in self._disconnect_hooks:
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
                self.reconnects += 1
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

    async def _keepalive_loop(self) -> None:
        assert self.ping_interval is not None
        while not self._closed:
            await asyncio.sleep(self.ping_interval)
            protocol = self._protocol
            if protocol is None or not self._ready:
                continue
            try:
                alive = await self._probe(protocol)
            except AMIError:
                continue  # the link went away meanwhile: that is handled elsewhere
            if not alive and protocol is self._protocol:
                logger.warning(
                    "keepalive Ping unanswered within %s s: the link is dead",
                    self.ping_timeout,
                    extra=self._log_extra,
                )
                protocol.cause = ConnectionLostError(
                    f"keepalive Ping unanswered within {self.ping_timeout} s"
                )
                protocol.abort()

    async def _probe(self, protocol: AMIProtocol) -> bool:
        """Send a keepalive Ping; False if the link is dead.

        Asterisk runs one action per session at a time, so a Ping sent while a
        slow action runs (a synchronous Originate ringing, a Reload) is answered
        after it. The Ping's ``ping_timeout`` therefore counts from the moment no
        older action is still being answered; each of those has its own timeout,
        and nothing at all answered within ``action_timeout`` is a dead link too.
        """
        ahead = [p for p in self._dispatcher.pending.values() if _blocks_session(p)]
        pending, data, protocol = self._prepare(protocol, "Ping", {}, check=False)
        try:
            try:
                await asyncio.wait_for(protocol.drain(), self.ping_timeout)
            except asyncio.TimeoutError:
                return False  # the peer has not read a byte for ping_timeout
            protocol.write(data)
            while True:
                done, _ = await asyncio.wait({pending.future}, timeout=self.ping_timeout)
                if done:
                    pending.future.result()  # a lost link raises here
                    return True
                blockers = {p.future for p in ahead if _blocks_session(p)}
                if not blockers:
                    return False
                # Queued behind an older action: wait for it, then give the Ping
                # its full timeout again.
                done, _ = await asyncio.wait(
                    blockers | {pending.future},
                    timeout=self.action_timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    return False  # nothing at all answered for action_timeout
                ahead = [p for p in ahead if not p.future.done()]
        finally:
            self._dispatcher.discard(pending)

    # -- closing -----------------------------------------------------------------------------

    async def close(self, *, logoff: bool = True) -> None:
        """Log off (best effort, briefly), close the link and end every task the client started.

        Pending actions fail with :class:`ConnectionLostError`; ``events()``
        iterators end; nothing the client started keeps running. Safe to call
        more than once, and from several tasks at a time.
        """
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            protocol = self._protocol
            if logoff and protocol is not None and self.connected:
                protocol.expect_close = True  # the Goodbye's close is not a loss
                with contextlib.suppress(AMIError, OSError):
                    await self._request(protocol, "Logoff", {}, timeout=1.0, check=False)
            self._closed = True
            self._ready = False
            self._protocol = None
            self._dispatcher.fail_all(
                lambda p: ConnectionLostError(f"{p.action}: the client was closed")
            )
            self._dispatcher.end_subscriptions(None)
            # An async handler may be what called close(): its own task is spared.
            current = asyncio.current_task()
            self._dispatcher.stop_handlers(spare=current)
            self._wake_state_waiters()
            tasks = [t for t in self._tasks if t is not current]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if protocol is not None:
                await protocol.shut(grace=1.0)
        finally:
            self._wake_state_waiters()
            self._closing.set_result(None)

    async def __aenter__(self) -> Client:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- actions ------------------------------------------------------------------------------

    def _budget(self, timeout: float | None) -> float:
        """The timeout of one action: ``timeout``, or the client's ``action_timeout``."""
        if timeout is None:
            return self.action_timeout
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        return float(timeout)

    def _next_action_id(self) -> str:
        return f"{self._id_prefix}-{next(self._counter)}"

    def _prepare(
        self,
        protocol: AMIProtocol | None,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        check: bool,
        is_list: bool = False,
        complete_event: str | None = None,
        follow: str | None = None,
        streaming: bool = False,
    ) -> tuple[Pending, bytes, AMIProtocol]:
        fields = dict(headers)
        action_id: str | None = None
        for key in [k for k in fields if len(k) == 8 and k.lower() == "actionid"]:
            value = fields.pop(key)
            if not isinstance(value, str) or not value:
                raise InvalidActionError("ActionID must be a non-empty string")
            action_id = value
        if action_id is None:
            action_id = self._next_action_id()
        # Encoding first: bad input is refused before anything is registered or written.
        data = encode_action(name, [("ActionID", action_id), *fields.items()])
        if protocol is None or protocol.closed:
            self._raise_if_done()
            raise ConnectionLostError(f"{name}: not connected to {self.host}:{self.port}")
        if complete_event is None and is_list:
            complete_event = self.list_completions.get(name.lower())
        pending = Pending(
            asyncio.get_running_loop(),
            name,
            action_id,
            check=check,
            is_list=is_list,
            complete_name=complete_event,
            follow=follow,
            streaming=streaming,
        )
        try:
            self._dispatcher.add(pending)
        except ValueError:
            raise InvalidActionError(f"ActionID {action_id!r} is already in flight") from None
        return pending, data, protocol

    async def _run(
        self, pending: Pending, data: bytes, protocol: AMIProtocol, timeout: float
    ) -> Response:
        """Write the action and wait for its answer, removing it from the table on any exit."""
        loop = asyncio.get_running_loop()
        handle = loop.call_later(timeout, self._expire, pending, timeout)
        try:
            if protocol._paused:
                drain = asyncio.ensure_future(protocol.drain())
                try:
                    done, _ = await asyncio.wait(
                        (drain, pending.future), return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    if not drain.done():
                        drain.cancel()  # timed out or cancelled: leave no task behind
                if drain not in done:
                    return pending.future.result()  # raises the timeout
                drain.result()
            protocol.write(data)
            return await pending.future
        finally:
            handle.cancel()
            self._dispatcher.discard(pending)

    def _expire(self, pending: Pending, timeout: float) -> None:
        """The timer of an action: no (complete) answer in time."""
        logger.debug(
            "%s timed out after %s s (ActionID %s)",
            pending.action,
            timeout,
            pending.action_id,
            extra={
                "ami_host": f"{self.host}:{self.port}",
                "ami_action": pending.action,
                "ami_action_id": pending.action_id,
            },
        )
        self._dispatcher.discard(pending)
        pending.fail(
            ActionTimeoutError(
                f"{pending.action}: no complete answer within {timeout} s "
                f"(ActionID {pending.action_id})",
                pending.action,
            )
        )

    async def _request(
        self,
        protocol: AMIProtocol | None,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        check: bool,
    ) -> Response:
        pending, data, protocol = self._prepare(protocol, name, headers, check=check)
        return await self._run(pending, data, protocol, self._budget(timeout))

    async def send_action(
        self,
        name: str,
        /,
        *,
        timeout: float | None = None,
        check: bool = True,
        **headers: HeaderValue,
    ) -> Response:
        """Send one action and return its response.

        ``Response: Error`` raises :class:`ActionError` unless ``check=False``.
        No answer within ``timeout`` (default ``action_timeout``) raises
        :class:`ActionTimeoutError`; a lost link :class:`ConnectionLostError`.
        """
        if name.lower() == "logoff":
            return await self._send(name, headers, timeout=timeout, check=check)
        pending, data, protocol = self._prepare(self._live(), name, headers, check=check)
        return await self._run(pending, data, protocol, self._budget(timeout))

    async def _send(
        self,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        check: bool = True,
    ) -> Response:
        pending, data, protocol = self._prepare(self._live(), name, headers, check=check)
        if name.lower() != "logoff":
            return await self._run(pending, data, protocol, self._budget(timeout))
        # The server answers Goodbye and closes: that close is ours, not a loss.
        protocol.expect_close = True
        goodbye = False
        try:
            response = await self._run(pending, data, protocol, self._budget(timeout))
            goodbye = response.response.lower() == "goodbye"
        finally:
            if not goodbye:
                protocol.expect_close = False  # no Goodbye: a later close is a loss
        return response

    def _live(self) -> AMIProtocol | None:
        return self._protocol if self._ready else None

    async def send_action_and_wait(
        self,
        name: str,
        follow: str,
        /,
        *,
        timeout: float | None = None,
        check: bool = True,
        **headers: HeaderValue,
    ) -> tuple[Response, Event | None]:
        """Send an action and wait for its response *and* the event ``follow`` with its ActionID.

        For actions whose outcome comes later as an event (async ``Originate``
        -> ``OriginateResponse``). The event also reaches every subscriber.
        An error response returns at once (``(response, None)`` with ``check=False``).
        """
        return await self._send_and_wait(name, follow, headers, timeout=timeout, check=check)

    async def _send_and_wait(
        self,
        name: str,
        follow: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        check: bool = True,
    ) -> tuple[Response, Event | None]:
        pending, data, protocol = self._prepare(
            self._live(), name, headers, check=check, follow=follow
        )
        response = await self._run(pending, data, protocol, self._budget(timeout))
        return response, pending.follow_event

    async def collect(
        self,
        name: str,
        /,
        *,
        timeout: float | None = None,
        complete_event: str | None = None,
        **headers: HeaderValue,
    ) -> EventList:
        """Send a list action and gather all its items (``.response``, ``.items``, ``.complete``).

        ``timeout`` bounds the whole list. ``complete_event`` names the event
        that ends the list on servers that send no ``EventList:`` markers
        (defaults from :attr:`list_completions`). ``Response: Error`` raises
        :class:`ActionError`.
        """
        return await self._collect(name, headers, timeout=timeout, complete_event=complete_event)

    async def _collect(
        self,
        name: str,
        headers: Mapping[str, HeaderValue],
        *,
        timeout: float | None,
        complete_event: str | None = None,
    ) -> EventList:
        pending, data, protocol = self._prepare(
            self._live(), name, headers, check=True, is_list=True, complete_event=complete_event
        )
        response = await self._run(pending, data, protocol, self._budget(timeout))
        return EventList(response, list(pending.items), pending.complete)

    async def stream(
        self,
        name: str,
        /,
        *,
        timeout: float | None = None,
        complete_event: str | None = None,
        **headers: HeaderValue,
    ) -> AsyncIterator[Event]:
        """Send a list action and yield its items as they arrive.

        ``timeout`` bounds each wait for the next item (and the response).
        Leaving the loop early forgets the action; late items are dropped.
        """
        pending, data, protocol = self._prepare(
            self._live(),
            name,
            headers,
            check=True,
            is_list=True,
            complete_event=complete_event,
            streaming=True,
        )
        wait = self._budget(timeout)
        loop = asyncio.get_running_loop()
        try:
            try:
                await asyncio.wait_for(protocol.drain(), wait)
            except asyncio.TimeoutError:
                raise ActionTimeoutError(
                    f"{name}: could not be written within {wait} s", name
                ) from None
            protocol.write(data)
            items = pending.items
            while True:
                while items:
                    yield items.popleft()
                if pending.future.done():
                    pending.future.result()  # raise ActionError / ConnectionLostError
                    while items:
                        yield items.popleft()
                    return
                waiter = pending.stream_waiter = loop.create_future()
                try:
                    await asyncio.wait_for(waiter, wait)
                except asyncio.TimeoutError:
                    raise ActionTimeoutError(
                        f"{name}: no list item within {wait} s (ActionID {pending.action_id})",
                        name,
                    ) from None
                finally:
                    pending.stream_waiter = None
        finally:
            self._dispatcher.discard(pending)

    # -- events -----------------------------------------------------------------------------

    def events(
        self,
        *names: str,
        predicate: Callable[[Event], bool] | None = None,
        maxsize: int | None = None,
        overflow: OverflowPolicy = "error",
    ) -> Subscription:
        """Subscribe to events by exact name (any case) or fnmatch pattern; none or ``"*"``: all.

        Registered at once, so nothing between this call and the first
        ``async for`` step is missed. The queue holds at most ``maxsize``
        events (default ``event_queue_size``); see :class:`Subscription` for
        the overflow policies. It survives reconnects and ends when the
        client is closed.
        """
        if self._closed:
            self._raise_if_done()
        return self._dispatcher.subscribe(
            names, predicate, maxsize or self.event_queue_size, overflow
        )

    def on(
        self,
        *names: str,
        maxsize: int | None = None,
        overflow: OverflowPolicy = "drop_oldest",
    ) -> Callable[[_H], _H]:
        """Register a handler for events by name or pattern (``"*"``: every event).

        Use as ``@client.on("Hangup")`` or ``client.on("Hangup")(func)``.
        A sync handler runs inline, in wire order, and must be quick. An async
        handler runs on its own task, one event at a time in wire order, from
        a queue of at most ``maxsize`` events (default ``event_queue_size``):
        when it falls behind, ``"drop_oldest"`` discards the oldest queued
        event and ``"error"`` refuses the new one; both log an error and count
        the loss (:meth:`handler_dropped`). An exception in a handler is
        logged with the event's name and never stops delivery.
        """

        def register(handler: _H) -> _H:
            self._dispatcher.add_handler(
                names or ("*",), handler, maxsize or self.event_queue_size, overflow
            )
            return handler

        return register

    def off(self, handler: Handler) -> bool:
        """Remove ``handler`` (every registration of it); True if it was registered."""
        return self._dispatcher.remove_handler(handler)

    def handler_dropped(self, handler: Handler) -> int:
        """Events ``handler`` lost because its queue was full."""
        return sum(r.dropped for r in self._runners(handler))

    def _runners(self, handler: Handler) -> list[HandlerRunner]:
        return [r for r in self._dispatcher.handler_runners() if r.handler == handler]

    # -- session state that survives a reconnect -------------------------------------------

    async def set_events(self, mask: bool | str, *, timeout: float | None = None) -> Response:
        """``Events`` action: change the event mask (re-applied at every reconnect).

        Some servers (``broken_events_action=yes``) never answer ``on``: then
        this raises :class:`ActionTimeoutError` after ``timeout``, and the mask,
        which such a server did apply, is still the one re-applied later.
        """
        value = _mask(mask)
        try:
            response = await self._send("Events", {"EventMask": value}, timeout=timeout)
        except ActionTimeoutError:
            self._event_mask = value
            raise
        self._event_mask = value
        return response

    async def add_filter(self, rule: str, *, timeout: float | None = None) -> Response:
        """``Filter`` action, ``Operation: Add``; the filter is re-applied at every reconnect."""
        response = await self.send_action("Filter", Operation="Add", Filter=rule, timeout=timeout)
        self._filters.append(rule)
        return response


def _mask(events: bool | str) -> str:
    if events is True:
        return "on"
    if events is False:
        return "off"
    if not isinstance(events, str) or not events.strip():
        raise ValueError("events must be True, False or a class list such as 'call,system'")
    return events


def _blocks_session(pending: Pending) -> bool:
    """Is Asterisk still busy answering this action (so later ones wait behind it)?"""
    if pending.future.done():
        return False
    return pending.response is None or (pending.is_list and pending.list_open)


def _is_credential_refusal(exc: AuthenticationError) -> bool:
    """True when the server refused the credentials themselves (not a transient refusal)."""
    if exc.response is None:
        return True
    text = (exc.response.get("Message") or "").lower()
    return not any(word in text for word in ("already in use", "shutting down", "booting"))


def _wants_system(mask: str) -> bool:
    classes = {c.strip().lower() for c in mask.split(",")}
    return bool(classes & {"on", "all", "system", "yes", "true"})


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

    Takes every keyword argument of :class:`Client`. ``await connect(...)``
    also works and returns the connected client (close it yourself).
    """
    return _Connect(Client(host, port, username=username, secret=secret, **options))
