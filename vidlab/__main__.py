"""The `vidlab` command line (also `python -m vidlab`).

    vidlab models                                   the registered models and their paper facts
    vidlab profile --model vit_joint_nano            at the model's own input (a _nano's: its recipe's)
    vidlab train --model vit_joint_nano --data data/synthetic --epochs 10 --out runs/joint
    vidlab train ... --resume runs/joint/last.pt    continue a stopped run exactly
    vidlab eval --checkpoint runs/joint/best.pt --data data/synthetic --views 2x3
    vidlab data synth --out data/synthetic           (see `vidlab data --help`)

Multi-GPU: `torchrun --nproc_per_node=4 -m vidlab train ...` (batch size is per GPU).
Bad arguments print one line naming the argument and exit with status 2; a diverged run exits with 1.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from .errors import CheckpointError, CheckpointSaveError, ConfigError, DatasetError, OutOfSpaceError, VidlabError


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block): `vidlab train: error: argument --epochs: ...`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _number(cast, ok, expected: str):
    """An argparse type: `cast` the text and require `ok(value)`, else say what was expected."""
    def parse(text: str):
        try:
            v = cast(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return v
    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not v >= 0 or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return v


def _json_object(text: str) -> dict:
    """An argparse type: a JSON object, e.g. the recipe's frame pretraining '{"steps": 500}'."""
    try:
        v = json.loads(text)
    except ValueError:
        v = None
    if not isinstance(v, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object such as '{{\"steps\": 500}}' or '{{}}', got {text!r}")
    return v


def _views(text: str) -> str:
    from .train import parse_views
    try:
        clips, crops = parse_views(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"expected <clips>x<crops> such as 2x3, got {text!r}") from None
    return f"{clips}x{crops}"


def _check_model(name: str) -> None:
    from .models import list_models
    from .models.registry import suggest_models
    if name not in list_models():
        near = suggest_models(name)
        raise ConfigError(f"argument --model: unknown model {name!r}; "
                          + (f"did you mean {', '.join(near)}?" if near else "`vidlab models` lists them"))


def _check_device(text: str) -> None:
    from .utils import resolve_device
    try:
        resolve_device(text)
    except ConfigError as e:
        raise ConfigError(f"argument --device: {e}") from None


def _check_out(path: str, arg: str = "--out") -> None:
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"argument {arg}: {path} is a file, not a folder")
    parent = next((q for q in [p, *p.parents] if q.exists()), Path("."))
    if not parent.is_dir():
        raise ConfigError(f"argument {arg}: {parent} is a file, so {path} cannot be a folder")


def _check_dir(path: str, arg: str) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise DatasetError(f"argument {arg}: no such directory: {path}")
    return p


