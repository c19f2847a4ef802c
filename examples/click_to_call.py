"""Click-to-call: ring a phone, connect it to a destination, wait for the call to end.

A plain asyncio script. It subscribes to ``Hangup`` *before* it originates (so
a call that ends at once is not missed), places the call, and waits for the
Hangup of the call's channel, printing how the call went::

    python examples/click_to_call.py PJSIP/100 200@from-internal
    python examples/click_to_call.py PJSIP/100 --app Playback --data tt-monkeys
    python examples/click_to_call.py Local/100@test --app Wait --data 2 --fake

Connection settings come from ``--host``/``--port``/``--username``/``--secret``
or ``AMI_HOST``/``AMI_PORT``/``AMI_USERNAME``/``AMI_SECRET`` (prefer the
variable for the secret: arguments are visible to other local users).
``--fake`` runs against an embedded simulated PBX instead.

Exit status: 0 the call was answered and has ended; 1 it was not answered
(busy, no answer, no such extension) or Asterisk refused the Originate; 2 bad
usage; 3 no connection, login refused or connection lost; 4 a wait timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from ami_async import (
    ActionError,
    ActionTimeoutError,
    AMIConnectionError,
    AuthenticationError,
    Client,
    Event,
    OriginateResult,
    Subscription,
)

__all__ = ["CallEnded", "main", "parse_args", "place_call", "wait_for_hangup"]

EXIT_OK = 0
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_TIMEOUT = 4


@dataclass(frozen=True)
class CallEnded:
    """The Hangup of the call's channel."""

    channel: str
    cause: int | None
    cause_text: str
    duration: float  # seconds from the answer to the Hangup (as seen here)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="click_to_call.py",
        description="Ring CHANNEL; once it answers, connect it to DESTINATION (EXTEN@CONTEXT) "
        "or run --app; wait until the call ends.",
    )
    parser.add_argument("channel", help="the phone to ring first, e.g. PJSIP/100")
    parser.add_argument(
        "destination", nargs="?", help="where to connect it: EXTEN@CONTEXT, e.g. 200@from-internal"
    )
    parser.add_argument("--priority", default="1", help="dialplan priority (default 1)")
    parser.add_argument("--app", help="run this application instead of a dialplan destination")
    parser.add_argument("--data", default="", help="the application's argument")
    parser.add_argument("--caller-id", help="caller ID shown on the phone, e.g. '\"Sales\" <200>'")
    parser.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="a channel variable"
    )
    parser.add_argument(
        "--ring-timeout", type=float, default=30.0, help="seconds to ring (default 30)"
    )
    parser.add_argument(
        "--max-duration",
        type=float,
        default=3600.0,
        help="give up waiting for the hangup after this many seconds (default 3600)",
    )
    env = os.environ
    parser.add_argument("--host", default=env.get("AMI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("AMI_PORT", "5038")))
    parser.add_argument("--username", default=env.get("AMI_USERNAME"))
    parser.add_argument("--secret", default=env.get("AMI_SECRET"), help="better: AMI_SECRET")
    parser.add_argument(
        "--fake", action="store_true", help="run against an embedded simulated PBX (FakeAsterisk)"
    )
    args = parser.parse_args(argv)
    if (args.app is None) == (args.destination is None):
        parser.error("give either DESTINATION (EXTEN@CONTEXT) or --app")
    if args.destination is not None and "@" not in args.destination:
        parser.error("DESTINATION must be EXTEN@CONTEXT")
    if not args.fake and not (args.username and args.secret):
        parser.error("give --username and --secret (or AMI_USERNAME and AMI_SECRET), or --fake")
    for item in args.var:
        if "=" not in item:
            parser.error(f"--var {item!r}: expected NAME=VALUE")
    for name in ("ring_timeout", "max_duration"):
        if not getattr(args, name) > 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


async def place_call(client: Client, args: argparse.Namespace) -> OriginateResult:
    """Originate as ``args`` say; the result comes once the channel answered or failed."""
    variables = dict(item.split("=", 1) for item in args.var)
    # Choosing the new channel's Uniqueid ourselves (ChannelId, Asterisk 13+)
    # lets us recognise its events with no guesswork.
    channel_id = f"c2c-{uuid.uuid4().hex}"
    if args.app is not None:
        return await client.originate(
            args.channel,
            application=args.app,
            data=args.data,
            variables=variables,
            caller_id=args.caller_id,
            channel_id=channel_id,
            timeout=args.ring_timeout,
        )
    exten, context = args.destination.split("@", 1)
    return await client.originate(
        args.channel,
        context=context,
        exten=exten,
        priority=args.priority,
        variables=variables,
        caller_id=args.caller_id,
        channel_id=channel_id,
        timeout=args.ring_timeout,
    )


async def wait_for_hangup(
    hangups: Subscription, call: OriginateResult, timeout: float
) -> CallEnded:
    """The Hangup of ``call``'s channel (raises ``TimeoutError`` after ``timeout`` s).

    The channel is recognised by its Uniqueid, or by name when the server gave
    none. Other channels of the same call (same Linkedid: the far side of a
    Local channel, the callee of a Dial) are reported as they go.
    """
    started = time.monotonic()

    async def first_match() -> Event:
        while True:
            # Raises AMIConnectionError if the link is lost or the client closed.
            event = await hangups.get()
            if call.uniqueid is not None and event.get("Uniqueid") == call.uniqueid:
                return event
            if call.uniqueid is None and event.get("Channel") == call.channel:
                return event
            if call.uniqueid is not None and event.get("Linkedid") == call.uniqueid:
                print(f"  {event.get('Channel')} hung up ({event.get('Cause-txt', '?')})")

    event = await asyncio.wait_for(first_match(), timeout)
    cause = event.get("Cause", "")
    return CallEnded(
        channel=event.get("Channel", ""),
        cause=int(cause) if cause.isdigit() else None,
        cause_text=event.get("Cause-txt", ""),
        duration=time.monotonic() - started,
    )


@contextlib.asynccontextmanager
async def ami_client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """A connected client, to the server ``args`` name or to an embedded FakeAsterisk."""
    # A one-shot script does not reconnect: after a loss it cannot know what
    # became of the call, so it says so and stops.
    if not args.fake:
        client = Client(
            args.host, args.port, username=args.username, secret=args.secret, reconnect=False
        )
        async with client:
            yield client
        return
    from ami_async.testing import FakeAsterisk

    async with FakeAsterisk() as pbx:
        username, secret = next(iter(pbx.users.items()))
        async with Client(
            pbx.host, pbx.port, username=username, secret=secret, reconnect=False
        ) as client:
            yield client


async def main(argv: Sequence[str] | None = None) -> int:
    """Run the script; returns the exit status."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or bad usage (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    target = args.destination or f"{args.app}({args.data})"
    placed = False
    try:
        async with ami_client(args) as client:
            # Subscribed before the Originate: the Hangup of a call that ends at
            # once may arrive before we know the channel, and is kept until read.
            async with client.events("Hangup") as hangups:
                print(f"calling {args.channel}, then {target} ...")
                placed = True
                call = await place_call(client, args)
                if not call.success:
                    print(f"the call failed: {call.reason_text} (reason {call.reason})")
                    return EXIT_CALL_FAILED
                print(f"answered on {call.channel} (Uniqueid {call.uniqueid})")
                ended = await wait_for_hangup(hangups, call, args.max_duration)
            print(
                f"{ended.channel} hung up after {ended.duration:.1f} s: "
                f"{ended.cause_text or 'no cause given'} (cause {ended.cause})"
            )
            return EXIT_OK
    except ActionError as exc:
        print(f"Asterisk refused the call: {exc.message or exc}", file=sys.stderr)
        return EXIT_CALL_FAILED
    except ActionTimeoutError as exc:
        print(f"no answer from Asterisk: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except (TimeoutError, asyncio.TimeoutError):  # the same class from Python 3.11 on
        print(f"the call was still up after {args.max_duration:g} s; stopped waiting")
        return EXIT_TIMEOUT
    except AuthenticationError as exc:
        print(f"login refused: {exc}", file=sys.stderr)
        return EXIT_CONNECTION
    except AMIConnectionError as exc:
        if placed:  # the Originate may have been sent: the call may well be up
            print(f"lost the connection, the call's fate is unknown: {exc}", file=sys.stderr)
        else:
            print(f"cannot reach Asterisk: {exc}", file=sys.stderr)
        return EXIT_CONNECTION


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:  # Ctrl-C stops the waiting, not the call
        sys.exit(130)
