"""Guidance of an autoregressive flow, applied to each token's shift μ and log-scale a.

Zhai et al. 2024 (TARFlow, arXiv 2412.06329), §3.4. Inverting a block draws each token from
a Gaussian, x_i = μ_i + e^{a_i}·z_i. Classifier-free guidance runs a "strong" (conditional)
and a "weak" model on the same prefix and extrapolates both parameters,

    μ̃ = μ_c + w·(μ_c − μ_u),   ã = a_c + w·(a_c − a_u),

which is the conditional model at w = 0. For a class-conditional flow the weak model is the
same network given the null label; for an unconditional one it is the same network with its
attention logits divided by a temperature τ (§3.4, "guidance for unconditional models").
STARFlow's Gaussian rule (:func:`flow_images.starflow.guidance.gaussian_rule`) is the other
:data:`GuidanceRule`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from flow_core.errors import ConfigError

__all__ = ["Guidance", "GuidanceRule", "linear_rule"]

GuidanceRule = Callable[[Tensor, Tensor, Tensor, Tensor, float], tuple[Tensor, Tensor]]
"""``rule(mu_c, a_c, mu_u, a_u, w) -> (mu, a)``: the guided shift and log-scale."""


def linear_rule(
    mu_c: Tensor, a_c: Tensor, mu_u: Tensor, a_u: Tensor, weight: float
) -> tuple[Tensor, Tensor]:
    """TARFlow's linear guidance: μ̃ = μ_c + w(μ_c − μ_u), ã = a_c + w(a_c − a_u)."""
    return mu_c + weight * (mu_c - mu_u), a_c + weight * (a_c - a_u)


@dataclass(frozen=True)
class Guidance:
    """How to guide an inversion.

    Attributes:
        weight: guidance weight w (>= 0; 0 is the unguided model).
        rule: how strong and weak parameters combine (:func:`linear_rule`, or STARFlow's
            Gaussian rule).
        temperature: attention temperature τ of the weak model of an *unconditional* flow
            (τ > 1 flattens its attention); a conditional flow's weak model is the null label.
    """

    weight: float
    rule: GuidanceRule = linear_rule
    temperature: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight < float("inf"):
            raise ConfigError(f"guidance weight must be finite and >= 0, got {self.weight}")
        if not 0.0 < self.temperature < float("inf"):
            raise ConfigError(f"attention temperature must be > 0, got {self.temperature}")
