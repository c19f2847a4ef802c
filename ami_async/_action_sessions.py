"""Action sessions: extra logged-in sessions, events off, for the actions that block.

Asterisk runs one action at a time per session, and while it runs the session
sends nothing, events included. ``Client(..., action_sessions=N)`` opens N more
sessions (each a `Client` of its own with ``events=False``: it logs in,
reconnects and keeps alive like the main one) and sends there the actions that
block a session: a synchronous ``Originate``, ``Command``, ``Reload``... and
anything sent with ``send_action(..., blocking=True)``. Everything else (lists,
ordinary actions, actions that wait for an event) stays on the main session,
where the caller's events are. Each goes to the session with the fewest
actions in flight, counting those that timed out but that Asterisk still runs
(until their late answer, or as long again as their timeout). An action
session that is down (or still connecting) is skipped: its work goes to the
main session. What was in flight
on a session whose link is lost fails with `ConnectionLostError`, as on the
main session; actions are never re-sent. The sessions take the main client's
settings (timeouts, keepalive, reconnect): with ``reconnect=False`` a session
whose link is lost stays down until the main session reconnects, and its work
goes to the main session meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ._options import backoff
from .errors import AMIError

if TYPE_CHECKING:
    from .client import Client

__all__ = ["ActionSessions"]

logger = logging.getLogger("ami_async")


class ActionSessions:
    """The action sessions of one client (created when it first connects)."""

    def __init__(self, owner: Client, count: int) -> None:
        self._owner = owner
        self.count = count
        self.sessions: list[Client] = []
        #: Per session: its first connection attempt is over (success or not).
        self._first: list[asyncio.Future[None]] = []
        self._openers: dict[int, asyncio.Task[None]] = {}

    def _make(self, index: int) -> Client:
        from .client import Client  # the client module imports this one

        owner = self._owner
        return Client(
            owner.host,
            owner.port,
            username=owner.username,
            secret=owner._secret,
            auth="md5" if owner.auth == "md5" else "plain",
            ssl=owner._ssl,
            server_hostname=owner._server_hostname,
            events=False,
            timeout=owner.timeout,
            action_timeout=owner.action_timeout,
            reconnect=owner.reconnect,
            reconnect_delay=owner.reconnect_delay,
            reconnect_max_delay=owner.reconnect_max_delay,
            reconnect_max_attempts=owner.reconnect_max_attempts,
            max_auth_failures=owner.max_auth_failures,
            ping_interval=owner.ping_interval,
            ping_timeout=owner.ping_timeout,
            max_frame_size=owner.max_frame_size,
            trace=owner.trace,
            name=f"{owner.name}/actions-{index + 1}",
        )

    def start(self) -> None:
        """Open every session that is not open (or opening); the main one just connected."""
        owner = self._owner
        loop = asyncio.get_running_loop()
        for index in range(self.count):
            if index == len(self.sessions):
                self.sessions.append(self._make(index))
                self._first.append(loop.create_future())
            elif self.sessions[index].closed:
                # It gave up (reconnect attempts) or was shut: a fresh one.
                self.sessions[index] = self._make(index)
                if self._first[index].done():
                    self._first[index] = loop.create_future()
            session = self.sessions[index]
            opener = self._openers.get(index)
            if session.connected or (opener is not None and not opener.done()):
                continue
            if session._reconnector is not None and not session._reconnector.done():
                continue  # it reconnects by itself
            self._openers[index] = owner._spawn(self._open(index, session))

    async def _open(self, index: int, session: Client) -> None:
        """Connect ``session``, retrying with the client's backoff until it is in or closed."""
        owner = self._owner
        first = self._first[index]
        attempt = 0
        try:
            while not owner.closed and not session.closed:
                try:
                    await session.connect()
                    return
                except AMIError as exc:
                    if owner.closed or session.closed:
                        return  # closed while connecting: nothing to report
                    # The first failure is worth a WARNING; the retries that follow, less.
                    logger.log(
                        logging.WARNING if attempt == 0 else logging.INFO,
                        "action session %s: %s (its actions go to the main session meanwhile)",
                        session.name,
                        exc,
                        extra=owner._log_extra,
                    )
                if not first.done():
                    first.set_result(None)
                await asyncio.sleep(
                    backoff(attempt, owner.reconnect_delay, owner.reconnect_max_delay)
                )
                attempt += 1
        finally:
            if not first.done():
                first.set_result(None)

    async def ready(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for the first attempt of every session to be over."""
        waiting = [f for f in self._first if not f.done()]
        if waiting and timeout > 0:
            # asyncio.wait: a cancel is the caller's, and the attempts go on.
            await asyncio.wait(waiting, timeout=timeout)

    def pick(self) -> Client | None:
        """The connected action session with the fewest actions in flight, if any.

        A blocking action that timed out still counts until its late answer
        comes (or as long again as its timeout): Asterisk is still running it.
        """
        best: Client | None = None
        least = 0
        for session in self.sessions:
            if session.connected:
                load = session.pending_actions + session._dispatcher.busy_late()
                if best is None or load < least:
                    best, least = session, load
        return best

    @property
    def connected(self) -> int:
        """How many action sessions are up."""
        return sum(1 for session in self.sessions if session.connected)

    def shut_now(self) -> None:
        """Stop every session at once (their actions fail, their tasks end)."""
        for opener in self._openers.values():
            if opener is not asyncio.current_task():
                opener.cancel()
        for session in self.sessions:
            session._shut_now()

    async def close(self) -> None:
        """Log off and close every session (concurrently); a busy one is closed at once."""
        if self.sessions:
            # A session busy with a blocking action could answer a Logoff only
            # after it: that one is just closed.
            results: list[Any] = await asyncio.gather(
                *(session.close(logoff=not session._watch.blocking) for session in self.sessions),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                    result, (AMIError, OSError, asyncio.CancelledError)
                ):
                    logger.error("closing an action session: %r", result)
