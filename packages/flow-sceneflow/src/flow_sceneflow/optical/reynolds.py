"""Reynolds flow: a training-free optical flow from the Reynolds transport theorem.

Chen & Wu, "ReynoldsFlow: Exquisite Flow Estimation via Reynolds Transport Theorem",
arXiv 2503.04500 (2025). Treat the image intensity f as a density carried by the motion v.
The Reynolds transport theorem for a region Ω(t) moving with v,

    d/dt ∫_Ω f dx = ∫_Ω (∂_t f + ∇·(f v)) dx,

with the intensity in every moving region conserved, gives the continuity equation

    ∂_t f + v·∇f + f ∇·v = 0,                                                   (1)

brightness constancy (∂_t f + v·∇f = 0) plus a compressibility term f∇·v that lets intensity
change without violating the model (e.g. under a change of lighting). The motion is split
(Helmholtz) as v = v_o + v_r: v_o a conventional flow, v_r = ∇φ an irrotational "Reynolds
flow" that carries what v_o leaves of (1). Substituting gives the elliptic problem

    ∇·(f ∇φ) = −R,   R = ∂_t f + ∇·(f v_o)                                        (2)

solved here with zero flux through the image border (:mod:`~flow_sceneflow.optical.poisson`).
Solved over the whole image, (2) turns any low-frequency residual (a camera's exposure, an
occlusion) into a potential whose gradient grows with the image size: on the 500×741 stereo
pair it reaches 190 px. The default therefore screens it, ∇·(f∇φ) − (f/ℓ²)φ = −R, so that
v_r answers to the residual within about ℓ pixels (``screening_length``, default 8 px, about
the window of the Lucas-Kanade base; ``None`` gives the unscreened (2)).

Discretisation (ours). Frames f⁰, f¹ are one time unit apart; v_o comes from a conventional
estimator (``base``: TV-L1, iterative Lucas-Kanade or Farneback). With f¹_w(x) = f¹(x + v_o(x))
(bilinear), the warped difference f¹_w − f⁰ is the brightness-constancy residual
∂_t f + v_o·∇f, so R = (f¹_w − f⁰) + f̄ ∇·v_o with f̄ = max((f⁰ + f¹_w)/2, ``floor``), ∇·v_o
by central differences, and (2) is solved with weight f̄. The output is v = v_o + ∇φ.

What the paper confirms and what it does not. The abstract and the paper's summary confirm
the starting point (the Reynolds transport theorem), the Helmholtz split into v_o and an
irrotational v_r, and the two encodings (:mod:`~flow_sceneflow.optical.encodings`). We could
not read the paper's method section: the choice of the conventional flow v_o, equation (2) as
the way v_r is obtained (rather than a closed form), the screening, the warping, the
midpoint weight, the floor and the zero-flux boundary are **unconfirmed** choices of this
implementation, which is therefore "ReynoldsFlow-style". The paper evaluates Reynolds flow
only downstream (detection, pose estimation) and reports no end-point error.

Time: frame index n → n+1 is video time; the generative t=0 noise / t=1 data convention of
the project does not apply to this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from flow_core.errors import ConfigError
from flow_sceneflow.baselines import BASELINES, estimate_flow
from flow_sceneflow.optical.poisson import solve_weighted_poisson
from flow_sceneflow.optical.validation import check_pair

__all__ = ["ReynoldsFlowResult", "continuity_residual", "reynolds_flow", "warp_image"]


@dataclass(frozen=True)
class ReynoldsFlowResult:
    """The Reynolds flow v = v_o + v_r and its parts (all (H, W, 2) except the scalars)."""

    flow: NDArray[np.float64]
    conventional: NDArray[np.float64]
    reynolds: NDArray[np.float64]
    residual: NDArray[np.float64]
    poisson_iterations: int
    poisson_relative_residual: float


def warp_image(image: NDArray[np.float64], flow: NDArray[np.float64]) -> NDArray[np.float64]:
    """``image`` sampled at x + flow(x) (bilinear; border values repeated outside)."""
    from scipy.ndimage import map_coordinates

    rows, cols = np.mgrid[: image.shape[0], : image.shape[1]].astype(np.float64)
    coords = np.stack([rows + flow[..., 1], cols + flow[..., 0]])
    return np.asarray(map_coordinates(image, coords, order=1, mode="nearest"))


def continuity_residual(
    image0: NDArray[np.float64],
    image1: NDArray[np.float64],
    conventional: NDArray[np.float64],
    floor: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """R = (f¹_w − f⁰) + f̄ ∇·v_o and the weight f̄ of equation (2) (see the module doc)."""
    warped = warp_image(image1, conventional)
    density = np.maximum(0.5 * (image0 + warped), floor)
    divergence = np.gradient(conventional[..., 0], axis=1) + np.gradient(
        conventional[..., 1], axis=0
    )
    return (warped - image0) + density * divergence, density


def reynolds_flow(
    image0: NDArray[np.float64],
    image1: NDArray[np.float64],
    base: str = "ilk",
    floor: float = 0.05,
    screening_length: float | None = 8.0,
    rtol: float = 1e-6,
    max_iter: int = 500,
    conventional: NDArray[np.float64] | None = None,
) -> ReynoldsFlowResult:
    """Reynolds flow from ``image0`` to ``image1`` (gray, [0, 1], one size).

    ``base`` names the conventional estimator for v_o (``tvl1``, ``ilk`` or ``farneback``);
    pass ``conventional`` to reuse a v_o already computed. ``floor`` (> 0) keeps the weight of
    equation (2) positive in black regions; ``screening_length`` is ℓ in pixels (``None``: no
    screening); ``rtol`` and ``max_iter`` control its CG solve.
    """
    if base not in BASELINES:
        raise ConfigError(f"unknown base {base!r}; expected one of: {', '.join(BASELINES)}")
    if not 0.0 < floor <= 1.0:
        raise ConfigError(f"floor must be in (0, 1], got {floor}")
    if screening_length is not None and not screening_length > 0:
        raise ConfigError(f"screening_length must be > 0 or None, got {screening_length}")
    if not 0.0 < rtol < 1.0:
        raise ConfigError(f"rtol must be in (0, 1), got {rtol}")
    if max_iter < 1:
        raise ConfigError(f"max_iter must be >= 1, got {max_iter}")
    first, second = check_pair(image0, image1)
    if conventional is None:
        conventional = estimate_flow(base, first, second)
    residual, density = continuity_residual(first, second, conventional, floor)
    solved = solve_weighted_poisson(
        residual, density, screening_length, rtol=rtol, max_iter=max_iter
    )
    grad_y, grad_x = np.gradient(solved.phi)
    irrotational = np.stack([grad_x, grad_y], axis=-1)
    return ReynoldsFlowResult(
        flow=conventional + irrotational,
        conventional=conventional,
        reynolds=irrotational,
        residual=residual,
        poisson_iterations=solved.iterations,
        poisson_relative_residual=solved.relative_residual,
    )
