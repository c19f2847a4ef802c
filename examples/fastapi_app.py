"""A FastAPI service that owns one AMI client for the whole process.

The lifespan connects one `ami_async.Client` at start-up and closes it at
shutdown; every request shares it (one AMI connection carries any number of
concurrent actions, each answer routed back by ActionID).

    POST /calls      originate a call and wait for its outcome (JSON)
    GET  /channels   the live channels (CoreShowChannels)
    GET  /health     200 while the AMI link is up, 503 while it is down
    GET  /events     AMI events as server-sent events; ?name=Hangup&name=Newchannel filters

Run it against the simulated PBX (two shells; needs ``pip install fastapi uvicorn``)::

    python -m ami_async fake-pbx --port 5038
    AMI_PORT=5038 AMI_USERNAME=admin AMI_SECRET=amp111 \
        uvicorn examples.fastapi_app:app --timeout-graceful-shutdown 5

then ``curl -N localhost:8000/events`` in one terminal and, in another,
``curl -X POST localhost:8000/calls -H 'content-type: application/json'
-d '{"channel": "Local/100@test", "application": "Wait", "data": "1"}'``.
Against a real Asterisk set ``AMI_HOST``/``AMI_PORT``/``AMI_USERNAME``/``AMI_SECRET``.
See docs/integrations.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, model_validator

from ami_async import (
    ActionError,
    ActionTimeoutError,
    AMIConnectionError,
    AMIError,
    Client,
    Event,
    InvalidActionError,
    OriginateResult,
    SubscriptionOverflowError,
)

__all__ = ["CallRequest", "CallResult", "app", "client_from_env", "create_app"]

#: Builds the (not yet connected) client; the lifespan connects and closes it.
ClientFactory = Callable[[], Client]

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


# -- request and response bodies ---------------------------------------------------------


class CallRequest(BaseModel):
    """``POST /calls``: the channel to ring, then an application or a dialplan extension."""

    channel: str = Field(min_length=1, examples=["PJSIP/100"])
    application: str | None = Field(default=None, examples=["Playback"])
    data: str | None = None
    context: str | None = Field(default=None, examples=["from-internal"])
    exten: str | None = None
    priority: int | str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    caller_id: str | None = Field(default=None, examples=['"Sales" <200>'])
    timeout: float = Field(default=30.0, gt=0, le=300, description="ring timeout, seconds")

    @model_validator(mode="after")
    def _one_destination(self) -> CallRequest:
        if (self.application is None) == (self.exten is None):
            raise ValueError("give either application (and data) or context and exten")
        if self.exten is not None and self.context is None:
            raise ValueError("exten needs a context")
        return self


class CallResult(BaseModel):
    """The outcome of an Originate; ``success`` is false for a call nobody answered."""

    success: bool
    reason: int | None
    reason_text: str
    uniqueid: str | None
    channel: str | None

    @classmethod
    def of(cls, result: OriginateResult) -> CallResult:
        return cls(
            success=result.success,
            reason=None if result.reason is None else int(result.reason),
            reason_text=result.reason_text,
            uniqueid=result.uniqueid,
            channel=result.channel,
        )


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


def sse(data: object, event: str | None = None) -> str:
    """One server-sent event. ``json.dumps`` never emits a newline, so one data line suffices."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


# -- the application ---------------------------------------------------------------------


def ami(request: Request) -> Client:
    """Dependency: the process-wide client the lifespan stored on the app."""
    client: Client = request.app.state.ami
    return client


AMI = Annotated[Client, Depends(ami)]


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


