"""Reference scene-flow estimators for the benchmark: nearest-neighbour flow and one global ICP.

Both use the ego-motion when the pair has poses, like ICP-Flow, so that the comparison isolates
the handling of moving objects:

* nearest neighbour: each point of scan 1 moves to its nearest point of scan 2 (found with
  scan 2 in the frame of scan 1): f_i = q_{NN(i)} − p_i;
* global ICP: one rigid transform T for the whole non-ground scene (static-world assumption,
  batched ICP with a 0.5 m inlier radius from the identity); f_i = E⁻¹ T p_i − p_i.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from flow_sceneflow.icpflow.ground import ground_mask
from flow_sceneflow.registration.icp import batched_icp
from flow_sceneflow.scan import ScanPair, transform_points

__all__ = ["global_icp_flow", "nearest_neighbour_flow"]


def nearest_neighbour_flow(pair: ScanPair) -> np.ndarray:
    """Flow to the nearest point of scan 2 (compared in the frame of scan 1)."""
    common = transform_points(pair.ego, pair.pc2)
    _, index = cKDTree(common).query(pair.pc1)
    return np.asarray(pair.pc2[index] - pair.pc1, dtype=np.float64)


def global_icp_flow(pair: ScanPair, max_points: int = 2048, seed: int = 0) -> np.ndarray:
    """Flow of a single rigid transform fitted to all non-ground points."""
    common = transform_points(pair.ego, pair.pc2)
    rng = np.random.default_rng(seed)

    def sample(points: np.ndarray) -> torch.Tensor:
        kept = points[~ground_mask(points)]
        kept = kept if kept.shape[0] else points
        if kept.shape[0] > max_points:
            kept = kept[rng.choice(kept.shape[0], max_points, replace=False)]
        return torch.from_numpy(kept).float()[None]

    result = batched_icp(sample(pair.pc1), sample(common), inlier=0.5, max_iterations=50)
    total = np.linalg.inv(pair.ego) @ result.transforms[0].numpy()
    return np.asarray(transform_points(total, pair.pc1) - pair.pc1, dtype=np.float64)
