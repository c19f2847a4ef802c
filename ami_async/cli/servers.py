"""Several servers at once (`events`, `export`): `--server NAME=HOST[:PORT]`, `[ami:NAME]`.

Each server's own settings (the address given with `--server`, then its
`[ami:NAME]` section of the config file) come first; what it does not say
comes from the flags, the environment, the `[ami]` section and the defaults,
as for one server. The servers are run as a `Fleet`, so one that is down never
holds the others back.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from ..pool import Fleet
from .common import UsageError
from .connection import (
    Settings,
    _ssl_context,
    default_config_path,
    log,
    read_secret_from_stdin,
    read_sections,
    resolve_settings,
)

__all__ = ["add_servers", "open_fleet", "resolve_servers"]

_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SECTION = "ami:"


def add_servers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=HOST[:PORT]",
        help="one of several servers, named NAME on each line (repeatable); NAME alone is "
        "the [ami:NAME] section of the config file (with --fake: an embedded PBX each). "
        "Without --server, every [ami:NAME] section of the config file, if it has any",
    )


def _address(text: str, what: str) -> dict[str, str]:
    """``host``, ``[v6]``, ``host:port``, ``[v6]:port`` as config keys."""
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d*))?|([^:\[\]]+)(?::(\d*))?", text)
    if match is None or not text:
        raise UsageError(f"{what}: expected HOST or HOST:PORT ([IPv6]:PORT), not {text!r}")
    host = match.group(1) or match.group(3)
    port = match.group(2) if match.group(1) else match.group(4)
    found = {"host": host}
    if port is not None:
        found["port"] = port
    return found


def resolve_servers(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    read_secret: Callable[[], str] = read_secret_from_stdin,
) -> dict[str, Settings] | None:
    """Each named server's `Settings`, in order; `None` when the command is for one server."""
    given: list[str] = list(getattr(args, "server", []) or [])
    fake = bool(getattr(args, "fake", False))
    config_flag: str | None = getattr(args, "config", None)
    config_path = Path(config_flag).expanduser() if config_flag else default_config_path()
    sections: dict[str, dict[str, str]] = {}
    if not fake:
        every = read_sections(config_path, required=config_flag is not None)
        sections = {n[len(_SECTION) :]: s for n, s in every.items() if n.startswith(_SECTION)}
    if not given:
        if fake or not sections or getattr(args, "host", None) or getattr(args, "port", None):
            return None  # one server: the flags, environment and [ami] as usual
        given = list(sections)
    elif getattr(args, "host", None) or getattr(args, "port", None):
        raise UsageError("--server gives each server's address: leave out --host and --port")

    secrets: list[str] = []

    def secret_once() -> str:  # `--secret -` is read once for every server
        if not secrets:
            secrets.append(read_secret())
        return secrets[0]

    servers: dict[str, Settings] = {}
    for item in given:
        name, sep, address = item.partition("=")
        name = name.strip()
        if not _NAME.fullmatch(name):
            raise UsageError(
                f"--server {item!r}: a server's name is letters, digits, '_', '.' or '-' "
                "(then =HOST[:PORT])"
            )
        if name in servers:
            raise UsageError(f"--server: {name!r} is given twice")
        own: dict[str, str]
        if fake:
            if sep:
                raise UsageError("--fake runs an embedded PBX for each --server NAME: no address")
            own = {}
        elif sep:
            own = {**sections.get(name, {}), **_address(address.strip(), f"--server {name}")}
        elif name in sections:
            own = sections[name]
        else:
            raise UsageError(
                f"--server {name}: no address and no [ami:{name}] section in {config_path}"
            )
        where = f"--server {name}" if sep else f"{config_path} [ami:{name}]"
        servers[name] = resolve_settings(
            args, environ, read_secret=secret_once, server=own, server_source=where
        )
    return servers


@contextlib.asynccontextmanager
async def open_fleet(
    servers: Mapping[str, Settings],
    *,
    events: bool | str,
    ping_interval: float | None = None,
    trace: bool = False,
) -> AsyncIterator[Fleet]:
    """A `Fleet` for ``servers``, not yet connected (subscribe first, then connect).

    With `Settings.fake` each server is an embedded FakeAsterisk, for as long as the block.
    """
    options: dict[str, Any] = {
        "events": events,
        "reconnect": True,
        "ping_interval": ping_interval,
        "trace": trace,
    }
    async with contextlib.AsyncExitStack() as stack:
        specs: dict[str, dict[str, Any]] = {}
        for name, settings in servers.items():
            spec: dict[str, Any] = {
                "timeout": settings.timeout,
                "action_timeout": settings.timeout,
                **options,
            }
            if settings.fake:
                from ..testing import FakeAsterisk

                pbx = await stack.enter_async_context(FakeAsterisk())
                username, secret = next(iter(pbx.users.items()))
                log.info("%s: an embedded FakeAsterisk on %s:%s", name, pbx.host, pbx.port)
                spec.update(host=pbx.host, port=pbx.port, username=username, secret=secret)
            else:
                log.info(
                    "%s: %s:%s as %s (%s login%s)",
                    name,
                    settings.host,
                    settings.port,
                    settings.username,
                    settings.auth,
                    ", TLS" if settings.tls else "",
                )
                spec.update(
                    host=settings.host,
                    port=settings.port,
                    username=settings.username,
                    secret=settings.secret,
                    auth=settings.auth,
                    ssl=_ssl_context(settings),
                )
            specs[name] = spec
        fleet = Fleet(specs)
        try:
            yield fleet
        finally:
            await fleet.close()
