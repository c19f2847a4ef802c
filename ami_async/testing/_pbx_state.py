"""The simulated PBX's state: configuration, clock, variables, events, device and member states."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from ._agi_sim import SimAGI, app_agi
from ._pbx_apps import (
    _app_answer,
    _app_busy,
    _app_congestion,
    _app_goto,
    _app_hangup,
    _app_music_on_hold,
    _app_noop,
    _app_playback,
    _app_ringing,
    _app_set,
    _app_user_event,
    _app_wait,
)
from ._pbx_dial import _app_dial
from ._pbx_model import (
    _DEVICE_TEXT,
    _INUSE,
    _INVALID,
    _LOCAL,
    _NOT_INUSE,
    _VARIABLE_REF,
    LAB_DIALPLAN,
    UP,
    Application,
    Dialplan,
    EventSink,
    Headers,
    SimChannel,
    SimQueue,
    SimQueueMember,
    _Cdr,
    cdr_disposition,
    state_text,
)
from ._pbx_queue import _app_queue

if TYPE_CHECKING:
    from ._pbx import SimPBX


logger = logging.getLogger("ami_async.testing")


# -- the PBX ----------------------------------------------------------------------------


APPLICATIONS: Final[Mapping[str, Application]] = {
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
    "agi": app_agi,
}
"""The built-in dialplan applications, by lower-case name."""


class _PbxState:
    """The PBX's configuration, clock, lookups and event writing (`SimPBX` adds the calls)."""

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
        self.channels: dict[str, SimChannel] = {}
        """Live channels by name, oldest first."""
        self.dialplan = Dialplan()
        self.queues: dict[str, SimQueue] = {}
        self.global_variables: dict[str, str] = {}
        """Global variables (Setvar/Getvar without a Channel, ``Set(GLOBAL(x)=...)``)."""
        self.astdb: dict[str, str] = {}
        """The AstDB as ``{"/family/key": value}``, for the ``DB()`` function."""
        self.applications: dict[str, Application] = dict(APPLICATIONS)
        self.agi = SimAGI(cast("SimPBX", self))
        """AGI: where ``agi://`` dials, the caller's scripted digits, every run (`SimAGI`)."""
        self.calls_processed = 0
        """Channels that ran the dialplan, ever / now (``core show channels``)."""
        self.active_calls = 0
        self._uniqueid_seq = 0
        self._linkedid_age: dict[str, int] = {}
        self._optimizations = 0  # LocalOptimizationBegin/End Id
        """Which Linkedid is older (a bridge gives all its channels the oldest)."""
        self._local_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Event | None = None
        self._pending_devices: list[tuple[str, int | None]] = []
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
        """Write the channel's CDRs (those a Dial closed, then the open one)."""
        cdr, channel._cdr = channel._cdr, None
        done, channel._cdrs_done = channel._cdrs_done, []
        if not self.cdr:
            return
        for record in [*done, *([cdr] if cdr is not None else [])]:
            self._write_cdr(channel, record)

    def _write_cdr(self, channel: SimChannel, cdr: _Cdr) -> None:
        end = self.now()
        answered = cdr.answer
        disposition = cdr.disposition or cdr_disposition(answered is not None, channel.hangupcause)
        caller_id = f'"{channel.caller_name}" <{channel.caller_num}>'
        self._emit(
            "Cdr",
            "cdr,all",
            [
                ("AccountCode", channel.account_code),
                ("Source", channel.caller_num),
                ("Destination", cdr.exten or channel.exten),
                ("DestinationContext", cdr.context or channel.context),
                ("CallerID", caller_id),
                ("Channel", channel.name),
                ("DestinationChannel", cdr.destination_channel),
                ("LastApplication", cdr.last_app),
                ("LastData", cdr.last_data),
                ("StartTime", self._timestamp(cdr.start)),
                ("AnswerTime", self._timestamp(answered) if answered is not None else ""),
                ("EndTime", self._timestamp(cdr.end or end)),
                ("Duration", str(int((cdr.end or end) - cdr.start))),
                (
                    "BillableSeconds",
                    str(int((cdr.end or end) - answered)) if answered is not None else "0",
                ),
                ("Disposition", disposition),
                ("AMAFlags", "DOCUMENTATION"),
                ("UniqueID", channel.uniqueid),
                ("UserField", ""),
            ],
        )

    def _close_cdr(self, channel: SimChannel, disposition: str = "") -> None:
        """The party of the channel's CDR is gone: it ends now, a new one starts when it goes on."""
        cdr = channel._cdr
        if cdr is None:
            return
        cdr.closed = True
        cdr.end = self.now()
        cdr.context, cdr.exten = channel.context, channel.exten
        if disposition:
            cdr.disposition = disposition

    def _fork_cdr(self, channel: SimChannel, destination: str) -> None:
        """The channel's party changes: its record ends, a new one (same application) starts
        with ``destination`` (local_optimization.bin, park_and_retrieve.bin)."""
        old = channel._cdr
        if old is None:
            return
        self._close_cdr(channel)
        channel._cdrs_done.append(old)
        now = self.now()
        channel._cdr = _Cdr(
            now,
            answer=now,
            last_app=old.last_app,
            last_data=old.last_data,
            destination_channel=destination,
        )

    def _set_last_app(self, channel: SimChannel, app: str, data: str) -> None:
        channel.appl, channel.data = app, data
        if channel._cdr is not None and channel._cdr.closed:
            channel._cdrs_done.append(channel._cdr)
            now = self.now()
            channel._cdr = _Cdr(now, answer=now if channel.state == UP else None)
        if channel._cdr is not None:
            channel._cdr.last_app, channel._cdr.last_data = app, data

    # -- device and queue member states --------------------------------------------------

    def _device_changed(self, device: str, *, ending: Collection[SimChannel] | None = None) -> None:
        """A channel of ``device`` changed state or ended (``ending``: with these channels).

        Asterisk reads a device's state a moment later, on a thread of its own:
        a Local device is NOT_INUSE when its channel ends if the other calls to
        the same extension end with it (the parties of a two-party bridge,
        ``ending``: bridge_action.bin), INUSE while another one stays up
        (conference_three.bin).
        """
        if device:
            known = None
            if ending is not None and self.device_state(device) != _INVALID:
                known = self._local_state(device, ending)
            self._pending_devices.append((device, known))

    def _local_state(self, device: str, ending: Collection[SimChannel]) -> int:
        for channel in self.channels.values():
            if (
                channel.device == device
                and channel.half == 1
                and channel.alive
                and channel not in ending
            ):
                return _INUSE
        return _NOT_INUSE

    def _flush_devices(self) -> None:
        """DeviceStateChange for each pending change; queue members see it after."""
        pending, self._pending_devices = self._pending_devices, []
        for device, known in pending:
            state = self.device_state(device) if known is None else known
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
