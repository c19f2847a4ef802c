"""Issue 12, item 2: action sessions (``Client(..., action_sessions=N)``).

N more sessions log in with events off; the actions that block Asterisk's
session (a synchronous Originate, Command, Reload, ``blocking=True``) run
there, everything else on the main session. The fake answers one action at a
time per session, as Asterisk does, so an action held at a gate on the fake
(`Gate`) keeps its session busy exactly as a slow Asterisk action would: the
tests below show what can and cannot get through meanwhile without timing
anything. Bounds are hang checks ("within WAIT seconds").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from _waiting import eventually as wait_until

from ami_async import (
    ActionTimeoutError,
    AMIConnectionError,
    Client,
    ConnectionLostError,
    Message,
)
from ami_async._compat import timeout as _timeout
from ami_async.message import new_response
from ami_async.testing import FakeAsterisk, FakeSession, FakeUser, make_response

SECRET = "s3cr3t-sessions"
WAIT = 5.0  # the bound on every wait in this file
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAsterisk]:
    async with FakeAsterisk(users={"admin": SECRET}, pbx=False, auth_failure_delay=0.01) as server:
        yield server


def client_for(fake: FakeAsterisk, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "ping_interval": None,
        "timeout": WAIT,
        "action_timeout": WAIT,
        "reconnect_delay": 0.01,
        "reconnect_max_delay": 0.05,
        "action_sessions": 2,
    }
    settings.update(options)
    return Client(fake.host, fake.port, username="admin", secret=SECRET, **settings)


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (at most WAIT seconds) until ``condition()`` holds."""
    await wait_until(condition, what, timeout=WAIT)


def up(fake: FakeAsterisk, events: str) -> list[FakeSession]:
    """The fake's logged-in, open sessions whose event mask is ``events`` (on / off)."""
    return [
        s for s in fake.sessions if s.authenticated and not s.closed and s.events_mask == events
    ]


async def sessions_back(fake: FakeAsterisk, client: Client, count: int, what: str) -> None:
    """Wait until ``count`` action sessions are up as the fake sees them (it took their
    Login) and as the client does (it read the answer): before that, work may still go to
    the main session."""
    await eventually(lambda: len(up(fake, "off")) == count, what)
    await eventually(
        lambda: client._sessions is not None and client._sessions.connected == count,
        f"{what} (the client's side)",
    )


def main_session(fake: FakeAsterisk) -> FakeSession:
    (session,) = up(fake, "on")
    return session


def names(session: FakeSession) -> list[str]:
    """The actions ``session`` received, in order, Login and keepalive Pings left out."""
    return [a["Action"] for a in session.actions if a["Action"].lower() not in ("login", "ping")]


def pings(session: FakeSession) -> int:
    return sum(1 for a in session.actions if a["Action"].lower() == "ping")


class Gate:
    """Answers actions on the fake; the ``held`` ones wait until `open` (one session each:
    the fake, like Asterisk, reads a session's next action only after the current one)."""

    def __init__(self, fake: FakeAsterisk) -> None:
        self.fake = fake
        self.opened = asyncio.Event()
        #: (action name, the session it came on, the action), in arrival order.
        self.arrived: list[tuple[str, FakeSession, Message]] = []

    def answer(self, name: str, *, held: bool = False) -> None:
        async def handler(session: FakeSession, action: Message) -> list[tuple[str, str]]:
            self.arrived.append((name, session, action))
            if held:
                with contextlib.suppress(asyncio.TimeoutError):
                    async with _timeout(WAIT):
                        await self.opened.wait()
            # Each answer says which action it answers: a late one cannot pass for another's.
            said = action.get("Command") or action.get("Channel") or name
            return make_response(action, "Success", Output=f"done: {said}")

        self.fake.on_action(name, handler)

    def open(self) -> None:
        self.opened.set()

    def sessions_of(self, name: str) -> list[FakeSession]:
        return [session for action, session, _ in self.arrived if action == name]

    async def wait_arrived(self, name: str, count: int) -> None:
        await eventually(lambda: len(self.sessions_of(name)) >= count, f"{count} {name} arrived")


