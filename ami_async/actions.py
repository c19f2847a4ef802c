"""Awaitable helpers for the common AMI actions, mixed into `ami_async.Client`.

Seconds everywhere; milliseconds only on the wire. Each helper takes
``timeout=`` (default: the client's ``action_timeout``). A ``Response: Error``
raises `ami_async.errors.ActionError` with the server's message.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ActionError, ProtocolError
from .message import Event, Response

if TYPE_CHECKING:
    from .dispatch import EventList
    from .protocol import HeaderScalar, HeaderValue

__all__ = ["ActionsMixin", "OriginateReason", "OriginateResult"]

#: Seconds added to an Originate's ring timeout while waiting for its OriginateResponse.
ORIGINATE_MARGIN = 10.0


class OriginateReason(enum.IntEnum):
    """The ``Reason:`` of an ``OriginateResponse`` (Asterisk's control frame codes)."""

    FAILED = 0  #: no such extension/number, or the channel could not be created
    HANGUP = 1  #: the far end hung up before answering
    RING = 2  #: local ring
    NO_ANSWER = 3  #: rang, but nobody answered before the timeout
    ANSWERED = 4  #: answered
    BUSY = 5  #: busy
    CONGESTION = 8  #: congestion (circuits busy)

    @property
    def text(self) -> str:
        return _REASON_TEXT[self]


_REASON_TEXT = {
    OriginateReason.FAILED: "failed (no such extension, or the channel could not be created)",
    OriginateReason.HANGUP: "hung up before answer",
    OriginateReason.RING: "ringing",
    OriginateReason.NO_ANSWER: "no answer",
    OriginateReason.ANSWERED: "answered",
    OriginateReason.BUSY: "busy",
    OriginateReason.CONGESTION: "congestion",
}


def _reason(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    code = int(value)
    try:
        return OriginateReason(code)
    except ValueError:
        return code


@dataclass(frozen=True)
class OriginateResult:
    """What an ``Originate`` came to.

    ``success`` is false for a call that failed (no answer, busy, no such
    extension); the server refusing the action raises instead. With
    ``wait=False`` only ``response`` is known (the call was queued):
    ``success`` is then true and ``reason``/``event`` are ``None``.
    """

    success: bool
    reason: int | None
    reason_text: str
    uniqueid: str | None
    channel: str | None
    event: Event | None
    response: Response

    @classmethod
    def from_messages(cls, response: Response, event: Event | None) -> OriginateResult:
        source: Response | Event = event if event is not None else response
        reason = _reason(source.get("Reason"))
        if isinstance(reason, OriginateReason):
            text = reason.text
        elif reason is None:
            text = "queued" if event is None and response.success else ""
        else:
            text = f"reason {reason}"
        uniqueid = source.get("Uniqueid")
        if uniqueid in ("<null>", "<unknown>", ""):
            uniqueid = None
        outcome = source.get("Response", "")
        return cls(
            success=outcome.lower() == "success",
            reason=reason,
            reason_text=text,
            uniqueid=uniqueid,
            channel=source.get("Channel"),
            event=event,
            response=response,
        )


class ActionsMixin:
    """The helpers; `ami_async.Client` supplies the primitives."""

    __slots__ = ()

    if TYPE_CHECKING:

        async def _send(
            self,
            name: str,
            headers: Mapping[str, HeaderValue],
            *,
            timeout: float | None,
            check: bool = True,
        ) -> Response: ...

        async def _send_and_wait(
            self,
            name: str,
            follow: str,
            headers: Mapping[str, HeaderValue],
            *,
            timeout: float | None,
            check: bool = True,
        ) -> tuple[Response, Event | None]: ...

        async def _collect(
            self,
            name: str,
            headers: Mapping[str, HeaderValue],
            *,
            timeout: float | None,
            complete_event: str | None = None,
        ) -> EventList: ...

        async def close(self, *, logoff: bool = True) -> None: ...

        _event_mask: str

    async def ping(self, *, timeout: float | None = None) -> Response:
        """``Ping``: a round trip to the server."""
        return await self._send("Ping", {}, timeout=timeout)

    async def command(self, command: str, *, timeout: float | None = None) -> str:
        """Run a CLI command and return its output text, whatever the server's format.

        Asterisk 14+ sends ``Output:`` lines (joined with ``\\n``); Asterisk 13
        and older a raw ``Response: Follows`` body up to ``--END COMMAND--`` (its
        final newline removed), so both give the same text. A ``Response:
        Follows`` with ``Output:`` lines and no ``--END COMMAND--`` (some proxies
        and mock servers) is read like 14+: the lines without their ``Output: ``
        prefix. A failing command raises `ActionError` on 14+ (its message is
        the CLI's complaint); Asterisk 13 reports it as text instead.
        """
        response = await self._send("Command", {"Command": command}, timeout=timeout)
        return command_output(response)

    async def logoff(self, *, timeout: float | None = None) -> Response:
        """``Logoff``: expect ``Response: Goodbye``, then close the client (no reconnect)."""
        try:
            response = await self._send("Logoff", {}, timeout=timeout, check=False)
        finally:
            await self.close(logoff=False)
        return response

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | str | None = None,
        application: str | None = None,
        data: str | None = None,
        variables: Mapping[str, HeaderScalar] | None = None,
        caller_id: str | None = None,
        account: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        timeout: float = 30.0,
        wait: bool = True,
        action_timeout: float | None = None,
        **headers: HeaderValue,
    ) -> OriginateResult:
        """Place a call with an async ``Originate`` and (by default) wait for its outcome.

        Give either ``application`` (+ ``data``) or ``context``/``exten``/``priority``.
        ``timeout`` is the ring timeout in seconds; the wait for the
        ``OriginateResponse`` lasts ``timeout`` plus a margin unless
        ``action_timeout`` says otherwise. ``wait=False`` returns as soon as the
        server has queued the call. Extra ``headers`` (``Codecs``,
        ``EarlyMedia``...) are sent as given.
        """
        if any(key.lower() == "async" for key in headers):
            raise ValueError(
                "originate() always sends Async: true (wait=False returns once queued); "
                "use send_action('Originate', ...) for a synchronous Originate"
            )
        if application is None and exten is None:
            raise ValueError("originate needs application= or exten= (with context=)")
        if application is not None and exten is not None:
            raise ValueError("originate takes application= or exten=, not both")
        fields: dict[str, HeaderValue] = {"Channel": channel}
        optional: dict[str, HeaderValue | None] = {
            "Context": context,
            "Exten": exten,
            "Priority": priority if priority is not None else (1 if exten is not None else None),
            "Application": application,
            "Data": data,
            "CallerID": caller_id,
            "Account": account,
            "ChannelId": channel_id,
            "OtherChannelId": other_channel_id,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        fields["Timeout"] = int(timeout * 1000)
        if variables:
            fields["Variable"] = {k: escape_variable(v) for k, v in variables.items()}
        fields.update(headers)
        fields["Async"] = True
        if wait and not _receives_call_events(self._event_mask):
            # OriginateResponse is a 'call' class event: with that class off it
            # never arrives, and waiting would only end in a timeout.
            raise ValueError(
                f"originate(wait=True) needs the 'call' event class, but the event mask "
                f"is {self._event_mask!r}: connect with events=True (or a mask with "
                "'call'), or pass wait=False"
            )
        if not wait:
            response = await self._send("Originate", fields, timeout=action_timeout)
            return OriginateResult.from_messages(response, None)
        response, event = await self._send_and_wait(
            "Originate",
            "OriginateResponse",
            fields,
            timeout=action_timeout or timeout + ORIGINATE_MARGIN,
        )
        return OriginateResult.from_messages(response, event)

    async def hangup(
        self, channel: str, cause: int | None = None, *, timeout: float | None = None
    ) -> Response:
        """``Hangup`` a channel (``cause``: a Q.850 cause code)."""
        fields: dict[str, HeaderValue] = {"Channel": channel}
        if cause is not None:
            fields["Cause"] = cause
        return await self._send("Hangup", fields, timeout=timeout)

    async def redirect(
        self,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        *,
        extra_channel: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """``Redirect`` (transfer) a channel, and optionally ``extra_channel``, to the dialplan."""
        fields: dict[str, HeaderValue] = {
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": priority,
        }
        if extra_channel is not None:
            fields.update(
                ExtraChannel=extra_channel,
                ExtraContext=context,
                ExtraExten=exten,
                ExtraPriority=priority,
            )
        return await self._send("Redirect", fields, timeout=timeout)

    async def getvar(
        self, variable: str, channel: str | None = None, *, timeout: float | None = None
    ) -> str:
        """``Getvar``: a global (or ``channel``'s) variable or function; ``""`` when unset."""
        fields: dict[str, HeaderValue] = {"Variable": variable}
        if channel is not None:
            fields["Channel"] = channel
        response = await self._send("Getvar", fields, timeout=timeout)
        return response.get("Value", "")

    async def setvar(
        self,
        variable: str,
        value: HeaderScalar,
        channel: str | None = None,
        *,
        timeout: float | None = None,
    ) -> Response:
        """``Setvar``: set a global (or ``channel``'s) variable."""
        fields: dict[str, HeaderValue] = {"Variable": variable, "Value": value}
        if channel is not None:
            fields["Channel"] = channel
        return await self._send("Setvar", fields, timeout=timeout)

    async def status(
        self,
        channel: str | None = None,
        *,
        variables: list[str] | None = None,
        timeout: float | None = None,
    ) -> list[Event]:
        """``Status``: one ``Status`` event per channel (``variables`` read as well)."""
        fields: dict[str, HeaderValue] = {}
        if channel is not None:
            fields["Channel"] = channel
        if variables:
            fields["Variables"] = ",".join(variables)
        return (await self._collect("Status", fields, timeout=timeout)).items

    async def core_show_channels(self, *, timeout: float | None = None) -> list[Event]:
        """``CoreShowChannels``: one ``CoreShowChannel`` event per live channel."""
        return (await self._collect("CoreShowChannels", {}, timeout=timeout)).items

    async def queue_status(
        self,
        queue: str | None = None,
        member: str | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Event]:
        """``QueueStatus``: ``QueueParams``, ``QueueMember`` and ``QueueEntry`` events."""
        fields: dict[str, HeaderValue] = {}
        if queue is not None:
            fields["Queue"] = queue
        if member is not None:
            fields["Member"] = member
        return (await self._collect("QueueStatus", fields, timeout=timeout)).items

    async def queue_summary(
        self, queue: str | None = None, *, timeout: float | None = None
    ) -> list[Event]:
        """``QueueSummary``: one ``QueueSummary`` event per queue."""
        fields: dict[str, HeaderValue] = {}
        if queue is not None:
            fields["Queue"] = queue
        return (await self._collect("QueueSummary", fields, timeout=timeout)).items

    async def confbridge_list(
        self, conference: str, *, timeout: float | None = None
    ) -> list[Event]:
        """``ConfbridgeList``: the participants; an unknown conference raises ActionError."""
        return (
            await self._collect("ConfbridgeList", {"Conference": conference}, timeout=timeout)
        ).items

    async def confbridge_list_rooms(self, *, timeout: float | None = None) -> list[Event]:
        """``ConfbridgeListRooms``: one ``ConfbridgeListRooms`` event per conference.

        No conference at all is ``[]`` (Asterisk answers it with an error,
        ``No active conferences.``).
        """
        try:
            return (await self._collect("ConfbridgeListRooms", {}, timeout=timeout)).items
        except ActionError as exc:
            if exc.message.strip().lower().startswith("no active conferences"):
                return []
            raise

    async def db_get(self, family: str, key: str, *, timeout: float | None = None) -> str:
        """``DBGet``: the value; a missing key raises `ActionError`."""
        result = await self._collect("DBGet", {"Family": family, "Key": key}, timeout=timeout)
        for item in result.items:
            if "Val" in item:
                return item["Val"]
        value = result.response.get("Val")
        if value is not None:  # very old servers answer in the response itself
            return value
        raise ProtocolError(f"DBGet {family}/{key}: the answer carried no value")

    async def db_put(
        self, family: str, key: str, value: HeaderScalar, *, timeout: float | None = None
    ) -> Response:
        """``DBPut``: store ``value`` under ``family``/``key``."""
        return await self._send(
            "DBPut", {"Family": family, "Key": key, "Val": value}, timeout=timeout
        )

    async def db_del(self, family: str, key: str, *, timeout: float | None = None) -> Response:
        """``DBDel``: delete one key (Asterisk 14+ raises ActionError if it did not exist)."""
        return await self._send("DBDel", {"Family": family, "Key": key}, timeout=timeout)

    async def db_del_tree(
        self, family: str, key: str | None = None, *, timeout: float | None = None
    ) -> Response:
        """``DBDelTree``: delete a family (or the subtree under ``key``)."""
        fields: dict[str, HeaderValue] = {"Family": family}
        if key is not None:
            fields["Key"] = key
        return await self._send("DBDelTree", fields, timeout=timeout)

    async def user_event(
        self, name: str, *, timeout: float | None = None, **headers: HeaderValue
    ) -> Response:
        """``UserEvent``: broadcast an ``Event: UserEvent`` with ``UserEvent: name``."""
        return await self._send("UserEvent", {"UserEvent": name, **headers}, timeout=timeout)

    async def list_commands(self, *, timeout: float | None = None) -> dict[str, str]:
        """``ListCommands``: ``{action name: description}`` of what this user may run."""
        response = await self._send("ListCommands", {}, timeout=timeout)
        skip = {"response", "actionid", "message", "eventlist"}
        return {k: v for k, v in response.headers if k.lower() not in skip}

    async def core_settings(self, *, timeout: float | None = None) -> Response:
        """``CoreSettings``: versions and limits (``AMIversion``, ``AsteriskVersion``...)."""
        return await self._send("CoreSettings", {}, timeout=timeout)

    async def core_status(self, *, timeout: float | None = None) -> Response:
        """``CoreStatus``: start-up and reload times, current calls."""
        return await self._send("CoreStatus", {}, timeout=timeout)


def _receives_call_events(mask: str) -> bool:
    classes = {c.strip().lower() for c in mask.split(",")}
    return bool(classes & {"on", "all", "call", "yes", "true"})


def escape_variable(value: HeaderScalar) -> str:
    """Escape a channel variable's value for an Originate ``Variable:`` line.

    Asterisk splits each ``Variable:`` value at unescaped commas and strips
    quotes and backslashes (the dialplan's argument rules), so ``a,b`` would
    arrive as ``a``; a backslash before each of them keeps the value whole.
    """
    text = "true" if value is True else "false" if value is False else str(value)
    return text.replace("\\", "\\\\").replace(",", "\\,").replace('"', '\\"')


def command_output(response: Response) -> str:
    """The CLI text of a ``Command`` answer in either format."""
    body = response.body
    if body is not None:
        return body[:-1] if body.endswith("\n") else body
    return "\n".join(response.get_all("Output"))
