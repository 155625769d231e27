"""Sinusoidal features of a flow time t ∈ [0, 1], shared by every network of core and plugins.

A time t enters a network through K = ``features / 2`` angular frequencies ω_k spaced
geometrically between 1 and ``max_frequency`` (the sinusoidal positional encoding of Vaswani
et al. 2017, arXiv:1706.03762, used for diffusion time by Ho et al. 2020, arXiv:2006.11239):

    ω_k = max_frequency^((k − 1)/(K − 1)),
    φ(t) = [sin(ω_1 t), …, sin(ω_K t), cos(ω_1 t), …, cos(ω_K t)].

The scale of the highest frequency sets how fast the network can vary in its input (Tancik et
al. 2020, arXiv:2006.10739, for Fourier features of coordinates). Positional encodings of
tokens span thousands of positions; a flow time spans only [0, 1]. With ω_K = 1000 (about
160 periods over [0, 1]) a trained 2-D CFM was stiff for adaptive solvers: dopri5 at tolerance
1e-5 needed 374 evaluations where the exact velocity of the same mixture needs 68. The default
:data:`MAX_FREQUENCY` = 30 (under 5 periods over [0, 1]) brought that to 62 with a lower
sliced W2 of the samples to the target; every ω_K from 10 to 2π·16 that was tried was within
2x of the exact field (docs/benchmarks/core.md, "ODE samplers"). 30 is also the value the
image networks had been measured with on the 8×8 digits (dopri5: 116 evaluations against 260
with ω_K = 1000).

Every velocity network of flow-core and the plugins defaults to :data:`MAX_FREQUENCY`; the
average-velocity networks of MeanFlow default to :data:`AVERAGE_MAX_FREQUENCY`, because their
target contains ∂u/∂r, which the highest time frequencies scale up (Geng et al. 2025,
arXiv:2505.13447). A larger ``max_frequency`` may still be passed explicitly.
"""

from __future__ import annotations

import math
from typing import Final

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError

__all__ = ["AVERAGE_MAX_FREQUENCY", "MAX_FREQUENCY", "SinusoidalTimeEmbedding"]

MAX_FREQUENCY: Final[float] = 30.0
"""The default highest angular frequency ω_K of a time embedding, 30 rad per unit time (under
5 periods over t ∈ [0, 1]). No network's default exceeds it."""

AVERAGE_MAX_FREQUENCY: Final[float] = 10.0
"""The default ω_K of the average-velocity (MeanFlow) networks, whose target differentiates
the network in time: with ω_K = 1000 that target grew without bound on 2-D data, with 10 it
trained stably."""


class SinusoidalTimeEmbedding(nn.Module):
    """φ(t) of times ``(B,)``: shape ``(B, features)``, sines then cosines.

    The frequencies are a non-persistent buffer, so the module adds no state-dict keys and
    checkpoints do not depend on it. ``max_frequency`` is kept as the attribute of that name.

    Args:
        features: number of features 2K (even, at least 2).
        max_frequency: the highest angular frequency ω_K (at least 1); ω_1 = 1.
        kind: the owning network's name, for error messages.

    Raises:
        ConfigError: ``features`` odd or below 2, or ``max_frequency`` below 1.
    """

    frequencies: Tensor

    def __init__(
        self, features: int, max_frequency: float = MAX_FREQUENCY, kind: str = "time embedding"
    ) -> None:
        super().__init__()
        if features < 2 or features % 2:
            raise ConfigError(
                f"{kind}: time_embedding (the number of time features) must be even and >= 2, "
                f"got {features}"
            )
        if not max_frequency >= 1.0:
            raise ConfigError(f"{kind}: max_frequency must be >= 1, got {max_frequency}")
        self.features = features
        self.max_frequency = float(max_frequency)
        self.register_buffer(
            "frequencies",
            torch.logspace(0.0, math.log10(max_frequency), features // 2),
            persistent=False,
        )

    def forward(self, t: Tensor) -> Tensor:
        """The features of ``t`` ``(B,)``, computed in the wider of t's and the buffer's dtypes."""
        dtype = self.frequencies.dtype
        if t.is_floating_point():
            dtype = torch.promote_types(t.dtype, dtype)
        angles = t[:, None].to(dtype) * self.frequencies.to(dtype)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    def extra_repr(self) -> str:
        return f"features={self.features}, max_frequency={self.max_frequency:g}"
