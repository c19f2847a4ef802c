"""Connecting and logging in: one attempt (TCP, TLS, banner, Login, filters,
``FullyBooted``) within one ``timeout``; MD5 keys; refusals."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import ssl

from ._compat import run_within
from ._keepalive import tcp_keepalive
from ._options import seconds
from ._sending import SenderMixin
from .connection import AMIProtocol
from .dispatch import Subscription
from .errors import (
    ActionTimeoutError,
    AMIConnectionError,
    AuthenticationError,
    ConnectionLostError,
    InvalidActionError,
)
from .message import Response
from .protocol import HeaderValue

__all__ = ["LoginMixin", "is_credential_refusal", "md5_key", "refusal", "wants_system"]

logger = logging.getLogger("ami_async")


class _Asking:
    """A ``CoreSettings`` in flight for `fetch_asterisk_version`, and how many wait on it."""

    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Future[str | None]) -> None:
        self.task = task
        self.waiters = 0


def md5_key(challenge: str, secret: str) -> str:
    """The ``Key`` of an MD5 login: ``md5(challenge + secret)`` in hex.

    The secret is encoded as a plain login would send it (UTF-8, with the
    undecodable bytes of a ``surrogateescape`` string from ``os.environ``
    given back as they were). A secret that cannot be encoded at all raises
    `InvalidActionError` (a `ValueError`) that carries no part of it.
    """
    data: bytes | None
    try:
        data = (challenge + secret).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # Raised below, outside this handler: the UnicodeEncodeError holds the
        # whole secret and must not ride along as __context__.
        data = None
    if data is None:
        raise InvalidActionError("the secret contains text that cannot be encoded as UTF-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def refusal(username: str, response: Response) -> AuthenticationError:
    """The error for a ``Login`` answered ``Response: Error`` (the server's reason, no secret)."""
    reason = response.get("Message") or "no reason given"
    return AuthenticationError(
        f"Asterisk refused the login of user {username!r}: {reason}", response
    )


def is_credential_refusal(exc: AuthenticationError) -> bool:
    """True when the server refused the credentials themselves (not a transient refusal)."""
    if exc.response is None:
        return True
    text = (exc.response.get("Message") or "").lower()
    return not any(word in text for word in ("already in use", "shutting down", "booting"))


def wants_system(mask: str) -> bool:
    """Does the event mask ``mask`` include the ``system`` class (``FullyBooted``)?"""
    classes = {c.strip().lower() for c in mask.split(",")}
    return bool(classes & {"on", "all", "system", "yes", "true"})


class LoginMixin(SenderMixin):
    """`Client`'s connection attempts: `_open` makes one, within ``timeout``."""

    username: str
    auth: str
    timeout: float
    boot_timeout: float
    max_frame_size: int
    trace: bool
    ping_interval: float | None
    ping_timeout: float
    _secret: str
    _ssl: ssl.SSLContext | bool | None
    _server_hostname: str | None
    _event_mask: str
    _closed: bool
    _banner: str | None
    _ami_version: str | None
    _asterisk_version: str | None
    _version_asked: bool
    _version_asking: _Asking | None
    _action_checks: dict[str, tuple[str, ...] | str]
    _saw_fully_booted: bool
    _filters: list[str]
    _log_extra: dict[str, str]

    def _on_lost(
        self, protocol: AMIProtocol, cause: BaseException | None
    ) -> None:  # pragma: no cover - Client defines it
        raise NotImplementedError

    def _check_not_closed(self) -> None:
        """``close()`` ran while connecting: give up this attempt (and its session)."""
        if self._closed:
            raise AMIConnectionError("the client was closed while connecting")

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self._ssl is True:
            return ssl.create_default_context()
        if isinstance(self._ssl, ssl.SSLContext):
            return self._ssl
        return None

    async def _open(self) -> None:
        """One connection attempt (TCP/TLS, banner, login, filters, FullyBooted),
        all of it within ``timeout``."""
        loop = asyncio.get_running_loop()
        label = f"{self.host}:{self.port}"
        ctx = self._ssl_context()
        protocol: AMIProtocol | None = None
        boot: Subscription | None = None
        self._id_prefix = secrets.token_hex(4)
        deadline = loop.time() + self.timeout

        async def attempt() -> AMIProtocol:
            # In a task of its own: the timeout cancels it, never the caller.
            nonlocal protocol, boot
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
            except (OSError, ssl.SSLError) as exc:
                raise AMIConnectionError(f"cannot connect to {label}: {exc}") from exc
            self._check_not_closed()
            self._protocol = protocol
            if self.ping_interval is not None:
                tcp_keepalive(protocol, self.ping_interval, self.ping_timeout)
            self._banner = await protocol.wait_banner()
            self._ami_version = protocol.parser.ami_version
            self._check_not_closed()
            boot = await self._login(protocol)
            self._check_not_closed()
            await self._restore_session(protocol)
            if boot is not None:
                await self._wait_fully_booted(boot, protocol, deadline)
            return protocol

        try:
            protocol = await run_within(self.timeout, attempt())
            self._check_not_closed()
            if protocol.closed:
                raise AMIConnectionError(f"the connection to {label} was lost right after login")
        except (asyncio.TimeoutError, ActionTimeoutError):
            if protocol is not None:
                protocol.abort()
            self._protocol = None
            raise AMIConnectionError(
                f"timed out after {self.timeout} s connecting to {label} "
                "(TCP, TLS, banner, login or FullyBooted)"
            ) from None
        except BaseException:
            if protocol is not None:
                protocol.abort()
            self._protocol = None
            raise
        finally:
            if boot is not None:
                boot.close()
        self._forget_asterisk_version()
        self._ready = True
        logger.info(
            "connected to %s (%s) as %s",
            label,
            self._banner,
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
            key = md5_key(challenge["Challenge"], self._secret)
            headers.update({"AuthType": "MD5", "Key": key})
        else:
            headers["Secret"] = self._secret
        headers["Events"] = self._event_mask
        # Registered before Login is written: FullyBooted follows the answer at once.
        boot: Subscription | None = None
        if self.boot_timeout > 0 and wants_system(self._event_mask):
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
            raise refusal(self.username, response)
        return boot

    async def _wait_fully_booted(
        self, boot: Subscription, protocol: AMIProtocol, deadline: float
    ) -> None:
        """Wait for ``FullyBooted`` where it will come: a restarting Asterisk refuses
        actions until then.

        Asterisk writes it right after the login's answer, and only to a user that
        may read the ``system`` class. So a Ping answered without it means it is not
        coming now: either this user never gets it (no waiting, then or later) or,
        for a user that got it on an earlier connection, Asterisk is still booting
        (wait up to ``boot_timeout``, within what is left of ``timeout``).
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
        wait = min(self.boot_timeout, deadline - asyncio.get_running_loop().time() - 0.05)
        try:
            if wait <= 0:
                raise TimeoutError
            await boot.get(timeout=wait)
        except TimeoutError:
            logger.info(
                "no FullyBooted within %.2f s after login; continuing",
                max(wait, 0.0),
                extra=self._log_extra,
            )

    def _forget_asterisk_version(self) -> None:
        """A new session: its server's version is asked again, the catalogue checks redone."""
        self._asterisk_version = None
        self._version_asked = False
        self._version_asking = None  # an ask still in flight was the old session's
        self._action_checks.clear()

    async def fetch_asterisk_version(self, *, timeout: float | None = None) -> str | None:
        """The server's Asterisk version (``"22.5.0"``): ``CoreSettings``'s ``AsteriskVersion``.

        Asked once per connection (the first call after each login; later calls
        return what it said, also as `asterisk_version`); the first `actions`
        coroutine of a connection calls it. Calls made while it is being asked
        share that one ``CoreSettings``, each waiting at most its own
        ``timeout``. A refusal (``CoreSettings`` needs the ``system`` or
        ``reporting`` read class) or an answer without the header gives ``None``,
        and is not asked again on that connection. A timeout or a lost link
        raises as for any action (and the next call asks again).
        """
        if self._version_asked:
            return self._asterisk_version
        budget = self.action_timeout if timeout is None else seconds("timeout", timeout)
        asking = self._version_asking
        if asking is None:
            # Bounded by its callers' timeouts (the last to give up cancels it) and its own.
            ask = self._ask_asterisk_version(max(budget, self.action_timeout))
            asking = _Asking(asyncio.ensure_future(ask))
            asking.task.add_done_callback(lambda _: self._asked_asterisk_version(asking))
            self._version_asking = asking
        task = asking.task
        # Not cancelled with this caller (nor by its timeout) while others wait on it;
        # the last one to give up cancels it.
        asking.waiters += 1
        try:
            await asyncio.wait((task,), timeout=budget)
        finally:
            asking.waiters -= 1
            if not asking.waiters and not task.done():
                if self._version_asking is asking:  # the next caller asks afresh
                    self._version_asking = None
                task.cancel()
                await asyncio.wait((task,))  # its action leaves the pending table first
        if not task.done() or task.cancelled():
            raise ActionTimeoutError(
                f"CoreSettings: no answer within {budget} s (asking the server's Asterisk version)",
                "CoreSettings",
            )
        return task.result()

    def _asked_asterisk_version(self, asking: _Asking) -> None:
        if self._version_asking is asking:
            self._version_asking = None
        if not asking.task.cancelled():
            asking.task.exception()  # retrieved: callers that gave up must not leave it unread

    async def _ask_asterisk_version(self, budget: float) -> str | None:
        protocol = self._protocol
        response = await self._send("CoreSettings", {}, timeout=budget, check=False)
        text = (response.get("AsteriskVersion") or "").strip() if response.success else ""
        if self._protocol is not protocol:  # another session now: its server may differ
            return text or None
        self._asterisk_version = text or None
        self._version_asked = True
        self._action_checks.clear()  # worked out without the version
        if self._asterisk_version is None:
            logger.info(
                "no AsteriskVersion from CoreSettings (%s): the catalogue goes by the banner",
                response.message or response.response,
                extra=self._log_extra,
            )
        return self._asterisk_version

    async def _restore_session(self, protocol: AMIProtocol) -> None:
        """Re-apply every filter added with `add_filter` (after a reconnect).

        A filter the server now refuses (its manager.conf changed) is skipped
        with a WARNING and kept for later reconnects: logging in again would
        only be refused again, forever.
        """
        for rule in self._filters:
            response = await self._request(
                protocol,
                "Filter",
                {"Operation": "Add", "Filter": rule},
                timeout=self.timeout,
                check=False,
            )
            if not response.success:
                logger.warning(
                    "the server refused filter %r on reconnect (%s): "
                    "this session receives the events it would have filtered",
                    rule,
                    response.message or response.response,
                    extra={"ami_host": f"{self.host}:{self.port}"},
                )
