"""Build the course: execute every notebook into build/, export HTML, write build/index.html.

    python -m vidlab.course [--mode auto|smoke|full] [--data data/synthetic] [--out build] [--only 03 05]

`make run` calls this. Mode "auto" runs the full notebooks where a GPU is found and the smoke versions on a CPU.
Each notebook runs with its working directory in notebooks/, `VIDLAB_DATA` pointing at the data and
`VIDLAB_RESULTS_DIR` at build/<name>/, so its results.json lands there; the index links each executed notebook
and its HTML with the run time and the key numbers from results.json.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _key_results(results: dict, limit: int = 6) -> str:
    items = [(k, v) for k, v in results.items() if k != "environment" and isinstance(v, (int, float, str, bool))]
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items[:limit])


def build(mode: str = "auto", data: str = "data/synthetic", out: str = "build", only: list[str] | None = None,
          timeout: int = 3600) -> int:
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    import torch
    smoke = mode == "smoke" or (mode == "auto" and not torch.cuda.is_available())
    out_dir = (ROOT / out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = (ROOT / data).resolve() if not Path(data).is_absolute() else Path(data)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [p for p in notebooks if any(p.stem.startswith(o) for o in only)]
    rows, failures = [], 0
    print(f"building {len(notebooks)} notebooks in {'SMOKE' if smoke else 'FULL'} mode, data {data_dir}")
    for nb in notebooks:
        res_dir = out_dir / nb.stem
        res_dir.mkdir(exist_ok=True)
        os.environ.update(VIDLAB_DATA=str(data_dir), VIDLAB_RESULTS_DIR=str(res_dir),
                          VIDLAB_CKPT=str(ROOT / "data" / "checkpoints"))
        executed = out_dir / nb.name
        t0 = time.perf_counter()
        error = None
        try:
            pm.execute_notebook(str(nb), str(executed), parameters={"SMOKE": smoke}, kernel_name="python3",
                                cwd=str(nb.parent), progress_bar=False, execution_timeout=timeout)
        except Exception as e:  # keep building the others; report at the end
            error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            failures += 1
        dt = time.perf_counter() - t0
        html_path = None
        if executed.exists():
            body, _ = HTMLExporter().from_notebook_node(nbformat.read(executed, as_version=4))
            html_path = out_dir / f"{nb.stem}.html"
            html_path.write_text(body)
        results = {}
        if (res_dir / "results.json").exists():
            results = json.loads((res_dir / "results.json").read_text())
        rows.append((nb.stem, dt, error, html_path, results))
        print(f"  {nb.stem:34s} {dt:7.1f} s  {'FAILED: ' + error if error else 'ok'}")
    _write_index(out_dir, rows, smoke)
    print(f"\ncourse built: open {out_dir / 'index.html'} (executed notebooks and HTML in {out_dir})")
    if failures:
        print(f"{failures} notebook(s) failed; see the executed copies in {out_dir}")
    return 1 if failures else 0


def _write_index(out_dir: Path, rows, smoke: bool) -> None:
    lines = ["<!doctype html><html><head><meta charset='utf-8'><title>vidlab course</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:4px 10px;"
             "border-bottom:1px solid #ddd;text-align:left}.fail{color:#b00}</style></head><body>",
             f"<h1>vidlab course build</h1><p>mode: {'smoke' if smoke else 'full'}; built "
             f"{time.strftime('%Y-%m-%d %H:%M')}</p>",
             "<table><tr><th>notebook</th><th>run time</th><th>status</th><th>key results</th></tr>"]
    for stem, dt, error, html_path, results in rows:
        link = f"<a href='{html_path.name}'>{stem}</a>" if html_path else stem
        status = f"<span class='fail'>{html.escape(error)}</span>" if error else "ok"
        lines.append(f"<tr><td>{link} (<a href='{stem}.ipynb'>ipynb</a>)</td><td>{dt:.0f} s</td>"
                     f"<td>{status}</td><td>{html.escape(_key_results(results))}</td></tr>")
    lines.append("</table></body></html>")
    (out_dir / "index.html").write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m vidlab.course", description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["auto", "smoke", "full"], default="auto")
    p.add_argument("--data", default="data/synthetic")
    p.add_argument("--out", default="build")
    p.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 00 03")
    a = p.parse_args(argv)
    return build(a.mode, a.data, a.out, a.only)


if __name__ == "__main__":
    sys.exit(main())
