"""A minimal headless-Chromium driver over the DevTools protocol, for the browser test.

Why not parse ``--enable-logging`` output: the protocol reports console calls, log
entries, uncaught exceptions and every network request as structured events, and it
takes a full-page screenshot. The browser listens on 127.0.0.1 only, on a port it picks
itself (``--remote-debugging-port=0`` writes it to ``DevToolsActivePort``), with a fresh
profile and every background network feature switched off.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLog:
    """What the page did while loading: problems, and every URL it asked for."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class Browser:
    """One Chromium process and one DevTools websocket to it."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            else:
                self._events.put_nowait(data)

    async def aclose(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()

    async def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        i = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[i] = fut
        msg: dict[str, Any] = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        await self._ws.send_str(json.dumps(msg))
        reply = await asyncio.wait_for(fut, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def open(
        self, url: str, width: int, shot: Path, crop: tuple[int, int] | None = None
    ) -> PageLog:
        """Load ``url`` in a fresh tab, collect problems, save a full-page PNG.

        ``crop`` = (top, height) in CSS pixels saves only that band (for a close look).
        """
        log = PageLog()
        target = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "Network"):
            await self.send(f"{domain}.enable", session=session)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        await self.send("Page.navigate", {"url": url}, session=session)
        loaded = False
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            timeout = 0.5 if loaded else deadline - asyncio.get_running_loop().time()
            try:
                ev = await asyncio.wait_for(self._events.get(), max(timeout, 0.01))
            except TimeoutError:
                if loaded:
                    break  # quiet for half a second after load: done
                raise
            if ev.get("sessionId") != session:
                continue
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Page.loadEventFired":
                loaded = True
            elif method == "Runtime.consoleAPICalled" and p.get("type") in {"error", "assert"}:
                log.errors.append(
                    "console: "
                    + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", []))
                )
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                e = p["entry"]
                log.errors.append(f"log: {e.get('text')} {e.get('url', '')}".strip())
            elif method == "Runtime.exceptionThrown":
                log.errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif method == "Network.requestWillBeSent":
                log.requests.append(str(p.get("request", {}).get("url")))
            elif method == "Network.loadingFailed":
                log.errors.append(f"network: {p.get('errorText')}")
        metrics = await self.send("Page.getLayoutMetrics", session=session)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        full = int(size["height"]) + 1
        top, height = (0, full) if crop is None else (crop[0], min(crop[1], full - crop[0]))
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": full, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        png = await self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": top, "width": width, "height": height, "scale": 1},
            },
            session=session,
        )
        await asyncio.to_thread(shot.write_bytes, base64.b64decode(png["data"]))
        await self.send("Target.closeTarget", {"targetId": target})
        return log


@contextlib.asynccontextmanager
async def launch(binary: str, workdir: Path) -> AsyncIterator[Browser]:
    """Start Chromium with a fresh profile under ``workdir``; stop it on exit."""
    profile = workdir / "profile"
    profile.mkdir(parents=True)
    stderr = (workdir / "chromium.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stderr,
        stderr=stderr,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.is_file() and len(port_file.read_text().splitlines()) >= 2:
                break
            if proc.returncode is not None:
                raise RuntimeError(
                    f"chromium exited with {proc.returncode}; see {workdir}/chromium.log"
                )
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("chromium did not open its DevTools port within 30 s")
        port, path = port_file.read_text().splitlines()[:2]
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0)
            browser = Browser(ws)
            try:
                yield browser
            finally:
                await browser.aclose()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        stderr.close()
