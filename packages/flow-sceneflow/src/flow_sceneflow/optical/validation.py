"""Checks of images and flow fields handed to the optical-flow code (bad input fails early)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flow_core.errors import UsageError

__all__ = ["MIN_SIZE", "OpticalInputError", "as_gray", "check_flow", "check_pair"]

MIN_SIZE = 8  # pixels along each axis; the estimators' pyramids and windows need some room


class OpticalInputError(UsageError):
    """An image or flow field handed to the optical-flow code is unusable (says why)."""


def as_gray(image: object, name: str = "image") -> NDArray[np.float64]:
    """``image`` as a finite 2-D float64 array in [0, 1].

    Accepted: a 2-D array (gray), or (H, W, 3) / (H, W, 4) (RGB / RGBA, converted with the
    ITU-R 709 luma weights 0.2125, 0.7154, 0.0721 of :func:`skimage.color.rgb2gray`; alpha is
    dropped). Integer arrays are scaled by their dtype's maximum; float arrays must already lie
    in [0, 1].
    """
    from skimage.color import rgb2gray

    array = np.asarray(image)
    if array.size == 0:
        raise OpticalInputError(f"{name} is empty (shape {array.shape})")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise OpticalInputError(f"{name} has dtype {array.dtype}; expected a numeric array")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[..., :3]
    elif array.ndim != 2:
        raise OpticalInputError(
            f"{name} has shape {array.shape}; expected (H, W) gray or (H, W, 3|4) colour"
        )
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        if array.min() < 0:
            raise OpticalInputError(f"{name} has negative integer values; expected unsigned")
        out = array.astype(np.float64) / float(info.max)
    else:
        out = array.astype(np.float64)
        if not np.all(np.isfinite(out)):
            bad = int(np.count_nonzero(~np.isfinite(out)))
            raise OpticalInputError(f"{name} has {bad} non-finite values (NaN or inf)")
        if out.min() < 0.0 or out.max() > 1.0:
            raise OpticalInputError(
                f"{name} has values in [{out.min():.4g}, {out.max():.4g}]; float images must"
                " lie in [0, 1]"
            )
    if out.ndim == 3:
        out = rgb2gray(out)
    if min(out.shape) < MIN_SIZE:
        raise OpticalInputError(
            f"{name} is {out.shape[0]}x{out.shape[1]} pixels; at least {MIN_SIZE}x{MIN_SIZE}"
            " is needed"
        )
    return np.ascontiguousarray(out)


def check_pair(image0: object, image1: object) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both frames as gray float arrays of one size (see :func:`as_gray`)."""
    first, second = as_gray(image0, "image0"), as_gray(image1, "image1")
    if first.shape != second.shape:
        raise OpticalInputError(
            f"image0 is {first.shape[0]}x{first.shape[1]} but image1 is"
            f" {second.shape[0]}x{second.shape[1]}; the two frames must have the same size"
        )
    return first, second


def check_flow(
    flow: object, shape: tuple[int, int] | None = None, name: str = "flow", allow_nan: bool = False
) -> NDArray[np.float64]:
    """``flow`` as an (H, W, 2) float64 array; ``shape`` is the expected (H, W) if given.

    Infinite values are never accepted; NaN only with ``allow_nan`` (ground truth, where NaN
    marks a pixel without ground truth).
    """
    array = np.asarray(flow)
    if array.size == 0:
        raise OpticalInputError(f"{name} is empty (shape {array.shape})")
    if array.ndim != 3 or array.shape[2] != 2:
        raise OpticalInputError(f"{name} has shape {array.shape}; expected (H, W, 2) = (u, v)")
    if not np.issubdtype(array.dtype, np.number):
        raise OpticalInputError(f"{name} has dtype {array.dtype}; expected a numeric array")
    if shape is not None and array.shape[:2] != tuple(shape):
        raise OpticalInputError(
            f"{name} covers {array.shape[0]}x{array.shape[1]} pixels but the images are"
            f" {shape[0]}x{shape[1]}"
        )
    out = array.astype(np.float64)
    if np.isinf(out).any():
        raise OpticalInputError(f"{name} has infinite values")
    if not allow_nan and np.isnan(out).any():
        raise OpticalInputError(f"{name} has {int(np.isnan(out).sum())} NaN values")
    return out
