"""Video Mobile-Former: cost and speed of the nano and the smallest paper-regime size, and the nano's accuracy.

    python benchmarks/video_mobileformer.py                 # cost + latency table (CPU, batch 1)
    python benchmarks/video_mobileformer.py --train         # + the nano trained on the default synthetic data
    python benchmarks/video_mobileformer.py --quick         # fewer timing repetitions
    python benchmarks/video_mobileformer.py --depthwise     # depthwise Conv3d: contiguous vs channels-last input

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
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vidlab  # noqa: E402
from vidlab.models import video_mobileformer as vmf  # noqa: E402
from vidlab.profile import latency, mobileformer_macs  # noqa: E402
from _common import cpu_name  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def _best_ms(fn, iters: int) -> float:
    times = []
    for _ in range(iters + 1):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * min(times[1:])


def depthwise(iters: int) -> int:
    """Forward + backward of each depthwise Conv3d of the nano at the zoo recipe's input, and one training step of
    the nano (forward, backward), with `ConvBN.channels_last_depthwise` off and on; fastest of `iters` runs."""
    import torch.nn.functional as F
    rec = vidlab.models.get_recipe("video_mobileformer_nano")
    torch.manual_seed(0)
    model = vidlab.create_model("video_mobileformer_nano", num_classes=12, num_frames=rec.num_frames,
                                img_size=rec.img_size, **rec.model).train()
    x = torch.randn(rec.batch_size, 3, rec.num_frames, rec.img_size, rec.img_size)
    inputs = {}
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: inputs.setdefault(n, a[0].detach().contiguous()))
             for n, m in model.named_modules() if isinstance(m, torch.nn.Conv3d) and m.groups > 1]
    model(x)
    for h in hooks:
        h.remove()
    convs = dict(model.named_modules())
    print(f"machine: {cpu_name()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads); torch "
          f"{torch.__version__}; {datetime.date.today().isoformat()}; video_mobileformer_nano, batch "
          f"{rec.batch_size}, {rec.num_frames}x{rec.img_size}x{rec.img_size}; fastest of {iters}")
    print("| layer | input | fwd+bwd ms, contiguous | fwd+bwd ms, channels-last | speed-up |")
    print("|---|---|---:|---:|---:|")
    total = [0.0, 0.0]
    for name, inp in inputs.items():
        conv = convs[name]
        ms = []
        for fmt in (torch.contiguous_format, torch.channels_last_3d):
            xi = inp.contiguous(memory_format=fmt).requires_grad_()
            ms.append(_best_ms(lambda: F.conv3d(xi, conv.weight, None, conv.stride, conv.padding, conv.dilation,
                                                conv.groups).sum().backward(), iters))
        total = [total[0] + ms[0], total[1] + ms[1]]
        print(f"| {name} | {tuple(inp.shape)} | {ms[0]:.1f} | {ms[1]:.1f} | {ms[0] / ms[1]:.1f}x |")
    print(f"| all {len(inputs)} | | {total[0]:.1f} | {total[1]:.1f} | {total[0] / total[1]:.1f}x |")
    step = []
    for on in (False, True):
        vmf.ConvBN.channels_last_depthwise = on
        step.append(_best_ms(lambda: model(x).sum().backward(), iters))
    vmf.ConvBN.channels_last_depthwise = True
    print(f"\ntraining step (forward + backward, batch {rec.batch_size}): {step[0]:.0f} ms contiguous, {step[1]:.0f} ms "
          f"channels-last ({step[0] / step[1]:.2f}x)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["video_mobileformer_nano", "video_mobileformer_500m"])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="3 timed calls instead of --iters")
    p.add_argument("--train", action="store_true", help="also train the nano (benchmarks/train_nano.py)")
    p.add_argument("--data", default=str(ROOT / "data" / "synthetic"))
    p.add_argument("--json", help="write the rows as JSON here")
    p.add_argument("--depthwise", action="store_true",
                   help="time the nano's depthwise Conv3d layers and its training step (batch 16, 8x32x32, the "
                        "zoo recipe's shape) with contiguous and with channels-last input")
    args = p.parse_args(argv)
    iters = 3 if args.quick else args.iters
    if args.depthwise:
        return depthwise(iters)

    rows = []
    for name in args.models:
        (T, S), _ = vmf.VARIANT_GMACS[name]
        torch.manual_seed(0)
        model = vidlab.create_model(name, num_frames=T, img_size=S)
        x = torch.randn(1, 3, T, S, S)
        c = mobileformer_macs(model, x)
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
