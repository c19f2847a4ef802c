"""Issue 13, item 4: ``client.events("Hangup")`` is typed for mypy by the event's name
(a misspelt field is an error, a documented one is a ``str``), while at run time the
events stay plain `Event` objects and unknown events and fields pass untouched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _client import ami, pbx

from ami_async import Client, Event, Subscription
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
from typing import assert_type

from ami_async import Client, Event, Subscription
from ami_async.catalogue.events import HangupEvent


def takes_subscription(sub: Subscription) -> None: ...


async def good(client: Client) -> None:
    async with client.events("Hangup") as hangups:
        takes_subscription(hangups)  # still a Subscription
        async for ev in hangups:
            assert_type(ev, HangupEvent)
            text: str = ev["Cause-txt"]
            channel: str | None = ev.get("Channel")
            state = ev.get("ChannelStateDesc", "")
            print(text, channel, state, ev["Event"])
        first = await hangups.get(timeout=1)
        assert_type(first, HangupEvent)
    several = client.events("Hangup", "Newchannel")
    assert_type(several, Subscription)
    async for any_event in several:
        assert_type(any_event, Event)
        print(any_event.name, any_event["Whatever"])
    unknown = client.events("MyModuleEvent")
    assert_type(unknown, Subscription)
"""

BAD = """
from ami_async import Client


async def bad(client: Client) -> None:
    async for ev in client.events("Hangup"):
        print(ev["Chanel"])  # misspelt
    sub = client.events("Newchannel")
    ev2 = await sub.get()
    print(ev2["Exten"], ev2["Extension"])  # the second is not a Newchannel field
"""


@pytest.mark.timeout(300)
def test_item4_mypy_catches_a_misspelt_field_and_accepts_a_correct_one(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(textwrap.dedent(GOOD), encoding="utf-8")
    (tmp_path / "bad.py").write_text(textwrap.dedent(BAD), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-version",
            "3.11",  # typing.assert_type; the package itself supports 3.10
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tmp_path / "good.py"),
            str(tmp_path / "bad.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    output = proc.stdout + proc.stderr
    errors = [line for line in output.splitlines() if ": error:" in line]
    assert not [e for e in errors if "good.py" in e], output
    bad = [e for e in errors if "bad.py" in e]
    assert any('"HangupEvent" has no key "Chanel"' in e for e in bad), output
    assert any('"NewchannelEvent" has no key "Extension"' in e for e in bad), output
    assert len(bad) == 2, output


async def test_item4_events_stay_plain_events_at_run_time(pbx: FakeAsterisk, ami: Client) -> None:
    """Typed only for mypy: a documented event arrives as an `Event` with every field it
    carries (undocumented ones too), and an event the catalogue does not know passes."""
    async with ami.events("Hangup") as hangups, ami.events("MyModuleEvent") as custom:
        assert isinstance(hangups, Subscription)
        await pbx.emit("Hangup", Channel="PJSIP/1-1", Cause="16", NotDocumented="x")
        await pbx.emit("MyModuleEvent", Anything="y")
        ev = await hangups.get(timeout=5)
        other = await custom.get(timeout=5)
    assert isinstance(ev, Event) and ev.name == "Hangup"
    assert ev["NotDocumented"] == "x" and ev["Cause"] == "16"
    assert isinstance(other, Event) and other["Anything"] == "y"
