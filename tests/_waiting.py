"""Waiting in tests for a condition that other tasks make true, always within a bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(
    condition: Callable[[], bool], what: str, *, timeout: float = 5.0, interval: float = 0.005
) -> None:
    """Return once ``condition()`` holds; fail the test naming ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(interval)
