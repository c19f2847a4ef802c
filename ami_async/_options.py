"""The client's options: refusing harmful values, and the reconnect backoff they give."""

from __future__ import annotations

import math
import random
from typing import Final

__all__ = ["FLOORS", "OPTIONS", "backoff", "check_option", "check_options", "event_mask", "seconds"]

#: Above this the delay is ``reconnect_max_delay`` anyway (2.0 ** 64 > any sane ratio).
_MAX_EXPONENT: Final = 64


#: The least values of the options that would otherwise flood the server or
#: the client (a Ping storm, a reconnect storm); seconds.
FLOORS: Final = {
    "ping_interval": 0.05,
    "ping_timeout": 0.05,
    "reconnect_delay": 0.001,
    "reconnect_max_delay": 0.001,
}

#: The least frame a parser accepts (bytes).
MIN_FRAME_SIZE: Final = 64

_COUNTS: Final = {
    "reconnect_max_attempts": 1,
    "max_auth_failures": 1,
    "max_frame_size": MIN_FRAME_SIZE,
    "event_queue_size": 1,
    "action_sessions": 0,
}

#: The options `check_option` knows.
OPTIONS: Final = frozenset(
    {"timeout", "action_timeout", "boot_timeout", "ping_interval", *FLOORS, *_COUNTS}
)


def seconds(label: str, value: object, *, zero: bool = False) -> float:
    """``value`` as a timeout: a finite positive (or, with ``zero``, zero) number of
    seconds, not a bool; else `ValueError`."""
    number = _as_float(value)
    if number is None or not math.isfinite(number) or not (number >= 0 if zero else number > 0):
        what = "zero or a finite positive" if zero else "a finite positive"
        raise ValueError(f"{label} must be {what} number of seconds, not {value!r}")
    return number


def _as_float(value: object) -> float | None:
    """``value`` as a float if it is a real number (not a bool); ``None`` otherwise.

    An int too large for a float (``10**400``) is ``inf``: refused like it.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf


def check_option(name: str, value: object) -> None:
    """Raise `ValueError` if ``value`` would harm the client as option ``name``."""
    if name == "ping_interval" and value is None:
        return  # the keepalive is off
    if name == "reconnect_max_attempts" and value is None:
        return  # no limit
    if name in _COUNTS:
        least = _COUNTS[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            hint = " (None: no limit; reconnect=False: none)" if name.startswith("rec") else ""
            raise ValueError(f"{name} must be an integer of at least {least}{hint}, not {value!r}")
        return
    if name == "ping_interval" and isinstance(value, (int, float)) and value == 0:
        raise ValueError("ping_interval must be positive; ping_interval=None turns it off")
    number = seconds(name, value, zero=name == "boot_timeout")
    floor = FLOORS.get(name)
    if floor is not None and number < floor:
        raise ValueError(f"{name} must be at least {floor} s, not {value!r}")


def check_options(**options: object) -> None:
    """Raise `ValueError` for a value that would harm the client (a clear message each)."""
    for name, value in options.items():
        check_option(name, value)


def backoff(attempt: int, delay: float, max_delay: float) -> float:
    """The pause before reconnect attempt ``attempt`` (0, 1, ...): between half and all
    of ``min(max_delay, delay * 2 ** attempt)``, for any ``attempt`` however large."""
    ceiling = min(max_delay, delay * 2.0 ** min(attempt, _MAX_EXPONENT))
    return ceiling / 2 + random.random() * ceiling / 2


def event_mask(events: bool | str) -> str:
    """The ``Events:`` value for ``events=`` (``True``: ``on``, ``False``: ``off``, or classes)."""
    if events is True:
        return "on"
    if events is False:
        return "off"
    if not isinstance(events, str) or not events.strip():
        raise ValueError("events must be True, False or a class list such as 'call,system'")
    return events