def _table(rows: list[list], headers: list[str], align: str | None = None) -> str:
    """A plain-text table; `align` has one character per column, 'l' or 'r'."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)
    fmt = lambda r: "  ".join(c.ljust(w) if a == "l" else c.rjust(w)  # noqa: E731
                              for c, w, a in zip(r, widths, align)).rstrip()
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]])


# --------------------------------------------------------------------------------------------------------------
# vidlab models
# --------------------------------------------------------------------------------------------------------------

def cmd_models(args) -> int:
    from .models import list_models, model_info
    teaching = {"paper": False, "teaching": True}.get(args.only)
    names = list_models(args.pattern, arch=args.arch, teaching=teaching)
    infos = [model_info(n) for n in names]
    if args.format == "json":
        print(json.dumps(infos, indent=1, default=list))
        return 0
    millions = lambda v: "" if v is None else f"{v / 1e6:.2f}"  # noqa: E731
    rows = [[i["name"], i["arch"], i["variant"], i["input"], millions(i["params_reported"]),
             millions(i["params_official"]), "" if i["gflops_reported"] is None else f"{i['gflops_reported']:g}",
             i["flops_convention"], ", ".join(f"{k} {v}" for k, v in (i["top1"] or {}).items())] for i in infos]
    headers = ["model", "arch", "variant", "input", "params M (paper)", "params M (official code)",
               "GFLOPs (paper)", "FLOPs convention", "top-1 (paper)"]
    if args.format == "csv":
        import csv
        w = csv.writer(sys.stdout)
        w.writerow(headers)
        w.writerows(rows)
        return 0
    if not args.wide:  # long cells (conventions, variant names) are cut; --wide, csv and json give them whole
        cut = lambda c: c if len(c) <= 38 else c[:37] + "…"  # noqa: E731
        rows = [[cut(str(c)) for c in r] for r in rows]
    if not rows:
        print(f"no registered model matches {args.pattern!r}" + (f" in arch {args.arch!r}" if args.arch else ""))
        return 0
    print(_table(rows, headers, "lllrrrrll"))
    print(f"\n{len(rows)} models. Teaching sizes (_nano) are vidlab's own; paper numbers are as reported, "
          "with the paper's FLOP convention (most count multiply-accumulates).")
    return 0


# --------------------------------------------------------------------------------------------------------------
# vidlab profile
# --------------------------------------------------------------------------------------------------------------

def cmd_profile(args) -> int:
    import torch
    from .models import model_info
    from .profile import complexity, latency
    from .utils import resolve_device
    _check_model(args.model)
    _check_device(args.device)
    from .run import build_model
    model = build_model(args.model, dict(num_classes=args.num_classes, num_frames=args.frames,
                                         img_size=args.size)).eval()
    # --frames / --size left out: the model's own input (a _nano's is its recipe's, the one it trains at)
    frames, size = args.frames or model.cfg.num_frames, args.size or model.cfg.img_size
    shape = (args.batch_size, 3, frames, size, size)
    c = complexity(model, shape)
    print(f"{args.model}  input {'x'.join(map(str, shape))}")
    print(c.summary(depth=args.depth))
    info = model_info(args.model)
    if info["gflops_reported"] is not None or info["params_reported"] is not None:
        paper = [f"{info['variant'] or args.model} at {info['input'] or '?'}"]
        if info["params_reported"] is not None:
            paper.append(f"params {info['params_reported'] / 1e6:.2f} M")
        if info["gflops_reported"] is not None:
            paper.append(f"{info['gflops_reported']:g} GFLOPs per view "
                         f"({info['flops_convention'] or 'convention not stated'})")
        print("\npaper: " + "; ".join(paper))
    if args.iters > 0:
        device = resolve_device(args.device)
        x = torch.randn(shape)
        t = latency(model, x, warmup=args.warmup, iters=args.iters, device=device)
        print(f"\nlatency  {t}  threads {t.threads}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# vidlab train / eval
# --------------------------------------------------------------------------------------------------------------

_RECIPE_FLAGS = {"epochs": "epochs", "batch_size": "batch_size", "lr": "lr", "optimizer": "optimizer",
                 "weight_decay": "weight_decay", "warmup_epochs": "warmup_epochs",
                 "label_smoothing": "label_smoothing", "clip_grad": "clip_grad", "frames": "num_frames",
                 "size": "img_size", "stream_clips": "stream_clips", "adam_eps": "adam_eps", "pretrain": "pretrain"}


def _train_recipe(args):
    """The model's registered recipe with the flags the user gave (each overrides one field)."""
    from .models import get_recipe
    given = {field: getattr(args, flag) for flag, field in _RECIPE_FLAGS.items() if getattr(args, flag) is not None}
    rec = get_recipe(args.model).replace(**given)
    shown = ", ".join(f"{k}={v}" for k, v in rec.to_dict().items())
    print(f"recipe of {args.model}{' with ' + ', '.join(sorted(given)) + ' from the command line' if given else ''}:"
          f" {shown}")
    return rec


