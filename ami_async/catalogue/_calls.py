"""`ActionCaller`: what every generated `Actions` coroutine calls.

It refuses an action the connected server's version does not document
(`InvalidActionError`, before anything is sent), leaves out the headers given
as ``None``, and sends the action, collecting the list actions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._options import seconds
from ..dispatch import EventList
from ..errors import ActionTimeoutError, InvalidActionError
from ..message import Response
from ..protocol import HeaderValue
from ._naming import PATTERNED
from ._validate import check_action, lacking

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["ActionCaller"]


class ActionCaller:
    """The client an `Actions` object sends through (``client.actions``)."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<Actions of {self._client!r}>"

    async def _headers(
        self, name: str, timeout: float | None, headers: Mapping[str, HeaderValue | None]
    ) -> tuple[dict[str, HeaderValue], float]:
        """The headers to send and what is left of the action's timeout;
        `InvalidActionError` if the server's version lacks ``name``.

        The server's version is asked first (once per connection, within the
        action's ``timeout``: the action then has what is left of it).
        """
        from ._facts import action, server_version  # the data is loaded on first use

        client = self._client
        budget = client.action_timeout if timeout is None else seconds("timeout", timeout)
        if client.connected:  # else the action itself says it is not connected
            loop = asyncio.get_running_loop()
            start = loop.time()
            await client.fetch_asterisk_version(timeout=budget)
            left = budget - (loop.time() - start)
            if left <= 0:
                raise ActionTimeoutError(
                    f"{name}: no answer within {budget} s (asking the server's version took it)",
                    name,
                )
            budget = left
        version = server_version(client.asterisk_version, client.ami_version)
        if version is not None:
            info = action(name, version)
            if info is not None and not info.available:
                raise InvalidActionError(lacking(client, info))
        fields: dict[str, HeaderValue] = {}
        for key, value in headers.items():
            if value is None:
                continue
            if isinstance(value, (Mapping, list, tuple)) and PATTERNED.search(key):
                _expand(name, key, value, headers, fields)
            else:
                fields[key] = value
        # As for send_action: a required header left out (None, or required only in the
        # server's version) is a WARNING once per name, or with strict=True refused.
        check_action(client, name, fields)
        return fields, budget

    async def _call(
        self, name: str, timeout: float | None, headers: Mapping[str, HeaderValue | None]
    ) -> Response:
        fields, budget = await self._headers(name, timeout, headers)
        return await self._client._send(name, fields, timeout=budget)

    async def _collect(
        self, name: str, timeout: float | None, headers: Mapping[str, HeaderValue | None]
    ) -> EventList:
        from ._facts import action

        fields, budget = await self._headers(name, timeout, headers)
        info = action(name)
        complete = info.complete_event if info is not None else None
        return await self._client._collect(name, fields, timeout=budget, complete_event=complete)


def _expand(
    name: str,
    pattern: str,
    value: HeaderValue,
    given: Mapping[str, HeaderValue | None],
    fields: dict[str, HeaderValue],
) -> None:
    """The headers of a family the documentation writes as one pattern (``HeaderN``,
    ``Action-000000``, ``UnitAmount(0)``): a mapping gives them by name, a list numbers
    them from 0 (``Action-000000``, ``Action-000001``, ...)."""
    pairs: list[tuple[str, HeaderValue]]
    if isinstance(value, Mapping):
        pairs = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)) and pattern.endswith("-000000"):
        pairs = [(f"{pattern[:-6]}{index:06d}", item) for index, item in enumerate(value)]
    elif isinstance(value, (list, tuple)) and pattern.endswith("(0)"):
        pairs = [(f"{pattern[:-3]}({index})", item) for index, item in enumerate(value)]
    else:  # HeaderN with a list: repeated, as any header
        fields[pattern] = value
        return
    taken = {key.lower() for key, item in given.items() if item is not None and key != pattern}
    taken |= {key.lower() for key in fields}
    for key, item in pairs:
        if key.lower() in taken:
            raise InvalidActionError(f"{name}: header {key!r} given twice")
        taken.add(key.lower())
        fields[key] = item
