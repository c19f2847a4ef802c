"""Issue 12 item 3: every `Event` says which client received it (`Event.server`)."""

from __future__ import annotations

import pytest
from _client import SECRET, client_for, pbx

from ami_async import Client, Event
from ami_async.message import make_message
from ami_async.protocol import Parser
from ami_async.testing import FakeAsterisk

__all__ = ["pbx"]


async def test_item3_event_server_defaults_to_host_port(pbx: FakeAsterisk) -> None:
    client = client_for(pbx)
    assert client.name == f"{pbx.host}:{pbx.port}"
    async with client:
        sub = client.events("Custom")
        await pbx.emit("Custom", Foo="1")
        ev = await sub.get(timeout=5)
    assert isinstance(ev, Event)
    assert ev.server == f"{pbx.host}:{pbx.port}"
    assert ev.name == "Custom" and ev["Foo"] == "1"


async def test_item3_event_server_is_the_client_name_for_subscribers_handlers_and_lists(
    pbx: FakeAsterisk,
) -> None:
    seen: list[Event] = []
    async with client_for(pbx, name="pbx1") as client:
        client.on("Custom")(seen.append)
        sub = client.events()
        await pbx.emit("Custom", Foo="1")
        ev = await sub.get(timeout=5)
        items = await client.core_show_channels()
        assert ev.server == "pbx1" and seen[0].server == "pbx1"
        assert all(item.server == "pbx1" for item in items)
        client.name = "renamed"
        await pbx.emit("Custom", Foo="2")
        ev2 = await sub.get(timeout=5)
        while ev2.name != "Custom":
            ev2 = await sub.get(timeout=5)
        assert ev2.server == "renamed"


def test_item3_event_server_is_read_only_and_empty_when_no_client_received_it() -> None:
    (ev,) = Parser(expect_banner=False).feed(b"Event: Hangup\r\nChannel: x\r\n\r\n")
    assert isinstance(ev, Event) and ev.server == ""
    with pytest.raises(AttributeError):
        ev.server = "x"  # type: ignore[misc]
    built = make_message([("Event", "Hangup"), ("Channel", "x")])
    assert isinstance(built, Event) and built.server == ""


async def test_item3_event_equality_includes_the_server(pbx: FakeAsterisk) -> None:
    async with client_for(pbx, name="a") as a, client_for(pbx, name="b") as b:
        sub_a, sub_b, sub_a2 = a.events("Custom"), b.events("Custom"), a.events("Custom")
        await pbx.emit("Custom", Foo="1")
        ev_a, ev_b, ev_a2 = [await s.get(timeout=5) for s in (sub_a, sub_b, sub_a2)]
    assert ev_a is ev_a2  # one object per received event, whoever reads it
    assert ev_a.headers == ev_b.headers and ev_a != ev_b
    (bare,) = Parser(expect_banner=False).feed(b"Event: Custom\r\nFoo: 1\r\n\r\n")
    assert bare != ev_a and bare.headers == ev_a.headers
    assert type(ev_a) is Event and hash(ev_a) == hash(ev_b)


def test_item3_client_name_must_be_text() -> None:
    with pytest.raises(TypeError):
        Client("127.0.0.1", 1, username="u", secret=SECRET, name=5)  # type: ignore[arg-type]
