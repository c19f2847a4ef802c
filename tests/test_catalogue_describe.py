"""Issue 13, item 5: ``ami-async describe``, offline: actions and events, names only some
versions have, unknown names (with close matches), ``--list``, ``--json``, exit codes."""

from __future__ import annotations

import json

import pytest

from ami_async import catalogue
from ami_async.cli.app import main


def describe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["describe", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = describe(capsys, "originate")  # any case
    assert code == 0 and err == ""
    assert out.startswith("action Originate  (as of Asterisk 22.11.0-rc1)")
    assert "client.actions.originate(...)" in out
    assert "privilege   originate,all" in out
    lines = out.splitlines()
    assert any(line.split() == ["Channel", "required"] for line in lines)
    assert any(line.split()[:2] == ["Async", "optional"] for line in lines)


def test_a_list_action_names_its_completion(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = describe(capsys, "QueueStatus")
    assert code == 0
    assert "an EventList (ending with QueueStatusComplete)" in out


def test_an_event_with_snapshot_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = describe(capsys, "--event", "Hangup")
    assert code == 0
    assert out.startswith("event Hangup")
    assert "ami_async.catalogue.events.HangupEvent" in out
    fields = [line.split()[0] for line in out.splitlines()[out.splitlines().index("fields:") + 1 :]]
    assert {"Cause", "Cause-txt", "Channel", "Uniqueid", "Linkedid"} <= set(fields)


def test_names_only_some_versions_have(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = describe(capsys, "SIPpeers")
    assert code == 0
    assert "versions    13.38.3, 18.26.4, 20.20.1 (not in 22.11.0-rc1)" in out
    code, out, _ = describe(capsys, "SIPpeers", "--version", "21.1.0")  # read as 20.20
    assert code == 0 and "(as of Asterisk 20.20.1)" in out and "not in" not in out
    code, out, _ = describe(capsys, "DBGetTree", "--version", "13.38.3")
    assert code == 0 and "(not in 13.38.3)" in out
    code, out, _ = describe(capsys, "--event", "MixMonitorMute", "--version", "13")
    assert code == 0 and "(not in 13.38.3)" in out


def test_unknown_names_suggest_close_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = describe(capsys, "QueueAd")
    assert code == 2 and out == ""
    assert "no action 'QueueAd'; did you mean QueueAdd" in err
    code, _, err = describe(capsys, "Newchannel")
    assert code == 2 and "Newchannel is an event: use --event" in err
    code, _, err = describe(capsys, "--event", "Hangupp")
    assert code == 2 and "did you mean Hangup" in err
    code, _, err = describe(capsys, "--event", "QueueAdd")
    assert code == 2 and "(QueueAdd is an action)" in err
    code, _, err = describe(capsys, "Xyzzy")
    assert code == 2 and "no action 'Xyzzy'" in err and "did you mean" not in err


@pytest.mark.parametrize("version", catalogue.versions())
def test_list_every_name_of_a_version(capsys: pytest.CaptureFixture[str], version: str) -> None:
    code, out, _ = describe(capsys, "--list", "--version", version)
    assert code == 0
    assert out.splitlines() == catalogue.action_names(version)
    code, out, _ = describe(capsys, "--list", "--event", "--version", version, "--json")
    assert code == 0
    assert json.loads(out) == catalogue.event_names(version)


def test_list_without_a_version_is_every_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = describe(capsys, "--list")
    assert code == 0
    names = out.splitlines()
    assert names == catalogue.action_names() and "SIPpeers" in names and "DBGetTree" in names


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = describe(capsys, "SIPpeers", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["kind"] == "action" and data["name"] == "SIPpeers"
    assert data["available"] is False and data["version"] == "22.11.0-rc1"
    assert data["list"] is True and data["complete_event"] == "PeerlistComplete"
    code, out, _ = describe(capsys, "QueueAdd", "--json", "--version", "13.38.3")
    params = {p["name"]: p["required"] for p in json.loads(out)["parameters"]}
    assert params["Queue"] is True and params["Interface"] is True
    assert params["Paused"] is False
    code, out, _ = describe(capsys, "--event", "Hangup", "--json")
    data = json.loads(out)
    assert data["kind"] == "event" and data["typed_view"] == "HangupEvent"
    assert {"kind": "channel", "prefix": ""} in data["snapshots"]


@pytest.mark.parametrize(
    "args",
    [
        (),  # no NAME, no --list
        ("--list", "Ping"),
        ("Ping", "--version", "GIT-master"),
        ("Ping", "--version", "banana"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    code, out, err = describe(capsys, *args)
    assert code == 2 and out == ""
    assert "usage: ami-async describe" in err


def test_an_unknown_option_exits_2_with_the_commands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = describe(capsys, "Ping", "--bogus")
    assert code == 2 and out == ""
    assert "ami-async describe: error: unrecognized arguments: --bogus" in err
    assert err.startswith("usage: ami-async describe")  # not the top-level usage


def test_an_action_documented_but_never_registered(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = describe(capsys, "FilterList", "--version", "13.38.3")
    assert code == 0
    assert "privilege   none: Asterisk documents it, never registers it" in out
    assert "versions    13.38.3\n" in out  # documented there: not "(not in 13.38.3)"
    code, out, _ = describe(capsys, "FilterList")
    assert "versions    13.38.3 (not in 22.11.0-rc1)" in out
