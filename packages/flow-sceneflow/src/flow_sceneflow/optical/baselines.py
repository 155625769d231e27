"""Conventional optical-flow estimators from the field's libraries, in one calling convention.

* ``tvl1`` — TV-L1 (Zach, Pock & Bischof, DAGM 2007; Wedel et al. 2009), coarse-to-fine with
  image warping: :func:`skimage.registration.optical_flow_tvl1`;
* ``ilk`` — iterative Lucas-Kanade (Lucas & Kanade, IJCAI 1981; Le Besnerais & Champagnat,
  ICIP 2005), coarse-to-fine: :func:`skimage.registration.optical_flow_ilk`;
* ``farneback`` — polynomial-expansion flow (Farneback, SCIA 2003):
  :func:`cv2.calcOpticalFlowFarneback`, only when OpenCV is installed
  (``pip install flow-sceneflow[opencv]``).

Every estimator takes two gray float frames in [0, 1] and returns an (H, W, 2) flow (u, v)
with ``image0(x) ≈ image1(x + flow(x))``. scikit-image returns (row, column) components and
OpenCV (x, y); both are converted here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flow_core.errors import ConfigError
from flow_sceneflow.optical.validation import check_pair

__all__ = ["BASELINES", "estimate_flow", "farneback", "has_opencv", "ilk", "tvl1"]

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
