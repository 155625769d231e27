"""Helpers shared by the objectives: reading a batch, and condition dropout for guidance.

Public so that plugins writing their own objectives (e.g. flow-images' FlowTurbo refiner)
read batches and drop conditions exactly as the built-in objectives do.

Condition dropout (Ho & Salimans 2022, classifier-free guidance) trains one network both
conditionally and unconditionally by replacing each sample's condition with the *null
condition* with probability p:

- integer class labels (a ``LongTensor`` of shape ``(B,)``) are replaced by the model's null
  label, read from its ``null_label`` attribute (:class:`~flow_core.models.mlp.MLPVelocity`
  and :class:`~flow_core.models.mlp.MLPAverageVelocity` use ``num_classes``);
- floating-point conditions (embeddings of shape ``(B, ...)``) are replaced by zeros.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.models.labels import is_label_tensor
from flow_core.protocols import Batch

__all__ = [
    "check_adaptive_weight",
    "check_probability",
    "drop_condition",
    "is_label_tensor",
    "null_condition",
    "source_and_data",
]


def check_probability(value: float, name: str, where: str) -> float:
    """Return ``value`` as a float if it lies in [0, 1], else raise :class:`ConfigError`."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}: {name} must lie in [0, 1], got {value}")
    return float(value)


def check_adaptive_weight(power: float, eps: float, where: str) -> tuple[float, float]:
    """Validate ``(p, ε)`` of the adaptive weight 1/sg(‖Δ‖² + ε)^p; return them as floats."""
    if power < 0:
        raise ConfigError(f"{where}: adaptive_power must be >= 0, got {power}")
    if not eps > 0:
        raise ConfigError(f"{where}: eps must be > 0, got {eps}")
    return float(power), float(eps)


def source_and_data(batch: Batch, where: str) -> tuple[Tensor, Tensor]:
    """``(x0, x1)`` from a batch; ``x0`` is drawn from N(0, I) when the batch has none.

    Raises:
        FlowError: the batch lacks ``"x1"``, or ``"x0"`` has another shape.
    """
    if "x1" not in batch:
        raise FlowError(f"{where}: the batch needs key 'x1'; got keys {sorted(batch)}")
    x1 = batch["x1"]
    x0 = batch.get("x0")
    if x0 is None:
        return torch.randn_like(x1), x1
    if x0.shape != x1.shape:
        raise FlowError(
            f"{where}: batch 'x0' has shape {tuple(x0.shape)}, 'x1' has {tuple(x1.shape)}; "
            "they must match"
        )
    return x0, x1


def null_condition(model: nn.Module, cond: Tensor, where: str) -> Tensor:
    """A condition of ``cond``'s shape meaning "unconditional" for ``model``.

    Raises:
        FlowError: ``cond`` holds labels but the model declares no ``null_label``.
    """
    if not is_label_tensor(cond):
        return torch.zeros_like(cond)
    null = getattr(unwrap(model), "null_label", None)
    if not isinstance(null, int):
        raise FlowError(
            f"{where}: dropping class labels needs a model with an integer 'null_label' "
            f"attribute (e.g. MLPVelocity with num_classes > 0); {type(unwrap(model)).__name__} "
            "has none"
        )
    return torch.full_like(cond, null)


def drop_condition(model: nn.Module, cond: Tensor | None, p: float, where: str) -> Tensor | None:
    """Replace each sample's condition by the null condition with probability ``p``.

    ``cond=None`` already means the null condition and is returned unchanged, as is ``cond``
    when ``p == 0`` (no random numbers are drawn then).
    """
    if cond is None or p <= 0.0:
        return cond
    drop = torch.rand(cond.shape[0], device=cond.device) < p
    mask = drop.reshape(-1, *([1] * (cond.ndim - 1)))
    return torch.where(mask, null_condition(model, cond, where), cond)
