"""A real browser with the network blocked (every request that is not to this machine is aborted):

- JupyterLab from the venv on loopback, headless Chromium runs 00_start_here.ipynb end to end: no cell may show an
  error, equations render as math, the live explorer draws once (with its play button and colour bar);
- the course build's offline HTML page of 00 (executed in smoke mode) renders its equations with the MathJax copy
  in build/_static and shows the explorer's static copy; the slides of 03 start reveal.js offline;
- an exported page with stored widget state (a tiny notebook executed by nbclient: a slider and the live
  explorer) draws its widgets with the widget manager copied into _static, and its equation as math.
Screenshots are saved under build/."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = "00_start_here.ipynb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def lab(tmp_path, smoke_data):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, work / NOTEBOOK)     # the repo copy is never modified
    port, token = _free_port(), "vidlab-test-token"
    env = dict(os.environ, VIDLAB_DATA=str(smoke_data), VIDLAB_SMOKE="1", VIDLAB_RESULTS_DIR=str(tmp_path / "res"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jcfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jrt"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "jlab"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "jws"))
    # render every cell (no virtual scrolling), so the explorer widget is in the page wherever it sits
    tracker = tmp_path / "jlab" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    news = tmp_path / "jlab" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=True", "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError("JupyterLab exited:\n" + (tmp_path / "lab.log").read_text())
            time.sleep(0.5)
    else:
        proc.kill()
        raise RuntimeError("JupyterLab did not start in 60 s:\n" + (tmp_path / "lab.log").read_text())
    yield url, token
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


_STATE_JS = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext) return null;
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) for (const o of c.model.outputs.toJSON())
    if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {n: cells.length, done: cells.filter(c => c.model.executionCount !== null).length,
          kernel: k ? k.status : 'none', errors};
}"""


_LOCAL = ("http://127.0.0.1", "http://localhost", "file://", "data:", "blob:", "about:")


def _block_network(page) -> list[str]:
    """Abort every request that leaves this machine; returns the list the aborted URLs are appended to."""
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith(_LOCAL):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()
    page.route("**/*", route)
    return blocked


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_start_here_runs_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright
    url, token = lab
    shot = ROOT / "build" / "lab_00_start_here.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        blocked = _block_network(page)
        page.set_default_timeout(240_000)          # a 2-core CI machine is slow to boot JupyterLab and the kernel
        try:
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}", wait_until="domcontentloaded")
            page.wait_for_function("window.jupyterapp !== undefined")
            page.wait_for_function(f"(({_STATE_JS})() || {{}}).kernel === 'idle'")
            # run every cell through JupyterLab's own command, as a student pressing "Run All" would
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(f"(s => s && s.n > 0 && s.done === s.n && s.kernel === 'idle')(({_STATE_JS})())",
                                   timeout=480_000, polling=1000)
            state = page.evaluate(f"({_STATE_JS})()")
            widget = page.locator(".vidlab-explorer")
            widget.first.wait_for(state="attached", timeout=60_000)
            widget.first.scroll_into_view_if_needed()
            # the explorer's view is a PNG that the browser decoded (it drew), with a play button beside it
            page.wait_for_function("""() => { const i = document.querySelector('.vidlab-explorer img');
                                             return i && i.complete && i.naturalWidth > 100; }""", timeout=60_000)
            n_explorers = widget.count()
            has_play = page.locator(".vidlab-explorer .widget-play, .vidlab-explorer .jupyter-widgets button").count()
            # equations in the markdown cells are typeset by JupyterLab's MathJax (served by the lab server)
            page.wait_for_function("document.querySelectorAll('.jp-MarkdownOutput mjx-container').length > 0",
                                   timeout=60_000)
            raw_tex = page.evaluate("""() => [...document.querySelectorAll('.jp-MarkdownOutput')]
                                        .some(e => e.innerText.includes('$$'))""")
            page.wait_for_timeout(500)
        finally:
            page.screenshot(path=str(shot), full_page=False)
            browser.close()
    assert not state["errors"], "cells raised errors in the browser: " + "; ".join(state["errors"])
    assert state["done"] == state["n"] and shot.stat().st_size > 10_000
    assert n_explorers == 1, f"the explorer is drawn {n_explorers} times (the live one only, where a kernel runs)"
    assert has_play > 0 and not raw_tex
    assert not [u for u in blocked if "mathjax" in u.lower() or "widget" in u.lower()], blocked


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_course_html_and_slides_render_offline(smoke_data, tmp_path, monkeypatch):
    """The course build's pages need nothing from the network: math typeset by the local MathJax, the explorer's
    static copy as an image, reveal.js started from the local copy."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright
    from vidlab import course
    out = tmp_path / "build"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    rc = course.build("smoke", str(smoke_data), str(out), only=["00"], slides=True, ckpt=str(tmp_path / "ck"))
    assert rc == 0
    page_html = (out / "00_start_here.html").read_text()
    assert "SMOKE build" in page_html and "_static/mathjax/MathJax.js" in page_html
    assert "00_start_here" in (out / "index.html").read_text() and "smoke" in (out / "index.html").read_text()
    course.build_slides(str(out), only=["03"])
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        blocked = _block_network(page)
        page.set_default_timeout(60_000)
        try:
            page.goto((out / "00_start_here.html").as_uri())
            page.wait_for_function("window.MathJax && MathJax.Hub && document.querySelectorAll("
                                   "'.MathJax, .MathJax_CHTML, .MathJax_Display').length > 0")
            page.wait_for_function("MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running")
            raw_tex = page.evaluate("""() => [...document.querySelectorAll('.jp-RenderedMarkdown')]
                                        .some(e => e.innerText.includes('$$'))""")
            # typeset with the shipped web fonts (not a fallback), without errors
            font = page.evaluate("MathJax.OutputJax['HTML-CSS'] && MathJax.OutputJax['HTML-CSS'].fontInUse")
            errors = page.evaluate("document.body.innerText.includes('Math Processing Error')")
            imgs = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output img')]
                                        .filter(i => i.complete && i.naturalWidth > 100).length""")
            page.screenshot(path=str(ROOT / "build" / "offline_00_start_here.png"), full_page=False)
            page.goto((out / "03_video_focalnet.slides.html").as_uri())
            page.wait_for_function("window.Reveal && Reveal.isReady() && Reveal.getTotalSlides() > 3")
            page.wait_for_function("document.querySelectorAll('.MathJax').length > 0 && MathJax.Hub.queue.pending === 0")
            page.evaluate("Reveal.slide(1)")
            page.wait_for_timeout(1500)
            slides = page.evaluate("Reveal.getTotalSlides()")
            errors = errors or page.evaluate("document.body.innerText.includes('Math Processing Error')")
            page.screenshot(path=str(ROOT / "build" / "offline_03_slide1.png"), full_page=False)
        finally:
            browser.close()
    assert not blocked, f"the offline pages asked the network for {blocked[:3]}"
    assert not raw_tex, "an equation is still raw $$...$$ text"
    assert font == "STIX-Web" and not errors, (font, errors)
    assert imgs >= 2, "the clip and the explorer's static copy should be drawn as images"
    assert slides > 3


