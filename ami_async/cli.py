"""The ``ami-async`` command line: tail events, send actions, run CLI commands,
originate calls, decode recorded captures, and a guided demo.

``main(argv)`` returns the exit status: 0 ok, 1 the action failed (an error
response, a call that failed, a timeout), 2 bad usage (arguments, configuration,
unreadable file), 3 no connection or the login was refused, 130 interrupted
(Ctrl-C), 141 the output pipe was closed. ``docs/cli.md`` documents it all.
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import contextlib
import fnmatch
import getpass
import json
import logging
import os
import re
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, cast

from ._transcript import looks_like_transcript, read_transcript
from .actions import OriginateResult, command_output
from .client import Client
from .errors import (
    ActionError,
    ActionTimeoutError,
    AMIConnectionError,
    AuthenticationError,
    InvalidActionError,
    ProtocolError,
    SubscriptionOverflowError,
)
from .message import Event, Message, Response
from .protocol import Parser

__all__ = ["EXIT_ACTION", "EXIT_CONNECTION", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_ACTION = 1  #: an error response, a failed call, an action timeout, an undecodable file
EXIT_USAGE = 2  #: bad arguments or configuration
EXIT_CONNECTION = 3  #: cannot connect, login refused, connection lost
EXIT_INTERRUPTED = 130  #: Ctrl-C (128 + SIGINT)
EXIT_PIPE = 141  #: stdout closed under us (128 + SIGPIPE), e.g. ``| head``

PROG = "ami-async"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5038
DEFAULT_TLS_PORT = 5039
DEFAULT_TIMEOUT = 10.0
#: Keepalive of the long-running ``events`` tail; one-shot commands send none.
TAIL_PING_INTERVAL = 20.0

_ENV = {"host": "AMI_HOST", "port": "AMI_PORT", "username": "AMI_USERNAME", "secret": "AMI_SECRET"}
_CONFIG_KEYS = ("host", "port", "username", "secret", "auth", "tls", "cafile", "timeout")
_CONFIG_SECTION = "ami"

log = logging.getLogger("ami_async.cli")


# -- usage errors --------------------------------------------------------------------------


class UsageError(Exception):
    """Bad arguments, configuration or input file: exit status 2."""

    def __init__(self, message: str, parser: argparse.ArgumentParser | None = None) -> None:
        super().__init__(message)
        self.parser = parser


class _ArgumentParser(argparse.ArgumentParser):
    """Raises :class:`UsageError` instead of exiting, so ``main`` can redact and return 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


def _secrets_in(argv: Sequence[str]) -> list[str]:
    """Values given to ``--secret`` on the command line (to keep them out of error messages)."""
    found: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--secret" and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--secret="):
            found.append(arg.partition("=")[2])
    return [s for s in found if s and s != "-"]


