"""Version shims, and a timeout that never takes a caller's cancel for its own.

``asyncio.timeout`` is 3.11+; older Pythons use ``async-timeout``, which cannot
tell its own cancel from a caller's landing in the same loop iteration (the
caller's is then lost as a timeout). Paths that must honour cancellation on
every version use `run_within`, or a timer that settles a future of their own.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    from asyncio import timeout as timeout
else:  # pragma: no cover - exercised on Python 3.10 only
    from async_timeout import timeout as timeout

__all__ = ["run_within", "timeout"]

T = TypeVar("T")


async def run_within(seconds: float, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a task of its own; `asyncio.TimeoutError` if it takes over ``seconds``.

    The timeout cancels only that task, so a `CancelledError` reaching the
    caller is always the caller's own (even when it lands together with the
    timeout); the task is then cancelled and awaited before it propagates.
    """
    child = asyncio.ensure_future(coro)
    try:
        done, _ = await asyncio.wait((child,), timeout=seconds)
    except BaseException:
        child.cancel()
        await asyncio.wait((child,))  # its cleanup runs before the cancel propagates
        if not child.cancelled():
            child.exception()  # retrieved: the caller's cancel wins
        raise
    if not done:
        child.cancel()
        await asyncio.wait((child,))
        if child.cancelled():
            raise asyncio.TimeoutError
    return child.result()
