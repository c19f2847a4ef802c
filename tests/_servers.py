"""Raw AMI servers for tests that need a peer FakeAsterisk would not be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


async def answer_login(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send the banner, read the Login and accept it."""
    writer.write(BANNER)
    login = await reader.readuntil(b"\r\n\r\n")
    action_id = next(
        line.split(b": ", 1)[1] for line in login.split(b"\r\n") if line.startswith(b"ActionID")
    )
    writer.write(b"Response: Success\r\nActionID: " + action_id + b"\r\n\r\n")


@asynccontextmanager
async def deaf_server() -> AsyncIterator[int]:
    """A server that accepts the login and then never reads again; yields its port."""
    release = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answer_login(reader, writer)
        await release.wait()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        release.set()
        server.close()
