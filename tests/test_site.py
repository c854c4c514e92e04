"""Claims about the built site, checked in a real browser (headless Chromium) on 127.0.0.1.

The site must have been built (``make book``).  ``make test`` builds it and sets STAINBOOK_REQUIRE_SITE=1, so that a
missing site or browser fails instead of skipping.  Screenshots are saved in _build/screenshots/ as test artefacts.

The corruption explorer is driven like a reader would drive it, through the Chrome DevTools protocol over a pipe
(``--remote-debugging-pipe``, no extra package): keys and clicks on the controls, with every request that does not go
to the local server failed by the browser, and no Jupyter server (so no kernel) anywhere.
"""

import functools
import http.server
import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from browser_driver import CHROMIUM, FLAGS, SHOWN_SLIDERS, DevTools

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("STAINBOOK_REQUIRE_SITE") == "1"
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for c in TOC["chapters"]]

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


EXPLORER = ".widget-vbox:has(> .widget-hbox .widget-dropdown)"
# The one pre-rendered picture in the page: a Stack puts only its selected page in the DOM.
SHOWN = """(async () => {
  const images = [...document.querySelectorAll('img[class*="stainlib-render-"]')];
  if (images.length !== 1) return {count: images.length};
  const img = images[0];
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  const render = [...img.classList].find(c => c.startsWith('stainlib-render-'));
  return {count: 1, render, png: btoa(binary), caption: img.parentElement.innerText.trim()};
})()"""


# What the Stain's sliders read on the static page for a preset (the page shows disabled sliders at its values).
STAIN_SLIDERS = {
    "paper": {
        "semi-axes": "1 \u2013 12",
        "grey level": "10 \u2013 220",
        "irregularity": "0.10",
        "edge blur": "0.00",
    },
    "irregular": {
        "semi-axes": "5 \u2013 15",
        "grey level": "10 \u2013 220",
        "irregularity": "0.40",
        "edge blur": "0.00",
    },
}


def saved_renders() -> dict[str, str]:
    """The pre-rendered PNG (base64) of each ``stainlib-render-*`` class, read from the page's saved widget state."""
    html = (SITE / "book" / "corruptions.html").read_text()
    state = json.loads(re.search(r'widget-state\+json">(.*?)</script>', html, re.S).group(1))["state"]
    renders = {}
    for model in state.values():
        classes = [c for c in model["state"].get("_dom_classes", []) if c.startswith("stainlib-render-")]
        if classes:
            (buffer,) = [b for b in model.get("buffers", []) if b["path"] == ["value"]]
            renders[classes[0]] = buffer["data"]
    return renders