_WIDGETS_NB = [
    ("markdown", "The mean over frames: $$\\bar x = \\frac{1}{T}\\sum_t x_t$$"),
    ("code", "import ipywidgets as W\nW.IntSlider(7, description='n')"),
    ("code", "import torch\nfrom vidlab.viz.widgets import explorer\ntorch.manual_seed(0)\n"
             "explorer({'a': torch.rand(2, 4, 4), 'b': torch.rand(3, 2, 4, 4)}, torch.rand(3, 2, 32, 32), static=False)"),
]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_exported_widgets_draw_offline(tmp_path, monkeypatch):
    """The smallest page that needs the widget manager: a notebook executed by nbclient (it stores the widget
    state) and exported by the course build's exporter. With the network blocked, the slider and the live
    explorer (its first view is a PNG in the widget state, its play button an icon font) draw from the manager in
    _static/, and the equation is typeset."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    import nbformat
    from nbclient import NotebookClient
    from playwright.sync_api import sync_playwright
    from vidlab import course
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in _WIDGETS_NB]
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert course.WIDGET_STATE in nb.metadata.get("widgets", {}), "nbclient stored no widget state"
    out = tmp_path / "build"
    out.mkdir()
    nbformat.write(nb, out / "widgets.ipynb")
    course.copy_assets(out)
    html_path = course.export_html(out / "widgets.ipynb", out)
    assert course._remote_refs(html_path.read_text()) == []
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        blocked = _block_network(page)
        loaded: list[str] = []
        page.on("requestfinished", lambda r: loaded.append(r.url))
        page.set_default_timeout(60_000)
        try:
            page.goto(html_path.as_uri())
            # the explorer's view: the PNG from the widget state, decoded by the browser
            page.wait_for_function("""() => { const i = document.querySelector('.vidlab-explorer img');
                                             return i && i.complete && i.naturalWidth > 100; }""")
            page.wait_for_function("MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running")
            page.wait_for_function("document.fonts.status === 'loaded'")
            drawn = page.evaluate("""() => ({
                sliders: document.querySelectorAll('.jupyter-widgets.widget-slider').length,
                readouts: [...document.querySelectorAll('.widget-readout')].map(e => e.innerText.trim()),
                dropdowns: [...document.querySelectorAll('.vidlab-explorer select')]      // the shown ones
                           .filter(s => s.offsetParent !== null).map(s => s.value),
                play: document.querySelectorAll('.vidlab-explorer .widget-play button').length,
                icons: [...document.fonts].some(f => f.family.includes('Font Awesome 5 Free') && f.weight === '900'
                                                    && f.status === 'loaded'),      // the play button's icons
                views_left: document.querySelectorAll('.widget-subarea').length,
                math: document.querySelectorAll('.MathJax_Display').length,
                raw_tex: [...document.querySelectorAll('.jp-RenderedMarkdown')].some(e => e.innerText.includes('$$')),
            })""")
            (ROOT / "build").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "build" / "offline_widgets.png"), full_page=True)
        finally:
            browser.close()
    assert not blocked, f"the page asked the network for {blocked[:3]}"
    assert any(u.endswith(f"/{course.WIDGETS_URL}") for u in loaded), loaded
    assert drawn["views_left"] == 2, drawn                       # the slider and the explorer, each drawn
    assert drawn["sliders"] >= 4 and "7" in drawn["readouts"], drawn    # n=7, head/level, frame, opacity
    assert drawn["dropdowns"] == ["a"] and drawn["play"] == 3 and drawn["icons"], drawn
    assert drawn["math"] == 1 and not drawn["raw_tex"], drawn
