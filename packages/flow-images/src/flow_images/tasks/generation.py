"""The image-generation task both ``images.digits`` and ``images.patches`` are made of.

A flow is trained on the train split less a validation part
(:mod:`flow_images.data.validation`) with any registered objective (default: conditional flow
matching on the linear path x_t = (1 − t)·x0 + t·x1, target x1 − x0), sampled with any
registered sampler, or with the guidance weight and sampler chosen on the validation part
(:mod:`flow_images.choice`), and measured on the held-out test split by
:mod:`flow_images.evaluation`
(Fréchet distance in a shipped feature network's space, precision and recall, and the class
accuracy of class-conditional samples). The stages follow the objective:

- ``boss`` (any objective with ``prepare(teacher, time_grid)``): a CFM teacher is trained,
  a Bellman-optimal grid of ``sample_steps`` steps is computed for it, and a copy of the teacher
  is straightened onto that grid (Nguyen et al. 2023, BOSS);
- ``sampler=flowturbo``: the trained velocity field is
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

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.options import option, setting, used_if
from flow_core.recipes import (
    GenerativeConfig,
    TrainedFlow,
    generative_components,
    train_generative,
)
from flow_core.training import TrainSettings, training
from flow_images.choice import read_choice
from flow_images.data import ImageData
from flow_images.data.validation import hold_out_validation
from flow_images.evaluation import build_candidate, evaluate_generation, with_guidance
from flow_images.features import load_feature_net
from flow_images.figures import save_image_grid
from flow_images.perceptual import FeaturePerceptual

if TYPE_CHECKING:
    from flow_core.registry import Registry
    from flow_core.runner import RunContext

__all__ = ["GenerationConfig", "ImageGeneration"]

_GRID_SEED = 104_723
_SAMPLE_SEED = 271_828
MIN_EVAL_IMAGES = 4
"""Samples and test images needed by the metrics (k = 3 nearest neighbours, plus the point)."""
DEFAULT_FLOWS = {
    "velocity": "unet",
    "average-velocity": "unet-average",
    "invertible": "coupling-flow",
}
SOLVER_TOLERANCES = {"rtol": 1e-4, "atol": 1e-4}
"""Tolerances of adaptive samplers unless the user sets them (``--set rtol=1e-5``)."""
Batches = Callable[[torch.Generator], dict[str, Tensor]]


def _turbo(config: Any) -> bool:
    return bool(config.sampler == "flowturbo")


def _perceptual(config: Any) -> bool:
    return bool(config.reflow_rounds > 0 and config.reflow_objective == "rf-pp")


@dataclass(frozen=True)
class GenerationConfig(GenerativeConfig):
    """Fields shared by the image tasks (each task sets its own defaults).

    ``flow`` defaults to the network for the objective's model kind (``unet``, ``unet-average``
    or ``coupling-flow``); ``base_channels`` sizes a U-Net, ``width``/``depth``/``patch_size``
    a DiT. ``sampler=flowturbo`` trains FlowTurbo's refiner (``refiner_width`` channels) after
    the velocity field; its schedule is the sampler's options (``--set pseudo_steps=3``).
    ``nfe_sweep`` lists the NFE budgets of the quality-against-NFE plot and
    ``guidance_sweep`` the guidance weights of the quality-against-guidance plot (a
    class-conditional velocity model sampled with guidance; empty: no sweep).

    ``validation_fraction`` of the training split is held out (never trained on) and, with
    ``choose`` (the default), the guidance weight (``guidance_weight`` or one of
    ``guidance_sweep``) and the sampler (the configured one or one of the NFE sweep's, at no
    more NFE than the configured one) are chosen on it by Fréchet distance
    (:mod:`flow_images.choice`); ``choose=false`` samples exactly the configured sampler and
    guidance weight.
    """

    guidance_weight: float = 0.0
    cond_dropout: float = 0.1
    base_channels: int = option("flow", "base_channels", 16)
    width: int = option("flow", "width", 128)
    depth: int = option("flow", "depth", 4)
    patch_size: int = option("flow", "patch_size", 2)
    perceptual_weight: float = setting(
        1.0, when=used_if("reflow_rounds > 0 with reflow_objective=rf-pp", _perceptual)
    )
    refiner_width: int = setting(16, when=used_if("sampler=flowturbo", _turbo))
    nfe_sweep: tuple[int, ...] = (1, 2, 4, 8, 16)
    guidance_sweep: tuple[float, ...] = ()
    validation_fraction: float = 0.2
    choose: bool = True
    train: TrainSettings = training(
        steps=3000, batch_size=128, lr=2e-3, ema_decay=0.999, log_every=100
    )

    def later_stages(self) -> bool:
        """FlowTurbo's refiner is a later stage too."""
        return super().later_stages() or _turbo(self)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("base_channels", "width", "depth", "patch_size", "refiner_width"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(n < 1 for n in self.nfe_sweep):
            raise ConfigError(f"nfe_sweep entries must be >= 1, got {self.nfe_sweep}")
        if any(not 0.0 <= w < float("inf") for w in self.guidance_sweep):
            raise ConfigError(
                f"guidance_sweep entries must be finite and >= 0, got {self.guidance_sweep}"
            )
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.choose and self.validation_fraction == 0:
            raise ConfigError(
                "choose=true picks the guidance weight and sampler on a validation part of the"
                " training split, and validation_fraction=0 holds none out: set choose=false"
                " to sample the configured sampler and guidance_weight, or"
                " validation_fraction > 0"
            )
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ConfigError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if self.perceptual_weight < 0:
            raise ConfigError(f"perceptual_weight must be >= 0, got {self.perceptual_weight}")
        if self.eval_samples < MIN_EVAL_IMAGES:
            raise ConfigError(
                f"eval_samples must be >= {MIN_EVAL_IMAGES} (precision and recall use k = 3"
                f" nearest neighbours; the Fréchet distance a covariance), got {self.eval_samples}"
            )


class ImageGeneration:
    """Train, sample and evaluate a flow on an image dataset; see the module docstring.

    Subclasses say which data to load (:meth:`datasets`) and which feature network measures
    it (:attr:`feature_net`).
    """

    feature_net: str = "digits"

    def datasets(self, config: Any) -> tuple[ImageData, ImageData]:
        """The (train, test) splits; overridden by each task."""
        raise NotImplementedError

    def components(self, config: GenerationConfig, registry: Registry) -> dict[str, str | None]:
        """The network and sampler follow the objective's model kind unless named."""
        if config.objective == "flowturbo-refiner":
            raise ConfigError(
                "objective 'flowturbo-refiner' trains FlowTurbo's refiner against a trained"
                " velocity field; ask for FlowTurbo with sampler=flowturbo"
            )
        chosen = generative_components(config, registry, DEFAULT_FLOWS)
        if _turbo(config) and config.reflow_rounds:
            raise ConfigError("choose one of sampler=flowturbo and reflow_rounds > 0, not both")
        return chosen

    def run(self, config: GenerationConfig, ctx: RunContext) -> dict[str, float]:
        train_data, validation, test_data = self._splits(config)
        started = time.perf_counter()
        trained = self._train(config, ctx, train_data)
        train_seconds = time.perf_counter() - started
        model, kind, distilled = trained.model, trained.model_kind, trained.guidance_distilled
        # the guidance sweep re-wraps a class-conditional velocity model (not a student that
        # carries its teacher's guidance, nor FlowTurbo's predictor-refiner pair)
        sweepable = (
            kind == "velocity" and train_data.num_classes and not distilled and not _turbo(config)
        )
        return evaluate_generation(
            ctx,
            config,
            self._final(config, trained, train_data),
            kind,
            trained.sampler,
            train_data,
            test_data,
            load_feature_net(self.feature_net),
            {"train_loss": trained.loss, "train_seconds": train_seconds},
            guidance_distilled=distilled,
            conditional_model=model if sweepable else None,
            validation_data=validation,
        )

    def evaluate(self, config: GenerationConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the run's stages are loaded from their checkpoints, then evaluated."""
        return self.run(config, ctx)

    def sample(self, config: GenerationConfig, ctx: RunContext, count: int) -> dict[str, Tensor]:
        """``flow sample``: ``count`` images in [-1, 1] (NCHW) and, for a class-conditional
        model, their labels (balanced, 0, 1, …), with a grid of them in the report."""
        train_data, _, _ = self._splits(config)
        trained = self._train(config, ctx, train_data)
        shape = tuple(train_data.images.shape[1:])
        generator = torch.Generator().manual_seed(_SAMPLE_SEED + ctx.seed)
        x0 = torch.randn((count, *shape), generator=generator)
        labels = _labels(count, train_data.num_classes)
        model, sampler, how = self._sampling(config, ctx, trained, train_data)
        model = model.to(ctx.device).eval()
        with torch.no_grad():
            cond = None if labels is None else labels.to(ctx.device)
            images = sampler.sample(model, x0.to(ctx.device), cond).cpu()
        columns = train_data.num_classes or 8
        path = ctx.report.add_figure("samples.png", f"{count} samples, one class per column")
        save_image_grid(path, images[: columns * columns], columns, 4 if shape[-1] <= 16 else 2)
        ctx.report.add_text(f"{count} samples ({sampler.nfe} NFE per sample; {how}).")
        return {"images": images} if labels is None else {"images": images, "labels": labels}

    def _splits(self, config: GenerationConfig) -> tuple[ImageData, ImageData | None, ImageData]:
        """(fit, validation, test): the training split less its validation part, checked."""
        train, test = self.datasets(config)
        validation = None
        if config.validation_fraction > 0:
            train, validation = hold_out_validation(train, config.validation_fraction)
        self._check_sizes(train, test, validation)
        return train, validation, test

    def _sampling(
        self, config: GenerationConfig, ctx: RunContext, trained: TrainedFlow, data: ImageData
    ) -> tuple[nn.Module, Any, str]:
        """The (model, sampler) ``flow sample`` uses: the run's choice when it made one."""
        chosen = read_choice(ctx.run_dir or ctx.out_dir) if config.choose else None
        final = self._final(config, trained, data)
        if chosen is None:
            return final, trained.sampler, "the configured sampler"
        model, sampler = build_candidate(
            ctx, chosen, final, trained.sampler, trained.model, data.num_classes
        )
        weight = "" if chosen.guidance_weight is None else f", w = {chosen.guidance_weight:g}"
        return model, sampler, f"as chosen on the validation split: {chosen.sampler}{weight}"

    def _train(self, config: GenerationConfig, ctx: RunContext, data: ImageData) -> TrainedFlow:
        batches = _batches(data, config.train.batch_size)
        shape = tuple(data.images.shape[1:])
        refine = None
        if _turbo(config):
            from flow_images.flowturbo.stage import train_refiner

            def refine(teacher: nn.Module) -> nn.Module:
                return train_refiner(
                    ctx, config, teacher, batches, data, config.refiner_width, config.cond_dropout
                )

        return train_generative(
            ctx,
            config,
            batches,
            lambda: self._network(ctx, data),
            sample_shape=shape,
            guide=lambda model: self._guided(config, model, data),
            labels=lambda n: _labels(n, data.num_classes),
            grid_noise=lambda: torch.randn(
                (256, *shape), generator=torch.Generator().manual_seed(_GRID_SEED)
            ),
            sampler_defaults=SOLVER_TOLERANCES,
            objective_defaults=self._objective_options(ctx, config),
            refine=refine,
        )

    def _final(self, config: GenerationConfig, trained: TrainedFlow, data: ImageData) -> nn.Module:
        """The model to sample: guided, unless it learned from a guided teacher."""
        if trained.guidance_distilled:
            return trained.model
        return self._guided(config, trained.model, data)

    # -- building blocks ------------------------------------------------------------------

    @staticmethod
    def _check_sizes(train: ImageData, test: ImageData, validation: ImageData | None) -> None:
        """The splits large enough for the metrics, before anything trains."""
        splits = [("training", train), ("test", test)]
        if validation is not None:
            splits.append(("validation", validation))
        for split, data in splits:
            if data.images.shape[0] < MIN_EVAL_IMAGES:
                raise ConfigError(
                    f"the {split} split of {data.name} holds {data.images.shape[0]} image(s);"
                    f" at least {MIN_EVAL_IMAGES} are needed (precision and recall use k = 3"
                    " nearest neighbours)"
                )

    def _objective_options(self, ctx: RunContext, config: GenerationConfig) -> dict[str, Any]:
        options: dict[str, Any] = {"cond_dropout": config.cond_dropout}
        if _perceptual(config) and config.perceptual_weight > 0:
            net = load_feature_net(self.feature_net).to(ctx.device)
            options["perceptual"] = FeaturePerceptual(net, config.perceptual_weight)
        return options

    @staticmethod
    def _network(ctx: RunContext, data: ImageData) -> nn.Module:
        channels, height, width = data.images.shape[1:]
        network: nn.Module = ctx.component(
            "flow",
            in_channels=channels,
            image_size=height,
            dim=channels * height * width,
            num_classes=data.num_classes,
        )
        return network

    @staticmethod
    def _guided(config: GenerationConfig, model: nn.Module, data: ImageData) -> nn.Module:
        """Wrap a class-conditional velocity field in classifier-free guidance (w ≠ 0)."""
        kind = getattr(model, "model_kind", "velocity")
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
