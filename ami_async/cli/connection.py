"""Connection options and settings: flags > environment > config file > defaults."""

from __future__ import annotations

import argparse
import configparser
import contextlib
import getpass
import logging
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..client import Client
from .common import UsageError

log = logging.getLogger("ami_async.cli")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5038
DEFAULT_TLS_PORT = 5039
DEFAULT_TIMEOUT = 10.0

_ENV = {"host": "AMI_HOST", "port": "AMI_PORT", "username": "AMI_USERNAME", "secret": "AMI_SECRET"}
_CONFIG_KEYS = ("host", "port", "username", "secret", "auth", "tls", "cafile", "timeout")
_CONFIG_SECTION = "ami"


def add_connection(parser: argparse.ArgumentParser, *, timeout_flag: bool = True) -> None:
    group = parser.add_argument_group(
        "connection",
        "Flags win over the environment (AMI_HOST, AMI_PORT, AMI_USERNAME,\n"
        "AMI_SECRET), which wins over the [ami] section of the config file\n"
        "(--config FILE, else ~/.config/ami-async.ini when it exists).",
    )
    group.add_argument("--host", help=f"AMI host (default {DEFAULT_HOST})")
    group.add_argument(
        "--port",
        type=int,
        help=f"AMI port (default {DEFAULT_PORT}, {DEFAULT_TLS_PORT} with --tls)",
    )
    group.add_argument("-u", "--username", help="manager user (manager.conf)")
    group.add_argument(
        "--secret",
        metavar="SECRET",
        help="the user's secret; '-' reads it from stdin (a prompt on a terminal). "
        "Prefer AMI_SECRET or the config file: arguments are visible to other local users",
    )
    group.add_argument(
        "--md5", action="store_true", default=None, help="log in with an MD5 challenge"
    )
    group.add_argument(
        "--tls", action="store_true", default=None, help="connect with TLS (verifying)"
    )
    group.add_argument("--cafile", metavar="FILE", help="CA certificates to verify TLS with")
    timeout_flags = ("--timeout", "--connect-timeout") if timeout_flag else ("--connect-timeout",)
    group.add_argument(
        *timeout_flags,
        dest="net_timeout",
        type=float,
        metavar="S",
        help=f"seconds allowed to connect and for each answer (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument("--config", metavar="FILE", help="INI file with an [ami] section")
    group.add_argument(
        "--fake",
        action="store_true",
        help="use an embedded simulated PBX (ami_async.testing.FakeAsterisk) instead",
    )


# -- connection settings: flags > environment > config file > defaults ------------------------


@dataclass(frozen=True)
class Settings:
    """Where and how to connect. `secret` is left out of the repr."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    auth: Literal["plain", "md5"] = "plain"
    tls: bool = False
    cafile: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    fake: bool = False


def default_config_path() -> Path:
    return Path.home() / ".config" / "ami-async.ini"


def read_config(path: Path, *, required: bool) -> dict[str, str]:
    """The `[ami]` section of an INI file; `{}` if an optional file is absent."""
    return read_sections(path, required=required)[_CONFIG_SECTION]


def read_sections(path: Path, *, required: bool) -> dict[str, dict[str, str]]:
    """`{"ami": {...}, "ami:NAME": {...}, ...}`: the `[ami]` section (maybe empty) and each
    server's `[ami:NAME]` section (`ami-async events` and `export` with several servers)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark is not a key
    except FileNotFoundError:
        if required:
            raise UsageError(f"config file {path} not found") from None
        return {_CONFIG_SECTION: {}}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read config file {path}: {reason}") from None
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(text, source=str(path))
    except configparser.Error as exc:
        # Never quote the offending line (nor the exception: it quotes it): it may be the secret.
        raise UsageError(f"config file {path} is not a valid INI file{_error_lines(exc)}") from None
    names = [n for n in config.sections() if n.startswith(f"{_CONFIG_SECTION}:")]
    if not config.has_section(_CONFIG_SECTION) and not names:
        if required:
            raise UsageError(f"config file {path} has no [{_CONFIG_SECTION}] section")
        return {_CONFIG_SECTION: {}}
    sections: dict[str, dict[str, str]] = {_CONFIG_SECTION: {}}
    for name in [_CONFIG_SECTION, *names] if config.has_section(_CONFIG_SECTION) else names:
        section = dict(config.items(name))
        unknown = sorted(set(section) - set(_CONFIG_KEYS))
        if unknown:
            raise UsageError(
                f"config file {path}: unknown key(s) in [{name}]: {', '.join(unknown)} "
                f"(known: {', '.join(_CONFIG_KEYS)})"
            )
        sections[name] = section
    return sections


def _error_lines(exc: configparser.Error) -> str:
    """` (line N)` for a configparser error, without its text (which quotes the line)."""
    lines: list[int] = []
    # MissingSectionHeaderError is a ParsingError whose `errors` may be absent (3.10 to
    # 3.12): test it first.
    if isinstance(exc, configparser.MissingSectionHeaderError):
        lines = [exc.lineno]
    elif isinstance(exc, configparser.ParsingError):
        lines = [int(entry[0]) for entry in getattr(exc, "errors", [])]
    elif isinstance(exc, (configparser.DuplicateOptionError, configparser.DuplicateSectionError)):
        lines = [exc.lineno] if exc.lineno is not None else []
    return f" (line {', '.join(map(str, lines))})" if lines else ""


def _boolean(value: str, source: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "yes", "true", "on"):
        return True
    if low in ("0", "no", "false", "off", ""):
        return False
    raise UsageError(f"{source}: expected yes or no, not {value!r}")


def _port(value: str, source: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise UsageError(f"{source}: the port must be a number, not {value!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"{source}: the port must be between 1 and 65535, not {port}")
    return port


def _seconds(value: str | float, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise UsageError(f"{source}: expected a number of seconds, not {value!r}") from None
    if not seconds > 0:
        raise UsageError(f"{source}: the timeout must be a positive number of seconds")
    return seconds


def read_secret_from_stdin() -> str:
    """`--secret -`: a prompt on a terminal, else the first line of stdin."""
    stdin = sys.stdin
    if stdin is None:
        raise UsageError("--secret -: there is no standard input to read the secret from")
    if stdin.isatty():
        try:
            secret = getpass.getpass("AMI secret: ")
        except EOFError:
            secret = ""
        except KeyboardInterrupt:
            _end_prompt_line()  # getpass ends the line only when it gets an answer
            raise
    else:
        secret = stdin.readline().rstrip("\r\n")
    if not secret:
        raise UsageError("--secret -: no secret was given on standard input")
    return secret


def _end_prompt_line() -> None:
    """Move past the `AMI secret: ` prompt on the terminal getpass wrote it to."""
    try:
        with open("/dev/tty", "w") as tty:
            tty.write("\n")
    except OSError:
        sys.stderr.write("\n")
        sys.stderr.flush()


def resolve_settings(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    read_secret: Callable[[], str] = read_secret_from_stdin,
    server: Mapping[str, str] | None = None,
    server_source: str = "",
) -> Settings:
    """Connection settings from flags, then the environment, then the config file.

    ``server``: one server's own settings (of ``ami-async events --server``, or
    its ``[ami:NAME]`` section, named ``server_source``), before everything else.
    """
    flag_timeout: float | None = getattr(args, "net_timeout", None)
    timeout = _seconds(flag_timeout, "--timeout") if flag_timeout is not None else None
    if getattr(args, "fake", False):
        return Settings(
            host="", port=0, username="", secret="", timeout=timeout or DEFAULT_TIMEOUT, fake=True
        )
    config_flag: str | None = getattr(args, "config", None)
    config_path = Path(config_flag).expanduser() if config_flag else default_config_path()
    config = read_config(config_path, required=config_flag is not None)

    def pick(key: str, flag: str | None) -> tuple[str, str] | None:
        """(value, where it came from) by precedence, or None."""
        if server is not None and key in server:
            return server[key], f"{server_source} {key}"
        if flag is not None:
            return flag, f"--{key}"
        env_name = _ENV.get(key)
        if env_name is not None and environ.get(env_name):
            return environ[env_name], f"${env_name}"
        if key in config:
            return config[key], f"{config_path} [{_CONFIG_SECTION}] {key}"
        return None

    host_given = pick("host", getattr(args, "host", None))
    host = host_given[0] if host_given else DEFAULT_HOST

    tls_flag: bool | None = getattr(args, "tls", None)
    tls_given = pick("tls", "yes" if tls_flag else None)
    tls = _boolean(*tls_given) if tls_given else False

    port_flag: int | None = getattr(args, "port", None)
    port_given = pick("port", str(port_flag) if port_flag is not None else None)
    port = _port(*port_given) if port_given else DEFAULT_TLS_PORT if tls else DEFAULT_PORT

    auth_given = pick("auth", "md5" if getattr(args, "md5", None) else None)
    auth: Literal["plain", "md5"] = "plain"
    if auth_given is not None:
        value = auth_given[0].strip().lower()
        if value not in ("plain", "md5"):
            raise UsageError(f"{auth_given[1]}: auth must be plain or md5, not {value!r}")
        auth = "md5" if value == "md5" else "plain"

    cafile_given = pick("cafile", getattr(args, "cafile", None))
    if timeout is None or (server is not None and "timeout" in server):
        timeout_given = pick("timeout", None)
        timeout = _seconds(*timeout_given) if timeout_given else DEFAULT_TIMEOUT

    username_given = pick("username", getattr(args, "username", None))
    if not username_given or not username_given[0]:
        raise UsageError(
            "no username: give --username, set AMI_USERNAME, or put 'username =' in the "
            f"[{_CONFIG_SECTION}] section of {config_path} (or use --fake)"
        )
    secret_given = pick("secret", getattr(args, "secret", None))
    if secret_given is None or secret_given[0] == "-":
        if secret_given is None and not (sys.stdin is not None and sys.stdin.isatty()):
            raise UsageError(
                "no secret: give --secret - (reads stdin), set AMI_SECRET, or put "
                f"'secret =' in the [{_CONFIG_SECTION}] section of {config_path}"
            )
        secret = read_secret()
    else:
        secret = secret_given[0]
    return Settings(
        host=host,
        port=port,
        username=username_given[0],
        secret=secret,
        auth=auth,
        tls=tls,
        cafile=cafile_given[0] if cafile_given else None,
        timeout=timeout,
    )


def _ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    try:
        return ssl.create_default_context(cafile=settings.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the CA file {settings.cafile}: {exc}") from None


@contextlib.asynccontextmanager
async def open_client(
    settings: Settings,
    *,
    events: bool | str,
    reconnect: bool = False,
    ping_interval: float | None = None,
    trace: bool = False,
) -> AsyncIterator[Client]:
    """A `Client` for `settings`, not yet connected (subscribe first, then connect).

    With `settings.fake` an embedded FakeAsterisk runs for as long as the block.
    """
    options: dict[str, Any] = {
        "events": events,
        "timeout": settings.timeout,
        "action_timeout": settings.timeout,
        "reconnect": reconnect,
        "ping_interval": ping_interval,
        "trace": trace,
    }
    if settings.fake:
        from ..testing import FakeAsterisk

        async with FakeAsterisk() as pbx:
            username, secret = next(iter(pbx.users.items()))
            log.info("started an embedded FakeAsterisk on %s:%s", pbx.host, pbx.port)
            client = Client(pbx.host, pbx.port, username=username, secret=secret, **options)
            try:
                yield client
            finally:
                await client.close()
        return
    log.info(
        "connecting to %s:%s as %s (%s login%s)",
        settings.host,
        settings.port,
        settings.username,
        settings.auth,
        ", TLS" if settings.tls else "",
    )
    client = Client(
        settings.host,
        settings.port,
        username=settings.username,
        secret=settings.secret,
        auth=settings.auth,
        ssl=_ssl_context(settings),
        **options,
    )
    try:
        yield client
    finally:
        await client.close()
