"""AGI: drive a call step by step, over the AMI link (AsyncAGI) or a FastAGI server.

```python
async with ami_async.agi.AsyncAGI(ami) as sessions:      # AGI(agi:async)
    async for agi in sessions:
        asyncio.create_task(ivr(agi))

server = await ami_async.agi.serve(ivr, "127.0.0.1", 4573)   # AGI(agi://host:4573/ivr)
async with server:
    await server.serve_forever()
```

Both give the handler the same `AGISession`; see the AGI guide (docs/agi.md).
"""

from __future__ import annotations

from ..errors import (
    AGIError,
    AGIHangupError,
    AGIInvalidCommandError,
    AGITimeoutError,
    AGIUsageError,
)
from ._async import AsyncAGI
from ._commands import AGIResult, quote, split_command
from ._fast import AGIHandler, AGIServer, serve
from ._session import AGISession

__all__ = [
    "AGIError",
    "AGIHandler",
    "AGIHangupError",
    "AGIInvalidCommandError",
    "AGIResult",
    "AGIServer",
    "AGISession",
    "AGITimeoutError",
    "AGIUsageError",
    "AsyncAGI",
    "quote",
    "serve",
    "split_command",
]
