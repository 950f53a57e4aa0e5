"""What every benchmark prints beside its numbers: the machine it measured on."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (e.g. 'Intel(R) Xeon(R) Processor'), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> str:
    """'<CPU> (2 cores, 1 torch threads), torch 2.13.0[, <GPU>]'."""
    desc = f"{cpu_name()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads), torch {torch.__version__}"
    if torch.cuda.is_available():
        desc += f", {torch.cuda.get_device_name()}"
    return desc


def train_nano(model: str, data: str | None = None, epochs: int | None = None) -> int:
    """Run benchmarks/train_nano.py for `model` (the shared accuracy row, with its table header); its exit code."""
    cmd = [sys.executable, str(Path(__file__).with_name("train_nano.py")), "--model", model, "--header", "--no-progress"]
    cmd += ["--data", str(data)] if data else []
    cmd += ["--epochs", str(epochs)] if epochs else []
    print("\n$ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd)
