"""Training recipes, the synthetic training stream and the zoo (train once, reuse everywhere)."""
import json

import numpy as np
import pytest
import torch

import vidlab
from vidlab.__main__ import main
from vidlab.data.synthetic import PRESETS, CLASSES, SyntheticStream, render_clip
from vidlab.errors import ConfigError, DatasetError
from vidlab.models import Recipe, get_recipe
from vidlab import run
from vidlab.zoo import fingerprint, load_or_train, train_run, zoo_status

TINY = dict(epochs=2, batch_size=4, num_frames=4, img_size=32, stream_clips=16, warmup_epochs=0.0)


# ---- recipes ------------------------------------------------------------------------------------------------

def test_every_nano_carries_its_own_measured_recipe():
    from vidlab.models import ARCHITECTURES
    names = [n for n in vidlab.list_models("*_nano") if vidlab.model_info(n)["arch"] in ARCHITECTURES]
    assert len(names) == 12                     # ten, and notebook 03's two other Video-FocalNet designs
    assert len(vidlab.list_models("*_nano", study=True)) == 2
    for name in names:
        rec = get_recipe(name)
        assert rec != Recipe(), f"{name} has only the generic recipe"
        assert rec.stream_clips > 0 and rec.epochs > 0 and rec.img_size in (32, 64, 128)
        model = vidlab.create_model(name, num_classes=12, num_frames=rec.num_frames, img_size=rec.img_size,
                                    **rec.model)
        out = model(torch.randn(2, 3, rec.num_frames, rec.img_size, rec.img_size))
        out = out["logits"] if isinstance(out, dict) else out
        assert out.shape == (2, 12), name


def test_recipe_rejects_bad_fields_by_name():
    with pytest.raises(ConfigError, match="lr must be > 0"):
        Recipe(lr=0)
    with pytest.raises(ConfigError, match="unknown recipe field"):
        get_recipe("r2plus1d_nano").replace(learning_rate=1e-3)
    with pytest.raises(ConfigError, match="optimizer"):
        Recipe(optimizer="lamb")
    with pytest.raises(ConfigError, match="adam_eps must be > 0"):
        Recipe(adam_eps=0.0)
    rec = get_recipe("vit_joint_nano")
    assert Recipe.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec   # survives metrics.json


# ---- the stream -------------------------------------------------------------------------------------------------

def test_render_clip_frame_subset_equals_full_render():
    cfg = PRESETS["smoke"]
    idx = [0, 3, 7, 12, 15]
    for name in CLASSES:
        full, gt = render_clip(name, np.random.default_rng(5), cfg)
        part, gt_part = render_clip(name, np.random.default_rng(5), cfg, frame_indices=idx)
        assert np.array_equal(full[idx], part), name
        assert np.array_equal(gt["boxes"][idx], gt_part["boxes"]), name
    with pytest.raises(ConfigError, match="frame_indices"):
        render_clip("grow", np.random.default_rng(0), cfg, frame_indices=[0, 99])


def test_stream_is_reproducible_new_each_epoch_and_balanced(smoke_data):
    s = SyntheticStream(smoke_data, clips_per_epoch=24, num_frames=4, img_size=32)
    x0, y0, i0 = s[5]
    assert x0.shape == (3, 4, 32, 32) and y0 == 5 % 12 and i0 == 5
    assert torch.equal(s[5][0], x0)                       # same (epoch, index): same clip
    s.set_epoch(1)
    assert not torch.equal(s[5][0], x0)                   # a new epoch draws new clips
    assert np.bincount(s.labels, minlength=12).tolist() == [2] * 12
    assert s.classes == json.loads((smoke_data / "annotations" / "meta.json").read_text())["classes"]


def test_stream_needs_a_vidlab_synthetic_set(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "meta.json").write_text('{"name": "kinetics"}')
    with pytest.raises(DatasetError, match="not a vidlab synthetic dataset"):
        SyntheticStream(tmp_path, 8)
    with pytest.raises(DatasetError, match="meta.json"):
        SyntheticStream(tmp_path / "missing", 8)


