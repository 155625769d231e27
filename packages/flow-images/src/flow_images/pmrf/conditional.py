"""The posterior-sampling baseline: a velocity field conditioned on the observation.

Posterior sampling draws x ~ p(x | y) by flow matching from Gaussian noise (t = 0) to the
clean image (t = 1) with the observation as condition (Ohayon et al. 2025, arXiv 2410.00418,
compare it with PMRF in their distortion-perception plots). :class:`ObservationConditioned`
turns any image velocity network with C + C_obs input channels into v(x, t, y): the state x
and the observation y are concatenated along channels, and the first C output channels are
the velocity (the network returns as many channels as it takes; the rest are unused).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import FlowError

__all__ = ["ObservationConditioned"]


class ObservationConditioned(nn.Module):
    """v(x, t, y) = network([x, y], t)[:, :C]; ``cond`` must be the observation y."""

    model_kind: ClassVar[str] = "velocity"

    def __init__(self, network: nn.Module, channels: int) -> None:
        super().__init__()
        self.network = network
        self.channels = channels

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is None or cond.shape[0] != x.shape[0] or cond.shape[2:] != x.shape[2:]:
            shape = None if cond is None else tuple(cond.shape)
            raise FlowError(
                f"posterior flow: the observation must be (B, C_obs, H, W) matching x"
                f" {tuple(x.shape)}, got {shape}"
            )
        out: Tensor = self.network(torch.cat([x, cond], dim=1), t)
        return out[:, : self.channels]
