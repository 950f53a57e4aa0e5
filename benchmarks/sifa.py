"""SIFA benchmark: the inter-frame attention op (grid_sample vs unfold) and the models' cost and latency.

    python benchmarks/sifa.py                 # op table + nano and SIFA-Net R50 (CPU, batch 1)
    python benchmarks/sifa.py --quick         # op table + nano only
    python benchmarks/sifa.py --train         # also the nano's accuracy via benchmarks/train_nano.py

Tables (markdown):
1. The op on one batch of frame pairs, forward and forward+backward, median of `--iters` runs:
   `grid_sample` (any offsets; vidlab's deformable path), `grid_sample` on the regular grid (offsets None), and the
   `unfold` (im2col) view of the regular grid (vidlab's path for deformable=False, e.g. the released SIFA-Swin).
   Shapes are those of SIFA-Net R50's res3/res4 at 16 frames, batch 2, and the nano's res3 at 8x128x128, batch 8.
2. Models: params, MACs (vidlab.profile, SIFA op counted) and CPU latency at batch 1.
Machine and date are printed; numbers vary with load on shared machines.
"""
from __future__ import annotations

import argparse
import datetime
import statistics
import time

import torch
from _common import machine, train_nano  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def median_ms(fn, iters: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def op_table(iters: int) -> list[str]:
    from vidlab.models.sifa import inter_frame_attention
    shapes = {"R50 res3 (16 f, B=2)": (2 * 3, 128, 28, 28), "R50 res4 (16 f, B=2)": (2 * 3, 256, 14, 14),
              "nano res3 (8x128², B=8)": (8 * 3, 64, 16, 16)}
    rows = ["| frames pairs N x C x H x W | impl | forward ms | forward+backward ms |", "|---|---|---|---|"]
    torch.manual_seed(0)
    for label, (N, C, H, W) in shapes.items():
        q = torch.randn(N, C, H, W, requires_grad=True)
        v = torch.randn(N, C, H, W, requires_grad=True)
        off = (torch.randn(N, 18, H, W) * 0.5).requires_grad_()
        for impl, o in (("grid_sample (deformable)", off), ("grid_sample (regular grid)", None),
                        ("unfold (regular grid)", None)):
            name = impl.split(" ")[0]

            def fwd():
                with torch.no_grad():
                    inter_frame_attention(q, v, o, impl=name)

            def fwd_bwd():
                out, _ = inter_frame_attention(q, v, o, impl=name)
                out.square().mean().backward()

            rows.append(f"| {label}: {N}x{C}x{H}x{W} | {impl} | {median_ms(fwd, iters):.1f} | "
                        f"{median_ms(fwd_bwd, iters):.1f} |")
    return rows


def model_table(names: list[str], iters: int) -> list[str]:
    import vidlab
    from vidlab.profile import complexity
    rows = ["| model | input (batch 1) | params | GMAC (SIFA op counted) | SIFA op GMAC | forward ms | "
            "forward+backward ms |", "|---|---|---|---|---|---|---|"]
    for name, frames, size in names:
        torch.manual_seed(0)
        m = vidlab.create_model(name, num_frames=frames, img_size=size)
        x = torch.randn(1, 3, frames, size, size)
        c = complexity(m, x)
        ops = c.by_op.set_index("op")["macs"]
        op_gmac = float(ops.get("aten.grid_sampler_2d", 0) + ops.get("aten.bmm", 0)) / 1e9
        m.eval()

        def fwd():
            with torch.no_grad():
                m(x)

        m.train()

        def fwd_bwd():
            m(x).sum().backward()

        t_fb = median_ms(fwd_bwd, iters)
        m.eval()
        t_f = median_ms(fwd, iters)
        rows.append(f"| {name} | {frames}x{size}x{size} | {c.params:,} | {c.gmacs:.2f} | {op_gmac:.3f} | "
                    f"{t_f:.0f} | {t_fb:.0f} |")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=5, help="timed repetitions (median reported)")
    p.add_argument("--quick", action="store_true", help="skip SIFA-Net R50")
    p.add_argument("--train", action="store_true", help="also run benchmarks/train_nano.py --model sifa_nano")
    args = p.parse_args(argv)
    print(f"machine: {machine()}; date: {datetime.date.today()}\n")
    print("\n".join(op_table(args.iters)))
    print()
    names = [("sifa_nano", 8, 128)] + ([] if args.quick else [("sifa_resnet50", 16, 224)])
    print("\n".join(model_table(names, max(2, args.iters // 2) if not args.quick else args.iters)))
    if args.train:
        print()
        return train_nano("sifa_nano")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
