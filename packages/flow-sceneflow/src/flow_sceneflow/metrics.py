"""The metrics of the package's tasks: scene flow (3-D, LiDAR) and optical flow (2-D, images).

Scene flow, with ICP-Flow's and SCOOP's definitions (shared thresholds). With
e_i = ‖f̂_i − f_i‖₂ (end-point error, m) and r_i = e_i / (‖f_i‖₂ + 1e-4):

* EPE3D = mean e_i;
* AccStrict (AccS) = fraction with e_i < 0.05 or r_i < 0.05;
* AccRelax (AccR) = fraction with e_i < 0.1 or r_i < 0.1;
* Outliers = fraction with e_i > 0.3 or r_i > 0.1.

Each is reported overall, on static points and on dynamic points (moving by more than 5 cm
beyond the ego-motion); a split with no points gives NaN.

Optical flow: for an estimate f̂ and ground truth f on the pixels p that have ground truth
(non-NaN),

    EPE      = mean_p ‖f̂(p) − f(p)‖₂                          (pixels)
    outliers = mean_p [ ‖f̂ − f‖₂ > τ_abs  and  ‖f̂ − f‖₂ > τ_rel · ‖f‖₂ ]

The outlier rule with τ_abs = 3 px and τ_rel = 0.05 is the KITTI 2015 "Fl" definition
(Menze & Geiger, CVPR 2015); both thresholds are parameters.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flow_sceneflow.optical.validation import OpticalInputError, check_flow
from flow_sceneflow.scan import PointCloudError, check_points

__all__ = ["endpoint_error", "flow_metrics", "outlier_rate", "scene_flow_metrics", "split_metrics"]


def split_metrics(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """EPE3D, AccS, AccR and Outliers of one set of points (NaN when empty)."""
    if truth.shape[0] == 0:
        return {k: float("nan") for k in ("epe3d", "acc_strict", "acc_relax", "outliers")}
    error = np.linalg.norm(prediction - truth, axis=1)
    relative = error / (np.linalg.norm(truth, axis=1) + 1e-4)
    return {
        "epe3d": float(error.mean()),
        "acc_strict": float(((error < 0.05) | (relative < 0.05)).mean()),
        "acc_relax": float(((error < 0.1) | (relative < 0.1)).mean()),
        "outliers": float(((error > 0.3) | (relative > 0.1)).mean()),
    }


def scene_flow_metrics(
    prediction: np.ndarray, truth: np.ndarray, dynamic: np.ndarray | None = None
) -> dict[str, float]:
    """Overall, ``static_`` and ``dynamic_`` metrics (the splits only when ``dynamic`` is given)."""
    prediction = check_points("predicted flow", prediction)
    truth = check_points("ground-truth flow", truth)
    if prediction.shape != truth.shape:
        raise PointCloudError(
            f"predicted flow has shape {prediction.shape}, ground truth {truth.shape};"
            " they must match"
        )
    metrics = split_metrics(prediction, truth)
    if dynamic is not None:
        mask = np.asarray(dynamic, dtype=bool)
        if mask.shape != (truth.shape[0],):
            raise PointCloudError(f"dynamic mask needs shape ({truth.shape[0]},), got {mask.shape}")
        for prefix, part in (("static_", ~mask), ("dynamic_", mask)):
            metrics.update(
                {prefix + k: v for k, v in split_metrics(prediction[part], truth[part]).items()}
            )
        metrics["dynamic_fraction"] = float(mask.mean())
    return metrics


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
