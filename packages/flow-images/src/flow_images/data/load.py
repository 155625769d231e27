"""One entry point for every image dataset: :func:`load_dataset`."""

from __future__ import annotations

from flow_core.errors import ConfigError
from flow_images.data.digits import load_digits_split
from flow_images.data.folder import load_folder_split
from flow_images.data.patches import PATCH_SIZE, load_patches_split
from flow_images.data.types import ImageData

__all__ = ["DATASETS", "SPLITS", "load_dataset"]

DATASETS = ("digits", "patches", "folder")
SPLITS = ("train", "test")
_NATIVE = {"digits": (8, 1), "patches": (PATCH_SIZE, 3)}
_FOLDER_DEFAULTS = (32, 3)


def load_dataset(
    name: str,
    split: str,
    *,
    folder: str | None = None,
    size: int | None = None,
    channels: int | None = None,
) -> ImageData:
    """Load split ``split`` (``train`` or ``test``) of dataset ``name``.

    ``digits`` (8×8 grey, 10 classes) and ``patches`` (32×32 RGB, unconditional) ship with the
    package's dependencies; ``size``/``channels`` may only repeat their native values.
    ``folder`` reads the images under ``folder`` at ``size`` (default 32) with ``channels``
    1 or 3 (default 3). Nothing downloads.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; accepted: {', '.join(SPLITS)}")
    if name == "folder":
        if folder is None:
            raise ConfigError("dataset 'folder' needs folder=<path to a folder of PNG/JPEG images>")
        size = _FOLDER_DEFAULTS[0] if size is None else size
        channels = _FOLDER_DEFAULTS[1] if channels is None else channels
        if size < 1:
            raise ConfigError(f"size must be >= 1, got {size}")
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        return load_folder_split(folder, split, size, channels)
    if folder is not None:
        raise ConfigError(f"folder= applies only to dataset 'folder', not {name!r}")
    native_size, native_channels = _NATIVE[name]
    if size not in (None, native_size):
        raise ConfigError(f"dataset {name!r} has size {native_size}; got size={size}")
    if channels not in (None, native_channels):
        raise ConfigError(
            f"dataset {name!r} has {native_channels} channel(s); got channels={channels}"
        )
    return load_digits_split(split) if name == "digits" else load_patches_split(split)
