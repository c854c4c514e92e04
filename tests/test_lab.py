"""Claims about the chapters live on the reader's own machine: ``make lab``'s JupyterLab, driven in headless Chromium.

Needs JupyterLab (the ``book`` extra) and chromium.  ``make test`` sets STAINBOOK_REQUIRE_SITE=1, so that a missing
one fails instead of skipping.  The server runs on 127.0.0.1 with a random port and token, from a temporary root
that holds a copy of the chapter (so that nothing the run saves lands in the checkout), with temporary settings,
runtime and data folders, and with ``make lab``'s settings (``tools/jupyterlab``: Markdown opens as a Jupytext
notebook).  The browser drives JupyterLab's own commands (the app is exposed to the page for the test), and every
request that does not go to the local server is failed.  Every wait is bounded, and the server and its kernel are
stopped at the end, even on failure.
"""

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_driver import CHROMIUM, SHOWN_SLIDERS, DevTools

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("STAINBOOK_REQUIRE_SITE") == "1"
CHAPTER = "book/corruptions.md"

try:
    import jupyterlab
    import jupytext  # noqa: F401  (its server extension opens the chapter as a notebook)
except ImportError:
    jupyterlab = None

if jupyterlab is None or CHROMIUM is None:
    if REQUIRED:
        raise RuntimeError(f"the JupyterLab test needs jupyterlab and jupytext (book extra) and chromium ({CHROMIUM})")
    pytest.skip("no jupyterlab or no chromium (pip install -e '.[book]')", allow_module_level=True)

# User settings of the test's JupyterLab: every cell stays in the page (no windowing), nothing saves on its own.
USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def kill_processes_naming(text: str) -> None:
    """Kill (by pid) the processes whose command line names ``text``: the kernels this test's server started."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a temporary root with the chapter; yields (base URL, token)."""
    root = tmp_path / "root"
    (root / "book").mkdir(parents=True)
    shutil.copy(ROOT / CHAPTER, root / CHAPTER)
    # The root is a stainbook folder for stainlib.book.project_dir: the chapter finds the checkout's data there.
    shutil.copy(ROOT / "_toc.yml", root / "_toc.yml")
    (root / "stainlib").symlink_to(ROOT / "stainlib")
    (root / "data").symlink_to(ROOT / "data")
    for name, value in USER_SETTINGS.items():
        path = tmp_path / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    runtime = tmp_path / "runtime"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "data"),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",  # CI's containers run as root
        f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={ROOT / 'tools' / 'jupyterlab'}",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no extension search on PyPI
    ]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"the server stopped: {(tmp_path / 'server.log').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the server did not answer within 60 s"
            try:
                get(f"{base}/api/status?token={token}")
                break
            except OSError:
                time.sleep(0.3)
        yield base, token
    finally:
        try:  # stops the kernels, then the server
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        kill_processes_naming(str(runtime))  # a kernel left behind (its connection file lies in our runtime folder)
        log.close()
        print((tmp_path / "server.log").read_text()[-3000:])


NOTEBOOK = "jupyterapp.shell.currentWidget"
# Run every cell above the explorer's, then the explorer's (JupyterLab's "Run All Above" and "Run Selected").
RUN_TO_EXPLORER = f"""(() => {{
  const panel = {NOTEBOOK};
  const cells = panel.content.widgets;
  const index = cells.findIndex(c => c.model.type === 'code'
                                     && c.model.sharedModel.getSource().includes('corruption_explorer('));
  if (index < 0) return -1;
  panel.content.activeCellIndex = index;
  jupyterapp.commands.execute('notebook:run-all-above')
    .then(() => jupyterapp.commands.execute('notebook:run-cell'));
  return index;
}})()"""
LIVE = "document.querySelector('img.stainlib-live-picture')"
IRREGULARITY = "[...document.querySelectorAll('.widget-slider')].find(s => s.innerText.startsWith('irregularity'))"
PICTURE = f"""(async () => {{
  const img = {LIVE};
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return {{src: img.src, png: btoa(binary), readout: {IRREGULARITY}.querySelector('.widget-readout').innerText}};
}})()"""
ERRORS = """[...document.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
  .map(e => e.innerText.slice(-600)).join('\\n---\\n')"""


