"""A real headless chromium for the tests, driven over the DevTools protocol.

No selenium: chromium is started with ``--remote-debugging-port=0``, writes the
port it chose to ``DevToolsActivePort`` in its fresh profile directory, and the
page is driven over one websocket with aiohttp (already a test dependency).
The flags keep it off the network: without ``--disable-background-networking``
and friends it phones home at start-up, which this sandbox refuses.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

#: Where Debian puts it (`apt-get install chromium`); CHROMIUM overrides.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 30.0


class BrowserError(AssertionError):
    """The browser did not start, or a DevTools command failed."""


def available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


class Page:
    """One tab: `navigate`, `evaluate` JavaScript, `wait_for` a condition, `screenshot`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self.console: list[str] = []
        """What the page logged, and its uncaught exceptions (shown when a wait fails)."""
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                future = self._pending.pop(data.get("id", -1), None)
                if future is not None:
                    if not future.done():
                        future.set_result(data)
                    continue
                method = data.get("method", "")
                params = data.get("params", {})
                if method == "Runtime.consoleAPICalled":
                    args = params.get("args", [])
                    self.console.append(" ".join(str(a.get("value", a.get("type"))) for a in args))
                elif method == "Runtime.exceptionThrown":
                    details = params.get("exceptionDetails", {})
                    self.console.append(
                        f"exception: {details.get('exception', {}).get('description', details)}"
                    )
                flag = self._events.get(method)
                if flag is not None:
                    flag.set()
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one DevTools command; its `result`, or `BrowserError`."""
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, START_TIMEOUT)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def navigate(self, url: str, timeout: float = START_TIMEOUT) -> None:
        """Open `url` and wait for its load event."""
        loaded = self._events["Page.loadEventFired"] = asyncio.Event()
        answer = await self.send("Page.navigate", url=url)
        if answer.get("errorText"):
            raise BrowserError(f"cannot open {url}: {answer['errorText']}")
        await asyncio.wait_for(loaded.wait(), timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (JSON-able), awaited if it is a promise."""
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
        return answer.get("result", {}).get("value")

    async def wait_for(self, expression: str, what: str, timeout: float) -> Any:
        """Evaluate `expression` until it is truthy (at most `timeout` seconds); its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                text = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(
                    f"the page did not show {what} within {timeout} s\n--- page text\n{text}"
                    f"\n--- console\n" + "\n".join(self.console)
                )
            await asyncio.sleep(0.05)  # a poll interval, not an assertion

    async def screenshot(self, path: Path) -> Path:
        """A PNG of the viewport, written to `path`."""
        answer = await self.send("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(answer["data"]))
        return path

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    """The port chromium chose, from the `DevToolsActivePort` file it writes at start-up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    port_file = profile / "DevToolsActivePort"
    while True:
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(port_file.read_text().splitlines()[0])
        if process.returncode is not None:
            log = (profile.parent / "chromium.log").read_text(errors="replace")
            raise BrowserError(f"chromium exited with {process.returncode}\n{log}")
        if loop.time() > deadline:
            raise BrowserError(f"chromium wrote no DevToolsActivePort within {START_TIMEOUT} s")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def open_page(width: int = 1280, height: int = 860) -> AsyncIterator[Page]:
    """A headless chromium with a fresh profile and one page; everything removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="ami-async-chromium-"))
    profile = workdir / "profile"
    log = await asyncio.to_thread(open, workdir / "chromium.log", "wb")
    with log:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        port = await _devtools_port(profile, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = await answer.json()
            pages = [t for t in targets if t.get("type") == "page"]
            if not pages:
                raise BrowserError(f"chromium has no page target: {targets}")
            ws = await http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(ws)
            try:
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=width,
                    height=height,
                    deviceScaleFactor=1,
                    mobile=False,
                )
                yield page
            finally:
                await page.close()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