def create_app(
    client_factory: ClientFactory = client_from_env, *, keepalive: float = SSE_KEEPALIVE
) -> FastAPI:
    """The service. ``client_factory`` builds its client (tests point it at a FakeAsterisk)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = client_factory()
        # Fail start-up if Asterisk is unreachable or refuses the login: a
        # supervisor (systemd, Kubernetes) restarts the process and says why.
        # Once connected, the client reconnects by itself after a loss.
        await client.connect()
        app.state.ami = client
        app.state.event_streams = 0
        try:
            yield
        finally:
            # Logs off, fails pending actions, ends every events() subscription
            # (so open SSE streams finish) and stops the client's tasks.
            await client.close()

    app = FastAPI(title="ami_async FastAPI example", lifespan=lifespan)

    # AMI errors -> HTTP statuses, for every endpoint.
    async def on_action_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ActionError)
        return _error(502, exc.message or str(exc))  # Asterisk refused: its own words

    async def on_timeout(request: Request, exc: Exception) -> JSONResponse:
        return _error(504, str(exc))

    async def on_not_connected(request: Request, exc: Exception) -> JSONResponse:
        # Not connected right now (the client is reconnecting): try again shortly.
        # An Originate is never re-sent after a loss: it is not idempotent.
        return _error(503, str(exc), **{"Retry-After": "5"})

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        # A CR or LF in a value (a caller ID crafted to inject a second action)
        # is refused by the client before a byte is written.
        return _error(422, str(exc))

    app.add_exception_handler(ActionError, on_action_error)
    app.add_exception_handler(ActionTimeoutError, on_timeout)
    app.add_exception_handler(AMIConnectionError, on_not_connected)
    app.add_exception_handler(InvalidActionError, on_invalid)

    @app.post("/calls")
    async def place_call(call: CallRequest, client: AMI) -> CallResult:
        """Originate and wait for the outcome (at most the ring timeout plus a margin).

        If the HTTP client goes away meanwhile, the call goes on: only the wait
        is abandoned.
        """
        result = await client.originate(
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
        return CallResult.of(result)

    @app.get("/channels")
    async def channels(client: AMI) -> list[dict[str, str | list[str]]]:
        """One entry per live channel."""
        return [event_to_json(item) for item in await client.core_show_channels()]

    @app.get("/health")
    async def health(request: Request, client: AMI) -> JSONResponse:
        """200 while logged in to Asterisk, 503 while reconnecting (for load balancers)."""
        body = {
            "connected": client.connected,
            "ami_version": client.ami_version,
            "reconnects": client.reconnects,
            "event_streams": request.app.state.event_streams,
        }
        return JSONResponse(body, status_code=200 if client.connected else 503)

    @app.get("/events")
    async def events(
        request: Request,
        client: AMI,
        name: Annotated[list[str] | None, Query(description="event names or patterns")] = None,
    ) -> Response:
        """Server-sent events: one ``data:`` JSON object per AMI event.

        ``event: overflow`` says how many events a slow reader missed;
        the stream ends when the service shuts down.
        """
        names = name or []
        if not all(names):
            return _error(422, "an event name may not be empty")
        if client.closed:
            return _error(503, "the AMI client is closed")
        state = request.app.state

        async def stream() -> AsyncIterator[str]:
            # One subscription per request: every browser has its own bounded queue.
            # It is made inside the body, not in the endpoint, so that whatever ends
            # the request, this ``async with`` closes it (a body that never started
            # has none to leak).
            async with client.events(*names, maxsize=SSE_QUEUE_SIZE) as subscription:
                state.event_streams += 1
                try:
                    # ``retry:`` sets the browser's reconnect delay; this first
                    # chunk also tells the browser (and the tests) we are subscribed.
                    yield "retry: 3000\n: subscribed\n\n"
                    while True:
                        try:
                            event = await subscription.get(timeout=keepalive)
                        except TimeoutError:
                            # A comment line keeps proxies from closing an idle stream,
                            # and writing it is how a vanished browser gets noticed.
                            yield ": keepalive\n\n"
                            continue
                        except SubscriptionOverflowError as exc:
                            yield sse({"dropped": exc.dropped}, event="overflow")
                            continue
                        except AMIError:
                            return  # the client was closed (shutdown) or gave up
                        yield sse(event_to_json(event))
                finally:
                    state.event_streams -= 1

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            # no-cache: an event stream is never cached; X-Accel-Buffering: nginx
            # would otherwise buffer the stream and deliver events in bursts.
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


#: For ``uvicorn examples.fastapi_app:app``; nothing connects until the lifespan starts.
app = create_app()
