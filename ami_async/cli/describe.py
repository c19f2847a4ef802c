"""`ami-async describe`: what Asterisk documents about an action or event, offline.

From the catalogue shipped in the package (`ami_async.catalogue`); no server.
"""

from __future__ import annotations

import argparse
import difflib
import json
from typing import Any

from .. import catalogue
from ..catalogue import ActionInfo, EventInfo, Parameter
from .common import EXIT_OK, PROG, UsageError, out, subparser

__all__ = ["add_describe"]

_EXIT_CODES = "exit status: 0 described, 2 unknown name or bad arguments"


def add_describe(subparsers: Any) -> None:
    """The `describe` subcommand."""
    parser = subparser(
        subparsers,
        "describe",
        "what Asterisk documents about an action or event (offline)",
        "Show an action's parameters (required ones marked), privilege, versions and\n"
        "list behaviour, or with --event an event's class, fields and versions, as\n"
        "Asterisk's own documentation gives them for 13.38, 18.26, 20.20 and 22.11.\n"
        "No server is needed. --list prints every name instead.",
        "examples:\n"
        f"  {PROG} describe Originate\n"
        f"  {PROG} describe --event Hangup\n"
        f"  {PROG} describe QueueAdd --version 13.38.3 --json\n"
        f"  {PROG} describe --list\n"
        f"  {PROG} describe --list --event --version 22",
        _EXIT_CODES,
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="an action or (--event) event")
    parser.add_argument("--event", action="store_true", help="NAME is an event")
    parser.add_argument(
        "--list", action="store_true", help="print every action (or --event: event) name"
    )
    parser.add_argument(
        "--version",
        metavar="VERSION",
        help="as of this Asterisk version (e.g. 13.38.3, or 21.1.0: the nearest older one);"
        " default the newest",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    version = args.version
    if version is not None and catalogue.resolve_version(version) is None:
        known = ", ".join(catalogue.versions())
        raise UsageError(f"unknown version {version!r} (the catalogue has {known})", args.subparser)
    if args.list:
        if args.name is not None:
            raise UsageError("--list takes no NAME", args.subparser)
        names = catalogue.event_names(version) if args.event else catalogue.action_names(version)
        if args.json:
            out(json.dumps(names))
        else:
            for name in names:
                out(name)
        return EXIT_OK
    if args.name is None:
        raise UsageError("give a NAME, or --list", args.subparser)
    info = (
        catalogue.event(args.name, version) if args.event else catalogue.action(args.name, version)
    )
    if info is None:
        raise UsageError(_unknown(args.name, args.event), args.subparser)
    if args.json:
        out(json.dumps(_as_json(info), indent=2))
    else:
        for line in _action_lines(info) if isinstance(info, ActionInfo) else _event_lines(info):
            out(line)
    return EXIT_OK


def _unknown(name: str, event: bool) -> str:
    kind = "event" if event else "action"
    names = catalogue.event_names() if event else catalogue.action_names()
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3)
    hint = f"; did you mean {', '.join(lowered[c] for c in close)}?" if close else ""
    other = catalogue.action(name) if event else catalogue.event(name)
    if other is not None:
        hint += f" ({other.name} is an {'action' if event else 'event'}"
        hint += ")" if event else ": use --event)"
    return f"Asterisk documents no {kind} {name!r}{hint}"


def _versions(info: ActionInfo | EventInfo) -> str:
    shown = ", ".join(info.versions)
    if info.version not in info.versions:
        return f"{shown} (not in {info.version})"
    return shown


def _param_line(p: Parameter, mark: str) -> str:
    line = f"  {p.name:<24} {mark}"
    if p.enum:
        line += f"  one of: {', '.join(p.enum)}"
    if len(p.versions) < len(catalogue.versions()):
        line += f"  (in {', '.join(p.versions)})"
    return line.rstrip()


def _action_lines(info: ActionInfo) -> list[str]:
    lines = [
        f"action {info.name}  (as of Asterisk {info.version})",
        f"  method      client.actions.{info.method}(...)",
        f"  privilege   {info.privilege or 'none: Asterisk documents it, never registers it'}",
        f"  versions    {_versions(info)}",
    ]
    if info.is_list:
        how = "only in some forms; " if info.conditional_list else ""
        ending = f"ending with {info.complete_event}" if info.complete_event else "its end marked"
        lines.append(f"  answer      an EventList ({how}{ending})")
        if info.item_events:
            lines.append(f"  items       {', '.join(info.item_events)}")
    else:
        lines.append("  answer      one response")
    lines.append("parameters:" if info.parameters else "parameters: none")
    lines += [_param_line(p, "required" if p.required else "optional") for p in info.parameters]
    return lines


def _event_lines(info: EventInfo) -> list[str]:
    lines = [
        f"event {info.name}  (as of Asterisk {info.version})",
        f"  typed view  ami_async.catalogue.events.{info.typed_name}",
        f"  class       {info.event_class}",
        f"  versions    {_versions(info)}",
    ]
    if info.snapshots:
        snaps = ", ".join(f"{kind} (prefix {prefix or 'none'})" for kind, prefix in info.snapshots)
        lines.append(f"  snapshots   {snaps}")
    lines.append("fields:" if info.fields else "fields: none")
    lines += [_param_line(f, "") for f in info.fields]
    return lines


def _as_json(info: ActionInfo | EventInfo) -> dict[str, Any]:
    def param(p: Parameter) -> dict[str, Any]:
        return {
            "name": p.name,
            "required": p.required,
            "versions": list(p.versions),
            "enum": list(p.enum),
        }

    common = {
        "name": info.name,
        "version": info.version,
        "available": info.available,
        "versions": list(info.versions),
    }
    if isinstance(info, ActionInfo):
        return {
            "kind": "action",
            **common,
            "method": info.method,
            "privilege": info.privilege,
            "list": info.is_list,
            "conditional_list": info.conditional_list,
            "item_events": list(info.item_events),
            "complete_event": info.complete_event,
            "parameters": [param(p) for p in info.parameters],
        }
    return {
        "kind": "event",
        **common,
        "typed_view": info.typed_name,
        "class": info.event_class,
        "snapshots": [{"kind": k, "prefix": p} for k, p in info.snapshots],
        "fields": [param(f) for f in info.fields],
    }
