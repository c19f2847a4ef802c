"""Reading AMI fields: numbers, yes/no flags and caller IDs with Asterisk's `<unknown>`."""

from __future__ import annotations

from ._objects import CallerID

__all__ = ["caller_id", "number", "yes"]

_UNKNOWN = frozenset({"", "<unknown>", "unknown"})


def caller_id(num: str | None, name: str | None) -> CallerID:
    """A `CallerID`, with Asterisk's `<unknown>` (and empty) read as `None`."""
    return CallerID(None if num in _UNKNOWN else num, None if name in _UNKNOWN else name)


def number(value: str | None) -> int | None:
    """An int field, or `None` when absent or not a number."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else None


def yes(value: str | None) -> bool:
    """A flag field (`Yes`, `1`, `true`, `on`)."""
    return (value or "").strip().lower() in ("1", "yes", "true", "on")
