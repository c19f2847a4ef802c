"""FakeAsterisk: an in-process asyncio AMI server for tests (this project's and yours).

It speaks the wire protocol the way Asterisk 22 does (texts copied from the
recordings in ``shared/fixtures/asterisk-22``): the one-line banner, plain and
MD5 login, ``Permission denied`` before login, Ping, Events, Command (modern
``Output:`` lines or the Asterisk 13 ``Response: Follows`` frame), UserEvent,
AstDB and variables. Behind it runs a simulated PBX (`SimPBX`, on by
default): Originate creates Local channels that run a small dialplan (the
recordings' ``[test]`` context: 100 answers and waits 2 s, 450 dials 100, 600
sends a UserEvent, 400/410 queue, 999 does not exist) and sends the events a
real Asterisk 22 sends; Hangup, Redirect, Status, CoreShowChannels,
Getvar/Setvar, QueueStatus/QueueSummary and ``core show channels`` see those
channels::

    async with FakeAsterisk(time_scale=0.05) as fake:   # Wait(1) lasts 50 ms
        fake.pbx.add_extension("test", "123", "Answer")
        fake.pbx.add_extension("test", "123", "Wait", "1")
        reader, writer = await asyncio.open_connection(fake.host, fake.port)
        ...
        await fake.emit("Hangup", {"Privilege": "call,all", "Channel": "PJSIP/100-00000001"})
        action = await fake.wait_for_action("Originate")
        await fake.pbx.wait_idle()                        # every call has ended

Any action can be overridden with `FakeAsterisk.on_action` (a handler)
or `FakeAsterisk.script` (fixed answers), and `FakeAsterisk.replay`
serves later connections from a recorded ``.ami`` transcript instead. Fault
injection: `FakeAsterisk.drop`, `FakeAsterisk.stall` / `FakeAsterisk.resume`,
`FakeAsterisk.send_raw`, and `FakeAsterisk.restart` (Asterisk restarting under
its clients, as `core restart now` does).

``FakeAsterisk(pbx=False)`` is the bare test double: no channels, so lists are
empty, actions on a channel answer ``No such channel``, and Originate answers
at once with an ``OriginateResponse`` only.
"""

from ._agi_sim import AGIRun, SimAGI
from ._faultproxy import FaultProxy
from ._pbx import SimPBX
from ._pbx_model import (
    Dialplan,
    OriginateRequest,
    OriginateResult,
    SimChannel,
    SimQueue,
    SimQueueMember,
)
from ._server import FakeAsterisk
from ._session import ActionHandler, FakeSession
from ._users import FakeUser
from ._wire import MessageLike, Reply, make_response, with_action_id

__all__ = [
    "AGIRun",
    "ActionHandler",
    "Dialplan",
    "FakeAsterisk",
    "FakeSession",
    "FakeUser",
    "FaultProxy",
    "MessageLike",
    "OriginateRequest",
    "OriginateResult",
    "Reply",
    "SimAGI",
    "SimChannel",
    "SimPBX",
    "SimQueue",
    "SimQueueMember",
    "make_response",
    "with_action_id",
]
