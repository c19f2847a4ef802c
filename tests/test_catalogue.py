"""Issue 13, items 1, 2 and 4: the generated catalogue is current, every generated
coroutine's signature and every typed event match the catalogue's facts."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest

from ami_async import catalogue
from ami_async.catalogue import events as typed_events
from ami_async.catalogue._actions import Actions
from ami_async.catalogue._naming import argument, snake
from ami_async.dispatch import EventList
from ami_async.message import Response

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "catalogue" / "ami-catalogue.json"
needs_source = pytest.mark.skipif(not SOURCE.exists(), reason="no ../shared/catalogue")


def merged() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SOURCE.read_text(encoding="utf-8"))
    return data


@needs_source
def test_item1_committed_output_is_what_the_script_makes() -> None:
    """``tools/gen_catalogue.py --check`` (the CI step) passes on the committed files."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_catalogue.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@needs_source
def test_item1_check_mode_names_a_stale_file(tmp_path: Path) -> None:
    """A catalogue that differs (one action fewer) makes ``--check`` fail and name the files."""
    data = merged()
    del data["actions"]["QueueAdd"]
    (tmp_path / "ami-catalogue.json").write_text(json.dumps(data), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_catalogue.py"), "--check", "--source", tmp_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "data.json" in proc.stderr and "_actions.py" in proc.stderr


@needs_source
def test_item1_generation_is_deterministic() -> None:
    """Two runs of the generator make the same bytes (no dict-order or clock leaks)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_catalogue
    finally:
        sys.path.pop(0)
    first = gen_catalogue.outputs(SOURCE.parent)
    second = gen_catalogue.outputs(SOURCE.parent)
    assert first == second
    for path, text in first.items():
        assert path.read_text(encoding="utf-8") == text, path


def test_item1_import_ami_async_does_not_load_the_catalogue() -> None:
    """The data and the generated modules are read on first use, not at import."""
    code = (
        "import sys, ami_async\n"
        "loaded = [m for m in sys.modules if m.startswith('ami_async.catalogue.')]\n"
        "print(sorted(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "_facts" not in out and "_actions" not in out and "events" not in out


@needs_source
def test_item2_every_action_of_every_version_has_its_coroutine() -> None:
    data = merged()
    assert set(catalogue.action_names()) == set(data["actions"])
    assert len(catalogue.action_names("22.11.0-rc1")) == 154
    assert len(catalogue.action_names("13.38.3")) == 154
    for name in data["actions"]:
        assert inspect.iscoroutinefunction(getattr(Actions, snake(name))), name


@needs_source
def test_item2_every_signature_matches_the_catalogue() -> None:
    """Keyword-only parameters named after the headers; required (newest version) without
    a default, the rest defaulting to None; ``timeout``; the return type by list behaviour."""
    data = merged()
    newest = data["versions"][-1]
    for name, action in data["actions"].items():
        method = getattr(Actions, snake(name))
        sig = inspect.signature(method)
        params = dict(sig.parameters)
        assert params.pop("self").kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        timeout = params.pop("timeout")
        assert timeout.default is None
        last = action["versions"][-1]
        expected: dict[str, bool] = {}
        for p in action["parameters"]:
            if p["name"].lower() == "actionid":
                continue
            by = p.get("required_by_version") or {}
            required = by.get(last, p["required"]) if last in p["versions"] else False
            expected.setdefault(argument(p["name"]), required)
        assert set(params) == set(expected), name
        for arg, param in params.items():
            assert param.kind is inspect.Parameter.KEYWORD_ONLY, (name, arg)
            if expected[arg]:
                assert param.default is inspect.Parameter.empty, (name, arg)
            else:
                assert param.default is None, (name, arg)
        is_list = action["eventlist"] and name != "Hangup"
        expected_return = EventList if is_list else Response
        assert sig.return_annotation == expected_return.__name__, name
        assert (newest in action["versions"]) == bool(
            catalogue.action(name, newest) and catalogue.action(name, newest).available  # type: ignore[union-attr]
        )


def test_item2_names_and_keywords() -> None:
    assert snake("QueueAdd") == "queue_add"
    assert snake("PJSIPShowEndpoints") == "pjsip_show_endpoints"
    assert snake("SIPpeers") == "sip_peers"
    assert snake("AOCMessage") == "aoc_message"
    assert snake("DAHDIDNDon") == "dahdi_dnd_on"
    assert snake("DBGetTree") == "db_get_tree"
    assert argument("Async") == "async_"
    assert argument("Timeout") == "timeout_"
    assert argument("Call-ID") == "call_id"
    assert catalogue.method_name("queueadd") == "queue_add"
    assert catalogue.method_name("NoSuchAction") is None


@needs_source
def test_item2_list_completions_come_from_the_catalogue() -> None:
    info = catalogue.action("PJSIPShowEndpoints")
    assert info is not None and info.is_list
    assert info.complete_event == "EndpointListComplete"
    assert "EndpointList" in info.item_events
    hangup = catalogue.action("Hangup")
    assert hangup is not None and hangup.conditional_list
    queue_add = catalogue.action("QueueAdd")
    assert queue_add is not None and not queue_add.is_list
    assert queue_add.required == ("Queue", "Interface")
    assert queue_add.privilege == "agent,all"


def test_item2_versions_resolve_to_the_catalogues() -> None:
    assert catalogue.resolve_version("22.5.0") == "22.11.0-rc1"
    assert catalogue.resolve_version("21.1.0") == "20.20.1"
    assert catalogue.resolve_version("certified/18.9-cert5") == "18.26.4"
    assert catalogue.resolve_version("11.25.3") == "13.38.3"
    assert catalogue.resolve_version("GIT-master-1a2b") is None
    assert catalogue.resolve_version(None) is None
    assert catalogue.server_version(None, "11.0.0") == "22.11.0-rc1"
    assert catalogue.server_version(None, "2.10.4") == "13.38.3"
    assert catalogue.server_version(None, "7.0.3") == "18.26.4"
    assert catalogue.server_version("20.7.0", "11.0.0") == "20.20.1"
    assert catalogue.server_version(None, None) is None


def test_item2_per_version_facts() -> None:
    old = catalogue.action("QueueAdd", "13.38.3")
    assert old is not None and "Reason" not in [p.name for p in old.parameters]
    new = catalogue.action("QueueAdd", "22.11.0-rc1")
    assert new is not None and "Reason" in [p.name for p in new.parameters]
    sip = catalogue.action("SIPpeers", "22.11.0-rc1")
    assert sip is not None and not sip.available
    assert sip.versions == ("13.38.3", "18.26.4", "20.20.1")
    aoc = catalogue.action("AOCMessage", "13.38.3")
    assert aoc is not None and "Channel" in aoc.required
    aoc22 = catalogue.action("AOCMessage")
    assert aoc22 is not None and "Channel" not in aoc22.required
    stop = catalogue.action("ConfbridgeStopRecord", "13.38.3")
    assert stop is not None and stop.privilege == "call,all"
    assert catalogue.action("nosuchaction") is None
    assert catalogue.event("nosuchevent") is None


@needs_source
def test_item4_every_event_has_its_typed_view_with_snapshot_fields() -> None:
    data = merged()
    assert set(catalogue.event_names()) == set(data["events"])
    for name, ev in data["events"].items():
        info = catalogue.event(name)
        assert info is not None
        view = getattr(typed_events, info.typed_name)
        keys = set(view.__annotations__) | set(typing.get_type_hints(view))
        assert "Event" in keys, name
        for p in ev["parameters"]:
            assert p["name"] in keys, (name, p["name"])
        for snap in ev["snapshots"]:
            for field in data["snapshots"][snap["kind"]]["fields"]:
                assert snap["prefix"] + field["name"] in keys, (name, field["name"])
        assert view.__total__ is False
    hangup = catalogue.event("Hangup")
    assert hangup is not None
    names = [f.name for f in hangup.fields]
    assert {"Cause", "Cause-txt", "Channel", "Uniqueid", "Linkedid"} <= set(names)
    old = catalogue.event("Hangup", "13.38.3")
    assert old is not None and "TechCause" not in [f.name for f in old.fields]
