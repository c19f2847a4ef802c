"""ami_async: an asyncio-native client for the Asterisk Manager Interface."""

from __future__ import annotations

import logging as _logging

from . import agi as agi
from . import export as export  # no redis needed until an exporter starts
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
from .live import Live
from .message import Event, Message, Response
from .pool import Fleet, ServerStatus
from .protocol import Parser, encode_action

__version__ = "0.1.0"

# A library logs, the application decides where to: without this, Python's
# last-resort handler prints raw WARNING lines in apps that never set logging up.
_logging.getLogger("ami_async").addHandler(_logging.NullHandler())

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
    "Fleet",
    "InvalidActionError",
    "Live",
    "Message",
    "OriginateReason",
    "OriginateResult",
    "Parser",
    "ProtocolError",
    "Response",
    "ServerStatus",
    "Subscription",
    "SubscriptionOverflowError",
    "__version__",
    "connect",
    "encode_action",
]
