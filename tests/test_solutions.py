"""The solutions in solutions/: one notebook per course notebook with exercises, stored clean, each executed in
smoke mode (papermill, kernel python3) on the synthetic smoke set. Each solution asserts its own results (counts
equal their formulas, invariances hold), so executing it is the test."""
import json
import re
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))


def _ids(paths):
    return [p.stem for p in paths]


def _exercise_count(notebook: Path) -> int:
    """Numbered items of the notebook's exercises section."""
    nb = nbformat.read(notebook, as_version=4)
    for c in nb.cells:
        if c.cell_type == "markdown" and re.search(r"^#+ .*Exercises", c.source, re.M):
            text = c.source.split("Exercises", 1)[1]
            return len(re.findall(r"^\d+\. ", text, re.M))
    return 0


def test_every_notebook_with_exercises_has_a_solution():
    with_exercises = [p for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if _exercise_count(p)]
    assert len(with_exercises) >= 9
    for nb in with_exercises:
        sol = ROOT / "solutions" / f"{nb.stem}_solutions.ipynb"
        assert sol.exists(), f"{nb.name} has exercises but no {sol.relative_to(ROOT)}"
        headings = [c.source for c in nbformat.read(sol, as_version=4).cells if c.cell_type == "markdown"]
        answered = {int(m) for h in headings for m in re.findall(r"^## (\d+)\. ", h, re.M)}
        assert answered >= set(range(1, _exercise_count(nb) + 1)), \
            f"{sol.name} answers exercises {sorted(answered)}, {nb.name} has {_exercise_count(nb)}"
    assert "solutions/" in (ROOT / "README.md").read_text(), "the README must point lecturers to solutions/"


@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_stored_clean_with_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "stored with outputs"
    assert "parameters" in code[0].metadata.get("tags", []) and "SMOKE =" in code[0].source
    assert "VIDLAB_DATA" in code[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_solution_executes_in_smoke_mode(path, smoke_data, tmp_path, monkeypatch):
    import papermill as pm
    monkeypatch.setenv("VIDLAB_DATA", str(smoke_data))
    monkeypatch.setenv("VIDLAB_CKPT", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("VIDLAB_WEIGHTS", str(tmp_path / "weights"))     # no weights files: those cells skip
    monkeypatch.setenv("VIDLAB_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("VIDLAB_KINETICS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    t0 = time.perf_counter()
    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), parameters={"SMOKE": True, "DEVICE": "cpu"}, kernel_name="python3",
                        cwd=str(path.parent), progress_bar=False)
    elapsed = time.perf_counter() - t0
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    timings = ROOT / "build" / "solution_smoke_times.json"
    timings.parent.mkdir(exist_ok=True)
    old = json.loads(timings.read_text()) if timings.exists() else {}
    old[path.stem] = round(elapsed, 1)
    timings.write_text(json.dumps(old, indent=2, sort_keys=True))