def test_reversal_map_pairs_partners_and_keeps_symmetric_classes(smoke_data, tmp_path):
    from vidlab.data.synthetic import REVERSED_PAIRS, TIME_SYMMETRIC
    from vidlab.run import reversal_map
    m = reversal_map(smoke_data, CLASSES)
    assert [m[v] for v in m] == list(range(12))                      # an involution
    for a, b in REVERSED_PAIRS:
        assert m[CLASSES.index(a)] == CLASSES.index(b)
    assert all(m[CLASSES.index(c)] == CLASSES.index(c) for c in TIME_SYMMETRIC)
    # what the map claims: a clip of the partner class is a clip of its class played backwards (same scene seed;
    # the sensor noise is drawn per frame, so the match is up to the noise)
    a, _ = render_clip("slide_right", np.random.default_rng(3), PRESETS["smoke"])
    b, _ = render_clip("slide_left", np.random.default_rng(3), PRESETS["smoke"])
    diff = lambda x, y: np.abs(x.astype(int) - y.astype(int)).mean()
    assert diff(a[::-1], b) < 0.5 * diff(a, b)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "meta.json").write_text('{"name": "vidlab-synthetic"}')
    with pytest.raises(ConfigError, match="reversal_pairs needs a vidlab synthetic dataset"):
        reversal_map(tmp_path, CLASSES)


def test_reversal_batch_doubles_the_batch_backwards_with_partner_labels():
    from vidlab.train import TrainConfig, reversal_batch
    clips = torch.randn(3, 3, 4, 8, 8)
    x, y = reversal_batch(clips, torch.tensor([0, 1, 8]), torch.tensor([1, 0] + list(range(2, 12))))
    assert x.shape == (6, 3, 4, 8, 8) and y.tolist() == [0, 1, 8, 1, 0, 8]
    assert torch.equal(x[3:, :, 0], clips[:, :, 3]) and torch.equal(x[:3], clips)
    with pytest.raises(ConfigError, match="time_reversal must map each class"):
        TrainConfig(time_reversal=[1, 2, 0])                         # not its own inverse


def test_a_reversal_pairs_recipe_trains_on_twice_the_clips(smoke_data, tmp_path):
    rec = get_recipe("r2plus1d_nano").replace(**TINY, reversal_pairs=True)
    assert fingerprint("r2plus1d_nano", rec, smoke_data) != fingerprint("r2plus1d_nano", rec.replace(
        reversal_pairs=False), smoke_data)
    assert fingerprint("r2plus1d_nano", rec.replace(reversal_pairs=False), smoke_data) == fingerprint(
        "r2plus1d_nano", get_recipe("r2plus1d_nano").replace(**TINY), smoke_data)
    run = train_run("r2plus1d_nano", smoke_data, tmp_path / "run", rec=rec, progress=False)
    assert run.metrics["recipe"]["reversal_pairs"] is True
    assert [h["train_clips"] for h in run.history] == [2 * TINY["stream_clips"]] * TINY["epochs"]


# ---- frame pretraining -------------------------------------------------------------------------------------------

def test_render_frames_gives_the_acting_objects_masks(smoke_data):
    from vidlab.pretrain import render_frames
    frames, masks = render_frames(smoke_data, 24, size=64, seed=0)
    assert frames.shape == (24, 64, 64, 3) and frames.dtype == np.uint8 and masks.shape == (24, 64, 64)
    assert masks.any(axis=(1, 2)).mean() > 0.8                       # blink hides its object in some frames
    inside = frames[masks].astype(float).mean(0)
    outside = frames[~masks].astype(float).mean(0)
    assert np.abs(inside - outside).max() > 10                       # the masks sit on the objects
    f2, m2 = render_frames(smoke_data, 24, size=64, seed=0)
    assert np.array_equal(f2, frames) and np.array_equal(m2, masks)  # reproducible
    assert not np.array_equal(render_frames(smoke_data, 24, size=64, seed=1)[0], frames)


