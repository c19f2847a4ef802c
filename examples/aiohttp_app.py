"""An aiohttp service that owns one AMI client for the whole process.

A ``cleanup_ctx`` connects one `ami_async.Client` at start-up and closes
it at cleanup; every request shares it. The same endpoints as
``fastapi_app.py``:

    POST /calls      originate a call and wait for its outcome (JSON)
    GET  /channels   the live channels (CoreShowChannels)
    GET  /health     200 while the AMI link is up, 503 while it is down
    GET  /events     AMI events as server-sent events; ?name=Hangup&name=Newchannel filters

Run it against the simulated PBX (two shells)::

    python -m ami_async fake-pbx --port 5038
    AMI_PORT=5038 AMI_USERNAME=admin AMI_SECRET=amp111 python examples/aiohttp_app.py

then ``curl -N localhost:8080/events`` and ``curl -X POST localhost:8080/calls
-H 'content-type: application/json'
-d '{"channel": "Local/100@test", "application": "Wait", "data": "1"}'``.
See docs/integrations.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from ami_async import (
    ActionError,
    ActionTimeoutError,
    AMIConnectionError,
    AMIError,
    Client,
    Event,
    InvalidActionError,
    OriginateResult,
    Subscription,
    SubscriptionOverflowError,
)

__all__ = ["AMI", "CallRequest", "client_from_env", "create_app", "main"]

#: Builds the (not yet connected) client; the cleanup context connects and closes it.
ClientFactory = Callable[[], Client]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The process-wide client, ``request.app[AMI]`` (typed application keys need aiohttp 3.9).
AMI = web.AppKey("ami", Client)
#: The subscriptions of the open event streams (closed at shutdown).
STREAMS = web.AppKey("event_streams", set[Subscription])

#: Seconds between SSE keepalive comments on an idle stream.
SSE_KEEPALIVE = 15.0
#: Events a slow browser may fall behind by before it is told it missed some.
SSE_QUEUE_SIZE = 1000


def client_from_env() -> Client:
    """A client configured from ``AMI_HOST``, ``AMI_PORT``, ``AMI_USERNAME``, ``AMI_SECRET``."""
    missing = [name for name in ("AMI_USERNAME", "AMI_SECRET") if not os.environ.get(name)]
    if missing:
        raise RuntimeError(f"set {' and '.join(missing)} (and AMI_HOST, AMI_PORT if not local)")
    return Client(
        os.environ.get("AMI_HOST", "127.0.0.1"),
        int(os.environ.get("AMI_PORT", "5038")),
        username=os.environ["AMI_USERNAME"],
        secret=os.environ["AMI_SECRET"],
        # A keepalive Ping notices a dead link (a NAT or firewall that silently
        # dropped the connection) within ping_interval + ping_timeout seconds.
        ping_interval=20.0,
    )


# -- request bodies and JSON ----------------------------------------------------------------


class BadRequest(ValueError):
    """The JSON body of ``POST /calls`` is not a valid call."""


@dataclass(frozen=True)
class CallRequest:
    """``POST /calls``: the channel to ring, then an application or a dialplan extension."""

    channel: str
    application: str | None = None
    data: str | None = None
    context: str | None = None
    exten: str | None = None
    priority: int | str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    caller_id: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_json(cls, body: object) -> CallRequest:
        """Validate a decoded JSON body (raises `BadRequest` with the reason)."""
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
        text: dict[str, str | None] = {}
        for key in ("channel", "application", "data", "context", "exten", "caller_id"):
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"{key} must be a string")
            text[key] = value
        channel = text["channel"]
        if not channel:
            raise BadRequest("channel is required")
        if (text["application"] is None) == (text["exten"] is None):
            raise BadRequest("give either application (and data) or context and exten")
        if text["exten"] is not None and text["context"] is None:
            raise BadRequest("exten needs a context")
        priority = body.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int | str | None):
            raise BadRequest("priority must be a number or a label")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise BadRequest("variables must map names to strings")
        timeout = body.get("timeout", 30.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise BadRequest("timeout must be a number of seconds")
        if not 0 < timeout <= 300:
            raise BadRequest("timeout must be more than 0 and at most 300 seconds")
        return cls(
            channel=channel,
            application=text["application"],
            data=text["data"],
            context=text["context"],
            exten=text["exten"],
            priority=priority,
            variables=variables,
            caller_id=text["caller_id"],
            timeout=float(timeout),
        )


def result_to_json(result: OriginateResult) -> dict[str, object]:
    """The outcome of an Originate; ``success`` is false for a call nobody answered."""
    return {
        "success": result.success,
        "reason": None if result.reason is None else int(result.reason),
        "reason_text": result.reason_text,
        "uniqueid": result.uniqueid,
        "channel": result.channel,
    }


def event_to_json(event: Event) -> dict[str, str | list[str]]:
    """An event's headers as JSON; a repeated header (``ChanVariable``) becomes a list."""
    out: dict[str, str | list[str]] = {}
    for key, value in event.headers:
        if key.lower() == "actionid":
            continue
        previous = out.get(key)
        if previous is None:
            out[key] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            out[key] = [previous, value]
    return out


