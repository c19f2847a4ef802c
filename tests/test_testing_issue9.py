"""Issue 9, the FakeAsterisk side: quiet teardown, login events, restarts, Originate variables."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _fake_client import RawClient

import ami_async
from ami_async.message import Message
from ami_async.testing import FakeAsterisk, FaultProxy
from ami_async.testing._call_actions import _variables
from ami_async.testing._pbx_model import separate_args

TIMEOUT = 5.0


@pytest.fixture
async def loop_reports() -> AsyncIterator[list[dict[str, Any]]]:
    """What reaches the running loop's exception handler during the test."""
    loop = asyncio.get_running_loop()
    reports: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reports.append(context))
    try:
        yield reports
    finally:
        loop.set_exception_handler(old)


async def connect(fake: FakeAsterisk) -> RawClient:
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    client = RawClient(reader, writer)
    await client.banner()
    return client


# -- item 16 / item 20: teardown with live sessions -------------------------------------


async def test_item16_close_with_live_sessions_reports_nothing_to_the_loop(
    loop_reports: list[dict[str, Any]],
) -> None:
    fake = FakeAsterisk()
    await fake.start()
    clients = [await connect(fake) for _ in range(3)]
    await clients[0].login()
    await asyncio.wait_for(fake.close(), TIMEOUT)
    for client in clients:
        await client.eof()
        await client.close()
    assert loop_reports == []


async def test_item16_drop_reports_nothing_to_the_loop(
    loop_reports: list[dict[str, Any]],
) -> None:
    async with FakeAsterisk() as fake:
        clients = [await connect(fake) for _ in range(2)]
        await fake.drop()
        for client in clients:
            await client.eof()
            await client.close()
        assert fake.sessions == []
    assert loop_reports == []


async def test_item16_faultproxy_close_during_a_connect_reports_nothing_to_the_loop(
    loop_reports: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    connecting = asyncio.Event()

    async def never_connects(*args: object, **kwargs: object) -> Any:
        connecting.set()
        await asyncio.Event().wait()

    async with FaultProxy("127.0.0.1", 1, connect_timeout=60) as proxy:
        monkeypatch.setattr(asyncio, "open_connection", never_connects)
        with socket.create_connection((proxy.host, proxy.port), timeout=TIMEOUT):
            await asyncio.wait_for(connecting.wait(), TIMEOUT)
            await asyncio.wait_for(proxy.close(), TIMEOUT)
    assert loop_reports == []


async def test_item20_interrupted_server_with_clients_ends_quietly() -> None:
    """Ctrl-C on a program serving FakeAsterisk: asyncio.run cancels it; no traceback."""
    program = (
        "import asyncio, os, signal, socket\n"
        "from ami_async.testing import FakeAsterisk\n"
        "async def main():\n"
        "    pbx = FakeAsterisk()\n"
        "    await pbx.start()\n"
        "    socks = [socket.create_connection((pbx.host, pbx.port)) for _ in range(2)]\n"
        "    while len(pbx.sessions) < 2:\n"
        "        await asyncio.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    try:\n"
        "        await asyncio.Event().wait()\n"
        "    finally:\n"
        "        await pbx.close()\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout == "interrupted\n"
    assert done.stderr == ""


# -- item 19: Originate Variable values read as Asterisk reads them ---------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("V=1", ["V=1"]),
        ("A=1,B=2", ["A=1", "B=2"]),
        ("V=a\\,b", ["V=a,b"]),  # the backslash makes the comma literal
        ('V="a,b"', ["V=a,b"]),  # quotes group and are removed
        ('V=x"y', ["V=xy"]),  # an unpaired quote is removed, and opens a group
        ('V=x\\"y', ['V=x"y']),
        ("V=p\\\\q", ["V=p\\q"]),
        ("V=p\\q", ["V=pq"]),  # a backslash before an ordinary character: just removed
        ("V=f(a,b),W=[c,d]", ["V=f(a,b)", "W=[c,d]"]),  # parentheses and brackets group
        ("V=a)b,c", ["V=a)b", "c"]),  # an unmatched closer changes nothing
        ("A=1,", ["A=1", ""]),  # a final separator gives one more, empty argument
        ("A=1,,B=2", ["A=1", "", "B=2"]),
        (",A", ["", "A"]),
        ("V=a\\", ["V=a"]),  # a trailing backslash is dropped
    ],
)
def test_item19_separate_args_as_ast_standard_app_args(text: str, expected: list[str]) -> None:
    assert separate_args(text) == expected


