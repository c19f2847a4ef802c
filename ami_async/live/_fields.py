"""Reading AMI fields (numbers, flags, caller IDs with Asterisk's `<unknown>`), and the
cheap ways the model reads an event's text and copies its frozen objects."""

from __future__ import annotations

from typing import Any, TypeVar

from ._objects import CallerID

__all__ = ["caller_id", "evolve", "line_value", "make", "number", "text_fields", "yes"]

_T = TypeVar("_T")
_UNKNOWN = frozenset({"", "<unknown>", "unknown"})
_new = object.__new__
_set = object.__setattr__


#: `caller_id`'s answers: the same few numbers and names come again and again, and a
#: frozen dataclass's `__init__` costs several dict look-ups' worth. Bounded: cleared when full.
_CALLERS: dict[tuple[str | None, str | None], CallerID] = {}
_CALLERS_MAX = 4096


def caller_id(num: str | None, name: str | None) -> CallerID:
    """A `CallerID`, with Asterisk's `<unknown>` (and empty) read as `None`."""
    key = (num, name)
    who = _CALLERS.get(key)
    if who is None:
        who = CallerID(None if num in _UNKNOWN else num, None if name in _UNKNOWN else name)
        if len(_CALLERS) >= _CALLERS_MAX:
            _CALLERS.clear()
        _CALLERS[key] = who
    return who


def number(value: str | None) -> int | None:
    """An int field, or `None` when absent or not a number."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.lstrip("-").isdigit() else None


def yes(value: str | None) -> bool:
    """A flag field (`Yes`, `1`, `true`, `on`)."""
    return (value or "").strip().lower() in ("1", "yes", "true", "on")


def line_value(text: str, tag: str, start: int = 0, end: int | None = None) -> str | None:
    """The value of the line `tag` (`"\\nKey: "`) in a frame's raw text, or `None`.

    Asterisk writes each header as `Key: value` on a line of its own, so a plain
    search finds one; the caller falls back to `Event.get` where that fails.
    A line ends at its LF, one CR before it dropped, as `Event.get` reads it.
    `start`, `end`: where the line may start.
    """
    pos = text.find(tag, start) if end is None else text.find(tag, start, end)
    if pos < 0:
        return None
    pos += len(tag)
    eol = text.find("\n", pos)
    value = text[pos:] if eol < 0 else text[pos:eol]
    return value[:-1] if value[-1:] == "\r" else value


def text_fields(text: str) -> dict[str, str]:
    """Every `Key: value` line of a frame's raw text, keys as written (the first of each wins).

    About a third of what `Event.get` costs to parse the same frame, because
    keys are not folded to lower case: only for fields Asterisk always spells
    the same way (checked on every capture of Asterisk 13 and 22).
    """
    fields: dict[str, str] = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep and key not in fields:
            fields[key] = value
    return fields


def make(cls: type[_T], values: dict[str, Any]) -> _T:
    """An instance of the frozen (dict-based) dataclass `cls` with `values`: every field given."""
    obj = _new(cls)
    _set(obj, "__dict__", values)
    return obj


def evolve(obj: _T, changes: dict[str, Any]) -> _T:
    """A copy of the frozen (dict-based) dataclass instance `obj` with `changes` applied.

    What `dataclasses.replace` does, without calling `__init__` (whose
    `object.__setattr__` per field costs ten times as much as this dict copy).
    """
    values = obj.__dict__.copy()
    values.update(changes)
    new = _new(type(obj))
    _set(new, "__dict__", values)
    return new
