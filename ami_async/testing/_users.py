"""FakeAsterisk's manager users (manager.conf): secrets, read/write classes, and security events."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._wire import _normalise_mask

if TYPE_CHECKING:
    from ._session import FakeSession

__all__ = ["LAB_USERS", "FakeUser"]


@dataclass(frozen=True)
class FakeUser:
    """One manager.conf user: its secret and what it may read, write and do.

    `read` / `write` are class lists as in manager.conf (`"all"`, `"call,reporting"`,
    `""` for none): events outside `read` never reach the user's sessions, and
    actions whose privilege is outside `write` answer `Permission denied`.
    `allow_multiple_login=False` refuses a second Login while a session of the
    user is logged in (`Login Already In Use`). `event_filter` is a regular
    expression searched in each event's text (`Key: value` lines joined by
    CRLF), like a legacy `eventfilter`: only matching events reach the user,
    the `FullyBooted` sent at login excepted.
    """

    secret: str
    read: str = "all"
    write: str = "all"
    allow_multiple_login: bool = True
    event_filter: str | None = None


LAB_USERS: Final[Mapping[str, FakeUser]] = {
    "admin": FakeUser("amp111"),
    "monitor": FakeUser("mon111", read="call,reporting", write=""),
    # eventfilter(action(include),name(Hangup)): the event named Hangup only.
    "filtered": FakeUser("flt111", event_filter=r"(?m)^Event: Hangup\r$"),
    # The legacy "eventfilter = Event: Hangup" regex: HangupRequest matches as well.
    "filtered_legacy": FakeUser("flt222", event_filter="Event: Hangup"),
    "callonly": FakeUser("cal111", read="call", write="originate,call"),
    "single": FakeUser("sgl111", allow_multiple_login=False),
}
"""The manager users of the lab the fixtures were recorded on (shared/fixtures README)."""


def _read_mask(user: FakeUser) -> str:
    return _normalise_mask(user.read) if user.read.strip() else "off"


def _compiled_filter(user: FakeUser) -> re.Pattern[str] | None:
    return re.compile(user.event_filter) if user.event_filter is not None else None


def _may_write(user: FakeUser, privilege: str) -> bool:
    """Whether `user` may send an action of `privilege` (`"originate,all"`, `"<none>"`).

    manager.c: allowed when the action needs no class, or the user's write
    classes share one with it.
    """
    needed = {c.strip() for c in privilege.split(",")} - {"all", "<none>", ""}
    if not needed:
        return True
    mask = _normalise_mask(user.write) if user.write.strip() else "off"
    return mask == "on" or bool(needed & set(mask.split(",")))


# -- security events (main/manager.c report_*, the login_success captures) ---------------


def _event_tv(when: float) -> str:
    """`2026-11-27T09:42:16.010+0000`: UTC with milliseconds."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
    return f"{stamp}.{int(when % 1 * 1000):03d}+0000"


def _address(session: FakeSession, which: str) -> str:
    host, port = session.peer if which == "remote" else session._local
    transport = "TLS" if session.server.ssl is not None else "TCP"
    family = "IPV6" if ":" in host else "IPV4"
    return f"{family}/{transport}/{host}/{port}"


def _security_event(
    session: FakeSession, name: str, severity: str, account: str, extra: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    return [
        ("Event", name),
        ("Privilege", "security,all"),
        ("EventTV", _event_tv(time.time())),
        ("Severity", severity),
        ("Service", "AMI"),
        ("EventVersion", "1"),
        ("AccountID", account),
        ("SessionID", f"0x{id(session):x}"),
        ("LocalAddress", _address(session, "local")),
        ("RemoteAddress", _address(session, "remote")),
        *extra,
    ]


def successful_auth(session: FakeSession, username: str) -> list[tuple[str, str]]:
    """The `SuccessfulAuth` event of a login (plain and MD5 alike say `UsingPassword: 0`)."""
    extra = [("UsingPassword", "0"), ("SessionTV", _event_tv(session._connected_at))]
    return _security_event(session, "SuccessfulAuth", "Informational", username, extra)


def session_limit(session: FakeSession) -> list[tuple[str, str]]:
    """The `SessionLimit` event of a Login refused by `allowmultiplelogin = no`."""
    extra = [("SessionTV", "1970-01-01T00:00:00.000+0000")]
    return _security_event(session, "SessionLimit", "Error", "", extra)
