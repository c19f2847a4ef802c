"""The simulated PBX's Queue() application: callers wait, members are rung, one answers."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from ._pbx_apps import _music_on_hold
from ._pbx_dial import _Call, _callee_pair
from ._pbx_model import (
    _ANSWERED_ELSEWHERE,
    _INUSE,
    _NOT_INUSE,
    _QUEUE_RETRY_SECONDS,
    _QUEUE_VARIABLES,
    _RINGING_DEVICE,
    NORMAL_CLEARING,
    SimChannel,
    SimQueue,
    SimQueueMember,
    _Dialing,
    _split_args,
)

if TYPE_CHECKING:
    from ._pbx import SimPBX


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
        completed: list[str] = []

        def complete(
            reason: str,
            winner: SimChannel = winner,
            member: SimQueueMember = member,
            connected: float = connected,
            completed: list[str] = completed,
        ) -> None:
            """AgentComplete as the member leaves (queue_call_answered.bin: between its ;2's
            Hangup and the bridge's end; with both snapshots, which queue_sales_answered.bin,
            the same call, lost in a race).
            """
            if completed:
                return
            completed.append(reason)
            talk = int(pbx.now() - connected)
            member.calls_taken += 1
            member.last_call = int(pbx.now())
            queue.completed += 1
            queue.talktime = talk
            pbx._emit(
                "AgentComplete",
                "agent,all",
                channel.snapshot(),
                winner.snapshot("Dest"),
                [
                    ("Queue", queue.name),
                    ("Interface", member.interface),
                    ("MemberName", member.name),
                    ("HoldTime", str(queue.holdtime)),
                    ("TalkTime", str(talk)),
                    ("Reason", reason),
                ],
            )

        winner._cleanups.append(lambda: complete("agent"))
        outcome = await pbx._wait_for(channel, call.ended, None)
        channel._after_bridge = None
        complete("caller" if outcome == "interrupt" else "agent")
        now = pbx.now()
        pbx._var_set(channel, "ANSWEREDTIME", str(int(now - connected)))
        pbx._var_set(channel, "ANSWEREDTIME_MS", str(int((now - connected) * 1000)))
        pbx._var_set(channel, "DIALEDTIME", str(int(now - joined)))
        pbx._var_set(channel, "DIALEDTIME_MS", str(int((now - joined) * 1000)))
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
