"""Build the course: execute every notebook into build/, export HTML (and slides) that work offline, write
build/index.html.

    python -m vidlab.course [--mode auto|smoke|full] [--data data/synthetic] [--out build] [--only 03 05]
    python -m vidlab.course --slides [--out build] [--only 03]      # reveal.js slides only, no execution

`make run` calls this after `vidlab zoo` has trained every nano model into data/checkpoints/: mode "auto" (= "full")
runs the full notebooks on any device, and notebooks 03-09 load the zoo's trained models instead of training;
"smoke" runs the tiny pipeline check the tests use (its numbers mean nothing, and every page says so).

Each notebook runs with its working directory in notebooks/, `VIDLAB_DATA` pointing at the data, `VIDLAB_CKPT` at
the zoo and `VIDLAB_RESULTS_DIR` at build/results/, where it writes `<notebook>.json` (its key results and a small
`headline` dict). The index shows each notebook's headline, run time and mode.

Offline: the HTML and the slides load MathJax (from the `jupyter-server-mathjax` package), reveal.js (from the
`sphinx-revealjs` package) and the Jupyter widgets manager (`@jupyter-widgets/html-manager` 1.0.15's standalone
`embed.js`, which no Python package ships: vidlab carries it in vidlab/_static/html-manager/) out of
build/_static/, copied there by the build; nothing comes from a CDN, and a page that still would load something
from another host is an error.

Widgets: the build runs every notebook with `VIDLAB_EXPLORER=static`, so the exported page shows the explorer's
static copy (every map over several frames in one figure): a live explorer redraws its frame in the kernel, and a
page has none. Other widget views the run stores (nbclient keeps the state of every widget: tqdm progress bars of a
full-mode training run, a control a notebook displays, a live explorer executed by hand with
`VIDLAB_EXPLORER=live`) are drawn from that state by the local widget manager, with the values they had at the
end of the run; the manager is loaded only by pages that carry such views. A view whose model was not stored, or
any widget from a package other than ipywidgets (the manager would fetch its JavaScript from a CDN), falls back
to its text version instead.
"""
from __future__ import annotations

import argparse
import copy
import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = "_static"
MATHJAX_URL = f"{STATIC}/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
REVEAL_PREFIX = f"{STATIC}/reveal.js"
WIDGETS_URL = f"{STATIC}/html-manager/embed.js"     # @jupyter-widgets/html-manager, standalone (no require.js)
HTML_MANAGER = Path(__file__).resolve().parent / "_static" / "html-manager"     # vendored, see its README.md
_DROP = "vidlab-offline:drop"           # sentinel URL of a script the offline pages do without
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# the widget modules inside embed.js; a model from any other module would be fetched from a CDN
BUILTIN_WIDGET_MODULES = {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
SMOKE_BANNER = ("<div class='vidlab-smoke' style='background:#fff3cd;border:2px solid #c90;padding:10px 14px;"
                "margin:8px;font:600 15px sans-serif;color:#6b4e00'>SMOKE build: tiny data, one tiny epoch, a "
                "pipeline check. The numbers on this page mean nothing; <code>make run</code> builds the real "
                "course.</div>")


class CourseError(Exception):
    """A problem with the build's inputs or installed packages (one line, no traceback at the CLI)."""


# ---------------------------------------------------------------------------------------------------------------
# offline assets
# ---------------------------------------------------------------------------------------------------------------
def _package_dir(module: str, sub: str, pip_name: str) -> Path:
    try:
        mod = __import__(module)
    except ImportError:
        raise CourseError(f"the offline course pages need the `{pip_name}` package: pip install {pip_name} "
                          f"(it is in vidlab's [dev] extra)") from None
    d = Path(mod.__file__).parent / sub
    if not d.is_dir():
        raise CourseError(f"{pip_name} is installed but has no {sub}/ at {d}: reinstall it")
    return d


def copy_assets(out_dir: Path, slides: bool = False) -> Path:
    """Copy MathJax 2.7 (and reveal.js for slides) from installed packages, and vidlab's copy of the widget
    manager, into out_dir/_static/."""
    static = out_dir / STATIC
    if not (HTML_MANAGER / "embed.js").is_file():
        raise CourseError(f"vidlab's copy of the widget manager is missing ({HTML_MANAGER / 'embed.js'}): "
                          f"reinstall vidlab")
    shutil.copytree(HTML_MANAGER, static / "html-manager", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("README.md"))
    mj = _package_dir("jupyter_server_mathjax", "static", "jupyter-server-mathjax")
    # the TeX input and HTML-CSS output the config uses; the other locales and the SVG output stay behind
    skip = shutil.ignore_patterns("SVG")
    shutil.copytree(mj, static / "mathjax", dirs_exist_ok=True,
                    ignore=lambda d, names: (skip(d, names) | ({n for n in names if n != "en"}
                                                                if Path(d).name == "localization" else set())))
    if slides:
        rv = _package_dir("sphinx_revealjs", "_static/revealjs", "sphinx-revealjs")
        for sub in ("dist", "plugin/notes"):
            shutil.copytree(rv / sub, static / "reveal.js" / sub, dirs_exist_ok=True)
        theme = (static / "reveal.js" / "dist" / "theme" / "white.css").read_text()
        if re.search(r"@import\s+url\([\"']?(https?:)?//", theme):
            raise CourseError(f"the reveal.js theme in {rv} imports web fonts: the slides would not be offline")
    return static


def _remote_refs(page: str) -> list[str]:
    """Every script/stylesheet/image the page would fetch from another host (nbconvert's widget loader adds its
    script from JavaScript: `widgetRendererSrc = '<url>'`)."""
    return (re.findall(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']((?:https?:)?//[^"']+)""", page)
            + re.findall(r"""\bwidgetRendererSrc\s*=\s*["']((?:https?:)?//[^"']+)""", page))


# jupyter-server-mathjax ships MathJax's STIX-Web fonts (not the TeX ones the HTML-CSS output asks for by default)
MATHJAX_FONTS = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], '
                 'preferredFont: null, webFont: "STIX-Web", imageFont: null}});</script>\n')


