"""A user's folder of PNG/JPEG images, loaded with Pillow.

Every file under the folder (recursively) whose suffix is ``.png``, ``.jpg`` or ``.jpeg``
(any case) is read, converted to grey (``channels=1``) or RGB (``channels=3``), centre-cropped
to a square and resized to ``size``×``size`` (Lanczos), then mapped to [−1, 1]. The split is
deterministic: files are sorted by their path relative to the folder and every fifth
(positions 4, 9, 14, … counting from 0) is a test image, the rest train, so at least five
images are needed. The data are unconditional.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from flow_core.errors import ConfigError, FlowError
from flow_images.data.types import ImageData

__all__ = ["SUFFIXES", "TEST_EVERY", "image_files", "load_folder_split", "read_folder"]

SUFFIXES = (".png", ".jpg", ".jpeg")
TEST_EVERY = 5


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder``, sorted by relative path."""
    if not folder.is_dir():
        raise FlowError(f"image folder {str(folder)!r} does not exist or is not a directory")
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise FlowError(
            f"image folder {str(folder)!r} has no images (accepted suffixes: {', '.join(SUFFIXES)})"
        )
    return files


def _read(path: Path, size: int, channels: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise FlowError(f"cannot read image {str(path)!r}: {error}") from error
    fitted = ImageOps.fit(converted, (size, size), method=Image.Resampling.LANCZOS)
    array = np.asarray(fitted, dtype=np.float32).reshape(size, size, channels)
    return rearrange(array, "h w c -> c h w") / 127.5 - 1.0


def read_folder(folder: str, size: int, channels: int) -> Tensor:
    """Every image of ``folder`` (sorted, no split) as ``(N, channels, size, size)`` in [−1, 1]."""
    files = image_files(Path(folder).expanduser())
    return torch.from_numpy(np.stack([_read(path, size, channels) for path in files]))


def load_folder_split(folder: str, split: str, size: int, channels: int) -> ImageData:
    """The ``train`` or ``test`` images of ``folder`` as ``(N, channels, size, size)``."""
    root = Path(folder).expanduser()
    files = image_files(root)
    if len(files) < TEST_EVERY:
        raise ConfigError(
            f"image folder {str(root)!r} has {len(files)} images; at least {TEST_EVERY} are "
            f"needed (every {TEST_EVERY}th file in sorted order is a test image)"
        )
    chosen = [
        path
        for position, path in enumerate(files)
        if (position % TEST_EVERY == TEST_EVERY - 1) == (split == "test")
    ]
    images = np.stack([_read(path, size, channels) for path in chosen])
    return ImageData(
        images=torch.from_numpy(images),
        labels=None,
        num_classes=0,
        name="folder",
        class_names=(),
    )
