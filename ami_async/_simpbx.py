"""A simulated Asterisk 22 with Local channels: the channel model behind FakeAsterisk.

:class:`SimPBX` keeps channels, bridges, a small dialplan and queues, runs
dialplan applications on a simulated clock, and hands every AMI event it
produces to a sink, in the order and with the headers a real Asterisk 22
writes them (``shared/fixtures/asterisk-22``: ``originate_async``,
``dial_bridge``, ``queue``, ``userevent``, ``status``...). It does no I/O:
``ami_async.testing.FakeAsterisk`` answers the actions and writes the events.

Real Asterisk is multi-threaded, so events of different types (CEL, Cdr,
DeviceStateChange, QueueMemberStatus) and of different channels interleave
differently from one call to the next; the simulation picks one order, that
of ``originate_async.bin`` where it applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

__all__ = [
    "Application",
    "Dialplan",
    "EventSink",
    "OriginateRequest",
    "OriginateResult",
    "SimChannel",
    "SimPBX",
    "SimQueue",
    "SimQueueMember",
    "cause_text",
    "state_text",
]

logger = logging.getLogger("ami_async.testing")

Headers: TypeAlias = list[tuple[str, str]]
#: Where the simulation sends each event (``[("Event", "Newchannel"), ...]``), synchronously.
EventSink: TypeAlias = Callable[[Headers], None]
#: A dialplan application: ``await app(pbx, channel, data)``; a negative result hangs up.
Application: TypeAlias = Callable[["SimPBX", "SimChannel", str], Awaitable["int | None"]]

# Channel states (include/asterisk/channelstate.h) and their ast_state2str names.
DOWN: Final = 0
RING: Final = 4
RINGING: Final = 5
UP: Final = 6
_STATE_TEXT: Final = (
    "Down", "Rsrvd", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy",
    "Dialing Offhook", "Pre-ring",
)  # fmt: skip

# Q.850 causes as ast_cause2str names them (main/channel.c causes[]).
_CAUSES: Final[Mapping[int, str]] = {
    1: "Unallocated (unassigned) number",
    2: "No route to specified transmit network",
    3: "No route to destination",
    5: "Misdialed trunk prefix",
    6: "Channel unacceptable",
    7: "Call awarded and being delivered in an established channel",
    8: "Pre-empted",
    14: "Number ported elsewhere",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    20: "Subscriber absent",
    21: "Call Rejected",
    22: "Number changed",
    23: "Redirected to new destination",
    26: "Answered elsewhere",
    27: "Destination out of order",
    28: "Invalid number format",
    29: "Facility rejected",
    30: "Response to STATus ENQuiry",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    43: "Access information discarded",
    44: "Requested channel not available",
    50: "Facility not subscribed",
    52: "Outgoing call barred",
    54: "Incoming call barred",
    57: "Bearer capability not authorized",
    58: "Bearer capability not available",
    65: "Bearer capability not implemented",
    66: "Channel not implemented",
    69: "Facility not implemented",
    81: "Invalid call reference value",
    88: "Incompatible destination",
    95: "Invalid message unspecified",
    96: "Mandatory information element is missing",
    97: "Message type nonexist.",
    98: "Wrong message",
    99: "Info. element nonexist or not implemented",
    100: "Invalid information element contents",
    101: "Message not compatible with call state",
    102: "Recover on timer expiry",
    103: "Mandatory IE length error",
    111: "Protocol error, unspecified",
    127: "Interworking, unspecified",
}
NORMAL_CLEARING: Final = 16
_BUSY: Final = 17
_CONGESTION: Final = 34
_ANSWERED_ELSEWHERE: Final = 26

# Device states (include/asterisk/devicestate.h) as DeviceStateChange names them.
_NOT_INUSE: Final = 1
_INUSE: Final = 2
_INVALID: Final = 4
_RINGING_DEVICE: Final = 6
_DEVICE_TEXT: Final = (
    "UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING",
    "RINGINUSE", "ONHOLD",
)  # fmt: skip

# OriginateResponse Reason: the last control frame seen (AST_CONTROL_*), 4 = answered.
_REASON_FAILED: Final = 0
_REASON_HANGUP: Final = 1
_REASON_RINGING: Final = 3
_REASON_ANSWERED: Final = 4
_REASON_BUSY: Final = 5
_REASON_CONGESTION: Final = 8

# Dial() clears these on the caller before dialing (dial_bridge.bin), in this order.
_DIAL_VARIABLES: Final = (
    "DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
    "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME",
    "PROGRESSTIME_MS",
)  # fmt: skip
# Queue() clears these on the caller (queue.bin).
_QUEUE_VARIABLES: Final = (
    "ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT",
    "QUEUEWAIT_MS",
)  # fmt: skip
# Answer() on a channel that was not up pauses 20 ms before the next priority
# (the Newexten of priority 2 comes 0.020 s after Answer in every recording).
_ANSWER_DELAY: Final = 0.02
# How long Playback(file) lasts (hello-world took 1.44 s in playback_moh.ami).
_PLAYBACK_SECONDS: Final = 1.4
_QUEUE_RETRY_SECONDS: Final = 5.0

#: The ``[test]`` context of the lab the fixtures were recorded on (as far as the
#: recordings show it; 500 is Alice's device, paused in queue ``support``).
LAB_DIALPLAN: Final[Mapping[str, Mapping[str, Sequence[str]]]] = {
    "test": {
        "100": ("Answer()", "Wait(2)", "Hangup()"),
        "200": ("Answer()", "Playback(hello-world)", "Hangup()"),
        "400": ("Answer()", "Queue(support,,,,60)"),
        "410": ("Answer()", "Queue(sales,,,,30)"),
        "450": ("Dial(Local/100@test,20)",),
        "500": ("Answer()", "Wait(10)", "Hangup()"),
        "600": ("Answer()", "Set(FOO=bar)", "UserEvent(TestEvent,Foo: bar)", "Wait(1)", "Hangup()"),
        "700": ("Answer()", "Wait(30)"),
        "800": ("Answer()", "MusicOnHold(default,10)"),
    }
}

_STEP = re.compile(r"\s*([A-Za-z0-9_]+)\s*(?:\((.*)\))?\s*", re.DOTALL)
_LOCAL = re.compile(r"(?i)local/([^@/]+)(?:@([^/]+))?(/n)?")
_VARIABLE_REF = re.compile(r"\$\{([^{}]+)\}")


def state_text(state: int) -> str:
    """``ChannelStateDesc`` for a channel state number (``6`` -> ``"Up"``)."""
    return _STATE_TEXT[state] if 0 <= state < len(_STATE_TEXT) else "Unknown"


def cause_text(cause: int) -> str:
    """``Cause-txt`` for a hangup cause (``16`` -> ``"Normal Clearing"``)."""
    return _CAUSES.get(cause, "Unknown")


def _parse_step(step: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(step, tuple):
        return step[0], step[1]
    match = _STEP.fullmatch(step)
    if match is None:
        raise ValueError(f"not a dialplan step: {step!r} (write it as App(data))")
    return match.group(1), match.group(2) or ""


def _parse_caller_id(text: str) -> tuple[str, str]:
    """``(number, name)`` of ``"Name" <number>``, ``Name <number>`` or a bare number."""
    text = text.strip()
    match = re.fullmatch(r'"?([^"<]*?)"?\s*<([^>]*)>', text)
    if match:
        return match.group(2).strip(), match.group(1).strip()
    if re.fullmatch(r"[0-9*#+]+", text):
        return text, ""
    return "", text


def _split_args(data: str) -> list[str]:
    return [part.strip() for part in data.split(",")]


def _pattern_matches(pattern: str, exten: str) -> bool:
    """Asterisk extension patterns: ``_`` then X, Z, N, [..], ``.`` and ``!``."""
    if not pattern.startswith("_"):
        return pattern == exten
    regex = ""
    chars = iter(pattern[1:])
    for char in chars:
        upper = char.upper()
        if upper == "X":
            regex += "[0-9]"
        elif upper == "Z":
            regex += "[1-9]"
        elif upper == "N":
            regex += "[2-9]"
        elif char == ".":
            regex += ".+"
        elif char == "!":
            regex += ".*"
        elif char == "[":
            body = ""
            for inner in chars:
                if inner == "]":
                    break
                body += inner
            regex += f"[{re.escape(body).replace(chr(92) + '-', '-')}]"
        else:
            regex += re.escape(char)
    return re.fullmatch(regex, exten) is not None


# -- the dialplan -----------------------------------------------------------------------


class Dialplan:
    """Contexts of extensions of priorities, each an ``(application, data)`` pair."""

    def __init__(self) -> None:
        self.contexts: dict[str, dict[str, list[tuple[str, str]]]] = {}

    def add(self, context: str, exten: str, *steps: str | tuple[str, str]) -> None:
        """Append priorities to ``exten@context``: ``add("test", "123", "Answer()", "Wait(1)")``."""
        priorities = self.contexts.setdefault(context, {}).setdefault(exten, [])
        priorities.extend(_parse_step(step) for step in steps)

    def set(self, context: str, exten: str, *steps: str | tuple[str, str]) -> None:
        """Replace ``exten@context`` with ``steps`` (priorities 1, 2, ...)."""
        self.contexts.setdefault(context, {})[exten] = [_parse_step(step) for step in steps]

    def remove(self, context: str, exten: str | None = None) -> None:
        """Remove one extension, or the whole context when ``exten`` is None."""
        if exten is None:
            self.contexts.pop(context, None)
        else:
            self.contexts.get(context, {}).pop(exten, None)

    def _find(self, context: str, exten: str) -> list[tuple[str, str]] | None:
        extens = self.contexts.get(context)
        if not extens:
            return None
        if exten in extens:
            return extens[exten]
        for pattern, priorities in extens.items():
            if pattern.startswith("_") and _pattern_matches(pattern, exten):
                return priorities
        return None

    def lookup(self, context: str, exten: str, priority: int) -> tuple[str, str] | None:
        """The ``(application, data)`` at a priority, or None."""
        priorities = self._find(context, exten)
        if priorities is None or not 1 <= priority <= len(priorities):
            return None
        return priorities[priority - 1]

    def exists(self, context: str, exten: str, priority: int = 1) -> bool:
        return self.lookup(context, exten, priority) is not None


# -- queues -----------------------------------------------------------------------------


@dataclass(eq=False)
class SimQueueMember:
    """A static queue member: a Local device such as ``Local/100@test``."""

    interface: str
    name: str = ""
    state_interface: str = ""
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    ringinuse: bool = True
    wrapuptime: int = 0
    membership: str = "static"
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    status: int = _NOT_INUSE
    in_call: bool = False

    def __post_init__(self) -> None:
        self.name = self.name or self.interface
        self.state_interface = self.state_interface or self.interface


@dataclass(eq=False)
class SimQueue:
    """A queue: members to ring and callers waiting (``Queue(name,,,,timeout)``)."""

    name: str
    strategy: str = "ringall"
    members: list[SimQueueMember] = field(default_factory=list)
    ring_timeout: float = 15.0
    max_callers: int = 0
    weight: int = 0
    service_level: int = 0
    callers: list[SimChannel] = field(default_factory=list)
    #: When each waiting caller joined (simulated time).
    joined: dict[SimChannel, float] = field(default_factory=dict)
    completed: int = 0
    abandoned: int = 0
    holdtime: int = 0
    talktime: int = 0
    _next_member: int = 0


# -- channels ---------------------------------------------------------------------------


@dataclass(eq=False)
class _Cdr:
    start: float
    answer: float | None = None
    last_app: str = ""
    last_data: str = ""
    destination_channel: str = ""
    disposition: str = ""


@dataclass(eq=False)
class _Bridge:
    uniqueid: str
    channels: list[SimChannel] = field(default_factory=list)


@dataclass(eq=False)
class _Dialing:
    """Someone (Originate, Dial, Queue) waits for a Local ``;1`` to answer or fail."""

    answered: Callable[[SimChannel], None]
    failed: Callable[[SimChannel, int, str], None]
    #: False when the dialer logs the channel's CEL ANSWER itself, later.
    cel_answer: bool = True


class SimChannel:
    """One simulated channel. Read its attributes; change it through :class:`SimPBX`."""

    def __init__(
        self,
        name: str,
        uniqueid: str,
        linkedid: str,
        context: str,
        exten: str,
        state: int,
        created: float,
        *,
        half: int = 0,
        device: str = "",
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = 1
        self.state = state
        self.created = created
        #: 1 or 2 for the halves of a Local channel, else 0.
        self.half = half
        #: The device whose state this channel changes (``Local/100@test``).
        self.device = device
        self.caller_num = ""
        self.caller_name = ""
        self.connected_num = ""
        self.connected_name = ""
        self.ani = ""
        self.language = "en"
        self.account_code = ""
        #: The running application and its data (Status, CoreShowChannel, CEL).
        self.appl = ""
        self.data = ""
        #: Channel variables (Setvar, Set(), Variable: headers of Originate).
        self.variables: dict[str, str] = {}
        #: The other half of a Local channel.
        self.peer: SimChannel | None = None
        self.hangupcause = 0
        self.hangupsource = ""
        self.alive = True
        #: True while the channel runs the dialplan (it counts as a call).
        self.pbx = False
        self.answered_at: float | None = None
        self._bridge: _Bridge | None = None
        self._cdr: _Cdr | None = None
        self._dialing: _Dialing | None = None
        self._task: asyncio.Task[None] | None = None
        self._goto: tuple[str, str, int] | None = None
        self._interrupt = asyncio.Event()
        self._cleanups: list[Callable[[], None]] = []
        self._control = 0  # the last control frame seen (OriginateResponse Reason)
        self._cel_answered = False
        self._dialed_as = ""  # the dial string this channel was called with
        # What to do when a two-party bridge puts the channel out (Dial, Queue).
        self._after_bridge: Callable[[int], None] | None = None
        # Where a queue member's ;1 moves when it answers (queue_sales_answered.bin).
        self._answer_location: tuple[str, str] | None = None

    def __repr__(self) -> str:
        where = f"{self.context},{self.exten},{self.priority}"
        return f"<SimChannel {self.name} {state_text(self.state)} {where}>"

    @property
    def bridge_id(self) -> str:
        """The uniqueid of the bridge the channel is in, or ``""``."""
        return self._bridge.uniqueid if self._bridge is not None else ""

    @property
    def bridge_peers(self) -> list[SimChannel]:
        """The other channels in this channel's bridge."""
        bridge = self._bridge
        return [c for c in bridge.channels if c is not self] if bridge is not None else []

    def snapshot(self, prefix: str = "") -> Headers:
        """The channel snapshot headers every channel event carries (``Dest``... with a prefix)."""
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", state_text(self.state)),
            (prefix + "CallerIDNum", self.caller_num or "<unknown>"),
            (prefix + "CallerIDName", self.caller_name or "<unknown>"),
            (prefix + "ConnectedLineNum", self.connected_num or "<unknown>"),
            (prefix + "ConnectedLineName", self.connected_name or "<unknown>"),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", self.account_code),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]


