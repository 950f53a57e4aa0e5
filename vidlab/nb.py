"""Small helpers every notebook uses (d2l style): shape checks, data on demand, results for the tests.

    from vidlab.nb import check_shape, ensure_data, datasets, save_results
"""
from __future__ import annotations

import json
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import torch


def check_shape(t: torch.Tensor, expected: tuple, name: str = "tensor") -> torch.Tensor:
    """Assert a tensor's shape (None in `expected` matches any size); returns the tensor for chaining."""
    shape = tuple(t.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected))
    if not ok:
        raise AssertionError(f"{name}: expected shape {tuple(expected)}, got {shape}")
    return t


def ensure_data(root: str | Path, smoke: bool = False, seed: int = 0) -> Path:
    """The dataset at `root`; when there is none, generate the synthetic one there (the "smoke" preset in SMOKE
    mode, else the default) — no download, ever."""
    root = Path(root)
    if (root / "classes.txt").is_file():
        return root
    from .data import make_synthetic
    print(f"no dataset at {root}: generating the synthetic {'smoke' if smoke else 'default'} set ...")
    return Path(make_synthetic(root, preset="smoke" if smoke else "default", seed=seed))


def datasets(root: str | Path, model: str, seed: int = 0, **changes):
    """(train, val) of `model`'s registered recipe on `root` (`vidlab.run.model_datasets`, what its runs train and
    score on), with `changes` to recipe fields, e.g. num_frames=16 or img_size=64."""
    from .models import get_recipe
    from .run import model_datasets
    return model_datasets(model, get_recipe(model).replace(**changes), root, seed=seed)


def results_path(notebook: str | None = None) -> Path:
    """Where a notebook's results go: `$VIDLAB_RESULTS_DIR/<notebook>.json` (the course build and the tests set
    the folder), else `./results/<notebook>.json` beside the notebook."""
    return Path(os.environ.get("VIDLAB_RESULTS_DIR", "results")) / f"{notebook or 'results'}.json"


def _jsonable(x):
    if isinstance(x, torch.Tensor):
        return x.tolist() if x.numel() > 1 else x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def save_results(results: dict, notebook: str | None = None, headline: dict | None = None) -> Path:
    """Write the notebook's key results (metrics, timings, shapes) where the tests and the course build read them:
    `results_path(notebook)`, one file per notebook. `headline` is the few numbers the course index shows for it
    (its model's top-1, the frame-order result, the key cost figure); it is stored under "headline". Adds the
    environment it ran in."""
    path = results_path(notebook)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(_jsonable(results))
    if headline is not None:
        if not isinstance(headline, dict) or not headline:
            raise ValueError(f"save_results: headline must be a non-empty dict, got {headline!r}")
        payload["headline"] = _jsonable(headline)
    payload.setdefault("environment", environment())
    path.write_text(json.dumps(payload, indent=2, sort_keys=True))
    print(f"results written to {path}")
    return path


def environment() -> dict:
    """What the notebook ran on (recorded with every result)."""
    import vidlab
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "vidlab": vidlab.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "device": dev, "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else None,
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }


@contextmanager
def timed(label: str, store: dict | None = None):
    """`with timed("train", results): ...` prints and stores the wall time in seconds under `<label>_s`."""
    t0 = time.perf_counter()
    yield
    dt = time.perf_counter() - t0
    print(f"{label}: {dt:.1f} s")
    if store is not None:
        store[f"{label}_s"] = round(dt, 3)


# ---------------------------------------------------------------------------------------------------------------
# Train once, reuse everywhere: the notebooks' view of the model zoo (vidlab.zoo, `vidlab zoo`)
# ---------------------------------------------------------------------------------------------------------------
def frame_order(run) -> tuple[float | None, float | None]:
    """(in order, shuffled): the pairwise accuracies (%) of the frame-order test the zoo recorded for a run (or its
    metrics dict), 50 = chance; (None, None) when the data has no time-reversed pairs."""
    m = run if isinstance(run, dict) else run.metrics
    fo = m.get("frame_order") or {}
    ordered = fo.get("ordered_pairwise", fo.get("in_order"))
    shuffled = fo.get("shuffled_pairwise", fo.get("shuffled") if "in_order" in fo else None)
    return ordered, shuffled


