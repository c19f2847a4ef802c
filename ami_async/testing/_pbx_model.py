"""The simulated PBX's data: states, causes, dialplan, queues, channels, Originate requests."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from ._pbx import SimPBX

__all__ = [
    "Application",
    "Dialplan",
    "EventSink",
    "OriginateRequest",
    "OriginateResult",
    "SimChannel",
    "SimQueue",
    "SimQueueMember",
    "cause_text",
    "state_text",
]

Headers: TypeAlias = list[tuple[str, str]]
EventSink: TypeAlias = Callable[[Headers], None]
"""Where the simulation sends each event (``[("Event", "Newchannel"), ...]``), synchronously."""
Application: TypeAlias = Callable[["SimPBX", "SimChannel", str], Awaitable["int | None"]]
"""A dialplan application: ``await app(pbx, channel, data)``; a negative result hangs up."""

# Channel states (include/asterisk/channelstate.h) and their ast_state2str names.
DOWN: Final = 0
RING: Final = 4
RINGING: Final = 5
UP: Final = 6
BUSY_STATE: Final = 7
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

_LAB_AGI: Final = "agi://127.0.0.1:4573/lab"
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
        # The call-flow captures (dial_noanswer ... hangup_causes).
        "300": ("Answer()", "ConfBridge(1234)"),
        "460": ("Busy(5)",),
        "470": ("Congestion(5)",),
        "900": ("Answer()", "Park()"),
        "2001": ("Dial(Local/2002@test,3)", "Hangup()"),
        "2002": ("Ringing()", "Wait(30)"),
        "2003": ("Dial(Local/460@test,10)", "Hangup()"),
        "2004": ("Dial(Local/470@test,10)", "Hangup()"),
        "2010": ("Dial(Local/2011@test,30)",),
        "2011": ("Answer()", "Wait(20)", "Hangup()"),
        "2012": ("Dial(Local/2013@test,20)",),
        "2013": ("Answer()", "Wait(3)", "Hangup()"),
        "2014": ("Set(FEATUREMAP(atxfer)=*2)", "Dial(Local/2011@test,30,T)"),
        "2015": ("Answer()", "Wait(6)", "Hangup()"),
        "2020": ("Dial(Local/2021@test,20)",),
        "2021": ("Dial(Local/2022@test,20)",),
        "2022": ("Answer()", "Wait(4)", "Hangup()"),
        "2030": ("Answer()", "Wait(1)", "Hangup(16)"),
        # The AGI captures (async_agi_*, fastagi_*): 721-723 dial SimAGI's FastAGI address.
        "720": ("Answer()", "AGI(agi:async)", "Hangup()"),
        "721": ("Answer()", f"AGI({_LAB_AGI}?mode=test&n=1,first arg,second arg)", "Hangup()"),
        "722": (f"AGI({_LAB_AGI}?mode=test&n=1,first arg,second arg)", "Hangup()"),
        "723": (f"AGI({_LAB_AGI})", "Set(AFTER=1)", "Wait(1)", "Hangup()"),
    },
    # res_parking's own context for lot "default" (spaces 7001-7020, park_and_retrieve.bin).
    "parkedcalls": {
        "700": ("Park()",),
        **{str(space): (f"ParkedCall(default,{space})",) for space in range(7001, 7021)},
    },
}
"""The ``[test]`` context of the lab the fixtures were recorded on (as far as the
recordings show it; 500 is Alice's device, paused in queue ``support``)."""

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


def separate_args(text: str, delim: str = ",", limit: int = 64) -> list[str]:
    """Split arguments as Asterisk's `AST_STANDARD_APP_ARGS` does (main/app.c).

    `delim` separates only outside double quotes, parentheses and square
    brackets (their nesting carries over from one argument to the next); the
    double quotes are removed, and a backslash is removed while the character
    after it is kept as is. The argument after `limit - 1` separators is the
    whole rest of the text, untouched. `"a,b"` gives `["a", "b"]`, `"a\\,b"` and
    `'"a,b"'` give `["a,b"]`, `"a,"` gives `["a", ""]`, `""` gives `[]`.
    """
    args: list[str] = []
    paren = bracket = 0
    quote = False
    pos, end = 0, len(text)
    after_delim = False
    while pos < end and len(args) < limit - 1:
        current: list[str] = []
        after_delim = False
        while pos < end:
            char = text[pos]
            pos += 1
            if char == '"' and delim != '"':
                quote = not quote
                continue
            if char == "\\":
                # A trailing backslash is simply dropped (Asterisk reads past the end).
                current.append(text[pos : pos + 1])
                pos += 1
                continue
            if char == delim and not (paren or quote or bracket):
                after_delim = True
                break
            if char == "(":
                paren += 1
            elif char == ")" and paren:
                paren -= 1
            elif char == "[":
                bracket += 1
            elif char == "]" and bracket:
                bracket -= 1
            current.append(char)
        args.append("".join(current))
    if pos < end:
        args.append(text[pos:])
    elif after_delim:
        args.append("")
    return args


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
    joined: dict[SimChannel, float] = field(default_factory=dict)
    """When each waiting caller joined (simulated time)."""
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
    closed: bool = False
    end: float | None = None
    context: str = ""
    exten: str = ""
    """The party it recorded ended (an unanswered Dial): the next application starts a new CDR."""


@dataclass(eq=False)
class _Bridge:
    uniqueid: str
    channels: list[SimChannel] = field(default_factory=list)
    kind: str = "basic"
    """BridgeType: ``basic`` (Dial, Bridge action), ``parking`` (a lot's holding bridge),
    ``base`` (a ConfBridge conference); only a basic bridge ends with its second party."""
    technology: str = "simple_bridge"
    creator: str = "<unknown>"
    name: str = "<unknown>"
    hidden: list[str] = field(default_factory=list)
    """Channels in it that make no events (a conference's announcer, ``CBAnn/1234-...``):
    counted in BridgeNumChannels and named first in BRIDGEPEER (conference_three.bin)."""
    left: Callable[[SimChannel], None] | None = None
    """Called after a channel's BridgeLeave (a parked call gives up, a conference member leaves)."""


@dataclass(eq=False)
class _Dialing:
    """Someone (Originate, Dial, Queue) waits for a Local ``;1`` to answer or fail."""

    answered: Callable[[SimChannel], None]
    failed: Callable[[SimChannel, int, str], None]
    ringing: Callable[[SimChannel], None] | None = None
    """The callee rings (a DialState event, and Dial passes the ringing on)."""
    cel_answer: bool = True
    """False when the dialer logs the channel's CEL ANSWER itself, later."""


class SimChannel:
    """One simulated channel. Read its attributes; change it through `SimPBX`."""

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
        self.half = half
        """1 or 2 for the halves of a Local channel, else 0."""
        self.device = device
        """The device whose state this channel changes (``Local/100@test``)."""
        self.caller_num = ""
        self.caller_name = ""
        self.connected_num = ""
        self.connected_name = ""
        self.ani = ""
        self.language = "en"
        self.account_code = ""
        self.appl = ""
        """The running application and its data (Status, CoreShowChannel, CEL)."""
        self.data = ""
        self.variables: dict[str, str] = {}
        """Channel variables (Setvar, Set(), Variable: headers of Originate)."""
        self.peer: SimChannel | None = None
        """The other half of a Local channel."""
        self.hangupcause = 0
        self.hangupsource = ""
        self.alive = True
        self.pbx = False
        """True while the channel runs the dialplan (it counts as a call)."""
        self.answered_at: float | None = None
        self._bridge: _Bridge | None = None
        self._cdr: _Cdr | None = None
        self._cdrs_done: list[_Cdr] = []  # finished records, written at hangup
        self._dialing: _Dialing | None = None
        self._task: asyncio.Task[None] | None = None
        self._goto: tuple[str, str, int] | None = None
        self._cep: tuple[str, str, int] | None = None  # where the last Newexten was
        self._held: asyncio.Future[None] | None = None  # bridged by the Bridge action
        self._optimize = False  # a Local half that may optimize away (no /n)
        self._interrupt = asyncio.Event()
        self._cleanups: list[Callable[[], None]] = []
        self._control = 0  # the last control frame seen (OriginateResponse Reason)
        self._cel_answered = False
        self._dialed_as = ""  # the dial string this channel was called with
        # What to do when a two-party bridge puts the channel out (Dial, Queue).
        self._after_bridge: Callable[[int], None] | None = None
        # Where a queue member's ;1 moves when it answers (queue_sales_answered.bin).
        self._answer_location: tuple[str, str] | None = None
        # In a bridge its application holds (ConfBridge, ParkedCall): when the other half of
        # its Local pair hangs up, it gets a HangupRequest and its application lets go
        # (conference_three.bin, park_and_retrieve.bin) instead of ending at once.
        self._bridge_app = False
        self._hangup_requested = False
        self._pending_callerid = False  # a caller id change shown after its Hangup

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
    response_event: bool = True
    """Async originate: send the OriginateResponse event."""


@dataclass
class OriginateResult:
    """How an Originate ended: answered (``reason == 4``) or not."""

    success: bool
    reason: int
    channel: SimChannel | None = None


# cdr.c: an unanswered record's disposition from the hangup cause (cdr.conf congestion=yes).
_CAUSE_DISPOSITION: Final[Mapping[int, str]] = {
    _BUSY: "BUSY",
    _CONGESTION: "CONGESTION",
    3: "FAILED",
    20: "FAILED",
    0: "FAILED",
}
# ... and from a Dial's status (the record of the dialing channel).
DIAL_DISPOSITION: Final[Mapping[str, str]] = {
    "ANSWER": "ANSWERED",
    "BUSY": "BUSY",
    "CONGESTION": "CONGESTION",
    "CHANUNAVAIL": "FAILED",
}


def cdr_disposition(answered: bool, cause: int) -> str:
    """A CDR's Disposition when nothing set it: ANSWERED, else by the hangup cause."""
    if answered:
        return "ANSWERED"
    return _CAUSE_DISPOSITION.get(cause, "NO ANSWER")


def _dial_status(cause: int) -> str:
    if cause == _BUSY:
        return "BUSY"
    if cause in (_CONGESTION, 42):
        return "CONGESTION"
    return "NOANSWER"