def test_item19_separate_args_leaves_the_rest_whole_past_the_limit() -> None:
    assert separate_args('a,b,"c,d",\\e', limit=3) == ["a", "b", '"c,d",\\e']
    assert len(separate_args(",".join(f"V{i}=x" for i in range(70)))) == 64


def test_item19_variable_headers_as_man_do_variable_value_reads_them() -> None:
    action = Message(
        [
            ("Action", "Originate"),
            ("Variable", "  A=1, B=2"),  # blanks skipped before the first name only
            ("Variable", "NOVALUE,=empty-name,C=x=y"),
            ("Variable", 'D="quoted, with comma"'),
        ]
    )
    assert _variables(action) == [
        ("A", "1"),
        (" B", "2"),
        ("C", "x=y"),
        ("D", "quoted, with comma"),
    ]


async def test_item19_originate_variables_reach_the_channel_as_sent() -> None:
    values = {"COMMA": "a,b", "QUOTE": 'x"y', "BACKSLASH": "p\\q", "ALL": '\\,"(['}
    async with (
        FakeAsterisk(time_scale=0.01) as fake,
        ami_async.connect(
            fake.host, fake.port, username="admin", secret="amp111", ping_interval=None
        ) as ami,
    ):
        fake.pbx.dialplan.set("test", "700", "Answer()", "Wait(100000)")
        async with ami.events("VarSet") as varsets:
            call = await ami.originate(
                "Local/700@test", application="Wait", data="100000", variables=values
            )
            assert call.channel is not None
            seen: dict[str, str] = {}
            while len(seen) < len(values):
                event = await varsets.get(timeout=TIMEOUT)
                if event["Channel"] == call.channel and event["Variable"] in values:
                    seen[event["Variable"]] = event["Value"]
        assert seen == values
        for name, value in values.items():
            assert await ami.getvar(name, channel=call.channel) == value
        await ami.hangup(call.channel)


# -- the waiting helpers honour a cancel (item 6's rule: no asyncio.wait_for) -----------


async def turns_until(predicate: Callable[[], object]) -> None:
    """Let other tasks run until `predicate()` is true (a bounded number of loop turns)."""
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("never came true")


async def cancelled_as_it_completes(task: asyncio.Task[Any], complete: Callable[[], None]) -> None:
    """Complete what `task` waits for and cancel it in the same loop iteration.

    asyncio.wait_for on 3.10 and 3.11 then returns the result and loses the cancel.
    """
    complete()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, TIMEOUT)


async def test_wait_for_action_honours_a_cancel_that_comes_with_the_action() -> None:
    async with FakeAsterisk() as fake:
        task = asyncio.create_task(fake.wait_for_action("Ping"))
        await turns_until(lambda: fake._waiters)  # until it waits

        def complete() -> None:
            fake.actions.append(Message([("Action", "Ping")]))
            for waiter in fake._waiters:
                waiter.set_result(None)

        await cancelled_as_it_completes(task, complete)


async def test_wait_idle_honours_a_cancel_that_comes_with_idleness() -> None:
    async with FakeAsterisk() as fake:
        pbx = fake.pbx
        pbx._tasks.add(asyncio.ensure_future(asyncio.sleep(3600)))  # something runs
        task = asyncio.create_task(pbx.wait_idle())
        await turns_until(lambda: pbx._idle is not None)
        idle = pbx._idle
        assert idle is not None
        await cancelled_as_it_completes(task, idle.set)


async def test_faultproxy_wait_until_honours_a_cancel_that_comes_with_the_change() -> None:
    async with FaultProxy("127.0.0.1", 1) as proxy:
        flag: list[int] = []
        task = asyncio.create_task(proxy.wait_until(lambda: bool(flag)))
        await turns_until(lambda: proxy._watchers)

        def complete() -> None:
            flag.append(1)
            proxy._poke()

        await cancelled_as_it_completes(task, complete)
