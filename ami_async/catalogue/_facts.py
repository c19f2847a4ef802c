"""The catalogue's facts: the data, loaded on first use, and the queries on it."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from ._naming import snake

__all__ = [
    "ActionInfo",
    "EventInfo",
    "Parameter",
    "action",
    "action_names",
    "event",
    "event_names",
    "method_name",
    "resolve_version",
    "server_version",
    "versions",
]


@dataclass(frozen=True)
class Parameter:
    """A header of an action (or a field of an event) in one version."""

    name: str
    required: bool
    versions: tuple[str, ...]
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionInfo:
    """What the catalogue knows about an action, as of ``version``.

    ``available`` is False when ``version`` does not document it (then the
    parameters are those of the newest version that does), or documents it
    without registering it. ``is_list``: it
    answers with an EventList (``item_events``, ending with ``complete_event``);
    ``conditional_list``: only in some forms (``Hangup`` with a ``/regex/``).
    ``privilege`` is ``""`` for an action Asterisk documents but never registers
    (``FilterList`` in 13.38.3).
    """

    name: str
    version: str
    available: bool
    versions: tuple[str, ...]
    privilege: str
    parameters: tuple[Parameter, ...]
    is_list: bool
    item_events: tuple[str, ...]
    complete_event: str | None
    conditional_list: bool
    method: str

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the required parameters."""
        return tuple(p.name for p in self.parameters if p.required)


