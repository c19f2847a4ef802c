"""The exception tree of ami_async.

Every exception the library raises on purpose derives from `AMIError`:

```text
AMIError
├── AMIConnectionError          cannot connect, TLS failure, banner/login never came
│   └── ConnectionLostError     an established link dropped (pending actions fail with it)
├── AuthenticationError         the server refused the login
├── ActionError                 the server answered Response: Error (has .response)
├── ActionTimeoutError          no answer within timeout= (also a TimeoutError
│                               and an asyncio.TimeoutError, on every Python)
├── ProtocolError               the peer broke the framing (over-long frame, ...)
├── SubscriptionOverflowError   a subscriber fell behind and its bounded queue overflowed
├── InvalidActionError          the caller's action cannot be encoded (also a ValueError)
└── AGIError                    an AGI command failed (has .answer when Asterisk answered)
    ├── AGIHangupError          the channel is gone: HANGUP, 511, -1 on a dead channel,
    │                           AsyncAGIEnd, or the FastAGI socket / AMI link closed
    ├── AGIUsageError           520: Asterisk printed the command's usage
    ├── AGIInvalidCommandError  510: Asterisk does not know the command
    └── AGITimeoutError         no answer within timeout= (also a TimeoutError)
```

Messages never contain the value of a ``Secret`` or ``Key`` header.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Message, Response

__all__ = [
    "AGIError",
    "AGIHangupError",
    "AGIInvalidCommandError",
    "AGITimeoutError",
    "AGIUsageError",
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
    ``str()`` is ``"<Action>: <reason>"``: the server's ``Message``, or for a
    failing CLI command (Asterisk 14+) its first output lines instead of the
    ``Command output follows`` that says nothing. A reason that already starts
    with the action's name (``Originate failed``) is not prefixed again.
    """

    def __init__(self, response: Response, action: str | None = None) -> None:
        self.response = response
        self.action = action
        message = response.get("Message", "").strip()
        shown = " / ".join(line.strip() for line in response.get_all("Output")[:3] if line.strip())
        if shown and message.lower() in ("", "command output follows"):
            text = shown
        elif shown:
            text = f"{message}: {shown}"
        else:
            text = message or f"Response: {response.get('Response') or 'Error'}"
        if action and not text.lower().startswith(action.lower()):
            text = f"{action}: {text}"
        super().__init__(text)

    @property
    def message(self) -> str:
        """The ``Message:`` header of the error response ("" when absent)."""
        return self.response.get("Message", "")


if sys.version_info >= (3, 11):

    class _Timeout(TimeoutError):
        """`asyncio.TimeoutError` is the builtin `TimeoutError` from Python 3.11 on."""

else:

    class _Timeout(asyncio.TimeoutError, TimeoutError):
        """Python 3.10: `asyncio.TimeoutError` and `TimeoutError` are distinct classes."""


class ActionTimeoutError(AMIError, _Timeout):
    """No (complete) answer arrived within the action's timeout.

    It is a `TimeoutError` and an `asyncio.TimeoutError` on every supported
    Python (on 3.10 these are two different classes): ``except
    asyncio.TimeoutError`` around an action catches it.
    """

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


class AGIError(AMIError):
    """An AGI command failed.

    ``answer`` is Asterisk's whole answer text (e.g. the 520 usage lines), or
    ``None`` when none came; ``command`` the command line that was sent.
    """

    def __init__(
        self, message: str, *, command: str | None = None, answer: str | None = None
    ) -> None:
        super().__init__(message)
        self.command = command
        self.answer = answer


class AGIHangupError(AGIError):
    """The channel hung up (``HANGUP``, ``511``, ``-1`` on a dead channel, ``AsyncAGIEnd``)
    or the session's transport (the FastAGI socket, the AMI link) is gone."""


class AGIUsageError(AGIError):
    """Asterisk answered ``520``: the command's arguments are wrong (``answer`` has the usage)."""


class AGIInvalidCommandError(AGIError):
    """Asterisk answered ``510 Invalid or unknown command``."""


class AGITimeoutError(AGIError, _Timeout):
    """No answer within the command's ``timeout=``; also a `TimeoutError` on every Python."""
