"""FlowTransformer's preprocessing of NetFlow records, fitted on the training split only.

Manocchio et al. 2023 (arXiv:2304.14746), section on input preprocessing:

- numeric feature ``x``: ``x' = log(x - min + 1) / log(max - min + 2)`` with ``min`` and
  ``max`` of the training split (the reference code's ``log(range + 1)`` denominator, shifted
  by one so a constant column maps to 0 instead of dividing by zero), clipped to ``[0, 1]``
  so values beyond the training range saturate;
- categorical feature: its ``top_k`` most frequent levels in the training split map to
  ``1..top_k`` (most frequent first) and every other level, seen or unseen, to ``0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flow_core.errors import ConfigError
from flow_nids.data.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES

__all__ = ["EncodedFlows", "Preprocessor"]


@dataclass(frozen=True)
class EncodedFlows:
    """Preprocessed records: ``numeric`` (N, 28) float32 in [0, 1] and ``categorical``
    (N, 9) int64 level codes in ``0..top_k``."""

    numeric: np.ndarray
    categorical: np.ndarray


@dataclass
class Preprocessor:
    """Fitted scaling and level tables; see the module docstring."""

    top_k: int = 32
    numeric_features: tuple[str, ...] = NUMERIC_FEATURES
    categorical_features: tuple[str, ...] = CATEGORICAL_FEATURES
    minimum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    maximum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    levels: list[np.ndarray] = field(default_factory=list)

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        """Fit on the training split's records only."""
        if len(frame) == 0:
            raise ConfigError("cannot fit the preprocessing on an empty training split")
        numbers = frame[list(self.numeric_features)].to_numpy(dtype=np.float64)
        self.minimum, self.maximum = numbers.min(axis=0), numbers.max(axis=0)
        self.levels = []
        for column in self.categorical_features:
            counts = frame[column].value_counts(sort=True)
            self.levels.append(counts.index.to_numpy(dtype=np.float64)[: self.top_k])
        return self

    @property
    def vocabulary(self) -> int:
        """Codes per categorical feature, ``top_k + 1`` (0 is "other")."""
        return self.top_k + 1

    def transform(self, frame: pd.DataFrame) -> EncodedFlows:
        """Scale and code ``frame`` with the fitted tables."""
        if not self.levels:
            raise RuntimeError("Preprocessor.transform called before fit")
        numbers = frame[list(self.numeric_features)].to_numpy(dtype=np.float64)
        shifted = np.maximum(numbers - self.minimum, 0.0)
        scaled = np.log1p(shifted) / np.log(self.maximum - self.minimum + 2.0)
        codes = np.zeros((len(frame), len(self.categorical_features)), dtype=np.int64)
        for j, (column, levels) in enumerate(
            zip(self.categorical_features, self.levels, strict=True)
        ):
            values = frame[column].to_numpy(dtype=np.float64)
            lookup = pd.Index(levels).get_indexer(values)
            codes[:, j] = lookup + 1  # -1 (not a top level) becomes 0
        return EncodedFlows(np.clip(scaled, 0.0, 1.0).astype(np.float32), codes)

    def state(self) -> dict[str, list[float] | list[list[float]] | int]:
        """A JSON-able description, to be saved with a run and read by :meth:`from_state`."""
        return {
            "top_k": self.top_k,
            "minimum": self.minimum.tolist(),
            "maximum": self.maximum.tolist(),
            "levels": [level.tolist() for level in self.levels],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """The preprocessor :meth:`state` described."""
        return cls(
            top_k=int(state["top_k"]),
            minimum=np.asarray(state["minimum"], dtype=np.float64),
            maximum=np.asarray(state["maximum"], dtype=np.float64),
            levels=[np.asarray(level, dtype=np.float64) for level in state["levels"]],
        )