@pytest.fixture
def held(fake: FakeAsterisk) -> Gate:
    """The fake's Command held at a gate (`Gate.open` lets them all through)."""
    gate = Gate(fake)
    gate.answer("Command", held=True)
    return gate


async def held_command(client: Client, gate: Gate, text: str = "slow") -> asyncio.Task[str]:
    """A Command sent from a task of its own, returned once it is held on the fake."""
    task = asyncio.ensure_future(client.command(text))
    await gate.wait_arrived("Command", len(gate.sessions_of("Command")) + 1)
    return task


def accept_login(session: FakeSession, action: Message) -> list[tuple[str, str]]:
    """What the fake's Login does, for a Login handler that decides when to do it."""
    session.authenticated = True
    session.username = action["Username"]
    session.events_mask = action.get("Events", "on") or "on"
    return make_response(action, "Success", Message="Authentication accepted")


async def done_within(task: asyncio.Future[Any], seconds: float) -> bool:
    """Whether ``task`` ends within ``seconds`` (a bound for what must *not* happen yet)."""
    done, _ = await asyncio.wait({task}, timeout=seconds)
    return bool(done)


# -- logging in ----------------------------------------------------------------------


async def test_action_sessions_log_in_with_events_off_next_to_the_main_one(
    fake: FakeAsterisk,
) -> None:
    async with client_for(fake, action_sessions=2) as client:
        # connect() returns once their first attempts are over: no waiting needed.
        assert len(up(fake, "on")) == 1
        extra = up(fake, "off")
        assert len(extra) == 2
        for session in extra:
            login = session.actions[0]
            assert login["Action"] == "Login"
            assert login["Events"] == "off"
            assert login["Username"] == "admin"
        assert client.action_sessions == 2
        assert client.connected
        # The events reach the main session only (the others asked for none).
        async with client.events("UserEvent") as events:
            await fake.emit("UserEvent", {"Privilege": "user,all", "UserEvent": "Hello"})
            event = await events.get(timeout=WAIT)
        assert event["UserEvent"] == "Hello"


async def test_action_sessions_zero_negative_and_not_an_integer(fake: FakeAsterisk) -> None:
    for bad in (-1, -100, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="action_sessions"):
            client_for(fake, action_sessions=bad)
    gate = Gate(fake)
    gate.answer("Command")
    async with client_for(fake, action_sessions=0) as client:
        assert client.action_sessions == 0
        assert await client.command("core show uptime") == "done: core show uptime"
        assert len(fake.sessions) == 1  # no extra session
        assert names(main_session(fake)) == ["Command"]


async def test_many_action_sessions_share_the_blocking_work(fake: FakeAsterisk) -> None:
    count = 12
    gate = Gate(fake)
    gate.answer("Command", held=True)
    async with client_for(fake, action_sessions=count) as client:
        assert len(up(fake, "off")) == count
        commands = [asyncio.ensure_future(client.command(f"cmd {i}")) for i in range(count)]
        # Each goes to an idle session: all of them run at once.
        await gate.wait_arrived("Command", count)
        assert len(set(map(id, gate.sessions_of("Command")))) == count
        assert main_session(fake) not in gate.sessions_of("Command")
        gate.open()
        results = await asyncio.wait_for(asyncio.gather(*commands), WAIT)
        assert results == [f"done: cmd {i}" for i in range(count)]


# -- where each action goes ----------------------------------------------------------


