"""AsyncAGI: AGI over the AMI link (the dialplan runs ``AGI(agi:async)``).

Facts from ``async_agi_full`` and ``async_agi_hangup`` (Asterisk 13 and 22):
``AsyncAGIStart`` carries the URL-encoded environment in ``Env``; an ``AGI``
action (``Channel``, ``Command``, ``CommandID``) is answered ``Added AGI
command to queue`` at once, and its answer comes later as ``AsyncAGIExec``
with the URL-encoded ``Result`` and our ``CommandId``; ``ASYNCAGI BREAK``
ends the AGI and the dialplan goes on; ``AsyncAGIEnd`` ends it in every case.
On a hangup the running command is answered ``-1``, a queued one is dropped
without an event, and an ``AGI`` action afterwards gets ``Response: Error``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import (
    ActionError,
    ActionTimeoutError,
    AGIError,
    AGIHangupError,
    AMIConnectionError,
    AMIError,
    ProtocolError,
)
from ..message import Event
from ._commands import Answer, answer_from_text, parse_env, url_decode
from ._session import DEFAULT_COMMAND_TIMEOUT, AGISession

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["AsyncAGI"]

logger = logging.getLogger("ami_async.agi")

AGIHandler = Callable[[AGISession], Awaitable[object]]


class _AsyncLink:
    """One channel's AsyncAGI: commands as ``AGI`` actions, answers from ``AsyncAGIExec``."""

    def __init__(self, owner: AsyncAGI, channel: str) -> None:
        self.owner = owner
        self.channel = channel
        self.session: AGISession | None = None
        self.waiting: dict[str, asyncio.Future[Answer]] = {}
        self.error: AGIError | None = None
        self.finished = False

    async def send(self, line: str) -> asyncio.Future[Answer]:
        if self.error is not None:
            raise self.error
        command_id = self.owner._next_id()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.waiting[command_id] = future
        try:
            await self.owner.client.send_action(
                "AGI",
                Channel=self.channel,
                Command=line,
                CommandID=command_id,
                timeout=self.owner.action_timeout,
            )
        except ActionError as exc:
            self.waiting.pop(command_id, None)
            if "does not exist" not in exc.message:
                raise AGIError(f"{line}: {exc.message}", command=line) from exc
            gone = AGIHangupError(f"{line}: {exc.message}", command=line)
            gone.__cause__ = exc
            self.owner._forget(self)
            self.end(gone)  # the channel is gone (its AsyncAGIEnd was missed): no BREAK
            raise gone from exc
        except ActionTimeoutError as exc:
            self.waiting.pop(command_id, None)
            raise AGIError(f"{line}: the AGI action was not answered", command=line) from exc
        except AMIError as exc:
            self.waiting.pop(command_id, None)
            raise AGIHangupError(f"{line}: the AMI link is gone: {exc}", command=line) from exc
        except BaseException:
            self.waiting.pop(command_id, None)
            raise
        return future

    def answered(self, event: Event) -> None:
        future = self.waiting.pop(event.get("CommandId", ""), None)
        if future is None or future.done():
            return  # a late answer of a command given up, or someone else's
        text = url_decode(event.get("Result", "")).rstrip("\n")
        try:
            future.set_result(answer_from_text(text))
        except ProtocolError as exc:
            future.set_exception(AGIError(f"AsyncAGIExec: {exc}", answer=text))

    def end(self, error: AGIError) -> None:
        if self.error is None:
            self.error = error
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(type(error)(str(error)))
        self.waiting.clear()
        if self.session is not None:
            self.session._end(error)

    async def finish(self) -> None:
        """``ASYNCAGI BREAK`` unless the AGI already ended: the dialplan goes on."""
        if self.finished:
            return
        self.finished = True
        if self.error is None:
            await self.owner._break(self.channel)
        self.owner._forget(self)


