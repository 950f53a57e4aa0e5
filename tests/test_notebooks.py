"""Every notebook in notebooks/ executes in smoke mode (papermill, kernel python3) and writes its own results file
`$VIDLAB_RESULTS_DIR/<notebook>.json` with a `headline`; stored notebooks carry no outputs, start with a tagged
`parameters` cell followed by the course header and the Colab/JupyterHub install cell, and carry slide metadata.
The course build's offline pages (HTML, slides, index) are checked without executing anything."""
import json
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
EXPECTED_KEYS: dict[str, list[str]] = {
    "00_start_here": ["num_classes", "logits_shape", "num_maps"],
    "01_video_data": ["num_classes", "reversed_pairs", "pair_displacement_sign_acc", "skipped_clips",
                      "subset_counts", "batch_shape", "cache_speedup"],
    "02_the_cost_of_self_attention": ["attention_matches", "block_macs_formula", "block_macs_counted",
                                      "vit_joint_base_params", "attention_slopes", "train"],
    "03_video_focalnet": ["mixer_cost", "block_max_abs_diff", "cost_table", "nano_params", "nano_gmacs",
                          "design_space", "val_top1", "capture_shapes"],
    "04_video_mobileformer": ["block_equal", "image_params_match", "former_macs_constant", "variant_gmacs",
                              "equal_flops", "capture_shapes", "train", "cost_vs_frames"],
    "05_dualformer": ["keys_per_query_tiny", "cost_table", "gp_keys_nano_stage0", "query_attention_shares",
                      "capture_shapes", "gmac_growth", "val_top1"],
    "06_ila": ["params_b32_total", "b32_visual_gmac_residual", "b32_visual_gmac_token", "points_shape", "masks_shape"],
    "07_sifa": ["block_max_abs_diff", "toy_weight_regular", "toy_weight_motion", "capture_shapes", "costs"],
    "08_train_and_compare": ["leaderboard", "frame_order"],
    "09_interpretability": ["pointing_game", "sanity", "num_clips_scored", "findings", "models_from"],
}

# Keys of each notebook's `headline` (what build/index.html shows for it).
HEADLINE_KEYS: dict[str, list[str]] = {
    "00_start_here": ["device", "classes"],
    "01_video_data": ["classes", "time-reversed pairs", "cache speed-up (x)"],
    "02_the_cost_of_self_attention": ["attention MACs ~ N^k, k"],
    **{stem: ["model", "from", "top-1 %", "frame order in order/shuffled %"]
       for stem in ["03_video_focalnet", "04_video_mobileformer", "05_dualformer", "06_ila", "07_sifa"]},
    "08_train_and_compare": ["best", "models >= 80 % top-1", "use frame order (>=85 % in order, <=60 % shuffled)"],
    "09_interpretability": ["clips scored", "centre prior", "IG beats the prior", "an own map beats the prior"],
}


