"""scikit-learn's handwritten digits (Alpaydin & Kaynak 1998, UCI), which ship with scikit-learn.

1,797 images of 8×8 pixels with values 0..16, ten classes. Pixels map to [−1, 1] by
x ↦ x / 8 − 1. The train/test split is fixed: stratified by class, 20 % held out, seed 0
(1,437 train and 360 test images).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from flow_images.data.types import ImageData

__all__ = ["SPLIT_SEED", "TEST_FRACTION", "load_digits_split"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@lru_cache(maxsize=1)
def _split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 8.0 - 1.0
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return {"train": (x_train, y_train), "test": (x_test, y_test)}


def load_digits_split(split: str) -> ImageData:
    """The ``train`` or ``test`` split as ``(N, 1, 8, 8)`` images with labels 0..9."""
    images, labels = _split()[split]
    return ImageData(
        images=torch.from_numpy(images.copy()).unsqueeze(1),
        labels=torch.from_numpy(labels.copy()),
        num_classes=10,
        name="digits",
        class_names=tuple(str(d) for d in range(10)),
    )
