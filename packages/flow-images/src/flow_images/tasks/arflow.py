"""``images.arflow``: ARFlow, autoregressive flow with hybrid linear attention (Hui et al. 2025,
arXiv 2501.16085), on scikit-learn's 8×8 digits.

Training sequences hold ``sequence_length`` = L different training digits of one class at
increasing times (the noisier first, :class:`~flow_images.arflow.objective.ARFlowObjective`);
the causal transformer (:class:`~flow_images.arflow.model.ARFlowModel`, full attention within
an image and chunk-wise linear attention across images) predicts each image's velocity from
it and its predecessors, trained through core's loop. Generation is L Euler steps, each
conditioned on the sampler's own earlier states (NFE = L). Measured on the held-out test
digits (FD, class accuracy, wall-clock) at L and at the step counts of ``steps_sweep``
(≤ L, sampled on their own uniform grid); ``parameters`` is the model's size, for comparison
with a flat flow-matching model of the same size (``images.digits``).
``flow sample RUN`` writes class-conditional samples (balanced labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_core.training import TrainSettings, train, training
from flow_images.arflow import ARFlowModel, ARFlowObjective
from flow_images.class_sampling import (
    Generate,
    evaluate_class_generator,
    parameter_count,
    sample_class_generator,
)
from flow_images.data import ImageData, load_dataset

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["ARFlow", "ARFlowConfig", "class_sequences"]


@dataclass(frozen=True)
class ARFlowConfig:
    """Configuration of ``images.arflow`` (defaults train in a few CPU minutes)."""

    sequence_length: int = 4
    patch_size: int = 2
    width: int = 64
    depth: int = 4
    heads: int = 4
    norm: str | None = None
    cond_dropout: float = 0.0
    steps_sweep: tuple[int, ...] = (2,)
    eval_samples: int = 1000
    train: TrainSettings = training(
        steps=3000, batch_size=64, lr=1e-3, ema_decay=0.999, log_every=100
    )

    def __post_init__(self) -> None:
        if self.sequence_length < 1:
            raise ConfigError(f"sequence_length must be >= 1, got {self.sequence_length}")
        if any(not 1 <= n <= self.sequence_length for n in self.steps_sweep):
            raise ConfigError(
                f"steps_sweep entries must lie in [1, sequence_length = {self.sequence_length}],"
                f" got {self.steps_sweep}"
            )
        if self.eval_samples < 10:
            raise ConfigError(f"eval_samples must be >= 10, got {self.eval_samples}")


def class_sequences(
    data: ImageData, size: int, length: int, generator: torch.Generator
) -> dict[str, Tensor]:
    """``size`` sequences of ``length`` training images of one random class each:
    ``{"x1": (size, length, C, S, S), "cond": (size,)}``."""
    labels = cast(Tensor, data.labels)
    classes = torch.randint(0, data.num_classes, (size,), generator=generator)
    members = [torch.nonzero(labels == c).flatten() for c in range(data.num_classes)]
    picks = torch.stack(
        [
            members[int(c)][torch.randint(0, len(members[int(c)]), (length,), generator=generator)]
            for c in classes
        ]
    )
    return {"x1": data.images[picks], "cond": classes}


class ARFlow:
    """ARFlow on the digits; see the module docstring."""

    Config: ClassVar[type[ARFlowConfig]] = ARFlowConfig

    def run(self, config: ARFlowConfig, ctx: RunContext) -> dict[str, float]:
        train_data, test_data = load_dataset("digits", "train"), load_dataset("digits", "test")
        trained, loss = _train_model(config, ctx, train_data)
        return evaluate_class_generator(
            ctx,
            _generator(trained),
            config.steps_sweep,
            config.sequence_length,
            train_data,
            test_data,
            config.eval_samples,
            trained,
            loss,
            _summary(config, trained),
        )

    def evaluate(self, config: ARFlowConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the model loads its checkpoint, then the samples are measured."""
        return self.run(config, ctx)

    def sample(self, config: ARFlowConfig, ctx: RunContext, count: int) -> dict[str, Tensor]:
        """``flow sample``: ``count`` class-conditional digits (``sequence_length``
        autoregressive steps), labels balanced over the classes."""
        train_data = load_dataset("digits", "train")
        trained, _ = _train_model(config, ctx, train_data)
        return sample_class_generator(
            ctx,
            _generator(trained),
            config.sequence_length,
            train_data,
            count,
            _summary(config, trained),
        )


def _train_model(
    config: ARFlowConfig, ctx: RunContext, train_data: ImageData
) -> tuple[ARFlowModel, float]:
    """The trained (in eval/sample: loaded) model in eval mode on the device, and its loss."""
    channels, size = train_data.images.shape[1], train_data.images.shape[-1]
    torch.manual_seed(ctx.seed)
    model = ARFlowModel(
        channels,
        size,
        train_data.num_classes,
        config.patch_size,
        config.width,
        config.depth,
        config.heads,
        config.norm,
    )
    batch_size, length = config.train.batch_size, config.sequence_length

    def batches(generator: torch.Generator) -> dict[str, Tensor]:
        return class_sequences(train_data, batch_size, length, generator)

    objective = ARFlowObjective(config.cond_dropout)
    result = train(ctx, model, objective, batches, config.train)
    trained = cast(ARFlowModel, result.eval_model).to(ctx.device).eval()
    return trained, result.metrics.get("loss", float("nan"))


def _generator(trained: ARFlowModel) -> Generate:
    """``steps`` autoregressive Euler steps (NFE = steps)."""

    def generate(noise: Tensor, classes: Tensor, steps: int) -> tuple[Tensor, int]:
        return trained.sample(noise, classes, steps), steps

    return generate


def _summary(config: ARFlowConfig, trained: ARFlowModel) -> str:
    length = config.sequence_length
    return (
        f"ARFlow, sequences of {length} same-class digits, {parameter_count(trained)}"
        f" parameters, {config.train.steps} steps of batch {config.train.batch_size}; {length}"
        " autoregressive Euler steps."
    )