def test_frame_pretraining_learns_occupancy_and_initialises_the_video_model(smoke_data):
    from vidlab.pretrain import frame_pretrain, load_frame_weights
    rec = get_recipe("video_focalnet_nano").replace(img_size=32, pretrain={
        "steps": 40, "lr": 3e-3, "frames": 200, "batch_size": 16, "model": {"design": "spatial"}})
    state, info = frame_pretrain("video_focalnet_nano", rec, smoke_data, progress=False)
    assert info["loss"] < 0.5 < 0.69                                 # 0.69: every cell at p = 0.5 (logit 0)
    assert not any(k.startswith("head.") for k in state)             # the classifier stays behind
    assert not any("temporal" in k for k in state)                   # a 2D FocalNet: no temporal layers
    video = vidlab.create_model("video_focalnet_nano", num_classes=12, num_frames=8, img_size=32)
    report = load_frame_weights(video, state)
    sd = video.state_dict()
    assert report["loaded"] and all(torch.equal(sd[k], state[k]) for k in report["loaded"])
    assert "head.weight" in report["new"] and "layers.0.blocks.0.modulation.h_temporal.weight" in report["new"]
    with pytest.raises(ConfigError, match="unknown pretrain field"):
        rec.replace(pretrain={"epochs": 3})
    with pytest.raises(ConfigError, match="share no tensor"):
        load_frame_weights(torch.nn.Linear(3, 3), state)


def test_a_pretraining_recipe_pretrains_once_and_counts_the_time(smoke_data, tmp_path, monkeypatch):
    import vidlab.pretrain
    calls = []
    real = vidlab.pretrain.frame_pretrain
    monkeypatch.setattr(vidlab.pretrain, "frame_pretrain", lambda *a, **k: calls.append(1) or real(*a, **k))
    rec = get_recipe("sifa_nano").replace(**TINY, pretrain={"steps": 3, "frames": 40, "batch_size": 4,
                                                             "num_frames": 4})
    assert fingerprint("sifa_nano", rec, smoke_data) != fingerprint("sifa_nano", rec.replace(pretrain={}),
                                                                     smoke_data)
    run = train_run("sifa_nano", smoke_data, tmp_path / "run", rec=rec, progress=False)
    pre = run.metrics["pretrain"]
    assert calls == [1] and pre["loaded"] > 0 and pre["new"] == 4   # all but the two heads' weights and biases
    assert run.metrics["train_time_s"] >= pre["time_s"] + sum(h["time_s"] for h in run.history) - 0.2
    assert (tmp_path / "run" / "pretrain.pt").is_file()
    again = train_run("sifa_nano", smoke_data, tmp_path / "run", rec=rec, progress=False)   # finished: resumed
    assert calls == [1] and again.metrics["pretrain"]["time_s"] == pre["time_s"]


