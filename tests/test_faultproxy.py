"""FaultProxy on its own, between asyncio streams and a tiny server made here."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

import pytest

from ami_async.testing import FaultProxy

T = TypeVar("T")
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]

WAIT = 5.0  # every wait in these tests ends within this many seconds


async def within(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    return await asyncio.wait_for(awaitable, timeout)


class Backend:
    """A server that hands each accepted connection to the test."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[Streams] = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._on_connect, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await self.accepted.put((reader, writer))

    async def next(self) -> Streams:
        return await within(self.accepted.get())

    async def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.server.close()
        await within(self.server.wait_closed())


class Clients:
    """Client connections made by a test, aborted at the end."""

    def __init__(self, proxy: FaultProxy, backend: Backend) -> None:
        self.proxy = proxy
        self.backend = backend
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self) -> tuple[Streams, Streams]:
        """A client connection through the proxy and the server's side of it."""
        reader, writer = await within(asyncio.open_connection(self.proxy.host, self.proxy.port))
        self.writers.append(writer)
        return (reader, writer), await self.backend.next()

    def close(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    server = Backend()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def proxy(backend: Backend) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", backend.port) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def clients(proxy: FaultProxy, backend: Backend) -> Iterator[Clients]:
    made = Clients(proxy, backend)
    yield made
    made.close()


def payload(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


async def read_reset_or_eof(reader: asyncio.StreamReader) -> bytes:
    """What a read returns on a connection that was cut: b"" or a reset."""
    try:
        return await within(reader.read(100))
    except ConnectionResetError:
        return b""


async def assert_nothing_arrives(reader: asyncio.StreamReader) -> None:
    """A negative check needs a window: 0.1 s in which the read must not complete."""
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.1)


# -- forwarding -------------------------------------------------------------------------


async def test_forwards_both_ways_and_counts(proxy: FaultProxy, clients: Clients) -> None:
    assert proxy.host == "127.0.0.1" and proxy.port != 0
    (c_reader, c_writer), (s_reader, s_writer) = await clients.open()
    c_writer.write(b"Action: Ping\r\n\r\n")
    assert await within(s_reader.readexactly(16)) == b"Action: Ping\r\n\r\n"
    s_writer.write(b"Response: Success\r\n\r\n")
    assert await within(c_reader.readexactly(21)) == b"Response: Success\r\n\r\n"
    assert proxy.bytes_to_server == 16
    assert proxy.bytes_to_client == 21
    assert proxy.connections_accepted == 1
    assert proxy.active_connections == 1


async def test_a_large_stream_arrives_intact(proxy: FaultProxy, clients: Clients) -> None:
    (c_reader, c_writer), (s_reader, s_writer) = await clients.open()
    data = payload(3 * 1024 * 1024)
    s_writer.write(data)
    c_writer.write(data[:100_000])
    assert await within(c_reader.readexactly(len(data))) == data
    assert await within(s_reader.readexactly(100_000)) == data[:100_000]


async def test_half_close_is_passed_on_and_the_connection_ends(
    proxy: FaultProxy, clients: Clients
) -> None:
    (c_reader, c_writer), (s_reader, s_writer) = await clients.open()
    c_writer.write(b"last words")
    c_writer.write_eof()
    assert await within(s_reader.read()) == b"last words"  # then EOF
    s_writer.write(b"still talking")  # the other way still flows
    assert await within(c_reader.readexactly(13)) == b"still talking"
    s_writer.close()
    assert await within(c_reader.read()) == b""
    await proxy.wait_until(lambda: proxy.active_connections == 0)


# -- cut and refuse ---------------------------------------------------------------------


async def test_cut_resets_both_sides_and_new_connections_still_work(
    proxy: FaultProxy, clients: Clients
) -> None:
    (c_reader, _), (s_reader, _) = await clients.open()
    assert proxy.cut() == 1
    with pytest.raises(ConnectionResetError):
        await within(c_reader.read(100))
    with pytest.raises(ConnectionResetError):
        await within(s_reader.read(100))
    assert proxy.cuts == 1 and proxy.active_connections == 0

    (c_reader, c_writer), (s_reader, _) = await clients.open()
    c_writer.write(b"again")
    assert await within(s_reader.readexactly(5)) == b"again"
    assert proxy.connections_accepted == 2


async def test_cut_without_reset_closes_with_eof(proxy: FaultProxy, clients: Clients) -> None:
    (c_reader, _), (s_reader, _) = await clients.open()
    assert proxy.cut(reset=False) == 1
    assert await within(c_reader.read(100)) == b""
    assert await within(s_reader.read(100)) == b""


async def test_cut_discards_held_bytes(proxy: FaultProxy, clients: Clients) -> None:
    (c_reader, _), (_, s_writer) = await clients.open()
    proxy.stall("to_client")
    s_writer.write(b"never delivered")
    await proxy.wait_until(lambda: proxy.held_bytes("to_client") == 15)
    proxy.cut()
    proxy.resume()
    assert await read_reset_or_eof(c_reader) == b""
    assert proxy.bytes_to_client == 0 and proxy.held_bytes() == 0


async def test_refuse_makes_connecting_fail_until_turned_off(
    proxy: FaultProxy, clients: Clients
) -> None:
    (_, c_writer), (s_reader, _) = await clients.open()
    port = proxy.port
    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        await within(asyncio.open_connection(proxy.host, proxy.port))
    # The connection made before is untouched.
    c_writer.write(b"ping")
    assert await within(s_reader.readexactly(4)) == b"ping"

    proxy.refuse(False)
    assert proxy.port == port
    (c2_reader, _), (_, s2_writer) = await clients.open()
    s2_writer.write(b"welcome back")
    assert await within(c2_reader.readexactly(12)) == b"welcome back"


async def test_refuse_twice_and_back_quickly_keeps_one_listener(
    proxy: FaultProxy, clients: Clients
) -> None:
    for _ in range(3):
        proxy.refuse()
        proxy.refuse(False)
    (c_reader, _), (_, s_writer) = await clients.open()
    s_writer.write(b"ok")
    assert await within(c_reader.readexactly(2)) == b"ok"


async def test_refuse_with_reset_accepts_then_drops(proxy: FaultProxy, backend: Backend) -> None:
    proxy.refuse(reset=True)
    reader, writer = await within(asyncio.open_connection(proxy.host, proxy.port))
    try:
        assert await read_reset_or_eof(reader) == b""
        assert proxy.connections_refused == 1
        assert proxy.connections_accepted == 0
        assert backend.accepted.empty()
    finally:
        writer.transport.abort()


async def test_an_unreachable_target_resets_the_client() -> None:
    with socket.socket() as placeholder:  # a port nothing listens on
        placeholder.bind(("127.0.0.1", 0))
        dead_port = placeholder.getsockname()[1]
    async with FaultProxy("127.0.0.1", dead_port) as proxy:
        reader, writer = await within(asyncio.open_connection(proxy.host, proxy.port))
        try:
            assert await read_reset_or_eof(reader) == b""
            await proxy.wait_until(lambda: proxy.upstream_failures == 1)
        finally:
            writer.transport.abort()


# -- stall and resume ---------------------------------------------------------------------


async def test_stall_holds_bytes_and_resume_delivers_them_in_order(
    proxy: FaultProxy, clients: Clients
) -> None:
    (c_reader, c_writer), (s_reader, s_writer) = await clients.open()
    proxy.stall("to_client")
    assert proxy.stalled("to_client") and not proxy.stalled("to_server")
    messages = [f"Event: Tick\r\nSeq: {i}\r\n\r\n".encode() for i in range(50)]
    for message in messages:
        s_writer.write(message)
    total = sum(map(len, messages))
    await proxy.wait_until(lambda: proxy.held_bytes("to_client") == total)
    await assert_nothing_arrives(c_reader)
    # The other direction still flows.
    c_writer.write(b"Action: Ping\r\n\r\n")
    assert await within(s_reader.readexactly(16)) == b"Action: Ping\r\n\r\n"

    proxy.resume()
    assert await within(c_reader.readexactly(total)) == b"".join(messages)
    assert proxy.held_bytes() == 0 and proxy.bytes_dropped == 0


async def test_resume_without_flush_drops_the_held_bytes(
    proxy: FaultProxy, clients: Clients
) -> None:
    (c_reader, _), (_, s_writer) = await clients.open()
    proxy.stall()
    s_writer.write(b"lost")
    await proxy.wait_until(lambda: proxy.held_bytes("to_client") == 4)
    proxy.resume(flush=False)
    s_writer.write(b"kept")
    assert await within(c_reader.readexactly(4)) == b"kept"
    assert proxy.bytes_dropped == 4


async def test_stall_holds_the_end_of_stream_too(proxy: FaultProxy, clients: Clients) -> None:
    (_, c_writer), (s_reader, _) = await clients.open()
    proxy.stall("to_server")
    c_writer.write(b"bye")
    c_writer.close()
    await proxy.wait_until(lambda: proxy.held_bytes("to_server") == 3)
    await assert_nothing_arrives(s_reader)
    proxy.resume("to_server")
    assert await within(s_reader.read()) == b"bye"  # then EOF


async def test_a_stalled_pipe_holds_a_bounded_amount(backend: Backend) -> None:
    async with FaultProxy("127.0.0.1", backend.port, max_held=10_000) as proxy:
        clients = Clients(proxy, backend)
        try:
            (c_reader, _), (_, s_writer) = await clients.open()
            proxy.stall("to_client")
            data = payload(2_000_000)
            s_writer.write(data)  # more than the proxy and the socket buffers hold
            await proxy.wait_until(lambda: proxy.held_bytes("to_client") >= 10_000)
            # The reader stops once max_held is reached: at most one read more.
            assert proxy.held_bytes("to_client") < 10_000 + 65_536
            proxy.resume()
            assert await within(c_reader.readexactly(len(data))) == data
        finally:
            clients.close()


async def test_new_connections_are_stalled_too(proxy: FaultProxy, clients: Clients) -> None:
    proxy.stall("to_client")
    (c_reader, _), (_, s_writer) = await clients.open()
    s_writer.write(b"Asterisk Call Manager/11.0.0\r\n")
    await proxy.wait_until(lambda: proxy.held_bytes("to_client") == 30)
    await assert_nothing_arrives(c_reader)
    proxy.resume()
    assert await within(c_reader.readline()) == b"Asterisk Call Manager/11.0.0\r\n"


# -- reshaping: fragment, delay, throttle ---------------------------------------------------


class Recorder(asyncio.Protocol):
    """A client that records every read separately."""

    def __init__(self) -> None:
        self.reads: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self._wanted = 0
        self._enough: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reads.append(data)
        if self._enough is not None and sum(map(len, self.reads)) >= self._wanted:
            self._enough.set_result(None)
            self._enough = None

    async def wait_for(self, total: int) -> bytes:
        if sum(map(len, self.reads)) < total:
            self._wanted = total
            self._enough = asyncio.get_running_loop().create_future()
            await within(self._enough)
        return b"".join(self.reads)


async def record(proxy: FaultProxy, backend: Backend) -> tuple[Recorder, Streams]:
    loop = asyncio.get_running_loop()
    _, recorder = await within(loop.create_connection(Recorder, proxy.host, proxy.port))
    return recorder, await backend.next()


async def test_fragment_delivers_pieces_no_larger_than_size(
    proxy: FaultProxy, backend: Backend
) -> None:
    proxy.fragment(7)
    recorder, (s_reader, s_writer) = await record(proxy, backend)
    try:
        data = b"Event: Newchannel\r\nChannel: PJSIP/100-00000001\r\n\r\n" * 20
        s_writer.write(data)
        assert await recorder.wait_for(len(data)) == data
        assert max(map(len, recorder.reads)) <= 7
        assert len(recorder.reads) >= len(data) // 7
        # The default direction is server -> client only.
        assert recorder.transport is not None
        recorder.transport.write(b"Action: Ping\r\n\r\n")
        assert await within(s_reader.readexactly(16)) == b"Action: Ping\r\n\r\n"
    finally:
        assert recorder.transport is not None
        recorder.transport.abort()


async def test_random_fragments_are_reproducible_from_the_seed(
    proxy: FaultProxy, backend: Backend
) -> None:
    data = payload(3000)
    sizes = []
    for _ in range(2):
        proxy.fragment(50, randomize=True, seed=1234)
        recorder, (_, s_writer) = await record(proxy, backend)
        try:
            s_writer.write(data)
            assert await recorder.wait_for(len(data)) == data
            sizes.append([len(read) for read in recorder.reads])
        finally:
            assert recorder.transport is not None
            recorder.transport.abort()
    assert sizes[0] == sizes[1]
    assert max(sizes[0]) <= 50
    assert len(set(sizes[0])) > 5  # random sizes, not one fixed size


async def test_delay_adds_latency_and_keeps_order(proxy: FaultProxy, clients: Clients) -> None:
    loop = asyncio.get_running_loop()
    (c_reader, _), (_, s_writer) = await clients.open()
    proxy.delay(0.2, "to_client")
    started = loop.time()
    for i in range(10):
        s_writer.write(b"%d," % i)
        await s_writer.drain()
    expected = b"".join(b"%d," % i for i in range(10))
    assert await within(c_reader.readexactly(len(expected))) == expected
    assert loop.time() - started >= 0.1


async def test_throttle_limits_the_rate_and_keeps_the_bytes(
    proxy: FaultProxy, clients: Clients
) -> None:
    loop = asyncio.get_running_loop()
    (c_reader, c_writer), (s_reader, s_writer) = await clients.open()
    proxy.throttle(20_000)
    data = payload(6_000)  # 0.3 s at 20 kB/s
    started = loop.time()
    s_writer.write(data)
    c_writer.write(data)
    assert await within(c_reader.readexactly(len(data))) == data
    assert await within(s_reader.readexactly(len(data))) == data
    assert loop.time() - started >= 0.1


async def test_heal_clears_every_fault(proxy: FaultProxy, clients: Clients) -> None:
    (c_reader, _), (_, s_writer) = await clients.open()
    proxy.stall()
    proxy.delay(30)
    proxy.throttle(1)
    proxy.fragment(1)
    s_writer.write(b"held")
    await proxy.wait_until(lambda: proxy.held_bytes() == 4)
    proxy.heal()
    assert await within(c_reader.readexactly(4)) == b"held"


def test_bad_arguments_are_refused() -> None:
    proxy = FaultProxy("127.0.0.1", 5038)
    with pytest.raises(ValueError, match="direction"):
        proxy.stall("sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        proxy.delay(-1)
    with pytest.raises(ValueError, match="bytes_per_second"):
        proxy.throttle(-5)
    with pytest.raises(ValueError, match="size"):
        proxy.fragment(-1)
    with pytest.raises(ValueError, match="max_held"):
        FaultProxy("127.0.0.1", 5038, max_held=0)


@pytest.mark.parametrize("rate", [float("nan"), float("inf")])
def test_item10_throttle_refuses_a_rate_that_is_not_finite(rate: float) -> None:
    # throttle(nan) used to be taken: the pipe task died, the link neither forwarded nor closed.
    with pytest.raises(ValueError, match="bytes_per_second"):
        FaultProxy("127.0.0.1", 5038).throttle(rate)


@pytest.mark.parametrize("size", [0.5, float("nan"), float("inf")])
def test_item10_fragment_refuses_a_size_below_one_byte_or_not_finite(size: float) -> None:
    # fragment(0.5) used to be taken: 0-byte pieces forever, nothing delivered, 100% CPU.
    with pytest.raises(ValueError, match="size"):
        FaultProxy("127.0.0.1", 5038).fragment(size)  # type: ignore[arg-type]


# -- waiting and closing ------------------------------------------------------------------


async def test_wait_until_times_out(proxy: FaultProxy) -> None:
    with pytest.raises(TimeoutError):
        await proxy.wait_until(lambda: proxy.active_connections == 5, timeout=0.05)


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0])
async def test_item6_wait_until_refuses_a_timeout_that_is_not_finite_or_negative(
    proxy: FaultProxy, timeout: float
) -> None:
    # A nan timeout used to reach the event loop's scheduler and kill the loop (3.10, 3.13).
    with pytest.raises(ValueError, match="timeout"):
        await within(proxy.wait_until(lambda: False, timeout=timeout))


async def test_close_ends_every_connection_and_task(backend: Backend) -> None:
    before = asyncio.all_tasks()
    proxy = FaultProxy("127.0.0.1", backend.port)
    await proxy.start()
    clients = Clients(proxy, backend)
    try:
        (c1_reader, _), _ = await clients.open()
        (c2_reader, _), (_, s2_writer) = await clients.open()
        proxy.stall("to_client")
        proxy.refuse()
        proxy.refuse(False)  # a listener being set up at close time
        s2_writer.write(b"held at close")
        await proxy.wait_until(lambda: proxy.held_bytes() == 13)
        await within(proxy.close())
        assert proxy.active_connections == 0
        assert await read_reset_or_eof(c1_reader) == b""
        assert await read_reset_or_eof(c2_reader) == b""
        assert asyncio.all_tasks() - before == {asyncio.current_task()} - before
        with pytest.raises(ConnectionRefusedError):
            await within(asyncio.open_connection(proxy.host, proxy.port))
        await proxy.close()  # idempotent
    finally:
        clients.close()
