"""`ami-async fake-pbx` and `demo`: the simulated PBX as a server, and a guided tour."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from ..client import Client
from ..message import Event
from .common import (
    EXIT_ACTION,
    EXIT_CONNECTION,
    EXIT_OK,
    PROG,
    UsageError,
    add_verbose,
    err,
    out,
    run_async,
    subparser,
    verbosity,
)
from .connection import DEFAULT_HOST, DEFAULT_PORT
from .output import describe_result, printable, quote

# -- fake-pbx ----------------------------------------------------------------------------------


def _run_fake_pbx(args: argparse.Namespace) -> int:
    parser: argparse.ArgumentParser = args.subparser
    if not 0 <= args.port < 65536:
        raise UsageError("--port must be between 0 and 65535", parser)
    if args.duration is not None and not args.duration > 0:
        raise UsageError("--duration must be a positive number of seconds", parser)
    return run_async(lambda: _fake_pbx(args))


async def _fake_pbx(args: argparse.Namespace) -> int:
    from ..testing import FakeAsterisk

    try:
        pbx = FakeAsterisk(host=args.host, port=args.port)
        await pbx.start()
    except OSError as exc:
        err(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_CONNECTION
    try:
        username, secret = next(iter(pbx.users.items()))
        # The simulated PBX's built-in test account is public: printing it is the point.
        out(f"FakeAsterisk listening on {pbx.host}:{pbx.port}", flush=True)
        out(f"test account: username {username}, secret {secret}", flush=True)
        # The environment, not --secret: arguments are visible to every local user.
        out(
            f"try: export AMI_HOST={pbx.host} AMI_PORT={pbx.port} "
            f"AMI_USERNAME={username} AMI_SECRET={secret}",
            flush=True,
        )
        out(f"     {PROG} command 'core show version'", flush=True)
        out("Ctrl-C stops it.", flush=True)
        if args.duration is None:
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(args.duration)
    finally:
        await pbx.close()
    return EXIT_OK


# -- demo --------------------------------------------------------------------------------------

DEMO_CHANNEL = "Local/100@test"
# How long the demo follows the call, at most, and how long it waits for a first
# channel event before deciding that the PBX reports only the OriginateResponse.
DEMO_CALL_TIMEOUT = 10.0
DEMO_GRACE = 1.0
_DEMO_FIELDS = (
    "Channel",
    "ChannelStateDesc",
    "EventName",
    "Application",
    "AppData",
    "Variable",
    "Value",
    "DestChannel",
    "LocalOneChannel",
    "LocalTwoChannel",
    "Response",
    "Reason",
    "Cause",
    "Cause-txt",
)


def _demo_event(event: Event) -> str:
    fields = " ".join(f"{k}={quote(event[k])}" for k in _DEMO_FIELDS if event.get(k))
    return f"     {printable(event.name):<18} {fields}".rstrip()


def _belongs_to(event: Event, uniqueid: str | None, base: str | None) -> bool:
    for _, value in event.headers:
        if uniqueid and value == uniqueid:
            return True
        if base and (value == base or value.startswith(base + ";")):
            return True
    return False


def _run_demo(args: argparse.Namespace) -> int:
    return run_async(lambda: _demo(verbosity(args)))


async def _demo(verbosity: int) -> int:
    from ..testing import FakeAsterisk

    def say(line: str = "") -> None:
        out(line, flush=True)

    say(f"{PROG} demo: ami_async against a simulated Asterisk (no PBX needed)")
    async with FakeAsterisk() as pbx:
        username, secret = next(iter(pbx.users.items()))
        say(f"A FakeAsterisk (ami_async.testing) is listening on {pbx.host}:{pbx.port}.")
        say()
        say("1. Connect and log in")
        say(
            f'   async with ami_async.connect("{pbx.host}", {pbx.port}, '
            f'username="{username}", secret=...) as ami:'
        )
        client = Client(
            pbx.host,
            pbx.port,
            username=username,
            secret=secret,
            timeout=5.0,
            action_timeout=5.0,
            reconnect=False,
            ping_interval=None,
            trace=verbosity >= 2,
        )
        async with client as ami:
            say(f"   logged in as {username}; banner {ami.banner!r} (AMI {ami.ami_version})")
            say()
            say("2. Ping")
            say("   await ami.ping()")
            started = time.perf_counter()
            pong = await ami.ping()
            elapsed = (time.perf_counter() - started) * 1000
            say(f"   {pong.get('Ping', pong.response)}: round trip {elapsed:.2f} ms")
            say()
            say("3. Run a CLI command")
            say('   await ami.command("core show version")')
            for line in (await ami.command("core show version")).split("\n"):
                say(f"   | {printable(line)}")
            say()
            status = await _demo_call(ami, say)
            say()
            say("5. Close")
            say("   leaving the 'async with' block logs off and closes the connection")
        say(f"   closed cleanly (connected: {client.connected})")
    say()
    say(f"Next: '{PROG} --help', and '{PROG} fake-pbx' to keep a simulated PBX running.")
    return status


async def _demo_call(ami: Client, say: Callable[[str], None]) -> int:
    say("4. Place a call and follow its events")
    say("   async with ami.events() as events:   # subscribed now: nothing is missed")
    say(f'       call = await ami.originate("{DEMO_CHANNEL}", application="Wait", data="1")')
    async with ami.events() as events:
        call = await ami.originate(DEMO_CHANNEL, application="Wait", data="1", timeout=5.0)
        say(f"   -> {describe_result(call)}")
        if not call.success:
            return EXIT_ACTION
        base = call.channel.rsplit(";", 1)[0] if call.channel else None
        say("   the call's events, in wire order:")
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadline, grace = now + DEMO_CALL_TIMEOUT, now + DEMO_GRACE
        channels: set[str] = set()
        hung_up: set[str] = set()
        others = 0
        while not (hung_up and channels <= hung_up):
            limit = deadline if channels else min(deadline, grace)
            remaining = limit - loop.time()
            if remaining <= 0:
                if channels:
                    say(f"   (no Hangup within {DEMO_CALL_TIMEOUT:g} s; moving on)")
                else:
                    say(
                        "   (this PBX reported no channel events for the call: "
                        "only its OriginateResponse)"
                    )
                break
            try:
                event = await events.get(timeout=remaining)
            except TimeoutError:
                continue
            if not _belongs_to(event, call.uniqueid, base):
                others += 1
                continue
            say(_demo_event(event))
            channel = event.get("Channel")
            if channel and event.name.lower() == "newchannel":
                channels.add(channel)
            elif channel and event.name.lower() == "hangup":
                channels.add(channel)
                hung_up.add(channel)
        else:
            say(f"   every channel of the call hung up ({len(hung_up)} channel(s))")
        if others:
            say(f"   ({others} other event(s) not shown)")
    return EXIT_OK


def add_demo(subparsers: Any) -> None:
    """The `demo` subcommand."""
    demo = subparser(
        subparsers,
        "demo",
        "a guided tour against an embedded simulated PBX (no Asterisk needed)",
        "Start an embedded simulated PBX (FakeAsterisk), then connect, log in, ping,\n"
        "run a CLI command, originate a call and print the call's events until it\n"
        "hangs up, and close. Each step shows the ami_async call that does it.",
        f"example:\n  {PROG} demo",
    )
    add_verbose(demo, "verbose")
    demo.set_defaults(handler=_run_demo)


def add_fake_pbx(subparsers: Any) -> None:
    """The `fake-pbx` subcommand."""
    fake = subparser(
        subparsers,
        "fake-pbx",
        "run the simulated PBX as a server, for other programs to connect to",
        "Run ami_async.testing.FakeAsterisk on HOST:PORT until Ctrl-C, so that other\n"
        "terminals (this tool, your application) can connect to it. It prints its\n"
        "address and its built-in test account on the first lines.",
        f"example:\n  {PROG} fake-pbx --port 5038 &\n"
        f"  export AMI_USERNAME=admin AMI_SECRET=amp111\n"
        f"  {PROG} events",
        "exit status: 0 stopped after --duration, 2 usage, 3 cannot listen, 130 Ctrl-C",
    )
    fake.add_argument("--host", default=DEFAULT_HOST, help=f"address (default {DEFAULT_HOST})")
    fake.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    fake.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    add_verbose(fake, "verbose")
    fake.set_defaults(handler=_run_fake_pbx)
