"""Headless Chromium driven over the DevTools protocol: a small client on trio-websocket."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.support.peers import require_peer
from tests.support.wait import wait_until

START_S = 30.0
CALL_S = 15.0


@dataclass
class DevTools:
    """One DevTools connection; calls are sequential, events are kept in `events`."""

    socket: WebSocketConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    """Events that arrived while waiting for replies (console errors, exceptions)."""
    _next_id: int = 0

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        """Send a command (to a page session when given) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        with trio.fail_after(CALL_S):
            await self.socket.send_message(json.dumps(message))
            while True:
                reply = json.loads(await self.socket.get_message())
                if reply.get("id") == self._next_id:
                    break
                if "method" in reply:
                    self.events.append(reply)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        """The page's uncaught JavaScript exceptions seen so far."""
        return [e for e in self.events if e["method"] == "Runtime.exceptionThrown"]


@dataclass
class Page:
    """A browser tab attached in flat mode."""

    devtools: DevTools
    session: str

    async def navigate(self, url: str) -> None:
        """Open `url` and wait until it has loaded."""
        await self.devtools.call("Page.navigate", self.session, url=url)
        await self.wait_for(
            f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        )

    async def resize(self, width: int, height: int) -> None:
        await self.devtools.call(
            "Emulation.setDeviceMetricsOverride",
            self.session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = await self.devtools.call(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def submit_limit(self, phase: str, lease_s: int, token: str) -> None:
        """Fill in and submit the dashboard's site-limit form (phase currents as typed)."""
        fields = json.dumps({"phase": phase, "lease": str(lease_s), "token": token})
        await self.evaluate(
            f"""(() => {{
                const form = document.getElementById('limit-form');
                for (const [name, value] of Object.entries({fields})) form[name].value = value;
                form.requestSubmit();
            }})()"""
        )

    async def wait_for(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Poll until the expression is truthy (a throw counts as not yet); its value."""
        guarded = f"(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        return await wait_until(lambda: self.evaluate(guarded), expression, timeout_s)

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport to `path`."""
        result = await self.devtools.call("Page.captureScreenshot", self.session, format="png")
        path.write_bytes(base64.b64decode(result["data"]))
        return path


async def _devtools_url(stderr: trio.abc.ReceiveStream, log: list[str]) -> str:
    buffer = b""
    while True:
        chunk = await stderr.receive_some()
        if not chunk:
            raise RuntimeError("chromium exited before DevTools listened:\n" + "".join(log))
        buffer += chunk
        *lines, rest = buffer.split(b"\n")
        buffer = rest
        for raw in lines:
            line = raw.decode(errors="replace")
            log.append(line + "\n")
            if line.startswith("DevTools listening on "):
                return line.removeprefix("DevTools listening on ").strip()


async def _drain(stderr: trio.abc.ReceiveStream, log: list[str]) -> None:
    while chunk := await stderr.receive_some():
        log.append(chunk.decode(errors="replace"))


@asynccontextmanager
async def open_chromium(profile: Path) -> AsyncIterator[tuple[DevTools, list[str]]]:
    """Start Debian's headless chromium with a fresh profile; yield DevTools and its log."""
    binary = require_peer("chromium")
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    log: list[str] = []
    process = await trio.lowlevel.open_process(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        assert process.stderr is not None
        with trio.fail_after(START_S):
            url = await _devtools_url(process.stderr, log)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, process.stderr, log)
            async with open_websocket_url(url, max_message_size=64 * 1024 * 1024) as socket:
                yield DevTools(socket), log
            nursery.cancel_scope.cancel()
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def new_page(devtools: DevTools, width: int, height: int) -> Page:
    """A new tab of `width` x `height` CSS pixels."""
    target = await devtools.call("Target.createTarget", url="about:blank")
    attached = await devtools.call(
        "Target.attachToTarget", targetId=target["targetId"], flatten=True
    )
    page = Page(devtools, attached["sessionId"])
    await devtools.call("Page.enable", page.session)
    await devtools.call("Runtime.enable", page.session)
    await page.resize(width, height)
    return page
