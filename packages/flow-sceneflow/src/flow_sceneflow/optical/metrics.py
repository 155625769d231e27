"""End-point error and outlier rate of a 2-D flow against ground truth.

For an estimate f̂ and ground truth f on the pixels p that have ground truth (non-NaN),

    EPE      = mean_p ‖f̂(p) − f(p)‖₂                          (pixels)
    outliers = mean_p [ ‖f̂ − f‖₂ > τ_abs  and  ‖f̂ − f‖₂ > τ_rel · ‖f‖₂ ]

The outlier rule with τ_abs = 3 px and τ_rel = 0.05 is the KITTI 2015 "Fl" definition
(Menze & Geiger, CVPR 2015); both thresholds are parameters.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flow_sceneflow.optical.validation import OpticalInputError, check_flow

__all__ = ["endpoint_error", "flow_metrics", "outlier_rate"]


def _errors(estimate: object, truth: object) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    gt = check_flow(truth, name="ground-truth flow", allow_nan=True)
    est = check_flow(estimate, gt.shape[:2], name="estimated flow")
    valid = ~np.isnan(gt).any(axis=2)
    if not valid.any():
        raise OpticalInputError("the ground-truth flow has no valid (non-NaN) pixel")
    error = np.linalg.norm(est[valid] - gt[valid], axis=1)
    return error, np.linalg.norm(gt[valid], axis=1)


def endpoint_error(estimate: object, truth: object) -> float:
    """Mean end-point error in pixels over the pixels with ground truth."""
    error, _ = _errors(estimate, truth)
    return float(error.mean())


def outlier_rate(estimate: object, truth: object, abs_px: float = 3.0, rel: float = 0.05) -> float:
    """Fraction of pixels whose error exceeds ``abs_px`` pixels and ``rel`` × |ground truth|."""
    if abs_px < 0 or rel < 0:
        raise OpticalInputError(f"outlier thresholds must be >= 0, got {abs_px=}, {rel=}")
    error, magnitude = _errors(estimate, truth)
    return float(np.mean((error > abs_px) & (error > rel * magnitude)))


def flow_metrics(
    estimate: object, truth: object, abs_px: float = 3.0, rel: float = 0.05
) -> dict[str, float]:
    """``{"epe", "outliers", "valid_fraction"}`` in one pass."""
    if abs_px < 0 or rel < 0:
        raise OpticalInputError(f"outlier thresholds must be >= 0, got {abs_px=}, {rel=}")
    error, magnitude = _errors(estimate, truth)
    gt = np.asarray(truth)
    return {
        "epe": float(error.mean()),
        "outliers": float(np.mean((error > abs_px) & (error > rel * magnitude))),
        "valid_fraction": float(error.size / (gt.shape[0] * gt.shape[1])),
    }
