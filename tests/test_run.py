"""One run path: `vidlab train` and the zoo train a recipe through `vidlab.run.run_recipe`, so the same recipe,
data and seed give the same weights whichever entry point runs it."""
import torch

from vidlab.__main__ import main
from vidlab.models import get_recipe
from vidlab.run import run_recipe
from vidlab.zoo import train_run

TINY = dict(epochs=1, batch_size=4, num_frames=4, img_size=32, stream_clips=16, warmup_epochs=0.0)


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_the_cli_and_the_zoo_train_the_same_weights(smoke_data, tmp_path, capsys):
    rec = get_recipe("r2plus1d_nano").replace(**TINY)
    zoo_run = train_run("r2plus1d_nano", smoke_data, tmp_path / "zoo", rec=rec, progress=False, seed=1)
    rc = main(["train", "--model", "r2plus1d_nano", "--data", str(smoke_data), "--out", str(tmp_path / "cli"),
               "--seed", "1", "--epochs", "1", "--batch-size", "4", "--frames", "4", "--size", "32",
               "--stream-clips", "16", "--warmup-epochs", "0"])
    assert rc == 0, capsys.readouterr().err
    zoo_w, cli_w = _weights(tmp_path / "zoo" / "best.pt"), _weights(tmp_path / "cli" / "best.pt")
    assert zoo_w.keys() == cli_w.keys()
    assert all(torch.equal(zoo_w[k], cli_w[k]) for k in zoo_w)
    # and the same scores: both report the best epoch's weights on the val split
    out = capsys.readouterr().out
    assert f"val top-1 {zoo_run.metrics['top1']:.1f}%" in out


def test_run_recipe_without_a_folder_scores_what_it_trained(smoke_data):
    rec = get_recipe("r2plus1d_nano").replace(**TINY)
    result = run_recipe("r2plus1d_nano", smoke_data, None, rec=rec, progress=False, log=lambda line: None)
    assert result.best is None and len(result.history) == 1
    assert result.metrics["num_clips"] > 0 and result.metrics["frame_order"]["n"] > 0
    assert result.metrics["recipe"] == rec.to_dict()
