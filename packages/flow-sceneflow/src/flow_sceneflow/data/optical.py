"""Image pairs with known flow: a real stereo pair, bundled images warped by known fields, and
a user's own two image files.

* :func:`stereo_pair` — scikit-image's bundled ``stereo_motorcycle`` (Middlebury 2014
  "Motorcycle", Scharstein et al. GCPR 2014): a real rectified left/right pair with ground-truth
  disparity d, so the flow from left to right is (u, v) = (−d, 0); pixels without disparity
  (inf) have no ground truth. Verified here: the right image sampled at x − d matches the left.
* :func:`warp_pair` — a bundled scikit-image photograph S and a known field w. The second frame
  is S and the first is S sampled at x + w(x), so image0(x) = image1(x + w(x)) exactly and w is
  the ground truth; pixels whose x + w(x) leaves the image have none. Fields: ``translation``,
  ``affine`` (rotation, scale, shift), ``smooth`` (Gaussian-filtered noise) and ``lighting``
  (the affine field with a multiplicative illumination ramp on the second frame, which breaks
  brightness constancy). A synthetic substitute, named as such wherever its numbers appear.
* :func:`load_pair` — two image files (anything :func:`skimage.io.imread` reads) and optionally
  a ground-truth flow file (``.npy`` holding (H, W, 2) = (u, v), or Middlebury ``.flo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from flow_core.errors import ConfigError
from flow_sceneflow.optical.validation import (
    OpticalInputError,
    as_gray,
    check_flow,
    check_pair,
)

__all__ = [
    "FIELDS",
    "SOURCE_IMAGES",
    "OpticalPair",
    "load_pair",
    "read_flo",
    "stereo_pair",
    "warp_pair",
]

SOURCE_IMAGES = ("camera", "astronaut", "coffee", "chelsea", "rocket")
FIELDS = ("translation", "affine", "smooth", "lighting")
_FLO_MAGIC = 202021.25


@dataclass(frozen=True)
class OpticalPair:
    """Two gray frames in [0, 1], their ground-truth flow (NaN where unknown; None if no
    ground truth at all), a short name and a description naming the data."""

    name: str
    image0: NDArray[np.float64]
    image1: NDArray[np.float64]
    truth: NDArray[np.float64] | None
    description: str


def stereo_pair(downscale: int = 1) -> OpticalPair:
    """scikit-image's real stereo pair with (u, v) = (−d, 0), averaged over ``downscale``²
    pixel blocks (images and disparity; a block with any invalid disparity has none)."""
    from skimage import data
    from skimage.transform import downscale_local_mean

    if downscale < 1:
        raise ConfigError(f"stereo_downscale must be >= 1, got {downscale}")
    left, right, disparity = data.stereo_motorcycle()  # type: ignore[no-untyped-call]
    image0, image1 = check_pair(left, right)
    disparity = disparity.astype(np.float64)
    disparity[~np.isfinite(disparity)] = np.nan
    if downscale > 1:
        height = image0.shape[0] // downscale * downscale
        width = image0.shape[1] // downscale * downscale
        factors = (downscale, downscale)
        image0 = downscale_local_mean(image0[:height, :width], factors)  # type: ignore[no-untyped-call]
        image1 = downscale_local_mean(image1[:height, :width], factors)  # type: ignore[no-untyped-call]
        disparity = (
            downscale_local_mean(disparity[:height, :width], factors)  # type: ignore[no-untyped-call]
            / downscale
        )
    truth = np.stack([-disparity, np.where(np.isnan(disparity), np.nan, 0.0)], axis=-1)
    return OpticalPair(
        name="stereo" if downscale == 1 else f"stereo-1/{downscale}",
        image0=image0,
        image1=image1,
        truth=truth,
        description=(
            f"real stereo pair skimage.data.stereo_motorcycle (Middlebury 2014), "
            f"{image0.shape[0]}x{image0.shape[1]} px, flow (−disparity, 0)"
        ),
    )


def _source(name: str, size: int) -> NDArray[np.float64]:
    from skimage import data
    from skimage.transform import resize

    image = as_gray(getattr(data, name)(), name)
    side = min(image.shape)
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    square = image[top : top + side, left : left + side]
    resized = resize(square, (size, size), anti_aliasing=True)  # type: ignore[no-untyped-call]
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)


def _field(kind: str, size: int, magnitude: float, rng: np.random.Generator) -> NDArray[np.float64]:
    from scipy.ndimage import gaussian_filter

    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    if kind == "translation":
        angle = rng.uniform(0, 2 * np.pi)
        length = magnitude * rng.uniform(0.5, 1.0)
        return np.stack(
            [
                np.full((size, size), length * np.cos(angle)),
                np.full((size, size), length * np.sin(angle)),
            ],
            axis=-1,
        )
    if kind in ("affine", "lighting"):
        centre = (size - 1) / 2
        angle = np.deg2rad(rng.uniform(-1.0, 1.0)) * magnitude * 90 / size
        scale = 1.0 + rng.uniform(-1.0, 1.0) * magnitude * 0.5 / size
        shift = rng.uniform(-0.5, 0.5, size=2) * magnitude
        x, y = cols - centre, rows - centre
        cos, sin = np.cos(angle), np.sin(angle)
        u = scale * (cos * x - sin * y) - x + shift[0]
        v = scale * (sin * x + cos * y) - y + shift[1]
        return np.stack([u, v], axis=-1)
    noise = gaussian_filter(rng.standard_normal((2, size, size)), sigma=(0, size / 8, size / 8))
    noise *= magnitude / np.abs(noise).max()
    return np.stack([noise[0], noise[1]], axis=-1)


def warp_pair(
    source: str = "camera",
    field: str = "affine",
    size: int = 160,
    magnitude: float = 6.0,
    seed: int = 0,
) -> OpticalPair:
    """A bundled photograph warped by a known field (see the module docstring)."""
    from scipy.ndimage import map_coordinates

    if source not in SOURCE_IMAGES:
        raise ConfigError(
            f"unknown source image {source!r}; expected one of: {', '.join(SOURCE_IMAGES)}"
        )
    if field not in FIELDS:
        raise ConfigError(f"unknown warp field {field!r}; expected one of: {', '.join(FIELDS)}")
    if size < 32:
        raise ConfigError(f"warp_size must be >= 32 pixels, got {size}")
    if not magnitude > 0:
        raise ConfigError(f"warp_magnitude must be > 0 pixels, got {magnitude}")
    rng = np.random.default_rng([seed, FIELDS.index(field), SOURCE_IMAGES.index(source)])
    image1 = _source(source, size)
    flow = _field(field, size, magnitude, rng)
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    target_rows, target_cols = rows + flow[..., 1], cols + flow[..., 0]
    image0 = np.clip(
        map_coordinates(image1, [target_rows, target_cols], order=3, mode="nearest"), 0.0, 1.0
    )
    inside = (
        (target_rows >= 0)
        & (target_rows <= size - 1)
        & (target_cols >= 0)
        & (target_cols <= size - 1)
    )
    truth = np.where(inside[..., None], flow, np.nan)
    description = f"bundled '{source}' {size}x{size} px warped by a known {field} field"
    if field == "lighting":
        ramp = np.cos(rng.uniform(0, 2 * np.pi)) * (cols / (size - 1) - 0.5)
        image1 = np.clip(image1 * (1.1 + 0.5 * ramp), 0.0, 1.0)
        description += " (second frame lit by a linear ramp within ×0.85–1.35)"
    return OpticalPair(f"{source}-{field}", image0, image1, truth, description + " (synthetic)")


def read_flo(path: Path) -> NDArray[np.float64]:
    """A Middlebury ``.flo`` file as (H, W, 2); values ≥ 1e9 (unknown) become NaN."""
    raw = path.read_bytes()
    if len(raw) < 12 or np.frombuffer(raw[:4], "<f4")[0] != _FLO_MAGIC:
        raise OpticalInputError(f"{path} is not a Middlebury .flo file (bad magic number)")
    width, height = (int(n) for n in np.frombuffer(raw[4:12], "<i4"))
    if width <= 0 or height <= 0 or len(raw) != 12 + 8 * width * height:
        raise OpticalInputError(
            f"{path}: header says {width}x{height} but the file holds {len(raw) - 12} data bytes"
        )
    flow = np.frombuffer(raw[12:], "<f4").reshape(height, width, 2).astype(np.float64)
    flow[np.abs(flow) >= 1e9] = np.nan
    return flow


def load_pair(
    image0: str | Path, image1: str | Path, flow: str | Path | None = None
) -> OpticalPair:
    """Two image files (and optionally their ground-truth flow file) as an :class:`OpticalPair`."""
    from skimage.io import imread

    paths = [Path(image0), Path(image1)] + ([Path(flow)] if flow else [])
    for path in paths:
        if not path.is_file():
            raise OpticalInputError(f"file not found: {path}")
    try:
        first, second = imread(paths[0]), imread(paths[1])
    except (OSError, ValueError) as error:
        raise OpticalInputError(
            f"cannot read the images {paths[0]}, {paths[1]}: {error}"
        ) from error
    frames = check_pair(first, second)
    truth = None
    if flow:
        path = paths[2]
        if path.suffix == ".npy":
            truth = check_flow(np.load(path), frames[0].shape, name=str(path), allow_nan=True)
        elif path.suffix == ".flo":
            truth = check_flow(read_flo(path), frames[0].shape, name=str(path), allow_nan=True)
        else:
            raise OpticalInputError(f"flow file {path} must be .npy (H, W, 2) or Middlebury .flo")
    return OpticalPair("files", *frames, truth, f"user images {paths[0].name} → {paths[1].name}")
