"""Does `vidlab.viz.capture` cost anything when nothing is captured? Latency of the same model and clip:

  off      no capture active (``record`` returns after one check of an empty list)
  nothing  inside ``capture(model, kinds=["none"])``: active, but no map is wanted (the attention maps are not
           computed; ``record`` looks the module up and returns)
  all      inside ``capture(model)``: every map computed, detached and copied

Conditions are interleaved round by round so that load on a shared machine hits them equally; the table gives
the median and IQR per condition and the ratio to "off". On a loaded machine the spread of a whole forward pass
hides differences of a few percent, so the second table bounds the cost directly: it counts the ``record`` /
``wants`` calls one forward makes and times those calls alone (one million of them) with no capture active —
the total is the exact extra work the models do when nobody is capturing.

    OMP_NUM_THREADS=1 python benchmarks/capture_overhead.py --models vit_joint_nano r2plus1d_nano --iters 15
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import vidlab
from vidlab.viz import capture
from _common import cpu_name  # noqa: E402  (benchmarks/ is on sys.path when a script runs)


def measure(model, x, iters: int, warmup: int) -> dict[str, list[float]]:
    conds = {
        "off": lambda: None,
        "nothing": lambda: capture(model, kinds=["none"]),
        "all": lambda: capture(model),
    }
    times = {c: [] for c in conds}
    with torch.no_grad():
        for r in range(warmup + iters):
            for name, make in conds.items():
                ctx = make()
                t0 = time.perf_counter()
                if ctx is None:
                    model(x)
                else:
                    with ctx as maps:
                        model(x)
                if x.is_cuda:
                    torch.cuda.synchronize()
                dt = (time.perf_counter() - t0) * 1e3
                if r >= warmup:
                    times[name].append(dt)
                if ctx is not None:
                    n_maps = len(maps)
                    if name == "nothing" and n_maps:
                        raise RuntimeError("capture of nothing recorded maps")
    return times


def count_hook_calls(model, x) -> int:
    """How many times one forward calls record() / wants() (counted by wrapping them while no capture is on)."""
    import importlib
    cap = importlib.import_module("vidlab.viz.capture")    # the module (vidlab.viz.capture the name is the class)
    mods = {cap, *(importlib.import_module(type(m).__module__) for m in model.modules())}
    n = [0]
    originals, real = {}, {fn: getattr(cap, fn) for fn in ("record", "wants")}
    for mod in mods:
        for fn in ("record", "wants"):
            f = getattr(mod, fn, None)
            if f is real[fn]:
                originals[(mod, fn)] = f
                setattr(mod, fn, (lambda f: lambda *a, **k: (n.__setitem__(0, n[0] + 1), f(*a, **k))[1])(f))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for (mod, fn), f in originals.items():
            setattr(mod, fn, f)
    return n[0]


def per_call_ns(model) -> tuple[float, float]:
    """Median time of record() and wants() with no capture active, in ns per call (5 x 200k calls)."""
    from vidlab.viz.capture import record, wants
    t = torch.zeros(1)
    out = []
    for fn, args in ((record, (model, "attention", t)), (wants, (model, "attention"))):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(200_000):
                fn(*args)
            runs.append((time.perf_counter_ns() - t0) / 200_000)
        out.append(statistics.median(runs))
    return out[0], out[1]


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["vit_joint_nano", "vit_divided_nano", "r2plus1d_nano"])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--iters", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    from vidlab.utils import resolve_device
    dev = resolve_device(args.device)
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    lines = [f"capture overhead, {args.batch}x3x{args.frames}x{args.size}x{args.size}, forward, no_grad, "
             f"{dev} ({where}, {torch.get_num_threads()} threads), torch {torch.__version__}, "
             f"median of {args.iters} interleaved rounds",
             "",
             "| model | off (ms) | capture nothing (ms) | capture all (ms) | nothing / off | all / off | maps |",
             "|---|---|---|---|---|---|---|"]
    hook_calls = {}
    for name in args.models:
        model = vidlab.create_model(name, num_classes=10, num_frames=args.frames, img_size=args.size).to(dev).eval()
        x = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=dev)
        with torch.no_grad(), capture(model) as maps:
            model(x)
        t = measure(model, x, args.iters, args.warmup)
        hook_calls[name] = (count_hook_calls(model, x), statistics.median(t["off"]))
        med = {k: statistics.median(v) for k, v in t.items()}
        iqr = {k: (lambda q: q[2] - q[0])(statistics.quantiles(v, n=4, method="inclusive")) for k, v in t.items()}
        cell = lambda k: f"{med[k]:.1f} ± {iqr[k]:.1f}"  # noqa: E731
        lines.append(f"| {name} | {cell('off')} | {cell('nothing')} | {cell('all')} | "
                     f"{med['nothing'] / med['off']:.3f} | {med['all'] / med['off']:.3f} | {len(maps)} |")
    lines.append("")
    lines.append("± is the interquartile range. 'nothing' ≈ 1.00 means no cost when not capturing.")
    rec_ns, wants_ns = per_call_ns(torch.nn.Linear(1, 1))
    lines += ["", f"no capture active: record() {rec_ns:.0f} ns per call, wants() {wants_ns:.0f} ns per call "
                  f"(median of 5 x 200k calls)", "",
              "| model | record/wants calls per forward | their cost (µs) | share of the forward ('off' median) |",
              "|---|---|---|---|"]
    for name, (calls, off_ms) in hook_calls.items():
        cost_us = calls * max(rec_ns, wants_ns) / 1e3
        lines.append(f"| {name} | {calls} | {cost_us:.2f} | {cost_us / (off_ms * 1e3):.1e} |")
    out = "\n".join(lines)
    print(out)
    return out


if __name__ == "__main__":
    main()
