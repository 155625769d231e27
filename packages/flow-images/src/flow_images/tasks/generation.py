"""The image-generation task both ``images.digits`` and ``images.patches`` are made of.

A flow is trained on the train split with any registered objective (default: conditional
flow matching on the linear path x_t = (1 − t)·x0 + t·x1, target x1 − x0), sampled with any
registered sampler, and measured on the held-out test split by :mod:`flow_images.evaluation`
(Fréchet distance in a shipped feature network's space, precision and recall, and the class
accuracy of class-conditional samples). The stages follow the objective:

- ``boss`` (any objective with ``prepare(teacher, time_grid)``): a CFM teacher is trained,
  a Bellman-optimal grid of ``sample_steps`` steps is computed for it, and a copy of the teacher
  is straightened onto that grid (Nguyen et al. 2023, BOSS);
- ``sampler=flowturbo`` (or ``objective=flowturbo-refiner``): the trained velocity field is
  frozen and a small refiner is trained against it (Zhao et al. 2024, FlowTurbo);
- ``reflow_rounds = k``: the model generates (noise, sample) pairs and a student starting
  from it is retrained on them k times (Liu et al. 2022); ``reflow_objective=rf-pp`` is the
  2-RF++ recipe (Lee et al. 2024) with, when ``perceptual_weight > 0``, a perceptual term
  measured in the shipped feature network — a substitute for LPIPS, whose weights cannot be
  downloaded here.

BOSS and reflow learn from the teacher *with* classifier-free guidance (BOSS's Bellman grid
and reference trajectories, reflow's first pairs), so a class-conditional student carries the
guidance and is sampled without it: one network call per step instead of two.

Every stage is checkpointed and resumes on its own. Class-conditional velocity models (other
than reflow students) are sampled with classifier-free guidance of weight ``guidance_weight``
(w = 0: the conditional model, Ho & Salimans 2022).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.training import TrainSettings, train
from flow_images.data import ImageData
from flow_images.evaluation import evaluate_generation, with_guidance
from flow_images.features import load_feature_net
from flow_images.perceptual import FeaturePerceptual

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["GenerationConfig", "ImageGeneration"]

_PAIRS_SEED = 15_485_863
_GRID_SEED = 104_723
DEFAULT_SAMPLER = {"velocity": "euler", "average-velocity": "few-step", "invertible": "inverse"}
Batches = Callable[[torch.Generator], dict[str, Tensor]]


@dataclass(frozen=True)
class GenerationConfig:
    """Fields shared by the image tasks (each task sets its own defaults).

    ``flow`` defaults to the network for the objective's model kind (``unet``, ``unet-average``
    or ``coupling-flow``); ``base_channels`` sizes a U-Net, ``width``/``depth``/``patch_size``
    a DiT (each network takes the options it understands). ``sample_steps`` and ``grid`` set
    fixed-step and few-step samplers; ``heun_steps``/``pseudo_steps``/``refiner_steps`` set
    FlowTurbo's schedule. ``nfe_sweep`` lists the NFE budgets of the quality-against-NFE plot
    and ``guidance_sweep`` the guidance weights of the quality-against-guidance plot (a
    class-conditional velocity model sampled with guidance; empty: no sweep).
    """

    objective: str = "cfm"
    flow: str | None = None
    sampler: str | None = None
    sample_steps: int = 16
    grid: str = "uniform"
    rtol: float = 1e-4
    atol: float = 1e-4
    guidance_weight: float = 0.0
    cond_dropout: float = 0.1
    base_channels: int = 16
    width: int = 128
    depth: int = 4
    patch_size: int = 2
    steps: int = 3000
    finetune_steps: int = 1000
    batch_size: int = 128
    lr: float = 2e-3
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    reflow_rounds: int = 0
    reflow_objective: str = "rf-pp"
    reflow_pairs: int = 5000
    reflow_sampler: str = "dopri5"
    perceptual_weight: float = 1.0
    refiner_width: int = 16
    heun_steps: int = 1
    pseudo_steps: int = 5
    refiner_steps: int = 3
    compile: bool = False
    eval_samples: int = 1000
    nfe_sweep: tuple[int, ...] = (1, 2, 4, 8, 16)
    guidance_sweep: tuple[float, ...] = ()
    log_every: int = 100
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        for name in (
            "sample_steps",
            "base_channels",
            "width",
            "depth",
            "patch_size",
            "steps",
            "finetune_steps",
            "batch_size",
            "reflow_pairs",
            "refiner_width",
            "eval_samples",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("reflow_rounds", "heun_steps", "pseudo_steps", "refiner_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if any(n < 1 for n in self.nfe_sweep):
            raise ConfigError(f"nfe_sweep entries must be >= 1, got {self.nfe_sweep}")
        if any(not 0.0 <= w < float("inf") for w in self.guidance_sweep):
            raise ConfigError(
                f"guidance_sweep entries must be finite and >= 0, got {self.guidance_sweep}"
            )
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 disables), got {self.ema_decay}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if self.perceptual_weight < 0:
            raise ConfigError(f"perceptual_weight must be >= 0, got {self.perceptual_weight}")


class ImageGeneration:
    """Train, sample and evaluate a flow on an image dataset; see the module docstring.

    Subclasses say which data to load (:meth:`datasets`) and which feature network measures
    it (:attr:`feature_net`).
    """

    feature_net: str = "digits"

    def __init__(self) -> None:
        self.last_loss = float("nan")

    def datasets(self, config: Any) -> tuple[ImageData, ImageData]:
        """The (train, test) splits; overridden by each task."""
        raise NotImplementedError

    def run(self, config: GenerationConfig, ctx: RunContext) -> dict[str, float]:
        train_data, test_data = self.datasets(config)
        objective = self._objective(ctx, config, config.objective)
        kind = objective.model_kind
        turbo = config.sampler == "flowturbo" or config.objective == "flowturbo-refiner"
        self._check_stages(config, kind, turbo)
        sampler = self._sampler(ctx, config, self._sampler_name(config, kind, turbo), kind)
        data = _batches(train_data, config.batch_size)
        started = time.perf_counter()
        # The second stages of BOSS and reflow learn from the *guided* teacher, so that the
        # student carries the guidance and is sampled without it (one network call per step).
        distilled = False
        if turbo:
            if config.objective == "flowturbo-refiner":
                objective = self._objective(ctx, config, "cfm")
            teacher = self._train(ctx, config, kind, objective, data, train_data, "teacher")
            model: nn.Module = self._train_refiner(ctx, config, teacher, data, train_data)
        elif callable(getattr(objective, "prepare", None)):
            cfm = self._objective(ctx, config, "cfm")
            teacher = self._train(ctx, config, kind, cfm, data, train_data, "teacher")
            guided_teacher = self._guided(config, teacher, kind, train_data)
            distilled = guided_teacher is not teacher
            grid = self._finetune_grid(config, guided_teacher, train_data)
            objective.prepare(guided_teacher, grid)
            sampler = self._sampler(ctx, config, "euler", kind, time_grid=grid)
            model = self._train(ctx, config, kind, objective, data, train_data, "finetune", teacher)
        else:
            model = self._train(ctx, config, kind, objective, data, train_data)
        for round_ in range(1, config.reflow_rounds + 1):
            source = model if distilled else self._guided(config, model, kind, train_data)
            distilled = distilled or source is not model
            pairs = self._pairs(ctx, config, source, train_data)
            reflow = self._objective(ctx, config, config.reflow_objective)
            model = self._train(
                ctx, config, kind, reflow, pairs, train_data, f"reflow-{round_}", model
            )
        train_seconds = time.perf_counter() - started
        guided = model if distilled else self._guided(config, model, kind, train_data)
        # the guidance sweep re-wraps a class-conditional velocity model (not a student that
        # carries its teacher's guidance, nor FlowTurbo's predictor-refiner pair)
        sweepable = kind == "velocity" and train_data.num_classes and not (distilled or turbo)
        conditional = model if sweepable else None
        return evaluate_generation(
            ctx,
            config,
            guided,
            kind,
            sampler,
            train_data,
            test_data,
            load_feature_net(self.feature_net),
            {"train_loss": self.last_loss, "train_seconds": train_seconds},
            guidance_distilled=distilled,
            conditional_model=conditional,
        )

    # -- configuration checks -------------------------------------------------------------

    @staticmethod
    def _check_stages(config: GenerationConfig, kind: str, turbo: bool) -> None:
        if (config.reflow_rounds or turbo) and kind != "velocity":
            what = "reflow" if config.reflow_rounds else "FlowTurbo"
            raise ConfigError(
                f"{what} needs a velocity model; objective {config.objective!r} trains a "
                f"{kind} model (use e.g. objective=cfm)"
            )
        if turbo and config.reflow_rounds:
            raise ConfigError("choose one of sampler=flowturbo and reflow_rounds > 0, not both")

    @staticmethod
    def _sampler_name(config: GenerationConfig, kind: str, turbo: bool) -> str:
        if turbo:
            return "flowturbo"
        return config.sampler or DEFAULT_SAMPLER[kind]

    # -- building blocks ------------------------------------------------------------------

    def _objective(self, ctx: RunContext, config: GenerationConfig, name: str) -> Any:
        options: dict[str, Any] = {"cond_dropout": config.cond_dropout}
        if name == "rf-pp" and config.perceptual_weight > 0:
            net = load_feature_net(self.feature_net).to(ctx.device)
            options["perceptual"] = FeaturePerceptual(net, config.perceptual_weight)
        return ctx.build("objective", name, **options)

    @staticmethod
    def _sampler(
        ctx: RunContext, config: GenerationConfig, name: str, kind: str, **extra: Any
    ) -> Any:
        options: dict[str, Any] = {
            "steps": config.sample_steps,
            "rtol": config.rtol,
            "atol": config.atol,
            "grid": config.grid,
            "heun_steps": config.heun_steps,
            "pseudo_steps": config.pseudo_steps,
            "refiner_steps": config.refiner_steps,
            "compile": config.compile,
            **extra,
        }
        if "time_grid" in extra:
            options.pop("grid")
        return ctx.build_for_model("sampler", name, kind, **options)

    def _network(
        self, ctx: RunContext, config: GenerationConfig, kind: str, data: ImageData
    ) -> nn.Module:
        channels, height, width = data.images.shape[1:]
        defaults = {"velocity": "unet", "average-velocity": "unet-average"}
        name = config.flow or defaults.get(kind, "coupling-flow")
        network: nn.Module = ctx.build(
            "flow",
            name,
            in_channels=channels,
            image_size=height,
            dim=channels * height * width,
            num_classes=data.num_classes,
            base_channels=config.base_channels,
            width=config.width,
            depth=config.depth,
            patch_size=config.patch_size,
        )
        return network

    def _train(
        self,
        ctx: RunContext,
        config: GenerationConfig,
        kind: str,
        objective: Any,
        data: Batches,
        train_data: ImageData,
        stage: str = "",
        init: nn.Module | None = None,
        steps: int | None = None,
    ) -> nn.Module:
        torch.manual_seed(ctx.seed)
        if init is not None:
            model = copy.deepcopy(init).train()
        else:
            model = self._network(ctx, config, kind, train_data)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        default_steps = config.finetune_steps if init is not None else config.steps
        settings = TrainSettings(
            steps=steps or default_steps,
            grad_clip=config.grad_clip if config.grad_clip > 0 else None,
            ema_decay=config.ema_decay or None,
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
        )
        result = train(ctx, model, optimizer, objective, data, settings, stage=stage)
        self.last_loss = result.metrics.get("loss", float("nan"))
        return result.eval_model

    def _train_refiner(
        self,
        ctx: RunContext,
        config: GenerationConfig,
        teacher: nn.Module,
        data: Batches,
        train_data: ImageData,
    ) -> nn.Module:
        """FlowTurbo's second stage: a small refiner against the frozen ``teacher``."""
        from flow_images.flowturbo.model import FlowTurboModel, VelocityRefiner

        objective = ctx.build(
            "objective", "flowturbo-refiner", cond_dropout=config.cond_dropout, max_delta=0.2
        )
        # The refiner runs in the last steps only: for every schedule of the NFE sweep (and the
        # paper's default 1 + 5 + 3) that is within t ∈ [0.5, 1], with steps h <= 0.2.
        objective.prepare(teacher, torch.tensor([0.5, 1.0]))
        channels, height = train_data.images.shape[1:3]
        torch.manual_seed(ctx.seed)
        refiner = VelocityRefiner(
            in_channels=channels,
            image_size=height,
            num_classes=train_data.num_classes,
            hidden=config.refiner_width,
            blocks=1,
        )
        optimizer = torch.optim.Adam(refiner.parameters(), lr=config.lr)
        settings = TrainSettings(
            steps=config.finetune_steps,
            grad_clip=config.grad_clip if config.grad_clip > 0 else None,
            ema_decay=config.ema_decay or None,
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
        )
        result = train(ctx, refiner, optimizer, objective, data, settings, stage="refiner")
        trained = result.eval_model
        if not isinstance(trained, VelocityRefiner):
            raise TypeError(f"expected the trained refiner, got {type(trained).__name__}")
        return FlowTurboModel(teacher.eval(), trained)

    @staticmethod
    def _finetune_grid(config: GenerationConfig, teacher: nn.Module, data: ImageData) -> Tensor:
        from flow_core.samplers import bellman_time_grid, shifted_grid, uniform_grid

        if config.grid == "uniform":
            return uniform_grid(config.sample_steps)
        if config.grid == "shifted":
            return shifted_grid(config.sample_steps, 3.0)
        generator = torch.Generator().manual_seed(_GRID_SEED)
        x0 = torch.randn((256, *data.images.shape[1:]), generator=generator)
        cond = _labels(256, data.num_classes)
        device = next(teacher.parameters()).device
        with torch.no_grad():
            return bellman_time_grid(
                teacher,
                x0.to(device),
                config.sample_steps,
                max(64, config.sample_steps),
                None if cond is None else cond.to(device),
            ).cpu()

    def _pairs(
        self, ctx: RunContext, config: GenerationConfig, teacher: nn.Module, data: ImageData
    ) -> Batches:
        """(noise, teacher sample[, label]) pairs; the student's batches are drawn from them."""
        from flow_core.objectives import generate_pairs

        generator = torch.Generator().manual_seed(_PAIRS_SEED + ctx.seed)
        sampler = self._sampler(ctx, config, config.reflow_sampler, "velocity")
        cond = _labels(config.reflow_pairs, data.num_classes)
        pairs = generate_pairs(
            teacher.to(ctx.device).eval(),
            sampler,
            config.reflow_pairs,
            512,
            tuple(data.images.shape[1:]),
            generator,
            cond,
        )

        def batches(generator: torch.Generator) -> dict[str, Tensor]:
            index = torch.randint(0, config.reflow_pairs, (config.batch_size,), generator=generator)
            return {key: value[index] for key, value in pairs.items()}

        return batches

    @staticmethod
    def _guided(
        config: GenerationConfig, model: nn.Module, kind: str, data: ImageData
    ) -> nn.Module:
        """Wrap a class-conditional velocity field in classifier-free guidance (w ≠ 0)."""
        if kind != "velocity" or not data.num_classes or config.guidance_weight == 0:
            return model
        from flow_images.flowturbo.model import FlowTurboModel

        weight, classes = config.guidance_weight, data.num_classes
        if isinstance(model, FlowTurboModel):
            return FlowTurboModel(with_guidance(model.predictor, weight, classes), model.refiner)
        return with_guidance(model, weight, classes)


def _labels(n: int, num_classes: int) -> Tensor | None:
    """Balanced labels 0, 1, …, C − 1, 0, 1, … for ``n`` samples (``None`` if unconditional)."""
    return torch.arange(n) % num_classes if num_classes else None


def _batches(data: ImageData, batch_size: int) -> Batches:
    """Random training batches ``{"x1": images[, "cond": labels]}`` from ``generator``."""

    def draw(generator: torch.Generator) -> dict[str, Tensor]:
        index = torch.randint(0, data.images.shape[0], (batch_size,), generator=generator)
        batch = {"x1": data.images[index]}
        if data.num_classes and data.labels is not None:
            batch["cond"] = data.labels[index]
        return batch

    return draw
