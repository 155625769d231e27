"""The invertible rescaling network of IRN (Xiao et al. 2020, arXiv 2005.05650), with an
optional downscaling latent (the dual-latent variant; Zhang et al. 2022, ACM MM).

Per 2× scale, a downscaling module: the Haar split (:mod:`~flow_images.rescale.haar`), then
``blocks`` invertible affine-coupling blocks on the split (x1 = the first C channels, the
low-pass branch; x2 = the rest):

    y1 = x1 + φ(x2),
    y2 = x2 ⊙ exp(s(y1)) + η(y1),   s(y1) = clamp·(2·sigmoid(ρ(y1)) − 1),

exactly inverted by x2 = (y2 − η(y1)) ⊙ exp(−s(y1)), x1 = y1 − φ(x2). After the last
module the first C channels are the low-resolution image y and the rest the latent z of
the lost detail (3C·(s² − 1)/3 channels for scale s). φ, ρ, η are small conv nets
(conv → norm → SiLU → conv, the last conv zero-initialised, so every block starts as the
identity and the whole network as the Haar average).

**Dual latent** (``dual_channels = d > 0``): a downscaling latent z_d ~ N(0, I) of d channels
at the low resolution joins x2 before the last module's blocks, so that the network maps
(x, z_d) ↦ (y, z_u) bijectively and the low-resolution image may vary with z_d — the
ambiguity of the downscaling kernel. Upscaling inverts (y, z_u) with z_u ~ N(0, I) and
discards the recovered z_d (regularised towards N(0, I) by the objective). This is our reading
of the dual-latent paper; its exact architecture is not reproduced.
"""

from __future__ import annotations

from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_images.networks.blocks import zero_init
from flow_images.networks.channelnorm import ChannelNorm
from flow_images.rescale.haar import haar_merge, haar_split

__all__ = ["CouplingBlock", "InvertibleRescaler"]

SCALES = (2, 4)


class _Subnet(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, hidden: int, norm: str | None) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(channels_in, hidden, 3, padding=1)
        self.norm = ChannelNorm(hidden, norm)
        self.conv_out = nn.Conv2d(hidden, channels_out, 3, padding=1)
        zero_init(self.conv_out)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv_out(F.silu(self.norm(self.conv_in(x))))
        return out


