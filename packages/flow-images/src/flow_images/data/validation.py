"""A validation part held out of a training split, for choices that must not see the test split.

Image tasks choose their guidance weight and sampler on this part (:mod:`flow_images.choice`)
and train on the rest, so the test split is only ever used to report. The part is drawn once,
with a fixed seed independent of the run's seed, so every run of a task holds out the same
images:

- labelled data: stratified by class (each class keeps its share);
- data cut from source images (``sources``, e.g. the photo patches): whole source images go to
  one side, so no validation patch shares a photograph with a training patch;
- otherwise: a uniform random part.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.model_selection import GroupShuffleSplit, train_test_split
from torch import Tensor

from flow_core.errors import ConfigError
from flow_images.data.types import ImageData

__all__ = ["VALIDATION_SEED", "hold_out_validation"]

VALIDATION_SEED = 1
"""Seed of the hold-out draw (not the run's seed: the part is the same for every run)."""


def hold_out_validation(data: ImageData, fraction: float) -> tuple[ImageData, ImageData]:
    """``(fit, validation)``: ``data`` split into disjoint parts, ``fraction`` of it held out.

    Raises :class:`~flow_core.errors.ConfigError` when ``fraction`` is outside (0, 1) or
    either part would be empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in (0, 1) to hold out, got {fraction}")
    rows = np.arange(len(data))
    if data.sources is not None and data.labels is None:
        groups = data.sources.numpy()
        if np.unique(groups).size < 2:
            raise ConfigError(
                f"{data.name}: the training split comes from {np.unique(groups).size} source"
                " image(s); holding out whole source images for validation needs at least 2"
                " (or set validation_fraction=0 and choose=false)"
            )
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=VALIDATION_SEED)
        fit_rows, held_rows = next(splitter.split(rows, groups=groups))
    else:
        stratify = None if data.labels is None else data.labels.numpy()
        try:
            fit_rows, held_rows = train_test_split(
                rows, test_size=fraction, stratify=stratify, random_state=VALIDATION_SEED
            )
        except ValueError as error:  # too few images (per class) for the fraction
            raise ConfigError(
                f"{data.name}: cannot hold out {fraction:g} of {len(data)} training images for"
                f" validation ({error}); use a larger dataset or validation_fraction=0 with"
                " choose=false"
            ) from error
    return _rows(data, np.sort(fit_rows)), _rows(data, np.sort(held_rows))


def _rows(data: ImageData, rows: np.ndarray) -> ImageData:
    index = torch.from_numpy(rows)

    def pick(values: Tensor | None) -> Tensor | None:
        return None if values is None else values[index]

    return ImageData(
        images=data.images[index],
        labels=pick(data.labels),
        num_classes=data.num_classes,
        name=data.name,
        class_names=data.class_names,
        sources=pick(data.sources),
        source_names=data.source_names,
    )