def _offline_page(page: str, prefix: str = "", slides: bool = False) -> str:
    """Point an nbconvert page at the local copies and drop the scripts it does not need offline."""
    n = len(page)
    page = page.replace(f'<script src="{_DROP}"></script>', "")
    mj = f'<script src="{prefix}{MATHJAX_URL}"'
    if page.count(mj) != 1:
        raise CourseError("nbconvert's template changed: the MathJax script tag was not found")
    page = page.replace(mj, MATHJAX_FONTS + mj)
    if slides:
        # the reveal template loads reveal.js through require.js and always imports mermaid from a CDN: load
        # reveal.js and its notes plugin as plain scripts instead, and hand them to the template's require() call
        page, k = re.subn(r"<script type=\"module\">\s*import mermaid from '[^']*';.*?</script>", "", page,
                          flags=re.S)
        local = (f'<script src="{prefix}{REVEAL_PREFIX}/dist/reveal.js"></script>\n'
                 f'<script src="{prefix}{REVEAL_PREFIX}/plugin/notes/notes.js"></script>\n'
                 "<script>function require(cfg, deps, then) { then(Reveal, RevealNotes); }</script>\n"
                 "<style>.reveal .slides section { overflow-y: auto; max-height: 100%; }</style>\n</head>")
        page = page.replace("</head>", local, 1)
        if not k:
            raise CourseError("nbconvert's reveal template changed: its mermaid import was not found")
    if len(page) == n or _DROP in page:
        raise CourseError("nbconvert's template changed: the offline rewrite found nothing to replace")
    if f'type="{WIDGET_VIEW}"' in page and f"'{prefix}{WIDGETS_URL}'" not in page:
        raise CourseError("nbconvert's template changed: the page has widget views but does not load the local "
                          "widget manager")
    remote = _remote_refs(page) + re.findall(r"""@import\s+url\(["']?((?:https?:)?//[^)"']+)""", page)
    if remote:
        raise CourseError(f"the exported page still loads {remote[0]} from the network")
    return page


def _without_widgets(nb, keep: set[str] = frozenset()):
    """A copy of the notebook whose widget views fall back to their text/png versions, except views of the models
    in `keep`; with none kept, the saved widget state goes too (the page loads no widget manager)."""
    nb = copy.deepcopy(nb)
    kept = False
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and WIDGET_VIEW in data:
                if data[WIDGET_VIEW].get("model_id") in keep:
                    kept = True
                else:
                    del data[WIDGET_VIEW]
    if not kept:
        nb.metadata.pop("widgets", None)
    return nb


