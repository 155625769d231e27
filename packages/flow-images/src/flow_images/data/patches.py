"""32×32 RGB patches cut from the colour photographs bundled with scikit-image.

Eight photographs ship inside scikit-image itself (no download): ``astronaut``, ``chelsea``,
``coffee``, ``rocket``, ``hubble_deep_field``, ``immunohistochemistry``, ``retina`` and the left
view of ``stereo_motorcycle``. Each is resized (Lanczos, anti-aliased) so that its shorter side
is 256 pixels, then to 128 and 64 (a three-level pyramid), and 32×32 patches are cut on a
grid with stride 16 from every level. The split is **by source photograph**: the test
photographs (``chelsea``, ``coffee``) are never seen in training, so a model is measured on how
well it produces photographic patches, not on memorised ones. With only six training
photographs the two splits differ visibly (content and colour), so feature distances between
them are large; :func:`held_out_regions` gives unseen regions of the *training* photographs
for a reference without that gap.

The data are unconditional (``num_classes = 0``); the photograph each patch comes from is
exposed as ``sources`` (an index into ``source_names``) for diagnostics and for training the
feature network, not as a class label.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import skimage.data
import torch
from einops import rearrange
from PIL import Image

from flow_images.data.types import ImageData

__all__ = [
    "HELD_OUT_COLUMNS",
    "PATCH_SIZE",
    "PYRAMID_SIDES",
    "STRIDE",
    "TEST_PHOTOGRAPHS",
    "TRAIN_PHOTOGRAPHS",
    "grid_patches",
    "held_out_regions",
    "load_patches_split",
    "photograph",
    "pyramid",
]

PATCH_SIZE = 32
STRIDE = 16
PYRAMID_SIDES = (256, 128, 64)
TRAIN_PHOTOGRAPHS = (
    "astronaut",
    "rocket",
    "motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
TEST_PHOTOGRAPHS = ("chelsea", "coffee")
HELD_OUT_COLUMNS = 0.25

_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
    "motorcycle": lambda: skimage.data.stereo_motorcycle()[0],  # type: ignore[no-untyped-call]
}


def photograph(name: str) -> np.ndarray:
    """The bundled photograph ``name`` as an ``(H, W, 3)`` uint8 array."""
    return np.ascontiguousarray(_LOADERS[name]()[..., :3])


def pyramid(name: str) -> list[np.ndarray]:
    """The photograph resized to shorter sides :data:`PYRAMID_SIDES`, largest first."""
    image = Image.fromarray(photograph(name))
    width, height = image.size
    levels = []
    for side in PYRAMID_SIDES:
        scale = side / min(width, height)
        size = (round(width * scale), round(height * scale))
        levels.append(np.asarray(image.resize(size, Image.Resampling.LANCZOS)))
    return levels


def grid_patches(image: np.ndarray, size: int = PATCH_SIZE, stride: int = STRIDE) -> np.ndarray:
    """All ``size``×``size`` windows of an ``(H, W, 3)`` uint8 image on a grid of ``stride``.

    Returns ``(N, 3, size, size)`` float32 in [−1, 1] (x ↦ x / 127.5 − 1), row-major order.
    """
    height, width = image.shape[:2]
    windows = [
        image[top : top + size, left : left + size]
        for top in range(0, height - size + 1, stride)
        for left in range(0, width - size + 1, stride)
    ]
    if not windows:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    stacked = rearrange(np.stack(windows), "n h w c -> n c h w")
    return stacked.astype(np.float32) / 127.5 - 1.0


@lru_cache(maxsize=2)
def _split(split: str) -> tuple[np.ndarray, np.ndarray]:
    names = TRAIN_PHOTOGRAPHS if split == "train" else TEST_PHOTOGRAPHS
    patches, sources = [], []
    for index, name in enumerate(names):
        cut = np.concatenate([grid_patches(level) for level in pyramid(name)])
        patches.append(cut)
        sources.append(np.full(len(cut), index, dtype=np.int64))
    return np.concatenate(patches), np.concatenate(sources)


def load_patches_split(split: str) -> ImageData:
    """The ``train`` or ``test`` split: patches of that split's photographs, unconditional."""
    patches, sources = _split(split)
    return ImageData(
        images=torch.from_numpy(patches.copy()),
        labels=None,
        num_classes=0,
        name="patches",
        class_names=(),
        sources=torch.from_numpy(sources.copy()),
        source_names=TRAIN_PHOTOGRAPHS if split == "train" else TEST_PHOTOGRAPHS,
    )


def held_out_regions(
    fraction: float = HELD_OUT_COLUMNS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source-labelled patches of the training photographs, split by region.

    For the patch feature network's objective (which training photograph a patch comes
    from): every pyramid level is cut into its left ``1 − fraction`` of columns and its right
    ``fraction``, and patches are cut from each part separately, so the two sets share no
    pixel. Returns ``(x_fit, y_fit, x_held_out, y_held_out)``, labels indexing
    :data:`TRAIN_PHOTOGRAPHS`. (With the default, the right part of the 64-pixel level is
    narrower than a patch, so held-out patches come from the 256- and 128-pixel levels.)
    """
    parts: dict[bool, tuple[list[np.ndarray], list[np.ndarray]]] = {True: ([], []), False: ([], [])}
    for label, name in enumerate(TRAIN_PHOTOGRAPHS):
        for level in pyramid(name):
            cut = round(level.shape[1] * (1 - fraction))
            for held_out, region in ((False, level[:, :cut]), (True, level[:, cut:])):
                patches = grid_patches(np.ascontiguousarray(region))
                parts[held_out][0].append(patches)
                parts[held_out][1].append(np.full(len(patches), label, dtype=np.int64))
    (x_fit, y_fit), (x_out, y_out) = (
        (torch.from_numpy(np.concatenate(x)), torch.from_numpy(np.concatenate(y)))
        for x, y in (parts[False], parts[True])
    )
    return x_fit, y_fit, x_out, y_out