def _redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with each secret hidden where it stands as a word (``x``, ``--secret=x``)."""
    for secret in secrets:
        text = re.sub(rf"(?<![^\s='\"]){re.escape(secret)}(?![^\s'\"])", "********", text)
    return text


# -- the argument parser ---------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter

_EXIT_CODES = """\
exit status: 0 ok, 1 action failed, 2 usage, 3 connection or login failure,
130 interrupted (Ctrl-C)"""


def _add_verbose(parser: argparse.ArgumentParser, dest: str) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest=dest,
        help="log to stderr: -v connection events, -vv debug with the wire trace (secrets hidden)",
    )


def _add_connection(parser: argparse.ArgumentParser, *, timeout_flag: bool = True) -> None:
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


def _subparser(
    subparsers: Any,
    name: str,
    summary: str,
    description: str,
    epilog: str,
    exit_codes: str = _EXIT_CODES,
) -> argparse.ArgumentParser:
    parser = cast(
        argparse.ArgumentParser,
        subparsers.add_parser(
            name,
            help=summary,
            description=description,
            epilog=f"{epilog}\n\n{exit_codes}",
            formatter_class=_FORMATTER,
        ),
    )
    parser.set_defaults(subparser=parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``ami-async`` argument parser (every subcommand has its own ``--help``)."""
    from . import __version__

    parser = _ArgumentParser(
        prog=PROG,
        description="Talk to an Asterisk Manager Interface (AMI) from the shell, "
        "with ami_async. New here? Run: ami-async demo",
        epilog=f"'{PROG} COMMAND --help' describes each command.\n\n{_EXIT_CODES}",
        formatter_class=_FORMATTER,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_verbose(parser, "verbose_top")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = _subparser(
        subparsers,
        "demo",
        "a guided tour against an embedded simulated PBX (no Asterisk needed)",
        "Start an embedded simulated PBX (FakeAsterisk), then connect, log in, ping,\n"
        "run a CLI command, originate a call and print the call's events until it\n"
        "hangs up, and close. Each step shows the ami_async call that does it.",
        f"example:\n  {PROG} demo",
    )
    _add_verbose(demo, "verbose")
    demo.set_defaults(handler=_run_demo)

    events = _subparser(
        subparsers,
        "events",
        "tail events, one per line",
        "Print events as they arrive: one line per event (time, name, Key=value\n"
        "fields), or one JSON object per line with --json. Names are exact (any case)\n"
        "or fnmatch patterns; none means every event.",
        "examples:\n"
        f"  {PROG} events\n"
        f"  {PROG} events Hangup 'Queue*' --where Channel='PJSIP/100-*'\n"
        f"  {PROG} events --json --count 10 > events.jsonl",
    )
    events.add_argument("names", nargs="*", metavar="NAME", help="event name or pattern")
    events.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only events whose KEY header matches VALUE (an fnmatch pattern); repeatable, "
        "all must match",
    )
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.add_argument("--count", type=int, metavar="N", help="stop after N events")
    events.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    events.add_argument(
        "--mask",
        metavar="CLASSES",
        help="event classes asked for at login, e.g. call,agent (default: all)",
    )
    _add_connection(events)
    _add_verbose(events, "verbose")
    events.set_defaults(handler=_run_events)

    action = _subparser(
        subparsers,
        "action",
        "send an action, print its response (and list items)",
        "Send one action with KEY=VALUE headers (a repeated key is sent repeatedly,\n"
        "in order) and print the response, then the items of the list it opens, if\n"
        "any, and the event that completes the list.",
        "examples:\n"
        f"  {PROG} action Ping\n"
        f"  {PROG} action CoreShowChannels --json\n"
        f"  {PROG} action Getvar Variable=CDR(duration) Channel=PJSIP/100-00000001\n"
        f"  {PROG} action Originate Channel=Local/100@test Application=Wait Data=1 \\\n"
        "      Variable=FOO=1 Variable=BAR=2",
    )
    action.add_argument("name", metavar="NAME", help="the action, e.g. Ping, Status, QueueStatus")
    action.add_argument("headers", nargs="*", metavar="KEY=VALUE", help="a header of the action")
    action.add_argument("--json", action="store_true", help="one JSON object per message")
    _add_connection(action)
    _add_verbose(action, "verbose")
    action.set_defaults(handler=_run_action)

    command = _subparser(
        subparsers,
        "command",
        "run an Asterisk CLI command, print its output",
        "Run a CLI command through the Command action and print its output, the\n"
        "same way from Asterisk 13 (Response: Follows) and 14+ (Output: lines).",
        f'examples:\n  {PROG} command "core show channels"\n'
        f'  {PROG} command "pjsip show endpoints"',
    )
    command.add_argument("cli", metavar="CLI_COMMAND", help="the command, quoted")
    _add_connection(command)
    _add_verbose(command, "verbose")
    command.set_defaults(handler=_run_command)

    originate = _subparser(
        subparsers,
        "originate",
        "place a call, print how it went",
        "Originate a call from CHANNEL to an application (--app) or to the dialplan\n"
        "(--context and --exten), and wait for its OriginateResponse. A call that\n"
        "fails (busy, no answer, no such extension) exits with 1. Here --timeout is\n"
        "the ring timeout; --connect-timeout bounds connecting.",
        "examples:\n"
        f"  {PROG} originate Local/100@test --app Wait --data 1\n"
        f"  {PROG} originate PJSIP/100 --context internal --exten 200 \\\n"
        "      --caller-id '\"Reception\" <100>' --var FOO=bar --timeout 20\n"
        f"  {PROG} originate PJSIP/100 --app Playback --data hello-world --no-wait",
    )
    originate.add_argument("channel", metavar="CHANNEL", help="what to call, e.g. PJSIP/100")
    target = originate.add_mutually_exclusive_group(required=True)
    target.add_argument("--app", metavar="APP", help="connect the call to this application")
    target.add_argument("--exten", metavar="E", help="connect the call to this extension")
    originate.add_argument("--data", metavar="DATA", help="the application's argument (--app)")
    originate.add_argument("--context", metavar="C", help="dialplan context (with --exten)")
    originate.add_argument(
        "--priority", metavar="P", help="dialplan priority or label (with --exten; default 1)"
    )
    originate.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="K=V",
        help="a channel variable; repeatable",
    )
    originate.add_argument("--caller-id", metavar="CID", help="e.g. '\"Alice\" <100>'")
    originate.add_argument("--account", metavar="CODE", help="account code")
    originate.add_argument("--channel-id", metavar="ID", help="Uniqueid for the new channel")
    originate.add_argument(
        "--timeout",
        dest="ring_timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="ring timeout in seconds (default 30)",
    )
    originate.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the call is queued, without waiting for its outcome",
    )
    originate.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_connection(originate, timeout_flag=False)
    _add_verbose(originate, "verbose")
    originate.set_defaults(handler=_run_originate)

    decode = _subparser(
        subparsers,
        "decode",
        "print a recorded capture (.bin or .ami) as messages",
        "Parse a recorded AMI capture and print its messages; no connection needed.\n"
        "A .bin file is the raw byte stream from the server; a .ami file is a\n"
        "transcript (both directions, timed; format in shared/fixtures/README.md).\n"
        "Secret values (and the Key of an MD5 login) are shown as ********.",
        f"examples:\n  {PROG} decode capture.ami\n  {PROG} decode --json capture.bin | jq .name",
        "exit status: 0 ok, 1 the file is not a valid capture, 2 usage (or unreadable file)",
    )
    decode.add_argument("file", metavar="FILE", help="the capture ('-' reads stdin)")
    decode.add_argument(
        "--format",
        choices=("auto", "ami", "bin"),
        default="auto",
        help="the file's format (default: auto, from its first bytes)",
    )
    decode.add_argument("--json", action="store_true", help="one JSON object per message")
    _add_verbose(decode, "verbose")
    decode.set_defaults(handler=_run_decode)

    fake = _subparser(
        subparsers,
        "fake-pbx",
        "run the simulated PBX as a server, for other programs to connect to",
        "Run ami_async.testing.FakeAsterisk on HOST:PORT until Ctrl-C, so that other\n"
        "terminals (this tool, your application) can connect to it. It prints its\n"
        "address and its built-in test account on the first lines.",
        f"example:\n  {PROG} fake-pbx --port 5038 &\n"
        f"  {PROG} events --username admin --secret amp111",
        "exit status: 0 stopped after --duration, 2 usage, 3 cannot listen, 130 Ctrl-C",
    )
    fake.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    fake.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    fake.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    _add_verbose(fake, "verbose")
    fake.set_defaults(handler=_run_fake_pbx)
    return parser