def cmd_train(args) -> int:
    """`vidlab train`: one run of the model's recipe (`vidlab.run.run_recipe`, the path the zoo runs too), each
    flag overriding one field of the recipe."""
    import torch
    from .run import run_recipe
    from .train import init_distributed, progress_printer, rank

    _check_model(args.model)
    root = _check_dir(args.data, "--data")
    _check_out(args.out)
    _check_device(args.device)
    if args.resume and not Path(args.resume).is_file():
        raise ConfigError(f"argument --resume: no such checkpoint: {args.resume}")
    distributed = init_distributed()
    main = rank() == 0
    rec = _train_recipe(args)
    quiet = lambda line: None  # noqa: E731
    try:
        result = run_recipe(args.model, root, args.out, rec=rec, seed=args.seed, device=args.device, amp=args.amp,
                            num_workers=args.workers, resume=args.resume, overwrite=args.overwrite,
                            pretrained=args.pretrained, accum_steps=args.accum_steps, views=args.views,
                            cache=args.cache, frame_order=not args.no_frame_order,
                            on_progress=progress_printer(args.model) if main else None,
                            log=print if main else quiet, meta={"command": "vidlab " + " ".join(args.argv)})
    except CheckpointError as e:
        raise CheckpointError(f"argument --resume: {e}") from None
    if distributed:
        torch.distributed.destroy_process_group()
    if not main:
        return 0
    m, out = result.metrics, Path(args.out)
    written = ", ".join(str(out / n) for n in ("last.pt", "best.pt", "metrics.csv") if (out / n).exists())
    print(f"{args.model}: {m['params'] / 1e6:.2f} M params; best epoch {m['best_epoch']}: val top-1 "
          f"{m['top1']:.1f}% ({m['num_clips']} clips); wrote {written}")
    fo = m["frame_order"]
    if fo:
        print(f"frame-order test on the time-reversed pairs ({fo['n']} val clips): top-1 ordered "
              f"{fo['ordered']:.1f}% vs shuffled {fo['shuffled']:.1f}%; pairwise {fo['ordered_pairwise']:.1f}% vs "
              f"{fo['shuffled_pairwise']:.1f}% (chance 50%)")
    return 0


def _load_for_eval(path: str):
    """Rebuild the model a `vidlab train` checkpoint was written from, with its weights."""
    from .models import create_model, list_models
    from .models.official import check_and_load, load_checkpoint, strip_prefix
    ckpt = load_checkpoint(path)
    name = ckpt.get("model_name") if isinstance(ckpt, dict) else None
    model_args = (ckpt.get("meta") or {}).get("model_args") if isinstance(ckpt, dict) else None
    if not name or not model_args or name not in list_models():
        raise ConfigError(f"argument --checkpoint: {path} was not written by `vidlab train` (it needs "
                          f"'model_name' of a registered model and 'meta.model_args'; got model {name!r})")
    model = create_model(name, **model_args)
    check_and_load(model, strip_prefix(ckpt["model"]), strict=True, source=str(path))
    return model, ckpt


