"""Reference estimators the tasks compare against: LiDAR scene flow and optical flow.

Scene flow (:func:`nearest_neighbour_flow`, :func:`global_icp_flow`). Both use the ego-motion
when the pair has poses, like ICP-Flow, so that the comparison isolates the handling of moving
objects:

* nearest neighbour: each point of scan 1 moves to its nearest point of scan 2 (found with
  scan 2 in the frame of scan 1): f_i = q_{NN(i)} − p_i;
* global ICP: one rigid transform T for the whole non-ground scene (static-world assumption,
  batched ICP with a 0.5 m inlier radius from the identity); f_i = E⁻¹ T p_i − p_i.

Optical flow (:data:`BASELINES`, :func:`estimate_flow`): conventional estimators from the
field's libraries, in one calling convention; ReynoldsFlow also starts from one of them.

* ``tvl1`` — TV-L1 (Zach, Pock & Bischof, DAGM 2007; Wedel et al. 2009), coarse-to-fine with
  image warping: :func:`skimage.registration.optical_flow_tvl1`;
* ``ilk`` — iterative Lucas-Kanade (Lucas & Kanade, IJCAI 1981; Le Besnerais & Champagnat,
  ICIP 2005), coarse-to-fine: :func:`skimage.registration.optical_flow_ilk`;
* ``farneback`` — polynomial-expansion flow (Farneback, SCIA 2003):
  :func:`cv2.calcOpticalFlowFarneback`, only when OpenCV is installed
  (``pip install flow-sceneflow[opencv]``).

Every optical estimator takes two gray float frames in [0, 1] and returns an (H, W, 2) flow
(u, v) with ``image0(x) ≈ image1(x + flow(x))``. scikit-image returns (row, column) components
and OpenCV (x, y); both are converted here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from flow_core.errors import ConfigError
from flow_sceneflow.icpflow.ground import ground_mask
from flow_sceneflow.optical.validation import check_pair
from flow_sceneflow.registration.icp import batched_icp
from flow_sceneflow.scan import ScanPair, transform_points

__all__ = [
    "BASELINES",
    "estimate_flow",
    "farneback",
    "global_icp_flow",
    "has_opencv",
    "ilk",
    "nearest_neighbour_flow",
    "tvl1",
]


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


Flow = NDArray[np.float64]


def _from_rows_cols(components: NDArray[Any]) -> Flow:
    """scikit-image's (2, H, W) = (v_row, u_col) as (H, W, 2) = (u, v)."""
    return np.stack([components[1], components[0]], axis=-1).astype(np.float64)


def tvl1(
    image0: NDArray[np.float64],
    image1: NDArray[np.float64],
    attachment: float = 15.0,
    tightness: float = 0.3,
    num_warp: int = 5,
    num_iter: int = 10,
) -> Flow:
    """TV-L1 flow (scikit-image; its defaults)."""
    from skimage.registration import optical_flow_tvl1

    first, second = check_pair(image0, image1)
    return _from_rows_cols(
        optical_flow_tvl1(  # type: ignore[no-untyped-call]
            first,
            second,
            attachment=attachment,
            tightness=tightness,
            num_warp=num_warp,
            num_iter=num_iter,
        )
    )


def ilk(
    image0: NDArray[np.float64],
    image1: NDArray[np.float64],
    radius: int = 7,
    num_warp: int = 10,
    gaussian: bool = False,
) -> Flow:
    """Iterative Lucas-Kanade flow (scikit-image; its defaults)."""
    from skimage.registration import optical_flow_ilk

    first, second = check_pair(image0, image1)
    return _from_rows_cols(
        optical_flow_ilk(  # type: ignore[no-untyped-call]
            first, second, radius=radius, num_warp=num_warp, gaussian=gaussian
        )
    )


def has_opencv() -> bool:
    """Whether OpenCV (``cv2``) can be imported, i.e. whether ``farneback`` is available."""
    return importlib.util.find_spec("cv2") is not None


def farneback(
    image0: NDArray[np.float64],
    image1: NDArray[np.float64],
    pyr_scale: float = 0.5,
    levels: int = 5,
    winsize: int = 15,
    iterations: int = 3,
    poly_n: int = 5,
    poly_sigma: float = 1.1,
) -> Flow:
    """Farneback flow (OpenCV) on the frames quantised to 8 bits, as OpenCV requires."""
    if not has_opencv():
        raise ConfigError(
            "method 'farneback' needs OpenCV, which is not installed; install it with"
            " `pip install flow-sceneflow[opencv]` or choose one of: reynolds, tvl1, ilk"
        )
    import cv2

    first, second = check_pair(image0, image1)
    farneback: Any = cv2.calcOpticalFlowFarneback
    flow = farneback(
        np.round(first * 255).astype(np.uint8),
        np.round(second * 255).astype(np.uint8),
        None,
        pyr_scale,
        levels,
        winsize,
        iterations,
        poly_n,
        poly_sigma,
        0,
    )
    return np.asarray(flow, dtype=np.float64)


BASELINES: dict[str, Callable[[NDArray[np.float64], NDArray[np.float64]], Flow]] = {
    "tvl1": tvl1,
    "ilk": ilk,
    "farneback": farneback,
}


def estimate_flow(name: str, image0: NDArray[np.float64], image1: NDArray[np.float64]) -> Flow:
    """Run the baseline ``name`` (one of :data:`BASELINES`) with its default settings."""
    if name not in BASELINES:
        raise ConfigError(
            f"unknown flow estimator {name!r}; expected one of: {', '.join(BASELINES)}"
        )
    return BASELINES[name](image0, image1)
