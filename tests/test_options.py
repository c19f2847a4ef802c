"""The client's options and timeouts: harmful values are refused with `ValueError`,
at construction, on a running client, and on every call that takes a timeout."""

from __future__ import annotations

import math
import socket
from typing import Any

import pytest
from _client import SECRET, ami, pbx

from ami_async import Client
from ami_async._keepalive import tcp_keepalive
from ami_async.testing import FakeAsterisk

__all__ = ["ami", "pbx"]  # fixtures (tests/_client.py)


#: The floors the client states (docs/): below them, a Ping or reconnect storm.
FLOORS = {
    "ping_interval": 0.05,
    "ping_timeout": 0.05,
    "reconnect_delay": 0.001,
    "reconnect_max_delay": 0.001,
}


def make(**kw: Any) -> Client:
    return Client("127.0.0.1", 5038, username="admin", secret=SECRET, **kw)


@pytest.mark.parametrize(
    "options",
    [
        # Tiny positive values: a Ping storm, a reconnect storm.
        {"ping_interval": 1e-6},
        {"ping_timeout": 1e-4},
        {"reconnect_delay": 1e-9},
        {"reconnect_max_delay": 1e-9},
        # Not finite: setsockopt crashed on them, or the waits never end.
        {"ping_interval": math.inf},
        {"ping_timeout": math.inf},
        {"ping_interval": math.nan},
        {"timeout": math.inf},
        {"action_timeout": math.nan},
        {"reconnect_max_delay": math.inf},
        {"boot_timeout": math.inf},
        # The parser needs 64 bytes: refused here, not at connect.
        {"max_frame_size": 1},
        {"max_frame_size": 63},
        {"timeout": True},
    ],
)
def test_review5_harmful_options_are_refused_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        make(**options)


def test_review5_the_floors_themselves_are_accepted() -> None:
    from ami_async._options import FLOORS as stated

    assert stated == FLOORS
    client = make(**FLOORS, max_frame_size=64)
    assert client.ping_interval == FLOORS["ping_interval"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ping_interval", 1e-6),
        ("ping_timeout", 0),
        ("reconnect_delay", math.nan),
        ("action_timeout", -1),
        ("max_frame_size", 10),
        ("timeout", math.inf),
    ],
)
def test_review5_options_set_on_a_client_are_checked_too(name: str, value: Any) -> None:
    client = make()
    before = getattr(client, name)
    with pytest.raises(ValueError, match=name):
        setattr(client, name, value)
    assert getattr(client, name) == before
    client.ping_interval = None  # still the way to turn the keepalive off
    client.boot_timeout = 0


@pytest.mark.parametrize("seconds", [1e10, 86400.0 * 365, 40000.0])
async def test_review5_huge_ping_options_connect_with_clamped_tcp_keepalive(
    pbx: FakeAsterisk, seconds: float
) -> None:
    """1e10 crashed connect() with OverflowError from setsockopt; above 32767 s
    the kernel refused the value and TCP keepalive was silently not set."""
    client = Client(
        pbx.host,
        pbx.port,
        username="admin",
        secret=SECRET,
        ping_interval=seconds,
        ping_timeout=seconds,
        timeout=5.0,
    )
    async with client as connected:
        protocol = connected._protocol
        assert protocol is not None and protocol.transport is not None
        sock = protocol.transport.get_extra_info("socket")
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 32767
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 32767
        tcp_keepalive(protocol, math.inf, math.nan)  # best effort: never raises


BAD_TIMEOUTS = [0, -1, math.nan, math.inf, True]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS)
async def test_review7_bad_timeouts_are_refused_by_every_call(ami: Client, timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await ami.send_action("Ping", timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        await ami.collect("CoreShowChannels", timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        await ami.ping(timeout=timeout)
    with pytest.raises(ValueError, match="timeout"):
        async for _ in ami.stream("CoreShowChannels", timeout=timeout):
            pass
    assert ami.pending_actions == 0


@pytest.mark.parametrize("timeout", [-1, math.nan, math.inf, True])
async def test_review7_wait_connected_refuses_odd_timeouts(ami: Client, timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout"):
        await ami.wait_connected(timeout=timeout)
    await ami.wait_connected(timeout=0)  # connected: returns at once


@pytest.mark.parametrize("timeout", [0, -1, math.nan])
async def test_review3_stream_with_a_refused_timeout_leaks_no_pending_action(
    ami: Client, timeout: float
) -> None:
    """The timeout was checked after the action was registered: it stayed in the
    table forever and the parser's fast path (`interest()`) stayed off."""
    interest = ami._dispatcher.interest()
    with pytest.raises(ValueError, match="timeout"):
        async for _ in ami.stream("CoreShowChannels", timeout=timeout):
            pass
    assert ami.pending_actions == 0
    assert ami._dispatcher.interest() == interest