def check_results(stem: str, r: dict) -> None:
    """Invariants of each notebook's results (smoke mode), beyond the presence of keys."""
    assert r.get("smoke") is True, f"{stem}: a smoke run must say so in its results (the index banner reads it)"
    head = r.get("headline")
    assert isinstance(head, dict), f"{stem}: no headline dict in its results"
    for key in HEADLINE_KEYS[stem]:
        assert key in head, f"{stem}: headline lacks {key!r} (has {sorted(head)})"
    assert all(isinstance(v, (int, float, str)) for v in head.values()), head
    if stem in ("03_video_focalnet", "04_video_mobileformer", "05_dualformer", "06_ila", "07_sifa"):
        assert head["from"] == "trained", head      # smoke never loads from (or writes into) the zoo
        assert 0 <= head["top-1 %"] <= 100
    if stem == "00_start_here":
        assert r["logits_shape"] == [1, r["num_classes"]] and r["num_maps"] > 0
    elif stem == "01_video_data":
        assert r["num_classes"] >= 10 and len(r["reversed_pairs"]) >= 4
        assert r["pair_displacement_sign_acc"] == 1.0          # reversed pairs really move in opposite directions
        assert r["skipped_clips"] == 1 and r["subset_counts"]["val"] > 0   # (speed-ups live in benchmarks)
    elif stem == "02_the_cost_of_self_attention":
        assert r["attention_matches"] is True and r["block_macs_formula"] == r["block_macs_counted"]
        assert r["vit_joint_base_params"] == 87_147_664
        assert abs(r["attention_slopes"]["macs|fused (sdpa)"] - 2) < 0.05   # attention FLOPs grow with N^2
        assert set(r["train"]) >= {"vit_joint_nano", "vit_divided_nano", "r2plus1d_nano"}
        assert all(0 <= m["ordered"] <= 100 and 0 <= m["shuffled"] <= 100 for m in r["train"].values())
    elif stem == "03_video_focalnet":
        assert r["block_max_abs_diff"] < 1e-5                     # the notebook's block equals vidlab's
        for row in r["cost_table"]:
            if row.get("params (official code)") is not None:
                assert row["params (vidlab)"] == row["params (official code)"], row
        designs = {row["design"]: row for row in r["design_space"]}
        assert {"parallel", "spatial"} <= set(designs)
        spatial = designs["spatial"]                              # blind to frame order by construction
        assert spatial["pairwise acc, ordered"] == spatial["pairwise acc, shuffled"]
        assert spatial["params"] < designs["parallel"]["params"]
    elif stem == "04_video_mobileformer":
        assert r["block_equal"] is True and r["image_params_match"] is True
        assert r["former_macs_constant"] is True               # the Former's cost does not grow with frames
        assert r["variant_gmacs"]["video_mobileformer_1g"] < 1
        ratio = r["equal_flops"]["r2plus1d_gmac"] / r["equal_flops"]["video_mobileformer_nano_gmac"]
        assert 0.9 <= ratio <= 1.1
    elif stem == "05_dualformer":
        for row in r["cost_table"]:
            if row.get("params_official") is not None:
                assert row["params_vidlab"] == row["params_official"], row
        assert r["gp_keys_nano_stage0"] == 40
        assert r["gmac_growth"]["dualformer_nano"] < r["gmac_growth"]["vit_joint_nano"]
    elif stem == "06_ila":
        assert r["params_b32_total"] == 201_596_977                    # the official count, exactly
        assert 48 < r["b32_visual_gmac_residual"] < 51 and r["b32_visual_gmac_token"] < r["b32_visual_gmac_residual"]
        assert r["points_shape"][-1] == 2
    elif stem == "07_sifa":
        assert r["block_max_abs_diff"] < 1e-5                    # the notebook's op equals vidlab's
        assert r["toy_weight_motion"] > r["toy_weight_regular"]   # deformation follows the motion
        assert r["capture_shapes"]["layer2.1.sifa.offsets"][1:3] == [9, 2]
    elif stem == "08_train_and_compare":
        names = {row["model"] for row in r["leaderboard"]}
        assert {"video_focalnet_nano", "video_mobileformer_nano", "dualformer_nano", "ila_nano", "ila_token_nano", "sifa_nano",
                "vit_joint_nano", "vit_divided_nano", "r2plus1d_nano", "r2plus1d_small_nano"} <= names, names
        for row in r["leaderboard"]:
            assert 0 <= row["top1"] <= 100 and row["GFLOPs_per_view"] > 0 and row["params_M"] > 0
            assert row["epochs"] >= 1 and row["infer_clips_per_s"] > 0
        assert all(len(h) >= 1 for h in r["histories"].values())          # curves over every epoch
        for cm in r["confusion"].values():                               # classes x classes, one row per class
            assert cm is not None and len(cm) == len(cm[0]) >= 10
    elif stem == "09_interpretability":
        kinds = {(row["model"], row["map"]) for row in r["pointing_game"]}
        assert ("baseline", "random") in kinds and ("baseline", "centre prior") in kinds
        assert all(0 <= row["pointing"] <= 1 for row in r["pointing_game"] if row["pointing"] == row["pointing"])
        assert {f["model"] for f in r["findings"]} == set(r["models_from"]) and r["models_from"]
        assert {"integrated gradients"} <= {m for _, m in kinds}


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


