"""A load server for the benchmarks: enough AMI to log in, answer actions and flood events.

It runs in its own process (:class:`ServerProcess`, or ``python benchmarks/loadserver.py``)
so that on a 2-core machine the client under test has a core to itself. It
listens on 127.0.0.1 (port 0: the system picks one), one thread per connection,
blocking ``sendall`` of pre-encoded bytes: the event stream goes out as fast as
the socket takes it.

The event stream is real Asterisk 22 traffic: every unsolicited event of the
``event_burst`` and ``dial_bridge`` captures in ``shared/fixtures/asterisk-22``
(21 kinds, in wire order and so in their real proportions; list items and
``...Complete`` markers, which answer an action, are left out). Each frame is
parsed with :class:`ami_async.protocol.Parser` and re-encoded byte-exact (checked
against the capture). A flood of N events repeats that cycle.

What the server answers (action names in any case; ``ActionID`` echoed when given):

``Login``
    ``Response: Success`` then the real ``FullyBooted`` and ``SuccessfulAuth``
    events (none with ``Events: off``). Any user and secret are accepted.
``Ping``
    ``Response: Success`` / ``Ping: Pong`` / ``Timestamp``.
``CoreShowChannels``
    a list of ``BenchItems`` (default: the server's ``list_items``) real
    ``CoreShowChannel`` items and the ``CoreShowChannelsComplete`` marker.
``BenchFlood``
    ``Count`` events of the stream (``-1``: without end, until the client goes
    away), then ``Response: Success`` / ``Message: Flood done`` (after the
    events, so its arrival means every event was read).
``BenchStall``
    never answered (to hold actions pending).
``BenchRestart``
    ``Response: Success``, then a restart: the listener closes, every
    connection is dropped, and after ``Downtime`` seconds (default 0) the
    server listens on the same port again.
``BenchInfo``
    ``LastDown`` / ``LastUp`` (``time.monotonic()`` of the last restart's drop
    and re-listen: the clock is system-wide on Linux, so other processes can
    compare), ``Restarts`` and ``CPUTime`` (the server process's CPU seconds so far).
``Events``, ``Logoff``
    as Asterisk does; anything else gets Asterisk's ``Invalid/unknown command``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "DEFAULT_CAPTURES",
    "EventStream",
    "LoadServer",
    "ServerProcess",
    "build_event_stream",
    "fixtures_dir",
    "pin_to_cpu",
]

#: Captures whose unsolicited events make up the flood, in this order.
DEFAULT_CAPTURES = ("event_burst", "dial_bridge")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
_CRLF2 = b"\r\n\r\n"


def fixtures_dir() -> Path:
    """``$AMI_FIXTURES``, else ``shared/fixtures/asterisk-22`` beside the project checkout."""
    env = os.environ.get("AMI_FIXTURES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "asterisk-22"


def _encode(headers: Iterable[tuple[str, str]]) -> bytes:
    text = "".join(f"{key}: {value}\r\n" for key, value in headers) + "\r\n"
    return text.encode("utf-8", "surrogateescape")


def _read_capture(path: Path) -> tuple[bytes, list[Any]]:
    from ami_async.protocol import Parser

    if not path.is_file():
        raise SystemExit(
            f"missing fixture {path}: set AMI_FIXTURES to the asterisk-22 fixtures directory"
        )
    raw = path.read_bytes()
    return raw, Parser().feed(raw)


@dataclass
class EventStream:
    """The pre-encoded event cycle: ``frames[i]`` is the i-th event, ``names[i]`` its name."""

    frames: list[bytes]
    names: list[str]
    cycle: bytes = field(init=False, repr=False)
    #: ``offsets[i]``: where event i starts in :attr:`cycle` (``offsets[-1] == len(cycle)``).
    offsets: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.cycle = b"".join(self.frames)
        self.offsets = [0]
        for frame in self.frames:
            self.offsets.append(self.offsets[-1] + len(frame))

    def __len__(self) -> int:
        return len(self.frames)

    def chunks(self, n: int) -> Iterator[bytes | memoryview]:
        """The bytes of the first ``n`` events of the endless repetition (``n < 0``: endless)."""
        if n < 0:
            while True:
                yield self.cycle
        full, rest = divmod(n, len(self.frames))
        for _ in range(full):
            yield self.cycle
        if rest:
            yield memoryview(self.cycle)[: self.offsets[rest]]

    def count(self, name: str, n: int) -> int:
        """How many of the first ``n`` events are called ``name`` (any case)."""
        low = name.lower()
        per_cycle = [i for i, nm in enumerate(self.names) if nm.lower() == low]
        full, rest = divmod(n, len(self.frames))
        return full * len(per_cycle) + bisect.bisect_left(per_cycle, rest)

    def kinds(self) -> list[tuple[str, int]]:
        """``(name, count)`` per event kind in one cycle, most frequent first."""
        return collections.Counter(self.names).most_common()

    @property
    def mean_size(self) -> float:
        return len(self.cycle) / len(self.frames)


def build_event_stream(
    directory: Path | None = None, captures: Iterable[str] = DEFAULT_CAPTURES
) -> EventStream:
    """Every unsolicited event of ``captures``, re-encoded byte-exact, in wire order."""
    from ami_async.message import Event, Response

    directory = directory or fixtures_dir()
    frames: list[bytes] = []
    names: list[str] = []
    for capture in captures:
        raw, messages = _read_capture(directory / f"{capture}.bin")
        lists = {
            m.action_id
            for m in messages
            if isinstance(m, Response) and (m.get("EventList") or "").lower() == "start"
        }
        for msg in messages:
            if not isinstance(msg, Event):
                continue
            if msg.name in ("FullyBooted", "SuccessfulAuth"):
                continue  # the login's, not traffic
            if msg.action_id is not None and msg.action_id in lists:
                continue  # a list item or marker: the answer to an action
            frame = _encode(msg.headers)
            if frame not in raw:
                raise ValueError(f"{capture}: re-encoded {msg.name} is not byte-exact")
            frames.append(frame)
            names.append(msg.name)
    if not frames:
        raise ValueError("no events found in the captures")
    return EventStream(frames, names)


def _login_events(directory: Path) -> bytes:
    from ami_async.message import Event

    _raw, messages = _read_capture(directory / "login_success.bin")
    out = [
        _encode(m.headers)
        for m in messages
        if isinstance(m, Event) and m.name in ("FullyBooted", "SuccessfulAuth")
    ]
    return b"".join(out)


def _list_templates(directory: Path) -> tuple[list[tuple[bytes, bytes]], bytes, bytes]:
    """The real CoreShowChannel items, split around their ActionID, plus response/marker."""
    from ami_async.message import Event, Response

    _raw, messages = _read_capture(directory / "coreshowchannels.bin")
    items: list[tuple[bytes, bytes]] = []
    response = complete = b""
    for m in messages:
        if isinstance(m, Event) and m.name == "CoreShowChannel":
            before: list[tuple[str, str]] = []
            after: list[tuple[str, str]] = []
            seen = False
            for key, value in m.headers:
                if key.lower() == "actionid":
                    seen = True
                elif seen:
                    after.append((key, value))
                else:
                    before.append((key, value))
            head = _encode(before)[:-2] + b"ActionID: "
            items.append((head, b"\r\n" + _encode(after)))
        elif isinstance(m, Response) and (m.get("EventList") or "").lower() == "start":
            response = b"Response: Success\r\nActionID: %s\r\nEventList: start\r\n"
            response += f"Message: {m.get('Message')}\r\n\r\n".encode()
        elif isinstance(m, Event) and m.name == "CoreShowChannelsComplete":
            complete = b"Event: CoreShowChannelsComplete\r\nActionID: %s\r\n"
            complete += b"EventList: Complete\r\nListItems: %d\r\n\r\n"
    if not items or not response or not complete:
        raise ValueError("coreshowchannels.bin: list not found")
    return items, response, complete


def _parse_action(frame: bytes) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    for line in frame.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep:
            fields.setdefault(key.strip().lower().decode("latin-1"), value.strip())
    return fields


class LoadServer:
    """The server itself, in the calling process (threads). See :class:`ServerProcess`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        list_items: int = 10_000,
        fixtures: Path | None = None,
        captures: Iterable[str] = DEFAULT_CAPTURES,
    ) -> None:
        directory = fixtures or fixtures_dir()
        self.host = host
        self.port = port
        self.list_items = list_items
        self.stream = build_event_stream(directory, captures)
        self._login_events = _login_events(directory)
        self._items, self._list_response, self._list_complete = _list_templates(directory)
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._closing = False
        self._restart_downtime: float | None = None
        self._thread: threading.Thread | None = None
        self.last_down = 0.0
        self.last_up = 0.0
        self.restarts = 0

    # -- lifecycle ------------------------------------------------------------------

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(1024)
        self.port = sock.getsockname()[1]
        self._listener = sock

    def start(self) -> int:
        """Listen and serve in a background thread; return the port."""
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name="accept", daemon=True)
        self._thread.start()
        return self.port

    def close(self) -> None:
        self._closing = True
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5)
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _accept_loop(self) -> None:
        while True:
            listener = self._listener
            assert listener is not None
            ready, _, _ = select.select([listener, self._wake_r], [], [])
            if self._wake_r in ready:
                self._wake_r.recv(64)
                if self._closing:
                    listener.close()
                    return
                downtime = self._restart_downtime
                if downtime is not None:
                    self._restart_downtime = None
                    self._restart(downtime)
                continue
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _restart(self, downtime: float) -> None:
        assert self._listener is not None
        self._listener.close()
        self._drop_all()
        self.last_down = time.monotonic()
        if downtime > 0:
            time.sleep(downtime)
        self._listen()
        self.last_up = time.monotonic()
        self.restarts += 1

    def request_restart(self, downtime: float = 0.0) -> None:
        self._restart_downtime = downtime
        self._wake_w.send(b"r")

    # -- one connection ---------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.sendall(BANNER)
            buf = b""
            while True:
                data = conn.recv(262144)
                if not data:
                    return
                buf += data
                out: list[bytes] = []
                while True:
                    end = buf.find(_CRLF2)
                    if end < 0:
                        break
                    frame, buf = buf[:end], buf[end + 4 :]
                    if frame.strip() and not self._answer(conn, _parse_action(frame), out):
                        return
                if out:
                    conn.sendall(b"".join(out))
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, conn: socket.socket, fields: dict[str, bytes], out: list[bytes]) -> bool:
        """Append the answer to ``out`` (or send it); False to close the connection."""
        action = fields.get("action", b"").lower()
        aid = fields.get("actionid")
        idline = b"ActionID: " + aid + b"\r\n" if aid is not None else b""
        if action == b"ping":
            stamp = b"%.6f" % time.time()
            out.append(b"Response: Success\r\n" + idline + b"Ping: Pong\r\nTimestamp: ")
            out.append(stamp + b"\r\n\r\n")
        elif action == b"login":
            out.append(
                b"Response: Success\r\n" + idline + b"Message: Authentication accepted\r\n\r\n"
            )
            if fields.get("events", b"on").lower() not in (b"off", b"no", b"false"):
                out.append(self._login_events)
        elif action == b"benchflood":
            count = int(fields.get("count", b"0"))
            self._flush(conn, out)
            for chunk in self.stream.chunks(count):
                conn.sendall(chunk)
            out.append(b"Response: Success\r\n" + idline)
            out.append(b"Message: Flood done\r\nEvents: %d\r\n\r\n" % count)
        elif action == b"coreshowchannels":
            n = int(fields.get("benchitems", b"%d" % self.list_items))
            self._send_list(conn, aid or b"", n, out)
        elif action == b"benchstall":
            pass
        elif action == b"benchrestart":
            out.append(b"Response: Success\r\n" + idline + b"Message: Restarting\r\n\r\n")
            self._flush(conn, out)
            self.request_restart(float(fields.get("downtime", b"0")))
        elif action == b"benchinfo":
            out.append(b"Response: Success\r\n" + idline)
            out.append(
                b"LastDown: %.6f\r\nLastUp: %.6f\r\nRestarts: %d\r\nCPUTime: %.6f\r\n\r\n"
                % (self.last_down, self.last_up, self.restarts, time.process_time())
            )
        elif action == b"events":
            mask = fields.get("eventmask", b"on").lower()
            state = b"Off" if mask in (b"off", b"no", b"false") else b"On"
            out.append(b"Response: Success\r\n" + idline + b"Events: " + state + b"\r\n\r\n")
        elif action == b"logoff":
            out.append(
                b"Response: Goodbye\r\n" + idline + b"Message: Thanks for all the fish.\r\n\r\n"
            )
            self._flush(conn, out)
            return False
        else:
            name = fields.get("action", b"")
            out.append(b"Response: Error\r\n" + idline + b"Message: Invalid/unknown command: ")
            out.append(name + b". Use Action: ListCommands to show available commands.\r\n\r\n")
        return True

    @staticmethod
    def _flush(conn: socket.socket, out: list[bytes]) -> None:
        if out:
            conn.sendall(b"".join(out))
            out.clear()

    def _send_list(self, conn: socket.socket, aid: bytes, n: int, out: list[bytes]) -> None:
        parts = [self._list_response % aid]
        items = self._items
        for i in range(n):
            head, tail = items[i % len(items)]
            parts += (head, aid, tail)
        parts.append(self._list_complete % (aid, n))
        out.append(b"".join(parts))
        self._flush(conn, out)