def test_runs_with_the_same_frame_model_share_one_pretraining(smoke_data, tmp_path, monkeypatch):
    """notebook 03's design-space nanos pretrain the same 2D FocalNet as video_focalnet_nano (so does a depthwise
    build): made once, reused by the runs beside it; a frame model that differs (ILA's two modes) or another seed is
    made again."""
    import vidlab.pretrain
    from vidlab.pretrain import pretraining_key
    calls = []
    real = vidlab.pretrain.frame_pretrain
    monkeypatch.setattr(vidlab.pretrain, "frame_pretrain", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    pre = {"steps": 2, "frames": 40, "batch_size": 4, "num_frames": 1, "model": {"design": "spatial"}}
    rec = {n: get_recipe(n).replace(**{**TINY, "epochs": 1}, pretrain=pre)
           for n in ("video_focalnet_nano", "video_focalnet_sequential_nano", "video_focalnet_spatial_nano")}
    keys = {n: pretraining_key(n, r, smoke_data) for n, r in rec.items()}
    depthwise = rec["video_focalnet_nano"].replace(model={"temporal_conv": "depthwise"})
    assert pretraining_key("video_focalnet_nano", depthwise, smoke_data) in keys.values()
    assert len(set(keys.values())) == 1                                  # one 2D FocalNet for all three
    assert pretraining_key("video_focalnet_nano", rec["video_focalnet_nano"], smoke_data, seed=1) not in keys.values()
    ila = get_recipe("ila_nano").replace(img_size=32)
    assert pretraining_key("ila_nano", ila, smoke_data) != pretraining_key("ila_token_nano", ila, smoke_data)
    runs = {n: train_run(n, smoke_data, tmp_path / n, rec=r, progress=False) for n, r in rec.items()}
    assert calls == ["video_focalnet_nano"]
    assert runs["video_focalnet_sequential_nano"].metrics["pretrain"]["shared_from"] == "video_focalnet_nano"
    first = torch.load(tmp_path / "video_focalnet_nano" / "pretrain.pt", weights_only=True)["state"]
    copy = torch.load(tmp_path / "video_focalnet_spatial_nano" / "pretrain.pt", weights_only=True)["state"]
    assert first.keys() == copy.keys() and all(torch.equal(first[k], copy[k]) for k in first)


def test_build_overrides_shape_the_frame_model_too(smoke_data, tmp_path):
    """A width override (`--model-arg`, `load_or_train(**overrides)`) builds the frame model at that width, so
    every pretrained tensor fits the video model: only the two heads start fresh, as without the override."""
    rec = get_recipe("sifa_nano").replace(**{**TINY, "epochs": 1}, pretrain={"steps": 2, "frames": 40,
                                                                             "batch_size": 4, "num_frames": 4})
    run = train_run("sifa_nano", smoke_data, tmp_path / "run", rec=rec, progress=False,
                    overrides={"widths": (8, 16, 32, 64), "stem_width": 8})
    assert run.model.num_features == 64
    assert run.metrics["pretrain"]["new"] == 4 and run.metrics["pretrain"]["loaded"] > 0


# ---- the zoo ----------------------------------------------------------------------------------------------------

def test_smoke_load_or_train_writes_nothing(smoke_data, tmp_path):
    run = load_or_train("r2plus1d_nano", smoke_data, ckpt_root=tmp_path, smoke=True, progress=False)
    assert run.source == "trained" and run.checkpoint is None
    assert run.history and "top1" in run.metrics and run.metrics["frame_order"]
    assert not any(tmp_path.iterdir())


def test_zoo_run_is_reused_resumed_and_retrained_when_stale(smoke_data, tmp_path, monkeypatch):
    import vidlab.zoo as zoo
    rec = get_recipe("r2plus1d_nano").replace(**TINY)
    monkeypatch.setattr(zoo, "get_recipe", lambda name: rec)
    assert zoo_status(smoke_data, ckpt_root=tmp_path, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "missing"}
    run = load_or_train("r2plus1d_nano", smoke_data, ckpt_root=tmp_path, progress=False)
    assert run.source == "trained" and run.checkpoint.name == "best.pt"
    d = tmp_path / "r2plus1d_nano"
    for f in ("best.pt", "last.pt", "metrics.json", "frame_order.json", "zoo.json"):
        assert (d / f).is_file(), f
    recorded = json.loads((d / "metrics.json").read_text())["meta"]["recipe"]
    assert recorded == rec.to_dict()                                    # the recipe that ran is recorded
    assert zoo_status(smoke_data, ckpt_root=tmp_path, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "ready"}

    again = load_or_train("r2plus1d_nano", smoke_data, ckpt_root=tmp_path, progress=False, train=False)
    assert again.source == "zoo" and len(again.history) == 2
    assert again.model_args == {"num_frames": 4, "img_size": 32}
    assert load_or_train("sifa_nano", smoke_data, ckpt_root=tmp_path, train=False) is None   # not in the zoo
    for a, b in zip(run.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a.cpu(), b.cpu())

    # an interrupted run (last.pt of this fingerprint, no summary yet) is resumed, not restarted
    (d / "zoo.json").unlink()
    assert zoo_status(smoke_data, ckpt_root=tmp_path, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "partial"}
    resumed = train_run("r2plus1d_nano", smoke_data, d, rec=rec, progress=False)
    assert resumed.metrics["resumed"] and resumed.metrics["epochs"] == 2

    # another recipe: the run is stale and is trained again from scratch
    rec2 = rec.replace(lr=rec.lr / 2)
    monkeypatch.setattr(zoo, "get_recipe", lambda name: rec2)
    assert zoo_status(smoke_data, ckpt_root=tmp_path, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "stale"}
    # a retraining stopped after its first epoch (best.pt already replaced) is not served as the finished old run
    ckpt = torch.load(d / "best.pt", weights_only=True)
    ckpt["meta"]["fingerprint"] = "a-newer-recipe"
    torch.save(ckpt, d / "best.pt")
    monkeypatch.setattr(zoo, "get_recipe", lambda name: rec)
    assert zoo_status(smoke_data, ckpt_root=tmp_path, models=["r2plus1d_nano"]) == {"r2plus1d_nano": "partial"}
    assert load_or_train("r2plus1d_nano", smoke_data, ckpt_root=tmp_path, train=False) is None
    monkeypatch.setattr(zoo, "get_recipe", lambda name: rec2)
    assert fingerprint("r2plus1d_nano", rec, smoke_data) != fingerprint("r2plus1d_nano", rec2, smoke_data)
    # so is one with another AdamW epsilon
    assert fingerprint("r2plus1d_nano", rec, smoke_data) != fingerprint("r2plus1d_nano", rec.replace(adam_eps=1e-12),
                                                                        smoke_data)
    # and one whose registration builds another model (its parameter shapes), not one that builds the same
    assert zoo.architecture("r2plus1d_nano", rec) != zoo.architecture("r2plus1d_nano", rec, {"widths": (8, 16, 32, 64)})
    assert zoo.architecture("r2plus1d_nano", rec) == zoo.architecture("r2plus1d_nano", rec.replace(lr=1.0))
    real = zoo.create_model
    monkeypatch.setattr(zoo, "create_model", lambda name, **kw: real(name, **{**kw, "widths": (8, 16, 32, 64)}))
    assert fingerprint("r2plus1d_nano", rec, smoke_data) != fingerprint("r2plus1d_nano", rec2, smoke_data)
    changed = fingerprint("r2plus1d_nano", rec, smoke_data)
    monkeypatch.setattr(zoo, "create_model", real)
    assert changed != fingerprint("r2plus1d_nano", rec, smoke_data)


def test_overrides_get_their_own_run_folder(smoke_data, tmp_path, monkeypatch):
    import vidlab.zoo as zoo
    rec = get_recipe("video_focalnet_nano").replace(**{**TINY, "epochs": 1}, pretrain={
        "steps": 2, "frames": 40, "batch_size": 4, "model": {"design": "spatial"}})
    monkeypatch.setattr(zoo, "get_recipe", lambda name: rec)
    run = load_or_train("video_focalnet_nano", smoke_data, ckpt_root=tmp_path, progress=False, design="spatial")
    assert run.model.cfg.design == "spatial"
    assert (tmp_path / "video_focalnet_nano@design=spatial" / "zoo.json").is_file()


def test_cli_train_uses_the_recipe_and_flags_override_one_field(smoke_data, tmp_path, capsys, monkeypatch):
    import vidlab.models
    rec = get_recipe("r2plus1d_nano").replace(**{**TINY, "epochs": 1})
    monkeypatch.setattr(vidlab.models, "get_recipe", lambda name: rec)
    out = tmp_path / "run"
    assert main(["train", "--model", "r2plus1d_nano", "--data", str(smoke_data), "--out", str(out),
                 "--lr", "0.002", "--no-frame-order"]) == 0
    meta = json.loads((out / "metrics.json").read_text())["meta"]
    assert meta["recipe"]["lr"] == 0.002 and meta["recipe"]["epochs"] == 1 and meta["recipe"]["img_size"] == 32
    assert "recipe of r2plus1d_nano with lr from the command line" in capsys.readouterr().out


def test_cli_train_runs_the_recipes_frame_pretraining_first(smoke_data, tmp_path, capsys, monkeypatch):
    import vidlab.models
    rec = get_recipe("sifa_nano").replace(**{**TINY, "epochs": 1}, reversal_pairs=True, pretrain={
        "steps": 2, "frames": 40, "batch_size": 4, "num_frames": 4})
    monkeypatch.setattr(vidlab.models, "get_recipe", lambda name: rec)
    out = tmp_path / "run"
    assert main(["train", "--model", "sifa_nano", "--data", str(smoke_data), "--out", str(out),
                 "--no-frame-order"]) == 0
    printed = capsys.readouterr().out
    assert "frame pretraining (2 steps on 40 rendered frames" in printed and "4 start fresh" in printed
    hist = json.loads((out / "metrics.json").read_text())["epochs"]
    assert hist[0]["train_clips"] == 2 * TINY["stream_clips"]          # reversal_pairs doubled every batch


def test_frame_pretraining_is_skipped_with_a_note_on_other_data(smoke_data, tmp_path, capsys):
    import shutil
    other = tmp_path / "kinetics-layout"
    shutil.copytree(smoke_data, other)
    (other / "annotations" / "meta.json").unlink()                      # stored clips only, no generator
    rec = get_recipe("sifa_nano").replace(**{**TINY, "epochs": 1, "stream_clips": 0}, pretrain={"steps": 2,
                                          "frames": 40, "batch_size": 4, "num_frames": 2})
    run = train_run("sifa_nano", other, None, rec=rec, progress=False)
    assert run.metrics["pretrain"] == {"skipped": "not a vidlab synthetic dataset"}
    err = capsys.readouterr().err
    assert "frame pretraining skipped" in err
    # the recipe's time reversals need the synthetic set's pairs: skipped as well, twice the batch of stored clips
    assert rec.reversal_pairs and run.metrics["time_reversal"] is False
    assert f"reversal_pairs skipped: {other} is not a vidlab synthetic dataset" in err
    assert f"batches of {2 * rec.batch_size} clips" in err


def test_cli_zoo_status_and_unknown_model(smoke_data, tmp_path, capsys):
    assert main(["zoo", "--data", str(smoke_data), "--ckpt", str(tmp_path), "--status"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in ("r2plus1d_nano", "sifa_nano", "ila_nano")) and "missing" in out
    assert main(["zoo", "--data", str(smoke_data), "--models", "focalnet_nano", "--status"]) == 2
    assert "focalnet_nano" in capsys.readouterr().err


def test_zoo_trains_models_at_once_in_child_processes(smoke_data, tmp_path, monkeypatch):
    """`--jobs 2`: two `vidlab zoo --models <one>` children at a time, their lines prefixed with the model; the
    parent's leaderboard then reads both finished runs. A child that fails stops the zoo with its name."""
    import sys
    import vidlab.zoo as zoo
    recs = {n: get_recipe(n).replace(**{**TINY, "epochs": 1}) for n in ("r2plus1d_nano", "sifa_nano")}
    monkeypatch.setattr(zoo, "get_recipe", lambda name: recs[name])

    def child(name, root, ck, device, seed, threads):     # the real child, with the tiny recipe patched in
        code = ("import sys, vidlab.zoo as z; from vidlab.models import get_recipe; "
                f"r = get_recipe({name!r}).replace(**{ {**TINY, 'epochs': 1}!r}); z.get_recipe = lambda n: r; "
                f"import torch; print('threads', torch.get_num_threads()); "
                f"z.train_zoo({str(root)!r}, models=[{name!r}], ckpt_root={str(ck)!r}, jobs=1, progress=False)")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(zoo, "_child_command", child)
    lines = []
    rows = zoo.train_zoo(smoke_data, models=list(recs), ckpt_root=tmp_path, jobs=2, log=lines.append)
    assert sorted(r["model"] for r in rows) == sorted(recs) and all(r["top1"] is not None for r in rows)
    assert zoo_status(smoke_data, ckpt_root=tmp_path, models=list(recs)) == {n: "ready" for n in recs}
    assert "zoo: 2 models at a time, 1 torch thread(s) each" in lines or zoo.cpu_cores() != 2
    for n in recs:   # every line of a child carries its model's name; each child ran with its share of threads
        assert any(l.startswith(f"[{n:13s}] epoch 1/1") for l in lines), lines
        assert any(l.startswith(f"[{n:13s}] threads {max(1, zoo.cpu_cores() // 2)}") for l in lines), lines

    monkeypatch.setattr(zoo, "_child_command", lambda name, *a: [sys.executable, "-c", "print('no data'); exit(3)"])
    with pytest.raises(RuntimeError, match="training (r2plus1d|sifa)_nano failed .exit status 3"):
        zoo.train_zoo(smoke_data, models=list(recs), ckpt_root=tmp_path / "other", jobs=2, log=lines.append)
    assert "[r2plus1d_nano] no data" in lines and "[sifa_nano    ] no data" in lines   # both had started


def test_loader_workers_give_a_gpu_run_its_cores():
    assert run.loader_workers("cpu", True, 4) == 1 and run.loader_workers("cpu", False, 4) == 0
    assert [run.loader_workers("cuda", False, t) for t in (1, 2, 4, 16, 64)] == [1, 1, 3, 8, 8]


def test_zoo_jobs_default():
    import vidlab.zoo as zoo
    assert zoo.zoo_jobs(8, "cpu", 3) == (3, max(1, zoo.cpu_cores() // 3))
    assert zoo.zoo_jobs(1, "cpu")[0] == 1                      # never more runs than models
    assert zoo.zoo_jobs(8, "cpu", 2, 3) == (2, 3)                # --threads wins
    jobs, threads = zoo.zoo_jobs(8, "cpu")
    assert jobs * threads <= max(zoo.cpu_cores(), jobs) and jobs == min(8, zoo.cpu_cores() if zoo.cpu_cores() <= 4
                                                                     else zoo.cpu_cores() // 2)


def test_zoo_estimates_work_and_starts_the_longest_runs_first(smoke_data, monkeypatch):
    """`estimate_work` times one step per model and scales it by the recipe's steps (and pretraining); the
    parallel zoo starts the longest first and its first ETA is the list schedule of the estimates."""
    import sys
    import vidlab.zoo as zoo
    recs = {"r2plus1d_nano": get_recipe("r2plus1d_nano").replace(**TINY),
            "sifa_nano": get_recipe("sifa_nano").replace(**{**TINY, "epochs": 6}),
            "dualformer_nano": get_recipe("dualformer_nano").replace(**TINY)}
    monkeypatch.setattr(zoo, "get_recipe", lambda name: recs[name])
    work = zoo.estimate_work(list(recs), smoke_data, threads=1)
    assert set(work) == set(recs) and all(w > 0 for w in work.values())
    # the arithmetic, without timing noise: a step 0.5 s, an evaluation pass 0.2 s, reading a batch 0.1 s
    monkeypatch.setattr(zoo, "_step_seconds", lambda model, rec: (0.5, 0.2))
    monkeypatch.setattr(zoo, "_batch_seconds", lambda ds, batch_size: 0.1)
    val_batches = -(-len(run.recipe_datasets(recs["sifa_nano"], smoke_data)[1]) // 4)
    expected = 6 * (16 // 4 * (0.5 + 0.1) + val_batches * (0.2 + 0.1))       # epochs x (train + validation)
    assert zoo.estimate_work(["sifa_nano"], smoke_data)["sifa_nano"] == pytest.approx(expected)
    recs["sifa_nano"] = recs["sifa_nano"].replace(pretrain={"steps": 10, "batch_size": 8})   # 80 frames at 1/32 s
    assert zoo.estimate_work(["sifa_nano"], smoke_data)["sifa_nano"] == pytest.approx(expected + 10 * 8 / 32)

    assert zoo._makespan([], [5, 4, 3, 3], 2) == 8 and zoo._makespan([2], [5], 2) == 5
    assert zoo._makespan([4, 1], [3], 2) == 4
    started = []
    monkeypatch.setattr(zoo, "_child_command", lambda name, *a: started.append(name) or [sys.executable, "-c", ""])
    lines = []
    zoo._train_parallel(list(recs), smoke_data, smoke_data, "cpu", 0, 2, 1, lines.append,
                        work={"r2plus1d_nano": 60.0, "sifa_nano": 600.0, "dualformer_nano": 120.0})
    assert started == ["sifa_nano", "dualformer_nano", "r2plus1d_nano"]
    assert lines[0] == ("zoo: longest first: sifa_nano, dualformer_nano, r2plus1d_nano; about 10 min for the zoo "
                        "(estimated from one timed step of each model; corrected as the runs report their epochs)")


def test_zoo_eta_goes_at_the_measured_pace():
    """The ETA: a running model that reported epochs (its progress events) goes at its own pace; the others take
    their estimate scaled by measured / estimated over the finished runs; the queue runs longest first."""
    import vidlab.zoo as zoo
    work = {"a": 30.0, "b": 50.0, "c": 10.0, "d": 20.0}
    # "a" took twice its estimate; "b" runs at 10 s an epoch with 6 of its 10 epochs done, reported 5 s ago
    eta = zoo._zoo_eta(100.0, {"a": 0.0, "b": 20.0}, {"a": 60.0}, ["b"], ["c", "d"], 2, work,
                       {"b": (6, 10, 10.0, 95.0)})
    # b: 35 s left; queue longest first at scale 2: d 40 s on the free worker, then c 20 s after b -> 55 s
    assert eta == pytest.approx(55.0)
    # nothing reported yet: the estimate less the time spent
    assert zoo._zoo_eta(10.0, {"b": 0.0}, {}, ["b"], [], 1, work, {}) == pytest.approx(40.0)


def test_gpu_course_time_limit_interrupts_the_zoo_and_keeps_its_exit_code():
    """benchmarks/gpu_course.py --time-limit: the zoo process group gets Ctrl-C after the limit (124), and a zoo that
    ends in time returns its own exit code."""
    import importlib.util
    import sys
    import time
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_course.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location("gpu_course", path)
        gpu_course = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(gpu_course)
    finally:
        sys.path.remove(str(path.parent))
    t0 = time.perf_counter()
    assert gpu_course.run_zoo([sys.executable, "-c", "import time; time.sleep(60)"], 1.0) == 124
    assert time.perf_counter() - t0 < 30
    assert gpu_course.run_zoo([sys.executable, "-c", "raise SystemExit(3)"], 30.0) == 3


def test_validation_views_are_decoded_once_and_score_the_same(smoke_data):
    """The zoo decodes the val split once per run (PreloadedViews), not once per epoch: the same views, the same
    scores, the wrapped dataset's attributes; too large a split is left as it is."""
    import pickle

    from vidlab.train import Trainer, TrainConfig
    from vidlab.run import PreloadedViews, preload_views, recipe_datasets
    rec = get_recipe("r2plus1d_nano").replace(**TINY)
    _, val = recipe_datasets(rec, smoke_data)
    pre = preload_views(val, rec)
    assert isinstance(pre, PreloadedViews) and len(pre) == len(val) and pre.classes == val.classes
    assert preload_views(val, rec, max_bytes=1000) is val
    for i in range(len(val)):
        a, b = pre.get_view(i, 0, 0), val.get_view(i, 0, 0)
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
        assert a[1:] == b[1:]
    assert pre.get_view(0, 1, 0, num_clips=2)[0].shape == val.get_view(0, 1, 0, num_clips=2)[0].shape
    again = pickle.loads(pickle.dumps(pre))          # DataLoader workers under the spawn start method
    torch.testing.assert_close(again.views[0][0], pre.views[0][0])
    torch.manual_seed(0)
    model = vidlab.create_model("r2plus1d_nano", num_classes=len(val.classes), num_frames=4, img_size=32)
    trainer = Trainer(model, val, None, TrainConfig(epochs=1, batch_size=4, device="cpu", progress=False))
    one, two = trainer.evaluate(val), trainer.evaluate(pre)
    assert one["top1"] == two["top1"] and one["loss"] == two["loss"] and (one["confusion"] == two["confusion"]).all()
