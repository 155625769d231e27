"""Figures of the PTA task: corner-style marginals and the recovered strain spectrum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np

__all__ = ["corner", "strain_spectrum"]


def corner(
    path: Path,
    names: Sequence[str],
    samples: Mapping[str, np.ndarray],
    truth: Mapping[str, float] | None = None,
    bins: int = 30,
) -> None:
    """1-D histograms on the diagonal and 2-D contours below it, one colour per sample set
    (``label -> (n, len(names))``); injected values as dashed lines."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dim = len(names)
    fig, axes = plt.subplots(dim, dim, figsize=(2.4 * dim + 1, 2.4 * dim + 1), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i in range(dim):
        for j in range(dim):
            ax = axes[i][j]
            if j > i:
                ax.axis("off")
                continue
            for k, (label, draws) in enumerate(samples.items()):
                colour = colours[k % len(colours)]
                if i == j:
                    ax.hist(
                        draws[:, i], bins, density=True, histtype="step", color=colour, label=label
                    )
                else:
                    hist, xe, ye = np.histogram2d(draws[:, j], draws[:, i], bins=bins // 2)
                    levels = _levels(hist)
                    if len(levels) > 1:
                        ax.contour(
                            (xe[1:] + xe[:-1]) / 2,
                            (ye[1:] + ye[:-1]) / 2,
                            hist.T,
                            levels=levels,
                            colors=colour,
                            linewidths=1,
                        )
            if truth is not None and names[j] in truth:
                ax.axvline(truth[names[j]], color="k", ls="--", lw=0.8)
                if i != j and names[i] in truth:
                    ax.axhline(truth[names[i]], color="k", ls="--", lw=0.8)
            if i == dim - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _levels(hist: np.ndarray) -> list[float]:
    """Histogram heights enclosing 90% and 50% of the mass, increasing."""
    flat = np.sort(hist.ravel())[::-1]
    cumulative = np.cumsum(flat) / max(flat.sum(), 1.0)
    levels = sorted({float(flat[np.searchsorted(cumulative, q)]) for q in (0.9, 0.5)})
    return [level for level in levels if level > 0]


def strain_spectrum(
    path: Path,
    freqs: np.ndarray,
    bands: Mapping[str, np.ndarray],
    truth: np.ndarray | None = None,
) -> None:
    """Characteristic strain against frequency: per model the median and 5-95% band of
    ``h_c(f)`` over posterior draws (``label -> (n, n_freq)``), and the injected ``h_c``."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    uppers = []
    for label, hc in bands.items():
        low, mid, high = np.percentile(hc, [5, 50, 95], axis=0)
        (line,) = ax.loglog(freqs, mid, label=label)
        ax.fill_between(freqs, low, high, alpha=0.2, color=line.get_color())
        uppers.append(high)
    if truth is not None:
        ax.loglog(freqs, truth, "k--", label="injected")
    # A model the data rule out has a band reaching down to its prior's floor (tens of
    # decades); show four decades below the highest upper edge, where the signal lives.
    top = float(
        np.max([np.max(u) for u in uppers] + ([np.max(truth)] if truth is not None else []))
    )
    if np.isfinite(top) and top > 0:
        ax.set_ylim(top * 1e-4, top * 3.0)
    ax.set_xlabel("frequency f (Hz)")
    ax.set_ylabel("characteristic strain h_c(f)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
