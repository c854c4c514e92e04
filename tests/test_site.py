"""Claims about the built site, checked in a real browser (headless Chromium) on 127.0.0.1.

The site must have been built (``make book``).  ``make test`` builds it and sets STAINBOOK_REQUIRE_SITE=1, so that a
missing site or browser fails instead of skipping.  Screenshots are saved in _build/screenshots/ as test artefacts.
"""

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("STAINBOOK_REQUIRE_SITE") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for c in TOC["chapters"]]
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

if not (SITE / "index.html").exists() or CHROMIUM is None:
    if REQUIRED:
        raise RuntimeError(f"the browser test needs the built site ({SITE}) and chromium ({CHROMIUM})")
    pytest.skip("no built site or no chromium (run make book)", allow_module_level=True)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(Quiet, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def page_requests(netlog: Path) -> list[str]:
    """URLs requested on behalf of a page served from 127.0.0.1: the navigation, and every request it initiated.

    Chromium's own background requests (clock, account and update checks) carry no page initiator and are not the
    page's doing, so they are left out.
    """
    events = json.loads(netlog.read_text())["events"]
    urls = []
    for event in events:
        params = event.get("params") or {}
        url = params.get("url")
        if url and (params.get("initiator", "").startswith("http://127.0.0.1") or url.startswith("http://127.0.0.1")):
            urls.append(url)
    return urls


def browse(url: str, tmp: Path, name: str) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and every URL the page requested; also saves a screenshot."""
    netlog = tmp / f"{name}.netlog.json"
    profile = tmp / f"profile-{name}"
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000"]
    dom = subprocess.run(
        [*common, f"--log-net-log={netlog}", "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    SHOTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [*common, "--window-size=1280,2400", f"--screenshot={SHOTS / (name + '.png')}", url],
        capture_output=True,
        timeout=120,
    )
    return dom, page_requests(netlog)


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline_with_its_figures(page, server, tmp_path):
    name = Path(page).name
    dom, requested = browse(f"{server}/{page}.html", tmp_path, name)
    assert "<h1" in dom, "the page has a title"
    assert any(u.endswith(".css") for u in requested), "the page's own requests were recorded"
    external = [u for u in requested if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
    assert not external, f"requests left the machine: {external[:5]}"
    assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    if name not in ("references", "tables_1_2", "table_3"):
        images = re.findall(r'<img[^>]+src="([^"]+)"', dom)
        figures = [s for s in images if s.startswith("data:image/png") or "_images/" in s]
        assert figures, "the chapter's figures are in the page"
    if name in ("intro", "networks", "training", "residual_vs_uncertainty", "beyond"):
        assert "<mjx-container" in dom, "MathJax rendered the equations"


@pytest.mark.browser
def test_corruption_explorer_widget_is_rendered_from_its_saved_state(server, tmp_path):
    dom, requested = browse(f"{server}/book/corruptions.html", tmp_path, "explorer")
    assert re.search(r'class="[^"]*widget-dropdown', dom), "the explorer's model dropdown is rendered"
    assert re.search(r'class="[^"]*widget-image', dom), "the explorer's picture is rendered"
    assert any("/vendor/html-manager/embed-amd.js" in u and u.startswith("http://127.0.0.1") for u in requested)


def test_site_has_no_cdn_reference_for_require_widgets_or_mathjax():
    for page in PAGES:
        html = (SITE / f"{page}.html").read_text()
        for cdn in ("cdnjs.cloudflare.com", "cdn.jsdelivr.net/npm/@jupyter-widgets", "cdn.jsdelivr.net/npm/mathjax"):
            assert cdn not in html, (page, cdn)


def test_widget_state_is_saved_in_the_corruptions_page():
    html = (SITE / "book" / "corruptions.html").read_text()
    match = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S)
    assert match, "the widget state is embedded"
    state = json.loads(match.group(1))["state"]
    assert any(m["model_name"] == "DropdownModel" for m in state.values())
