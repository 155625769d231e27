"""Shared pieces of the core benchmark: results, tables, timing, training, targets, metrics."""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flow_core.datasets.mixture import GaussianMixture
from flow_core.metrics import mmd_rbf, sliced_wasserstein

__all__ = [
    "NOT_REPRODUCED",
    "REPRODUCED",
    "Claim",
    "Section",
    "Settings",
    "Target",
    "endpoint_rms",
    "fit",
    "fmt",
    "interleaved_timing",
    "mode_tv",
    "paired_speed",
    "sample_metrics",
    "table",
    "targets",
]

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"


@dataclass
class Settings:
    """Sizes of one benchmark run. ``quick`` shrinks everything for a smoke test."""

    quick: bool = False
    seed: int = 0
    threads: int = 1
    figures: Path | None = None
    steps: int = 2000
    hidden: int = 128
    depth: int = 3
    batch: int = 256
    eval_n: int = 2000
    repeats: int = 15

    @classmethod
    def make(cls, quick: bool, seed: int, threads: int, figures: Path | None) -> Settings:
        if quick:
            return cls(quick, seed, threads, figures, steps=150, eval_n=400, repeats=3)
        return cls(quick, seed, threads, figures)


@dataclass
class Claim:
    """One claim of the issue with its verdict and the numbers behind it."""

    claim: str
    verdict: str
    why: str


@dataclass
class Section:
    """One section of the page: a title, a markdown body and the claims it decides."""

    title: str
    body: list[str] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, text: str) -> None:
        self.body.append(text)

    def decide(self, claim: str, ok: bool, why: str) -> None:
        verdict = REPRODUCED if ok else NOT_REPRODUCED
        self.claims.append(Claim(claim, verdict, why))
        self.body.append(f"**Verdict: {verdict}.** {why}")

    def markdown(self) -> str:
        return "\n\n".join(
            [f"## {self.title}", *self.body, f"*Section time: {self.seconds:.0f} s.*"]
        )


def fmt(value: Any) -> str:
    """A table cell: floats with 3-4 significant digits, everything else as text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if value == 0.0:
            return "0"
        magnitude = abs(value)
        if magnitude >= 1000 or magnitude < 1e-3:
            return f"{value:.3g}"
        if magnitude >= 100:
            return f"{value:.1f}"
        if magnitude >= 1:
            return f"{value:.3f}"
        return f"{value:.4f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A markdown table of ``rows`` (dicts); columns default to the first row's keys."""
    if not rows:
        return "*(no rows)*"
    cols = list(columns or rows[0].keys())

    def cell(text: str) -> str:  # a literal "|" would end the cell
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join(cell(fmt(row.get(c, ""))) for c in cols) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- timing


