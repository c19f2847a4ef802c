"""Bytes of other AMI servers (proxies, mock servers, old forks), seen in the test data of
other AMI client projects, through the whole Client (items 23 to 25 of issue 9)."""

from __future__ import annotations

import pytest
from _fixtures import Peer, serial_server

from ami_async import Client

ACCEPTED = b"Response: Success\r\nActionID: x\r\nMessage: Authentication accepted\r\n\r\n"


def client_for(port: int) -> Client:
    return Client(
        "127.0.0.1",
        port,
        username="admin",
        secret="amp111",
        ping_interval=None,
        reconnect=False,
        events=False,  # no FullyBooted probe: the next action is the test's
        timeout=5,
        action_timeout=5,
    )


async def logged_in(peer: Peer, banner: bytes = b"Asterisk Call Manager/1.1\r\n") -> None:
    await peer.send(banner)
    await peer.answer("Login", ACCEPTED)


@pytest.mark.parametrize("banner", [b"Asterisk Call Manager", b"Asterisk Call Manager Proxy"])
async def test_item24_banner_without_version_connects(banner: bytes) -> None:
    """The first line names no ``/<version>``: it is still the banner, ``ami_version`` None
    (before: the client waited for a banner that never came and timed out)."""

    async def serve(peer: Peer) -> None:
        await logged_in(peer, banner + b"\r\n")
        await peer.idle()

    async with serial_server(serve) as port, client_for(port) as ami:
        assert ami.banner == banner.decode()
        assert ami.ami_version is None
        assert (await ami.ping())["Ping"] == "Pong"


async def test_item23_command_answer_with_lf_header_lines() -> None:
    """``Response: Follows`` whose header lines end in a bare LF: its ActionID is read, so
    the answer reaches `command()` (before: no headers at all, and the action timed out)."""

    async def serve(peer: Peer) -> None:
        await logged_in(peer)
        action = await peer.action()
        assert action["action"] == "Command"
        action_id = action["actionid"].encode()
        await peer.send(
            b"Response: Follows\nPrivilege: Command\nActionID: " + action_id + b"\n"
            b"Asterisk 1.4.44 built by root\n--END COMMAND--\n\n"
        )
        await peer.idle()

    async with serial_server(serve) as port, client_for(port) as ami:
        assert await ami.command("core show version") == "Asterisk 1.4.44 built by root"


async def test_item25_follows_with_output_lines_and_no_marker_gives_plain_text() -> None:
    """``Response: Follows`` + ``Output:`` lines, no ``--END COMMAND--``: `command()`
    returns the lines without their ``Output: `` prefix, as for Asterisk 14+."""

    async def serve(peer: Peer) -> None:
        await logged_in(peer)
        await peer.answer(
            "Command",
            b"Response: Follows\r\nPrivilege: Command\r\nActionID: x\r\n"
            b"Output: Name/username    Host\r\nOutput: 1 sip peers: 1 online\r\n\r\n",
        )
        await peer.idle()

    async with serial_server(serve) as port, client_for(port) as ami:
        text = await ami.command("sip show peers")
        assert text == "Name/username    Host\n1 sip peers: 1 online"
