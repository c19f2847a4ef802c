"""ami_async: an asyncio-native client for the Asterisk Manager Interface."""

from __future__ import annotations

from .errors import (
    ActionError,
    ActionTimeoutError,
    AMIConnectionError,
    AMIError,
    AuthenticationError,
    ConnectionLostError,
    InvalidActionError,
    ProtocolError,
    SubscriptionOverflowError,
)
from .message import Event, Message, Response
from .protocol import Parser, encode_action

__version__ = "0.1.0"

__all__ = [
    "AMIConnectionError",
    "AMIError",
    "ActionError",
    "ActionTimeoutError",
    "AuthenticationError",
    "ConnectionLostError",
    "Event",
    "InvalidActionError",
    "Message",
    "Parser",
    "ProtocolError",
    "Response",
    "SubscriptionOverflowError",
    "__version__",
    "encode_action",
]
