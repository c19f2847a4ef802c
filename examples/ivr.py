"""A small IVR: "press 1 for sales, 2 for support", over FastAGI or AsyncAGI.

The same handler, ``ivr(agi)``, runs over either transport::

    python examples/ivr.py --fastagi 4573      # dialplan: same => n,AGI(agi://HOST:4573/ivr)
    python examples/ivr.py --async             # dialplan: same => n,AGI(agi:async)

``--async`` drives the calls over the AMI connection (settings from
``AMI_HOST``, ``AMI_PORT``, ``AMI_USERNAME``, ``AMI_SECRET``); ``--fastagi``
needs no AMI at all. The caller hears ``ivr-menu`` and has three tries; the
choice is left in the channel variable ``IVR_CHOICE`` (``sales``, ``support``
or ``none``) for the dialplan to route on after the AGI. A caller who hangs
up ends the session with `AGIHangupError`, which the library logs and
swallows: nothing to do here.

Prints ``ready`` once serving; Ctrl-C (or SIGTERM) stops it. Exit status: 0
stopped, 2 bad usage, 3 no AMI connection or the port is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

from ami_async import AMIConnectionError, AuthenticationError, Client
from ami_async.agi import AGISession, AsyncAGI, serve

__all__ = ["CHOICES", "ivr", "main"]

#: What each digit means, and the prompt that confirms it.
CHOICES = {"1": ("sales", "transfer-to-sales"), "2": ("support", "transfer-to-support")}
TRIES = 3


async def ivr(agi: AGISession) -> None:
    """The menu: answer, ask up to three times, leave the choice in ``IVR_CHOICE``."""
    await agi.answer()
    for _ in range(TRIES):
        digit = await agi.get_data("ivr-menu", timeout=5.0, max_digits=1)
        if digit in CHOICES:
            choice, confirmation = CHOICES[digit]
            await agi.set_variable("IVR_CHOICE", choice)
            await agi.stream_file(confirmation)
            return  # the dialplan goes on and routes on ${IVR_CHOICE}
        await agi.stream_file("option-is-invalid" if digit else "please-try-again")
    await agi.set_variable("IVR_CHOICE", "none")
    await agi.stream_file("goodbye")
    await agi.hangup()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def run_fastagi(host: str, port: int) -> int:
    try:
        server = await serve(ivr, host, port)
    except OSError as exc:
        print(f"ivr: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 3
    async with server:
        print(f"ready: FastAGI on {host}:{server.port}", flush=True)
        await _until_stopped()
    return 0


async def run_async_agi() -> int:
    client = Client(
        os.environ.get("AMI_HOST", "127.0.0.1"),
        int(os.environ.get("AMI_PORT", "5038")),
        username=os.environ.get("AMI_USERNAME", ""),
        secret=os.environ.get("AMI_SECRET", ""),
    )
    try:
        await client.connect()
    except (AMIConnectionError, AuthenticationError) as exc:
        print(f"ivr: no AMI connection: {exc}", file=sys.stderr)
        return 3
    async with client, AsyncAGI(client, ivr):
        print(f"ready: AsyncAGI on {client.host}:{client.port}", flush=True)
        await _until_stopped()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="press 1 for sales, 2 for support")
    transport = parser.add_mutually_exclusive_group(required=True)
    transport.add_argument("--fastagi", type=int, metavar="PORT", help="serve FastAGI on PORT")
    transport.add_argument(
        "--async", dest="async_agi", action="store_true", help="AsyncAGI over AMI (AMI_* env)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="FastAGI address (127.0.0.1)")
    args = parser.parse_args(argv)
    if args.async_agi:
        return asyncio.run(run_async_agi())
    return asyncio.run(run_fastagi(args.host, args.fastagi))


if __name__ == "__main__":
    sys.exit(main())
