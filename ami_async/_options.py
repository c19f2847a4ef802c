"""The client's options: refusing harmful values, and the reconnect backoff they give."""

from __future__ import annotations

import random
from typing import Final

__all__ = ["backoff", "check_options", "event_mask"]

#: Above this the delay is ``reconnect_max_delay`` anyway (2.0 ** 64 > any sane ratio).
_MAX_EXPONENT: Final = 64


def _seconds(label: str, value: object, *, zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (value >= 0 if zero else value > 0):  # type: ignore[operator]
        what = "zero or a positive" if zero else "a positive"
        raise ValueError(f"{label} must be {what} number of seconds, not {value!r}")


def check_options(
    *,
    timeout: float,
    action_timeout: float,
    reconnect_delay: float,
    reconnect_max_delay: float,
    reconnect_max_attempts: int | None,
    max_auth_failures: int,
    ping_interval: float | None,
    ping_timeout: float,
    boot_timeout: float,
    max_frame_size: int,
    event_queue_size: int,
) -> None:
    """Raise `ValueError` for a value that would harm the client (a clear message each)."""
    _seconds("timeout", timeout)
    _seconds("action_timeout", action_timeout)
    _seconds("reconnect_delay", reconnect_delay)
    _seconds("reconnect_max_delay", reconnect_max_delay)
    if ping_interval is not None:
        if isinstance(ping_interval, (int, float)) and ping_interval == 0:
            raise ValueError("ping_interval must be positive; ping_interval=None turns it off")
        _seconds("ping_interval", ping_interval)
    _seconds("ping_timeout", ping_timeout)
    _seconds("boot_timeout", boot_timeout, zero=True)
    for label, count, least in (
        ("reconnect_max_attempts", reconnect_max_attempts, 1),
        ("max_auth_failures", max_auth_failures, 1),
        ("max_frame_size", max_frame_size, 1),
        ("event_queue_size", event_queue_size, 1),
    ):
        if count is None and label == "reconnect_max_attempts":
            continue  # no limit
        if not isinstance(count, int) or isinstance(count, bool) or count < least:
            hint = " (None: no limit; reconnect=False: none)" if label.startswith("rec") else ""
            raise ValueError(f"{label} must be an integer of at least {least}{hint}, not {count!r}")


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