async def test_blocking_actions_go_to_action_sessions_the_rest_to_the_main_one(
    fake: FakeAsterisk,
) -> None:
    gate = Gate(fake)
    for name in ("Command", "Reload", "Originate", "SlowThing", "UserEvent"):
        gate.answer(name)
    async with client_for(fake, action_sessions=2) as client:
        main = main_session(fake)
        await client.command("core show uptime")
        await client.send_action("Reload", Module="res_pjsip.so")
        await client.send_action("Originate", Channel="Local/100@test", Exten="1")  # sync
        await client.send_action("SlowThing", blocking=True)
        # Not blocking: an async Originate, an explicit blocking=False, ordinary actions, lists.
        await client.send_action("Originate", Channel="Local/200@test", Async="true")
        await client.send_action("Command", Command="core show version", blocking=False)
        await client.send_action("UserEvent", UserEvent="Hello")
        await client.ping()
        await client.getvar("FOO")
        await client.collect("CoreShowChannels")
        await client.collect("CoreShowChannels", blocking=True)  # a list: its items are events
        await client.send_action("Logoff", blocking=True)  # never moved: it ends the main one
    moved = sorted(
        (name, action.get("Command") or action.get("Channel") or name)
        for name, session, action in gate.arrived
        if session is not main
    )
    assert moved == [
        ("Command", "core show uptime"),
        ("Originate", "Local/100@test"),
        ("Reload", "Reload"),
        ("SlowThing", "SlowThing"),
    ]
    assert names(main) == [
        "Originate",
        "Command",
        "UserEvent",
        "Getvar",
        "CoreShowChannels",
        "CoreShowChannels",
        "Logoff",
    ]


# -- what a slow action no longer holds up ---------------------------------------------


async def test_the_main_session_answers_while_slow_actions_hold_the_action_sessions(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, action_sessions=2) as client:
        slow = [asyncio.ensure_future(client.command(f"slow {i}")) for i in range(2)]
        await gate.wait_arrived("Command", 2)
        # One on each action session (the least busy one is picked).
        assert len({id(s) for s in gate.sessions_of("Command")}) == 2
        # Both are held: the main session is free all the same.
        for _ in range(3):
            response = await asyncio.wait_for(client.ping(), WAIT)
            assert response["Ping"] == "Pong"
        assert await asyncio.wait_for(client.getvar("NOPE"), WAIT) == ""
        # A third slow one waits behind one of them, on an action session still.
        third = asyncio.ensure_future(client.command("slow 2"))
        assert not await done_within(third, 0.05)
        gate.open()
        assert await asyncio.wait_for(asyncio.gather(*slow, third), WAIT) == [
            "done: slow 0",
            "done: slow 1",
            "done: slow 2",
        ]
        assert main_session(fake) not in gate.sessions_of("Command")


async def test_without_action_sessions_a_ping_waits_behind_a_slow_action(
    fake: FakeAsterisk, held: Gate
) -> None:
    # The control: what action sessions are for.
    gate = held
    async with client_for(fake, action_sessions=0) as client:
        slow = await held_command(client, gate)
        ping = asyncio.ensure_future(client.ping())
        assert not await done_within(ping, 0.2)  # the fake reads it only after the Command
        gate.open()
        await asyncio.wait_for(asyncio.gather(slow, ping), WAIT)


async def test_the_main_keepalive_runs_while_an_action_session_is_busy(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, ping_interval=0.05, ping_timeout=1.0) as client:
        slow = await held_command(client, gate)
        (busy,) = gate.sessions_of("Command")
        main = main_session(fake)
        before_main, before_busy = pings(main), pings(busy)
        await eventually(lambda: pings(main) >= before_main + 3, "three main keepalives")
        # The busy session's own keepalive waits for its action (Asterisk would not answer).
        assert pings(busy) == before_busy
        assert client.connected and client.reconnects == 0
        gate.open()
        assert await asyncio.wait_for(slow, WAIT) == "done: slow"


# -- keeping alive, reconnecting, falling back ---------------------------------------------


async def test_action_sessions_keep_alive_and_reconnect_by_themselves(fake: FakeAsterisk) -> None:
    deaf = True

    def ping(session: FakeSession, action: Message) -> list[tuple[str, str]] | None:
        if deaf and session.events_mask == "off":
            return None  # a session that stalls: its Pings are never answered
        return make_response(action, "Success", Ping="Pong")

    fake.on_action("Ping", ping)

    def logins() -> int:
        return sum(1 for a in fake.actions if a["Action"] == "Login" and a.get("Events") == "off")

    async with client_for(fake, ping_interval=0.05, ping_timeout=0.1) as client:
        # Each is found dead by its own keepalive and logs in again.
        await eventually(lambda: logins() >= 4, "both action sessions logged in again")
        deaf = False
        await eventually(lambda: len(up(fake, "off")) == 2, "both action sessions back")
        await eventually(
            lambda: all(pings(s) >= 2 for s in up(fake, "off")), "their keepalive answered"
        )
        # The main session was never disturbed.
        assert client.connected and client.reconnects == 0
        assert len(up(fake, "on")) == 1


