"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, FID).

For features a_i ∈ R^D with mean μ_a and covariance Σ_a, and likewise b,

    FD = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}),

the squared 2-Wasserstein distance between N(μ_a, Σ_a) and N(μ_b, Σ_b) (Dowson & Landau 1982).
Covariances are the unbiased sample covariances, computed in float64.

The trace of the matrix square root: Σ_a Σ_b is similar to the symmetric positive
semi-definite M = Σ_a^{1/2} Σ_b Σ_a^{1/2}, so Tr (Σ_a Σ_b)^{1/2} = Σ_k √λ_k(M). We compute
Σ_a^{1/2} and λ(M) with symmetric eigendecompositions (``scipy.linalg.eigh``), which are real
by construction, instead of ``scipy.linalg.sqrtm`` of the non-symmetric product, whose
round-off produces the spurious imaginary parts that FID code has to discard. Eigenvalues
below D·ε·λ_max (ε the float64 machine epsilon) are indistinguishable from zero and are set
to zero — their square roots would otherwise add up to a visible bias when a covariance is
singular (fewer points than dimensions); eigenvalues below −√ε·λ_max mean a broken
covariance and raise an error. A result in [−1e-9 × scale, 0) from cancellation is
reported as 0.

FD depends on the sample size (it is biased upward for small n), so compare values computed
with equal set sizes.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from torch import Tensor

from flow_core.errors import FlowError
from flow_images.metrics._checks import check_features

__all__ = ["frechet_distance"]

_EPS = float(np.finfo(np.float64).eps)


def _psd_eigenvalues(matrix: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a symmetric PSD matrix, round-off-level eigenvalues set to 0."""
    values, vectors = linalg.eigh(matrix)
    scale = float(np.abs(values).max())
    if values.min() < -np.sqrt(_EPS) * scale:
        raise FlowError(
            f"frechet_distance: {what} is not positive semi-definite ({values.min():.3g})"
        )
    values[values < matrix.shape[0] * _EPS * scale] = 0.0
    return values, vectors


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """FD between feature matrices ``a`` (n, D) and ``b`` (m, D), with n, m ≥ 2."""
    check_features("frechet_distance", a, b, min_size=2)
    x = a.detach().cpu().double().numpy()
    y = b.detach().cpu().double().numpy()
    mean_x, mean_y = x.mean(0), y.mean(0)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    values_x, vectors_x = _psd_eigenvalues(cov_x, "the first covariance")
    root_x = (vectors_x * np.sqrt(values_x)) @ vectors_x.T
    middle = root_x @ cov_y @ root_x
    values_m, _ = _psd_eigenvalues((middle + middle.T) / 2, "Σ_a^½ Σ_b Σ_a^½")
    trace_root = float(np.sqrt(values_m).sum())
    distance = float(
        np.sum((mean_x - mean_y) ** 2) + np.trace(cov_x) + np.trace(cov_y) - 2.0 * trace_root
    )
    scale = float(np.sum(mean_x**2) + np.sum(mean_y**2) + np.trace(cov_x) + np.trace(cov_y))
    if distance < -1e-9 * max(scale, 1.0):
        raise FlowError(f"frechet_distance: numerically invalid result {distance:.3g}")
    return max(distance, 0.0)