def cmd_eval(args) -> int:
    from .models import model_info
    from .run import eval_dataset, input_problem, reversed_pairs
    from .train import Trainer, TrainConfig, frame_order_test

    if not Path(args.checkpoint).is_file():
        raise ConfigError(f"argument --checkpoint: no such file: {args.checkpoint}")
    root = _check_dir(args.data, "--data")
    _check_device(args.device)
    try:
        model, ckpt = _load_for_eval(args.checkpoint)
    except CheckpointError as e:
        raise CheckpointError(f"argument --checkpoint: {e}") from None
    data_meta = (ckpt.get("meta") or {}).get("data", {})
    frames = args.frames or data_meta.get("num_frames") or ckpt["meta"]["model_args"]["num_frames"]
    size = args.size or data_meta.get("img_size") or ckpt["meta"]["model_args"]["img_size"]
    problem = input_problem(model, frames, size)
    if problem:
        trained = ckpt["meta"]["model_args"]
        raise ConfigError(f"argument --frames/--size: {args.checkpoint} holds {ckpt['model_name']} trained on "
                          f"{trained['num_frames']}x{trained['img_size']}x{trained['img_size']} clips, which cannot "
                          f"take {frames}x{size}x{size} ({problem}); leave out --frames and --size to evaluate at "
                          "the trained input")
    info = model_info(ckpt["model_name"])
    ds = eval_dataset(root, args.split, frames, size, mean=info["mean"], std=info["std"], cache=args.cache,
                      seed=args.seed)
    if ckpt.get("classes") and list(ds.classes) != list(ckpt["classes"]):
        raise DatasetError(f"argument --data: the classes of {root} ({len(ds.classes)}) differ from the ones the "
                           f"checkpoint was trained on ({len(ckpt['classes'])})")
    cfg = TrainConfig(epochs=1, batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                      views=args.views, seed=args.seed)
    trainer = Trainer(model, None, None, cfg)
    r = trainer.evaluate(ds, views=args.views)
    print(f"{ckpt['model_name']} (epoch {ckpt.get('epoch', '?')}) on {root}/{args.split}: {r['num_clips']} clips, "
          f"{frames}x{size}x{size}, views {r['views']}")
    if r["num_left_out"]:
        print(f"{r['num_left_out']} unreadable clip(s) left out, not scored: "
              + ", ".join(str(e["path"]) for e in r["left_out"][:5]) + (" ..." if r["num_left_out"] > 5 else ""))
    print(f"top-1 {r['top1']:.2f}%  top-5 {r['top5']:.2f}%  loss {r['loss']:.4f}")
    rows = [[c, int(r["confusion"][i].sum()), f"{acc:.1f}"] for i, (c, acc) in enumerate(r["per_class"].items())]
    print("\n" + _table(rows, ["class", "clips", "top-1 %"], "lrr"))
    if len(r["classes"]) <= 20:
        conf = r["confusion"]
        print("\nconfusion (rows: true, columns: predicted)")
        print(_table([[c] + conf[i].tolist() for i, c in enumerate(r["classes"])],
                     ["true \\ pred"] + [str(i) for i in range(len(r["classes"]))], "l" + "r" * len(r["classes"])))
    report = {k: r[k] for k in ("top1", "top5", "loss", "num_clips", "views", "per_class", "classes")}
    report["confusion"] = r["confusion"].tolist()
    pairs = reversed_pairs(root)
    if pairs and not args.no_frame_order:
        fo = frame_order_test(model, ds, pairs, device=trainer.device, batch_size=args.batch_size, seed=args.seed,
                              num_workers=args.workers)
        print(f"\nframe-order test ({fo['n']} clips of the time-reversed pairs): top-1 ordered {fo['ordered']:.1f}%"
              f" vs shuffled {fo['shuffled']:.1f}%; pairwise {fo['ordered_pairwise']:.1f}% vs "
              f"{fo['shuffled_pairwise']:.1f}% (chance 50%); reversed clip -> partner class "
              f"{fo['reversed_to_partner']:.1f}%")
        report["frame_order"] = fo
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
        print(f"\nwrote {args.json}")
    return 0


# --------------------------------------------------------------------------------------------------------------
# vidlab zoo
# --------------------------------------------------------------------------------------------------------------

def add_zoo_parser(sub) -> None:
    p = sub.add_parser("zoo", help="train every *_nano model with its recipe into data/checkpoints (skips the "
                                   "ones already trained for this data)")
    p.add_argument("--data", default=os.environ.get("VIDLAB_DATA", "data/synthetic"),
                   help="dataset root (default data/synthetic, generated when missing)")
    p.add_argument("--models", nargs="+", help="model names (default: every *_nano)")
    p.add_argument("--ckpt", default=None, help="zoo folder (default $VIDLAB_CKPT or data/checkpoints)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None,
                   help="models trained at once (default on a CPU: one per core up to 4 cores, then one per two "
                        "cores; 1 on a GPU)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per model (default: cores // jobs)")
    p.add_argument("--status", action="store_true",
                   help="only say which models are ready, damaged, partial, stale, missing")
    p.add_argument("--allow-large", action="store_true",
                   help="also train models other than the *_nano teaching sizes (paper sizes take hours on a CPU)")
    p.set_defaults(func=cmd_zoo)


