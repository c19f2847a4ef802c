"""Typed views of event fields, on real Asterisk 22 events."""

from __future__ import annotations

from _fixtures import fixtures_dir

from ami_async import Event
from ami_async.events import ChannelState, HangupCause, channel_state, hangup_cause
from ami_async.protocol import Parser


def events(scenario: str) -> list[Event]:
    data = (fixtures_dir() / "asterisk-22" / f"{scenario}.bin").read_bytes()
    return [m for m in Parser().feed(data) if isinstance(m, Event)]


def test_channel_states_of_a_real_call() -> None:
    states = [channel_state(e) for e in events("originate_async") if e.name == "Newstate"]
    assert ChannelState.UP in states
    newchannel = next(e for e in events("originate_async") if e.name == "Newchannel")
    assert channel_state(newchannel) in (ChannelState.DOWN, ChannelState.RING)
    dial = next(e for e in events("dial_bridge") if e.name == "DialBegin")
    assert isinstance(channel_state(dial, "Dest"), ChannelState)


def test_hangup_causes_of_real_hangups() -> None:
    hangups = [e for e in events("status") if e.name == "Hangup"]
    causes = {hangup_cause(e) for e in hangups}
    assert HangupCause.NORMAL_CLEARING in causes  # the Hangup action with Cause: 16
    assert all(isinstance(c, int) for c in causes)


def test_unknown_or_missing_values() -> None:
    assert hangup_cause(Event([("Event", "Hangup"), ("Cause", "250")])) == 250
    assert hangup_cause(Event([("Event", "Hangup")])) is None
    assert hangup_cause(Event([("Event", "Hangup"), ("Cause", "x")])) is None
    assert channel_state(Event([("Event", "Newstate"), ("ChannelState", "42")])) is None
    assert channel_state(Event([("Event", "Newstate"), ("ChannelState", " 6 ")])) is ChannelState.UP
