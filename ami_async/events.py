"""Typed views of common event fields: channel states and hangup causes as enums.

Events stay plain `ami_async.Event` mappings (an event or a
field Asterisk adds tomorrow is never dropped); these helpers read the
numeric fields that mean something::

    state = channel_state(ev)            # ChannelState.UP, or None
    cause = hangup_cause(ev)             # HangupCause.USER_BUSY, a bare int, or None
    if cause in (HangupCause.USER_BUSY, HangupCause.NO_ANSWER): ...
"""

from __future__ import annotations

import enum

from .message import Message

__all__ = ["ChannelState", "HangupCause", "channel_state", "hangup_cause"]


class ChannelState(enum.IntEnum):
    """``ChannelState`` (``enum ast_channel_state``); ``ChannelStateDesc`` is its text."""

    DOWN = 0
    RESERVED = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7
    DIALING_OFFHOOK = 8
    PRERING = 9
    MUTE = 10


class HangupCause(enum.IntEnum):
    """``Cause`` of ``Hangup``/``HangupRequest`` (ITU-T Q.850, as Asterisk names them)."""

    NOT_DEFINED = 0
    UNALLOCATED = 1
    NO_ROUTE_TRANSIT_NET = 2
    NO_ROUTE_DESTINATION = 3
    MISDIALLED_TRUNK_PREFIX = 5
    CHANNEL_UNACCEPTABLE = 6
    CALL_AWARDED_DELIVERED = 7
    PRE_EMPTED = 8
    NUMBER_PORTED_NOT_HERE = 14
    NORMAL_CLEARING = 16
    USER_BUSY = 17
    NO_USER_RESPONSE = 18
    NO_ANSWER = 19
    SUBSCRIBER_ABSENT = 20
    CALL_REJECTED = 21
    NUMBER_CHANGED = 22
    REDIRECTED_TO_NEW_DESTINATION = 23
    ANSWERED_ELSEWHERE = 26
    DESTINATION_OUT_OF_ORDER = 27
    INVALID_NUMBER_FORMAT = 28
    FACILITY_REJECTED = 29
    RESPONSE_TO_STATUS_ENQUIRY = 30
    NORMAL_UNSPECIFIED = 31
    NORMAL_CIRCUIT_CONGESTION = 34
    NETWORK_OUT_OF_ORDER = 38
    NORMAL_TEMPORARY_FAILURE = 41
    SWITCH_CONGESTION = 42
    ACCESS_INFO_DISCARDED = 43
    REQUESTED_CHAN_UNAVAIL = 44
    FACILITY_NOT_SUBSCRIBED = 50
    OUTGOING_CALL_BARRED = 52
    INCOMING_CALL_BARRED = 54
    BEARERCAPABILITY_NOTAUTH = 57
    BEARERCAPABILITY_NOTAVAIL = 58
    BEARERCAPABILITY_NOTIMPL = 65
    CHAN_NOT_IMPLEMENTED = 66
    FACILITY_NOT_IMPLEMENTED = 69
    INVALID_CALL_REFERENCE = 81
    INCOMPATIBLE_DESTINATION = 88
    INVALID_MSG_UNSPECIFIED = 95
    MANDATORY_IE_MISSING = 96
    MESSAGE_TYPE_NONEXIST = 97
    WRONG_MESSAGE = 98
    IE_NONEXIST = 99
    INVALID_IE_CONTENTS = 100
    WRONG_CALL_STATE = 101
    RECOVERY_ON_TIMER_EXPIRE = 102
    MANDATORY_IE_LENGTH_ERROR = 103
    PROTOCOL_ERROR = 111
    INTERWORKING = 127


def _number(message: Message, key: str) -> int | None:
    value = message.get(key)
    if value is None:
        return None
    value = value.strip()
    if not value.lstrip("-").isdigit():
        return None
    return int(value)


def channel_state(event: Message, prefix: str = "") -> ChannelState | None:
    """The channel's state (``prefix="Dest"`` for ``DestChannelState``), or ``None``."""
    number = _number(event, prefix + "ChannelState")
    if number is None:
        return None
    try:
        return ChannelState(number)
    except ValueError:
        return None


def hangup_cause(event: Message) -> HangupCause | int | None:
    """The ``Cause`` as a `HangupCause` (a bare ``int`` if unknown), or ``None``."""
    number = _number(event, "Cause")
    if number is None:
        return None
    try:
        return HangupCause(number)
    except ValueError:
        return number