async def test_work_falls_back_to_the_main_session_while_action_sessions_are_down(
    fake: FakeAsterisk,
) -> None:
    gate = Gate(fake)
    gate.answer("Command")
    async with client_for(fake, action_sessions=2) as client:
        main = main_session(fake)
        # A second login of this user is now refused: lost, they cannot come back.
        fake.accounts["admin"] = FakeUser(SECRET, allow_multiple_login=False)
        for session in up(fake, "off"):
            session.close()
        await eventually(lambda: not up(fake, "off"), "the action sessions gone")
        # 1 + 2 logins, then at least one refused attempt of each to come back.
        await eventually(
            lambda: sum(1 for a in fake.actions if a["Action"] == "Login") >= 5,
            "refused logins",
        )
        assert await client.command("while down") == "done: while down"
        assert gate.sessions_of("Command") == [main]
        # Allowed again: they come back, and the blocking work goes there again.
        fake.accounts["admin"] = FakeUser(SECRET)
        await sessions_back(fake, client, 2, "the action sessions back")
        assert await client.command("when back") == "done: when back"
        assert gate.sessions_of("Command")[-1] in up(fake, "off")
        assert client.reconnects == 0


async def test_action_sessions_never_up_leave_the_client_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = {"admin": FakeUser(SECRET, allow_multiple_login=False)}
    async with FakeAsterisk(users=users, pbx=False, auth_failure_delay=0.01) as server:
        gate = Gate(server)
        gate.answer("Command")
        with caplog.at_level(logging.WARNING, logger="ami_async"):
            async with client_for(server, action_sessions=2) as client:
                assert client.connected  # connect() did not fail for them
                assert not up(server, "off")
                assert await client.command("x") == "done: x"
                assert gate.sessions_of("Command") == [main_session(server)]
        warnings = [r for r in caplog.records if "action session" in r.getMessage()]
        assert warnings and all(r.levelno == logging.WARNING for r in warnings)
        assert all(SECRET not in r.getMessage() for r in caplog.records)


async def test_an_action_session_lost_fails_its_action_in_flight_and_only_it(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, action_sessions=1) as client:
        slow = await held_command(client, gate)
        (busy,) = gate.sessions_of("Command")
        busy.close()
        with pytest.raises(ConnectionLostError):  # never re-sent: it may have run
            await asyncio.wait_for(slow, WAIT)
        assert client.connected and client.reconnects == 0
        assert (await client.ping())["Ping"] == "Pong"
        gate.open()
        await sessions_back(fake, client, 1, "the action session back")
        assert await client.command("again") == "done: again"


# -- timeouts and cancellation on the action-session path -------------------------------


async def test_a_timed_out_blocking_action_leaves_nothing_and_its_late_answer_is_dropped(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, action_sessions=1) as client:
        with pytest.raises(ActionTimeoutError):
            await client.command("slow", timeout=0.05)
        (busy,) = gate.sessions_of("Command")
        gate.open()  # its late answer arrives now, and is dropped
        # The next one on that session gets its own answer, not the late one.
        assert await client.command("next") == "done: next"
        assert gate.sessions_of("Command") == [busy, busy]
        assert client.pending_actions == 0


async def time_out_a_command(client: Client, seconds: float) -> None:
    """A Command, held on the fake, that times out after ``seconds`` (the late answer then
    counts for as long again: long enough for the checks that follow)."""
    with pytest.raises(ActionTimeoutError):
        await client.command("slow", timeout=seconds)


