"""Detection metrics for binary (benign / attack) verdicts.

With TP, FP, TN, FN the confusion counts: precision ``TP/(TP+FP)``, recall ``TP/(TP+FN)``,
F1 ``2PR/(P+R)``, balanced accuracy ``(TPR + TNR)/2``. F1 is always reported beside
(balanced) accuracy: with few attacks balanced accuracy can look excellent while precision is
poor. Per-attack recall is the share of each attack class's flows flagged as attacks.
"""

from __future__ import annotations

import numpy as np

__all__ = ["binary_metrics", "confusion", "per_attack_recall"]


def confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The 2x2 counts ``[[TN, FP], [FN, TP]]`` (rows: truth benign/attack)."""
    truth, predicted = np.asarray(truth).astype(bool), np.asarray(predicted).astype(bool)
    return np.array(
        [
            [np.sum(~truth & ~predicted), np.sum(~truth & predicted)],
            [np.sum(truth & ~predicted), np.sum(truth & predicted)],
        ],
        dtype=np.int64,
    )


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else 0.0


def binary_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """F1, balanced accuracy, precision, recall, accuracy and the four counts."""
    (tn, fp), (fn, tp) = confusion(truth, predicted)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "f1": _ratio(2 * precision * recall, precision + recall),
        "balanced_accuracy": 0.5 * (recall + _ratio(tn, tn + fp)),
        "precision": precision,
        "recall": recall,
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }


def per_attack_recall(attacks: np.ndarray, predicted: np.ndarray, benign: str) -> dict[str, float]:
    """For every attack class present, the share of its flows predicted as attacks."""
    attacks, predicted = np.asarray(attacks), np.asarray(predicted).astype(bool)
    return {
        str(name): float(predicted[attacks == name].mean())
        for name in sorted(set(attacks.tolist()) - {benign})
    }
