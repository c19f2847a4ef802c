"""Generate the AMI catalogue's package data, typed modules and reference page.

Reads the merged catalogue (``ami-catalogue.json``, facts extracted from
Asterisk's XML documentation; by default in ``../shared/catalogue/`` next to the
repository) and writes, deterministically (same input, same bytes):

- ``ami_async/catalogue/data.json``: the compact facts the package loads lazily;
- ``ami_async/catalogue/_actions.py``: `Actions`, one typed coroutine per action;
- ``ami_async/catalogue/events.py``: a `TypedDict` per event and the overloads
  that type ``client.events("Hangup")``;
- ``docs/catalogue.md``: the reference page of every action and event.

``--check`` writes nothing: it exits 1, naming the files, when what is committed
differs from what this script makes (CI runs it). Standard library only.

    python tools/gen_catalogue.py                 # regenerate
    python tools/gen_catalogue.py --check         # CI: is the committed output current?
    python tools/gen_catalogue.py --source DIR    # the catalogue files elsewhere
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ami_async.catalogue._naming import PATTERNED, argument, snake  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "catalogue"
PACKAGE = ROOT / "ami_async" / "catalogue"
LINE = 100

#: Actions that answer with a list only in one form (``Hangup`` with a
#: ``/regex/`` channel): their coroutine returns the `Response`; use `collect`
#: for the list form.
CONDITIONAL_LISTS = frozenset({"Hangup"})

#: What stands for the privilege of an action Asterisk documents but never registers
#: (``FilterList`` in 13.38.3): no server answers it.
NOT_REGISTERED = "Documented, never registered by Asterisk"


# -- the compact data --------------------------------------------------------------------------


def mask(versions: list[str], present: list[str]) -> int:
    return sum(1 << versions.index(v) for v in present)


def required_mask(versions: list[str], param: dict[str, Any]) -> int:
    by = param.get("required_by_version")
    if by:
        return mask(versions, [v for v, req in by.items() if req])
    return mask(versions, param["versions"]) if param["required"] else 0


def list_of(action: dict[str, Any]) -> list[Any] | None:
    """``[item events, completion event]`` of a list action, else ``None``."""
    if not action["eventlist"]:
        return None
    xml = action.get("list") or {}
    code = action.get("list_code") or {}
    items = sorted(set(xml.get("item_events") or []) | set(code.get("item_events") or []))
    for by in (action.get("list_code_by_version") or {}).values():
        items = sorted(set(items) | set(by.get("item_events") or []))
    return [items, xml.get("complete_event") or code.get("complete_event")]


def compact(source: dict[str, Any]) -> dict[str, Any]:
    versions: list[str] = source["versions"]
    actions: dict[str, Any] = {}
    for name in sorted(source["actions"]):
        a = source["actions"][name]
        entry: dict[str, Any] = {
            "v": mask(versions, a["versions"]),
            "privilege": a["privilege"],
            "list": list_of(a),
            "params": [
                [p["name"], mask(versions, p["versions"]), required_mask(versions, p)]
                + ([p["enum"]] if p.get("enum") else [])
                for p in a["parameters"]
                if p["name"].lower() != "actionid"
            ],
        }
        if name in CONDITIONAL_LISTS:
            entry["conditional_list"] = True
        if a.get("privilege_by_version"):
            entry["privilege_by_version"] = a["privilege_by_version"]
        actions[name] = entry
    events: dict[str, Any] = {}
    for name in sorted(source["events"]):
        e = source["events"][name]
        entry = {
            "v": mask(versions, e["versions"]),
            "class": e["class"],
            "snapshots": [[s["kind"], s["prefix"]] for s in e["snapshots"]],
            "fields": [
                [p["name"], mask(versions, p["versions"])] + ([p["enum"]] if p.get("enum") else [])
                for p in e["parameters"]
            ],
        }
        if e.get("class_by_version"):
            entry["class_by_version"] = e["class_by_version"]
        if e.get("snapshots_by_version"):
            entry["snapshots_by_version"] = {
                v: [[s["kind"], s["prefix"]] for s in snaps]
                for v, snaps in e["snapshots_by_version"].items()
            }
        events[name] = entry
    snapshots = {
        kind: [[f["name"], mask(versions, f["versions"])] for f in snap["fields"]]
        for kind, snap in sorted(source["snapshots"].items())
    }
    return {
        "source": source["source"],
        "versions": versions,
        "snapshots": snapshots,
        "actions": actions,
        "events": events,
    }


def data_json(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"


# -- the typed modules -------------------------------------------------------------------------

HEADER = '''"""{doc}