async def test_a_timed_out_blocking_action_keeps_its_session_busy_until_its_late_answer(
    fake: FakeAsterisk, held: Gate
) -> None:
    # Asterisk still runs an action whose caller timed out: the next blocking action
    # goes to the other, idle session, not behind it (both had nothing in the table).
    gate = held
    async with client_for(fake, action_sessions=2) as client:
        await time_out_a_command(client, WAIT / 10)
        assert client.pending_actions == 0  # (it left the table all the same)
        second = await held_command(client, gate, "second")
        busy, other = gate.sessions_of("Command")
        assert other is not busy
        gate.open()
        assert await asyncio.wait_for(second, WAIT) == "done: second"
        # Its late answer frees that session: it is picked first again (as the first one).
        assert client._sessions is not None
        sessions = client._sessions.sessions
        await eventually(
            lambda: sum(s._dispatcher.unmatched_responses for s in sessions) == 1,
            "the late answer read",
        )
        assert await client.command("third") == "done: third"
        assert gate.sessions_of("Command")[-1] is busy


async def test_a_late_answer_that_never_comes_stops_counting_after_the_timeout_again(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, action_sessions=2) as client:
        assert client._sessions is not None
        first, _ = client._sessions.sessions
        await time_out_a_command(client, 0.3)
        assert gate.sessions_of("Command") and client._sessions.pick() is not first
        # No answer yet (the fake holds it): after as long again, it no longer counts.
        await eventually(lambda: client._sessions.pick() is first, "the first session picked")
        gate.open()


async def test_a_lost_link_forgets_the_late_blocking_actions_of_its_session(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, action_sessions=1) as client:
        assert client._sessions is not None
        (session,) = client._sessions.sessions
        await time_out_a_command(client, WAIT / 10)
        assert session._dispatcher.busy_late() == 1
        (busy,) = gate.sessions_of("Command")
        busy.close()  # the fake drops that session: a new one runs nothing
        await eventually(lambda: session._dispatcher.busy_late() == 0, "late actions forgotten")
        gate.open()


async def test_its_action_id_reused_stops_a_timed_out_action_counting(
    fake: FakeAsterisk, held: Gate
) -> None:
    # The caller's own ActionID, sent again: the answer that comes for it is the new one's.
    gate = held
    async with client_for(fake, action_sessions=1) as client:
        assert client._sessions is not None
        (session,) = client._sessions.sessions
        with pytest.raises(ActionTimeoutError):
            await client.send_action("Command", Command="slow", ActionID="mine", timeout=WAIT / 10)
        assert session._dispatcher.busy_late() == 1
        again = asyncio.ensure_future(
            client.send_action("Command", Command="again", ActionID="mine")
        )
        await eventually(lambda: "mine" in session._dispatcher.pending, "the second one sent")
        assert session._dispatcher.busy_late() == 0
        gate.open()
        await asyncio.wait_for(again, WAIT)


async def test_a_late_answer_read_before_the_timed_out_caller_wakes_still_frees_its_session(
    fake: FakeAsterisk, held: Gate
) -> None:
    # The answer may be read between the timeout and the caller's next step (the same
    # read, or the next one): it must not leave the action counted as still running.
    async with client_for(fake, action_sessions=1) as client:
        assert client._sessions is not None
        (session,) = client._sessions.sessions
        expire = session._deadlines._expire

        def expire_then_answer(pending: Any) -> None:
            expire(pending)
            text = f"Response: Success\r\nActionID: {pending.action_id}\r\nOutput: late\r\n\r\n"
            session._dispatcher.feed([new_response(text)])

        session._deadlines._expire = expire_then_answer
        await time_out_a_command(client, WAIT / 10)
        assert session._dispatcher.unmatched_responses == 1
        assert session._dispatcher.busy_late() == 0
        held.open()


