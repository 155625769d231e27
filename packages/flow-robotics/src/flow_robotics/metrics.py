"""Metrics of policies: success with a confidence interval, latency, rank, mode coverage."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["effective_rank", "latency_ms", "mode_shares", "wilson_interval"]


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (Wilson 1927) for a success rate, 95 % by default."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def effective_rank(embeddings: Tensor) -> float:
    """The effective rank exp(H(p)) of a batch of embeddings (Roy & Vetterli 2007).

    p are the singular values of the centred (N, D) matrix normalised to sum to 1 and H their
    Shannon entropy: 1 for embeddings on a line, D for an isotropic cloud; a collapsed
    representation has a low effective rank.
    """
    flat = embeddings.detach().reshape(embeddings.shape[0], -1).double()
    centred = flat - flat.mean(dim=0, keepdim=True)
    singular = torch.linalg.svdvals(centred)
    total = singular.sum()
    if total <= 0:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median and 95th percentile of per-call times, in milliseconds."""
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95))}


def mode_shares(modes: Sequence[int]) -> dict[str, float]:
    """Shares of episodes that went left (−1), straight (0) and right (+1), and how many of
    the two detour modes hold at least 10 % of the episodes (``covered``: 0, 1 or 2)."""
    array = np.asarray(list(modes), dtype=np.int64)
    n = max(array.size, 1)
    left, straight, right = ((array == v).sum() / n for v in (-1, 0, 1))
    covered = int(left >= 0.1) + int(right >= 0.1)
    return {
        "left": float(left),
        "straight": float(straight),
        "right": float(right),
        "covered": float(covered),
    }