class AsyncAGI:
    """One `AGISession` per ``AsyncAGIStart`` on ``client``, as an async iterator.

    Use ``async with AsyncAGI(ami) as sessions: async for agi in sessions: ...``
    (close each session, e.g. ``async with agi:``, to send ``ASYNCAGI BREAK``),
    or give ``handler``: each session then runs ``handler(agi)`` in a task and
    is closed when it returns or raises. A lost AMI link ends every open
    session with `AGIHangupError` at once; after the reconnect their channels
    get ``ASYNCAGI BREAK`` so that their calls go on in the dialplan.
    """

    def __init__(
        self,
        client: Client,
        handler: AGIHandler | None = None,
        *,
        maxsize: int = 100,
        command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT,
        action_timeout: float = 10.0,
    ) -> None:
        self.client = client
        self.handler = handler
        self.maxsize = maxsize
        self.command_timeout = command_timeout
        self.action_timeout = action_timeout
        self._links: dict[str, _AsyncLink] = {}
        self._incoming: asyncio.Queue[AGISession | None] = asyncio.Queue()
        self._router: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._orphans: set[str] = set()
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)
        self._started = False
        self._closed = False

    def _next_id(self) -> str:
        return f"agi-{self._prefix}-{next(self._ids)}"

    @property
    def sessions(self) -> list[AGISession]:
        """The open sessions."""
        return [link.session for link in self._links.values() if link.session is not None]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe and start routing (``async with`` and iteration call it)."""
        if self._started:
            return
        self._started = True
        subscription = self.client.events(
            "AsyncAGIStart", "AsyncAGIExec", "AsyncAGIEnd", maxsize=100_000
        )
        self._router = asyncio.ensure_future(self._route(subscription))
        self.client.add_disconnect_hook(self._on_disconnect)
        self.client.add_connect_hook(self._on_connect)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop taking sessions; handlers get ``timeout`` s, then open sessions get
        ``ASYNCAGI BREAK`` (their calls go on in the dialplan), all at once and within
        the action timeout; the hooks on the client are removed."""
        if self._closed:
            return
        self._closed = True
        self._incoming.put_nowait(None)
        try:
            if self._tasks:
                _, late = await asyncio.wait(set(self._tasks), timeout=timeout)
                for task in late:
                    task.cancel()
                if late:  # each closes its session (one BREAK) on the way out
                    await asyncio.wait(late, timeout=self.action_timeout)
            closing = [
                asyncio.ensure_future(link.session.close())
                for link in list(self._links.values())
                if link.session is not None
            ]
            if closing:
                _, stuck = await asyncio.wait(closing, timeout=self.action_timeout)
                for task in stuck:
                    task.cancel()
        finally:
            if self._router is not None:
                self._router.cancel()
                await asyncio.wait((self._router,))
            self.client.remove_disconnect_hook(self._on_disconnect)
            self.client.remove_connect_hook(self._on_connect)
            self._incoming.put_nowait(None)  # iteration ends even if start() never ran

    async def __aenter__(self) -> AsyncAGI:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncAGI:
        self.start()
        return self

    async def __anext__(self) -> AGISession:
        self.start()
        session = await self._incoming.get()
        if session is None:
            self._incoming.put_nowait(None)  # every other reader ends too
            raise StopAsyncIteration
        return session

    # -- events ------------------------------------------------------------------------------

    async def _route(self, subscription: Any) -> None:
        error: AGIError = AGIHangupError("the AMI client is closed")
        try:
            async for event in subscription:
                self._on_event(event)
        except AMIError as exc:
            error = AGIHangupError(f"AsyncAGI stopped: {exc}")
        finally:
            subscription.close()
            self._end_all(error)
            self._incoming.put_nowait(None)

    def _on_event(self, event: Event) -> None:
        name = event.name.lower()
        key = event.get("Uniqueid") or event.get("Channel", "")
        if name == "asyncagistart":
            self._started_session(key, event)
        elif name == "asyncagiexec":
            link = self._links.get(key)
            if link is not None:
                link.answered(event)
        elif name == "asyncagiend":
            link = self._links.pop(key, None)
            if link is not None:
                link.end(AGIHangupError(f"AsyncAGIEnd: {link.channel} left the AGI"))

    def _started_session(self, key: str, event: Event) -> None:
        env = parse_env(url_decode(event.get("Env", "")))
        channel = event.get("Channel") or env.get("agi_channel", "")
        env.setdefault("agi_channel", channel)
        link = _AsyncLink(self, channel)
        session = AGISession(env, link, transport="async", command_timeout=self.command_timeout)
        link.session = session
        if self._closed or (self.handler is None and self._incoming.qsize() >= self.maxsize):
            logger.warning("AsyncAGI: no room for %s, ASYNCAGI BREAK", channel)
            link.finished = True
            self._spawn(self._break(channel))
            return
        old = self._links.pop(key, None)
        if old is not None:
            old.end(AGIHangupError(f"{old.channel}: a new AGI started on the channel"))
        self._links[key] = link
        if self.handler is not None:
            self._spawn(self._run(self.handler, session))
        else:
            self._incoming.put_nowait(session)

    async def _run(self, handler: AGIHandler, session: AGISession) -> None:
        try:
            await handler(session)
        except AGIHangupError as exc:
            logger.info("AGI handler for %s ended by a hangup: %s", session.channel, exc)
        except Exception:
            logger.exception("AGI handler for %s failed", session.channel)
        finally:
            await session.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _forget(self, link: _AsyncLink) -> None:
        for key, known in list(self._links.items()):
            if known is link:
                del self._links[key]

    async def _break(self, channel: str) -> None:
        """``ASYNCAGI BREAK`` (not waiting for its AsyncAGIExec; errors only logged)."""
        try:
            await self.client.send_action(
                "AGI",
                Channel=channel,
                Command="ASYNCAGI BREAK",
                CommandID=self._next_id(),
                timeout=self.action_timeout,
            )
        except AMIConnectionError:
            self._orphans.add(channel)  # sent again after the reconnect
        except AMIError as exc:
            logger.debug("ASYNCAGI BREAK on %s: %s", channel, exc)

    def _end_all(self, error: AGIError) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            link.end(type(error)(str(error)))

    def _on_disconnect(self, client: Client, cause: BaseException | None) -> None:
        if self._closed or not self._links:
            return
        self._orphans.update(link.channel for link in self._links.values())
        self._end_all(AGIHangupError(f"the AMI link was lost: {cause}"))

    def _on_connect(self, client: Client) -> None:
        if self._closed and not self._orphans:
            return
        orphans, self._orphans = self._orphans, set()
        for channel in orphans:
            self._spawn(self._break(channel))
