"""Figures of the benchmark page."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from core_bench.common import Settings, Target
from core_bench.zoo import Zoo

__all__ = ["trajectories"]


def _paths(model: torch.nn.Module, x0: Tensor, points: int) -> Tensor:
    from torchdiffeq import odeint

    times = torch.linspace(0.0, 1.0, points)

    def f(t: Tensor, x: Tensor) -> Tensor:
        out: Tensor = model(x, t.expand(x.shape[0]))
        return out

    with torch.no_grad():
        return odeint(f, x0, times, rtol=1e-5, atol=1e-5, method="dopri5")


def trajectories(settings: Settings, zoo: Zoo, target: Target, path: Path) -> Path:
    """Trajectories of CFM, OT-CFM, W-CFM and 2-RF from the same noise, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x0 = torch.randn(200, target.dim, generator=torch.Generator().manual_seed(5))
    kinds = [("cfm", "CFM"), ("ot-cfm", "OT-CFM"), ("w-cfm", "W-CFM"), ("2-rf", "2-RF (reflow)")]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 4), squeeze=False)
    for ax, (kind, title) in zip(axes[0], kinds, strict=True):
        paths = _paths(zoo.get(target, kind).model, x0, 12).numpy()
        for i in range(paths.shape[1]):
            ax.plot(paths[:, i, 0], paths[:, i, 1], color="tab:blue", alpha=0.45, lw=0.8)
        ax.scatter(paths[0, :, 0], paths[0, :, 1], s=3, color="black", label="x0 (noise)")
        ax.scatter(paths[-1, :, 0], paths[-1, :, 1], s=3, color="tab:red", label="x1 (sample)")
        ax.set_title(title)
        ax.set_xlim(-3.2, 3.2)
        ax.set_ylim(-3.2, 3.2)
        ax.set_aspect("equal")
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
