"""``core.toy2d``: learn a 2-D target from Gaussian noise, with any registered method.

The task trains a flow with a registered objective (default: conditional flow matching on the
linear path x_t = (1 − t) x0 + t x1, target x1 − x0), samples it with a registered sampler, and
measures the samples against *held-out* target samples (never the training draws) with the
sliced Wasserstein-2 distance and the RBF MMD². Two references put the numbers on a scale:
the same distances for the source N(0, I) (roughly what an untrained model gives) and for a
second independent target draw (what a perfect model would score, up to sampling noise; with a
few thousand points a model can land slightly below it by chance, sliced W2 especially).

The network follows the objective's ``model_kind``: a velocity MLP (``mlp``), an
average-velocity MLP for MeanFlow/SplitMeanFlow (``mlp-average``), or an affine-coupling
normalizing flow for maximum likelihood (``coupling-flow``). Objectives that fine-tune a
trained teacher (BOSS, which has a ``prepare(teacher, time_grid)`` method) first train a CFM
teacher, then straighten it for the sampler's steps on a Bellman-optimal grid. With
``reflow_rounds > 0`` the trained model generates (noise, sample) pairs and a student is
retrained on them ``reflow_rounds`` times (rectified flow; ``reflow_objective=rf-pp`` gives
the 2-RF++ recipe). Every stage checkpoints and resumes on its own.

Metrics: distances and references, NFE, the straightness S of velocity models (Liu et al.
2022, along their own Euler trajectories), and the held-out negative log-likelihood in nats
per sample for velocity models (instantaneous change of variables, exact divergence) and
invertible flows (exact change of variables).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from flow_core.datasets.toy2d import TOY2D_TARGETS, sample_toy2d
from flow_core.errors import ConfigError
from flow_core.metrics.distances import mmd_rbf, sliced_wasserstein
from flow_core.objectives.likelihood import gaussian_log_density
from flow_core.options import component, option, setting
from flow_core.recipes import (
    REFLOWS,
    GenerativeConfig,
    TrainedFlow,
    generative_components,
    train_generative,
)
from flow_core.training import TrainSettings, training

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.registry import Registry
    from flow_core.runner import RunContext

__all__ = ["Toy2D", "Toy2DConfig"]

_HELDOUT_SEED = 7_919
_EVAL_SEED = 104_729
DEFAULT_FLOWS = {
    "velocity": "mlp",
    "average-velocity": "mlp-average",
    "invertible": "coupling-flow",
}


@dataclass(frozen=True)
class Toy2DConfig(GenerativeConfig):
    """Configuration of ``core.toy2d`` (defaults train in well under a minute on a CPU).

    The generative fields (objective, flow, sampler, stages) are :class:`GenerativeConfig`'s;
    ``hidden`` and ``depth`` size the network; ``likelihood`` adds the held-out NLL.
    """

    target: str = "eight-gaussians"
    sample_steps: int = option("sampler", "steps", 50)
    hidden: int = option("flow", "hidden", 256)
    depth: int = option("flow", "depth", 3)
    reflow_objective: str = component("objective", "cfm", when=REFLOWS)
    reflow_pairs: int = setting(20000, when=REFLOWS)
    eval_samples: int = 2000
    likelihood: bool = True
    train: TrainSettings = training(
        steps=2000, batch_size=256, lr=1e-3, ema_decay=0.995, log_every=100
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.target not in TOY2D_TARGETS:
            raise ConfigError(
                f"unknown target {self.target!r}; expected one of: {', '.join(TOY2D_TARGETS)}"
            )
        for name in ("hidden", "depth"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


class Toy2D:
    """Train, sample and evaluate a flow on a 2-D target; see the module docstring."""

    Config: ClassVar[type[Toy2DConfig]] = Toy2DConfig

    def components(self, config: Toy2DConfig, registry: Registry) -> dict[str, str | None]:
        """The network and sampler follow the objective's model kind unless named."""
        return generative_components(config, registry, DEFAULT_FLOWS)

    def run(self, config: Toy2DConfig, ctx: RunContext) -> dict[str, float]:
        started = time.perf_counter()
        trained = self._train(config, ctx)
        train_seconds = time.perf_counter() - started
        return self._evaluate(ctx, config, trained, train_seconds)

    def evaluate(self, config: Toy2DConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the run's stages are loaded from their checkpoints, then evaluated."""
        return self.run(config, ctx)

    def sample(self, config: Toy2DConfig, ctx: RunContext, count: int) -> dict[str, torch.Tensor]:
        """``flow sample``: ``count`` samples (and the noise they came from), with a scatter."""
        trained = self._train(config, ctx)
        x0 = torch.randn(count, 2, generator=torch.Generator().manual_seed(_EVAL_SEED + ctx.seed))
        with torch.no_grad():
            model = trained.model.to(ctx.device).eval()
            samples = trained.sampler.sample(model, x0.to(ctx.device)).cpu()
        ctx.report.add_text(f"{count} samples of **{config.target}** ({trained.sampler.nfe} NFE).")
        path = ctx.report.add_figure("samples.png", "source noise and model samples")
        _scatter(path, [(x0, "source x0 ~ N(0, I)"), (samples, "samples")])
        return {"samples": samples, "noise": x0}

    @staticmethod
    def _train(config: Toy2DConfig, ctx: RunContext) -> TrainedFlow:
        def data(generator: torch.Generator) -> dict[str, torch.Tensor]:
            return {"x1": sample_toy2d(config.target, config.train.batch_size, generator)}

        def grid_noise() -> torch.Tensor:
            return torch.randn(256, 2, generator=torch.Generator().manual_seed(_EVAL_SEED - 1))

        return train_generative(
            ctx,
            config,
            data,
            lambda: ctx.component("flow", dim=2),
            sample_shape=(2,),
            grid_noise=grid_noise,
            pair_batch_size=4096,
        )

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(
        self,
        ctx: RunContext,
        config: Toy2DConfig,
        trained: TrainedFlow,
        train_seconds: float,
    ) -> dict[str, float]:
        kind, model, sampler = trained.model_kind, trained.model, trained.sampler
        n = config.eval_samples
        heldout = sample_toy2d(config.target, n, torch.Generator().manual_seed(_HELDOUT_SEED))
        second = sample_toy2d(config.target, n, torch.Generator().manual_seed(_HELDOUT_SEED + 1))
        x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(_EVAL_SEED + ctx.seed))
        model = model.to(ctx.device).eval()
        started = time.perf_counter()
        with torch.no_grad():
            samples = sampler.sample(model, x0.to(ctx.device)).cpu()
        sample_seconds = time.perf_counter() - started

        def distances(points: torch.Tensor) -> tuple[float, float]:
            generator = torch.Generator().manual_seed(_EVAL_SEED)
            return (
                sliced_wasserstein(points, heldout, generator=generator),
                mmd_rbf(points, heldout),
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
            "train_loss": trained.loss,
        }
        if kind == "velocity":
            from flow_core.objectives.reflow import straightness

            with torch.no_grad():
                metrics["straightness"] = straightness(model, x0[:500].to(ctx.device), steps=100)
        if config.likelihood and kind in ("velocity", "invertible"):
            metrics["heldout_nll"] = _negative_log_likelihood(model, kind, heldout[:500], ctx)
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
        stages = (
            ""
            if not config.reflow_rounds
            else f", then {config.reflow_rounds} reflow round(s) with {config.reflow_objective}"
        )
        ctx.report.add_text(
            f"Target **{config.target}**, objective **{config.objective}**{stages}, sampler"
            f" **{config.sampler or 'default'}** ({metrics['nfe']:.0f} NFE), {config.train.steps}"
            f" training steps of batch {config.train.batch_size}. Distances are to"
            f" {config.eval_samples} held-out target samples."
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
        extra: dict[str, float] = {
            k: metrics[k] for k in ("straightness", "heldout_nll") if k in metrics
        }
        if extra:
            ctx.report.add_table("Path straightness and held-out NLL (nats/sample)", [extra])
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


def _negative_log_likelihood(
    model: nn.Module, kind: str, x: torch.Tensor, ctx: RunContext
) -> float:
    x = x.to(ctx.device)
    if kind == "invertible":
        with torch.no_grad():
            z, logdet = model(x)
        return float(-(gaussian_log_density(z) + logdet).mean())
    from flow_core.samplers.likelihood import log_likelihood

    with torch.no_grad():
        log_p, _ = log_likelihood(model, x, exact=True)
    return float(-log_p.mean())


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
