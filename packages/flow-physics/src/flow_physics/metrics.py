"""Posterior comparison metrics: the Hellinger distance between 1-D marginals.

For densities ``p`` and ``q``, ``H^2 = 1 - int sqrt(p q)``, in ``[0, 1]``; Lai & Li 2025
(arXiv 2504.04211) compare flow and MCMC marginals with it. From samples it is estimated on
a common histogram: ``H^2 = 1 - sum_b sqrt(p_b q_b)`` with bin probabilities ``p_b, q_b``.
Two finite samples of one distribution give ``H > 0`` (about ``sqrt(bins / (8 n))``), which
:func:`hellinger_noise_floor` reports next to the measured values.
"""

from __future__ import annotations

import math

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["hellinger_1d", "hellinger_noise_floor"]


def hellinger_1d(a: np.ndarray, b: np.ndarray, bins: int = 30) -> float:
    """Hellinger distance between the distributions of two 1-D samples (histogram over the
    range both cover)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or b.size < 2 or bins < 2:
        raise ConfigError(
            f"hellinger_1d: {a.size} and {b.size} samples, {bins} bins; accepted: >= 2 each"
        )
    low, high = min(a.min(), b.min()), max(a.max(), b.max())
    if high <= low:
        return 0.0
    edges = np.linspace(low, high, bins + 1)
    p = np.histogram(a, edges)[0] / a.size
    q = np.histogram(b, edges)[0] / b.size
    return math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q)))))


def hellinger_noise_floor(n_a: int, n_b: int, bins: int = 30) -> float:
    """The Hellinger distance expected between two samples of the same distribution, from
    histogram noise alone: ``sqrt((bins - 1) (1/n_a + 1/n_b) / 8)`` to first order."""
    return math.sqrt((bins - 1) * (1.0 / n_a + 1.0 / n_b) / 8.0)
