"""``core.toy2d``: learn a 2-D target from Gaussian noise with a velocity field.

The task trains an MLP velocity field with a registered objective (default: conditional flow
matching on the linear path, x_t = (1 - t) x0 + t x1, target x1 - x0), samples with a
registered sampler, and measures how close the samples are to *held-out* target samples
(never the training draws) with the sliced Wasserstein-2 distance and the RBF MMD². Two
references put the numbers on a scale: the same distances from the source distribution
N(0, I) (what an untrained model would roughly give) and from a second independent target
sample (what a perfect model would score up to sampling noise; with a few thousand points a
model can land slightly below it by chance, sliced W2 especially).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from flow_core.datasets.toy2d import TOY2D_TARGETS, sample_toy2d
from flow_core.errors import ConfigError
from flow_core.metrics.distances import mmd_rbf, sliced_wasserstein
from flow_core.training import TrainSettings, train

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.runner import RunContext

__all__ = ["Toy2D", "Toy2DConfig"]

_HELDOUT_SEED = 7_919
_EVAL_SEED = 104_729


@dataclass(frozen=True)
class Toy2DConfig:
    """Configuration of ``core.toy2d`` (defaults train in well under a minute on a CPU)."""

    target: str = "eight-gaussians"
    flow: str = "mlp"
    objective: str = "cfm"
    sampler: str = "euler"
    sample_steps: int = 50
    rtol: float = 1e-5
    atol: float = 1e-5
    hidden: int = 256
    depth: int = 3
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    grad_clip: float = 1.0
    ema_decay: float = 0.0
    eval_samples: int = 2000
    log_every: int = 100
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.target not in TOY2D_TARGETS:
            raise ConfigError(
                f"unknown target {self.target!r}; expected one of: {', '.join(TOY2D_TARGETS)}"
            )
        for name in ("sample_steps", "hidden", "depth", "steps", "batch_size", "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 disables), got {self.ema_decay}")


class Toy2D:
    """Train, sample and evaluate a flow on a 2-D target; see the module docstring."""

    Config: ClassVar[type[Toy2DConfig]] = Toy2DConfig

    def run(self, config: Toy2DConfig, ctx: RunContext) -> dict[str, float]:
        model = ctx.build("flow", config.flow, dim=2, hidden=config.hidden, depth=config.depth)
        objective = ctx.build("objective", config.objective)
        sampler = ctx.build(
            "sampler",
            config.sampler,
            steps=config.sample_steps,
            rtol=config.rtol,
            atol=config.atol,
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

        def next_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
            return {"x1": sample_toy2d(config.target, config.batch_size, generator)}

        settings = TrainSettings(
            steps=config.steps,
            grad_clip=config.grad_clip if config.grad_clip > 0 else None,
            ema_decay=config.ema_decay or None,
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
        )
        started = time.perf_counter()
        result = train(ctx, model, optimizer, objective, next_batch, settings)
        train_seconds = time.perf_counter() - started

        n = config.eval_samples
        heldout = sample_toy2d(config.target, n, torch.Generator().manual_seed(_HELDOUT_SEED))
        second = sample_toy2d(config.target, n, torch.Generator().manual_seed(_HELDOUT_SEED + 1))
        eval_gen = torch.Generator().manual_seed(_EVAL_SEED + ctx.seed)
        x0 = torch.randn(n, 2, generator=eval_gen)
        started = time.perf_counter()
        with torch.no_grad():
            samples = sampler.sample(result.eval_model, x0.to(ctx.device)).cpu()
        sample_seconds = time.perf_counter() - started

        def distances(points: torch.Tensor) -> tuple[float, float]:
            generator = torch.Generator().manual_seed(_EVAL_SEED)
            return sliced_wasserstein(points, heldout, generator=generator), mmd_rbf(
                points, heldout
            )

        sw, mmd = distances(samples)
        sw_source, mmd_source = distances(x0)
        sw_second, mmd_second = distances(second)
        metrics = {
            "sliced_w2": sw,
            "mmd": mmd,
            "sliced_w2_source": sw_source,
            "mmd_source": mmd_source,
            "sliced_w2_second_draw": sw_second,
            "mmd_second_draw": mmd_second,
            "sliced_w2_ratio_to_source": sw / sw_source,
            "nfe": float(sampler.nfe),
            "train_loss": result.metrics.get("loss", float("nan")),
        }
        if ctx.is_main:
            self._report(ctx, config, metrics, x0, samples, heldout, train_seconds, sample_seconds)
        return metrics

    @staticmethod
    def _report(
        ctx: RunContext,
        config: Toy2DConfig,
        metrics: dict[str, float],
        x0: torch.Tensor,
        samples: torch.Tensor,
        heldout: torch.Tensor,
        train_seconds: float,
        sample_seconds: float,
    ) -> None:
        ctx.report.add_text(
            f"Target **{config.target}**, objective **{config.objective}**, sampler"
            f" **{config.sampler}** ({metrics['nfe']:.0f} NFE), {config.steps} training steps"
            f" of batch {config.batch_size}. Distances are to {config.eval_samples} held-out"
            " target samples."
        )
        ctx.report.add_table(
            "Distance to held-out target samples",
            [
                {"samples": "model", "sliced W2": metrics["sliced_w2"], "MMD²": metrics["mmd"]},
                {
                    "samples": "source N(0, I) (reference)",
                    "sliced W2": metrics["sliced_w2_source"],
                    "MMD²": metrics["mmd_source"],
                },
                {
                    "samples": "second independent target draw (perfect-model level)",
                    "sliced W2": metrics["sliced_w2_second_draw"],
                    "MMD²": metrics["mmd_second_draw"],
                },
            ],
        )
        ctx.report.add_table(
            "Time (this machine; not part of metrics.json)",
            [{"training s": train_seconds, "sampling s": sample_seconds}],
        )
        path = ctx.report.add_figure(
            "samples.png", "source noise, model samples and held-out target samples"
        )
        _scatter(
            path,
            [
                (x0, "source x0 ~ N(0, I)"),
                (samples, f"samples ({metrics['nfe']:.0f} NFE)"),
                (heldout, f"held-out {config.target}"),
            ],
        )


def _scatter(path: Path, panels: list[tuple[torch.Tensor, str]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    everything = torch.cat([p for p, _ in panels])
    low = torch.quantile(everything, 0.005, dim=0).tolist()
    high = torch.quantile(everything, 0.995, dim=0).tolist()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
    for ax, (points, title) in zip(axes[0], panels, strict=True):
        ax.scatter(points[:, 0].numpy(), points[:, 1].numpy(), s=2, alpha=0.5)
        ax.set_title(title)
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
