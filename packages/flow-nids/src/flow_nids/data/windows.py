"""Windows of consecutive flows and the leakage-free split of FlowTransformer.

Manocchio et al. 2023 (arXiv:2304.14746): the model sees a window of ``size`` consecutive
flows in file order (NetFlow v2 has no timestamps) and predicts the label of the window's last
flow. The evaluation rows are the *last* rows of the file, and a window never reaches across
a split boundary, so no evaluated flow is ever context for training and no training flow is
context for evaluation. (The reference code's unordered-window branch has an indexing bug;
it is not reproduced here.) Training batches are balanced: half end on an attack flow, half on
a benign one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flow_core.errors import ConfigError
from flow_nids.data.preprocess import EncodedFlows

__all__ = ["Split", "balanced_ends", "gather", "split_rows", "window_ends"]


@dataclass(frozen=True)
class Split:
    """Row ranges ``[start, stop)`` of the training, validation and test parts, in file order."""

    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]


def split_rows(rows: int, test_fraction: float, validation_fraction: float, size: int) -> Split:
    """Train first, then validation, then the last ``test_fraction`` of the rows as test.

    Raises:
        ConfigError: a fraction is out of range, or a part is too short for one window.
    """
    for name, value in (
        ("test_fraction", test_fraction),
        ("validation_fraction", validation_fraction),
    ):
        if not 0.0 < value < 0.5:
            raise ConfigError(f"{name} must be in (0, 0.5), got {value}")
    test_start = rows - max(round(rows * test_fraction), size)
    validation_start = test_start - max(round(rows * validation_fraction), size)
    split = Split((0, validation_start), (validation_start, test_start), (test_start, rows))
    for name, (start, stop) in (("train", split.train), ("validation", split.validation)):
        if stop - start < size:
            raise ConfigError(
                f"{rows} records are too few: the {name} part has {stop - start} rows, fewer"
                f" than one window of {size}"
            )
    return split


def window_ends(part: tuple[int, int], size: int) -> np.ndarray:
    """Indices of the last flow of every full window inside ``part``."""
    start, stop = part
    return np.arange(start + size - 1, stop, dtype=np.int64)


def gather(flows: EncodedFlows, ends: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The windows ending at ``ends``: numeric (B, size, F) and categorical (B, size, C)."""
    index = ends[:, None] + np.arange(1 - size, 1)[None, :]
    return flows.numeric[index], flows.categorical[index]


def balanced_ends(
    ends: np.ndarray, labels: np.ndarray, count: int, generator: torch.Generator
) -> np.ndarray:
    """``count`` window ends drawn with replacement, half on attack flows and half on benign
    ones (all from one class when the part has only one)."""
    attack = ends[labels[ends] == 1]
    benign = ends[labels[ends] == 0]
    pools = [p for p in (attack, benign) if len(p)]
    halves = [count // len(pools) + (i < count % len(pools)) for i in range(len(pools))]
    drawn = [
        pool[torch.randint(0, len(pool), (n,), generator=generator).numpy()]
        for pool, n in zip(pools, halves, strict=True)
    ]
    return np.concatenate(drawn)
