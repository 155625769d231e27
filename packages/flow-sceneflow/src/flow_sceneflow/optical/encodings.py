"""Flow images: the conventional HSV encoding and ReynoldsFlow+'s RGB stack.

HSV (the usual flow visualisation, used by the ReynoldsFlow paper as its first encoding): hue
= direction angle(u, v)/2π, saturation 1, value |v|/m with m the largest magnitude (or a given
``max_magnitude``), converted to RGB with :func:`skimage.color.hsv2rgb`.

ReynoldsFlow+ (Chen & Wu 2025, arXiv 2503.04500): the RGB image whose channels are
(|v_o|, |v_r|, fⁿ), the magnitudes of the conventional and the Reynolds parts of the flow and
the frame's intensity, stacked without the nonlinear HSV → RGB conversion. The channel order
is as the paper's summary states it; scaling each magnitude by its own maximum to [0, 255]
(intensity × 255) is **unconfirmed**: the method section was not available to check it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from flow_sceneflow.optical.validation import OpticalInputError, as_gray, check_flow

__all__ = ["flow_to_hsv_rgb", "reynoldsflow_plus"]


def flow_to_hsv_rgb(flow: object, max_magnitude: float | None = None) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 RGB image of ``flow`` in the HSV encoding (NaN pixels are black)."""
    from skimage.color import hsv2rgb

    field = check_flow(flow, allow_nan=True)
    valid = ~np.isnan(field).any(axis=2)
    u = np.where(valid, field[..., 0], 0.0)
    v = np.where(valid, field[..., 1], 0.0)
    magnitude = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(magnitude.max())
    elif not max_magnitude > 0:
        raise OpticalInputError(f"max_magnitude must be > 0, got {max_magnitude}")
    hsv = np.empty((*magnitude.shape, 3))
    hsv[..., 0] = np.mod(np.arctan2(v, u) / (2 * np.pi), 1.0)
    hsv[..., 1] = 1.0
    hsv[..., 2] = np.clip(magnitude / max_magnitude, 0.0, 1.0) if max_magnitude > 0 else 0.0
    rgb = np.asarray(hsv2rgb(hsv), dtype=np.float64)
    rgb[~valid] = 0.0
    return np.round(rgb * 255).astype(np.uint8)


def _scaled(channel: NDArray[np.float64]) -> NDArray[np.float64]:
    peak = float(channel.max())
    return channel / peak if peak > 0 else np.zeros_like(channel)


def reynoldsflow_plus(conventional: object, reynolds: object, frame: object) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 ReynoldsFlow+ image: (|v_o|, |v_r|, fⁿ) scaled to [0, 255]."""
    image = as_gray(frame, "frame")
    v_o = check_flow(conventional, image.shape, name="conventional flow v_o")
    v_r = check_flow(reynolds, image.shape, name="Reynolds flow v_r")
    stack = np.stack(
        [_scaled(np.linalg.norm(v_o, axis=2)), _scaled(np.linalg.norm(v_r, axis=2)), image],
        axis=-1,
    )
    return np.round(stack * 255).astype(np.uint8)