async def test_a_cancelled_blocking_action_leaves_nothing_and_its_late_answer_is_dropped(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    async with client_for(fake, action_sessions=1) as client:
        slow = await held_command(client, gate)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        # Cancelled before it reached the action session (cancelled at its first await).
        early = asyncio.ensure_future(client.command("never"))
        early.cancel()
        with pytest.raises(asyncio.CancelledError):
            await early
        gate.open()
        assert await client.command("next") == "done: next"
        said = [action["Command"] for name, _, action in gate.arrived]
        assert said == ["slow", "next"]  # the one cancelled at once was never sent
        assert client.pending_actions == 0


async def test_cancelling_connect_while_action_sessions_log_in_leaves_nothing_open(
    fake: FakeAsterisk,
) -> None:
    held = asyncio.Event()
    proceed = asyncio.Event()

    async def login(session: FakeSession, action: Message) -> list[tuple[str, str]]:
        if action.get("Events") == "off":
            held.set()
            with contextlib.suppress(asyncio.TimeoutError):
                async with _timeout(WAIT):
                    await proceed.wait()  # an action session's login that stalls
        return accept_login(session, action)

    fake.on_action("Login", login)
    client = client_for(fake, boot_timeout=0)
    opening = asyncio.ensure_future(client.connect())
    await asyncio.wait_for(held.wait(), WAIT)
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert not client.connected and not client.closed
    await eventually(lambda: all(t.done() for t in client._tasks), "the client's tasks ended")
    assert client._protocol is None  # the main link it had opened is closed
    # Connecting again works (the action sessions, let in now, too).
    proceed.set()
    await asyncio.wait_for(client.connect(), WAIT)
    assert client.connected
    await eventually(
        lambda: client._sessions is not None and client._sessions.connected == 2,
        "the action sessions in",
    )
    await asyncio.wait_for(client.close(), WAIT)
    await eventually(lambda: not fake.sessions, "every session closed after close()")


async def test_a_stalled_action_session_login_delays_connect_at_most_its_timeout(
    fake: FakeAsterisk,
) -> None:
    async def login(session: FakeSession, action: Message) -> list[tuple[str, str]] | None:
        if action.get("Events") == "off":
            return None  # never answered
        return accept_login(session, action)

    fake.on_action("Login", login)
    gate = Gate(fake)
    gate.answer("Command")
    client = client_for(fake, boot_timeout=0, timeout=0.3)
    await asyncio.wait_for(client.connect(), WAIT)  # the sessions' wait is within timeout
    try:
        assert client.connected
        assert await client.command("x") == "done: x"  # on the main session meanwhile
        assert gate.sessions_of("Command") == [main_session(fake)]
    finally:
        await asyncio.wait_for(client.close(), WAIT)
    await eventually(lambda: not fake.sessions, "every session closed")


def action_session_logins_hang(fake: FakeAsterisk) -> asyncio.Event:
    """The fake never answers the logins of action sessions (`Events: off`); set once one came."""
    held = asyncio.Event()

    async def login(session: FakeSession, action: Message) -> list[tuple[str, str]] | None:
        if action.get("Events") == "off":
            held.set()
            return None  # never answered
        return accept_login(session, action)

    fake.on_action("Login", login)
    return held


async def test_the_link_lost_while_action_sessions_log_in_fails_connect_cleanly(
    fake: FakeAsterisk,
) -> None:
    held = action_session_logins_hang(fake)
    client = client_for(fake, boot_timeout=0)
    opening = asyncio.ensure_future(client.connect())
    await asyncio.wait_for(held.wait(), WAIT)
    await fake.drop()  # every connection, the main one too
    with pytest.raises(AMIConnectionError, match="lost right after login"):
        await asyncio.wait_for(opening, WAIT)
    assert not client.connected and not client.closed and client.reconnects == 0
    await eventually(lambda: all(t.done() for t in client._tasks), "the client's tasks ended")
    await client.close()


async def test_everything_dropped_the_main_session_and_action_sessions_come_back(
    fake: FakeAsterisk, held: Gate
) -> None:
    async with client_for(fake, action_sessions=2) as client:
        await fake.drop()
        await eventually(lambda: client.reconnects == 1 and client.connected, "reconnected")
        await sessions_back(fake, client, 2, "the action sessions back")
        slow = await held_command(client, held)
        assert held.sessions_of("Command")[-1] in up(fake, "off")
        assert (await client.ping())["Ping"] == "Pong"
        held.open()
        assert await slow == "done: slow"


# -- closing -------------------------------------------------------------------------------


async def test_close_logs_off_and_closes_every_action_session(
    fake: FakeAsterisk, held: Gate
) -> None:
    gate = held
    client = client_for(fake, action_sessions=2)
    await client.connect()
    sessions = list(fake.sessions)
    assert len(sessions) == 3
    await client.ping()
    slow = await held_command(client, gate, "held")
    # Two tasks close at once; the action in flight fails at once, not at its timeout.
    await asyncio.wait_for(asyncio.gather(client.close(), client.close()), WAIT)
    with pytest.raises(ConnectionLostError):
        await asyncio.wait_for(slow, WAIT)
    assert client.closed and not client.connected
    gate.open()  # the fake's busy session finds its connection gone only after its action
    await eventually(lambda: not fake.sessions, "every session closed")
    idle = [s for s in sessions if s not in gate.sessions_of("Command")]
    for session in idle:  # the idle ones logged off (the busy one could not: Asterisk is busy)
        assert "Logoff" in names(session)
    with pytest.raises(AMIConnectionError):
        await client.command("after close")


async def test_close_while_action_sessions_are_still_connecting(fake: FakeAsterisk) -> None:
    held = action_session_logins_hang(fake)
    client = client_for(fake, boot_timeout=0, timeout=WAIT)
    opening = asyncio.ensure_future(client.connect())
    await asyncio.wait_for(held.wait(), WAIT)
    await asyncio.wait_for(client.close(), WAIT)  # while connect() waits for them
    with pytest.raises((AMIConnectionError, asyncio.CancelledError)):
        await asyncio.wait_for(opening, WAIT)
    await eventually(lambda: not fake.sessions, "every session closed")
    assert not [t for t in client._tasks if not t.done()]


# -- the example -------------------------------------------------------------------------------


def load_example() -> Any:
    import importlib.util

    key = "_example_slow_actions"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, EXAMPLES / "slow_actions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


async def run_example(argv: list[str]) -> tuple[int, str]:
    example = load_example()
    main: Callable[[list[str]], Awaitable[int]] = example.main
    from io import StringIO

    out = StringIO()
    with contextlib.redirect_stdout(out):
        code = await asyncio.wait_for(main(argv), 4 * WAIT)
    return code, out.getvalue()


async def test_slow_actions_example_runs_on_the_simulated_pbx() -> None:
    code, out = await run_example(["--fake", "--delay", "0.2"])
    assert code == 0, out
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["action_sessions=0", "action_sessions=2"]
    for line in lines:
        assert "Command took" in line and "meanwhile, slowest" in line


def _at_least(items: list[float], count: int) -> bool:
    return len(items) >= count


async def test_slow_actions_example_pings_flow_only_with_action_sessions(
    fake: FakeAsterisk, held: Gate
) -> None:
    ping_while = load_example().ping_while
    for sessions in (2, 0):
        async with client_for(fake, action_sessions=sessions) as client:
            slow = await held_command(client, held, f"with {sessions}")
            rtts: list[float] = []
            pinging = asyncio.ensure_future(ping_while(client, slow, rtts))
            if sessions:
                # Pings answered while the Command is held: they flow.
                await eventually(partial(_at_least, rtts, 3), "three Pings answered meanwhile")
            else:
                # Behind the held Command on the one session, the first Ping waits.
                assert not await done_within(pinging, 0.2) and rtts == []
            held.open()
            await asyncio.wait_for(pinging, WAIT)
            assert await slow == f"done: with {sessions}"
            held.opened.clear()
    assert len(rtts) == 1  # the Ping that waited for the Command, answered after it


async def test_slow_actions_example_exit_statuses(fake: FakeAsterisk) -> None:
    assert (await run_example(["--fake", "--originate", "Local/100@test"]))[0] == 2
    assert (await run_example(["--command", "core show uptime"]))[0] == 2  # no credentials
    login = ["--username", "admin", "--secret", SECRET, "--host", fake.host]
    assert (await run_example([*login, "--port", str(fake.port)]))[0] == 2  # no slow action
    closed = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    code, _ = await run_example([*login, "--port", str(port), "--command", "x"])
    assert code == 3
    code, out = await run_example([*login, "--port", str(fake.port), "--command", "x"])
    assert code == 0 and out.count("Command took") == 2  # against a server with a quick Command