@dataclass(frozen=True)
class EventInfo:
    """What the catalogue knows about an event, as of ``version``.

    ``fields`` are its own fields followed by those of its channel or bridge
    snapshots (``snapshots``: ``(kind, prefix)`` pairs; a snapshot field's
    header is the prefix plus the field's name).
    """

    name: str
    version: str
    available: bool
    versions: tuple[str, ...]
    event_class: str
    fields: tuple[Parameter, ...]
    snapshots: tuple[tuple[str, str], ...]
    typed_name: str


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    from importlib import resources  # here: importing the package stays cheap

    text = resources.files("ami_async.catalogue").joinpath("data.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    data["actions_lower"] = {name.lower(): name for name in data["actions"]}
    data["events_lower"] = {name.lower(): name for name in data["events"]}
    return data


def versions() -> tuple[str, ...]:
    """The catalogue's versions, oldest first."""
    return tuple(_data()["versions"])


#: A version number standing alone (``22``, ``18.9`` in ``certified/18.9-cert5``; not the
#: ``1`` of ``GIT-master-1a2b``).
_MAJOR = re.compile(r"(?:^|[^0-9A-Za-z])(\d+)(?:\.\d+)*(?=$|[^0-9A-Za-z])")


def resolve_version(version: str | None) -> str | None:
    """The catalogue version that describes a server of ``version``, or ``None``.

    A catalogue version given exactly is itself; otherwise the one of the same
    major release, else the nearest older one, else the oldest
    (``"22.5.0"`` -> ``"22.11.0-rc1"``, ``"21.1.0"`` -> ``"20.20.1"``,
    ``"certified/18.9-cert5"`` -> ``"18.26.4"``). ``None`` or a text without
    a number (``"GIT-master-1a2b"``): ``None``, the version is unknown.
    """
    if version is None:
        return None
    known = versions()
    if version in known:
        return version
    match = _MAJOR.search(version)
    if match is None:
        return None
    major = int(match.group(1))
    older = [v for v in known if int(v.split(".")[0]) <= major]
    return older[-1] if older else known[0]


def server_version(asterisk_version: str | None, ami_version: str | None) -> str | None:
    """The catalogue version for a server: by its Asterisk version (``CoreSettings``)
    if known, else by the AMI version of its banner (AMI ``11.0.0`` came with
    Asterisk 22, ``N.x`` with ``N + 11`` from 3 on, ``2.x`` with 12 and 13);
    ``None`` when neither says."""
    if asterisk_version is not None:
        found = resolve_version(asterisk_version)
        if found is not None:
            return found
    match = _MAJOR.match(ami_version or "")
    if match is None:
        return None
    major = int(match.group(1))
    return resolve_version(str(major + 11 if major >= 3 else 13 if major == 2 else 11))


def _pick(version: str | None) -> tuple[str, int]:
    """The catalogue version for ``version`` (newest when ``None``) and its bit."""
    known = versions()
    chosen = resolve_version(version) or known[-1]
    return chosen, 1 << known.index(chosen)


def _names_in(bits: int) -> tuple[str, ...]:
    return tuple(v for i, v in enumerate(versions()) if bits >> i & 1)


def _asked(bits: int, bit: int) -> int:
    """``bit`` if it is among ``bits``, else the newest of ``bits``."""
    return bit if bits & bit else 1 << (bits.bit_length() - 1)


def method_name(action_name: str) -> str | None:
    """The `Actions` method of an action (``"QueueAdd"`` -> ``"queue_add"``), or ``None``."""
    info = action(action_name)
    return None if info is None else info.method


def action(name: str, version: str | None = None) -> ActionInfo | None:
    """What the catalogue knows about action ``name`` (any case) for ``version``
    (a server's or a catalogue version; newest when ``None``); ``None`` if it
    documents no such action in any version."""
    data = _data()
    key = data["actions_lower"].get(name.lower())
    if key is None:
        return None
    entry = data["actions"][key]
    chosen, bit = _pick(version)
    use = _asked(entry["v"], bit)
    params = tuple(
        Parameter(p[0], bool(p[2] & use), _names_in(p[1]), tuple(p[3]) if len(p) > 3 else ())
        for p in entry["params"]
        if p[1] & use
    )
    listing = entry["list"]
    by = entry.get("privilege_by_version") or {}
    privilege = by.get(_names_in(use)[0], entry["privilege"]) or ""
    return ActionInfo(
        name=key,
        version=chosen,
        available=bool(entry["v"] & bit) and bool(privilege),  # documented and registered
        versions=_names_in(entry["v"]),
        privilege=privilege,
        parameters=params,
        is_list=listing is not None,
        item_events=tuple(listing[0]) if listing else (),
        complete_event=listing[1] if listing else None,
        conditional_list=bool(entry.get("conditional_list")),
        method=snake(key),
    )


def event(name: str, version: str | None = None) -> EventInfo | None:
    """What the catalogue knows about event ``name`` (any case) for ``version``
    (newest when ``None``); ``None`` if it documents no such event."""
    data = _data()
    key = data["events_lower"].get(name.lower())
    if key is None:
        return None
    entry = data["events"][key]
    chosen, bit = _pick(version)
    use = _asked(entry["v"], bit)
    label = _names_in(use)[0]
    snaps = (entry.get("snapshots_by_version") or {}).get(label, entry["snapshots"])
    fields = [
        Parameter(f[0], False, _names_in(f[1]), tuple(f[2]) if len(f) > 2 else ())
        for f in entry["fields"]
        if f[1] & use
    ]
    for kind, prefix in snaps:
        fields.extend(
            Parameter(prefix + f[0], False, _names_in(f[1]))
            for f in data["snapshots"][kind]
            if f[1] & use
        )
    return EventInfo(
        name=key,
        version=chosen,
        available=bool(entry["v"] & bit),
        versions=_names_in(entry["v"]),
        event_class=(entry.get("class_by_version") or {}).get(label, entry["class"]),
        fields=tuple(fields),
        snapshots=tuple((kind, prefix) for kind, prefix in snaps),
        typed_name=re.sub(r"[^0-9A-Za-z]", "", key) + "Event",
    )


def action_names(version: str | None = None) -> list[str]:
    """The actions documented in ``version`` (every version's when ``None``), sorted."""
    return _names(_data()["actions"], version)


def event_names(version: str | None = None) -> list[str]:
    """The events documented in ``version`` (every version's when ``None``), sorted."""
    return _names(_data()["events"], version)


def _names(table: dict[str, Any], version: str | None) -> list[str]:
    if version is None:
        return sorted(table)
    _, bit = _pick(version)
    return sorted(name for name, entry in table.items() if entry["v"] & bit)