# -- in its own process ---------------------------------------------------------------------


def pin_to_cpu(cpu: int | None) -> None:
    """Keep this process on one CPU (Linux; a no-op elsewhere or for ``None``)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})


def _server_main(
    conn: multiprocessing.connection.Connection, options: dict[str, Any], cpu: int | None
) -> None:
    pin_to_cpu(cpu)
    server = LoadServer(**options)
    conn.send(server.start())
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        conn.recv()  # any message, or the parent going away, stops the server
    server.close()


class ServerProcess:
    """:class:`LoadServer` in a child process: ``with ServerProcess() as srv: srv.port``.

    ``cpu`` pins the process to that CPU (the benchmark runner gives the server
    CPU 0 and the client under test CPU 1).
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, cpu: int | None = None, **options: Any
    ) -> None:
        self.host = host
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_server_main,
            args=(child, {"host": host, "port": port, **options}, cpu),
            name="ami-loadserver",
            daemon=True,
        )
        self._proc.start()
        child.close()
        try:
            if not self._conn.poll(60):
                raise EOFError
            self.port: int = self._conn.recv()
        except EOFError:
            self._proc.terminate()
            raise RuntimeError("the load server did not start (see its error above)") from None

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def close(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._conn.send("stop")
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
        self._conn.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--list-items", type=int, default=10_000)
    parser.add_argument("--fixtures", type=Path, default=None)
    parser.add_argument(
        "--describe", action="store_true", help="print the event stream's make-up and exit"
    )
    args = parser.parse_args(argv)
    if args.describe:
        stream = build_event_stream(args.fixtures)
        print(
            f"{len(stream)} events per cycle, {len(stream.cycle)} bytes "
            f"({stream.mean_size:.0f} B/event), {len(stream.kinds())} kinds:"
        )
        for name, count in stream.kinds():
            print(f"  {name:<20} {count:5d}  {100 * count / len(stream):5.1f} %")
        return 0
    server = LoadServer(args.host, args.port, list_items=args.list_items, fixtures=args.fixtures)
    port = server.start()
    print(f"listening on {args.host}:{port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