def sse(data: object, event: str | None = None) -> bytes:
    """One server-sent event. ``json.dumps`` never emits a newline, so one data line suffices."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _error(status: int, detail: str, **headers: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers or None)


# -- handlers -----------------------------------------------------------------------------------


@web.middleware
async def ami_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """AMI errors -> HTTP statuses, for every endpoint."""
    try:
        return await handler(request)
    except ActionError as exc:
        return _error(502, exc.message or str(exc))  # Asterisk refused: its own words
    except ActionTimeoutError as exc:
        return _error(504, str(exc))
    except AMIConnectionError as exc:
        # Not connected right now (the client is reconnecting): try again shortly.
        # An Originate is never re-sent after a loss: it is not idempotent.
        return _error(503, str(exc), **{"Retry-After": "5"})
    except InvalidActionError as exc:
        # A CR or LF in a value (a caller ID crafted to inject a second action)
        # is refused by the client before a byte is written.
        return _error(422, str(exc))


async def place_call(request: web.Request) -> web.Response:
    """Originate and wait for the outcome (at most the ring timeout plus a margin)."""
    try:
        call = CallRequest.from_json(await request.json())
    except (BadRequest, json.JSONDecodeError) as exc:
        return _error(422, str(exc))
    result = await request.app[AMI].originate(
        call.channel,
        application=call.application,
        data=call.data,
        context=call.context,
        exten=call.exten,
        priority=call.priority,
        variables=call.variables,
        caller_id=call.caller_id,
        timeout=call.timeout,
    )
    return web.json_response(result_to_json(result))


async def channels(request: web.Request) -> web.Response:
    """One entry per live channel."""
    items = await request.app[AMI].core_show_channels()
    return web.json_response([event_to_json(item) for item in items])


async def health(request: web.Request) -> web.Response:
    """200 while logged in to Asterisk, 503 while reconnecting (for load balancers)."""
    client = request.app[AMI]
    body = {
        "connected": client.connected,
        "ami_version": client.ami_version,
        "reconnects": client.reconnects,
        "event_streams": len(request.app[STREAMS]),
    }
    return web.json_response(body, status=200 if client.connected else 503)


def events_handler(keepalive: float) -> Handler:
    """``GET /events``: one subscription per request, closed when the request ends."""

    async def events(request: web.Request) -> web.StreamResponse:
        client = request.app[AMI]
        names = request.query.getall("name", [])
        if not all(names):
            return _error(422, "an event name may not be empty")
        if client.closed:
            return _error(503, "the AMI client is closed")
        streams = request.app[STREAMS]
        response = web.StreamResponse(
            # no-cache: an event stream is never cached; X-Accel-Buffering: nginx
            # would otherwise buffer the stream and deliver events in bursts.
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        # One subscription per request: every browser has its own bounded queue.
        subscription = client.events(*names, maxsize=SSE_QUEUE_SIZE)
        streams.add(subscription)
        try:
            await response.prepare(request)
            # ``retry:`` sets the browser's reconnect delay; this first chunk also
            # tells the browser (and the tests) that the subscription exists.
            await response.write(b"retry: 3000\n: subscribed\n\n")
            while True:
                try:
                    event = await subscription.get(timeout=keepalive)
                except TimeoutError:
                    # aiohttp does not cancel a handler whose client left: writing
                    # is how a vanished browser is noticed (ConnectionResetError),
                    # and the comment keeps proxies from closing an idle stream.
                    await response.write(b": keepalive\n\n")
                    continue
                except SubscriptionOverflowError as exc:
                    await response.write(sse({"dropped": exc.dropped}, event="overflow"))
                    continue
                except AMIError:
                    break  # closed at shutdown (on_shutdown), or the client gave up
                await response.write(sse(event_to_json(event)))
        except ConnectionResetError:
            pass  # the browser went away
        finally:
            subscription.close()
            streams.discard(subscription)
        return response

    return events


# -- the application -------------------------------------------------------------------------


def create_app(
    client_factory: ClientFactory = client_from_env, *, keepalive: float = SSE_KEEPALIVE
) -> web.Application:
    """The service. ``client_factory`` builds its client (tests point it at a FakeAsterisk)."""

    async def ami_client(app: web.Application) -> AsyncIterator[None]:
        client = client_factory()
        # Fail start-up if Asterisk is unreachable or refuses the login: a
        # supervisor restarts the process and says why. Once connected, the
        # client reconnects by itself after a loss.
        await client.connect()
        app[AMI] = client
        yield
        # Logs off, fails pending actions, ends every subscription, stops the client's tasks.
        await client.close()

    async def end_event_streams(app: web.Application) -> None:
        # on_shutdown runs before the server waits for open requests: ending the
        # endless event streams here keeps shutdown from waiting for them.
        streams = app[STREAMS]
        for subscription in list(streams):
            subscription.close()

    app = web.Application(middlewares=[ami_errors])
    streams: set[Subscription] = set()
    app[STREAMS] = streams
    app.cleanup_ctx.append(ami_client)
    app.on_shutdown.append(end_event_streams)
    app.router.add_post("/calls", place_call)
    app.router.add_get("/channels", channels)
    app.router.add_get("/health", health)
    app.router.add_get("/events", events_handler(keepalive))
    return app


def main() -> None:
    """``python examples/aiohttp_app.py``: serve on 127.0.0.1:8080 (``PORT`` to change)."""
    web.run_app(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))


if __name__ == "__main__":
    main()
