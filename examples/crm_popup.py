"""CRM pop-up: when a phone starts ringing, show its user who is calling.

`ami_async.Live` follows every dial: a channel being dialled has ``dialed_by``
set, and its call (``live.calls[channel.linkedid]``) knows the caller, however
the call got there (a Dial, a queue ringing its agents, a transfer). This
script looks the caller's number up in a contacts file and prints a pop-up line
for the ringing phone; a real one would notify that user's desktop or CRM tab::

    python examples/crm_popup.py contacts.csv              # until Ctrl-C
    python examples/crm_popup.py contacts.csv --fake       # the simulated PBX, 2 calls

``contacts.csv`` has a header row and the columns ``number,name,account``.
Connection from ``--host``/``--port``/``--username`` and ``AMI_HOST``/``AMI_PORT``/
``AMI_USERNAME``/``AMI_SECRET`` (the secret only from the environment). The
manager user needs ``read = call`` (docs/live.md, "Limits").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ami_async import AMIConnectionError, AuthenticationError, Client
from ami_async.live import Channel, ChannelAdded, ChannelUpdated, Live

__all__ = ["device", "load_contacts", "main", "pop_ups", "popup_text"]


def load_contacts(path: Path) -> dict[str, dict[str, str]]:
    """The contacts by number (digits only: ``+1 (415) 555-0101`` is ``14155550101``)."""
    with path.open(newline="", encoding="utf-8") as file:
        return {digits(r["number"]): r for r in csv.DictReader(file) if digits(r["number"])}


def digits(number: str | None) -> str:
    return "".join(c for c in number or "" if c.isdigit())


def device(channel: Channel) -> str:
    """The phone a channel rings: ``PJSIP/100-0000002a`` is ``PJSIP/100``."""
    return channel.name.rsplit("-", 1)[0]


def popup_text(live: Live, ringing: Channel, contacts: Mapping[str, Mapping[str, str]]) -> str:
    """The pop-up for a phone that starts ringing."""
    call = live.calls.get(ringing.linkedid)
    caller = call.caller if call is not None else ringing.connected
    contact = contacts.get(digits(caller.num))
    who = f"{caller.name or ''} <{caller.num or 'unknown'}>".strip()
    if contact is None:
        return f"{device(ringing)}: call from {who} (not in contacts)"
    return f"{device(ringing)}: call from {who}: {contact['name']}, account {contact['account']}"


async def pop_ups(
    live: Live, contacts: Mapping[str, Mapping[str, str]], count: int | None = None
) -> None:
    """Print a pop-up each time a channel is dialled (``count`` times, or until cancelled)."""
    shown = 0
    async with live.changes() as changes:
        async for change in changes:
            if isinstance(change, (ChannelAdded, ChannelUpdated)) and change.channel.dialed_by:
                if isinstance(change, ChannelUpdated) and change.previous.dialed_by:
                    continue  # dialled before: shown then
                print(popup_text(live, change.channel, contacts), flush=True)
                shown += 1
                if shown == count:
                    return


# -- running it --------------------------------------------------------------------------------

#: --fake: Ada (in the contacts) calls 2010, which dials 2011; an unknown number calls 2012.
DEMO_CALLS = (("2010", '"Ada Lovelace" <5550001>'), ("2012", "5550099"))


async def run(args: argparse.Namespace, contacts: Mapping[str, Mapping[str, str]]) -> int:
    async with contextlib.AsyncExitStack() as stack:
        if args.fake:
            from ami_async.testing import FakeAsterisk

            pbx = await stack.enter_async_context(FakeAsterisk(time_scale=0.1))
            host, port, (username, secret) = pbx.host, pbx.port, next(iter(pbx.users.items()))
            args.count = len(DEMO_CALLS)
        else:
            host, port, username = args.host, args.port, args.username
            secret = os.environ["AMI_SECRET"]  # parse_args checked it is set
        client = await stack.enter_async_context(
            Client(host, port, username=username, secret=secret)
        )
        live = await stack.enter_async_context(Live(client))
        print("waiting for calls", flush=True)
        task = asyncio.ensure_future(pop_ups(live, contacts, args.count))
        for exten, caller_id in DEMO_CALLS if args.fake else ():
            await client.originate(
                f"Local/{exten}@test", application="Wait", data="2", caller_id=caller_id
            )
        await task
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="crm_popup.py", description="Show who is calling when a phone starts ringing."
    )
    parser.add_argument("contacts", type=Path, help="CSV file: number,name,account")
    parser.add_argument("--count", type=int, help="stop after this many pop-ups")
    parser.add_argument("--host", default=os.environ.get("AMI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AMI_PORT", "5038")))
    parser.add_argument("--username", default=os.environ.get("AMI_USERNAME"))
    parser.add_argument("--fake", action="store_true", help="an embedded simulated PBX, 2 calls")
    args = parser.parse_args(argv)
    if not args.fake and not (args.username and os.environ.get("AMI_SECRET")):
        parser.error("set AMI_USERNAME (or --username) and AMI_SECRET, or give --fake")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        contacts = load_contacts(args.contacts)
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        print(f"crm_popup: cannot read {args.contacts}: {exc!r}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args, contacts))
    except KeyboardInterrupt:
        return 0
    except (AuthenticationError, AMIConnectionError) as exc:
        print(f"crm_popup: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
