"""``images.flowar``: FlowAR, scale-wise autoregressive generation with flow matching
(Ren et al. 2024, arXiv 2412.15205), on scikit-learn's 8×8 digits.

The digits are represented at the scales ``scales`` = (2, 4, 8), each double the previous.
:class:`~flow_images.flowar.model.FlowARModel` — a block-causal transformer producing each
scale's condition from the coarser scales and the class label, and a flow-matching head per
scale with spatial adaLN — is trained with the per-scale flow-matching loss
(:class:`~flow_images.flowar.objective.FlowARObjective`) through core's training loop, and
sampled scale by scale with core's ``sampler`` (default Euler, ``sample_steps`` per scale:
NFE = number of scales × steps). Measured on the held-out test digits at every entry of
``steps_sweep`` (FD, class accuracy, wall-clock); ``parameters`` is the model's size, for
comparison with a flat flow-matching model of the same size (``images.digits``).
``flow sample RUN`` writes class-conditional samples (balanced labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_core.options import component, option
from flow_core.training import TrainSettings, train, training
from flow_images.class_sampling import (
    Generate,
    evaluate_class_generator,
    parameter_count,
    sample_class_generator,
)
from flow_images.data import ImageData, load_dataset
from flow_images.flowar import FlowARModel, FlowARObjective

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["FlowAR", "FlowARConfig"]


@dataclass(frozen=True)
class FlowARConfig:
    """Configuration of ``images.flowar`` (defaults train in a few CPU minutes)."""

    scales: tuple[int, ...] = (2, 4, 8)
    width: int = 64
    depth: int = 2
    heads: int = 4
    head_depth: int = 2
    norm: str | None = None
    cond_dropout: float = 0.0
    sampler: str = component("sampler", "euler")
    sample_steps: int = option("sampler", "steps", 4)
    steps_sweep: tuple[int, ...] = (1, 2, 4, 8)
    eval_samples: int = 1000
    train: TrainSettings = training(
        steps=3000, batch_size=128, lr=1e-3, ema_decay=0.999, log_every=100
    )

    def __post_init__(self) -> None:
        if self.eval_samples < 10:
            raise ConfigError(f"eval_samples must be >= 10, got {self.eval_samples}")
        if any(n < 1 for n in self.steps_sweep):
            raise ConfigError(f"steps_sweep entries must be >= 1, got {self.steps_sweep}")


class FlowAR:
    """FlowAR on the digits; see the module docstring."""

    Config: ClassVar[type[FlowARConfig]] = FlowARConfig

    def run(self, config: FlowARConfig, ctx: RunContext) -> dict[str, float]:
        train_data, test_data = load_dataset("digits", "train"), load_dataset("digits", "test")
        trained, loss = _train_model(config, ctx, train_data)
        return evaluate_class_generator(
            ctx,
            _generator(config, ctx, trained),
            config.steps_sweep,
            config.sample_steps,
            train_data,
            test_data,
            config.eval_samples,
            trained,
            loss,
            _summary(config, trained),
        )

    def evaluate(self, config: FlowARConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the model loads its checkpoint, then the samples are measured."""
        return self.run(config, ctx)

    def sample(self, config: FlowARConfig, ctx: RunContext, count: int) -> dict[str, Tensor]:
        """``flow sample``: ``count`` class-conditional digits (``sample_steps`` per scale),
        labels balanced over the classes."""
        train_data = load_dataset("digits", "train")
        trained, _ = _train_model(config, ctx, train_data)
        generate = _generator(config, ctx, trained)
        summary = _summary(config, trained)
        return sample_class_generator(
            ctx, generate, config.sample_steps, train_data, count, summary
        )


def _train_model(
    config: FlowARConfig, ctx: RunContext, train_data: ImageData
) -> tuple[FlowARModel, float]:
    """The trained (in eval/sample: loaded) model in eval mode on the device, and its loss."""
    channels, size = train_data.images.shape[1], train_data.images.shape[-1]
    if not config.scales or config.scales[-1] != size:
        raise ConfigError(
            f"scales must end at the digits' size {size} (e.g. (2, 4, 8)), got {config.scales}"
        )
    torch.manual_seed(ctx.seed)
    model = FlowARModel(
        channels,
        config.scales,
        train_data.num_classes,
        config.width,
        config.depth,
        config.heads,
        config.head_depth,
        config.norm,
    )
    size_of_batch = config.train.batch_size
    labels = cast(Tensor, train_data.labels)

    def batches(generator: torch.Generator) -> dict[str, Tensor]:
        index = torch.randint(0, len(train_data), (size_of_batch,), generator=generator)
        return {"x1": train_data.images[index], "cond": labels[index]}

    objective = FlowARObjective(config.cond_dropout)
    result = train(ctx, model, objective, batches, config.train)
    trained = cast(FlowARModel, result.eval_model).to(ctx.device).eval()
    return trained, result.metrics.get("loss", float("nan"))


def _generator(config: FlowARConfig, ctx: RunContext, trained: FlowARModel) -> Generate:
    """Scale-by-scale sampling with ``steps`` sampler steps per scale (NFE = scales × steps);
    each scale's noise is the full-size noise area-averaged and rescaled to unit variance."""
    size = config.scales[-1]

    def generate(noise: Tensor, classes: Tensor, steps: int) -> tuple[Tensor, int]:
        sampler = ctx.build("sampler", config.sampler, steps=steps)
        pieces = [
            torch.nn.functional.interpolate(noise, size=(s, s), mode="area") * (size / s)
            for s in config.scales
        ]
        images = trained.sample(pieces, classes, sampler)
        return images, steps * len(config.scales)

    return generate


def _summary(config: FlowARConfig, trained: FlowARModel) -> str:
    return (
        f"FlowAR, scales {config.scales}, {parameter_count(trained)} parameters,"
        f" {config.train.steps} steps of batch {config.train.batch_size}; sampler"
        f" {config.sampler}, {config.sample_steps} steps per scale."
    )