def zoo_run(name: str, data_root, ckpt_root, smoke: bool = False, device="auto", seed: int = 0, train: bool = True,
            **overrides):
    """`vidlab.zoo.load_or_train` with one line that says where the model came from: the zoo's checkpoint for this
    model, recipe and data, else trained here with the model's recipe (SMOKE: a tiny budget that writes nothing
    into the zoo). Returns the zoo's run (model, history, metrics, recipe, datasets()); with `train=False`, None
    when the zoo does not hold it."""
    from .zoo import load_or_train
    run = load_or_train(name, data_root, ckpt_root=ckpt_root, smoke=smoke, device=str(device), seed=seed,
                        progress=not smoke, train=train or smoke, **overrides)
    if run is None:
        print(f"{name} {overrides}: not in the zoo and not trained here (train=False)")
        return None
    m, (ordered, shuffled) = run.metrics, frame_order(run)
    label = name + "".join(f" {k}={v}" for k, v in overrides.items())
    if run.source == "zoo":
        where = f"loaded from the zoo ({run.checkpoint})"
    elif smoke:
        where = "trained here on the SMOKE budget (a pipeline check: the numbers mean nothing)"
    else:
        where = f"trained here with its recipe ({len(run.history)} epochs); `vidlab zoo` trains it once for every notebook"
    order = (f"; frame order (pairwise): {ordered:.0f} % in order, {shuffled:.0f} % shuffled"
             if ordered is not None and shuffled is not None else "")
    print(f"{label}: {where}\n  input {run.num_frames}x{run.img_size}^2, val top-1 {m.get('top1', float('nan')):.1f} %"
          f"{order}")
    return run


def map_readings(run, train_clips: int = 48, seed: int = 0) -> dict:
    """The readings of `run`'s own maps chosen on `train_clips` training clips (`vidlab.viz.signature.
    choose_readings`), made once per zoo run and kept beside it (`readings.json`, keyed by the run's fingerprint), so
    that the architecture's notebook and notebook 09 show the same choice. A run outside the zoo chooses here."""
    from .viz.signature import READINGS_VERSION, choose_readings, training_clips_with_masks
    fp = run.metrics.get("fingerprint")
    path = Path(run.checkpoint).parent / "readings.json" if run.checkpoint is not None else None
    key = {"fingerprint": fp, "train_clips": train_clips, "seed": seed, "readings": READINGS_VERSION}
    if path is not None and path.is_file():
        try:
            kept = json.loads(path.read_text())
            if kept.get("key") == key:
                return {m: {**r, "grid": tuple(r["grid"])} for m, r in kept["readings"].items()}
        except (OSError, ValueError, AttributeError, KeyError):
            pass                                   # unreadable: chosen again and rewritten
    readings = choose_readings(run.model.eval(), training_clips_with_masks(run.datasets()[1], train_clips, seed=seed))
    if path is not None and fp:
        try:
            path.write_text(json.dumps({"key": key, "readings": readings}, indent=1))
        except OSError:
            pass                                   # a read-only zoo: the choice is made again next time
    return readings


def plot_history(histories: dict, title: str = "", chance: float | None = None):
    """Training loss and validation top-1 over every epoch, one line per run ({label: history rows})."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.3))
    for label, hist in histories.items():
        ep = [h["epoch"] for h in hist]
        ax[0].plot(ep, [h["train_loss"] for h in hist], "o-", ms=3, label=label)
        ax[1].plot(ep, [h.get("val_top1", h.get("top1")) for h in hist], "o-", ms=3, label=label)
    if chance is not None:
        ax[1].axhline(chance, color="gray", ls=":", lw=1, label="chance")
    ax[0].set(xlabel="epoch", ylabel="train loss")
    ax[1].set(xlabel="epoch", ylabel="val top-1 (%)")
    ax[1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def run_headline(run, **extra) -> dict:
    """The index's headline for a notebook built around one model: its top-1, the frame-order result and where
    the model came from, plus `extra` (the notebook's key cost figure)."""
    ordered, shuffled = frame_order(run)
    head = {"model": run.name, "from": run.source, "top-1 %": round(float(run.metrics["top1"]), 1)}
    if ordered is not None and shuffled is not None:
        head["frame order in order/shuffled %"] = f"{ordered:.0f}/{shuffled:.0f}"
    head.update(extra)
    return head


def nano_diagram(name: str, num_classes: int = 12, **kwargs):
    """The block diagram (`vidlab.viz.diagram`) of a nano model as its recipe trains it: the recipe's model
    arguments and input (frames and frame size), the shapes measured on one forward pass of a clip that size."""
    import vidlab
    from vidlab.viz.diagram import diagram
    from vidlab.zoo import recipe
    rec = recipe(name)
    T, S = rec["num_frames"], rec["img_size"]
    model = vidlab.create_model(name, num_classes=num_classes, num_frames=T, img_size=S, **rec.get("model", {}))
    return diagram(model, (1, 3, T, S, S), title=f"{name} at its recipe's input {T}x{S}x{S}: shapes measured on a "
                                                 "forward pass", **kwargs)
