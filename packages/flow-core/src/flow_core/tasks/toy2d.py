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

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from flow_core.datasets.toy2d import TOY2D_TARGETS, sample_toy2d
from flow_core.errors import ConfigError
from flow_core.metrics.distances import mmd_rbf, sliced_wasserstein
from flow_core.objectives.likelihood import gaussian_log_density
from flow_core.training import TrainSettings, train

if TYPE_CHECKING:
    from pathlib import Path

    from flow_core.runner import RunContext

__all__ = ["Toy2D", "Toy2DConfig"]

_HELDOUT_SEED = 7_919
_EVAL_SEED = 104_729
_PAIRS_SEED = 15_485_863
DEFAULT_FLOW = {"velocity": "mlp", "average-velocity": "mlp-average", "invertible": "coupling-flow"}
DEFAULT_SAMPLER = {"velocity": "euler", "average-velocity": "few-step", "invertible": "inverse"}


@dataclass(frozen=True)
class Toy2DConfig:
    """Configuration of ``core.toy2d`` (defaults train in well under a minute on a CPU).

    ``flow`` and ``sampler`` default to what the objective's model kind needs; ``sample_steps``
    is the number of steps of fixed-step and few-step samplers; ``grid`` is their time grid
    (``uniform``, ``shifted`` or ``bellman``).
    """

    target: str = "eight-gaussians"
    objective: str = "cfm"
    flow: str | None = None
    sampler: str | None = None
    sample_steps: int = 50
    grid: str = "uniform"
    rtol: float = 1e-5
    atol: float = 1e-5
    hidden: int = 256
    depth: int = 3
    steps: int = 2000
    finetune_steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    reflow_rounds: int = 0
    reflow_objective: str = "cfm"
    reflow_pairs: int = 20000
    reflow_sampler: str = "dopri5"
    eval_samples: int = 2000
    likelihood: bool = True
    log_every: int = 100
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        if self.target not in TOY2D_TARGETS:
            raise ConfigError(
                f"unknown target {self.target!r}; expected one of: {', '.join(TOY2D_TARGETS)}"
            )
        for name in (
            "sample_steps",
            "hidden",
            "depth",
            "steps",
            "finetune_steps",
            "batch_size",
            "eval_samples",
            "reflow_pairs",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.reflow_rounds < 0:
            raise ConfigError(f"reflow_rounds must be >= 0, got {self.reflow_rounds}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 disables), got {self.ema_decay}")


class Toy2D:
    """Train, sample and evaluate a flow on a 2-D target; see the module docstring."""

    Config: ClassVar[type[Toy2DConfig]] = Toy2DConfig

    def __init__(self) -> None:
        self.last_loss = float("nan")  # final training loss of the last stage trained

    def run(self, config: Toy2DConfig, ctx: RunContext) -> dict[str, float]:
        objective = ctx.build("objective", config.objective)
        kind = objective.model_kind
        reflow_objective = ctx.build("objective", config.reflow_objective)
        if config.reflow_rounds and reflow_objective.model_kind != "velocity":
            raise ConfigError(
                f"reflow_objective {config.reflow_objective!r} trains a"
                f" {reflow_objective.model_kind} model; reflow needs a velocity objective such"
                " as 'cfm' or 'rf-pp'"
            )
        if config.reflow_rounds and kind != "velocity":
            raise ConfigError(
                f"reflow needs a velocity model; objective {config.objective!r} "
                f"trains a {kind} model"
            )
        sampler = self._sampler(ctx, config, config.sampler or DEFAULT_SAMPLER[kind], kind)
        started = time.perf_counter()

        def data(generator: torch.Generator) -> dict[str, torch.Tensor]:
            return {"x1": sample_toy2d(config.target, config.batch_size, generator)}

        if callable(getattr(objective, "prepare", None)):
            teacher = self._train(
                ctx, config, kind, ctx.build("objective", "cfm"), data, config.steps, "teacher"
            )
            grid = self._finetune_grid(config, sampler, teacher)
            objective.prepare(teacher, grid)
            sampler = self._sampler(ctx, config, "euler", kind, time_grid=grid)
            model = self._train(
                ctx, config, kind, objective, data, config.finetune_steps, "finetune", init=teacher
            )
        else:
            model = self._train(ctx, config, kind, objective, data, config.steps, "")
        for round_ in range(1, config.reflow_rounds + 1):
            pairs = self._pairs(ctx, config, model)
            model = self._train(
                ctx,
                config,
                kind,
                reflow_objective,
                pairs,
                config.steps,
                f"reflow-{round_}",
                init=model,
            )
        train_seconds = time.perf_counter() - started
        return self._evaluate(ctx, config, kind, model, sampler, train_seconds)

    # -- building blocks ------------------------------------------------------------------

    @staticmethod
    def _sampler(ctx: RunContext, config: Toy2DConfig, name: str, kind: str, **extra: Any) -> Any:
        options: dict[str, Any] = {
            "steps": config.sample_steps,
            "rtol": config.rtol,
            "atol": config.atol,
            "grid": config.grid,
            **extra,
        }
        if "time_grid" in extra:
            options.pop("grid")
        return ctx.build_for_model("sampler", name, kind, **options)

    def _train(
        self,
        ctx: RunContext,
        config: Toy2DConfig,
        kind: str,
        objective: Any,
        data: Callable[[torch.Generator], dict[str, torch.Tensor]],
        steps: int,
        stage: str,
        init: nn.Module | None = None,
    ) -> nn.Module:
        torch.manual_seed(ctx.seed)
        if init is not None:
            model = copy.deepcopy(init).train()
        else:
            model = ctx.build(
                "flow",
                config.flow or DEFAULT_FLOW[kind],
                dim=2,
                hidden=config.hidden,
                depth=config.depth,
            )
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        settings = TrainSettings(
            steps=steps,
            grad_clip=config.grad_clip if config.grad_clip > 0 else None,
            ema_decay=config.ema_decay or None,
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
        )
        result = train(ctx, model, optimizer, objective, data, settings, stage=stage)
        self.last_loss = result.metrics.get("loss", float("nan"))
        return result.eval_model

    @staticmethod
    def _finetune_grid(config: Toy2DConfig, sampler: Any, teacher: nn.Module) -> torch.Tensor:
        from flow_core.samplers.grids import bellman_time_grid, shifted_grid, uniform_grid

        if config.grid == "uniform":
            return uniform_grid(config.sample_steps)
        if config.grid == "shifted":
            return shifted_grid(config.sample_steps, getattr(sampler, "shift", 3.0))
        x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(_EVAL_SEED - 1))
        with torch.no_grad():
            return bellman_time_grid(teacher, x0, config.sample_steps, max(64, config.sample_steps))

    def _pairs(
        self, ctx: RunContext, config: Toy2DConfig, teacher: nn.Module
    ) -> Callable[[torch.Generator], dict[str, torch.Tensor]]:
        """(noise, teacher sample) pairs; the student's batches are drawn from them."""
        from flow_core.objectives.reflow import generate_pairs

        generator = torch.Generator().manual_seed(_PAIRS_SEED + ctx.seed)
        pair_sampler = self._sampler(ctx, config, config.reflow_sampler, "velocity")
        teacher = teacher.to(ctx.device).eval()
        pairs = generate_pairs(teacher, pair_sampler, config.reflow_pairs, 4096, (2,), generator)
        x0, x1 = pairs["x0"].cpu(), pairs["x1"].cpu()

        def batches(generator: torch.Generator) -> dict[str, torch.Tensor]:
            index = torch.randint(0, x0.shape[0], (config.batch_size,), generator=generator)
            return {"x0": x0[index], "x1": x1[index]}

        return batches

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate(
        self,
        ctx: RunContext,
        config: Toy2DConfig,
        kind: str,
        model: nn.Module,
        sampler: Any,
        train_seconds: float,
    ) -> dict[str, float]:
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
            "train_loss": self.last_loss,
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
            f" **{config.sampler or 'default'}** ({metrics['nfe']:.0f} NFE), {config.steps}"
            f" training steps of batch {config.batch_size}. Distances are to"
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
