"""Figures of the robotics tasks: success against NFE and latency, and a rollout strip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["rollout_strip", "success_vs_nfe", "trajectory_plot"]


def success_vs_nfe(path: Path, rows: Sequence[Mapping[str, float | str]]) -> None:
    """Two panels: success rate (with its interval) against NFE, and against latency (ms).

    ``rows`` hold ``head``, ``nfe``, ``success``, ``success_low``, ``success_high`` and
    ``latency_ms``; one line per head.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.5))
    by_nfe, by_latency = figure.subplots(1, 2)
    for head in dict.fromkeys(str(r["head"]) for r in rows):
        mine = sorted((r for r in rows if r["head"] == head), key=lambda r: float(r["nfe"]))
        nfe = np.array([float(r["nfe"]) for r in mine])
        success = np.array([float(r["success"]) for r in mine])
        low = success - np.array([float(r["success_low"]) for r in mine])
        high = np.array([float(r["success_high"]) for r in mine]) - success
        by_nfe.errorbar(nfe, success, yerr=[low, high], marker="o", capsize=3, label=head)
        latency = [float(r["latency_ms"]) for r in mine]
        by_latency.plot(latency, success, marker="o", label=head)
    by_nfe.set(xscale="log", xlabel="NFE (network calls per chunk)", ylabel="success rate")
    by_latency.set(xscale="log", xlabel="latency per chunk (ms, batch 1)", ylabel="success rate")
    for axes in (by_nfe, by_latency):
        axes.set_ylim(-0.05, 1.05)
        axes.grid(alpha=0.3)
    by_nfe.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def rollout_strip(path: Path, frames: Sequence[np.ndarray], title: str) -> None:
    """Rendered frames of one rollout side by side."""
    from matplotlib.figure import Figure

    shown = list(frames)[:8]
    figure = Figure(figsize=(2.0 * len(shown), 2.3))
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for index, (ax, frame) in enumerate(zip(axes, shown, strict=True)):
        ax.imshow(frame)
        ax.set_axis_off()
        ax.set_title(f"frame {index}", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def trajectory_plot(
    path: Path, trajectories: Sequence[np.ndarray], modes: Sequence[int], title: str
) -> None:
    """Hand paths seen from above (x, y), coloured by the side each episode went round on;
    the state-based stand-in for a rendered strip."""
    from matplotlib.figure import Figure

    colours = {-1: "tab:blue", 0: "tab:grey", 1: "tab:orange"}
    names = {-1: "left", 0: "straight", 1: "right"}
    figure = Figure(figsize=(5, 4))
    axes = figure.subplots()
    seen: set[int] = set()
    for observations, mode in zip(trajectories, modes, strict=True):
        label = names[mode] if mode not in seen else None
        seen.add(mode)
        axes.plot(observations[:, 0], observations[:, 1], color=colours[mode], lw=1, label=label)
        axes.plot(observations[0, 0], observations[0, 1], "k.", ms=4)
    axes.set(xlabel="hand x (m)", ylabel="hand y (m)", title=title)
    axes.set_aspect("equal", adjustable="datalim")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
