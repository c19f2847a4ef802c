"""A live wallboard in the browser: current calls, queues and conferences, from `ami_async.Live`.

One aiohttp service follows the PBX with one `Live` model and serves:

    GET /          the page (wallboard.html: one self-contained file, no CDN)
    GET /events    server-sent events: the whole board as `event: state`, at once
                   and again after every batch of changes from ``live.changes()``
    GET /state     the same board as JSON (for curl and scripts)
    GET /health    200 while the model is current, 503 while it resyncs

The board is small (the calls up now, the queues, the conferences, the last
few ended calls), so each update carries all of it: a page opened mid-call,
or one that reconnects, is right from its first message, and nothing it
shows can drift from the model. Durations tick in the browser.

    python examples/wallboard.py --fake                  # an embedded simulated PBX, with calls
    python examples/wallboard.py --host pbx.example.com --username wallboard   # AMI_SECRET in env

then open http://127.0.0.1:8080/. The manager user needs the `call`, `agent`
and `reporting`... read classes: see docs/live.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ami_async import AMIError, Client, SubscriptionOverflowError
from ami_async.live import Call, CallerID, CallRecord, Conference, Live, Queue, QueueMember

if TYPE_CHECKING:  # --fake imports it when asked for
    from ami_async.testing import FakeAsterisk

__all__ = ["LIVE", "PAGE", "board", "create_app", "main"]

#: Builds the (not yet connected) client; the cleanup context connects and closes it.
ClientFactory = Callable[[], Client]

#: The model, ``request.app[LIVE]``.
LIVE = web.AppKey("live", Live)
#: The open event streams (ended at shutdown so it never waits for them).
STREAMS = web.AppKey("streams", set[asyncio.Task[Any]])

#: The page, next to this file: inline CSS and JavaScript, nothing fetched from elsewhere.
PAGE = Path(__file__).with_name("wallboard.html")
#: Seconds between keepalive comments on an idle stream.
SSE_KEEPALIVE = 15.0
#: Seconds between two looks at whether the browser is gone (no change says so;
#: the link to Asterisk going and coming back does: `Unsynced`, then `Synced`).
STATUS_POLL = 1.0
#: Changes a slow browser may fall behind by before it is simply sent the whole board again.
SSE_QUEUE_SIZE = 1000
#: Ended calls shown under "Recently ended".
RECENT = 8


# -- the board: the model as JSON ------------------------------------------------------------


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _party(who: CallerID) -> dict[str, str | None]:
    return {"number": who.num, "name": who.name}


def call_state(call: Call, where: Mapping[str, str] | None = None) -> str:
    """What the board says a call is doing: ``queued``, ``parked``, ``conference``,
    ``held``, ``talking``, ``ringing`` or ``dialing``.

    ``where`` maps the uniqueid of a channel waiting in a queue, parked or in a
    conference to one of those words (a queue answers its caller before anyone
    talks to them).
    """
    channels = list(call.channels.values())
    if where:
        for state in ("queued", "parked", "conference"):
            if any(where.get(c.uniqueid) == state for c in channels):
                return state
    if call.answered_at is not None:
        return "held" if any(c.on_hold for c in channels) else "talking"
    # ChannelState 5 (Ringing) is a phone ringing; 4 (Ring) is a caller hearing it ring.
    return "ringing" if any(int(c.state) in (4, 5) for c in channels) else "dialing"


def member_state(member: QueueMember) -> str:
    """``available``, ``busy``, ``paused`` or ``unavailable``, from its device state."""
    # Device states (include/asterisk/devicestate.h): 4 invalid, 5 unavailable;
    # 2 in use, 3 busy, 6 ringing, 7 ringing in use, 8 on hold.
    if member.status in (4, 5):
        return "unavailable"
    if member.paused:
        return "paused"
    if member.in_call or member.status in (2, 3, 6, 7, 8):
        return "busy"
    return "available"


def _call(call: Call, where: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": call.linkedid,
        "caller": _party(call.caller),
        "callee": _party(call.callee),
        "state": call_state(call, where),
        "started": _epoch(call.started_at),
        "answered": _epoch(call.answered_at),
        "channels": len(call.channels),
    }


def _record(record: CallRecord) -> dict[str, Any]:
    cause = record.cause
    return {
        "id": record.linkedid,
        "caller": _party(record.caller),
        "callee": _party(record.callee),
        "ended": _epoch(record.ended_at),
        "duration": round(record.duration),
        "billsec": round(record.billsec),
        "disposition": record.disposition,
        "cause": None if cause is None or int(cause) == 16 else getattr(cause, "name", str(cause)),
    }


def _queue(queue: Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "members": [
            {"interface": m.interface, "name": m.name, "state": member_state(m)}
            for m in sorted(queue.members.values(), key=lambda m: m.name or m.interface)
        ],
        "callers": [
            {
                "id": c.uniqueid,
                "position": c.position,
                "since": _epoch(c.joined_at),
                **_party(c.caller),
            }
            for c in queue.callers
        ],
    }


def _conference(conference: Conference) -> dict[str, Any]:
    return {
        "name": conference.name,
        "participants": [
            {"id": p.uniqueid, "since": _epoch(p.joined_at), "muted": p.muted, **_party(p.caller)}
            for p in conference.participants.values()
        ],
    }


def board(live: Live, *, recent: int = RECENT) -> dict[str, Any]:
    """Everything the page shows, as JSON-able data (``now``: the server's clock)."""
    calls = sorted(live.calls.values(), key=lambda call: call.started_at)
    where = {u: "conference" for c in live.conferences.values() for u in c.participants}
    where.update((p.uniqueid, "parked") for p in live.parked.values())
    where.update((c.uniqueid, "queued") for q in live.queues.values() for c in q.callers)
    return {
        "now": datetime.now().timestamp(),
        "synced": live.synced,
        "calls": [_call(call, where) for call in calls],
        "recent": [_record(r) for r in reversed(list(live.history)[-recent:])] if recent else [],
        "queues": [_queue(live.queues[name]) for name in sorted(live.queues)],
        "conferences": [_conference(live.conferences[n]) for n in sorted(live.conferences)],
    }


def sse(data: object, event: str) -> bytes:
    """One server-sent event. ``json.dumps`` never emits a newline, so one data line suffices."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# -- the service -----------------------------------------------------------------------------


async def page(request: web.Request) -> web.Response:
    return web.Response(
        body=PAGE.read_bytes(),
        content_type="text/html",
        charset="utf-8",
        # The page fetches nothing from anywhere: say so to the browser as well.
        headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'"
        },
    )


async def state(request: web.Request) -> web.Response:
    return web.json_response(board(request.app[LIVE]))


async def health(request: web.Request) -> web.Response:
    live = request.app[LIVE]
    return web.json_response({"synced": live.synced}, status=200 if live.synced else 503)


def events_handler(keepalive: float) -> Callable[[web.Request], Any]:
    """``GET /events``: the board at once, then again after each batch of changes."""

    async def events(request: web.Request) -> web.StreamResponse:
        live = request.app[LIVE]
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx would deliver the stream in bursts
            }
        )
        task = asyncio.current_task()
        assert task is not None
        request.app[STREAMS].add(task)
        # Follow the changes before taking the first board: a change that lands
        # in between is then sent again rather than missed.
        changes = live.changes(maxsize=SSE_QUEUE_SIZE)
        loop = asyncio.get_running_loop()
        try:
            await response.prepare(request)
            await response.write(b"retry: 3000\n\n")
            await response.write(sse(board(live), "state"))
            written = loop.time()
            while True:
                # Every change sends the board, `Unsynced` (the link to Asterisk is
                # lost: the page says "resyncing") and `Synced` (current again) too.
                try:
                    await changes.get(timeout=STATUS_POLL)
                except TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break  # the browser went away (aiohttp does not cancel the handler)
                    if loop.time() - written >= keepalive:  # proxies close quiet streams
                        await response.write(b": keepalive\n\n")
                        written = loop.time()
                    continue
                except SubscriptionOverflowError:
                    pass  # some were lost: the board sent next is whole anyway
                except AMIError:
                    break  # the client closed or gave up
                _drain(changes)  # one board for a burst of changes
                await response.write(sse(board(live), "state"))
                written = loop.time()
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the browser went away, or the server is shutting down
        finally:
            changes.close()
            request.app[STREAMS].discard(task)
        return response

    return events


def _drain(changes: Any) -> None:
    """Take every change already queued (the board sent next reflects them all)."""
    while True:
        try:
            if changes.get_nowait() is None:
                return
        except SubscriptionOverflowError:
            continue


def create_app(
    client_factory: ClientFactory, *, keepalive: float = SSE_KEEPALIVE
) -> web.Application:
    """The wallboard service; ``client_factory`` builds its client (tests point it at a fake)."""

    async def follow(app: web.Application) -> AsyncIterator[None]:
        client = client_factory()
        # Fail start-up if Asterisk is unreachable or refuses the login; once
        # connected the client reconnects by itself and the model resyncs.
        await client.connect()
        try:
            async with Live(client) as live:
                app[LIVE] = live
                yield
        finally:
            await client.close()

    async def end_streams(app: web.Application) -> None:
        streams: set[asyncio.Task[Any]] = app[STREAMS]
        for task in tuple(streams):
            task.cancel()

    app = web.Application()
    streams: set[asyncio.Task[Any]] = set()
    app[STREAMS] = streams
    app.cleanup_ctx.append(follow)
    app.on_shutdown.append(end_streams)
    app.router.add_get("/", page)
    app.router.add_get("/events", events_handler(keepalive))
    app.router.add_get("/state", state)
    app.router.add_get("/health", health)
    return app


# -- --fake: an embedded simulated PBX with calls coming and going --------------------------

#: --fake: seconds between two demo calls.
DEMO_STEP = 2.0
#: (extension of [test], caller ID): a dialled call that is answered, a caller
#: that Bob answers in queue sales, two in conference 1234 (300), one waiting
#: in support (Alice is paused), a call nobody answers, a busy line.
DEMO_CALLS = (
    ("2010", '"Alice Martin" <4155550101>'),
    ("410", '"Bruno Costa" <4155550102>'),
    ("300", '"Chen Wei" <4155550103>'),
    ("400", '"Dana Smith" <4155550104>'),
    ("2012", '"Emil Novak" <4155550105>'),
    ("300", '"Farah Khan" <4155550106>'),
    ("2001", '"Gita Rao" <4155550107>'),
    ("2003", '"Hugo Blanc" <4155550108>'),
)


async def demo_calls(client: Client, calls: Iterable[tuple[str, str]] = DEMO_CALLS) -> None:
    """Place the demo calls one by one, again and again (until cancelled)."""
    for exten, caller_id in itertools.cycle(calls):
        with contextlib.suppress(AMIError):
            await client.originate(
                f"Local/{exten}@test",
                application="Wait",
                data="25",
                caller_id=caller_id,
                wait=False,
            )
        await asyncio.sleep(DEMO_STEP)


@contextlib.asynccontextmanager
async def fake_pbx() -> AsyncIterator[FakeAsterisk]:
    """A simulated PBX for as long as the block (the lab's dialplan and queues)."""
    from ami_async.testing import FakeAsterisk

    async with FakeAsterisk() as pbx:
        yield pbx


@contextlib.asynccontextmanager
async def demo(pbx: FakeAsterisk) -> AsyncIterator[None]:
    """Demo calls on `pbx` for as long as the block."""
    username, secret = next(iter(pbx.users.items()))
    async with Client(pbx.host, pbx.port, username=username, secret=secret) as caller:
        task = asyncio.ensure_future(demo_calls(caller))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="wallboard.py", description="Serve a live wallboard of the PBX's calls and queues."
    )
    parser.add_argument("--host", default=env.get("AMI_HOST", "127.0.0.1"), help="AMI host")
    parser.add_argument("--port", type=int, default=int(env.get("AMI_PORT", "5038")))
    parser.add_argument("--username", default=env.get("AMI_USERNAME"))
    parser.add_argument("--secret", default=env.get("AMI_SECRET"), help="better: AMI_SECRET")
    parser.add_argument("--fake", action="store_true", help="an embedded simulated PBX, with calls")
    parser.add_argument("--listen", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    parser.add_argument("--http-port", type=int, default=int(env.get("PORT", "8080")))
    args = parser.parse_args(argv)
    if not args.fake and not (args.username and args.secret):
        parser.error("give --username and --secret (or AMI_USERNAME and AMI_SECRET), or --fake")
    return args


async def serve(args: argparse.Namespace) -> None:
    """Serve until cancelled."""
    async with contextlib.AsyncExitStack() as stack:
        if args.fake:
            pbx = await stack.enter_async_context(fake_pbx())
            username, secret = next(iter(pbx.users.items()))

            def factory() -> Client:
                return Client(pbx.host, pbx.port, username=username, secret=secret)

        else:

            def factory() -> Client:
                return Client(
                    args.host,
                    args.port,
                    username=args.username,
                    secret=args.secret,
                    ping_interval=20.0,
                )

        runner = web.AppRunner(create_app(factory))
        await runner.setup()  # connected, the model loaded
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, args.listen, args.http_port)
        await site.start()
        if args.fake:  # calls from now on: the model sees each from its first event
            await stack.enter_async_context(demo(pbx))
        print(f"wallboard on http://{args.listen}:{args.http_port}/", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    except AMIError as exc:
        print(f"wallboard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
