"""A real browser: JupyterLab from the venv on loopback, headless Chromium runs 00_start_here.ipynb end to end,
no cell may show an error, the explorer widget must render; a screenshot is saved under build/."""
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


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_start_here_runs_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright
    url, token = lab
    shot = ROOT / "build" / "lab_00_start_here.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
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
            page.wait_for_timeout(1000)
        finally:
            page.screenshot(path=str(shot), full_page=False)
            browser.close()
    assert not state["errors"], "cells raised errors in the browser: " + "; ".join(state["errors"])
    assert state["done"] == state["n"] and shot.stat().st_size > 10_000