@dataclass
class OriginateRequest:
    """What an Originate action asked for (times in seconds)."""

    channel: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    data: str = ""
    variables: Sequence[tuple[str, str]] = ()
    caller_id: str = ""
    account: str = ""
    timeout: float = 30.0
    channel_id: str = ""
    other_channel_id: str = ""
    action_id: str = ""
    #: Async originate: send the OriginateResponse event.
    response_event: bool = True


@dataclass
class OriginateResult:
    """How an Originate ended: answered (``reason == 4``) or not."""

    success: bool
    reason: int
    channel: SimChannel | None = None


# -- the PBX ----------------------------------------------------------------------------


class SimPBX:
    """Channels, bridges, dialplan, queues and their events, on a simulated clock.

    ``time_scale`` is real seconds per simulated second (``0.05``: ``Wait(1)``
    takes 50 ms); timestamps, durations and Uniqueids use the simulated clock.
    ``cel=False`` / ``cdr=False`` leave out the CEL / Cdr events. ``lab=False``
    starts with an empty dialplan and no queues instead of the recordings'
    ``[test]`` context (:data:`LAB_DIALPLAN`) and queues ``support`` (Alice,
    ``Local/500@test``, paused) and ``sales`` (Bob, ``Local/100@test``)::

        pbx.add_extension("test", "123", "Answer")          # priority 1
        pbx.add_extension("test", "123", "Dial", "Local/100@test,20")
        pbx.dialplan.set("test", "124", "Answer()", "MyApp(x)", "Hangup(17)")

        async def my_app(pbx: SimPBX, channel: SimChannel, data: str) -> int:
            await pbx.wait(channel, 1.5)                     # simulated seconds
            pbx.set_variable(channel, "RESULT", data)        # a VarSet event
            return 0                                         # < 0 hangs up

        pbx.add_application("MyApp", my_app)
        await pbx.wait_idle()                                # every call ended

    Applications: Answer, Wait, Hangup, Set, NoOp, UserEvent, Playback,
    MusicOnHold, Goto, Ringing, Busy, Congestion, Dial and Queue (to Local
    channels), plus those added. Dialplan data may use ``${VAR}``.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        time_scale: float = 1.0,
        cel: bool = True,
        cdr: bool = True,
        lab: bool = True,
    ) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive: {time_scale!r}")
        self.time_scale = time_scale
        self.cel = cel
        self.cdr = cdr
        self._sink = sink
        self._epoch = time.time()
        self._mono = time.monotonic()
        #: Live channels by name, oldest first.
        self.channels: dict[str, SimChannel] = {}
        self.dialplan = Dialplan()
        self.queues: dict[str, SimQueue] = {}
        #: Global variables (Setvar/Getvar without a Channel, ``Set(GLOBAL(x)=...)``).
        self.global_variables: dict[str, str] = {}
        #: The AstDB as ``{"/family/key": value}``, for the ``DB()`` function.
        self.astdb: dict[str, str] = {}
        self.applications: dict[str, Application] = {
            "answer": _app_answer,
            "wait": _app_wait,
            "hangup": _app_hangup,
            "set": _app_set,
            "noop": _app_noop,
            "userevent": _app_user_event,
            "playback": _app_playback,
            "musiconhold": _app_music_on_hold,
            "goto": _app_goto,
            "ringing": _app_ringing,
            "busy": _app_busy,
            "congestion": _app_congestion,
            "dial": _app_dial,
            "queue": _app_queue,
        }
        #: Channels that ran the dialplan, ever / now (``core show channels``).
        self.calls_processed = 0
        self.active_calls = 0
        self._uniqueid_seq = 0
        self._local_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None
        self._pending_devices: list[str] = []
        self._pending_members: list[tuple[SimQueue, SimQueueMember]] = []
        self._device_cache: dict[str, int] = {}
        if lab:
            for context, extens in LAB_DIALPLAN.items():
                for exten, steps in extens.items():
                    self.dialplan.set(context, exten, *steps)
            login = int(self._epoch)
            self.add_queue("support", strategy="ringall")
            self.add_queue_member(
                "support", "Local/500@test", name="Alice", paused=True, login_time=login
            )
            self.add_queue("sales", strategy="rrmemory")
            self.add_queue_member("sales", "Local/100@test", name="Bob", login_time=login)

    def __repr__(self) -> str:
        return f"<SimPBX channels={len(self.channels)} calls={self.active_calls}>"

    # -- configuration ---------------------------------------------------------------

    def add_extension(
        self, context: str, exten: str, app: str, data: str = "", *, priority: int | None = None
    ) -> None:
        """Add ``app(data)`` as the next priority of ``exten@context`` (or at ``priority``)."""
        if priority is None:
            self.dialplan.add(context, exten, (app, data))
            return
        priorities = self.dialplan.contexts.setdefault(context, {}).setdefault(exten, [])
        if not 1 <= priority <= len(priorities) + 1:
            raise ValueError(f"priority {priority} leaves a gap in {exten}@{context}")
        if priority == len(priorities) + 1:
            priorities.append((app, data))
        else:
            priorities[priority - 1] = (app, data)

    def add_application(self, name: str, app: Application) -> None:
        """Register a dialplan application: ``async def app(pbx, channel, data) -> int | None``."""
        self.applications[name.lower()] = app

    def add_queue(
        self, name: str, *, strategy: str = "ringall", ring_timeout: float = 15.0
    ) -> SimQueue:
        queue = SimQueue(name, strategy=strategy, ring_timeout=ring_timeout)
        self.queues[name] = queue
        return queue

    def add_queue_member(
        self,
        queue: str,
        interface: str,
        *,
        name: str = "",
        paused: bool = False,
        penalty: int = 0,
        ringinuse: bool = True,
        login_time: int | None = None,
    ) -> SimQueueMember:
        member = SimQueueMember(
            interface,
            name=name,
            paused=paused,
            penalty=penalty,
            ringinuse=ringinuse,
            login_time=int(self.now()) if login_time is None else login_time,
        )
        if paused:
            member.last_pause = member.login_time
        member.status = self.device_state(member.state_interface)
        self.queues[queue].members.append(member)
        return member

    # -- clock and ids -----------------------------------------------------------------

    def now(self) -> float:
        """Simulated wall-clock time (seconds since the epoch)."""
        return self._epoch + (time.monotonic() - self._mono) / self.time_scale

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        await asyncio.sleep(max(0.0, seconds) * self.time_scale)

    def _next_uniqueid(self) -> str:
        uniqueid = f"{int(self.now())}.{self._uniqueid_seq}"
        self._uniqueid_seq += 1
        return uniqueid

    def _timestamp(self, when: float | None = None) -> str:
        return time.strftime(
            "%Y-%m-%d %H:%M:%S", time.localtime(self.now() if when is None else when)
        )

    # -- lookups -----------------------------------------------------------------------

    def find_channel(self, name: str) -> SimChannel | None:
        """A live channel by name (case-insensitive, like ast_channel_get_by_name) or uniqueid."""
        channel = self.channels.get(name)
        if channel is not None:
            return channel
        lowered = name.lower()
        for channel in self.channels.values():
            if channel.name.lower() == lowered or channel.uniqueid == name:
                return channel
        return None

    def get_variable(self, channel: SimChannel | None, name: str) -> str | None:
        """A variable or dialplan function as Getvar reads it; None when it is not set."""
        func = re.fullmatch(r"([A-Za-z_]+)\((.*)\)", name)
        if func is not None:
            return self._function(channel, func.group(1).upper(), func.group(2))
        if channel is not None:
            if name in channel.variables:
                return channel.variables[name]
            builtin = self._builtin_variable(channel, name)
            if builtin is not None:
                return builtin
        return self.global_variables.get(name)

    def _builtin_variable(self, channel: SimChannel, name: str) -> str | None:
        values = {
            "CHANNEL": channel.name,
            "UNIQUEID": channel.uniqueid,
            "CONTEXT": channel.context,
            "EXTEN": channel.exten,
            "PRIORITY": str(channel.priority),
            "HANGUPCAUSE": str(channel.hangupcause),
            "EPOCH": str(int(self.now())),
        }
        return values.get(name)

    def _function(self, channel: SimChannel | None, func: str, arg: str) -> str | None:
        if func == "GLOBAL":
            return self.global_variables.get(arg)
        if func == "DB":
            return self.astdb.get("/" + arg.strip("/"))
        if channel is None:
            return None
        arg = arg.strip().lower()
        if func == "CHANNEL":
            channel_values = {
                "state": state_text(channel.state),
                "name": channel.name,
                "uniqueid": channel.uniqueid,
                "linkedid": channel.linkedid,
                "language": channel.language,
                "accountcode": channel.account_code,
                "context": channel.context,
                "exten": channel.exten,
                "channeltype": "Local" if channel.half else "Sim",
                "callgroup": "",
                "pickupgroup": "",
            }
            return channel_values.get(arg)
        if func in ("CALLERID", "CONNECTEDLINE"):
            num, name = (
                (channel.caller_num, channel.caller_name)
                if func == "CALLERID"
                else (channel.connected_num, channel.connected_name)
            )
            if arg in ("num", "number"):
                return num
            if arg == "name":
                return name
            if arg == "all":
                return f'"{name}" <{num}>'
            return None
        return None

    def device_state(self, device: str) -> int:
        """A device's state (1 NOT_INUSE, 2 INUSE, 4 INVALID...); Local devices are computed."""
        local = _LOCAL.fullmatch(device)
        if local is None:
            return self._device_cache.get(device, _NOT_INUSE)
        exten, context = local.group(1), local.group(2) or "default"
        if not self.dialplan.exists(context, exten):
            return _INVALID
        for channel in self.channels.values():
            # chan_local: in use while a ;1 of that exten@context is up and called.
            if channel.device == device and channel.half == 1 and channel.alive:
                return _INUSE
        return _NOT_INUSE

    def _substitute(self, channel: SimChannel, data: str) -> str:
        def value(match: re.Match[str]) -> str:
            return self.get_variable(channel, match.group(1)) or ""

        for _ in range(10):  # nested references resolve from the inside out
            new = _VARIABLE_REF.sub(value, data)
            if new == data:
                break
            data = new
        return data

    # -- events ----------------------------------------------------------------------

    def _emit(self, name: str, privilege: str, *parts: Iterable[tuple[str, str]]) -> None:
        headers: Headers = [("Event", name), ("Privilege", privilege)]
        for part in parts:
            headers.extend(part)
        self._sink(headers)

    def _channel_event(
        self, name: str, channel: SimChannel, *extra: tuple[str, str], privilege: str = "call,all"
    ) -> None:
        self._emit(name, privilege, channel.snapshot(), extra)

    def _var_set(self, channel: SimChannel, name: str, value: str) -> None:
        channel.variables[name] = value
        self._channel_event(
            "VarSet", channel, ("Variable", name), ("Value", value), privilege="dialplan,all"
        )

    def _cel(
        self,
        channel: SimChannel,
        event: str,
        *,
        extra: str = "",
        peer: str = "",
        app: str | None = None,
        appdata: str | None = None,
        caller: tuple[str, str] | None = None,
    ) -> None:
        if not self.cel:
            return
        num, name = caller if caller is not None else (channel.caller_num, channel.caller_name)
        self._emit(
            "CEL",
            "call,all",
            [
                ("EventName", event),
                ("AccountCode", channel.account_code),
                ("CallerIDnum", num),
                ("CallerIDname", name),
                ("CallerIDani", channel.ani),
                ("CallerIDrdnis", ""),
                ("CallerIDdnid", ""),
                ("Exten", channel.exten),
                ("Context", channel.context),
                ("Channel", channel.name),
                ("Application", channel.appl if app is None else app),
                ("AppData", channel.data if appdata is None else appdata),
                ("EventTime", self._timestamp()),
                ("AMAFlags", "DOCUMENTATION"),
                ("UniqueID", channel.uniqueid),
                ("LinkedID", channel.linkedid),
                ("Userfield", ""),
                ("Peer", peer),
                ("PeerAccount", ""),
                ("Extra", extra),
            ],
        )

    def _emit_cdr(self, channel: SimChannel) -> None:
        cdr, channel._cdr = channel._cdr, None
        if cdr is None or not self.cdr:
            return
        end = self.now()
        answered = cdr.answer
        disposition = cdr.disposition or ("ANSWERED" if answered is not None else "NO ANSWER")
        caller_id = f'"{channel.caller_name}" <{channel.caller_num}>'
        self._emit(
            "Cdr",
            "cdr,all",
            [
                ("AccountCode", channel.account_code),
                ("Source", channel.caller_num),
                ("Destination", channel.exten),
                ("DestinationContext", channel.context),
                ("CallerID", caller_id),
                ("Channel", channel.name),
                ("DestinationChannel", cdr.destination_channel),
                ("LastApplication", cdr.last_app),
                ("LastData", cdr.last_data),
                ("StartTime", self._timestamp(cdr.start)),
                ("AnswerTime", self._timestamp(answered) if answered is not None else ""),
                ("EndTime", self._timestamp(end)),
                ("Duration", str(int(end - cdr.start))),
                ("BillableSeconds", str(int(end - answered)) if answered is not None else "0"),
                ("Disposition", disposition),
                ("AMAFlags", "DOCUMENTATION"),
                ("UniqueID", channel.uniqueid),
                ("UserField", ""),
            ],
        )

    def _set_last_app(self, channel: SimChannel, app: str, data: str) -> None:
        channel.appl, channel.data = app, data
        if channel._cdr is not None:
            channel._cdr.last_app, channel._cdr.last_data = app, data

    # -- device and queue member states --------------------------------------------------

    def _device_changed(self, device: str) -> None:
        if device:
            self._pending_devices.append(device)

    def _flush_devices(self) -> None:
        """DeviceStateChange for each pending change; queue members see it after."""
        pending, self._pending_devices = self._pending_devices, []
        for device in pending:
            state = self.device_state(device)
            self._emit(
                "DeviceStateChange",
                "call,all",
                [("Device", device), ("State", _DEVICE_TEXT[state])],
            )
            for queue in self.queues.values():
                for member in queue.members:
                    if member.state_interface == device and member.status != state:
                        member.status = state
                        self._pending_members.append((queue, member))

    def _flush_members(self) -> None:
        """QueueMemberStatus for members whose device changed, then the queues' _avail."""
        pending, self._pending_members = self._pending_members, []
        touched: list[SimQueue] = []
        for queue, member in pending:
            self._emit("QueueMemberStatus", "agent,all", self._member_status(queue, member))
            if queue not in touched:
                touched.append(queue)
        for queue in touched:
            available = any(
                not m.paused and (m.status == _NOT_INUSE or (m.ringinuse and m.status == _INUSE))
                for m in queue.members
            )
            self._set_cached_device(
                f"Queue:{queue.name}_avail", _NOT_INUSE if available else _INUSE
            )

    def _set_cached_device(self, device: str, state: int) -> None:
        """A cachable device state: DeviceStateChange only when it changes."""
        if self._device_cache.get(device) == state:
            return
        self._device_cache[device] = state
        self._emit(
            "DeviceStateChange", "call,all", [("Device", device), ("State", _DEVICE_TEXT[state])]
        )

    def _member_status(self, queue: SimQueue, member: SimQueueMember) -> Headers:
        return [
            ("Queue", queue.name),
            ("MemberName", member.name),
            ("Interface", member.interface),
            ("StateInterface", member.state_interface),
            ("Membership", member.membership),
            ("Penalty", str(member.penalty)),
            ("CallsTaken", str(member.calls_taken)),
            ("LastCall", str(member.last_call)),
            ("LastPause", str(member.last_pause)),
            ("LoginTime", str(member.login_time)),
            ("InCall", "1" if member.in_call else "0"),
            ("Status", str(member.status)),
            ("Paused", "1" if member.paused else "0"),
            ("PausedReason", member.paused_reason),
            ("Ringinuse", "1" if member.ringinuse else "0"),
            ("Wrapuptime", str(member.wrapuptime)),
        ]

    def _settle(self) -> None:
        self._flush_devices()
        self._flush_members()

    # -- channel life ------------------------------------------------------------------

    def _new_local_pair(
        self,
        exten: str,
        context: str,
        *,
        linkedid: str = "",
        uniqueids: tuple[str, str] = ("", ""),
    ) -> tuple[SimChannel, SimChannel]:
        """Allocate ``Local/exten@context-XXXXXXXX;1`` and ``;2`` (only CEL CHAN_START yet)."""
        base = f"Local/{exten}@{context}-{self._local_seq:08x}"
        self._local_seq += 1
        now = self.now()
        device = f"Local/{exten}@{context}"
        uid1 = uniqueids[0] or self._next_uniqueid()
        uid2 = uniqueids[1] or self._next_uniqueid()
        one = SimChannel(
            base + ";1", uid1, linkedid or uid1, context, exten, DOWN, now, half=1, device=device
        )
        two = SimChannel(
            base + ";2", uid2, linkedid or uid1, context, exten, RING, now, half=2, device=device
        )
        one.peer, two.peer = two, one
        for channel in (one, two):
            channel._cdr = _Cdr(now)
            self.channels[channel.name] = channel
        self._cel(one, "CHAN_START", app="", appdata="")
        self._cel(two, "CHAN_START", app="", appdata="")
        return one, two

    def _announce_pair(self, one: SimChannel, two: SimChannel) -> None:
        self._channel_event("Newchannel", one)
        self._channel_event("Newchannel", two)

    def _local_bridge(self, one: SimChannel, two: SimChannel, optimize: bool) -> None:
        self._emit(
            "LocalBridge",
            "call,all",
            one.snapshot("LocalOne"),
            two.snapshot("LocalTwo"),
            [("Context", two.context), ("Exten", two.exten)],
            [("LocalOptimization", "Yes" if optimize else "No")],
        )

    def _newexten(self, channel: SimChannel) -> None:
        self._channel_event(
            "Newexten",
            channel,
            ("Extension", channel.exten),
            ("Application", channel.appl),
            ("AppData", channel.data),
            privilege="dialplan,all",
        )

    def _set_state(self, channel: SimChannel, state: int, *, cel: bool = True) -> None:
        channel.state = state
        if state == UP and channel._answer_location is not None:
            channel.context, channel.exten = channel._answer_location
            channel._answer_location = None
        if state == UP and channel.answered_at is None:
            channel.answered_at = self.now()
            if channel._cdr is not None:
                channel._cdr.answer = channel.answered_at
        self._channel_event("Newstate", channel)
        if state == UP and cel and not channel._cel_answered:
            channel._cel_answered = True
            self._cel(channel, "ANSWER")
        self._device_changed(channel.device)

    def _answer(self, channel: SimChannel) -> None:
        """Answer a channel; a Local ``;2`` answers its ``;1`` and whoever dials it."""
        if channel.state == UP or not channel.alive:
            return
        peer = channel.peer
        ring_peer = channel.half == 2 and peer is not None and peer.alive and peer.state != UP
        self._set_state(channel, UP)
        if ring_peer and peer is not None:
            dialing, peer._dialing = peer._dialing, None
            self._set_state(peer, UP, cel=dialing is None or dialing.cel_answer)
            self._flush_devices()
            if dialing is not None:
                dialing.answered(peer)
        self._settle()

    def _control(self, channel: SimChannel, control: int) -> None:
        """A control frame (ringing, busy, congestion) from a Local ``;2`` reaches its ``;1``.

        Whoever dials that ``;1`` gives up on busy or congestion, and hangs it up.
        """
        channel._control = control
        peer = channel.peer
        if channel.half != 2 or peer is None or not peer.alive:
            return
        peer._control = control
        dialing = peer._dialing
        if dialing is not None and control in (_REASON_BUSY, _REASON_CONGESTION):
            peer._dialing = None
            busy = control == _REASON_BUSY
            dialing.failed(peer, control, "BUSY" if busy else "CONGESTION")
            self._hangup_pair(peer, _BUSY if busy else _CONGESTION)

    def _spawn(
        self, coro: Coroutine[Any, Any, None], channel: SimChannel | None = None
    ) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        if channel is not None:
            channel._task = task
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("simulated PBX task failed", exc_info=task.exception())
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and not self._tasks and not self.channels:
            self._idle.set()

    def _start_pbx(self, channel: SimChannel) -> None:
        self._spawn(self._pbx(channel), channel)

    async def _pbx(self, channel: SimChannel) -> None:
        """Run the dialplan from the channel's context, exten, priority (__ast_pbx_run)."""
        channel.pbx = True
        self.active_calls += 1
        self.calls_processed += 1
        try:
            while channel.alive:
                if channel._goto is not None:
                    channel.context, channel.exten, channel.priority = channel._goto
                    channel._goto = None
                    channel._interrupt.clear()
                step = self.dialplan.lookup(channel.context, channel.exten, channel.priority)
                if step is None:
                    break
                app, data = step[0], self._substitute(channel, step[1])
                self._set_last_app(channel, app, data)
                self._newexten(channel)
                result = await self._exec(channel, app, data)
                if not channel.alive:
                    return
                self._settle()
                if channel._goto is not None:
                    continue
                if result < 0:
                    break
                channel.priority += 1
        finally:
            self.active_calls -= 1
        if channel.alive:
            channel.appl = channel.data = ""
            self._hangup_pair(channel, channel.hangupcause)

    async def _exec(self, channel: SimChannel, app: str, data: str) -> int:
        handler = self.applications.get(app.lower())
        if handler is None:
            logger.warning("simulated PBX: no application %r (%s)", app, channel.name)
            return -1
        result = await handler(self, channel, data)
        return int(result or 0)

    async def _outgoing_app(self, channel: SimChannel, app: str, data: str) -> None:
        """An Originate's Application runs on the ``;1`` without the dialplan."""
        saved = (channel.appl, channel.data)
        self._set_last_app(channel, app, data)
        await self._exec(channel, app, data)
        if channel.alive:
            channel.appl, channel.data = saved
            self._settle()
            self._hangup_pair(channel, channel.hangupcause)

    async def _wait_for(
        self, channel: SimChannel, future: asyncio.Future[Any] | None, seconds: float | None
    ) -> str:
        """``"done"`` (the future), ``"interrupt"`` (a Redirect) or ``"timeout"``."""
        if channel._goto is not None or not channel.alive:
            return "interrupt"
        interrupt = asyncio.ensure_future(channel._interrupt.wait())
        waiters: list[asyncio.Future[Any]] = [interrupt]
        if future is not None:
            waiters.append(future)
        try:
            timeout = None if seconds is None else max(0.0, seconds) * self.time_scale
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupt.cancel()
        if future is not None and future.done():
            return "done"
        if channel._goto is not None or channel._interrupt.is_set():
            return "interrupt"
        return "timeout"

    async def wait(self, channel: SimChannel, seconds: float | None) -> bool:
        """Let ``seconds`` of simulated time pass on a channel; False if a Redirect cut it short."""
        return await self._wait_for(channel, None, seconds) == "timeout"

    def _run_cleanups(self, channel: SimChannel) -> None:
        cleanups, channel._cleanups = channel._cleanups, []
        for cleanup in cleanups:
            cleanup()

    def _kill_task(self, channel: SimChannel) -> None:
        task, channel._task = channel._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _hangup_pair(self, first: SimChannel, cause: int) -> None:
        """``first`` hangs up; the other half of a Local channel goes with it.

        The order is that of originate_async.bin: Cdr, the peer's HangupRequest,
        CEL, each channel's Hangup, then the devices and queue members.
        """
        if not first.alive:
            return
        peer = first.peer
        second = peer if peer is not None and peer.alive else None
        pair = [first] if second is None else [first, second]
        for channel in pair:
            channel.alive = False
            self._kill_task(channel)
        first.hangupcause = cause
        self._run_cleanups(first)
        for channel in pair:
            dialing, channel._dialing = channel._dialing, None
            if dialing is not None:
                reason = channel._control or (_REASON_HANGUP if channel is not first else 0)
                dialing.failed(channel, reason, _dial_status(cause))
        self._emit_cdr(first)
        if second is not None:
            status = first.variables.get("DIALSTATUS")
            if first.half == 2 and status is not None:
                self._var_set(second, "CHANLOCALSTATUS", status)
            second.hangupcause = cause
            self._channel_event("HangupRequest", second, ("Cause", str(cause)))
            # What the peer was doing stops now (MusicOnHoldStop in playback_moh.bin).
            self._run_cleanups(second)
            self._emit_cdr(second)
        for channel in pair:
            if channel.pbx:
                channel.appl = channel.data = ""
            if channel._bridge is not None:
                self._cel_bridge_exit(channel)
            extra = {
                "hangupcause": channel.hangupcause,
                "hangupsource": channel.hangupsource,
                "dialstatus": channel.variables.get("DIALSTATUS", ""),
            }
            self._cel(channel, "HANGUP", extra=json.dumps(extra, separators=(",", ":")))
            self._cel(channel, "CHAN_END")
        last = pair[-1]
        for channel in pair:
            del self.channels[channel.name]
        if not any(c.linkedid == last.linkedid for c in self.channels.values()):
            self._cel(last, "LINKEDID_END")
        bridges: list[_Bridge] = []
        for channel in pair:
            if channel is second and channel.pbx:
                self._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
            bridge = channel._bridge
            if bridge is not None:
                self._leave_bridge(channel, cel=False)
                bridges.append(bridge)
            self._channel_event(
                "Hangup",
                channel,
                ("Cause", str(channel.hangupcause)),
                ("Cause-txt", cause_text(channel.hangupcause)),
            )
        for channel in pair:
            self._device_changed(channel.device)
        self._settle()
        for bridge in bridges:
            self._bridge_dissolve(bridge, cause)
        self._check_idle()

    # -- bridges ---------------------------------------------------------------------

    def _bridge_headers(self, bridge: _Bridge) -> Headers:
        return [
            ("BridgeUniqueid", bridge.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(len(bridge.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]

    def _bridge_extra(self, bridge: _Bridge) -> str:
        info = {"bridge_id": bridge.uniqueid, "bridge_technology": "simple_bridge"}
        return json.dumps(info, separators=(",", ":"))

    def _new_bridge(self) -> _Bridge:
        bridge = _Bridge(str(uuid.uuid4()))
        self._emit("BridgeCreate", "call,all", self._bridge_headers(bridge))
        return bridge

    def _enter_bridge(self, bridge: _Bridge, channel: SimChannel) -> None:
        peers = list(bridge.channels)
        bridge.channels.append(channel)
        channel._bridge = bridge
        self._emit("BridgeEnter", "call,all", self._bridge_headers(bridge), channel.snapshot())
        self._cel(
            channel,
            "BRIDGE_ENTER",
            peer=",".join(p.name for p in peers),
            extra=self._bridge_extra(bridge),
        )

    def _set_bridge_peers(self, bridge: _Bridge, clear: bool = False) -> None:
        for channel in bridge.channels:
            others = [c.name for c in bridge.channels if c is not channel]
            self._var_set(channel, "BRIDGEPEER", "" if clear else ",".join(others))

    def _cel_bridge_exit(self, channel: SimChannel) -> None:
        bridge = channel._bridge
        if bridge is not None:
            peers = ",".join(c.name for c in bridge.channels if c is not channel)
            self._cel(channel, "BRIDGE_EXIT", peer=peers, extra=self._bridge_extra(bridge))

    def _leave_bridge(self, channel: SimChannel, *, cel: bool = True) -> None:
        bridge = channel._bridge
        if bridge is None:
            return
        if len(bridge.channels) == 2:
            self._set_bridge_peers(bridge, clear=True)
        if cel:
            self._cel_bridge_exit(channel)
        bridge.channels.remove(channel)
        channel._bridge = None
        self._emit("BridgeLeave", "call,all", self._bridge_headers(bridge), channel.snapshot())

    def _bridge_dissolve(self, bridge: _Bridge, cause: int) -> None:
        """A two-party (Dial) bridge ends when one party leaves: the other is put out."""
        if len(bridge.channels) == 1:
            (other,) = bridge.channels
            self._leave_bridge(other)
            self._emit("BridgeDestroy", "call,all", self._bridge_headers(bridge))
            after = other._after_bridge
            other._after_bridge = None
            if after is not None:
                after(cause)
            elif not other.pbx:
                self._hangup_pair(other, cause)
        elif not bridge.channels:
            self._emit("BridgeDestroy", "call,all", self._bridge_headers(bridge))

    # -- originate ---------------------------------------------------------------------

    def originate(self, request: OriginateRequest) -> asyncio.Future[OriginateResult]:
        """Place a call; the future resolves once it is answered or has failed.

        Events start at once (call it after writing the action's Response); an
        async request also gets its OriginateResponse event.
        """
        loop = asyncio.get_running_loop()
        result: asyncio.Future[OriginateResult] = loop.create_future()
        local = _LOCAL.fullmatch(request.channel.strip())
        if local is None:
            self._originate_response(request, None, _REASON_FAILED)
            result.set_result(OriginateResult(False, _REASON_FAILED))
            return result
        exten, context = local.group(1), local.group(2) or "default"
        one, two = self._new_local_pair(
            exten, context, uniqueids=(request.channel_id, request.other_channel_id)
        )
        number, name = _parse_caller_id(request.caller_id)
        for channel in (one, two):
            channel.account_code = request.account
        exists = self.dialplan.exists(context, exten)
        first = self.dialplan.lookup(context, exten, 1)
        if exists and first is not None and first[0].lower() == "answer":
            # originate_async.bin: the CEL of the ;2 answering comes before its Newchannel.
            two._cel_answered = True
            self._cel(two, "ANSWER", app="Answer", appdata="", caller=(number, name))
        self._announce_pair(one, two)
        self._set_last_app(one, "AppDial2", "(Outgoing Line)")
        self._newexten(one)
        if not exists:
            self._local_call_failed(one, two)
            self._originate_response(request, None, _REASON_FAILED)
            self._settle()
            self._flush_failed_cel(one)
            result.set_result(OriginateResult(False, _REASON_FAILED))
            self._check_idle()
            return result
        for key, value in reversed(request.variables):
            self._var_set(one, key, value)
        if request.caller_id:
            one.caller_num, one.caller_name, one.ani = number, name, number
            self._channel_event(
                "NewCallerid", one, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
            )
            one.connected_num, one.connected_name = number, name
            self._channel_event("NewConnectedLine", one)
        for key, value in request.variables:
            self._var_set(two, key, value)
        if request.caller_id:
            two.caller_num, two.caller_name = number, name
            two.connected_num, two.connected_name = number, name
            self._channel_event(
                "NewCallerid", two, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
            )
            self._channel_event("NewConnectedLine", two)
        self._local_bridge(one, two, optimize=local.group(3) is None)
        one._dialed_as = f"{exten}@{context}"
        timer: list[asyncio.Task[None]] = []

        def stop_timer() -> None:
            for task in timer:
                if task is not asyncio.current_task():
                    task.cancel()

        def answered(channel: SimChannel) -> None:
            stop_timer()
            self._dial_end(None, channel, "ANSWER")
            self._flush_members()
            self._originate_response(request, channel, _REASON_ANSWERED)
            if not result.done():
                result.set_result(OriginateResult(True, _REASON_ANSWERED, channel))
            channel._cel_answered = True
            self._cel(channel, "ANSWER")
            if request.application:
                self._spawn(self._outgoing_app(channel, request.application, request.data), channel)
            else:
                channel.context = request.context or channel.context
                channel.exten = request.exten or channel.exten
                channel.priority = request.priority
                self._start_pbx(channel)

        def failed(channel: SimChannel, reason: int, status: str) -> None:
            stop_timer()
            self._dial_end(None, channel, status)
            self._originate_response(request, None, reason)
            if not result.done():
                result.set_result(OriginateResult(False, reason))

        one._dialing = _Dialing(answered, failed, cel_answer=False)
        self._dial_begin(None, one, f"{exten}@{context}")
        self._start_pbx(two)
        timer.append(self._spawn(self._originate_timeout(one, request.timeout)))
        return result

    async def _originate_timeout(self, channel: SimChannel, seconds: float) -> None:
        await self.sleep(seconds)
        dialing, channel._dialing = channel._dialing, None
        if dialing is None or not channel.alive:
            return
        dialing.failed(channel, channel._control, "NOANSWER")
        self._hangup_pair(channel, 0)

    def _local_call_failed(self, one: SimChannel, two: SimChannel) -> None:
        """chan_local cannot call a missing extension: ;2 goes, then ;1 (originate_fail_async)."""
        for channel in (two, one):
            channel.alive = False
            if channel._cdr is not None:
                channel._cdr.disposition = "FAILED"
        self._channel_event("Hangup", two, ("Cause", "0"), ("Cause-txt", cause_text(0)))
        self._cel(two, "HANGUP", extra='{"hangupcause":0,"hangupsource":"","dialstatus":""}')
        self._cel(two, "CHAN_END")
        self._emit_cdr(two)
        self._channel_event("Hangup", one, ("Cause", "0"), ("Cause-txt", cause_text(0)))
        for channel in (two, one):
            del self.channels[channel.name]
            self._device_changed(channel.device)

    def _flush_failed_cel(self, one: SimChannel) -> None:
        self._cel(one, "HANGUP", extra='{"hangupcause":0,"hangupsource":"","dialstatus":""}')
        self._cel(one, "CHAN_END")
        if not any(c.linkedid == one.linkedid for c in self.channels.values()):
            self._cel(one, "LINKEDID_END")
        self._emit_cdr(one)

    def _originate_response(
        self, request: OriginateRequest, channel: SimChannel | None, reason: int
    ) -> None:
        if not request.response_event:
            return
        headers: Headers = []
        if request.action_id:
            headers.append(("ActionID", request.action_id))
        headers.append(("Response", "Success" if channel is not None else "Failure"))
        headers.append(("Channel", channel.name if channel is not None else request.channel))
        if request.application:
            headers += [("Application", request.application), ("Data", request.data)]
        else:
            headers += [("Context", request.context), ("Exten", request.exten)]
        headers += [
            ("Reason", str(reason)),
            ("Uniqueid", channel.uniqueid if channel is not None else "<unknown>"),
            ("CallerIDNum", (channel.caller_num if channel else "") or "<unknown>"),
            ("CallerIDName", (channel.caller_name if channel else "") or "<unknown>"),
        ]
        self._emit("OriginateResponse", "call,all", headers)

    def _dial_begin(self, caller: SimChannel | None, callee: SimChannel, dialstring: str) -> None:
        parts: list[Headers] = [] if caller is None else [caller.snapshot()]
        self._emit(
            "DialBegin", "call,all", *parts, callee.snapshot("Dest"), [("DialString", dialstring)]
        )

    def _dial_end(self, caller: SimChannel | None, callee: SimChannel, status: str) -> None:
        parts: list[Headers] = [] if caller is None else [caller.snapshot()]
        self._emit("DialEnd", "call,all", *parts, callee.snapshot("Dest"), [("DialStatus", status)])

    # -- actions on channels -----------------------------------------------------------

    def hangup(self, channel: SimChannel, cause: int = NORMAL_CLEARING) -> None:
        """Hang a channel up (the Hangup action: no (Soft)HangupRequest for it, status.bin)."""
        self._hangup_pair(channel, cause if cause > 0 else channel.hangupcause)

    def soft_hangup(self, channel: SimChannel) -> None:
        """``channel request hangup``: SoftHangupRequest, then the channel hangs up."""
        self._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
        self._hangup_pair(channel, channel.hangupcause or NORMAL_CLEARING)

    def redirect(self, channel: SimChannel, context: str, exten: str, priority: int = 1) -> None:
        """Send a channel to ``exten@context`` at ``priority`` (ast_async_goto)."""
        if not channel.alive:
            return
        bridge = channel._bridge
        if bridge is not None:
            channel._after_bridge = None
            self._leave_bridge(channel)
        if channel.pbx and channel._task is not None:
            channel._goto = (context, exten, priority)
            channel._interrupt.set()
        else:
            # No dialplan running (an Originate's application, a dialed channel):
            # stop what it does and start the dialplan there.
            self._kill_task(channel)
            dialing, channel._dialing = channel._dialing, None
            if dialing is not None:
                dialing.failed(channel, _REASON_FAILED, "CANCEL")
            channel.context, channel.exten, channel.priority = context, exten, priority
            self._start_pbx(channel)
        if bridge is not None:
            self._bridge_dissolve(bridge, NORMAL_CLEARING)
        self._settle()

    def set_variable(self, channel: SimChannel | None, name: str, value: str) -> None:
        """Setvar: a channel variable (VarSet with the channel) or a global (Channel: none)."""
        database = re.fullmatch(r"DB\((.+)\)", name)
        if database is not None:
            self.astdb["/" + database.group(1).strip("/")] = value
            return
        func = re.fullmatch(r"GLOBAL\((.*)\)", name)
        if channel is None or func is not None:
            key = func.group(1) if func is not None else name
            self.global_variables[key] = value
            self._emit(
                "VarSet",
                "dialplan,all",
                [("Channel", "none"), ("Uniqueid", "none"), ("Variable", key), ("Value", value)],
            )
            return
        caller = re.fullmatch(r"CALLERID\((num|name|all)\)", name, re.IGNORECASE)
        if caller is not None:
            part = caller.group(1).lower()
            if part == "num":
                channel.caller_num = value
            elif part == "name":
                channel.caller_name = value
            else:
                channel.caller_num, channel.caller_name = _parse_caller_id(value)
            self._channel_event(
                "NewCallerid",
                channel,
                ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"),
            )
            return
        self._var_set(channel, name, value)

    # -- lifecycle -------------------------------------------------------------------

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no channel is left and nothing runs (TimeoutError after ``timeout``)."""
        self._idle = asyncio.Event()
        self._check_idle()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            names = list(self.channels)
            raise TimeoutError(f"simulated PBX still busy after {timeout} s: {names}") from None
        finally:
            self._idle = None

    async def close(self) -> None:
        """Stop every application; channels vanish without events."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in self.channels.values():
            channel.alive = False
        self.channels.clear()


def _dial_status(cause: int) -> str:
    if cause == _BUSY:
        return "BUSY"
    if cause in (_CONGESTION, 42):
        return "CONGESTION"
    return "NOANSWER"


# -- applications -------------------------------------------------------------------------


async def _app_answer(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    if channel.state == UP:
        return 0
    pbx._answer(channel)
    await pbx.wait(channel, _ANSWER_DELAY)
    return 0


async def _app_wait(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    try:
        seconds = float(data or 0)
    except ValueError:
        seconds = 0.0
    await pbx.wait(channel, seconds)
    return 0


async def _app_hangup(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    pbx._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
    try:
        cause = int(data) if data.strip() else 0
    except ValueError:
        cause = 0
    if cause > 0:
        channel.hangupcause = cause
    elif not channel.hangupcause:
        channel.hangupcause = NORMAL_CLEARING
    channel.hangupsource = "dialplan/builtin"
    return -1


async def _app_set(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    name, _, value = data.partition("=")
    if name.strip():
        pbx.set_variable(channel, name.strip(), value)
    return 0


async def _app_noop(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    return 0


async def _app_user_event(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    name, *fields = data.split(",")
    headers: Headers = [("UserEvent", name.strip())]
    for item in fields:
        key, sep, value = item.partition(":")
        if sep and key.strip():
            headers.append((key.strip(), value.lstrip(" ")))
    pbx._emit("UserEvent", "user,all", channel.snapshot(), headers)
    return 0


async def _app_playback(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    if channel.state != UP and "noanswer" not in data:
        pbx._answer(channel)
    completed = await pbx.wait(channel, _PLAYBACK_SECONDS)
    pbx._var_set(channel, "PLAYBACKSTATUS", "SUCCESS" if completed else "FAILED")
    return 0


async def _app_music_on_hold(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    args = _split_args(data)
    moh_class = args[0] or "default"
    seconds = float(args[1]) if len(args) > 1 and args[1] else None
    if channel.state != UP:
        pbx._answer(channel)
    stop = _music_on_hold(pbx, channel, moh_class)
    completed = await pbx.wait(channel, seconds)
    if channel.alive:
        stop()
    return 0 if completed or channel._goto is not None else -1


def _music_on_hold(pbx: SimPBX, channel: SimChannel, moh_class: str) -> Callable[[], None]:
    """MusicOnHoldStart now; the returned stop (also run at hangup) sends MusicOnHoldStop."""
    pbx._channel_event("MusicOnHoldStart", channel, ("Class", moh_class))

    def stop() -> None:
        with contextlib.suppress(ValueError):
            channel._cleanups.remove(stop)
        pbx._channel_event("MusicOnHoldStop", channel)

    channel._cleanups.append(stop)
    return stop


async def _app_goto(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    args = _split_args(data)
    if len(args) == 1:
        context, exten, priority = channel.context, channel.exten, args[0]
    elif len(args) == 2:
        context, exten, priority = channel.context, args[0], args[1]
    else:
        context, exten, priority = args[0], args[1], args[2]
    try:
        channel._goto = (context, exten, int(priority))
    except ValueError:
        return -1
    return 0


async def _app_ringing(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    if channel.state not in (UP, RINGING):
        pbx._control(channel, _REASON_RINGING)
        pbx._set_state(channel, RINGING)
        pbx._settle()
    return 0


async def _app_busy(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    pbx._control(channel, _REASON_BUSY)
    channel.hangupcause = _BUSY
    await pbx.wait(channel, float(data) if data.strip() else None)
    return -1


async def _app_congestion(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    pbx._control(channel, _REASON_CONGESTION)
    channel.hangupcause = _CONGESTION
    await pbx.wait(channel, float(data) if data.strip() else None)
    return -1


def _callee_pair(
    pbx: SimPBX, caller: SimChannel, target: str, app: str
) -> tuple[SimChannel, SimChannel, str] | None:
    """Dial()/Queue() call a Local target: the pair and its dial string, or None."""
    local = _LOCAL.fullmatch(target)
    if local is None:
        return None
    exten, context = local.group(1), local.group(2) or "default"
    one, two = pbx._new_local_pair(exten, context, linkedid=caller.linkedid)
    pbx._announce_pair(one, two)
    dialstring = f"{exten}@{context}"
    if not pbx.dialplan.exists(context, exten):
        pbx._local_call_failed(one, two)
        pbx._settle()
        pbx._flush_failed_cel(one)
        return None
    one._cdr = None  # its CDR is the caller's (dial_bridge.bin has none for it)
    if app == "AppDial":
        pbx._var_set(one, "DIALEDPEERNUMBER", dialstring)
        one.context, one.exten = caller.context, caller.exten
    one.caller_num = caller.caller_num or caller.exten
    one.caller_name = caller.caller_name
    pbx._set_last_app(one, app, "(Outgoing Line)")
    pbx._newexten(one)
    pbx._channel_event(
        "NewCallerid", one, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
    )
    if app != "AppDial":
        pbx._var_set(one, "DIALEDPEERNUMBER", dialstring)
    pbx._var_set(two, "DIALEDPEERNUMBER", dialstring)
    two.connected_num, two.connected_name = one.caller_num, one.caller_name
    pbx._channel_event("NewConnectedLine", two)
    pbx._local_bridge(one, two, optimize=local.group(3) is None)
    one._dialed_as = dialstring
    return one, two, dialstring


class _Call:
    """One Dial() or Queue() attempt from a caller to its callees."""

    def __init__(self, pbx: SimPBX, caller: SimChannel) -> None:
        self.pbx = pbx
        self.caller = caller
        self.callees: list[SimChannel] = []
        self.winner: SimChannel | None = None
        self.status = "NOANSWER"
        loop = asyncio.get_running_loop()
        self.decided: asyncio.Future[None] = loop.create_future()
        self.ended: asyncio.Future[int] = loop.create_future()
        self.on_answer: Callable[[SimChannel], None] = lambda callee: None

    def ring(self, callee: SimChannel, two: SimChannel, dialstring: str) -> None:
        self.callees.append(callee)
        callee._dialing = _Dialing(self._answered, self._failed)
        self.pbx._dial_begin(self.caller, callee, dialstring)
        self.pbx._start_pbx(two)

    def _answered(self, callee: SimChannel) -> None:
        if self.winner is not None or not self.caller.alive:
            return
        self.winner = callee
        self.on_answer(callee)
        if not self.decided.done():
            self.decided.set_result(None)

    def _failed(self, callee: SimChannel, reason: int, status: str) -> None:
        if callee in self.callees:
            self.callees.remove(callee)
            self.status = status
            self.pbx._dial_end(self.caller, callee, status)
        if not self.callees and self.winner is None and not self.decided.done():
            self.decided.set_result(None)

    def cancel(self, status: str = "CANCEL", cause: int = 0) -> None:
        """Stop ringing the callees that did not answer."""
        for callee in list(self.callees):
            if callee is self.winner or not callee.alive:
                continue
            self.callees.remove(callee)
            callee._dialing = None
            self.pbx._dial_end(self.caller, callee, status)
            self.pbx._hangup_pair(callee, cause)

    def bridge(self, callee: SimChannel, *, clear_exten: bool) -> None:
        pbx, caller = self.pbx, self.caller
        if caller._cdr is not None:
            caller._cdr.destination_channel = callee.name
        bridge = pbx._new_bridge()
        if clear_exten:
            callee.exten = ""
            pbx._newexten(callee)
        pbx._enter_bridge(bridge, callee)
        pbx._enter_bridge(bridge, caller)
        pbx._set_bridge_peers(bridge)

        def caller_out(cause: int) -> None:
            if not self.ended.done():
                self.ended.set_result(cause)

        caller._after_bridge = caller_out


async def _app_dial(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    args = _split_args(data)
    targets = [t for t in args[0].split("&") if t] if args else []
    timeout = float(args[1]) if len(args) > 1 and args[1] else None
    for name in _DIAL_VARIABLES:
        pbx._var_set(channel, name, "")
    call = _Call(pbx, channel)
    started = pbx.now()

    def answered(callee: SimChannel) -> None:
        pbx._var_set(channel, "DIALSTATUS", "ANSWER")
        pbx._var_set(channel, "DIALEDPEERNAME", callee.name)
        pbx._var_set(channel, "DIALEDPEERNUMBER", callee._dialed_as)
        pbx._flush_devices()
        pbx._flush_members()
        pbx._dial_end(channel, callee, "ANSWER")
        call.cancel("CANCEL", _ANSWERED_ELSEWHERE)
        pbx._answer(channel)
        call.bridge(callee, clear_exten=True)

    call.on_answer = answered
    for target in targets:
        pair = _callee_pair(pbx, channel, target, "AppDial")
        if pair is not None:
            call.ring(*pair)
    if not call.callees:
        pbx._var_set(channel, "DIALSTATUS", "CHANUNAVAIL")
        return 0
    channel._cleanups.append(call.cancel)
    outcome = await pbx._wait_for(channel, call.decided, timeout)
    if call.winner is None:
        status = {"timeout": "NOANSWER", "interrupt": "CANCEL"}.get(outcome, call.status)
        call.cancel(status, 0)
        with contextlib.suppress(ValueError):
            channel._cleanups.remove(call.cancel)
        pbx._var_set(channel, "DIALSTATUS", status)
        return 0
    with contextlib.suppress(ValueError):
        channel._cleanups.remove(call.cancel)
    answered_at = call.winner.answered_at or pbx.now()
    outcome = await pbx._wait_for(channel, call.ended, None)
    channel._after_bridge = None
    now = pbx.now()
    pbx._var_set(channel, "ANSWEREDTIME", str(int(now - answered_at)))
    pbx._var_set(channel, "ANSWEREDTIME_MS", str(int((now - answered_at) * 1000)))
    pbx._var_set(channel, "DIALEDTIME", str(int(now - started)))
    pbx._var_set(channel, "DIALEDTIME_MS", str(int((now - started) * 1000)))
    pbx._var_set(channel, "DIALSTATUS", "ANSWER")
    if outcome == "interrupt":
        return 0
    channel.hangupcause = call.ended.result() if call.ended.done() else NORMAL_CLEARING
    pbx._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
    return -1


def _queue_position(queue: SimQueue, channel: SimChannel) -> int:
    return queue.callers.index(channel) + 1 if channel in queue.callers else 0


def _queue_leave(pbx: SimPBX, queue: SimQueue, channel: SimChannel) -> int:
    position = _queue_position(queue, channel)
    if channel in queue.callers:
        queue.callers.remove(channel)
    queue.joined.pop(channel, None)
    if not queue.callers:
        pbx._set_cached_device(f"Queue:{queue.name}", _NOT_INUSE)
    pbx._channel_event(
        "QueueCallerLeave",
        channel,
        ("Queue", queue.name),
        ("Position", str(position)),
        ("Count", str(len(queue.callers))),
        privilege="agent,all",
    )
    return position


def _available_members(queue: SimQueue) -> list[SimQueueMember]:
    members = [
        m
        for m in queue.members
        if not m.paused and (m.status == _NOT_INUSE or (m.ringinuse and m.status == _INUSE))
    ]
    if queue.strategy == "ringall" or not members:
        return members
    start = queue._next_member % len(members)
    queue._next_member += 1
    return [members[start]]


async def _app_queue(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    args = _split_args(data)
    queue = pbx.queues.get(args[0]) if args else None
    if queue is None:
        pbx._var_set(channel, "QUEUESTATUS", "UNKNOWN")
        return 0
    timeout = float(args[4]) if len(args) > 4 and args[4] else None
    for name in _QUEUE_VARIABLES:
        pbx._var_set(channel, name, "")
    queue.callers.append(channel)
    joined = queue.joined[channel] = pbx.now()
    pbx._set_cached_device(f"Queue:{queue.name}", _RINGING_DEVICE)
    pbx._channel_event(
        "QueueCallerJoin",
        channel,
        ("Queue", queue.name),
        ("Position", str(len(queue.callers))),
        ("Count", str(len(queue.callers))),
        privilege="agent,all",
    )
    original_position = len(queue.callers)

    def abandon() -> None:
        if channel in queue.callers:
            moh_stop()
            position = _queue_position(queue, channel)
            queue.abandoned += 1
            pbx._channel_event(
                "QueueCallerAbandon",
                channel,
                ("Queue", queue.name),
                ("Position", str(position)),
                ("OriginalPosition", str(original_position)),
                ("HoldTime", str(int(pbx.now() - joined))),
                privilege="agent,all",
            )
            _queue_leave(pbx, queue, channel)

    channel._cleanups.append(abandon)
    moh_stop = _music_on_hold(pbx, channel, "default")
    deadline = None if timeout is None else joined + timeout
    while True:
        remaining = None if deadline is None else deadline - pbx.now()
        if remaining is not None and remaining <= 0:
            break
        members = _available_members(queue) if queue.callers[:1] == [channel] else []
        if not members:
            wait = (
                _QUEUE_RETRY_SECONDS if remaining is None else min(_QUEUE_RETRY_SECONDS, remaining)
            )
            if not await pbx.wait(channel, wait):
                break
            continue
        call = _Call(pbx, channel)
        ring_started = pbx.now()
        member_of: dict[SimChannel, SimQueueMember] = {}

        def answered(
            callee: SimChannel,
            call: _Call = call,
            member_of: dict[SimChannel, SimQueueMember] = member_of,
            ring_started: float = ring_started,
        ) -> None:
            member = member_of[callee]
            pbx._newexten(callee)
            pbx._dial_end(channel, callee, "ANSWER")
            call.cancel("CANCEL", _ANSWERED_ELSEWHERE)
            moh_stop()
            pbx._flush_devices()
            position = _queue_leave(pbx, queue, channel)
            pbx._var_set(channel, "QUEUEPOSITION", str(position))
            pbx._flush_members()
            hold = int(pbx.now() - joined)
            pbx._var_set(channel, "QUEUEWAIT", str(hold))
            pbx._var_set(channel, "QUEUEWAIT_MS", str(int((pbx.now() - joined) * 1000)))
            pbx._emit(
                "AgentConnect",
                "agent,all",
                channel.snapshot(),
                callee.snapshot("Dest"),
                [
                    ("Queue", queue.name),
                    ("Interface", member.interface),
                    ("MemberName", member.name),
                    ("HoldTime", str(hold)),
                    ("RingTime", str(int(pbx.now() - ring_started))),
                ],
            )
            queue.holdtime = hold
            call.bridge(callee, clear_exten=False)

        call.on_answer = answered
        for member in members:
            pair = _callee_pair(pbx, channel, member.interface, "AppQueue")
            if pair is None:
                continue
            one, two, _ = pair
            one._answer_location = (channel.context, channel.exten)
            member_of[one] = member
            pbx._emit(
                "AgentCalled",
                "agent,all",
                channel.snapshot(),
                one.snapshot("Dest"),
                [
                    ("Queue", queue.name),
                    ("Interface", member.interface),
                    ("MemberName", member.name),
                ],
            )
            call.callees.append(one)
            one._dialing = _Dialing(call._answered, call._failed)
            pbx._start_pbx(two)
            pbx._dial_begin(channel, one, member.interface)
        if not call.callees:
            if not await pbx.wait(channel, _QUEUE_RETRY_SECONDS):
                break
            continue
        ring = queue.ring_timeout if remaining is None else min(queue.ring_timeout, remaining)
        outcome = await pbx._wait_for(channel, call.decided, ring)
        if call.winner is None:
            for callee in list(call.callees):
                member = member_of[callee]
                pbx._emit(
                    "AgentRingNoAnswer",
                    "agent,all",
                    channel.snapshot(),
                    callee.snapshot("Dest"),
                    [
                        ("Queue", queue.name),
                        ("Interface", member.interface),
                        ("MemberName", member.name),
                        ("RingTime", str(int(pbx.now() - ring_started))),
                    ],
                )
            call.cancel("NOANSWER" if outcome == "timeout" else "CANCEL", 0)
            if outcome == "interrupt":
                break
            continue
        with contextlib.suppress(ValueError):
            channel._cleanups.remove(abandon)
        winner = call.winner
        member = member_of[winner]
        connected = winner.answered_at or pbx.now()
        outcome = await pbx._wait_for(channel, call.ended, None)
        channel._after_bridge = None
        talk = int(pbx.now() - connected)
        member.calls_taken += 1
        member.last_call = int(pbx.now())
        queue.completed += 1
        queue.talktime = talk
        now = pbx.now()
        pbx._var_set(channel, "ANSWEREDTIME", str(talk))
        pbx._var_set(channel, "ANSWEREDTIME_MS", str(int((now - connected) * 1000)))
        pbx._var_set(channel, "DIALEDTIME", str(int(now - joined)))
        pbx._var_set(channel, "DIALEDTIME_MS", str(int((now - joined) * 1000)))
        pbx._emit(
            "AgentComplete",
            "agent,all",
            [
                ("Queue", queue.name),
                ("Interface", member.interface),
                ("MemberName", member.name),
                ("HoldTime", str(queue.holdtime)),
                ("TalkTime", str(talk)),
                ("Reason", "caller" if outcome == "interrupt" else "agent"),
            ],
        )
        if outcome == "interrupt":
            return 0
        channel.hangupcause = call.ended.result() if call.ended.done() else NORMAL_CLEARING
        pbx._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
        return -1
    with contextlib.suppress(ValueError):
        channel._cleanups.remove(abandon)
    if channel.alive and channel in queue.callers:
        moh_stop()
        _queue_leave(pbx, queue, channel)
        pbx._var_set(channel, "QUEUESTATUS", "TIMEOUT")
    return 0