# -- connection settings: flags > environment > config file > defaults ------------------------


@dataclass(frozen=True)
class Settings:
    """Where and how to connect. ``secret`` is left out of the repr."""

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
    """The ``[ami]`` section of an INI file; ``{}`` if an optional file is absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise UsageError(f"config file {path} not found") from None
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read config file {path}: {reason}") from None
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(text, source=str(path))
    except configparser.Error as exc:
        # Never quote the offending line: it may be the secret.
        raise UsageError(f"config file {path} is not a valid INI file{_error_lines(exc)}") from None
    if not config.has_section(_CONFIG_SECTION):
        if required:
            raise UsageError(f"config file {path} has no [{_CONFIG_SECTION}] section")
        return {}
    section = dict(config.items(_CONFIG_SECTION))
    unknown = sorted(set(section) - set(_CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"config file {path}: unknown key(s) in [{_CONFIG_SECTION}]: {', '.join(unknown)} "
            f"(known: {', '.join(_CONFIG_KEYS)})"
        )
    return section


def _error_lines(exc: configparser.Error) -> str:
    lines: list[int] = []
    if isinstance(exc, configparser.ParsingError):
        lines = [int(entry[0]) for entry in exc.errors]
    elif isinstance(exc, (configparser.DuplicateOptionError, configparser.DuplicateSectionError)):
        lines = [exc.lineno] if exc.lineno is not None else []
    elif isinstance(exc, configparser.MissingSectionHeaderError):
        lines = [exc.lineno]
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
    """``--secret -``: a prompt on a terminal, else the first line of stdin."""
    stdin = sys.stdin
    if stdin is None:
        raise UsageError("--secret -: there is no standard input to read the secret from")
    if stdin.isatty():
        try:
            secret = getpass.getpass("AMI secret: ")
        except EOFError:
            secret = ""
    else:
        secret = stdin.readline().rstrip("\r\n")
    if not secret:
        raise UsageError("--secret -: no secret was given on standard input")
    return secret


def resolve_settings(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    read_secret: Callable[[], str] = read_secret_from_stdin,
) -> Settings:
    """Connection settings from flags, then the environment, then the config file."""
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
    if timeout is None:
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
    """A :class:`Client` for ``settings``, not yet connected (subscribe first, then connect).

    With ``settings.fake`` an embedded FakeAsterisk runs for as long as the block.
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
        from .testing import FakeAsterisk

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


