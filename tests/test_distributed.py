"""Distributed training on CPU: 2 processes, gloo backend, DistributedDataParallel + DistributedSampler.

Both ranks must finish with identical weights, agree on every metric, evaluate each validation clip exactly once,
and only rank 0 writes checkpoints and logs.
"""
from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

pytestmark = pytest.mark.slow


class Clips(Dataset):
    classes = ["a", "b", "c"]

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % 3 for i in range(n)]
        self.data = torch.randn(n, 3, 4, 8, 8, generator=g)
        for i, y in enumerate(self.labels):
            self.data[i, y] += 1.0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):  # augmentation noise from the (per-rank) global RNG
        return self.data[i] + 0.1 * torch.randn_like(self.data[i]), self.labels[i], i


class Net(nn.Module):
    num_classes = 3

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 6, 3, padding=1)
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        return self.head(self.drop(F.relu(self.conv(x)).mean((2, 3, 4))))


def _worker(rank, world, port, out_dir, results):
    import os
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from vidlab.train import Trainer, TrainConfig
        torch.manual_seed(rank)  # different init per rank on purpose: DDP must broadcast rank 0's weights
        cfg = TrainConfig(epochs=2, batch_size=3, lr=1e-2, warmup_epochs=0.5, seed=0, progress=False,
                          device="cpu", out_dir=out_dir, accum_steps=2)
        trainer = Trainer(Net(), Clips(22, seed=0), Clips(7, seed=1), cfg)
        hist = trainer.fit()
        ev = trainer.evaluate(Clips(7, seed=1))
        torch.save({"weights": trainer.model.state_dict(), "history": hist, "eval_n": ev["num_clips"],
                    "eval_index": ev["index"].tolist(), "top1": ev["top1"], "steps": trainer.global_step},
                   f"{results}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    out, res = tmp_path / "run", tmp_path / "res"
    res.mkdir()
    # spawn, not fork: forking a process whose OpenMP / DataLoader threads hold locks (earlier tests leave such
    # threads behind) can deadlock the child; spawn re-imports torch in each child, slower but safe
    mp.start_processes(_worker, args=(2, _free_port(), str(out), str(res)), nprocs=2, join=True,
                       start_method="spawn")
    r0, r1 = (torch.load(res / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["weights"].keys() == r1["weights"].keys()
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
    # 22 clips / 2 ranks = 11 per rank -> 4 micro-batches of 3 -> 2 optimiser steps per epoch
    assert r0["steps"] == r1["steps"] == 4
    same = ("train_loss", "train_acc", "val_loss", "val_top1", "val_top5", "lr")   # timings are per rank
    assert [[h[k] for k in same] for h in r0["history"]] == [[h[k] for k in same] for h in r1["history"]]
    assert len(r0["history"]) == 2
    assert r0["eval_n"] == r1["eval_n"] == 7 and r0["eval_index"] == list(range(7))   # each clip once
    assert r0["top1"] == r1["top1"]
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])
    for k, v in ckpt["model"].items():
        assert torch.equal(v, r0["weights"][k]), k
    assert (out / "metrics.csv").read_text().count("\n") == 3
