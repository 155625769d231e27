"""Scene-flow metrics with ICP-Flow's and SCOOP's definitions (shared thresholds).

With e_i = ‖f̂_i − f_i‖₂ (end-point error, m) and r_i = e_i / (‖f_i‖₂ + 1e-4):

* EPE3D = mean e_i;
* AccStrict (AccS) = fraction with e_i < 0.05 or r_i < 0.05;
* AccRelax (AccR) = fraction with e_i < 0.1 or r_i < 0.1;
* Outliers = fraction with e_i > 0.3 or r_i > 0.1.

Each is reported overall, on static points and on dynamic points (moving by more than 5 cm
beyond the ego-motion); a split with no points gives NaN.
"""

from __future__ import annotations

import numpy as np

from flow_sceneflow.scan import PointCloudError, check_points

__all__ = ["scene_flow_metrics", "split_metrics"]


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
