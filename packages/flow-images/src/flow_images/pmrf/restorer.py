"""Stage 1 of PMRF: the minimum-MSE restorer f(y) ≈ E[x | y] and its objective.

Ohayon, Michaeli & Elad 2025 (arXiv 2410.00418): f* = argmin_f E‖x − f(y)‖², whose
minimiser is the posterior mean. :class:`ConvRestorer` is a small residual convolutional
network predicting x from the observation y (and, for inpainting, its mask):

    f(y) = y_C + conv_out(h),  h = blocks(conv_in(y)),

y_C the observation's first C channels, each block h ← h + conv(SiLU(N(conv(SiLU(N(h)))))),
with N GroupNorm or the registered norm named by ``norm`` (over channels). The output conv
starts at zero, so the untrained restorer returns its input.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.protocols import Batch
from flow_images.networks.blocks import zero_init
from flow_images.networks.channelnorm import ChannelNorm

__all__ = ["ConvRestorer", "RestorerMSE"]


class _Block(nn.Module):
    def __init__(self, width: int, norm: str | None) -> None:
        super().__init__()
        self.norm1 = ChannelNorm(width, norm)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = ChannelNorm(width, norm)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, h: Tensor) -> Tensor:
        out: Tensor = h + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(h))))))
        return out


class ConvRestorer(nn.Module):
    """f(y): observation ``(B, C_obs, S, S)`` → image ``(B, C, S, S)``; see the module docstring.

    Args:
        in_channels: observation channels C_obs (C, or C + 1 with an inpainting mask).
        out_channels: image channels C (≤ C_obs).
        width: channels of the hidden layers.
        depth: residual blocks.
        norm: ``None`` (GroupNorm) or a registered norm (``norm=power`` with flow-norms).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 32,
        depth: int = 4,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, width, depth) < 1 or out_channels > in_channels:
            raise ConfigError(
                "restorer: channels, width and depth must be >= 1 and out_channels <= in_channels,"
                f" got in={in_channels}, out={out_channels}, width={width}, depth={depth}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv_in = nn.Conv2d(in_channels, width, 3, padding=1)
        self.blocks = nn.Sequential(*[_Block(width, norm) for _ in range(depth)])
        self.norm_out = ChannelNorm(width, norm)
        self.conv_out = nn.Conv2d(width, out_channels, 3, padding=1)
        zero_init(self.conv_out)

    def forward(self, y: Tensor) -> Tensor:
        if y.ndim != 4 or y.shape[1] != self.in_channels:
            raise FlowError(
                f"restorer: observations must be (B, {self.in_channels}, H, W),"
                f" got {tuple(y.shape)}"
            )
        h = self.blocks(self.conv_in(y))
        out: Tensor = y[:, : self.out_channels] + self.conv_out(F.silu(self.norm_out(h)))
        return out


class RestorerMSE:
    """The MSE objective of the restorer: mean ‖f(y) − x‖² over a batch ``{"y", "x1"}``."""

    model_kind: ClassVar[str] = "restorer"

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        missing = {"y", "x1"} - set(batch)
        if missing:
            raise FlowError(f"restorer objective: the batch lacks {sorted(missing)}")
        loss = F.mse_loss(model(batch["y"]), batch["x1"])
        return loss, {"loss": float(loss.detach())}