def _check_teaching_sizes(names: list[str]) -> None:
    import torch
    from .models import create_model, model_info
    """The zoo trains the `_nano` teaching sizes; a paper-size model (tens of millions of parameters, hours and GBs
    of checkpoints on a CPU) only with --allow-large."""
    large = [n for n in names if not model_info(n)["teaching"]]
    if large:
        def millions(n):
            with torch.device("meta"):                       # counted without allocating the weights
                return sum(p.numel() for p in create_model(n).parameters()) / 1e6
        raise ConfigError("argument --models: " + ", ".join(f"{n} ({millions(n):.1f} M parameters)" for n in large)
                          + " is not a *_nano teaching size: on a CPU it trains for hours and writes GBs of "
                          "checkpoints; pass --allow-large to train it anyway")


def cmd_zoo(args) -> int:
    from .models import list_models
    from .zoo import (ZooTrainingError, _ckpt_root, _run_dir, damaged_files, train_zoo, zoo_status)
    known = list_models()
    for n in args.models or []:
        if n not in known:
            raise ConfigError(f"argument --models: unknown model {n!r} (see `vidlab models`)")
    if not args.allow_large:
        _check_teaching_sizes(args.models or [])
    if args.seed < 0:
        raise ConfigError(f"argument --seed: expected an integer >= 0, got {args.seed}")
    _check_out(str(_ckpt_root(args.ckpt)), "--ckpt")
    root = Path(args.data)
    if not (root / "classes.txt").is_file():
        if args.status:      # a status query changes nothing on disk: it does not generate the default set
            names = args.models or [n for n in known if n.endswith("_nano")]
            print(f"no dataset at {root} yet (`vidlab zoo` generates the default synthetic set there first)")
            for name in names:
                print(f"{name:28s} missing")
            return 0
        if Path(args.data) == Path(os.environ.get("VIDLAB_DATA", "data/synthetic")) and not root.exists():
            from .data import make_synthetic
            print(f"no dataset at {root}: generating the default synthetic set ...")
            make_synthetic(root, progress=True)
        else:
            raise ConfigError(f"argument --data: {root} holds no dataset (no classes.txt)")
    if args.status:
        for name, st in zoo_status(root, ckpt_root=args.ckpt, models=args.models, seed=args.seed).items():
            damaged = damaged_files(_run_dir(_ckpt_root(args.ckpt), name, {}, args.seed)) if st == "damaged" else []
            print(f"{name:28s} {st}" + (f" ({', '.join(damaged)} cannot be read; `vidlab zoo` keeps it aside and "
                                        "trains the run again)" if damaged else ""))
        return 0
    for flag in ("jobs", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ConfigError(f"argument --{flag}: must be >= 1, got {getattr(args, flag)}")
    try:
        train_zoo(root, models=args.models, ckpt_root=args.ckpt, device=args.device, seed=args.seed,
                  progress=sys.stderr.isatty(), jobs=args.jobs, threads=args.threads)
    except ZooTrainingError as e:
        print(e, file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------------------------------

def _decoder_status() -> str:
    """Which video decoder `VideoReader(backend="auto")` uses here: decord2 where it is installed, else PyAV."""
    from importlib.metadata import PackageNotFoundError, version
    from .data.io import available_backends

    def dist(name: str) -> str:
        try:
            return f"{name} {version(name)}"
        except PackageNotFoundError:
            return name
    found = available_backends()
    label = {"decord": dist("decord2"), "pyav": "PyAV " + dist("av").removeprefix("av").strip()}
    if not found:
        return "video decoder: none installed (pip install av)"
    text = f"video decoder: {found[0]} ({label[found[0]]})"
    if len(found) > 1:
        text += f", falls back to {found[1]} ({label[found[1]]}) for files decord cannot read"
    return text


class _VersionAction(argparse.Action):
    """`vidlab --version`: the version and the video decoder in use (the decoder is looked up only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__
        print(f"vidlab {__version__}; {_decoder_status()}")          # stdout, like argparse's own version action
        parser.exit(0)


def cmd_info(args) -> int:
    """Versions, video decoder and devices: what to paste into a bug report."""
    import platform

    import torch

    from . import __version__
    print(f"vidlab {__version__} ({Path(__file__).resolve().parent})")
    print(f"python {platform.python_version()} on {platform.system()} {platform.machine()}")
    print(f"torch {torch.__version__}")
    print(_decoder_status())
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    print(f"devices: {', '.join(devices)}")
    return 0


def _data_command_requested(argv: list[str]) -> bool:
    return next((a for a in argv if not a.startswith("-")), None) == "data"


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model on a dataset folder (Kinetics layout)")
    p.add_argument("--model", required=True, help="registered model name (see `vidlab models`)")
    p.add_argument("--data", required=True, help="dataset root with train/ and val/ (e.g. data/synthetic)")
    p.add_argument("--epochs", type=_positive_int, help="epochs (default: the model's registered recipe, printed "
                                                        "when the run starts)")
    p.add_argument("--out", required=True, help="run folder: last.pt, best.pt, metrics.csv, metrics.json")
    p.add_argument("--resume", help="continue from a checkpoint, e.g. runs/X/last.pt")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (without it, "
                                                            "an --out holding a run is refused)")
    p.add_argument("--pretrained", help="initial weights (vidlab or official checkpoint), loaded non-strictly")
    p.add_argument("--seed", type=_non_negative_int, default=0)
    # Training settings: each defaults to the model's registered recipe; a flag overrides that one field.
    p.add_argument("--batch-size", type=_positive_int, help="clips per step per process (recipe)")
    p.add_argument("--lr", type=_positive_float, help="peak learning rate (recipe)")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], help="optimizer (recipe)")
    p.add_argument("--adam-eps", type=_positive_float, help="AdamW's epsilon (recipe)")
    p.add_argument("--weight-decay", type=_non_negative_float, help="AdamW/SGD weight decay (recipe)")
    p.add_argument("--warmup-epochs", type=_non_negative_float, help="linear warm-up epochs (recipe)")
    p.add_argument("--label-smoothing", type=_non_negative_float, help="(recipe)")
    p.add_argument("--clip-grad", type=_non_negative_float, help="max gradient norm; 0 disables (recipe)")
    p.add_argument("--stream-clips", type=_non_negative_int,
                   help="on a vidlab synthetic set: fresh clips rendered per epoch, 0 = the stored train split "
                        "(recipe)")
    p.add_argument("--pretrain", type=_json_object, metavar="JSON",
                   help="the frame pretraining (recipe), e.g. '{\"steps\": 500}' (fields: "
                        "vidlab.pretrain.PRETRAIN_DEFAULTS); '{}' trains without it")
    p.add_argument("--accum-steps", type=_positive_int, default=1, help="gradient accumulation steps")
    p.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default="auto")
    p.add_argument("--frames", type=_positive_int, help="frames per clip (recipe)")
    p.add_argument("--size", type=_positive_int, help="crop size in pixels (recipe)")
    p.add_argument("--workers", type=_non_negative_int, default=None,
                   help="DataLoader worker processes (default: one for a rendered stream on a CPU, none for stored "
                        "clips; on a GPU the run's cores)")
    p.add_argument("--cache", action="store_true",
                   help="read the stored clips through a uint8 decode cache (a rendered stream needs none)")
    p.add_argument("--views", type=_views, default="1x1", help="validation views per epoch, e.g. 1x1")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-frame-order", action="store_true", help="skip the frame-order test at the end")
    p.set_defaults(func=cmd_train)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="vidlab", description="Efficient video recognition, built block by block.",
                     epilog="Run `vidlab COMMAND --help` for the options of a command.")
    parser.add_argument("--version", action=_VersionAction, help="print the version and the video decoder in use")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="versions, the video decoder in use, devices")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("models", help="list the registered models with their paper facts")
    p.add_argument("pattern", nargs="?", default="*", help="substring ('focalnet') or glob ('video_focalnet_*') of model names")
    p.add_argument("--arch", help="only this architecture, e.g. video_focalnet")
    p.add_argument("--only", choices=["paper", "teaching"], help="only the paper variants or only the _nano sizes")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--wide", action="store_true", help="do not shorten long cells in the table")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("profile", help="params, MACs/FLOPs and latency of a model")
    p.add_argument("--model", required=True, help="registered model name (see `vidlab models`)")
    p.add_argument("--frames", type=_positive_int,
                   help="frames per clip (default: the model's own; a _nano's recipe's)")
    p.add_argument("--size", type=_positive_int,
                   help="frame height = width in pixels (default: the model's own; a _nano's recipe's)")
    p.add_argument("--num-classes", type=_positive_int, default=400, help="classifier size (default 400)")
    p.add_argument("--batch-size", type=_positive_int, default=1)
    p.add_argument("--iters", type=_non_negative_int, default=10, help="timed forward passes; 0 skips latency")
    p.add_argument("--warmup", type=_non_negative_int, default=3, help="untimed forward passes first")
    p.add_argument("--depth", type=_non_negative_int, default=2, help="module depth of the printed table")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_profile)

    _add_train_parser(sub)

    add_zoo_parser(sub)

    p = sub.add_parser("eval", help="evaluate a `vidlab train` checkpoint, with multi-view testing")
    p.add_argument("--checkpoint", required=True, help="e.g. runs/X/best.pt")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--split", default="val")
    p.add_argument("--views", type=_views, default="1x1", help="<clips>x<crops> averaged per video, e.g. 2x3")
    p.add_argument("--frames", type=_positive_int, help="default: as trained")
    p.add_argument("--size", type=_positive_int, help="default: as trained")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--workers", type=_non_negative_int, default=0)
    p.add_argument("--cache", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="seed of the frame-order test's permutations")
    p.add_argument("--no-frame-order", action="store_true")
    p.add_argument("--json", help="also write the report (metrics, per-class, confusion) to this file")
    p.set_defaults(func=cmd_eval)

    # `vidlab data ...` lives in vidlab.data.cli; imported only when asked for (it pulls in the video backends).
    if _data_command_requested(sys.argv[1:] if argv is None else argv):
        try:
            from .data.cli import add_data_commands
        except ImportError as e:
            reason = str(e)     # `e` is unbound once the except block ends
            p = sub.add_parser("data", help="dataset tools (synthetic data, Kinetics subsets, cache)")
            p.set_defaults(func=lambda a: _fail(f"vidlab data is unavailable: {reason}"))
        else:
            add_data_commands(sub)
    else:
        sub.add_parser("data", help="dataset tools: synthetic data, mini-Kinetics subsets, decode cache "
                                    "(`vidlab data --help`)", add_help=False)
    return parser


def _fail(message: str) -> int:
    raise VidlabError(message)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if not argv else 2
    args.argv = argv
    from .train import NonFiniteLossError
    try:
        return int(args.func(args) or 0)
    except (NonFiniteLossError, CheckpointSaveError, OutOfSpaceError) as e:   # not a user mistake: exit 1
        print(f"vidlab {args.command}: {e}", file=sys.stderr)
        return 1
    except VidlabError as e:
        print(f"vidlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = f"; continue with --resume {Path(args.out) / 'last.pt'}" if args.command == "train" else ""
        print(f"vidlab {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