# -- output ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SECRET_KEYS = frozenset({"secret"})


def _valid_text(text: str) -> str:
    """``text`` encodable as UTF-8: bytes that were not UTF-8 become ``\\xNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("ascii")
    return text


def printable(text: str) -> str:
    """``text`` safe for a terminal: not-UTF-8 bytes and control characters as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", _valid_text(text))


def _quote(value: str) -> str:
    if value and not any(c.isspace() or c in "\"\\'" for c in value):
        return printable(value)
    return json.dumps(_valid_text(value), ensure_ascii=False)


def _shown_headers(msg: Message, redact: bool) -> list[tuple[str, str]]:
    if not redact:
        return list(msg.headers)
    # The Key of an MD5 login is a credential; the Key of a DB action is not.
    login = any(k.lower() == "authtype" for k, _ in msg.headers) or (
        msg.get("Action", "").lower() == "login"
    )
    hidden = _SECRET_KEYS | {"key"} if login else _SECRET_KEYS
    return [(k, "********" if k.lower() in hidden else v) for k, v in msg.headers]


def event_line(event: Event, *, clock: bool = True) -> str:
    """One line for an event: ``[HH:MM:SS.mmm] Name Key=value ...`` (values quoted if needed)."""
    fields = " ".join(
        f"{printable(k)}={_quote(v)}" for k, v in event.headers if k.lower() != "event"
    )
    line = f"{printable(event.name)} {fields}".rstrip()
    if clock:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        return f"{stamp} {line}"
    return line


def message_lines(msg: Message, *, redact: bool = False) -> list[str]:
    """A message as AMI text: ``Key: Value`` lines, colon-less lines, then any CLI body."""
    lines = [f"{printable(k)}: {printable(v)}" for k, v in _shown_headers(msg, redact)]
    lines += [printable(line) for line in msg.bare_lines]
    if msg.body is not None:
        body = msg.body[:-1] if msg.body.endswith("\n") else msg.body
        lines += [printable(line) for line in body.split("\n")] if body else []
    return lines


def message_json(msg: Message, *, redact: bool = False) -> dict[str, Any]:
    """The JSON shape of a message (docs/cli.md): type, name/response, ordered headers."""
    obj: dict[str, Any]
    if isinstance(msg, Event):
        obj = {"type": "event", "name": _valid_text(msg.name)}
    elif isinstance(msg, Response):
        obj = {"type": "response", "response": _valid_text(msg.response)}
    elif "Action" in msg:
        obj = {"type": "action", "name": _valid_text(msg["Action"])}
    else:
        obj = {"type": "message"}
    obj["headers"] = [[_valid_text(k), _valid_text(v)] for k, v in _shown_headers(msg, redact)]
    if msg.bare_lines:
        obj["bare_lines"] = [_valid_text(line) for line in msg.bare_lines]
    if msg.body is not None:
        obj["body"] = _valid_text(msg.body)
    return obj


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _out(line: str = "", *, flush: bool = False) -> None:
    sys.stdout.write(line + "\n")
    if flush:
        sys.stdout.flush()