class CouplingBlock(nn.Module):
    """IRN's InvBlock on channels ``[x1 (split), x2 (rest)]``; see the module docstring."""

    def __init__(
        self, channels: int, split: int, hidden: int, clamp: float, norm: str | None
    ) -> None:
        super().__init__()
        self.split = split
        self.clamp = clamp
        rest = channels - split
        self.phi = _Subnet(rest, split, hidden, norm)
        self.rho = _Subnet(split, rest, hidden, norm)
        self.eta = _Subnet(split, rest, hidden, norm)

    def _scale(self, y1: Tensor) -> Tensor:
        return self.clamp * (2 * torch.sigmoid(self.rho(y1)) - 1)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 + self.phi(x2)
        y2 = x2 * torch.exp(self._scale(y1)) + self.eta(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        x2 = (y2 - self.eta(y1)) * torch.exp(-self._scale(y1))
        return torch.cat([y1 - self.phi(x2), x2], dim=1)


class InvertibleRescaler(nn.Module):
    """x ``(B, C, S, S)`` (and z_d) ↔ (y ``(B, C, S/s, S/s)``, z); see the module docstring.

    Args:
        channels: image channels C.
        scale: 2 or 4 (one downscaling module per factor 2).
        blocks: coupling blocks per module.
        hidden: channels of the coupling subnets.
        clamp: bound of the log-scale s.
        dual_channels: channels d of the downscaling latent z_d (0: IRN's single latent).
        norm: ``None`` (GroupNorm in the subnets) or a registered norm.
    """

    model_kind: ClassVar[str] = "rescaling"

    def __init__(
        self,
        channels: int = 3,
        scale: int = 2,
        blocks: int = 4,
        hidden: int = 32,
        clamp: float = 1.0,
        dual_channels: int = 0,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        if scale not in SCALES:
            raise ConfigError(f"rescaler: scale must be one of {SCALES}, got {scale}")
        if min(channels, blocks, hidden) < 1 or dual_channels < 0 or not clamp > 0:
            raise ConfigError(
                "rescaler: channels, blocks, hidden must be >= 1, dual_channels >= 0, clamp > 0;"
                f" got {channels}, {blocks}, {hidden}, {dual_channels}, {clamp}"
            )
        self.channels = channels
        self.scale = scale
        self.dual_channels = dual_channels
        self.levels = 1 if scale == 2 else 2
        self.modules_ = nn.ModuleList()
        width = channels
        for level in range(self.levels):
            width *= 4
            extra = dual_channels if level == self.levels - 1 else 0
            self.modules_.append(
                nn.ModuleList(
                    [
                        CouplingBlock(width + extra, channels, hidden, clamp, norm)
                        for _ in range(blocks)
                    ]
                )
            )
        self.latent_channels = width + dual_channels - channels

    def _check(self, x: Tensor) -> None:
        if (
            x.ndim != 4
            or x.shape[1] != self.channels
            or x.shape[2] % self.scale
            or x.shape[3] % self.scale
        ):
            raise FlowError(
                f"rescaler: images must be (B, {self.channels}, H, W) with H and W divisible by"
                f" {self.scale}, got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor, z_d: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Downscale: ``(y, z)`` of ``x``; the dual variant needs ``z_d`` ``(B, d, S/s, S/s)``."""
        self._check(x)
        h = x
        for level, blocks in enumerate(self.modules_):
            h = haar_split(h)
            if level == self.levels - 1 and self.dual_channels:
                expected = (h.shape[0], self.dual_channels, *h.shape[2:])
                if z_d is None or tuple(z_d.shape) != expected:
                    got = None if z_d is None else tuple(z_d.shape)
                    raise FlowError(f"rescaler: z_d must have shape {expected}, got {got}")
                h = torch.cat([h, z_d], dim=1)
            for block in cast(nn.ModuleList, blocks):
                h = block(h)
        return h[:, : self.channels], h[:, self.channels :]

    def inverse(self, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor | None]:
        """Upscale: ``(x, recovered z_d)`` from ``y`` and ``z`` (z_d is ``None`` without it)."""
        if (
            y.ndim != 4
            or z.ndim != 4
            or z.shape[1] != self.latent_channels
            or y.shape[1] != self.channels
        ):
            raise FlowError(
                f"rescaler: y must be (B, {self.channels}, h, w) and z (B, {self.latent_channels},"
                f" h, w); got {tuple(y.shape)} and {tuple(z.shape)}"
            )
        h = torch.cat([y, z], dim=1)
        z_d: Tensor | None = None
        for level in reversed(range(self.levels)):
            for block in reversed(cast(nn.ModuleList, self.modules_[level])):
                h = cast(CouplingBlock, block).inverse(h)
            if level == self.levels - 1 and self.dual_channels:
                h, z_d = h[:, : -self.dual_channels], h[:, -self.dual_channels :]
            h = haar_merge(h)
        return h, z_d

    def sample_latent(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I) of the shape that goes with ``y``."""
        shape = (y.shape[0], self.latent_channels, *y.shape[2:])
        return torch.randn(shape, generator=generator, dtype=y.dtype).to(y.device)

    def sample_dual(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor | None:
        """z_d ~ N(0, I) for images ``x`` (``None`` for the single-latent network)."""
        if not self.dual_channels:
            return None
        shape = (x.shape[0], self.dual_channels, x.shape[2] // self.scale, x.shape[3] // self.scale)
        return torch.randn(shape, generator=generator, dtype=x.dtype).to(x.device)
