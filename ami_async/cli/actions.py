"""`ami-async action`, `command` and `originate`: one request, its answer printed."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any, cast

from ..actions import command_output
from ..errors import ActionError
from ..message import Response
from .common import (
    EXIT_ACTION,
    EXIT_OK,
    PROG,
    UsageError,
    add_verbose,
    err,
    out,
    pairs,
    run_async,
    subparser,
    verbosity,
)
from .connection import Settings, add_connection, open_client, resolve_settings
from .output import describe_result, dumps, print_message, printable, result_json

# -- action and command --------------------------------------------------------------------------

#: Keyword names of `Client.collect` that a header must not shadow.
_RESERVED = frozenset({"timeout", "complete_event"})


def action_headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str | list[str]]:
    """`KEY=VALUE` pairs as action headers; a repeated key becomes a list (sent in order)."""
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
    headers = action_headers(pairs(args.headers, "a header", args.subparser))
    settings = resolve_settings(args, os.environ)
    return run_async(lambda: _action(args, settings, headers))


async def _action(
    args: argparse.Namespace, settings: Settings, headers: dict[str, str | list[str]]
) -> int:
    async with open_client(settings, events=False, trace=verbosity(args) >= 2) as ami:
        await ami.connect()
        if args.name.lower() == "logoff" and not headers:
            # The server closes the connection after its Goodbye: expected, not a loss.
            print_message(await ami.logoff(), args.json)
            return EXIT_OK
        try:
            # collect() works for every action: one that opens no list gives no items.
            result = await ami.collect(args.name, **cast(dict[str, Any], headers))
        except ActionError as exc:
            print_message(exc.response, args.json)
            err(f"{args.name}: {exc.message or exc.response.get('Response') or 'error'}")
            return EXIT_ACTION
        print_message(result.response, args.json)
        for item in result.items:
            print_message(item, args.json)
        if result.complete is not None:
            print_message(result.complete, args.json)
    return EXIT_OK


def _run_command(args: argparse.Namespace) -> int:
    settings = resolve_settings(args, os.environ)
    return run_async(lambda: _command(args, settings))


async def _command(args: argparse.Namespace, settings: Settings) -> int:
    async with open_client(settings, events=False, trace=verbosity(args) >= 2) as ami:
        await ami.connect()
        try:
            output = await ami.command(args.cli)
        except ActionError as exc:
            reply = exc.response
            text = command_output(reply) if isinstance(reply, Response) else ""
            err(printable(text) if text else f"{args.cli!r}: {exc.message or 'error'}")
            return EXIT_ACTION
    for line in output.split("\n") if output else []:
        out(printable(line))
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
    variables = dict(pairs(args.var, "--var", parser))
    settings = resolve_settings(args, os.environ)
    return run_async(lambda: _originate(args, settings, variables))


async def _originate(
    args: argparse.Namespace, settings: Settings, variables: dict[str, str]
) -> int:
    # OriginateResponse is a "call" class event: ask for that class only.
    async with open_client(settings, events="call", trace=verbosity(args) >= 2) as ami:
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
        out(dumps(result_json(result)))
    else:
        out(describe_result(result))
    if not result.success:
        reason = f"reason {int(result.reason)}, " if result.reason is not None else ""
        err(f"the call did not succeed: {reason}{result.reason_text or 'no reason given'}")
        return EXIT_ACTION
    return EXIT_OK


def add_action(subparsers: Any) -> None:
    """The `action` subcommand."""
    action = subparser(
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
    # default=[]: else argparse counts a "*" positional among the required ones in its errors.
    action.add_argument(
        "headers", nargs="*", default=[], metavar="KEY=VALUE", help="a header of the action"
    )
    action.add_argument("--json", action="store_true", help="one JSON object per message")
    add_connection(action)
    add_verbose(action, "verbose")
    action.set_defaults(handler=_run_action)


def add_command(subparsers: Any) -> None:
    """The `command` subcommand."""
    command = subparser(
        subparsers,
        "command",
        "run an Asterisk CLI command, print its output",
        "Run a CLI command through the Command action and print its output, the\n"
        "same way from Asterisk 13 (Response: Follows) and 14+ (Output: lines).",
        f'examples:\n  {PROG} command "core show channels"\n'
        f'  {PROG} command "pjsip show endpoints"',
    )
    command.add_argument("cli", metavar="CLI_COMMAND", help="the command, quoted")
    add_connection(command)
    add_verbose(command, "verbose")
    command.set_defaults(handler=_run_command)


def add_originate(subparsers: Any) -> None:
    """The `originate` subcommand."""
    originate = subparser(
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
    add_connection(originate, timeout_flag=False)
    add_verbose(originate, "verbose")
    originate.set_defaults(handler=_run_originate)