Generated by ``tools/gen_catalogue.py`` from Asterisk's documentation
(13.38.3, 18.26.4, 20.20.1, 22.11.0-rc1): do not edit; run the script.
"""
'''


def short_versions(versions: list[str], bits: int) -> str:
    """``13.38-22.11`` for every version, else the versions' first two numbers."""
    if bits == (1 << len(versions)) - 1:
        return f"{md_versions(versions, 1)}-{md_versions(versions, 1 << (len(versions) - 1))}"
    return md_versions(versions, bits)


def params_of(entry: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """``(header, argument, required)`` of an action, required first, each argument once."""
    newest = 1 << (entry["v"].bit_length() - 1)
    seen: set[str] = set()
    out: list[tuple[str, str, bool]] = []
    for p in entry["params"]:
        arg = argument(p[0])
        if arg in seen:
            continue
        seen.add(arg)
        out.append((p[0], arg, bool(p[2] & newest)))
    return [p for p in out if p[2]] + [p for p in out if not p[2]]


def action_method(versions: list[str], name: str, entry: dict[str, Any]) -> list[str]:
    is_list = entry["list"] is not None and not entry.get("conditional_list")
    result = "EventList" if is_list else "Response"
    lines = [f"    async def {snake(name)}(", "        self,", "        *,"]
    params = params_of(entry)
    for _, arg, required in params:
        lines.append(f"        {arg}: HeaderValue{'' if required else ' | None = None'},")
    lines.append("        timeout: float | None = None,")
    lines.append(f"    ) -> {result}:")
    where = short_versions(versions, entry["v"])
    privilege = f"Privilege `{entry['privilege']}`" if entry["privilege"] else NOT_REGISTERED
    doc = f'        """`{name}`.\n\n        {privilege}; Asterisk {where}.'
    if is_list:
        complete = entry["list"][1]
        ending = f", ending with `{complete}`" if complete else ""
        doc += f"\n        Collected as an `EventList`{ending}."
    patterned = [f"``{arg}``" for header, arg, _ in params if PATTERNED.search(header)]
    if patterned:
        text = f"Patterns for families of headers (see `Actions`): {', '.join(patterned)}."
        doc += "\n" + textwrap.fill(
            text, LINE, initial_indent=" " * 8, subsequent_indent=" " * 8, break_on_hyphens=False
        )
    lines.append(doc + '\n        """')
    call = "_collect" if is_list else "_call"
    if not params:
        lines.append(f'        return await self.{call}("{name}", timeout, {{}})')
        return lines
    lines.append(f"        return await self.{call}(")
    lines.append(f'            "{name}",')
    lines.append("            timeout,")
    lines.append("            {")
    for header, arg, _ in params:
        lines.append(f'                "{header}": {arg},')
    lines.append("            },")
    lines.append("        )")
    return lines


def actions_module(data: dict[str, Any]) -> str:
    versions = data["versions"]
    out = [
        HEADER.format(doc="`Actions`: one typed coroutine per AMI action (``client.actions``)."),
        "from __future__ import annotations",
        "",
        "from ..dispatch import EventList",
        "from ..message import Response",
        "from ..protocol import HeaderValue",
        "from ._calls import ActionCaller",
        "",
        '__all__ = ["Actions"]',
        "",
        "",
        "class Actions(ActionCaller):",
        '    """Every documented AMI action as a coroutine (``await ami.actions.queue_add(...)``).',
        "",
        "    Keyword arguments are the action's headers in snake case (``MemberName`` ->",
        "    ``member_name``; a Python keyword or ``timeout`` gets a trailing ``_``: ``async_``,",
        "    ``timeout_``); the required ones are required, ``None`` leaves a header out.",
        "    A header the documentation writes as a pattern (``UserEvent``'s ``HeaderN``,",
        "    ``UpdateConfig``'s ``Action-000000``) also takes a ``{header: value}`` mapping",
        '    (``header_n={"CallerID": "100"}``) or a list numbered from 0.',
        "    ``timeout`` (seconds) bounds the action as for `Client.send_action`. An",
        "    action the connected server's version does not document raises",
        "    `InvalidActionError` before anything is sent.",
        '    """',
    ]
    for name, entry in data["actions"].items():
        out.append("")
        out.extend(action_method(versions, name, entry))
    return "\n".join(out) + "\n"


def snapshots_of(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(kind, prefix)`` snapshots an event carries in any version."""
    snaps = [(s[0], s[1]) for s in entry["snapshots"]]
    for by in (entry.get("snapshots_by_version") or {}).values():
        snaps += [(s[0], s[1]) for s in by if (s[0], s[1]) not in snaps]
    return snaps


def snapshot_class(kind: str, prefix: str) -> str:
    """``("channel", "Dest")`` -> ``DestChannelSnapshot``: the base of the events carrying it."""
    return f"{prefix}{kind.capitalize()}Snapshot"


def event_fields(data: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """Every header an event may carry in any version: its own, then its snapshots'."""
    names: list[str] = ["Event"] + [f[0] for f in entry["fields"]]
    for kind, prefix in snapshots_of(entry):
        names.extend(prefix + f[0] for f in data["snapshots"][kind])
    return list(dict.fromkeys(names))


def class_line(name: str, bases: list[str]) -> list[str]:
    """``class name(bases, total=False):``, one base a line where it is too long."""
    line = f"class {name}({', '.join(bases)}, total=False):"
    if len(line) <= LINE:
        return [line]
    return [f"class {name}(", *(f"    {b}," for b in bases), "    total=False,", "):"]


def typed_dict(name: str, bases: list[str], fields: list[str], doc: str) -> list[str]:
    """A ``total=False`` `TypedDict` of ``str`` fields (functional syntax where a field is
    not an identifier: then the class inherits from it)."""
    out = ["", ""]
    if all(f.isidentifier() and not keyword.iskeyword(f) for f in fields):
        out += [*class_line(name, bases or ["TypedDict"]), doc]
        return out + (["", *(f"    {f}: str" for f in fields)] if fields else [])
    odd = f"_{name}Fields"
    out += [f"{odd} = TypedDict(", f'    "{odd}",', "    {"]
    out += [f'        "{f}": str,' for f in fields]
    out += ["    },", "    total=False,", ")", "", ""]
    return [*out, *class_line(name, [odd, *bases]), doc]


def typed_name(event: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", event) + "Event"


def events_module(data: dict[str, Any]) -> str:
    out = [
        HEADER.format(
            doc="A `TypedDict` per documented AMI event, and the overloads that type "
            '``client.events("Hangup")``.\n\n'
            "For editors and mypy only: at run time an event is an `ami_async.Event`\n"
            "(every field it carries, documented or not). Every field is optional: Asterisk\n"
            "leaves some out, and versions differ."
        ),
        "from __future__ import annotations",
        "",
        "from collections.abc import Callable",
        "from typing import Literal, Protocol, TypedDict, overload",
        "",
        "from ..dispatch import OverflowPolicy, Subscription",
        "from ..message import Event",
        "from ._typing import TypedSubscription",
        "",
    ]
    names = list(data["events"])
    out.append("__all__ = [")
    out.append('    "EventsMethod",')
    out.extend(f'    "{typed_name(n)}",' for n in names)
    out.append("]")
    out += typed_dict("_EventName", [], ["Event"], '    """The ``Event`` header."""')
    used = sorted({snap for n in names for snap in snapshots_of(data["events"][n])})
    for kind, prefix in used:
        fields = [prefix + f[0] for f in data["snapshots"][kind]]
        doc = f'    """The fields of a {kind} snapshot with prefix ``{prefix}``."""'
        out += typed_dict(snapshot_class(kind, prefix), [], fields, doc)
    for name in names:
        entry = data["events"][name]
        snaps = snapshots_of(entry)
        own = [f[0] for f in entry["fields"] if f[0] != "Event"]
        inherited = {prefix + f[0] for kind, prefix in snaps for f in data["snapshots"][kind]}
        own = [f for f in dict.fromkeys(own) if f not in inherited]
        where = short_versions(data["versions"], entry["v"])
        doc = f'    """`{name}` (class `{entry["class"]}`; Asterisk {where})."""'
        bases = ["_EventName"] + [snapshot_class(k, p) for k, p in snaps]
        out += typed_dict(typed_name(name), bases, own, doc)
    out += [
        "",
        "",
        "class EventsMethod(Protocol):",
        '    """`Client.events`, typed: one documented event name gives its `TypedDict`."""',
    ]
    tail = [
        "        *,",
        "        predicate: Callable[[Event], bool] | None = ...,",
        "        maxsize: int | None = ...,",
        "        overflow: OverflowPolicy = ...,",
    ]
    for name in names:
        out += [
            "",
            "    @overload",
            "    def __call__(",
            "        self,",
            f'        name: Literal["{name}"],',
            "        /,",
            *tail,
            f"    ) -> TypedSubscription[{typed_name(name)}]: ...",
        ]
    out += [
        "",
        "    @overload",
        "    def __call__(",
        "        self,",
        "        *names: str,",
        *tail[1:],
        "    ) -> Subscription: ...",
    ]
    return "\n".join(out) + "\n"


# -- the reference page ------------------------------------------------------------------------


def md_versions(versions: list[str], bits: int) -> str:
    if bits == (1 << len(versions)) - 1:
        return "all"
    return ", ".join(
        v.split("-")[0].rsplit(".", 1)[0] for i, v in enumerate(versions) if bits >> i & 1
    )


def md_privilege(privilege: str | None) -> str:
    """A privilege as a table cell: in code (``<none>`` is not an HTML tag there)."""
    return f"`{privilege}`" if privilege else "not registered"


def reference_page(data: dict[str, Any]) -> str:
    versions = data["versions"]
    out = [
        "# Catalogue of actions and events",
        "",
        "<!-- Generated by tools/gen_catalogue.py: do not edit; run the script. -->",
        "",
        "Every AMI action and event that Asterisk documents in "
        + ", ".join(versions)
        + " (facts from Asterisk's own XML documentation: names, parameters, required "
        "flags, privilege, list behaviour, versions). How to use it: "
        "[the catalogue guide](api.md#the-action-and-event-catalogue). "
        "Offline, `ami-async describe NAME` shows the same for one name.",
        "",
        "Versions are written by their first two numbers (13.38, 18.26, 20.20, 22.11); "
        "`all` means every one of them. **bold** parameters are required (in the newest "
        "version that has the action).",
        "",
        "## Actions",
        "",
        "| action | method | privilege | versions | list (completion) | parameters |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, a in data["actions"].items():
        newest = 1 << (a["v"].bit_length() - 1)
        params = []
        for p in a["params"]:
            text = f"**{p[0]}**" if p[2] & newest else p[0]
            if p[1] != a["v"]:
                text += f" ({md_versions(versions, p[1])})"
            params.append(text)
        lst = "-"
        if a["list"] is not None:
            lst = f"`{a['list'][1]}`" if a["list"][1] else "yes"
            if a.get("conditional_list"):
                lst += " (some forms)"
        out.append(
            f"| `{name}` | `{snake(name)}` | {md_privilege(a['privilege'])} "
            f"| {md_versions(versions, a['v'])} "
            f"| {lst} | {', '.join(params) or '-'} |"
        )
    out += [
        "",
        "## Events",
        "",
        "Fields from a channel or bridge snapshot are written `prefix*channel` or "
        "`prefix*bridge` (the snapshot's fields, each name after the prefix); "
        "the lists are at the end of the page.",
        "",
        "| event | typed view | class | versions | fields |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, e in data["events"].items():
        fields = []
        for f in e["fields"]:
            text = f[0]
            if f[1] != e["v"]:
                text += f" ({md_versions(versions, f[1])})"
            fields.append(text)
        fields += [f"{prefix}\\*{kind}" for kind, prefix in e["snapshots"]]  # \*: not italics
        out.append(
            f"| `{name}` | `{typed_name(name)}` | {e['class']} | {md_versions(versions, e['v'])} "
            f"| {', '.join(fields) or '-'} |"
        )
    out += ["", "## Snapshot fields", ""]
    for kind, fields in data["snapshots"].items():
        out.append(f"- `{kind}`: " + ", ".join(f[0] for f in fields))
    return "\n".join(out) + "\n"


# -- main --------------------------------------------------------------------------------------


def outputs(source_dir: Path) -> dict[Path, str]:
    source = json.loads((source_dir / "ami-catalogue.json").read_text(encoding="utf-8"))
    data = compact(source)
    return {
        PACKAGE / "data.json": data_json(data),
        PACKAGE / "_actions.py": actions_module(data),
        PACKAGE / "events.py": events_module(data),
        ROOT / "docs" / "catalogue.md": reference_page(data),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the catalogue's folder")
    ap.add_argument("--check", action="store_true", help="compare, write nothing; 1 if stale")
    args = ap.parse_args(argv)
    if not (args.source / "ami-catalogue.json").is_file():
        print(f"no ami-catalogue.json in {args.source} (give --source)", file=sys.stderr)
        return 2
    stale = []
    for path, text in outputs(args.source).items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", newline="\n")
    if args.check and stale:
        names = ", ".join(str(p) for p in stale)
        print(f"stale generated files (run tools/gen_catalogue.py): {names}", file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
