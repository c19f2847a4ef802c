"""Defects found by the adversarial review of the client (fixer F1).

Bounds are hang checks ("within N seconds"), never benchmarks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _client import SECRET

from ami_async import Client
from ami_async._compat import timeout as _timeout
from ami_async.testing import FakeAsterisk, make_response


async def test_review1_cancelled_blocking_action_keeps_the_keepalive_waiting() -> None:
    """The caller gives up on a blocking action (a timeout around it), but Asterisk's
    session stays busy with it: the keepalive must still expect silence until the
    late answer (or the action's own deadline), not drop a healthy link."""

    async def busy(session: Any, frame: Any) -> Any:
        await asyncio.sleep(2.0)  # the session is busy: the Ping queues behind it
        return make_response(frame, "Success", Output="done")

    lost: list[BaseException | None] = []
    async with FakeAsterisk() as pbx:
        pbx.on_action("Command", busy)
        client = Client(
            pbx.host,
            pbx.port,
            username="admin",
            secret=SECRET,
            ping_interval=0.1,
            ping_timeout=0.3,
            on_disconnect=lambda c, exc: lost.append(exc),
        )
        async with client as ami:
            task = asyncio.ensure_future(
                ami.send_action("Command", Command="core reload", timeout=10)
            )
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            async with _timeout(10):
                response = await ami.send_action("Getvar", Variable="X", timeout=8)
            assert response.success
            assert lost == [] and ami.reconnects == 0
            # The late answer came and removed the action from the table.
            async with _timeout(5):
                while ami._dispatcher.pending or ami._watch.blocking:
                    await asyncio.sleep(0.05)
