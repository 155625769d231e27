"""Figures of ``physics.turbulence``: error against horizon, spectra, profiles and a strip of
vorticity snapshots (truth against each model)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flow_physics.turbulence.diagnostics import vorticity

__all__ = ["plot_errors", "plot_profiles", "plot_spectra", "plot_strip"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_errors(
    path: Path, errors: Mapping[str, torch.Tensor], interval: float, threshold: float
) -> None:
    """Mean relative L2 error of each model's rollout against simulated time."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for name, error in errors.items():
        t = np.arange(1, len(error) + 1) * interval
        ax.plot(t, np.clip(error.numpy(), 0, 10), label=name)
    ax.axhline(threshold, color="grey", ls="--", lw=1, label="divergence threshold")
    ax.set(xlabel="rollout time", ylabel="relative L2 error", yscale="log")
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_spectra(path: Path, truth: torch.Tensor, spectra: Mapping[str, torch.Tensor]) -> None:
    """log10 E(k) of the truth and of each model's rollout (k ≥ 1)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    k = np.arange(1, len(truth) + 1)
    ax.loglog(k, 10 ** truth.numpy(), "k", lw=2, label="solver (truth)")
    for name, spectrum in spectra.items():
        if len(spectrum) == len(truth):
            ax.loglog(k, 10 ** spectrum.numpy(), label=name)
    ax.loglog(k[2:], 10 ** truth[2].item() * (k[2:] / 3.0) ** -3.0, "k:", lw=1, label="k^-3")
    ax.set(xlabel="wavenumber k", ylabel="E(k)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_profiles(
    path: Path,
    truth: Mapping[str, torch.Tensor],
    predicted: Mapping[str, Mapping[str, torch.Tensor]],
) -> None:
    """Mean, rms and Reynolds-stress profiles against y: truth and each model."""
    plt = _pyplot()
    keys = list(truth)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.4), layout="constrained")
    for ax, key in zip(axes, keys, strict=True):
        y = np.arange(len(truth[key])) * (2 * np.pi / len(truth[key]))
        ax.plot(truth[key].numpy(), y, "k", lw=2, label="solver (truth)")
        for name, stats in predicted.items():
            ax.plot(stats[key].numpy(), y, label=name)
        ax.set(title=key.replace("uv", "<u'v'>"), ylabel="y")
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_strip(
    path: Path, fields: Mapping[str, torch.Tensor], times: list[int], interval: float
) -> None:
    """Vorticity snapshots (a mid-z slice of ω_z in 3-D) at the given rollout steps, one row per
    entry of ``fields`` (each ``[T + 1, C, *grid]``, the first the truth)."""
    plt = _pyplot()
    rows = list(fields)
    fig, axes = plt.subplots(
        len(rows),
        len(times),
        figsize=(1.9 * len(times), 1.9 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    first = next(iter(fields.values()))
    truth_w = _slice(vorticity(first[times].double()))
    limit = float(truth_w.abs().max())
    for r, name in enumerate(rows):
        w = _slice(vorticity(fields[name][times].double()))
        for c, t in enumerate(times):
            ax = axes[r, c]
            ax.imshow(w[c].T.numpy(), origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {t * interval:.1f}", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _slice(w: torch.Tensor) -> torch.Tensor:
    """2-D vorticity as is; the z component at mid-z of a 3-D vorticity."""
    if w.dim() == 5:
        return torch.nan_to_num(w[:, 2, :, :, w.shape[-1] // 2])
    return torch.nan_to_num(w)
