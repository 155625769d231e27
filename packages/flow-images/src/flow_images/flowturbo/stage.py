"""FlowTurbo's second stage: a small velocity refiner trained against the frozen teacher.

Zhao et al. 2024 (arXiv 2409.18128): after the velocity field is trained, a lightweight
refiner learns the teacher's velocity *correction* over a short step, and the sampler runs
Heun, then pseudo-corrector, then refiner steps. The refiner runs in the last steps only: for
every schedule of the NFE sweep (and the paper's default 1 + 5 + 3) that is within
t ∈ [0.5, 1], with steps h ≤ 0.2 — the window and the largest step it is trained for.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from flow_core.training import train
from flow_images.flowturbo.model import FlowTurboModel, VelocityRefiner

if TYPE_CHECKING:
    from flow_core.runner import RunContext
    from flow_images.data import ImageData

__all__ = ["REFINER_MAX_STEP", "REFINER_WINDOW", "train_refiner"]

REFINER_WINDOW = (0.5, 1.0)
"""The time window the refiner is trained on."""
REFINER_MAX_STEP = 0.2
"""The largest step size h the refiner is trained for."""


def train_refiner(
    ctx: RunContext,
    config: object,
    teacher: nn.Module,
    batches: Callable[[torch.Generator], dict[str, Tensor]],
    data: ImageData,
    width: int,
    cond_dropout: float,
) -> FlowTurboModel:
    """Train a :class:`VelocityRefiner` of ``width`` channels against the frozen ``teacher``
    (stage ``refiner``, ``finetune_steps`` steps) and return the predictor-refiner pair."""
    objective = ctx.build(
        "objective", "flowturbo-refiner", cond_dropout=cond_dropout, max_delta=REFINER_MAX_STEP
    )
    objective.prepare(teacher, torch.tensor(REFINER_WINDOW))
    channels, height = data.images.shape[1:3]
    torch.manual_seed(ctx.seed)
    refiner = VelocityRefiner(
        in_channels=channels,
        image_size=height,
        num_classes=data.num_classes,
        hidden=width,
        blocks=1,
    )
    settings = dataclasses.replace(config.train, steps=config.finetune_steps)  # type: ignore[attr-defined]
    result = train(ctx, refiner, objective, batches, settings, stage="refiner")
    trained = result.eval_model
    if not isinstance(trained, VelocityRefiner):
        raise TypeError(f"expected the trained refiner, got {type(trained).__name__}")
    return FlowTurboModel(teacher.eval(), trained)
