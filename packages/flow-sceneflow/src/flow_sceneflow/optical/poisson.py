"""The weighted (screened) Poisson problem ∇·(w ∇φ) − (w/ℓ²) φ = −s on an image grid.

With ℓ = ∞ this is the weighted Poisson equation; a finite screening length ℓ (pixels) adds the
term −(w/ℓ²)φ, which makes φ the response to s of a kernel decaying over about ℓ pixels
(a screened, or Yukawa, potential) instead of one that reaches across the whole image.

Discretisation (cell-centred finite volumes, unit pixel spacing): the flux through the face
between neighbouring pixels p and q is w_pq (φ_q − φ_p) with w_pq = (w_p + w_q)/2, and no flux
leaves the image. Without screening the operator A = −∇·(w∇·) is symmetric positive
semi-definite with the constants as its null space, so the problem is solvable only when s sums
to zero; the mean of s is therefore removed first (and reported), and φ is returned with zero
mean. With screening (ℓ finite) the operator is positive definite and s is used as given.

Solver: conjugate gradients (:func:`scipy.sparse.linalg.cg`) preconditioned by the exact
inverse of the constant-coefficient operator w̄(−Δ + 1/ℓ²) (w̄ the mean weight), which the
type-II discrete cosine transform diagonalises for these boundaries (eigenvalues
w̄[(2 − 2cos(πk/H)) + (2 − 2cos(πl/W)) + 1/ℓ²]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flow_sceneflow.optical.validation import OpticalInputError

__all__ = ["PoissonResult", "divergence_of_weighted_gradient", "solve_weighted_poisson"]


@dataclass(frozen=True)
class PoissonResult:
    """φ, CG iterations, final relative residual, and the mean removed from s (0 if screened)."""

    phi: NDArray[np.float64]
    iterations: int
    relative_residual: float
    removed_mean: float


def divergence_of_weighted_gradient(
    phi: NDArray[np.float64], weight: NDArray[np.float64]
) -> NDArray[np.float64]:
    """∇·(w∇φ) with the finite-volume stencil above (zero flux through the image border)."""
    out = np.zeros_like(phi)
    flux_x = 0.5 * (weight[:, 1:] + weight[:, :-1]) * (phi[:, 1:] - phi[:, :-1])
    out[:, :-1] += flux_x
    out[:, 1:] -= flux_x
    flux_y = 0.5 * (weight[1:, :] + weight[:-1, :]) * (phi[1:, :] - phi[:-1, :])
    out[:-1, :] += flux_y
    out[1:, :] -= flux_y
    return out


def solve_weighted_poisson(
    source: NDArray[np.float64],
    weight: NDArray[np.float64],
    screening_length: float | None = None,
    rtol: float = 1e-6,
    max_iter: int = 500,
) -> PoissonResult:
    """Solve ∇·(w∇φ) − (w/ℓ²)φ = −s for φ (ℓ = ``screening_length``; ``None`` for ℓ = ∞).

    ``weight`` must be positive and finite everywhere.
    """
    from scipy.fft import dctn, idctn
    from scipy.sparse.linalg import LinearOperator, cg

    if source.shape != weight.shape or source.ndim != 2:
        raise OpticalInputError(
            f"source {source.shape} and weight {weight.shape} must be 2-D arrays of one shape"
        )
    if not (np.all(np.isfinite(weight)) and weight.min() > 0):
        raise OpticalInputError("the Poisson weight must be finite and > 0 everywhere")
    if not np.all(np.isfinite(source)):
        raise OpticalInputError("the Poisson source has non-finite values")
    if screening_length is not None and not screening_length > 0:
        raise OpticalInputError(f"screening_length must be > 0 or None, got {screening_length}")
    mass = 0.0 if screening_length is None else 1.0 / screening_length**2
    height, width = source.shape
    removed = float(source.mean()) if mass == 0.0 else 0.0
    rhs = (source - removed).ravel()
    scale = float(weight.mean())
    ky = 2.0 - 2.0 * np.cos(np.pi * np.arange(height) / height)
    kx = 2.0 - 2.0 * np.cos(np.pi * np.arange(width) / width)
    eigen = scale * (ky[:, None] + kx[None, :] + mass)
    if mass == 0.0:
        eigen[0, 0] = np.inf  # the constant mode: the preconditioner maps it to zero

    def apply(x: NDArray[np.float64]) -> NDArray[np.float64]:
        field = x.reshape(height, width)
        out = mass * weight * field - divergence_of_weighted_gradient(field, weight)
        return np.asarray(out).ravel()

    def precondition(x: NDArray[np.float64]) -> NDArray[np.float64]:
        spectrum = dctn(x.reshape(height, width), type=2, norm="ortho") / eigen
        return np.asarray(idctn(spectrum, type=2, norm="ortho")).ravel()

    size = height * width
    operator = LinearOperator((size, size), matvec=apply, dtype=np.float64)
    preconditioner = LinearOperator((size, size), matvec=precondition, dtype=np.float64)
    count = [0]

    def step(_: NDArray[np.float64]) -> None:
        count[0] += 1

    norm = float(np.linalg.norm(rhs))
    if norm == 0.0:
        return PoissonResult(np.zeros_like(source), 0, 0.0, removed)
    solution, _ = cg(
        operator, rhs, M=preconditioner, rtol=rtol, atol=0.0, maxiter=max_iter, callback=step
    )
    phi = solution.reshape(height, width)
    if mass == 0.0:
        phi = phi - phi.mean()
    residual = float(np.linalg.norm(apply(phi.ravel()) - rhs)) / norm
    return PoissonResult(phi, count[0], residual, removed)
