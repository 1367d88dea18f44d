"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe): stdlib only, offline.

Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4. `Browser.open`
loads a page and records console messages, uncaught exceptions, log entries and every network request,
so a test can assert "no console errors" and "no network at view time".
Also runnable: `python tests/core/dashboard/chromium.py PAGE.html OUT.png` takes a screenshot for the docs.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--disable-default-apps", "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, executable: str | None = None, timeout: float = 60.0) -> None:
        exe = executable or chromium_path()
        if exe is None:
            raise FileNotFoundError("chromium not found (scripts/test-setup.d/60-chromium.sh installs it)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="wia-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire() -> None:  # in the child: the protocol pipes on fds 3 and 4 (via high fds: no clobbering)
            os.dup2(to_browser_r, 200)
            os.dup2(from_browser_w, 201)
            os.dup2(200, 3)
            os.dup2(201, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=wire, pass_fds=(3, 4))
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    # -- protocol --------------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ConnectionError(f"chromium closed the pipe (exit {self.proc.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event

    # -- page ------------------------------------------------------------------------------------------
    def open(self, url: str, width: int = 1400, height: int = 1000) -> "Page":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return Page(self, session)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.browser.events if e.get("method") == method and e.get("sessionId") == self.session]

    def console_problems(self) -> list[str]:
        """Console errors/warnings, uncaught exceptions and error-level log entries seen so far."""
        out = [f"exception: {e['exceptionDetails'].get('text')} {e['exceptionDetails'].get('exception', {}).get('description', '')}"
               for e in self._events("Runtime.exceptionThrown")]
        out += [f"console.{e['type']}: {[a.get('value', a.get('description')) for a in e.get('args', [])]}"
                for e in self._events("Runtime.consoleAPICalled") if e["type"] in ("error", "warning", "assert")]
        out += [f"log {e['entry']['level']}: {e['entry'].get('text')} {e['entry'].get('url', '')}"
                for e in self._events("Log.entryAdded") if e["entry"]["level"] in ("error", "warning")]
        return out

    def requests(self) -> list[str]:
        return [e["request"]["url"] for e in self._events("Network.requestWillBeSent")]

    def screenshot(self, path: str | Path) -> None:
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
        self.browser.send("Emulation.setDeviceMetricsOverride",
                          {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=self.session)
        data = self.browser.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        Path(path).write_bytes(base64.b64decode(data))


if __name__ == "__main__":  # pragma: no cover - docs helper
    page_path, out = Path(sys.argv[1]).resolve(), sys.argv[2]
    with Browser() as browser:
        page = browser.open(page_path.as_uri())
        problems = page.console_problems()
        page.screenshot(out)
    print(f"screenshot -> {out}; console problems: {problems or 'none'}")
