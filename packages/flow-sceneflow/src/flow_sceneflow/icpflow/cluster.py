"""Clustering of the fused non-ground points of both scans (ICP-Flow §3.2).

HDBSCAN (Campello et al. 2013; scikit-learn's implementation) with ``min_cluster_size`` and
``cluster_selection_epsilon`` as in the reference (20 and 0.25 m), or open3d's DBSCAN (Ester et
al. 1996) with radius ``epsilon``. Clusters are renumbered by decreasing size and only the
largest ``max_clusters`` kept; the rest, and noise, get label −1.

scikit-learn's HDBSCAN fails on some clouds in its ``cluster_selection_epsilon`` path
(``TypeError: only 0-dimensional arrays can be converted to Python scalars`` under NumPy 2,
an upstream bug). There we cluster without the epsilon and merge ourselves every two
clusters that come closer than ``epsilon`` (:func:`merge_close_clusters`), which is what the
epsilon asks for: no two clusters split at a scale finer than it.
"""

from __future__ import annotations

import numpy as np

from flow_core.errors import ConfigError

__all__ = ["CLUSTER_METHODS", "cluster_points", "merge_close_clusters"]

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
        raw = _hdbscan(points, min_cluster_size, epsilon)
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


def _hdbscan(points: np.ndarray, min_cluster_size: int, epsilon: float) -> np.ndarray:
    """scikit-learn's HDBSCAN labels, working around its epsilon bug (see the module doc)."""
    from sklearn.cluster import HDBSCAN

    try:
        return np.asarray(
            HDBSCAN(
                min_cluster_size=min_cluster_size, cluster_selection_epsilon=epsilon, copy=True
            ).fit_predict(points)
        )
    except TypeError as error:
        if "0-dimensional" not in str(error):
            raise
    raw = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(points)
    return merge_close_clusters(points, np.asarray(raw, dtype=np.int64), epsilon)


def merge_close_clusters(points: np.ndarray, labels: np.ndarray, epsilon: float) -> np.ndarray:
    """Merge every two clusters with points closer than ``epsilon``; noise (−1) stays.

    Returns labels where each merged group carries its smallest original label.
    """
    from scipy.spatial import cKDTree

    labels = np.asarray(labels, dtype=np.int64)
    clustered = np.flatnonzero(labels >= 0)
    if epsilon <= 0 or clustered.size == 0:
        unchanged: np.ndarray = labels.copy()
        return unchanged
    parent = np.arange(int(labels.max()) + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    pairs = cKDTree(points[clustered]).query_pairs(epsilon, output_type="ndarray")
    a, b = labels[clustered[pairs[:, 0]]], labels[clustered[pairs[:, 1]]]
    for i, j in {(int(x), int(y)) for x, y in zip(a, b, strict=True) if x != y}:
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    merged = np.array([root(i) for i in range(parent.size)], dtype=np.int64)
    return np.where(labels >= 0, merged[np.clip(labels, 0, None)], -1)
