"""The `vidlab` command line: models, profile, train/eval end to end on the smoke data, argument errors, data."""
from __future__ import annotations

import csv
import io
import json

import pytest
import torch

import vidlab
from vidlab.__main__ import main


def run(argv, capsys):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse errors and --help
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_models_table_lists_every_registered_model_with_paper_facts(capsys):
    rc, out, _ = run(["models"], capsys)
    assert rc == 0
    assert "params M (paper)" in out and "GFLOPs (paper)" in out and "FLOPs convention" in out
    names = vidlab.list_models()
    assert {"vit_joint_nano", "vit_divided_nano", "r2plus1d_nano"} <= set(names)
    listed = [line.split()[0] for line in out.splitlines()[2:] if line.strip() and not line.startswith(f"{len(names)} models")]
    assert listed == names

    rc, out, _ = run(["models", "*_nano", "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rc == 0 and [r["model"] for r in rows] == vidlab.list_models("*_nano")

    rc, out, _ = run(["models", "--format", "json", "--only", "paper"], capsys)
    infos = json.loads(out)
    assert rc == 0 and infos and all(not i["teaching"] for i in infos)
    some = infos[0]
    assert some == json.loads(json.dumps(vidlab.model_info(some["name"]), default=list))


def test_profile_prints_params_macs_flops_and_latency(capsys):
    rc, out, _ = run(["profile", "--model", "vit_joint_nano", "--frames", "4", "--size", "32", "--num-classes", "5",
                      "--iters", "1", "--warmup", "0"], capsys)
    assert rc == 0
    from vidlab.profile import complexity
    model = vidlab.create_model("vit_joint_nano", num_classes=5, num_frames=4, img_size=32)
    c = complexity(model, (1, 3, 4, 32, 32))
    assert f"{c.params:,}" in out and f"{c.flops:,}" in out and "MAC" in out
    assert "latency" in out and " ms " in out


@pytest.mark.parametrize("name", ["vit_joint_nano", "r2plus1d_nano"])
def test_profile_without_frames_and_size_counts_a_nano_at_its_recipes_input(capsys, name):
    rec = vidlab.models.get_recipe(name)
    rc, out, _ = run(["profile", "--model", name, "--num-classes", "5", "--iters", "0"], capsys)
    assert rc == 0 and f"input 1x3x{rec.num_frames}x{rec.img_size}x{rec.img_size}" in out, out


@pytest.mark.parametrize("argv, arg", [
    (["train", "--model", "vit_joint_nano", "--data", "{tmp}", "--epochs", "0", "--out", "{tmp}/r"], "--epochs"),
    (["train", "--model", "vit_joint_nano", "--data", "{tmp}", "--epochs", "1", "--out", "{tmp}/r", "--lr", "-1"],
     "--lr"),
    (["train", "--model", "no_such_model", "--data", "{tmp}", "--epochs", "1", "--out", "{tmp}/r"], "--model"),
    (["train", "--model", "vit_joint_nano", "--data", "{tmp}/missing", "--epochs", "1", "--out", "{tmp}/r"],
     "--data"),
    (["train", "--model", "vit_joint_nano", "--data", "{tmp}", "--epochs", "1", "--out", "{tmp}/r",
      "--resume", "{tmp}/nope.pt"], "--resume"),
    (["train", "--model", "vit_joint_nano", "--epochs", "1", "--out", "{tmp}/r"], "--data"),
    (["train", "--model", "vit_joint_nano", "--data", "{tmp}", "--out", "{tmp}/r", "--pretrain", "[1]"],
     "--pretrain"),
    (["eval", "--checkpoint", "{tmp}/nope.pt", "--data", "{tmp}"], "--checkpoint"),
    (["eval", "--checkpoint", "{tmp}/plain.pt", "--data", "{tmp}"], "--checkpoint"),
    (["eval", "--checkpoint", "{tmp}/plain.pt", "--data", "{tmp}", "--views", "2by3"], "--views"),
    (["eval", "--checkpoint", "{tmp}/garbage.pt", "--data", "{tmp}"], "--checkpoint"),
    (["profile", "--model", "no_such_model"], "--model"),
    (["profile", "--model", "vit_joint_nano", "--frames", "x"], "--frames"),
])
def test_bad_arguments_exit_2_with_one_line_naming_the_argument(argv, arg, tmp_path, capsys):
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")   # a checkpoint not written by vidlab train
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    rc, out, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and arg in lines[0] and "error" in lines[0] and "Traceback" not in err, err


def test_no_command_prints_help(capsys):
    rc, out, _ = run([], capsys)
    assert rc == 0 and "models" in out and "train" in out and "data" in out


def _has_datasets() -> bool:
    try:
        from vidlab.data import VideoClipDataset, build_transforms  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_datasets(), reason="vidlab.data.VideoClipDataset not available yet")
def test_train_resume_and_eval_end_to_end(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--model", "vit_joint_nano", "--data", str(smoke_data), "--out", str(out), "--frames", "4",
              "--size", "32", "--batch-size", "8", "--lr", "2e-3", "--seed", "1"]
    rc, text, err = run(["train", "--epochs", "1", "--no-frame-order", "--adam-eps", "1e-10", *common], capsys)
    assert rc == 0, err
    assert {"last.pt", "best.pt", "metrics.csv", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert "frame-order test" not in text
    first = torch.load(out / "last.pt", weights_only=True)   # a recipe flag reaches the optimiser and the record
    assert {g["eps"] for g in first["optimizer"]["param_groups"]} == {1e-10}
    assert first["meta"]["recipe"]["adam_eps"] == 1e-10

    rc, text, err = run(["train", "--epochs", "2", "--resume", str(out / "last.pt"), "--adam-eps", "1e-10", *common],
                        capsys)
    assert rc == 0, err
    assert "resumed from" in text and "frame-order test" in text and (out / "frame_order.json").exists()
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["model_name"] == "vit_joint_nano"
    model_args = ckpt["meta"]["model_args"]   # the architecture itself is the registration's defaults
    assert {k: model_args[k] for k in ("num_classes", "num_frames", "img_size")} == {
        "num_classes": len(ckpt["classes"]), "num_frames": 4, "img_size": 32}

    report = tmp_path / "eval.json"
    rc, text, err = run(["eval", "--checkpoint", str(out / "last.pt"), "--data", str(smoke_data),
                         "--views", "2x3", "--json", str(report)], capsys)
    assert rc == 0, err
    r = json.loads(report.read_text())
    assert r["views"] == "2x3" and r["num_clips"] == sum(map(sum, r["confusion"]))
    assert 0 <= r["top1"] <= r["top5"] <= 100 and f"top-1 {r['top1']:.2f}%" in text
    assert "frame_order" in r and r["frame_order"]["n"] > 0


def test_data_commands_are_wired(capsys):
    pytest.importorskip("vidlab.data.cli", reason="vidlab.data.cli not written yet")
    rc, out, _ = run(["data", "--help"], capsys)
    assert rc == 0 and "synth" in out
