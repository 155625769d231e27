"""Clustering of the fused non-ground points of both scans (ICP-Flow §3.2).

HDBSCAN (Campello et al. 2013; scikit-learn's implementation) with ``min_cluster_size`` and
``cluster_selection_epsilon`` as in the reference (20 and 0.25 m), or open3d's DBSCAN (Ester et
al. 1996) with radius ``epsilon``. Clusters are renumbered by decreasing size and only the
largest ``max_clusters`` kept; the rest, and noise, get label −1.
"""

from __future__ import annotations

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["CLUSTER_METHODS", "cluster_points"]

CLUSTER_METHODS = ("hdbscan", "dbscan")


def cluster_points(
    points: np.ndarray,
    method: str = "hdbscan",
    min_cluster_size: int = 20,
    epsilon: float = 0.25,
    max_clusters: int = 200,
) -> np.ndarray:
    """Cluster labels ``(N,)`` (−1 for noise), 0 the largest cluster."""
    if method not in CLUSTER_METHODS:
        raise ConfigError(f"unknown clustering {method!r}; expected one of {CLUSTER_METHODS}")
    if points.shape[0] < min_cluster_size:
        return np.full(points.shape[0], -1, dtype=np.int64)
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        raw = HDBSCAN(
            min_cluster_size=min_cluster_size, cluster_selection_epsilon=epsilon, copy=True
        ).fit_predict(points)
    else:
        import open3d as o3d

        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
        raw = np.asarray(cloud.cluster_dbscan(eps=epsilon, min_points=5))
    raw = np.asarray(raw, dtype=np.int64)
    ids, counts = np.unique(raw[raw >= 0], return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    order = order[counts[np.argsort(-counts, kind="stable")] >= min_cluster_size][:max_clusters]
    relabel = np.full(int(raw.max()) + 2 if raw.size else 1, -1, dtype=np.int64)
    relabel[order] = np.arange(order.size)
    return np.where(raw >= 0, relabel[np.clip(raw, 0, None)], -1)