def _err(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def _print_message(msg: Message, as_json: bool) -> None:
    if as_json:
        _out(_dumps(message_json(msg)))
    else:
        for line in message_lines(msg):
            _out(line)
        _out()


def result_json(result: OriginateResult) -> dict[str, Any]:
    return {
        "type": "originate",
        "success": result.success,
        "reason": int(result.reason) if result.reason is not None else None,
        "reason_text": result.reason_text,
        "channel": result.channel,
        "uniqueid": result.uniqueid,
        "response": message_json(result.response),
        "event": message_json(result.event) if result.event is not None else None,
    }


def describe_result(result: OriginateResult) -> str:
    """One line: how an Originate went."""
    if result.event is None and result.success:
        return "queued (the outcome comes later as an OriginateResponse event)"
    outcome = "success" if result.success else "failed"
    parts = [outcome]
    if result.reason is not None:
        parts.append(f"reason {int(result.reason)} ({result.reason_text})")
    if result.channel:
        parts.append(f"channel {printable(result.channel)}")
    if result.uniqueid:
        parts.append(f"uniqueid {printable(result.uniqueid)}")
    return ", ".join(parts)


# -- running a command: asyncio, Ctrl-C and the exit status ----------------------------------


def _run_async(make: Callable[[], Awaitable[int]]) -> int:
    return asyncio.run(_guarded(make))


async def _guarded(make: Callable[[], Awaitable[int]]) -> int:
    """Run a command, map library errors to exit statuses, turn Ctrl-C into 130 quietly."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        interrupted = True
        if task is not None:
            task.cancel()

    handler_installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
        handler_installed = True
    try:
        return await make()
    except asyncio.CancelledError:
        if interrupted:
            return EXIT_INTERRUPTED
        raise
    except AuthenticationError as exc:
        _err(f"login refused: {exc}")
        return EXIT_CONNECTION
    except (AMIConnectionError, ProtocolError) as exc:
        _err(str(exc))
        return EXIT_CONNECTION
    except InvalidActionError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except ActionTimeoutError as exc:
        _err(f"timed out: {exc}")
        return EXIT_ACTION
    except ActionError as exc:
        _err(f"error response: {exc}")
        return EXIT_ACTION
    finally:
        if handler_installed:
            loop.remove_signal_handler(signal.SIGINT)


def _verbosity(args: argparse.Namespace) -> int:
    return int(getattr(args, "verbose_top", 0)) + int(getattr(args, "verbose", 0))


def _pairs(
    values: Sequence[str], what: str, parser: argparse.ArgumentParser
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} must look like KEY=VALUE, not {item!r}", parser)
        pairs.append((key.strip(), value))
    return pairs


# -- events ------------------------------------------------------------------------------------


def where_predicate(conditions: Sequence[tuple[str, str]]) -> Callable[[Event], bool] | None:
    """Every ``(key, pattern)`` must match one of the event's values for that key."""
    if not conditions:
        return None

    def matches(event: Event) -> bool:
        return all(
            any(fnmatch.fnmatchcase(value, pattern) for value in event.get_all(key))
            for key, pattern in conditions
        )

    return matches


def _run_events(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1", parser)
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds", parser)
    where = _pairs(args.where, "--where", parser)
    settings = resolve_settings(args, os.environ)
    return _run_async(lambda: _events(args, settings, where))


async def _events(
    args: argparse.Namespace, settings: Settings, where: list[tuple[str, str]]
) -> int:
    mask: bool | str = args.mask if args.mask else True
    async with open_client(
        settings,
        events=mask,
        reconnect=True,
        ping_interval=TAIL_PING_INTERVAL,
        trace=_verbosity(args) >= 2,
    ) as ami:
        # Subscribed before connecting: nothing sent after the login is missed.
        subscription = ami.events(*args.names, predicate=where_predicate(where))
        await ami.connect()
        log.info("connected; waiting for events (Ctrl-C to stop)")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.duration if args.duration is not None else None
        seen = 0
        while args.count is None or seen < args.count:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            try:
                event = await subscription.get(timeout=remaining)
            except TimeoutError:
                break
            except SubscriptionOverflowError as exc:
                _err(f"warning: {exc.dropped} event(s) lost: this terminal read too slowly")
                continue
            _out(_dumps(message_json(event)) if args.json else event_line(event), flush=True)
            seen += 1
    return EXIT_OK


# -- action and command --------------------------------------------------------------------------

#: Keyword names of ``Client.collect`` that a header must not shadow.
_RESERVED = frozenset({"timeout", "complete_event"})


def action_headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str | list[str]]:
    """``KEY=VALUE`` pairs as action headers; a repeated key becomes a list (sent in order)."""
    headers: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key in _RESERVED:  # AMI keys are case-insensitive; keyword arguments are not
            key = key[:1].upper() + key[1:]
        existing = next((k for k in headers if k.lower() == key.lower()), None)
        if existing is None:
            headers[key] = value
        else:
            previous = headers[existing]
            headers[existing] = (
                [*previous, value] if isinstance(previous, list) else [previous, value]
            )
    return headers


def _run_action(args: argparse.Namespace) -> int:
    headers = action_headers(_pairs(args.headers, "a header", args.subparser))
    settings = resolve_settings(args, os.environ)
    return _run_async(lambda: _action(args, settings, headers))


async def _action(
    args: argparse.Namespace, settings: Settings, headers: dict[str, str | list[str]]
) -> int:
    async with open_client(settings, events=False, trace=_verbosity(args) >= 2) as ami:
        await ami.connect()
        if args.name.lower() == "logoff" and not headers:
            # The server closes the connection after its Goodbye: expected, not a loss.
            _print_message(await ami.logoff(), args.json)
            return EXIT_OK
        try:
            # collect() works for every action: one that opens no list gives no items.
            result = await ami.collect(args.name, **cast(dict[str, Any], headers))
        except ActionError as exc:
            _print_message(exc.response, args.json)
            _err(f"{args.name}: {exc.message or exc.response.get('Response') or 'error'}")
            return EXIT_ACTION
        _print_message(result.response, args.json)
        for item in result.items:
            _print_message(item, args.json)
        if result.complete is not None:
            _print_message(result.complete, args.json)
    return EXIT_OK


def _run_command(args: argparse.Namespace) -> int:
    settings = resolve_settings(args, os.environ)
    return _run_async(lambda: _command(args, settings))


async def _command(args: argparse.Namespace, settings: Settings) -> int:
    async with open_client(settings, events=False, trace=_verbosity(args) >= 2) as ami:
        await ami.connect()
        try:
            output = await ami.command(args.cli)
        except ActionError as exc:
            reply = exc.response
            text = command_output(reply) if isinstance(reply, Response) else ""
            _err(printable(text) if text else f"{args.cli!r}: {exc.message or 'error'}")
            return EXIT_ACTION
    for line in output.split("\n") if output else []:
        _out(printable(line))
    return EXIT_OK


# -- originate ---------------------------------------------------------------------------------


def _run_originate(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if args.app is not None:
        if args.context is not None or args.priority is not None:
            raise UsageError("--context and --priority go with --exten, not --app", parser)
    else:
        if args.data is not None:
            raise UsageError("--data goes with --app, not --exten", parser)
        if args.context is None:
            raise UsageError("--exten needs --context", parser)
    if not args.ring_timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds", parser)
    variables = dict(_pairs(args.var, "--var", parser))
    settings = resolve_settings(args, os.environ)
    return _run_async(lambda: _originate(args, settings, variables))


async def _originate(
    args: argparse.Namespace, settings: Settings, variables: dict[str, str]
) -> int:
    # OriginateResponse is a "call" class event: ask for that class only.
    async with open_client(settings, events="call", trace=_verbosity(args) >= 2) as ami:
        await ami.connect()
        result = await ami.originate(
            args.channel,
            application=args.app,
            data=args.data,
            context=args.context,
            exten=args.exten,
            priority=args.priority,
            variables=variables or None,
            caller_id=args.caller_id,
            account=args.account,
            channel_id=args.channel_id,
            timeout=args.ring_timeout,
            wait=not args.no_wait,
        )
    if args.json:
        _out(_dumps(result_json(result)))
    else:
        _out(describe_result(result))
    return EXIT_OK if result.success else EXIT_ACTION


# -- decode ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoded:
    """One item of a decoded capture: a banner, a message or a recorder's note."""

    kind: Literal["banner", "message", "note"]
    source: Literal["server", "client"] | None
    time: float | None
    message: Message | None = None
    text: str = ""


def decode_capture(data: bytes, fmt: Literal["auto", "ami", "bin"] = "auto") -> Iterator[Decoded]:
    """The messages of a capture, in order (raises ValueError or ProtocolError)."""
    if fmt == "auto":
        fmt = "ami" if looks_like_transcript(data) else "bin"
    records = read_transcript(data) if fmt == "ami" else [("<<<", -1.0, data)]
    server = Parser()
    client = Parser(expect_banner=False)
    for direction, seconds, payload in records:
        stamp = seconds if seconds >= 0 else None
        if direction == "###":
            text = payload.decode("utf-8", "replace").strip()
            yield Decoded("note", None, stamp, text=text)
            continue
        source: Literal["server", "client"] = "server" if direction == "<<<" else "client"
        parser = server if source == "server" else client
        had_banner = parser.banner is not None
        messages = parser.feed(payload)
        if not had_banner and parser.banner is not None:
            yield Decoded("banner", source, stamp, text=parser.banner)
        for msg in messages:
            yield Decoded("message", source, stamp, message=msg)
    for source, parser in (("server", server), ("client", client)):
        if parser.buffered:
            yield Decoded(
                "note",
                None,
                None,
                text=f"{parser.buffered} byte(s) from the {source} at the end are not a "
                "complete message",
            )


def _decoded_json(item: Decoded) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if item.source is not None:
        obj["from"] = item.source
    if item.time is not None:
        obj["time"] = item.time
    if item.message is not None:
        obj.update(message_json(item.message, redact=True))
    else:
        obj.update({"type": item.kind, "text": _valid_text(item.text)})
    return obj


def _decoded_lines(item: Decoded) -> list[str]:
    arrow = {"server": "<<<", "client": ">>>", None: "###"}[item.source]
    stamp = f" {item.time:.3f}" if item.time is not None else ""
    if item.kind == "note":
        return [f"###{stamp} {printable(item.text)}", ""]
    if item.kind == "banner":
        return [f"{arrow}{stamp} banner: {printable(item.text)}", ""]
    assert item.message is not None
    return [f"{arrow}{stamp}", *message_lines(item.message, redact=True), ""]


def _run_decode(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}", parser) from None
    count = 0
    try:
        for item in decode_capture(data, args.format):
            if args.json:
                _out(_dumps(_decoded_json(item)))
            else:
                for line in _decoded_lines(item):
                    _out(line)
            count += item.kind == "message"
    except (ValueError, ProtocolError) as exc:
        sys.stdout.flush()
        _err(f"{args.file}: cannot decode: {exc}")
        return EXIT_ACTION
    log.info("%s: %d message(s)", args.file, count)
    return EXIT_OK


# -- fake-pbx ----------------------------------------------------------------------------------


def _run_fake_pbx(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if not 0 <= args.port < 65536:
        raise UsageError("--port must be between 0 and 65535", parser)
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds", parser)
    return _run_async(lambda: _fake_pbx(args))


async def _fake_pbx(args: argparse.Namespace) -> int:
    from .testing import FakeAsterisk

    try:
        pbx = FakeAsterisk(host=args.host, port=args.port)
        await pbx.start()
    except OSError as exc:
        _err(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_CONNECTION
    try:
        username, secret = next(iter(pbx.users.items()))
        # The simulated PBX's built-in test account is public: printing it is the point.
        _out(f"FakeAsterisk listening on {pbx.host}:{pbx.port}", flush=True)
        _out(f"test account: username {username}, secret {secret}", flush=True)
        _out(
            f"try: {PROG} command 'core show version' --host {pbx.host} --port {pbx.port} "
            f"--username {username} --secret {secret}",
            flush=True,
        )
        _out("Ctrl-C stops it.", flush=True)
        stop = asyncio.Event()
        if args.duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
    finally:
        await pbx.close()
    return EXIT_OK


# -- demo --------------------------------------------------------------------------------------

DEMO_CHANNEL = "Local/100@test"
#: How long the demo follows the call, at most, and how long it waits for a first
#: channel event before deciding that the PBX reports only the OriginateResponse.
DEMO_CALL_TIMEOUT = 10.0
DEMO_GRACE = 1.0
_DEMO_FIELDS = (
    "Channel",
    "ChannelStateDesc",
    "EventName",
    "Application",
    "AppData",
    "Variable",
    "Value",
    "DestChannel",
    "LocalOneChannel",
    "LocalTwoChannel",
    "Response",
    "Reason",
    "Cause",
    "Cause-txt",
)


def _demo_event(event: Event) -> str:
    fields = " ".join(f"{k}={_quote(event[k])}" for k in _DEMO_FIELDS if event.get(k))
    return f"     {printable(event.name):<18} {fields}".rstrip()


def _belongs_to(event: Event, uniqueid: str | None, base: str | None) -> bool:
    for _, value in event.headers:
        if uniqueid and value == uniqueid:
            return True
        if base and (value == base or value.startswith(base + ";")):
            return True
    return False


def _run_demo(args: argparse.Namespace) -> int:
    return _run_async(lambda: _demo(_verbosity(args)))


async def _demo(verbosity: int) -> int:
    from .testing import FakeAsterisk

    def say(line: str = "") -> None:
        _out(line, flush=True)

    say(f"{PROG} demo: ami_async against a simulated Asterisk (no PBX needed)")
    async with FakeAsterisk() as pbx:
        username, secret = next(iter(pbx.users.items()))
        say(f"A FakeAsterisk (ami_async.testing) is listening on {pbx.host}:{pbx.port}.")
        say()
        say("1. Connect and log in")
        say(
            f'   async with ami_async.connect("{pbx.host}", {pbx.port}, '
            f'username="{username}", secret=...) as ami:'
        )
        client = Client(
            pbx.host,
            pbx.port,
            username=username,
            secret=secret,
            timeout=5.0,
            action_timeout=5.0,
            reconnect=False,
            ping_interval=None,
            trace=verbosity >= 2,
        )
        async with client as ami:
            say(f"   logged in as {username}; banner {ami.banner!r} (AMI {ami.ami_version})")
            say()
            say("2. Ping")
            say("   await ami.ping()")
            started = time.perf_counter()
            pong = await ami.ping()
            elapsed = (time.perf_counter() - started) * 1000
            say(f"   {pong.get('Ping', pong.response)}: round trip {elapsed:.2f} ms")
            say()
            say("3. Run a CLI command")
            say('   await ami.command("core show version")')
            for line in (await ami.command("core show version")).split("\n"):
                say(f"   | {printable(line)}")
            say()
            status = await _demo_call(ami, say)
            say()
            say("5. Close")
            say("   leaving the 'async with' block logs off and closes the connection")
        say(f"   closed cleanly (connected: {client.connected})")
    say()
    say(f"Next: '{PROG} --help', '{PROG} fake-pbx' to keep a simulated PBX running, docs/cli.md.")
    return status


async def _demo_call(ami: Client, say: Callable[[str], None]) -> int:
    say("4. Place a call and follow its events")
    say("   async with ami.events() as events:   # subscribed now: nothing is missed")
    say(f'       call = await ami.originate("{DEMO_CHANNEL}", application="Wait", data="1")')
    async with ami.events() as events:
        call = await ami.originate(DEMO_CHANNEL, application="Wait", data="1", timeout=5.0)
        say(f"   -> {describe_result(call)}")
        if not call.success:
            return EXIT_ACTION
        base = call.channel.rsplit(";", 1)[0] if call.channel else None
        say("   the call's events, in wire order:")
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline, grace = now + DEMO_CALL_TIMEOUT, now + DEMO_GRACE
        channels: set[str] = set()
        hung_up: set[str] = set()
        others = 0
        while not (hung_up and channels <= hung_up):
            limit = deadline if channels else min(deadline, grace)
            remaining = limit - loop.time()
            if remaining <= 0:
                if channels:
                    say(f"   (no Hangup within {DEMO_CALL_TIMEOUT:g} s; moving on)")
                else:
                    say(
                        "   (this PBX reported no channel events for the call: "
                        "only its OriginateResponse)"
                    )
                break
            try:
                event = await events.get(timeout=remaining)
            except TimeoutError:
                continue
            if not _belongs_to(event, call.uniqueid, base):
                others += 1
                continue
            say(_demo_event(event))
            channel = event.get("Channel")
            if channel and event.name.lower() == "newchannel":
                channels.add(channel)
            elif channel and event.name.lower() == "hangup":
                channels.add(channel)
                hung_up.add(channel)
        else:
            say(f"   every channel of the call hung up ({len(hung_up)} channel(s))")
        if others:
            say(f"   ({others} other event(s) not shown)")
    return EXIT_OK


# -- main --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _logging(verbosity: int) -> Iterator[None]:
    """Log ``ami_async`` to stderr: warnings always, -v info, -vv debug with the wire trace."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbosity else f"{PROG}: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("ami_async")
    saved = (root.level, root.propagate)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at devnull so the interpreter's flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ami-async`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    secrets = _secrets_in(arguments)
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(arguments)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        with _logging(_verbosity(args)):
            handler: Callable[[argparse.Namespace], int] = args.handler
            return handler(args)
    except UsageError as exc:
        shown = exc.parser or parser
        shown.print_usage(sys.stderr)
        _err(f"error: {_redact(str(exc), secrets)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
