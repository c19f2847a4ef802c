"""The simulated PBX's ConfBridge(): conferences in a softmix bridge, as app_confbridge does it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._pbx_model import _INUSE, _NOT_INUSE, NORMAL_CLEARING, UP, Headers, SimChannel, _Bridge, _Cdr
from ._pbx_park import _PbxPark

if TYPE_CHECKING:
    from ._pbx import SimPBX

_UNKNOWN_DEVICE = 0


@dataclass(eq=False)
class Conference:
    """A conference running now (read it; ``ConfBridge(name)`` makes one)."""

    name: str
    bridge: _Bridge
    members: list[SimChannel] = field(default_factory=list)
    joined: dict[SimChannel, float] = field(default_factory=dict)


class _PbxConf(_PbxPark):
    """ConfBridge as conference_three.bin shows it for Local channels."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conferences: dict[str, Conference] = {}
        """The conferences running now, by name."""
        self.applications["confbridge"] = _app_confbridge

    def _conference_headers(self, conference: Conference) -> Headers:
        return [("Conference", conference.name), *self._bridge_headers(conference.bridge)]

    def conference_join(self, channel: SimChannel, name: str) -> Conference:
        """The channel joins conference ``name`` (started if it does not run).

        A conference starts with a softmix bridge (`BridgeCreate`, type
        ``base``) whose announcer channel (``CBAnn/<name>-...``) makes no
        events but is counted and named as a peer, `ConfbridgeStart`, and the
        device ``confbridge:<name>`` in use. Each member's `BridgeEnter`,
        `BRIDGEPEER` of everyone, `ConfbridgeJoin`. Members keep their own
        Linkedids. Each earlier member's CDR records the newcomer (a second
        newcomer forks another record), as Asterisk's CDRs pair the parties.
        """
        conference = self.conferences.get(name)
        if conference is None:
            bridge = self._new_bridge("base", "softmix", "ConfBridge", name)
            bridge.hidden.append(f"CBAnn/{name}-{self._local_seq:08x};2")
            self._local_seq += 1
            conference = Conference(name, bridge)
            bridge.left = self._conference_left
            self.conferences[name] = conference
            self._emit("ConfbridgeStart", "call,all", self._conference_headers(conference))
            self._set_cached_device(f"confbridge:{name}", _INUSE)
        now = self.now()
        for member in conference.members:
            cdr = member._cdr
            if cdr is None:
                continue
            if cdr.destination_channel:
                member._cdrs_done.append(cdr)  # still open: both end at the hangup
                member._cdr = _Cdr(
                    now,
                    answer=now,
                    last_app=cdr.last_app,
                    last_data=cdr.last_data,
                    destination_channel=channel.name,
                )
            else:
                cdr.destination_channel = channel.name
        conference.members.append(channel)
        conference.joined[channel] = now
        self._enter_bridge(conference.bridge, channel)
        self._set_bridge_peers(conference.bridge)
        self._emit(
            "ConfbridgeJoin",
            "call,all",
            self._conference_headers(conference),
            channel.snapshot(),
            [("Admin", "No"), ("Muted", "No")],
        )
        self._settle()
        return conference

    def _conference_left(self, channel: SimChannel) -> None:
        """The conference bridge's leave hook: the others' BRIDGEPEER, `ConfbridgeLeave`;
        the last member out ends the conference (`ConfbridgeEnd`, `BridgeDestroy`)."""
        conference = next((c for c in self.conferences.values() if channel in c.members), None)
        if conference is None:
            return
        conference.members.remove(channel)
        conference.joined.pop(channel, None)
        bridge = conference.bridge
        if conference.members:
            self._set_bridge_peers(bridge)
        else:
            self._set_cached_device(f"confbridge:{conference.name}", _NOT_INUSE)
        self._emit(
            "ConfbridgeLeave",
            "call,all",
            self._conference_headers(conference),
            channel.snapshot(),
            [("Admin", "No")],
        )
        if conference.members:
            return
        self._emit("ConfbridgeEnd", "call,all", self._conference_headers(conference))
        del self.conferences[conference.name]
        announcer = bridge.hidden[0].rsplit("-", 1)[0] if bridge.hidden else ""
        bridge.hidden.clear()
        self._emit("BridgeDestroy", "call,all", self._bridge_headers(bridge))
        if announcer:
            # The announcer channel goes with the conference (conference_three.bin).
            self._set_cached_device(announcer, _INUSE)
            self._set_cached_device(announcer, _UNKNOWN_DEVICE)

    def conference_list_items(self, name: str) -> list[Headers]:
        """ConfbridgeList items of a conference's members (no Privilege header)."""
        conference = self.conferences[name]
        now = self.now()
        flags = ("Admin", "MarkedUser", "WaitMarked", "EndMarked", "EndMarkedAny", "Waiting")
        return [
            [
                ("Event", "ConfbridgeList"),
                ("Conference", name),
                *((flag, "No") for flag in flags),
                ("Muted", "No"),
                ("Talking", "No"),
                ("AnsweredTime", str(int(now - conference.joined.get(member, now)))),
                *member.snapshot(),
            ]
            for member in conference.members
        ]


async def _app_confbridge(pbx: SimPBX, channel: SimChannel, data: str) -> int:
    """ConfBridge(name): answer, join, stay until put out or the caller hangs up."""
    name = data.split(",")[0].strip()
    if not name:
        return -1
    if channel.state != UP:
        pbx._answer(channel)
    pbx.conference_join(channel, name)
    await pbx._hold_in_bridge(channel)
    if not channel.alive or channel._goto is not None:
        return 0
    pbx._var_set(channel, "CONFBRIDGE_RESULT", "HANGUP")
    channel.hangupcause = channel.hangupcause or NORMAL_CLEARING
    pbx._channel_event("SoftHangupRequest", channel, ("Cause", str(NORMAL_CLEARING)))
    return -1