def _params(src: str) -> dict:
    """The parameters cell's assignments (literals only), as papermill would read them."""
    import ast
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_course_header_install_cell_and_slides(path):
    """Right after the parameters cell: the header (goals, prerequisites, time, solutions) and the install cell
    for Colab/JupyterHub; every notebook has slides; nobody forces the static explorer."""
    nb = nbformat.read(path, as_version=4)
    pi = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    head, install = nb.cells[pi + 1], nb.cells[pi + 2]
    assert head.cell_type == "markdown" and "vidlab-header" in head.metadata.get("tags", [])
    has_exercises = any("Exercises" in c.source for c in nb.cells if c.cell_type == "markdown")
    solutions = f"solutions/{path.stem}_solutions.ipynb"
    for part in ("**Learning goals.**", "**Prerequisites.**", "**Time.**", "smoke", "CPU course build", "GPU",
                 *([solutions] if has_exercises else [])):
        assert part in head.source, f"{path.stem}: the header lacks {part!r}"
    if has_exercises:
        assert (ROOT / solutions).is_file(), f"{path.stem}: the header links {solutions}, which does not exist"
    assert install.cell_type == "code" and 'find_spec("vidlab")' in install.source and "VIDLAB_WHEEL" in install.source
    assert "http" not in install.source and "git clone" not in install.source      # fetches nothing but vidlab
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert None not in kinds and kinds.count("slide") >= 2 and kinds[pi] == "skip"
    text = "\n".join(c.source for c in nb.cells)
    assert "static=SMOKE" not in text and "static=True" not in text
    if path.stem >= "03":                         # the trained-model notebooks go through the zoo
        assert "zoo_run(" in text and "Trainer(" not in text
    params = _params(nb.cells[pi].source)
    import ast
    import re
    import papermill as pm
    names = [n.targets[0].id for n in ast.parse(nb.cells[pi].source).body if isinstance(n, ast.Assign)]
    assert sorted(pm.inspect_notebook(str(path))) == sorted(names), "papermill cannot parse every parameter line"
    rest = "\n".join(c.source for c in nb.cells[pi + 1:] if c.cell_type == "code")
    unused = [n for n in names if not re.search(rf"\b{n}\b", rest) and n != "DEVICE"]
    assert not unused, f"{path.stem}: parameters that nothing uses (a false promise): {unused}"
    if path.stem == "09_interpretability":
        assert params["NUM_CLIPS"] >= 96         # the course build scores >= 96 validation clips


def test_offline_pages_index_and_results_paths(tmp_path, monkeypatch):
    """The exported HTML and slides load MathJax/reveal.js from build/_static (nothing remote), a smoke page and
    the index say "smoke", the index shows each notebook's headline, and results go to <dir>/<notebook>.json."""
    from vidlab import course, nb as vnb
    course.copy_assets(tmp_path, slides=True)
    assert (tmp_path / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (tmp_path / "_static" / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (tmp_path / course.WIDGETS_URL).is_file() and list((tmp_path / "_static" / "html-manager").glob("*.woff2"))
    page = course.export_html(ROOT / "notebooks" / "03_video_focalnet.ipynb", tmp_path, smoke=True).read_text()
    assert course._remote_refs(page) == [] and course.MATHJAX_URL in page and "SMOKE build" in page
    assert "require.min.js" not in page and "widget-state" not in page
    slides = course.export_slides(ROOT / "notebooks" / "03_video_focalnet.ipynb", tmp_path).read_text()
    assert course._remote_refs(slides) == [] and "_static/reveal.js/dist/reveal.js" in slides
    assert slides.count("<section") > 5 and "import mermaid" not in slides
    monkeypatch.setenv("VIDLAB_RESULTS_DIR", str(tmp_path / "res"))
    path = vnb.save_results({"smoke": True, "x": 1.0}, "03_video_focalnet", headline={"model": "m", "top-1 %": 91.234})
    assert path == tmp_path / "res" / "03_video_focalnet.json"
    with pytest.raises(ValueError, match="headline"):
        vnb.save_results({}, "x", headline={})
    r = json.loads(path.read_text())
    course._write_index(tmp_path, [("03_video_focalnet", 12.0, None, tmp_path / "03_video_focalnet.html", r),
                                   ("04_video_mobileformer", 3.0, "PapermillExecutionError: boom", None, {})], smoke=True)
    index = (tmp_path / "index.html").read_text()
    assert "model: m; top-1 %: 91.2" in index and "smoke: numbers mean nothing" in index
    assert "SMOKE build" in index and "PapermillExecutionError" in index and "no headline" in index


def _widget_notebook(tmp_path, module: str = "@jupyter-widgets/controls") -> Path:
    """A notebook as nbclient stores it after showing an IntSlider (state in the metadata, a view in the output),
    plus a view of a model that was not stored; no kernel involved."""
    import ipywidgets as W
    from ipywidgets.embed import embed_data
    from vidlab import course
    data = embed_data(views=[W.IntSlider(3, description="n")])
    state = data["manager_state"]
    for m in state["state"].values():
        if m["model_name"] == "IntSliderModel":
            m["model_module"] = module
    nb = nbformat.v4.new_notebook()
    nb.metadata.widgets = {course.WIDGET_STATE: state}
    nb.cells = [nbformat.v4.new_code_cell("W.IntSlider(3)", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/plain": "IntSlider(value=3)", course.WIDGET_VIEW: data["view_specs"][0]})]),
                nbformat.v4.new_code_cell("gone", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/plain": "GoneWidget(closed)", course.WIDGET_VIEW: {
                        "version_major": 2, "version_minor": 0, "model_id": "0" * 32}})])]
    for cell in nb.cells:
        cell.metadata.slideshow = {"slide_type": "slide"}
    path = tmp_path / f"widgets_{module.split('/')[-1]}.ipynb"
    nbformat.write(nb, path)
    return path


