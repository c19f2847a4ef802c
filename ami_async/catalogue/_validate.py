"""`check_action`: ``send_action``'s check of a name and its required headers.

Against the catalogue, for the connected server's version
(``client.asterisk_version``; every version's names when it is unknown). A
problem is logged as a WARNING once per action name, or, with the client's
``strict=True``, raised as `InvalidActionError` before anything is sent.

The hot path is one dict lookup: what an action name needs is worked out once
per name (and per connection: the version may change on a reconnect) and
cached on the client; an action with no required header costs nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, cast

from ..errors import InvalidActionError

if TYPE_CHECKING:
    from ..client import Client
    from ._facts import ActionInfo

__all__ = ["check_action", "lacking"]

logger = logging.getLogger("ami_async")

#: Past this many distinct names the cache stops growing, and past this many warned
#: names nothing more is logged (names are the caller's).
CACHE_MAX: Final = 1024


def check_action(sender: object, name: str, headers: Mapping[str, object]) -> None:
    """Check action ``name`` with ``headers`` before ``send_action`` sends it.

    ``sender`` is the `Client` (typed ``object``: ``send_action`` lives on a mixin).
    """
    if not isinstance(name, str):
        return  # the encoder refuses it (InvalidActionError)
    client = cast("Client", sender)
    checks = client._action_checks
    need = checks.get(name)
    if need is None:
        need = _needs(client, name)
        if len(checks) < CACHE_MAX:
            checks[name] = need
    if need:
        _check(client, name, headers, need)


def _needs(client: Client, name: str) -> tuple[str, ...] | str:
    """What ``name`` needs on this connection: required headers, or a problem with the name."""
    from ._facts import action, server_version

    if not isinstance(name, str) or not name.strip() or not name.isprintable():
        return ()  # no name, or CR, LF, NUL...: the encoder refuses it, unlogged
    version = server_version(client.asterisk_version, client.ami_version)
    info = action(name, version)
    if info is None:
        return f"{name}: not an action Asterisk documents (in the catalogue's versions)"
    if version is not None and not info.available:
        return lacking(client, info)
    return info.required


def lacking(client: Client, info: ActionInfo) -> str:
    """Why action ``info`` is not there on ``client``'s server, naming the version the
    catalogue read it as when the server's own says no number (``GIT-master-...``)."""
    from ._facts import resolve_version

    if info.version in info.versions and not info.privilege:  # documented, not registered
        return (
            f"{info.name}: Asterisk documents this action ({', '.join(info.versions)}) "
            "but never registers it: no server answers it"
        )
    shown = client.asterisk_version or f"of AMI {client.ami_version}"
    if resolve_version(client.asterisk_version) is None:
        shown += f", read as {info.version}"
    return (
        f"{info.name}: the server (Asterisk {shown}) does not have this action: "
        f"Asterisk documents it in {', '.join(info.versions)}"
    )


def _check(
    client: Client, name: str, headers: Mapping[str, object], need: tuple[str, ...] | str
) -> None:
    if isinstance(need, str):
        problem = need
    else:
        given = {key.lower() for key in headers}
        missing = [header for header in need if header.lower() not in given]
        if not missing:
            return
        problem = f"{name}: missing required header(s) {', '.join(missing)}"
    if client.strict:
        raise InvalidActionError(problem)
    warned = client._action_warned
    if name.lower() not in warned and len(warned) < CACHE_MAX:
        warned.add(name.lower())
        more = "; no more such warnings" if len(warned) == CACHE_MAX else ""
        logger.warning(
            "%s (sent anyway; strict=True refuses it%s)",
            problem,
            more,
            extra={"ami_host": f"{client.host}:{client.port}", "ami_action": name},
        )
