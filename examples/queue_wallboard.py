"""A call-queue wallboard: callers waiting and agents available or busy, per queue, live.

`WallBoard` is pure state: ``board.apply(event)`` folds in one AMI event
and says whether anything shown changed; ``board.render()`` draws the board.
`follow` keeps one up to date from a client: it subscribes to the queue
events, seeds the board from ``QueueStatus``, then applies every event,
calling ``on_change`` (by default: print the board) after each change::

    python examples/queue_wallboard.py                 # AMI_HOST, AMI_USERNAME, ... from env
    python examples/queue_wallboard.py --fake          # an embedded simulated PBX

    queue      waiting  available  busy  paused  unavailable
    sales            1          0     1       0            0
    support          0          1     0       1            0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ami_async import (
    AMIError,
    Client,
    Event,
    Subscription,
    SubscriptionOverflowError,
)

__all__ = ["EVENTS", "MemberState", "QueueBoard", "WallBoard", "follow", "main"]

#: The events the board follows (Asterisk 13 and later names).
EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "QueueMemberStatus",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "QueueMemberPause",
)

# A member's Status is the device state of its interface (AST_DEVICE_* in
# include/asterisk/devicestate.h): 0 unknown, 1 not in use, 2 in use, 3 busy,
# 4 invalid, 5 unavailable, 6 ringing, 7 ringing while in use, 8 on hold.
_UNAVAILABLE = frozenset({"4", "5"})
_BUSY = frozenset({"2", "3", "6", "7", "8"})
# EVENTS, plus the items of a QueueStatus answer.
_FOLLOWED = frozenset({*EVENTS, "QueueParams", "QueueMember", "QueueEntry"})


class MemberState(Enum):
    """How a wallboard counts a queue member."""

    AVAILABLE = "available"  #: logged in, idle, not paused: the queue can ring it
    BUSY = "busy"  #: on a call, or ringing
    PAUSED = "paused"  #: logged in but paused (break, wrap-up)
    UNAVAILABLE = "unavailable"  #: its device is unreachable (phone unregistered)


def member_state(status: str, paused: str, in_call: str = "0") -> MemberState:
    """Classify a member from its ``Status``, ``Paused`` and ``InCall`` headers."""
    if status in _UNAVAILABLE:
        return MemberState.UNAVAILABLE
    if paused == "1":
        return MemberState.PAUSED
    # app_queue rings a member whose state is "not in use" or "unknown" (0, 1).
    if status in _BUSY or in_call == "1":
        return MemberState.BUSY
    return MemberState.AVAILABLE


@dataclass
class QueueBoard:
    """One queue: its waiting callers (Uniqueid -> channel) and members (interface -> state)."""

    name: str
    callers: dict[str, str] = field(default_factory=dict)
    members: dict[str, MemberState] = field(default_factory=dict)

    @property
    def waiting(self) -> int:
        return len(self.callers)

    def count(self, state: MemberState) -> int:
        return sum(1 for s in self.members.values() if s is state)

    def row(self) -> tuple[int, int, int, int, int]:
        return (
            self.waiting,
            self.count(MemberState.AVAILABLE),
            self.count(MemberState.BUSY),
            self.count(MemberState.PAUSED),
            self.count(MemberState.UNAVAILABLE),
        )


class WallBoard:
    """Per-queue counts, built from ``QueueStatus`` items and kept current by queue events.

    Every change is idempotent (a caller is added or removed by Uniqueid, a member's
    state is replaced), so applying an event the seed already reflected is harmless.
    """

    def __init__(self) -> None:
        self.queues: dict[str, QueueBoard] = {}

    def queue(self, name: str) -> QueueBoard:
        board = self.queues.get(name)
        if board is None:
            board = self.queues[name] = QueueBoard(name)
        return board

    def load(self, items: Iterable[Event]) -> None:
        """Replace everything with a ``QueueStatus`` answer (QueueParams/Member/Entry items)."""
        self.queues.clear()
        for item in items:
            self.apply(item)

    def apply(self, event: Event) -> bool:
        """Fold in one event; True if a count shown on the board changed."""
        name = event.name
        queue_name = event.get("Queue")
        if name not in _FOLLOWED or not queue_name:
            return False
        before = {q: b.row() for q, b in self.queues.items()}
        queue = self.queue(queue_name)  # QueueParams: a queue with nobody in it yet
        # A caller's key: its Uniqueid (QueueEntry has one since Asterisk 12), else its channel.
        caller = event.get("Uniqueid") or event.get("Channel", "")
        # A member's key: QueueStatus items name the interface Location; events, Interface.
        interface = event.get("Interface") or event.get("Location", "")
        if name in ("QueueCallerJoin", "QueueEntry"):
            queue.callers[caller] = event.get("Channel", "")
        elif name == "QueueCallerLeave":
            queue.callers.pop(caller, None)
        elif name == "QueueMemberRemoved":
            queue.members.pop(interface, None)
        elif name != "QueueParams":  # QueueMember, QueueMemberStatus, -Added, -Pause
            queue.members[interface] = member_state(
                event.get("Status", "0"), event.get("Paused", "0"), event.get("InCall", "0")
            )
        return {q: b.row() for q, b in self.queues.items()} != before

    def render(self) -> str:
        """The board as a small text table, one line per queue, sorted by name."""
        width = max([len("queue"), *(len(q) for q in self.queues)])
        head = f"{'queue':<{width}}  waiting  available  busy  paused  unavailable"
        lines = [head]
        for name in sorted(self.queues):
            waiting, available, busy, paused, unavailable = self.queues[name].row()
            lines.append(
                f"{name:<{width}}  {waiting:>7}  {available:>9}  {busy:>4}  {paused:>6}  "
                f"{unavailable:>11}"
            )
        return "\n".join(lines)


def print_board(board: WallBoard) -> None:
    print(board.render(), end="\n\n", flush=True)


async def follow(
    client: Client,
    board: WallBoard | None = None,
    on_change: Callable[[WallBoard], None] | None = None,
    *,
    resync_check: float = 1.0,
) -> None:
    """Keep ``board`` current from ``client`` until cancelled.

    Raises the client's error if it is closed or gives up reconnecting.
    The board is seeded again after a reconnect (events sent while the link was
    down never reach us; ``client.reconnects`` is checked at least every
    ``resync_check`` seconds) and after this subscription overflowed.
    """
    board = board if board is not None else WallBoard()
    show = on_change if on_change is not None else print_board
    # Subscribe first, then ask for the state: an event that happens while the
    # QueueStatus answer is on its way is queued, and applied after the seed.
    async with client.events(*EVENTS) as events:
        board.load(await client.queue_status())
        show(board)
        synced_at = client.reconnects
        stale = False
        while True:
            try:
                event: Event | None = await events.get(timeout=resync_check)
            except TimeoutError:
                event = None
            except SubscriptionOverflowError:
                event, stale = None, True  # we fell behind and events were lost
            if event is not None and board.apply(event):
                show(board)
            if client.reconnects != synced_at:
                # Whatever happened while the link was down was never sent to us.
                stale, synced_at = True, client.reconnects
            if stale and client.connected:
                _apply_queued(events, board)  # older than the snapshot to come
                try:
                    board.load(await client.queue_status())
                except AMIError:
                    continue  # lost again, or refused: try at the next check
                stale = False
                show(board)


def _apply_queued(events: Subscription, board: WallBoard) -> None:
    while True:
        try:
            event = events.get_nowait()
        except SubscriptionOverflowError:
            continue
        if event is None:
            return
        board.apply(event)


@contextlib.asynccontextmanager
async def ami_client(args: argparse.Namespace) -> AsyncIterator[Client]:
    """A connected client, to the server ``args`` name or to an embedded simulated PBX."""
    if not args.fake:
        async with Client(
            args.host, args.port, username=args.username, secret=args.secret
        ) as client:
            yield client
        return
    from ami_async.testing import FakeAsterisk

    # The simulated PBX has the queues of the recordings: "sales" (Bob, free) and
    # "support" (Alice, paused); a task sends callers into them.
    async with FakeAsterisk(time_scale=DEMO_TIME_SCALE) as pbx:
        username, secret = next(iter(pbx.users.items()))
        async with Client(pbx.host, pbx.port, username=username, secret=secret) as client:
            callers = asyncio.ensure_future(_demo_callers(client))
            try:
                yield client
            finally:
                callers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await callers


#: --fake: seconds between two demo callers, and real seconds per simulated second.
DEMO_STEP = 3.0
DEMO_TIME_SCALE = 1.0


async def _demo_callers(client: Client) -> None:
    """--fake: a caller rings sales (extension 410) or support (400), again and again."""
    for n in itertools.count():
        await asyncio.sleep(DEMO_STEP)
        exten = "410" if n % 3 else "400"  # support's only agent is paused: callers pile up
        with contextlib.suppress(AMIError):
            await client.originate(f"Local/{exten}@test", application="Wait", data="20", wait=False)


async def main(argv: Sequence[str] | None = None) -> int:
    """Follow the queues until Ctrl-C; returns the exit status."""
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="queue_wallboard.py", description="Print a live board of the call queues."
    )
    parser.add_argument("--host", default=env.get("AMI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env.get("AMI_PORT", "5038")))
    parser.add_argument("--username", default=env.get("AMI_USERNAME"))
    parser.add_argument("--secret", default=env.get("AMI_SECRET"), help="better: AMI_SECRET")
    parser.add_argument(
        "--fake", action="store_true", help="run against an embedded simulated PBX, with callers"
    )
    args = parser.parse_args(argv)
    if not args.fake and not (args.username and args.secret):
        parser.error("give --username and --secret (or AMI_USERNAME and AMI_SECRET), or --fake")
    try:
        async with ami_client(args) as client:
            await follow(client)
    except AMIError as exc:
        print(f"queue_wallboard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main()))
