"""The simulated PBX's Local channel optimization: a Local pair bridged on both sides leaves."""

from __future__ import annotations

import asyncio

from ._pbx_atxfer import _PbxAtxfer
from ._pbx_model import NORMAL_CLEARING, SimChannel, _Bridge


class _PbxLocal(_PbxAtxfer):
    def _bridged(self, bridge: _Bridge) -> None:
        """A two-party bridge is complete: a Local half in it may optimize away, soon."""
        self._spawn(self._optimize_soon(bridge))

    async def _optimize_soon(self, bridge: _Bridge) -> None:
        await asyncio.sleep(0)  # once the Dial that made the bridge waits on it
        for channel in list(bridge.channels):
            peer = channel.peer
            if channel.half and peer is not None and channel._optimize:
                one, two = (channel, peer) if channel.half == 1 else (peer, channel)
                if self._can_optimize(one, two):
                    self._optimize(one, two)
                    return

    @staticmethod
    def _can_optimize(one: SimChannel, two: SimChannel) -> bool:
        first, second = one._bridge, two._bridge
        return (
            one.alive
            and two.alive
            and first is not None
            and second is not None
            and first is not second
            and len(first.channels) == 2
            and len(second.channels) == 2
        )

    def _optimize(self, one: SimChannel, two: SimChannel) -> None:
        """``Local/x;1`` and ``;2`` leave; the party with ``;1`` takes ``;2``'s place.

        As local_optimization.bin shows it for a Dial chain 2020 -> 2021 -> 2022:
        `LocalOptimizationBegin`, the source (2020's caller leg) moves from the
        ``;1``'s bridge into the ``;2``'s, `LocalOptimizationEnd` (``Success: No``
        as Asterisk 22 writes it), then the pair hangs up: the ``;2``'s Dial
        ends, and the ``;1`` is left alone in the old bridge. The source's CDR
        ends and a new one records the new party.
        """
        first, second = one._bridge, two._bridge
        assert first is not None and second is not None
        (source,) = one.bridge_peers
        (target,) = two.bridge_peers
        self._cel_bridge_exit(source)
        self._cel_bridge_exit(two)
        number = self._optimizations
        self._optimizations += 1
        self._emit(
            "LocalOptimizationBegin",
            "call,all",
            one.snapshot("LocalOne"),
            two.snapshot("LocalTwo"),
            source.snapshot("Source"),
            [("DestUniqueId", two.uniqueid), ("Id", str(number))],
        )
        self._quietly_leave(source, first)
        self._var_set(two, "BRIDGEPEER", "")
        self._quietly_leave(two, second)
        self._enter_bridge(second, source, swap=two.uniqueid)
        self._set_bridge_peers(second)
        self._var_set(one, "BRIDGEPEER", "")
        self._emit(
            "LocalOptimizationEnd",
            "call,all",
            one.snapshot("LocalOne"),
            two.snapshot("LocalTwo"),
            [("Success", "No"), ("Id", str(number))],
        )
        self._fork_cdr(source, target.name)
        after, two._after_bridge = two._after_bridge, None
        if after is not None:
            after(NORMAL_CLEARING)
        self._settle()

    def _quietly_leave(self, channel: SimChannel, bridge: _Bridge) -> None:
        """BridgeLeave without the CEL (written before) and without touching the peers."""
        bridge.channels.remove(channel)
        channel._bridge = None
        self._emit("BridgeLeave", "call,all", self._bridge_headers(bridge), channel.snapshot())
