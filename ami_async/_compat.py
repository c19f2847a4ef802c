"""Version shims: ``asyncio.timeout`` is 3.11+; older Pythons use ``async-timeout``."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    from asyncio import timeout as timeout
else:  # pragma: no cover - exercised on Python 3.10 only
    from async_timeout import timeout as timeout

__all__ = ["timeout"]
