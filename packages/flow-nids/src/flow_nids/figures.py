"""Figures of the nids tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["confusion_figure"]


def confusion_figure(path: Path, counts: np.ndarray, title: str) -> None:
    """Save the 2x2 confusion matrix ``[[TN, FP], [FN, TP]]`` as a PNG, counts and row shares."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2, 3.6))
    axes = figure.subplots()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    names = ["benign", "attack"]
    axes.set_xticks([0, 1], names)
    axes.set_yticks([0, 1], names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for i in range(2):
        for j in range(2):
            colour = "white" if shares[i, j] > 0.6 else "black"
            axes.text(
                j, i, f"{counts[i, j]}\n{shares[i, j]:.1%}", ha="center", va="center", color=colour
            )
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
