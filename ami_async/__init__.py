"""ami_async: an asyncio-native client for the Asterisk Manager Interface."""

from __future__ import annotations

from .actions import OriginateReason, OriginateResult
from .client import Client, connect
from .dispatch import EventList, Subscription
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
    "Client",
    "ConnectionLostError",
    "Event",
    "EventList",
    "InvalidActionError",
    "Message",
    "OriginateReason",
    "OriginateResult",
    "Parser",
    "ProtocolError",
    "Response",
    "Subscription",
    "SubscriptionOverflowError",
    "__version__",
    "connect",
    "encode_action",
]