@pytest.mark.lab
@pytest.mark.slow
def test_lab_opens_the_corruptions_chapter_as_a_notebook_runs_it_and_a_stain_slider_redraws_the_picture(lab, tmp_path):
    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    started, phases = time.monotonic(), {}
    browser = DevTools(tmp_path, height=1600, timeout=60)
    try:
        browser.call("Page.navigate", url=f"{base}/lab/tree/{CHAPTER}?token={token}")
        # make lab's settings open the Markdown chapter as a Jupytext notebook, with a kernel.
        opened = f"window.jupyterapp && {NOTEBOOK}?.context?.path === {json.dumps(CHAPTER)} && {NOTEBOOK}.content"
        browser.wait_for(f"{opened} && {NOTEBOOK}.content.widgets.length > 10", timeout=90)
        factory = browser.evaluate(f"jupyterapp.docRegistry.defaultWidgetFactory({json.dumps(CHAPTER)}).name")
        assert factory == "Jupytext Notebook", "tools/jupyterlab's settings make Markdown open as a Jupytext notebook"
        assert browser.evaluate(f"{NOTEBOOK}.hasClass('jp-NotebookPanel')"), "the chapter opened as a notebook"
        phases["opened"] = time.monotonic() - started
        browser.wait_for(f"{NOTEBOOK}.sessionContext.session?.kernel?.status === 'idle'", timeout=60)
        phases["kernel"] = time.monotonic() - started
        assert browser.evaluate(RUN_TO_EXPLORER) > 0, "the chapter has the explorer's cell"
        # The explorer's front end reaches the kernel, which switches it to live mode and draws the picture.
        live = f"{LIVE}?.src && document.body.innerText.includes('Live: every control redraws the picture')"
        try:
            browser.wait_for(live, timeout=150)
        except AssertionError:
            raise AssertionError(f"no live explorer; the notebook's errors: {browser.evaluate(ERRORS)}") from None
        phases["live"] = time.monotonic() - started
        browser.evaluate(f"{IRREGULARITY}.scrollIntoView({{block: 'center'}})")
        browser.screenshot(".jp-Cell.jp-mod-active .jp-OutputArea", SHOTS / "lab-explorer-0-live.png")
        before = browser.evaluate(PICTURE)
        sliders = browser.evaluate(SHOWN_SLIDERS)
        assert all(s["fits"] for s in sliders), f"readouts wider than their boxes: {sliders}"
        readouts = {s["label"]: s["readout"] for s in sliders}
        assert readouts["semi-axes"] == "1 \u2013 12" and readouts["irregularity"] == "0.10", "live sliders, paper"
        # A Stain slider, moved with the keyboard: the irregularity to its maximum.
        browser.evaluate(f"{IRREGULARITY}.querySelector('.noUi-handle').focus()")
        browser.press("End", 35)
        browser.wait_for(f"{LIVE}.src !== {json.dumps(before['src'])}", timeout=60)
        after = browser.evaluate(PICTURE)
        phases["redrawn"] = time.monotonic() - started
        browser.screenshot(".jp-Cell.jp-mod-active .jp-OutputArea", SHOTS / "lab-explorer-1-irregularity.png")
    finally:
        browser.close()
    print("JupyterLab, seconds since the browser started:", ", ".join(f"{k} {v:.0f}" for k, v in phases.items()))
    assert after["readout"] == "0.50", "the slider moved to its maximum"
    assert after["png"] != before["png"], "the kernel redrew the picture with the new irregularity"
    assert base64.b64decode(after["png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not browser.blocked, f"the page tried to leave the machine: {browser.blocked[:5]}"
