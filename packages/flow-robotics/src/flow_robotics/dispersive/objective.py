"""An objective plus a dispersive term on the policy encoder's embeddings (DM1).

DM1 (Zou et al. 2025) trains a MeanFlow action head with

    L = L_flow + λ · Σ_{ℓ ∈ layers} L_disp(z_ℓ),

where z_ℓ are the observation embeddings of the batch at the chosen encoder layers (early,
mid, late, or all three) and L_disp one of the losses of :mod:`flow_robotics.dispersive.loss`
with temperature τ. The wrapped objective is any registered one (``meanflow``, ``cfm``,
``bc-mse`` …); the embeddings come from a second pass of the encoder alone, outside any
``no_grad``, so the term's gradient reaches the encoder (the bug of the reference code,
dm1-release#3, was that it did not).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.protocols import Batch
from flow_robotics.dispersive.loss import VARIANTS, dispersive_loss
from flow_robotics.networks.policy import LAYERS

__all__ = ["CHOICES", "LAYER_CHOICES", "Dispersive", "chosen_layers"]

CHOICES: tuple[str, ...] = ("none", *VARIANTS)
"""Values of a task's ``dispersive`` field: ``none`` or a variant."""

LAYER_CHOICES: tuple[str, ...] = (*LAYERS, "all")
"""Values of a task's ``dispersive_layer`` field."""


def chosen_layers(layer: str) -> tuple[str, ...]:
    """The encoder layers named by ``layer`` (``all`` is every layer).

    Raises:
        ConfigError: an unknown layer name.
    """
    if layer not in LAYER_CHOICES:
        raise ConfigError(
            f"dispersive_layer must be one of {', '.join(LAYER_CHOICES)}, got {layer!r}"
        )
    return LAYERS if layer == "all" else (layer,)


class Dispersive:
    """``objective`` plus ``weight`` × the dispersive loss on the chosen encoder layers.

    Metrics are the wrapped objective's plus ``"dispersive"`` (the unweighted term); ``loss``
    is the total.
    """

    def __init__(self, objective: Any, variant: str, weight: float, tau: float, layer: str) -> None:
        if variant not in VARIANTS:
            raise ConfigError(
                f"unknown dispersive variant {variant!r}; expected one of: {', '.join(VARIANTS)}"
            )
        if weight < 0:
            raise ConfigError(f"dispersive_weight must be >= 0, got {weight}")
        if not tau > 0:
            raise ConfigError(f"dispersive_tau must be > 0, got {tau}")
        self.objective = objective
        self.model_kind = objective.model_kind
        self.variant, self.weight, self.tau = variant, float(weight), float(tau)
        self.layers = chosen_layers(layer)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        loss, metrics = self.objective(model, batch)
        encoder = getattr(unwrap(model), "encoder", None)
        if encoder is None or "cond" not in batch:
            raise FlowError(
                "dispersive regularisation needs a policy network with an 'encoder' and a batch"
                " with 'cond'"
            )
        outputs = encoder.layers(batch["cond"].reshape(batch["cond"].shape[0], -1))
        term = sum(dispersive_loss(outputs[name], self.variant, self.tau) for name in self.layers)
        assert isinstance(term, Tensor)
        total = loss + self.weight * term
        return total, {**metrics, "loss": total.item(), "dispersive": term.item()}
