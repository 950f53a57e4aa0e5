"""Video Mobile-Former: cost and speed of the nano and the smallest paper-regime size, and the nano's accuracy.

    python benchmarks/video_mobileformer.py                 # cost + latency table (CPU, batch 1)
    python benchmarks/video_mobileformer.py --train         # + the nano trained on the default synthetic data
    python benchmarks/video_mobileformer.py --quick         # fewer timing repetitions

Cost: parameters; MACs of conv/linear/matmul (vidlab.profile, fvcore-like), the same plus the DyReLU products
(Mobile-Former's convention, what vidlab's size names mean) and FLOPs (= 2 x MAC), one clip of the model's
default input. Latency: `vidlab.profile.latency`, median over N timed calls after warm-up, eval forward under
no_grad, and forward + backward (eval mode: BN statistics frozen, batch 1). Accuracy: `benchmarks/train_nano.py --model video_mobileformer_nano`
(the trainer helper's script: 6 epochs, 8x64x64, default synthetic data, single view).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vidlab  # noqa: E402
from vidlab.models import video_mobileformer as vmf  # noqa: E402
from vidlab.profile import latency  # noqa: E402
from _common import cpu_name  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["video_mobileformer_nano", "video_mobileformer_500m"])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="3 timed calls instead of --iters")
    p.add_argument("--train", action="store_true", help="also train the nano (benchmarks/train_nano.py)")
    p.add_argument("--data", default=str(ROOT / "data" / "synthetic"))
    p.add_argument("--json", help="write the rows as JSON here")
    args = p.parse_args(argv)
    iters = 3 if args.quick else args.iters

    rows = []
    for name in args.models:
        (T, S), _ = vmf.VARIANT_GMACS[name]
        torch.manual_seed(0)
        model = vidlab.create_model(name, num_frames=T, img_size=S)
        x = torch.randn(1, 3, T, S, S)
        c = vmf.mobileformer_macs(model, x)
        fwd = latency(model, x, warmup=2, iters=iters)
        # forward + backward at batch 1 with BatchNorm statistics frozen (eval mode): the head's BatchNorm1d, as
        # in the image model, cannot compute batch statistics from one clip
        bwd = latency(model.eval(), x, warmup=1, iters=max(2, iters // 2), backward=True)
        rows.append({"model": name, "input": f"{T}x{S}x{S}", "params": c["params"], "gmac": c["macs"] / 1e9,
                     "mf_g": c["mf_macs"] / 1e9, "gflop": c["flops"] / 1e9, "fwd_ms": fwd.median_ms,
                     "fwd_iqr_ms": fwd.iqr_ms, "fwdbwd_ms": bwd.median_ms, "fwdbwd_iqr_ms": bwd.iqr_ms,
                     "iters": iters, "threads": torch.get_num_threads()})
    machine = f"{cpu_name()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    print(f"machine: {machine}; torch {torch.__version__}; {datetime.date.today().isoformat()}; batch 1, CPU")
    print("| model | input | params | GMAC | Mobile-Former G (MAC+DyReLU) | GFLOP | fwd ms (median, IQR) | "
          "fwd+bwd ms (median, IQR) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['input']} | {r['params'] / 1e6:.2f} M | {r['gmac']:.3f} | {r['mf_g']:.3f} | "
              f"{r['gflop']:.3f} | {r['fwd_ms']:.1f} ({r['fwd_iqr_ms']:.1f}) | "
              f"{r['fwdbwd_ms']:.1f} ({r['fwdbwd_iqr_ms']:.1f}) |")
    out = {"machine": machine, "date": datetime.date.today().isoformat(), "rows": rows}
    if args.train:
        train_json = Path("/tmp") / "video_mobileformer_train_nano.json"
        cmd = [sys.executable, str(ROOT / "benchmarks" / "train_nano.py"), "--model", "video_mobileformer_nano",
               "--data", args.data, "--header", "--no-progress", "--json", str(train_json)]
        subprocess.run(cmd, check=True)
        out["train"] = json.loads(train_json.read_text())
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