def interleaved_timing(
    fns: Mapping[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median wall time (seconds) of each callable, measured in alternating repeats.

    Every callable runs ``warmup`` times first; then each repeat runs all of them once, in an
    order rotated by one each repeat, so slow drifts of the machine hit all equally.
    """
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_speed(
    ours: Callable[[], object], theirs: Callable[[], object], repeats: int, warmup: int = 3
) -> tuple[float, float, float]:
    """Median and 95% confidence interval of the paired speed ratio t_theirs / t_ours.

    Each repeat times both callables back to back, alternating which goes first; the ratio of
    each pair is one observation. The interval is the distribution-free one for a median: the
    order statistics at n/2 ∓ 1.96·√n/2 of the sorted ratios (binomial, normal approximation).
    """
    for _ in range(warmup):
        ours()
        theirs()
    ratios = []
    for r in range(repeats):
        times = {}
        for name in ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours"):
            fn = ours if name == "ours" else theirs
            start = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - start
        ratios.append(times["theirs"] / times["ours"])
    ratios.sort()
    half = 1.96 * math.sqrt(repeats) / 2
    low = ratios[max(0, math.floor(repeats / 2 - half))]
    high = ratios[min(repeats - 1, math.ceil(repeats / 2 + half) - 1)]
    return statistics.median(ratios), low, high


# ----------------------------------------------------------------------------- targets


@dataclass
class Target:
    """A target distribution with a known density: a Gaussian mixture."""

    name: str
    mixture: GaussianMixture

    @property
    def dim(self) -> int:
        return self.mixture.dim

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.mixture.sample(n, generator)


def targets() -> list[Target]:
    """The 2-D ring of eight Gaussians and a 16-D mixture of eight well-separated Gaussians."""
    return [
        Target("ring-2d", GaussianMixture.ring(k=8, radius=2.0, std=0.2)),
        Target("gmm-16d", GaussianMixture.random(dim=16, k=8, radius=4.0, std=0.5, seed=0)),
    ]


# ----------------------------------------------------------------------------- training


def fit(
    model: nn.Module,
    objective: Callable[[nn.Module, Mapping[str, Tensor]], tuple[Tensor, dict[str, float]]],
    batches: Iterator[dict[str, Tensor]],
    steps: int,
    lr: float = 2e-3,
) -> dict[str, float]:
    """A plain loop: Adam with cosine decay of the learning rate, ``steps`` steps.

    Returns the last step's metrics plus ``seconds`` (wall time of the loop).
    """
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 20)
    metrics: dict[str, float] = {}
    start = time.perf_counter()
    for _ in range(steps):
        loss, metrics = objective(model, next(batches))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    model.eval()
    return {**metrics, "seconds": time.perf_counter() - start}


def data_batches(
    target: Target, batch: int, generator: torch.Generator
) -> Iterator[dict[str, Tensor]]:
    """Endless fresh batches ``{"x1": ...}`` from the target."""
    while True:
        yield {"x1": target.sample(batch, generator)}


def pair_batches(
    pairs: Mapping[str, Tensor], batch: int, generator: torch.Generator
) -> Iterator[dict[str, Tensor]]:
    """Endless random minibatches ``{"x0", "x1"}`` drawn from a fixed set of coupled pairs."""
    n = pairs["x1"].shape[0]
    while True:
        index = torch.randint(n, (batch,), generator=generator)
        yield {"x0": pairs["x0"][index], "x1": pairs["x1"][index]}


def frozen(model: nn.Module) -> nn.Module:
    """A detached evaluation copy of ``model``."""
    clone = copy.deepcopy(model).eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


# ----------------------------------------------------------------------------- metrics


MMD_MAX = 2000
"""MMD² uses at most this many points of each sample: its cost grows with the square."""


def sample_metrics(samples: Tensor, target: Target, reference: Tensor) -> dict[str, float]:
    """Sliced W2 and MMD² to held-out ``reference`` target samples, and the mode TV distance.

    MMD² is computed on the first :data:`MMD_MAX` points of each sample.
    """
    generator = torch.Generator().manual_seed(1234)
    samples = samples.detach().float()
    return {
        "sliced W2": sliced_wasserstein(samples, reference, generator=generator),
        "MMD²": mmd_rbf(samples[:MMD_MAX], reference[:MMD_MAX]),
        "mode TV": mode_tv(samples, target.mixture),
    }


def mode_tv(samples: Tensor, mixture: GaussianMixture) -> float:
    """Total-variation distance between the occupancy of the mixture's components and its weights.

    Each sample is assigned to its most probable component.
    """
    counts = torch.bincount(mixture.assign(samples.float()), minlength=mixture.n_components)
    frequencies = counts.double() / samples.shape[0]
    return 0.5 * float((frequencies - mixture.weights.double()).abs().sum())


def endpoint_rms(a: Tensor, b: Tensor) -> float:
    """Root-mean-square distance between paired endpoints ``a[i]``, ``b[i]``."""
    return float((a - b).flatten(1).pow(2).sum(1).mean().sqrt())
