"""The simulated PBX's simple dialplan applications (Answer, Wait, Set, Playback, ...)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._pbx_model import (
    _ANSWER_DELAY,
    _BUSY,
    _CONGESTION,
    _PLAYBACK_SECONDS,
    _REASON_BUSY,
    _REASON_CONGESTION,
    _REASON_RINGING,
    BUSY_STATE,
    NORMAL_CLEARING,
    UP,
    Headers,
    SimChannel,
    _split_args,
)

if TYPE_CHECKING:
    from ._pbx import SimPBX


logger = logging.getLogger("ami_async.testing")


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
    # The indication goes to the other side: a Local ;2's ;1 shows Ringing (dial_noanswer.bin).
    if channel.state != UP:
        pbx._control(channel, _REASON_RINGING)
        pbx._settle()
    return 0


async def _app_busy(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    # app_dial.c: a channel not up goes to state Busy first (dial_busy.bin).
    channel.hangupcause = _BUSY
    if channel.state != UP:
        pbx._set_state(channel, BUSY_STATE)
        pbx._flush_devices()
    pbx._control(channel, _REASON_BUSY)
    await pbx.wait(channel, float(data) if data.strip() else None)
    return -1


async def _app_congestion(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    channel.hangupcause = _CONGESTION
    if channel.state != UP:
        pbx._set_state(channel, BUSY_STATE)  # Congestion() too (dial_congestion.bin)
        pbx._flush_devices()
    pbx._control(channel, _REASON_CONGESTION)
    await pbx.wait(channel, float(data) if data.strip() else None)
    return -1
