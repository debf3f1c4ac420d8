"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client): real
mouse events, basic-auth answered, page script evaluated. Enough for the field editor test."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import pytest


class Browser:
    """One headless Chromium with one page; use ``async with Browser(...) as b``."""

    def __init__(self, profile: Path, user: str | None = None, password: str | None = None,
                 size: tuple[int, int] = (1280, 900)) -> None:
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            pytest.fail("headless Chromium is needed: apt-get install chromium (scripts/dev.sh test does)")
        self.profile, self.user, self.password = profile, user, password
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--remote-debugging-port=0", f"--window-size={size[0]},{size[1]}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[dict[str, Any]]] = set()  # answers to paused requests, in flight

    async def __aenter__(self) -> Browser:
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("Chromium did not open its DevTools port")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        if self.user is not None:
            await self.send("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": "*"}])
        await self.send("Page.enable")
        await self.send("Runtime.enable")
        return self

    async def __aexit__(self, *_: object) -> None:
        self._reader.cancel()
        await self.ws.close()
        await self.session.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[self._ids] = future
        await self.ws.send_str(json.dumps({"id": self._ids, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") == "Fetch.requestPaused":
                self._spawn(self.send("Fetch.continueRequest", requestId=data["params"]["requestId"]))
            elif data.get("method") == "Fetch.authRequired":
                self._spawn(self.send(
                    "Fetch.continueWithAuth", requestId=data["params"]["requestId"],
                    authChallengeResponse={"response": "ProvideCredentials", "username": self.user,
                                           "password": self.password}))

    def _spawn(self, coro: Coroutine[Any, Any, dict[str, Any]]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)

    async def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited)."""
        out = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in out:
            raise AssertionError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    async def wait_js(self, expression: str, what: str, timeout: float = 60.0) -> Any:
        """Evaluate until the value is truthy; that value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = await self.js(expression)
            except AssertionError:  # the page is (re)loading
                last = None
            if last:
                return last
            await asyncio.sleep(0.2)
        raise AssertionError(f"{what}: still {last!r} after {timeout:g} s")

    async def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
        """Press the left button at ``start``, move in steps, release at ``end`` (page pixels)."""
        await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=start[0], y=start[1])
        await self.send("Input.dispatchMouseEvent", type="mousePressed", x=start[0], y=start[1], button="left",
                        buttons=1, clickCount=1)
        for i in range(1, steps + 1):
            x = start[0] + (end[0] - start[0]) * i / steps
            y = start[1] + (end[1] - start[1]) * i / steps
            await self.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left", buttons=1)
        await self.send("Input.dispatchMouseEvent", type="mouseReleased", x=end[0], y=end[1], button="left",
                        buttons=0, clickCount=1)
