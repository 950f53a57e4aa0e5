"""Every notebook in notebooks/ executes in smoke mode (papermill, kernel python3) and writes results.json;
stored notebooks carry no outputs and have a tagged `parameters` cell."""
import json
import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED_NOTEBOOKS = ["00_start_here", "01_video_data", "02_the_cost_of_self_attention", "03_video_focalnet",
                      "04_video_mobileformer", "05_dualformer", "06_ila", "07_sifa", "08_train_and_compare",
                      "09_interpretability"]

# Keys each notebook's results.json must hold (beyond "environment"); checked after executing it.
EXPECTED_KEYS: dict[str, list[str]] = {}


def _ids(paths):
    return [p.stem for p in paths]


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found"
    assert [p.stem for p in NOTEBOOKS] == sorted(p.stem for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stored_clean_with_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "no code cells"
    for i, c in enumerate(code):
        assert not c.get("outputs") and c.get("execution_count") is None, f"code cell {i} stored with outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[0], "the first code cell must be the (only) tagged `parameters` cell"
    src = tagged[0].source
    for name in ("SMOKE", "DEVICE", "DATA_ROOT", "SEED"):
        assert f"{name} =" in src, f"parameters cell lacks {name}"
    assert "VIDLAB_DATA" in src, "DATA_ROOT must come from the environment (VIDLAB_DATA)"
    ks = nb.metadata.get("kernelspec", {})
    assert ks.get("name") == "python3" and ks.get("language") == "python", ks


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes_in_smoke_mode(path, smoke_data, tmp_path, monkeypatch):
    import papermill as pm
    res_dir = tmp_path / "results"
    monkeypatch.setenv("VIDLAB_DATA", str(smoke_data))
    monkeypatch.setenv("VIDLAB_CKPT", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VIDLAB_RESULTS_DIR", str(res_dir))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    t0 = time.perf_counter()
    pm.execute_notebook(str(path), str(tmp_path / path.name), parameters={"SMOKE": True, "DEVICE": "cpu"},
                        kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    elapsed = time.perf_counter() - t0
    results = json.loads((res_dir / "results.json").read_text())
    assert isinstance(results, dict) and len(results) > 1, results
    for key in EXPECTED_KEYS.get(path.stem, []):
        assert key in results, f"{path.stem}: results.json lacks {key!r} (has {sorted(results)})"
    timings = ROOT / "build" / "notebook_smoke_times.json"
    timings.parent.mkdir(exist_ok=True)
    old = json.loads(timings.read_text()) if timings.exists() else {}
    old[path.stem] = round(elapsed, 1)
    timings.write_text(json.dumps(old, indent=2, sort_keys=True))
