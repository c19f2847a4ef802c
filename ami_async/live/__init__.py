"""The live model: channels, bridges, calls, queues, conferences and parked calls kept current.

```python
async with ami_async.Live(ami) as live:
    for call in live.calls.values(): ...
    async for change in live.changes():
        if isinstance(change, ami_async.live.CallEnded):
            print(change.record.disposition, change.record.billsec)
```

Built on the client's public API only (`on`, `collect`, connection hooks); see
`docs/live.md` for the model, how calls are grouped, the changes and the limits.
"""

from __future__ import annotations

from ._calls import Call, CallRecord, CallTimeoutError
from ._changes import (
    BridgeAdded,
    BridgeRemoved,
    BridgeUpdated,
    CallAnswered,
    CallEnded,
    CallParked,
    CallStarted,
    CallTransferred,
    CallUnparked,
    Change,
    ChannelAdded,
    ChannelRemoved,
    ChannelUpdated,
    ConferenceJoined,
    ConferenceLeft,
    QueueCallerJoined,
    QueueCallerLeft,
    QueueMemberAdded,
    QueueMemberRemoved,
    QueueMemberUpdated,
    Synced,
    Unsynced,
)
from ._live import Live, SnapshotOverflowError
from ._objects import (
    Bridge,
    CallerID,
    Channel,
    Conference,
    ConferenceParticipant,
    Disposition,
    ParkedCall,
    Queue,
    QueueCaller,
    QueueMember,
    Transfer,
)
from ._stream import ChangeStream

__all__ = [
    "Bridge",
    "BridgeAdded",
    "BridgeRemoved",
    "BridgeUpdated",
    "Call",
    "CallAnswered",
    "CallEnded",
    "CallParked",
    "CallRecord",
    "CallStarted",
    "CallTimeoutError",
    "CallTransferred",
    "CallUnparked",
    "CallerID",
    "Change",
    "ChangeStream",
    "Channel",
    "ChannelAdded",
    "ChannelRemoved",
    "ChannelUpdated",
    "Conference",
    "ConferenceJoined",
    "ConferenceLeft",
    "ConferenceParticipant",
    "Disposition",
    "Live",
    "ParkedCall",
    "Queue",
    "QueueCaller",
    "QueueCallerJoined",
    "QueueCallerLeft",
    "QueueMember",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberUpdated",
    "SnapshotOverflowError",
    "Synced",
    "Transfer",
    "Unsynced",
]
