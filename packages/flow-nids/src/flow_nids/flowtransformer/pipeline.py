"""FlowTransformer end to end: split and preprocess records, train through flow-core's loop,
and score windows.

The split is the paper's leakage-free one (:mod:`flow_nids.data.windows`): the last rows of
the file are the test part, the preprocessing is fitted on the training part only, and every
window lies inside one part. Training batches are class-balanced windows; the objective is
:func:`~flow_nids.flowtransformer.model.balanced_bce`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from flow_core.training import TrainSettings, train
from flow_nids.data.loader import NetflowTable
from flow_nids.data.preprocess import EncodedFlows, Preprocessor
from flow_nids.data.schema import BENIGN
from flow_nids.data.windows import Split, balanced_ends, gather, split_rows, window_ends
from flow_nids.flowtransformer.model import FlowTransformer, balanced_bce
from flow_nids.metrics import binary_metrics

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["Prepared", "class_counts", "prepare", "score_windows", "train_model"]


@dataclass(frozen=True)
class Prepared:
    """Records split, preprocessed (fitted on the training part) and labelled."""

    table: NetflowTable
    split: Split
    preprocessor: Preprocessor
    flows: EncodedFlows
    labels: np.ndarray
    attacks: np.ndarray
    window: int

    def ends(self, part: str) -> np.ndarray:
        """Window ends of ``part`` (``train``, ``validation`` or ``test``)."""
        return window_ends(getattr(self.split, part), self.window)


def prepare(
    table: NetflowTable,
    window: int,
    test_fraction: float,
    validation_fraction: float,
    top_k: int,
) -> Prepared:
    """Split ``table`` in file order and fit the preprocessing on its training part."""
    split = split_rows(len(table.frame), test_fraction, validation_fraction, window)
    start, stop = split.train
    preprocessor = Preprocessor(top_k=top_k).fit(table.frame.iloc[start:stop])
    flows = preprocessor.transform(table.frame)
    return Prepared(table, split, preprocessor, flows, table.labels, table.attacks, window)


def class_counts(prepared: Prepared) -> list[dict[str, object]]:
    """Flows per class in each part (whole classes can be absent from the test part)."""
    rows = []
    names = sorted(set(prepared.attacks.tolist()), key=lambda n: (n != BENIGN, n))
    for name in names:
        row: dict[str, object] = {"class": name}
        for part in ("train", "validation", "test"):
            start, stop = getattr(prepared.split, part)
            row[part] = int(np.sum(prepared.attacks[start:stop] == name))
        rows.append(row)
    return rows


def _tensors(prepared: Prepared, ends: np.ndarray) -> dict[str, torch.Tensor]:
    numeric, categorical = gather(prepared.flows, ends, prepared.window)
    return {
        "numeric": torch.from_numpy(numeric),
        "categorical": torch.from_numpy(categorical),
        "label": torch.from_numpy(prepared.labels[ends].astype(np.int64)),
    }


@torch.no_grad()
def score_windows(
    model: torch.nn.Module,
    flows: EncodedFlows,
    ends: np.ndarray,
    window: int,
    device: torch.device,
    batch: int = 2048,
) -> np.ndarray:
    """P(attack) of the last flow of each window ending at ``ends``."""
    model.eval()
    scores = []
    for first in range(0, len(ends), batch):
        numeric, categorical = gather(flows, ends[first : first + batch], window)
        logits = model(
            torch.from_numpy(numeric).to(device), torch.from_numpy(categorical).to(device)
        )
        scores.append(torch.sigmoid(logits.float()).cpu().numpy())
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Trained:
    """The trained model, its training time and its last loss."""

    model: FlowTransformer
    seconds: float
    loss: float


def train_model(
    ctx: RunContext,
    prepared: Prepared,
    model: FlowTransformer,
    settings: TrainSettings,
    stage: str = "",
) -> Trained:
    """Train ``model`` on balanced windows of the training part with flow-core's loop; the
    validation part's F1 is logged every ``settings.eval_every`` steps."""
    train_ends = prepared.ends("train")
    validation_ends = prepared.ends("validation")

    def next_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
        chosen = balanced_ends(train_ends, prepared.labels, settings.batch_size, generator)
        return _tensors(prepared, chosen)

    def eval_fn(trained: torch.nn.Module, step: int) -> dict[str, float]:
        device = next(trained.parameters()).device
        scores = score_windows(trained, prepared.flows, validation_ends, prepared.window, device)
        trained.train()
        metrics = binary_metrics(prepared.labels[validation_ends], scores >= 0.5)
        return {"f1": metrics["f1"], "balanced_accuracy": metrics["balanced_accuracy"]}

    started = time.perf_counter()
    result = train(ctx, model, balanced_bce, next_batch, settings, eval_fn=eval_fn, stage=stage)
    seconds = time.perf_counter() - started
    trained = result.eval_model
    assert isinstance(trained, FlowTransformer)
    return Trained(trained, seconds, float(result.metrics.get("loss", float("nan"))))
