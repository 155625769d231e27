"""Shared pieces: the machine description, models, interleaved timing, markdown tables."""

from __future__ import annotations

import importlib.metadata
import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "Section",
    "cnn",
    "load_average",
    "machine_rows",
    "table",
    "time_interleaved",
    "transformer",
]


@dataclass
class Section:
    """A section's markdown and its verdicts (claim, threshold, measured, reproduced)."""

    title: str
    markdown: str
    verdicts: list[tuple[str, str, str, bool]] = field(default_factory=list)


def load_average() -> float:
    return os.getloadavg()[0]


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_rows() -> list[tuple[str, str]]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        ("CPU", _cpu()),
        ("logical cores visible", str(os.cpu_count())),
        ("memory", f"{memory:.0f} GiB"),
        ("torch threads (torch.set_num_threads)", str(torch.get_num_threads())),
        ("python", platform.python_version()),
        ("platform", platform.platform()),
        ("accelerator", "none used (CPU only)"),
        *((name, _version(name)) for name in ("flow-norms", "flow-core", "torch", "adamp")),
    ]


def table(header: list[str], rows: list[list[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def cnn(channels: tuple[int, ...] = (3, 32, 64, 128, 128, 256)) -> nn.Module:
    """A small ResNet-like CNN: every convolution is followed by BatchNorm (scale-invariant)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
        layers += [nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)]
        layers += [nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels[-1], 10)]
    return nn.Sequential(*layers)


def transformer(dim: int = 256, depth: int = 6) -> nn.Module:
    """A pre-LN transformer encoder stack with an embedding and a head."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(dim, 4, 4 * dim, batch_first=True, norm_first=True)
    return nn.Sequential(
        nn.Embedding(1000, dim), nn.TransformerEncoder(layer, depth), nn.Linear(dim, 1000)
    )


def time_interleaved(
    candidates: dict[str, Callable[[], object]], repeats: int, inner: int
) -> dict[str, float]:
    """Median seconds per call of each candidate, over ``repeats`` rounds that alternate the
    candidates (so a change of machine load hits all of them), after one warm-up round."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for round_ in range(repeats + 1):
        for name, function in candidates.items():
            started = time.perf_counter()
            for _ in range(inner):
                function()
            if round_:
                samples[name].append((time.perf_counter() - started) / inner)
    return {name: statistics.median(values) for name, values in samples.items()}
