"""A headless Chromium driven through the Chrome DevTools protocol over a pipe (no extra package).

Shared by the browser tests: ``test_site.py`` (the built site, no kernel) and ``test_lab.py`` (JupyterLab with a
kernel).  Every read from the browser is bounded in time, so a browser that hangs fails a test instead of stalling it.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class DevTools:
    """A headless Chromium driven through the DevTools protocol on a pipe (fd 3: commands in, fd 4: messages out).

    Every network request pauses in the ``Fetch`` domain: requests to the local server go on, every other one is
    failed and recorded in ``blocked``; ``requested`` records them all.  A read that waits more than ``timeout``
    seconds for the browser raises ``TimeoutError``.
    """

    def __init__(self, tmp: Path, width: int = 1280, height: int = 1400, timeout: float = 120.0):
        to_chrome, self._out = os.pipe()
        self._in, from_chrome = os.pipe()

        def wire():
            os.dup2(to_chrome, 3)
            os.dup2(from_chrome, 4)

        flags = [*FLAGS, "--remote-debugging-pipe", f"--user-data-dir={tmp / 'profile-devtools'}", "about:blank"]
        self.proc = subprocess.Popen(
            [CHROMIUM, *flags], pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._next_id, self.session, self.timeout = b"", 0, None, timeout
        self.requested: list[str] = []
        self.blocked: list[str] = []
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Fetch.enable", patterns=[{"urlPattern": "*"}])
            self.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
        except BaseException:
            self.close()
            raise

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], self.timeout)
            if not ready:
                raise TimeoutError(f"chromium sent nothing for {self.timeout} s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _send(self, method: str, params: dict) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _on_event(self, message: dict) -> None:
        if message.get("method") == "Fetch.requestPaused":
            params = message["params"]
            url = params["request"]["url"]
            self.requested.append(url)
            if url.startswith("http://127.0.0.1"):
                self._send("Fetch.continueRequest", {"requestId": params["requestId"]})
            else:
                self.blocked.append(url)
                self._send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": "BlockedByClient"})

    def call(self, method: str, **params) -> dict:
        wanted = self._send(method, params)
        while True:
            message = self._read()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._on_event(message)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")

    def press(self, key: str, code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code)

    def click(self, selector: str) -> None:
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def screenshot(self, selector: str, path: Path) -> None:
        rect = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView();"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()"
        )
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**rect, "scale": 1})
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._in)
        os.close(self._out)


# The sliders shown in the page (a Stack puts only its selected page in the DOM): label, readout (null where hidden),
# and whether the readout's text fits its box.
SHOWN_SLIDERS = """[...document.querySelectorAll('.widget-slider')].filter(s => s.offsetParent !== null).map(s => {
  const readout = s.querySelector('.widget-readout');
  return {label: s.querySelector('.widget-label').innerText, readout: readout.offsetParent ? readout.innerText : null,
          fits: readout.scrollWidth <= readout.clientWidth, width: [readout.scrollWidth, readout.clientWidth],
          font: getComputedStyle(readout).font};
})"""
