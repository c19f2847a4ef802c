"""The keepalive: is the link alive? Any byte received says yes.

Asterisk answers one action per session at a time, and while an action runs
its session thread sends nothing at all, events included. So:

* every read proves the link alive: the idle clock runs from the last byte
  received (``AMIProtocol.received_at``), and a Ping is sent only after
  ``ping_interval`` seconds of silence;
* once a Ping is out, any byte (its answer, an event, anything) within
  ``ping_timeout`` keeps the link; silence for that long means it is dead;
* no Ping is sent while an action that blocks the session is in flight (a
  synchronous Originate, ``Command``, ``Reload``..., or anything sent with
  ``blocking=True``): silence is expected then, until that action is answered
  or its own ``timeout`` expires. Ordinary actions do not delay the Ping.

A frozen server is therefore declared dead within ``ping_interval +
ping_timeout`` of its last byte, unless a blocking action is in flight, in
which case within that action's own deadline plus ``ping_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket as _socket
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from .connection import AMIProtocol
from .dispatch import Pending
from .errors import AMIError
from .protocol import HeaderValue

__all__ = ["BLOCKING_ACTIONS", "Keepalive", "blocks_session", "tcp_keepalive"]

#: Lower-case names of actions that keep Asterisk's session busy until they end.
#: ``Originate`` blocks only when it is not ``Async``.
BLOCKING_ACTIONS: Final = frozenset(
    {
        "command",
        "reload",
        "moduleload",
        "waitevent",
        "queuereload",
        "queuereset",
    }
)

#: The largest TCP_KEEPIDLE / TCP_KEEPINTVL Linux accepts (seconds).
_TCP_MAX_SECONDS: Final = 32767

_TRUE: Final = frozenset({"yes", "true", "y", "t", "1", "on"})


def blocks_session(name: str, headers: Mapping[str, HeaderValue]) -> bool:
    """Will Asterisk's session be busy (silent) until this action ends?"""
    low = name.lower()
    if low in BLOCKING_ACTIONS:
        return True
    if low != "originate":
        return False
    for key, value in headers.items():
        if key.lower() == "async":
            return str(value).strip().lower() not in _TRUE
    return True


def tcp_keepalive(protocol: AMIProtocol, interval: float, timeout: float) -> None:
    """Let the kernel probe the peer too (idle ``interval``, probes every ``timeout``).

    It notices a vanished host or a dropped NAT mapping even while a blocking
    action keeps the AMI keepalive quiet.
    """
    if protocol.transport is None:
        return
    sock = protocol.transport.get_extra_info("socket")
    if sock is None:
        return
    # Best effort: a platform without these options (or refusing a value) keeps
    # the AMI keepalive alone.
    with contextlib.suppress(OSError, AttributeError, OverflowError, TypeError, ValueError):
        sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, 1)
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPIDLE, _tcp_seconds(interval))
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPINTVL, _tcp_seconds(timeout))
        sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPCNT, 3)


def _tcp_seconds(value: float) -> int:
    """``value`` in the kernel's range for TCP keepalive times (1..32767 s on Linux)."""
    if value != value:  # nan
        return _TCP_MAX_SECONDS
    return max(1, min(_TCP_MAX_SECONDS, int(min(value, _TCP_MAX_SECONDS))))


class Keepalive:
    """Watches one client's links. ``send_ping(protocol)`` writes a Ping and returns it."""

    def __init__(
        self,
        interval: float,
        timeout: float,
        send_ping: Callable[[AMIProtocol], Pending],
        forget: Callable[[Pending], None],
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self._send_ping = send_ping
        self._forget = forget
        #: Blocking actions in flight -> their deadline (``time.monotonic()``).
        self.blocking: dict[Pending, float] = {}

    def _blockers(self) -> list[Pending]:
        """The blocking actions still in flight and within their deadline."""
        now = time.monotonic()
        return [p for p, until in self.blocking.items() if until > now and not p.future.done()]

    async def watch(self, protocol: AMIProtocol) -> str | None:
        """Return why ``protocol``'s link is dead, or ``None`` once it is closed."""
        ping: Pending | None = None
        sent_at = 0.0
        try:
            while not protocol.closed:
                now = time.monotonic()
                if ping is not None and (ping.future.done() or protocol.received_at > sent_at):
                    self._forget(ping)  # an answer, or any byte since: alive
                    ping = None
                if ping is None:
                    blockers = self._blockers()
                    if blockers:
                        # Silence is expected until they end or their own timeout.
                        until = min(self.blocking[p] for p in blockers)
                        # ...or until the link is lost (then the loop ends).
                        wake: list[asyncio.Future[Any]] = [p.future for p in blockers]
                        wake.append(protocol._lost)
                        await asyncio.wait(
                            wake,
                            timeout=max(until - now, 0.0) + 0.01,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                        continue
                    idle_until = protocol.received_at + self.interval
                    if now < idle_until:
                        await asyncio.sleep(idle_until - now)
                        continue
                    try:
                        ping = self._send_ping(protocol)
                    except AMIError:
                        return None  # the link is going away: handled elsewhere
                    sent_at = time.monotonic()
                    continue
                if now < sent_at + self.timeout:
                    await asyncio.wait([ping.future], timeout=sent_at + self.timeout - now)
                    continue
                # A loop busy with user code may not have read what is waiting:
                # let it read once before judging.
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                if ping.future.done() or protocol.received_at > sent_at:
                    continue
                return f"nothing received within {self.timeout} s of a keepalive Ping"
            return None
        finally:
            if ping is not None:
                self._forget(ping)