def _offline_widgets(nb):
    """A copy of the notebook for an offline page: the widget views whose models are in the stored state are kept
    (the local widget manager draws them), the others fall back to their text. A widget from another package than
    ipywidgets would have its JavaScript fetched from a CDN: then every view falls back."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    if any(m.get("model_module") not in BUILTIN_WIDGET_MODULES for m in state.values()):
        return _without_widgets(nb)
    return _without_widgets(nb, keep=set(state))


def export_html(nb_path: Path, out_dir: Path, smoke: bool = False, prefix: str = "") -> Path:
    """Executed (or stored) notebook -> out_dir/<stem>.html, offline; a smoke banner when `smoke`."""
    import nbformat
    from nbconvert import HTMLExporter
    ex = HTMLExporter(mathjax_url=prefix + MATHJAX_URL, require_js_url=_DROP,
                      widget_renderer_url=prefix + WIDGETS_URL)
    body, _ = ex.from_notebook_node(_offline_widgets(nbformat.read(nb_path, as_version=4)))
    body = _offline_page(body, prefix)
    if smoke:
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + SMOKE_BANNER, body, count=1)
    path = out_dir / f"{Path(nb_path).stem}.html"
    path.write_text(body)
    return path


def export_slides(nb_path: Path, out_dir: Path, smoke: bool = False, prefix: str = "") -> Path:
    """A notebook -> out_dir/<stem>.slides.html (reveal.js; slides from the cells' `slideshow.slide_type`)."""
    import nbformat
    from nbconvert import SlidesExporter
    ex = SlidesExporter(mathjax_url=prefix + MATHJAX_URL, require_js_url=_DROP, jquery_url=_DROP,
                        widget_renderer_url=prefix + WIDGETS_URL, reveal_url_prefix=prefix + REVEAL_PREFIX,
                        reveal_scroll=False,
                        reveal_theme="white")      # its fonts ship with reveal.js (nbconvert's "simple" imports web fonts)
    nb = _offline_widgets(nbformat.read(nb_path, as_version=4))
    if not any(c.metadata.get("slideshow", {}).get("slide_type") == "slide" for c in nb.cells):
        raise CourseError(f"{nb_path}: no cell has slideshow.slide_type 'slide' (View > Cell Toolbar > Slideshow)")
    body, _ = ex.from_notebook_node(nb)
    body = _offline_page(body, prefix, slides=True)
    if smoke:
        body = re.sub(r"(<div class=\"slides\">)", lambda m: SMOKE_BANNER + m.group(1), body, count=1)
    path = out_dir / f"{Path(nb_path).stem}.slides.html"
    path.write_text(body)
    return path


# ---------------------------------------------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------------------------------------------
def _notebooks(only: list[str] | None) -> list[Path]:
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in only)]
        if not notebooks:
            raise CourseError(f"--only {' '.join(only)}: no notebook in notebooks/ starts with that")
    return notebooks


def results_file(results_dir: Path, stem: str) -> Path:
    return Path(results_dir) / f"{stem}.json"


