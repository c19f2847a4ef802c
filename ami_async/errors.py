"""The exception tree of ami_async.

Every exception the library raises on purpose derives from :class:`AMIError`::

    AMIError
    ├── AMIConnectionError          cannot connect, TLS failure, banner/login never came
    │   └── ConnectionLostError     an established link dropped (pending actions fail with it)
    ├── AuthenticationError         the server refused the login
    ├── ActionError                 the server answered ``Response: Error`` (has ``.response``)
    ├── ActionTimeoutError          no answer within ``timeout=`` (also a ``TimeoutError``)
    ├── ProtocolError               the peer broke the framing (over-long frame, ...)
    ├── SubscriptionOverflowError   a subscriber fell behind and its bounded queue overflowed
    └── InvalidActionError          the caller's action cannot be encoded (also a ``ValueError``)

Messages never contain the value of a ``Secret`` or ``Key`` header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Message, Response

__all__ = [
    "AMIConnectionError",
    "AMIError",
    "ActionError",
    "ActionTimeoutError",
    "AuthenticationError",
    "ConnectionLostError",
    "InvalidActionError",
    "ProtocolError",
    "SubscriptionOverflowError",
]


class AMIError(Exception):
    """Root of every error raised by ami_async."""


class AMIConnectionError(AMIError):
    """The connection could not be established (or the banner/login never arrived)."""


class ConnectionLostError(AMIConnectionError):
    """An established connection was lost; pending actions fail with this."""


class AuthenticationError(AMIError):
    """The server refused the login (wrong user, secret or MD5 key)."""

    def __init__(self, message: str, response: Message | None = None) -> None:
        super().__init__(message)
        self.response = response


class ActionError(AMIError):
    """The server answered an action with ``Response: Error``.

    ``response`` is the whole answer; ``action`` the action's name when known.
    """

    def __init__(self, response: Response, action: str | None = None) -> None:
        self.response = response
        self.action = action
        text = response.get("Message") or response.get("Response") or "error"
        output = response.get_all("Output")
        if output:  # a failing CLI command (Asterisk 14+): the reason is in the output
            shown = " / ".join(line.strip() for line in output[:3] if line.strip())
            text = f"{text}: {shown}" if shown else text
        prefix = f"{action}: " if action else ""
        super().__init__(f"{prefix}{text}")

    @property
    def message(self) -> str:
        """The ``Message:`` header of the error response ("" when absent)."""
        return self.response.get("Message", "")


class ActionTimeoutError(AMIError, TimeoutError):
    """No (complete) answer arrived within the action's timeout."""

    def __init__(self, message: str, action: str | None = None) -> None:
        super().__init__(message)
        self.action = action


class ProtocolError(AMIError):
    """The peer violated the AMI framing (e.g. a frame larger than the cap).

    ``data`` holds (at most 200 bytes of) the offending input.
    """

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data[:200]


class SubscriptionOverflowError(AMIError):
    """A subscription's bounded queue overflowed under the ``"error"`` policy.

    ``dropped`` counts the events that could not be queued.
    """

    def __init__(self, message: str, dropped: int = 0) -> None:
        super().__init__(message)
        self.dropped = dropped


class InvalidActionError(AMIError, ValueError):
    """An action cannot be encoded safely (CR/LF/NUL, ``:`` in a key, empty name).

    Raised before a single byte is written, so nothing can be injected.
    """
