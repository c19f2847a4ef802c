"""The pytest plugin, run in a separate pytest process through ``pytester``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TESTS = """
import pytest
import pytest_asyncio
from ami_async import ActionError, Client
from ami_async.testing import FakeAsterisk


@pytest.mark.asyncio
async def test_fake_asterisk_runs(fake_asterisk):
    assert isinstance(fake_asterisk, FakeAsterisk)
    assert fake_asterisk.host == "127.0.0.1"
    assert fake_asterisk.port > 0


@pytest.mark.asyncio
async def test_ami_client_is_logged_in(ami_client, fake_asterisk):
    assert isinstance(ami_client, Client)
    assert ami_client.connected
    assert (await ami_client.ping()).success
    assert [a["Action"] for a in fake_asterisk.actions][:2] == ["Login", "Ping"]


@pytest.mark.asyncio
async def test_events_from_the_fake(ami_client, fake_asterisk):
    sub = ami_client.events("Hangup")
    await fake_asterisk.emit("Hangup", Channel="Local/1@x")
    assert (await sub.get(timeout=2))["Channel"] == "Local/1@x"


@pytest.mark.asyncio
@pytest.mark.fake_asterisk(command_format="legacy", version="2.10.6")
async def test_marker_configures_the_fake(ami_client):
    assert ami_client.ami_version == "2.10.6"
    assert (await ami_client.command("core show version")).startswith("Asterisk 13")


@pytest.mark.asyncio
@pytest.mark.ami_client(auth="md5", events="call")
async def test_marker_configures_the_client(ami_client, fake_asterisk):
    login = [a for a in fake_asterisk.actions if a["Action"] == "Login"][0]
    assert login["AuthType"] == "MD5"
    assert login["Events"] == "call"


@pytest.mark.asyncio
async def test_errors_are_real(ami_client):
    with pytest.raises(ActionError):
        await ami_client.send_action("NoSuchAction")
"""


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_plugin_fixtures_in_a_user_project(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_user_app=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=6)


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*fake_asterisk(**kwargs)*", "*ami_client(**kwargs)*"])


def test_a_project_that_does_not_use_the_fixtures_is_unaffected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_nothing():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:asyncio")
    result.assert_outcomes(passed=1)


def test_item22_without_pytest_asyncio_the_hint_names_what_to_install(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    hidden = pytester.mkdir("hide_pytest_asyncio")
    (hidden / "pytest_asyncio.py").write_text("raise ImportError('hidden for this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(hidden))
    pytester.makepyfile(test_user="def test_uses_the_fake(fake_asterisk):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pip install pytest-asyncio*"])
    assert "ami-async[test]" not in result.stdout.str()


def test_the_old_module_name_still_loads_the_plugin(pytester: pytest.Pytester) -> None:
    """`-p ami_async.pytest_plugin` (the module's name before ami_async.testing/) works."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_user_app=TESTS)
    for args in (
        ["-p", "ami_async.pytest_plugin"],
        ["-p", "no:ami_async", "-p", "ami_async.pytest_plugin"],
    ):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
        result.assert_outcomes(passed=6)
