"""The machine description and the anchor libraries the benchmark compares against."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import subprocess
import sys

import torch

__all__ = ["ANCHORS", "ensure_anchors", "load_average", "machine_rows", "versions"]

# Installed here with ``pip install --no-deps``: a plain install of torchcfm pulls torchdyn
# and torchvision, which replace the CPU torch with a multi-GB CUDA build, and a requirements
# file cannot say --no-deps. The modules the benchmark imports need only torch, numpy and POT.
# The other anchors (POT, SciPy, zuko, flow-matching) come from core.requirements.txt.
ANCHORS: dict[str, str] = {"torchcfm": "torchcfm==1.0.7"}


def ensure_anchors() -> list[str]:
    """Install any missing no-deps anchor with pip; return the messages to show."""
    messages = []
    for module, spec in ANCHORS.items():
        try:
            importlib.import_module(module)
            continue
        except ImportError:
            pass
        command = [sys.executable, "-m", "pip", "install", "--no-deps", spec]
        messages.append(
            f"installing the anchor {spec} without its dependencies: {' '.join(command)}"
        )
        print(messages[-1], flush=True)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            messages.append(
                f"could not install {spec} (pip exit {result.returncode}); its comparisons are"
                f" skipped. Install it by hand with: pip install --no-deps {spec}"
            )
            print(messages[-1], flush=True)
        importlib.invalidate_caches()
    return messages


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    names = ["flow-core", "torch", "torchdiffeq", "POT", "scipy", "numpy"]
    names += ["torchcfm", "flow-matching", "zuko"]
    return {name: _version(name) for name in names}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal"):
                    return f"{int(line.split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def machine_rows(threads: int) -> list[dict[str, str]]:
    """Rows describing the machine, for the page's header table."""
    rows = [
        {"item": "CPU", "value": _cpu_model()},
        {"item": "logical cores visible", "value": str(os.cpu_count())},
        {"item": "memory", "value": _memory_gib()},
        {"item": "torch threads (torch.set_num_threads)", "value": str(threads)},
        {"item": "python", "value": platform.python_version()},
        {"item": "platform", "value": platform.platform()},
        {"item": "accelerator", "value": "none used (CPU only)"},
    ]
    found = versions() | {"torch": torch.__version__}  # torch's own build string (+cpu)
    rows += [{"item": name, "value": version} for name, version in found.items()]
    return rows


def load_average() -> str:
    """The 1-minute load average (other processes share the cores and slow the timings)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"
