"""The Fourier basis of PTA red processes (one span and one time origin for the array)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fourier_basis"]


def fourier_basis(toas: np.ndarray, n_freq: int, tspan: float) -> np.ndarray:
    """The ``(n_toa, 2 n_freq)`` basis ``[sin(2 pi f_1 t), cos(2 pi f_1 t), sin(2 pi f_2 t),
    ...]`` with ``f_k = k / tspan``."""
    freqs = np.arange(1, n_freq + 1) / tspan
    phase = 2.0 * math.pi * toas[:, None] * freqs[None, :]
    basis = np.empty((len(toas), 2 * n_freq))
    basis[:, 0::2] = np.sin(phase)
    basis[:, 1::2] = np.cos(phase)
    return basis