@pytest.mark.browser
def test_corruption_explorer_responds_offline_to_model_seed_and_preset_with_no_kernel_and_presets_move_the_sliders(
    server, tmp_path
):
    html = (SITE / "book" / "corruptions.html").read_text()
    state = re.search(r'widget-state\+json">(.*?)</script>', html, re.S).group(1)
    print(f"explorer widget state: {len(state) / 1e6:.2f} MB of the {len(html) / 1e6:.2f} MB page")
    assert len(state) < 3e6, "the explorer stays under its 3 MB budget"
    renders = saved_renders()
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = DevTools(tmp_path)
    try:
        browser.call("Page.navigate", url=f"{server}/book/corruptions.html")
        browser.wait_for("document.querySelectorAll('img[class*=\"stainlib-render-\"]').length === 1", timeout=60)

        def shown(step):
            browser.screenshot(EXPLORER, SHOTS / f"explorer-{step}.png")
            now = browser.evaluate(SHOWN)
            assert now["count"] == 1, "exactly one pre-rendered picture is shown"
            assert now["png"] == renders[now["render"]], "the picture shown is the saved render of its class"
            return now["render"], now["caption"]

        def sliders():
            shown_sliders = browser.evaluate(SHOWN_SLIDERS)
            assert all(s["fits"] for s in shown_sliders), f"readouts wider than their boxes: {shown_sliders}"
            return {s["label"]: s["readout"] for s in shown_sliders}

        probe = "document.querySelector('.stainlib-kernel-probe input').value"
        assert browser.evaluate(probe) == "1", "the front end ran the probe link (under a kernel, Python would see it)"
        render, caption = shown("0-start")
        assert render == "stainlib-render-stain-0-0"
        assert re.match(r"stain \(paper preset: semi-axes 1 to 12 % of the side, .*\), seed 0:", caption), caption
        assert sliders() == {**STAIN_SLIDERS["paper"], "seed": "0"}
        # The model: two steps down the dropdown with the keyboard, from stain (second) to drops (fourth).
        browser.evaluate("document.querySelector('.widget-dropdown select').focus()")
        browser.press("ArrowDown", 40)
        browser.press("ArrowDown", 40)
        browser.wait_for("document.querySelector('img[class*=\"stainlib-render-drops-\"]') !== null")
        render, caption = shown("1-drops")
        assert render == "stainlib-render-drops-0-0" and caption.startswith("drops, seed 0")
        # The seed: three steps right on the seed slider's handle.
        browser.evaluate(
            "[...document.querySelectorAll('.widget-slider')].find(s => s.innerText.startsWith('seed'))"
            ".querySelector('.noUi-handle').focus()"
        )
        for _ in range(3):
            browser.press("ArrowRight", 39)
        browser.wait_for("document.querySelector('img.stainlib-render-drops-0-3') !== null")
        render, caption = shown("2-drops-seed-3")
        assert render == "stainlib-render-drops-0-3" and caption.startswith("drops, seed 3")
        # Back to the Stain, which keeps the seed, then the last preset with a click.
        browser.evaluate("document.querySelector('.widget-dropdown select').focus()")
        browser.press("ArrowUp", 38)
        browser.press("ArrowUp", 38)
        browser.wait_for("document.querySelector('img.stainlib-render-stain-0-3') !== null")
        browser.click(".widget-toggle-buttons button:last-child")
        browser.wait_for("document.querySelector('img.stainlib-render-stain-3-3') !== null")
        render, caption = shown("3-stain-irregular-seed-3")
        assert render == "stainlib-render-stain-3-3"
        assert re.match(r"stain \(irregular preset: .*irregularity 0.4\), seed 3:", caption), caption
        assert sliders() == {**STAIN_SLIDERS["irregular"], "seed": "3"}, "the preset moved the Stain's sliders"
        pictures = {shot: (SHOTS / f"explorer-{shot}.png").read_bytes() for shot in ("0-start", "1-drops")}
        assert pictures["0-start"] != pictures["1-drops"], "the screenshots differ"
    finally:
        browser.close()
    assert not browser.blocked, f"the page tried to leave the machine: {browser.blocked[:5]}"
    assert not any("/api/kernels" in u or u.startswith("ws") for u in browser.requested), "no kernel was sought"
    assert any("/vendor/html-manager/embed-amd.js" in u for u in browser.requested), "the local widget manager ran"


READABLE = """(() => {
  const main = document.querySelector('main') || document.body;
  const text = main.innerText;
  const wide = [...main.querySelectorAll('table')].filter(t => {
    const box = t.closest('.cell_output, .output, .table-wrapper') || t.parentElement;
    return t.scrollWidth > Math.max(box.clientWidth, main.querySelector('article, .bd-article')?.clientWidth || 0) + 1;
  }).map(t => t.innerText.slice(0, 60));
  const uncaptioned = [...main.querySelectorAll('.cell_output img, figure img')]
    .filter(img => !img.closest('.jupyter-widgets, .widget-vbox'))
    .filter(img => !img.closest('figure')?.querySelector('figcaption')?.innerText.trim())
    .map(img => img.src.slice(0, 40));
  return {tmp: text.includes('/tmp/'), home: /\\/(home|work|root)\\//.test(text), nbval: /NBVAL/i.test(text),
          wide, uncaptioned};
})()"""


@pytest.mark.browser
@pytest.mark.parametrize("page", PAGES)
def test_page_shows_no_machine_path_or_test_marker_no_table_wider_than_its_column_and_captions_its_figures(
    page, server, tmp_path
):
    browser = DevTools(tmp_path)
    try:
        browser.call("Page.navigate", url=f"{server}/{page}.html")
        browser.wait_for("document.readyState === 'complete'", timeout=60)
        found = browser.evaluate(READABLE)
    finally:
        browser.close()
    assert not found["tmp"] and not found["home"], "no absolute or temporary path is printed on the page"
    assert not found["nbval"], "no nbval marker is visible"
    assert not found["wide"], f"tables wider than the content column: {found['wide']}"
    assert not found["uncaptioned"], f"figures without a caption: {found['uncaptioned']}"