def build(mode: str = "auto", data: str = "data/synthetic", out: str = "build", only: list[str] | None = None,
          timeout: int = 3600, slides: bool = False, ckpt: str = "data/checkpoints") -> int:
    smoke = mode == "smoke"
    out_dir = (ROOT / out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = Path(data) if Path(data).is_absolute() else (ROOT / data).resolve()
    ckpt_dir = Path(ckpt) if Path(ckpt).is_absolute() else (ROOT / ckpt).resolve()
    res_dir = out_dir / "results"
    res_dir.mkdir(exist_ok=True)
    notebooks = _notebooks(only)
    copy_assets(out_dir, slides=slides)
    print(f"building {len(notebooks)} notebooks in {'SMOKE' if smoke else 'FULL'} mode, data {data_dir}, "
          f"models from {ckpt_dir}")
    saved_env = dict(os.environ)
    os.environ.update(VIDLAB_DATA=str(data_dir), VIDLAB_RESULTS_DIR=str(res_dir), VIDLAB_CKPT=str(ckpt_dir),
                      VIDLAB_EXPLORER="static")       # no one moves a slider in a papermill run or a static page
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        rows, failures = _run_all(notebooks, out_dir, res_dir, smoke, slides, timeout)
    finally:                                          # the kernels inherited these; the caller keeps its own
        os.environ.clear()
        os.environ.update(saved_env)
    _write_index(out_dir, rows, smoke)
    print(f"\ncourse built: open {out_dir / 'index.html'} (executed notebooks, HTML and results/ in {out_dir})")
    if failures:
        print(f"{failures} notebook(s) failed; see the executed copies in {out_dir}")
    return 1 if failures else 0


def _run_all(notebooks, out_dir: Path, res_dir: Path, smoke: bool, slides: bool, timeout: int):
    import papermill as pm
    rows, failures = [], 0
    for nb in notebooks:
        executed = out_dir / nb.name
        results_file(res_dir, nb.stem).unlink(missing_ok=True)      # never show an older run's numbers
        executed.unlink(missing_ok=True)                            # ... nor an older run's pages
        t0 = time.perf_counter()
        error = None
        try:
            pm.execute_notebook(str(nb), str(executed), parameters={"SMOKE": smoke}, kernel_name="python3",
                                cwd=str(nb.parent), progress_bar=False, execution_timeout=timeout)
        except Exception as e:  # keep building the others; report at the end
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            failures += 1
        dt = time.perf_counter() - t0
        html_path = export_html(executed, out_dir, smoke) if executed.exists() else None
        if slides and executed.exists():
            export_slides(executed, out_dir, smoke)
        rf = results_file(res_dir, nb.stem)
        results = json.loads(rf.read_text()) if rf.exists() else {}
        rows.append((nb.stem, dt, error, html_path, results))
        print(f"  {nb.stem:34s} {dt:7.1f} s  {'FAILED: ' + error if error else 'ok'}")
    return rows, failures


def build_slides(out: str = "build", only: list[str] | None = None) -> int:
    """Slides of every notebook: from its executed copy in `out` when the course was built, else from the stored
    notebook (cells without outputs). The pages are usable offline (reveal.js, MathJax and the widget manager under
    out/_static/)."""
    out_dir = (ROOT / out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_assets(out_dir, slides=True)
    for nb in _notebooks(only):
        executed = out_dir / nb.name
        src = executed if executed.exists() else nb
        rf = results_file(out_dir / "results", nb.stem)
        smoke = bool(json.loads(rf.read_text()).get("smoke")) if executed.exists() and rf.exists() else False
        path = export_slides(src, out_dir, smoke)
        note = "" if src == executed else " (from the stored notebook, no outputs: `make run` first for figures)"
        print(f"  {nb.stem:34s} -> {path}{note}")
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def headline_text(results: dict) -> str:
    """The notebook's `headline` dict (what it chose to show in the index), as one line."""
    head = results.get("headline")
    if not isinstance(head, dict) or not head:
        return "no headline (results file missing or written by an older notebook)"
    return "; ".join(f"{k}: {_fmt(v)}" for k, v in head.items())


def _write_index(out_dir: Path, rows, smoke: bool) -> None:
    lines = ["<!doctype html><html><head><meta charset='utf-8'><title>vidlab course</title>",
             "<style>body{font-family:sans-serif;max-width:72em;margin:2em auto}td,th{padding:4px 10px;"
             "border-bottom:1px solid #ddd;text-align:left;vertical-align:top}.fail{color:#b00}"
             ".smoke{color:#8a5d00;font-weight:600}</style></head><body>",
             SMOKE_BANNER if smoke else "",
             f"<h1>vidlab course build</h1><p>mode: {'smoke' if smoke else 'full (models from the zoo)'}; built "
             f"{time.strftime('%Y-%m-%d %H:%M')}</p>",
             "<table><tr><th>notebook</th><th>run time</th><th>status</th><th>headline results</th></tr>"]
    for stem, dt, error, html_path, results in rows:
        link = f"<a href='{html_path.name}'>{stem}</a>" if html_path else stem
        extra = f", <a href='{stem}.slides.html'>slides</a>" if (out_dir / f"{stem}.slides.html").exists() else ""
        status = f"<span class='fail'>{html.escape(error)}</span>" if error else "ok"
        if results.get("smoke"):
            status += " <span class='smoke'>(smoke: numbers mean nothing)</span>"
        lines.append(f"<tr><td>{link} (<a href='{stem}.ipynb'>ipynb</a>{extra})</td><td>{dt:.0f} s</td>"
                     f"<td>{status}</td><td>{html.escape(headline_text(results))}</td></tr>")
    lines.append("</table></body></html>")
    (out_dir / "index.html").write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vidlab.course", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["auto", "smoke", "full"], default="auto",
                   help="auto = full: the real notebooks, models from the zoo (data/checkpoints); smoke: the tests' "
                        "tiny pipeline check")
    p.add_argument("--data", default="data/synthetic")
    p.add_argument("--ckpt", default="data/checkpoints", help="the zoo's checkpoints (vidlab zoo)")
    p.add_argument("--out", default="build")
    p.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 00 03")
    p.add_argument("--slides", action="store_true",
                   help="export reveal.js slides only (from the executed copies in --out when present), no execution")
    p.add_argument("--with-slides", action="store_true", help="build the course and export slides too")
    a = p.parse_args(argv)
    try:
        if a.slides:
            return build_slides(a.out, a.only)
        return build(a.mode, a.data, a.out, a.only, slides=a.with_slides, ckpt=a.ckpt)
    except CourseError as e:
        print(f"python -m vidlab.course: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
