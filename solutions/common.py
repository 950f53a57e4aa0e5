"""Helpers shared by the solution notebooks: the data, one experiment (a training run of a registered recipe) as a
table row, weights files, counting.

Every training in the solutions is one call of `vidlab.run.run_recipe`, the path `vidlab train`, `vidlab zoo`, the
course notebooks and the benchmarks take; an experiment is (model name, build overrides, recipe changes):

    run = common.train("dualformer_nano", root, SMOKE, overrides={"coarse_stages": 0}, device=DEVICE)
    run.row        # {"val top-1", "pairwise in order", "pairwise shuffled", "train s", "params"}
    run.model      # the best epoch's weights, in eval mode

With SMOKE = True (what the tests run) the recipe is `vidlab.zoo.smoke_recipe(name)`: one epoch of 24 clips at
4x32x32 (and a two-step frame pretraining), so each experiment's code path runs and its numbers say nothing. With
SMOKE = False it is the model's registered recipe (`vidlab.models.get_recipe(name)`), changed only where the
exercise asks for a change; an experiment without recipe changes is the zoo's run of that model and overrides
(`vidlab.zoo.load_or_train`: trained and saved once under CKPT_ROOT, loaded on every later run, the same weights
`vidlab zoo` makes).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

import vidlab
from vidlab.models import Recipe, get_recipe, model_info
from vidlab.nb import ensure_data
from vidlab.run import eval_dataset, run_recipe
from vidlab.zoo import load_or_train, smoke_recipe


def data(root: str | Path, smoke: bool, seed: int = 0):
    """(root, classes, reversed pairs as index tuples) of the synthetic set at `root`, generated when absent."""
    root = ensure_data(root, smoke=smoke, seed=seed)
    meta = json.loads((Path(root) / "annotations" / "meta.json").read_text())
    classes = meta["classes"]
    pairs = [(classes.index(a), classes.index(b)) for a, b in meta.get("reversed_pairs", [])]
    return Path(root), classes, pairs


def recipe(name: str, smoke: bool, **changes) -> Recipe:
    """The recipe an experiment trains: `smoke_recipe(name)` in SMOKE mode, the registered one otherwise, with
    `changes` (recipe fields, e.g. num_frames=2 or pretrain={}) applied to either."""
    rec = smoke_recipe(name) if smoke else get_recipe(name)
    return rec.replace(**changes) if changes else rec


@dataclass
class Experiment:
    """One trained model of a solution: what was trained (name, recipe, overrides) and what it measured."""
    name: str
    rec: Recipe
    overrides: dict
    model: torch.nn.Module
    metrics: dict
    history: list = field(default_factory=list)

    @property
    def row(self) -> dict:
        """The table row: val top-1 of the best epoch, the frame-order test (pairwise, chance 50), training time
        (frame pretraining included) and parameters."""
        fo = self.metrics.get("frame_order") or {}
        return {"val top-1": round(self.metrics["top1"], 1),
                "pairwise in order": round(fo["ordered_pairwise"], 1) if fo else None,
                "pairwise shuffled": round(fo["shuffled_pairwise"], 1) if fo else None,
                "train s": self.metrics.get("train_time_s"), "params": self.metrics.get("params")}

    @property
    def order_gap(self) -> float:
        """Pairwise in order minus pairwise shuffled: how much the model relies on the order of the frames."""
        return self.row["pairwise in order"] - self.row["pairwise shuffled"]

    def val_set(self, root, num_frames: int | None = None):
        """The val split as this model is scored on it (its recipe's input, its normalisation); `num_frames` reads
        the same clips with another number of frames."""
        info = model_info(self.name)
        return eval_dataset(root, "val", num_frames or self.rec.num_frames, self.rec.img_size, mean=info["mean"],
                            std=info["std"])


def train(name: str, root, smoke: bool, *, overrides: dict | None = None, changes: dict | None = None,
          zoo: bool = True, ckpt_root=None, seed: int = 0, device: str = "cpu") -> Experiment:
    """Train `name` with its recipe (`recipe(name, smoke, **changes)`) and build `overrides` through
    `vidlab.run.run_recipe`: datasets, model, frame pretraining, fit, best weights, frame-order test.

    Full mode without recipe changes (and `zoo=True`) is the zoo's run: `load_or_train` loads it when `vidlab zoo` or
    an earlier run made it, trains and saves it otherwise. `zoo=False` is for a model the notebook changes in a way
    its build arguments do not name (a replaced function or module): that run is never stored under the zoo's name."""
    overrides, changes = dict(overrides or {}), dict(changes or {})
    rec = recipe(name, smoke, **changes)
    if not smoke and zoo and not changes:
        z = load_or_train(name, root, ckpt_root=ckpt_root, seed=seed, device=device, **overrides)
        z.model.eval()
        return Experiment(name, rec, overrides, z.model, z.metrics, z.history)
    result = run_recipe(name, root, None, rec=rec, overrides=overrides, seed=seed, device=device,
                        progress=not smoke, num_workers=0 if smoke else None)
    result.model.eval()
    return Experiment(name, rec, overrides, result.model, result.metrics, result.history)


def table(runs: dict, **columns):
    """One row per experiment ({label: Experiment}), with extra `columns` ({name: {label: value}}) in front."""
    import pandas as pd
    rows = {label: {**{k: v[label] for k, v in columns.items() if label in v}, **run.row} for label, run in runs.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def weights_file(name: str, env: str = "VIDLAB_WEIGHTS") -> Path | None:
    """A local weights file: `name` itself if it exists, else `$VIDLAB_WEIGHTS/name`. None (with a message saying
    where it would be looked for) when absent: vidlab never downloads."""
    for p in (Path(name), Path(os.environ.get(env, "../data/weights")) / name):
        if p.is_file():
            return p
    print(f"{name}: not found (looked at ./{name} and ${env}/{name}, default ../data/weights/{name}). "
          f"Download it from the official release page (README: 'Official and ImageNet/CLIP weights') and put it "
          f"there; the cells that need it are skipped.")
    return None


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_complexity(name: str, shape, **kwargs):
    """vidlab.profile.complexity of a registered model on the meta device (exact counts, no compute)."""
    from vidlab.profile import complexity
    with torch.device("meta"):
        m = vidlab.create_model(name, **kwargs)
        return complexity(m, shape)