def test_offline_page_loads_the_local_widget_manager(tmp_path):
    """A page with stored widget views keeps their state and loads the widget manager from build/_static (not
    from a CDN, which nbconvert's default does); views without a stored model, and widgets the bundled manager does
    not know (it would fetch their JavaScript from a CDN), fall back to their text and the page loads no manager."""
    from nbconvert import HTMLExporter
    from vidlab import course
    path = _widget_notebook(tmp_path)
    page = course.export_html(path, tmp_path).read_text()
    assert course._remote_refs(page) == []
    assert f"widgetRendererSrc = '{course.WIDGETS_URL}'" in page and "require.min.js" not in page
    assert page.count(f'<script type="{course.WIDGET_STATE}">') == 1 and "IntSliderModel" in page
    assert page.count(f'<script type="{course.WIDGET_VIEW}">') == 1 and "GoneWidget(closed)" in page
    assert "IntSlider(value=3)" not in page           # drawn by the manager, not as text
    slides = course.export_slides(path, tmp_path).read_text()
    assert course._remote_refs(slides) == [] and f"widgetRendererSrc = '{course.WIDGETS_URL}'" in slides
    assert slides.count(f'<script type="{course.WIDGET_VIEW}">') == 1
    # what nbconvert does by default: the manager from a CDN, and _remote_refs sees it
    default, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    assert any("html-manager" in u for u in course._remote_refs(default)), course._remote_refs(default)
    # a widget from another package: no manager, text only
    other = course.export_html(_widget_notebook(tmp_path, module="some-widget-package"), tmp_path).read_text()
    assert course._remote_refs(other) == [] and "widgetRendererSrc" not in other and course.WIDGET_STATE not in other
    assert "IntSlider(value=3)" in other and "GoneWidget(closed)" in other


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
    monkeypatch.delenv("VIDLAB_EXPLORER", raising=False)      # the explorer must find out by itself: no live front end
    t0 = time.perf_counter()
    pm.execute_notebook(str(path), str(tmp_path / path.name), parameters={"SMOKE": True, "DEVICE": "cpu"},
                        kernel_name="python3", cwd=str(path.parent), progress_bar=False)
    elapsed = time.perf_counter() - t0
    results = json.loads((res_dir / f"{path.stem}.json").read_text())
    assert isinstance(results, dict) and len(results) > 1, results
    assert sorted(p.name for p in res_dir.iterdir()) == [f"{path.stem}.json"]    # its own file, nothing else
    for key in EXPECTED_KEYS.get(path.stem, []):
        assert key in results, f"{path.stem}: {path.stem}.json lacks {key!r} (has {sorted(results)})"
    check_results(path.stem, results)
    executed = nbformat.read(tmp_path / path.name, as_version=4)
    widget_views = [c for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                    and "explorer(" in c.source]
    assert not widget_views, "papermill has no live front end: the explorer must be its static copy only"
    timings = ROOT / "build" / "notebook_smoke_times.json"
    timings.parent.mkdir(exist_ok=True)
    old = json.loads(timings.read_text()) if timings.exists() else {}
    old[path.stem] = round(elapsed, 1)
    timings.write_text(json.dumps(old, indent=2, sort_keys=True))
