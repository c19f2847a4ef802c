"""A finished call's `CallRecord`, by the rules Asterisk's CDR and CEL follow.

Disposition (what `cdr.c` writes): a call any of whose channels was answered is
`ANSWERED`; otherwise its first dial's outcome (`DialEnd`'s `DialStatus` of a
dialling channel, the CDR with a `DestinationChannel`); otherwise what the first
channel's hang-up cause means. Duration and billsec follow CEL: from the first
channel's start (its first answer) to the end of the call's last channel.
"""

from __future__ import annotations

from datetime import datetime

from ..events import HangupCause
from ._calls import Call, CallRecord
from ._fields import make
from ._objects import CallerID, Disposition

__all__ = ["build_record", "disposition_of_cause", "disposition_of_dial"]

_DIAL: dict[str, Disposition] = {
    "ANSWER": "ANSWERED",
    "BUSY": "BUSY",
    "NOANSWER": "NO ANSWER",
    "CANCEL": "NO ANSWER",
    "CONGESTION": "CONGESTION",
    "CHANUNAVAIL": "FAILED",
    "DONTCALL": "NO ANSWER",
    "TORTURE": "NO ANSWER",
    "INVALIDARGS": "FAILED",
}

_NORMAL = (0, HangupCause.NORMAL_CLEARING)


def disposition_of_dial(status: str) -> Disposition:
    """The CDR disposition of a dial that ended with `DialStatus: status`."""
    return _DIAL.get(status.upper(), "NO ANSWER")


def disposition_of_cause(cause: HangupCause | int | None, answered: bool) -> Disposition:
    """The CDR disposition of an unanswered channel that hung up with `cause` (cdr.c's switch)."""
    if answered:
        return "ANSWERED"
    if cause == HangupCause.USER_BUSY:
        return "BUSY"
    if cause == HangupCause.NORMAL_CIRCUIT_CONGESTION:
        return "CONGESTION"
    if cause in (HangupCause.NO_ROUTE_DESTINATION, HangupCause.SUBSCRIBER_ABSENT):
        return "FAILED"
    if not cause:  # no cause and nobody dialled: Asterisk counts it as failed
        return "FAILED"
    return "NO ANSWER"


def build_record(call: Call, ended_at: datetime, reason: str) -> CallRecord:
    """The final record of `call`, whose last channel went at `ended_at`."""
    channels = call.all_channels
    first = channels[0] if channels else None
    started_at = call.started_at
    if first is not None and first.created_at < started_at:
        started_at = first.created_at
    answered_at = call._answered_at
    if answered_at is not None:
        disposition: Disposition = "ANSWERED"
    elif call._dial_status:
        disposition = disposition_of_dial(call._dial_status)
    elif first is not None and call._dest_status.get(first.uniqueid):
        disposition = disposition_of_dial(call._dest_status[first.uniqueid])
    else:
        disposition = disposition_of_cause(first.hangup_cause if first is not None else None, False)
    cause = None
    for _, c in call._causes:
        if c not in _NORMAL and c is not None:
            cause = c
            break
    if cause is None and first is not None:
        cause = first.hangup_cause
    duration = max(0.0, (ended_at - started_at).total_seconds())
    billsec = 0.0 if answered_at is None else max(0.0, (ended_at - answered_at).total_seconds())
    if first is None:
        caller, callee = call.caller, call.callee
    else:  # (what `call.caller` and `call.callee` say, from the channels read once)
        caller = first.caller
        callee = call._callee if call._callee is not None else CallerID(first.exten)
    return make(
        CallRecord,
        {
            "linkedid": call.linkedid,
            "caller": caller,
            "callee": callee,
            "started_at": started_at,
            "answered_at": answered_at,
            "ended_at": ended_at,
            "duration": duration,
            "billsec": billsec,
            "disposition": disposition,
            "cause": cause,
            "transfers": tuple(call._transfers),
            "channels": channels,
            "reason": reason,
        },
    )
