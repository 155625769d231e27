"""A small U-Net velocity field for images (NCHW).

The architecture follows the diffusion U-Net of Ho et al. 2020 as refined by Dhariwal & Nichol
2021 (ADM), scaled down for 8×8 to 32×32 images: residual blocks of
GroupNorm → SiLU → 3×3 conv, the time/label embedding e entering each block through a
scale-and-shift of its second normalisation ("adaptive group norm"),

    h ← GroupNorm(h)·(1 + s(e)) + b(e),

one resolution level per entry of ``channel_mults`` (halved by a strided 3×3 conv between
levels; doubled back by nearest-neighbour upsampling, without the conv ADM adds after it, to
save compute, since the next block's convs follow anyway), skip connections concatenated
across the U, and self-attention at the lowest resolution. Each block's last conv and the
output conv start at zero (as in ADM), so every residual branch starts at zero and the initial
network is the zero field.

The network regresses the flow-matching target x1 − x0 (Lipman et al. 2023; t = 0 noise, t = 1
data): :class:`UNetVelocity` is v_θ(x, t, c). :class:`UNetAverageVelocity` is the average
velocity u_θ(x, r, t, c) over [r, t] from the state x at r (MeanFlow, Geng et al. 2025), with
the time input [φ(r), φ(t − r)] of :class:`flow_core.models.mlp.MLPAverageVelocity`;
u(x, t, t) = v(x, t). The forward pass has no in-place updates of its inputs and no
data-dependent branches, so MeanFlow can differentiate it in forward mode.
"""

from __future__ import annotations

import math
from typing import ClassVar, cast

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.models import AVERAGE_MAX_FREQUENCY, MAX_FREQUENCY
from flow_images.networks.attention import SelfAttention
from flow_images.networks.embedding import ConditionEmbedding
from flow_images.networks.inputs import batch_times, check_common, image_batch

__all__ = ["UNetAverageVelocity", "UNetVelocity"]

_TIME_FEATURES = 64


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


def _zero(module: nn.Conv2d | nn.Linear) -> nn.Module:
    nn.init.zeros_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)
    return module


class ResBlock(nn.Module):
    """``skip(x) + conv(drop(SiLU(AdaGN(conv(SiLU(GN(x))), e))))``."""

    def __init__(self, channels_in: int, channels_out: int, emb_width: int, dropout: float) -> None:
        super().__init__()
        self.norm_in = _norm(channels_in)
        self.conv_in = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.modulation = nn.Linear(emb_width, 2 * channels_out)
        self.norm_out = _norm(channels_out)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = _zero(nn.Conv2d(channels_out, channels_out, 3, padding=1))
        self.skip = (
            nn.Conv2d(channels_in, channels_out, 1)
            if channels_in != channels_out
            else nn.Identity()
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv_in(F.silu(self.norm_in(x)))
        scale, shift = rearrange(self.modulation(F.silu(emb)), "b (two c) -> two b c 1 1", two=2)
        h = self.norm_out(h) * (1 + scale) + shift
        out: Tensor = self.skip(x) + self.conv_out(self.dropout(F.silu(h)))
        return out


class AttentionBlock(nn.Module):
    """``x + Attention(GN(x))`` over the H·W positions; the output projection starts at zero."""

    def __init__(self, kind: str, channels: int, heads: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.attention = SelfAttention(kind, channels, heads)
        _zero(self.attention.out)

    def forward(self, x: Tensor) -> Tensor:
        tokens = rearrange(self.norm(x), "b c h w -> b (h w) c")
        mixed: Tensor = rearrange(self.attention(tokens), "b (h w) c -> b c h w", h=x.shape[2])
        return x + mixed


def _refuse_norm(norm: str | None) -> None:
    if norm is not None:
        raise ConfigError(
            f"unet: norm={norm!r} cannot replace the U-Net's GroupNorm, which the time embedding"
            " modulates (adaptive scale and shift); use flow=dit, whose LayerNorm can be"
            " replaced, or leave norm unset"
        )


class _UNetField(nn.Module):
    """The U-Net trunk, conditioned on the embedding of ``times`` time inputs and a label."""

    model_kind: ClassVar[str]

    def __init__(
        self,
        kind: str,
        times: int,
        in_channels: int,
        image_size: int,
        num_classes: int,
        base_channels: int,
        channel_mults: tuple[int, ...],
        num_res_blocks: int,
        attention: bool,
        dropout: float,
        max_frequency: float,
    ) -> None:
        super().__init__()
        check_common(kind, in_channels, image_size, num_classes, max_frequency)
        if base_channels < 1 or num_res_blocks < 1:
            raise ConfigError(
                f"{kind}: base_channels and num_res_blocks must be >= 1, got {base_channels} "
                f"and {num_res_blocks}"
            )
        if not channel_mults or min(channel_mults) < 1:
            raise ConfigError(
                f"{kind}: channel_mults must be a non-empty tuple of positive integers, "
                f"got {channel_mults}"
            )
        factor = 2 ** (len(channel_mults) - 1)
        if image_size % factor:
            raise ConfigError(
                f"{kind}: image_size {image_size} must be divisible by 2**(len(channel_mults) - 1)"
                f" = {factor}; use fewer channel_mults or an image_size divisible by {factor}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{kind}: dropout must lie in [0, 1), got {dropout}")
        self.kind = kind
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        channels = [base_channels * m for m in channel_mults]
        emb_width = 4 * base_channels
        self.embedding = ConditionEmbedding(
            kind, times, emb_width, num_classes, _TIME_FEATURES, max_frequency
        )
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        current = channels[0]
        for level, width in enumerate(channels):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(ResBlock(current, width, emb_width, dropout))
                current = width
            self.down.append(blocks)
            if level < len(channels) - 1:
                self.downsample.append(nn.Conv2d(current, current, 3, stride=2, padding=1))
        self.middle = nn.ModuleList(
            [ResBlock(current, current, emb_width, dropout) for _ in range(2)]
        )
        self.attention = AttentionBlock(kind, current, math.gcd(4, current)) if attention else None
        self.up = nn.ModuleList()
        for level in reversed(range(len(channels))):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(
                    ResBlock(current + channels[level], channels[level], emb_width, dropout)
                )
                current = channels[level]
            self.up.append(blocks)
        self.norm_out = _norm(current)
        self.conv_out = _zero(nn.Conv2d(current, in_channels, 3, padding=1))

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``), for classifier-free guidance."""
        return self.num_classes

    def _evaluate(self, x: Tensor, times: list[Tensor], cond: Tensor | None) -> Tensor:
        emb = self.embedding(times, cond).to(x.dtype)
        h = self.conv_in(x)
        skips: list[Tensor] = []
        for level, blocks in enumerate(self.down):
            for block in cast(nn.ModuleList, blocks):
                h = block(h, emb)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.middle[0](h, emb)
        if self.attention is not None:
            h = self.attention(h)
        h = self.middle[1](h, emb)
        for level, blocks in enumerate(self.up):
            for block in cast(nn.ModuleList, blocks):
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if level < len(self.up) - 1:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        out: Tensor = self.conv_out(F.silu(self.norm_out(h)))
        return out


class UNetVelocity(_UNetField):
    """A U-Net velocity field ``v(x, t, cond)`` for images ``(B, C, S, S)``.

    Args:
        in_channels: image channels C.
        image_size: image side S (divisible by ``2**(len(channel_mults) - 1)``).
        num_classes: number of class labels; 0 for an unconditional field. When positive,
            ``cond`` holds integer labels of shape ``(B,)`` in ``[0, num_classes]``, and
            ``num_classes`` (also ``cond=None``) is the null label.
        base_channels: channels of the first level; the time/label embedding has 4× as many.
        channel_mults: channels of each resolution level, as multiples of ``base_channels``.
        num_res_blocks: residual blocks per level on each side of the U.
        attention: self-attention at the lowest resolution (4 heads, or gcd(4, channels)).
        dropout: dropout rate inside the residual blocks.
        max_frequency: highest angular frequency of the sinusoidal time features (t ∈ [0, 1]).
        norm: must stay ``None``: the U-Net's GroupNorm is modulated by the time embedding
            (adaptive scale and shift), which a per-token norm cannot replace.

    ``t`` may be a scalar tensor, or have shape ``(B,)`` or ``(B, 1, …, 1)``.
    """

    model_kind: ClassVar[str] = "velocity"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 0,
        base_channels: int = 16,
        channel_mults: tuple[int, ...] = (1, 2),
        num_res_blocks: int = 1,
        attention: bool = True,
        dropout: float = 0.0,
        max_frequency: float = MAX_FREQUENCY,
        norm: str | None = None,
    ) -> None:
        _refuse_norm(norm)
        super().__init__(
            "unet",
            1,
            in_channels,
            image_size,
            num_classes,
            base_channels,
            tuple(channel_mults),
            num_res_blocks,
            attention,
            dropout,
            max_frequency,
        )

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        batch = image_batch(self.kind, x, self.in_channels, self.image_size)
        return self._evaluate(x, [batch_times(self.kind, "t", t, batch, x.dtype)], cond)


class UNetAverageVelocity(_UNetField):
    """A U-Net average velocity ``u(x, r, t, cond)`` over [r, t], x the state at r.

    The time input is [φ(r), φ(t − r)]; ``u(x, t, t)`` is the instantaneous velocity, so
    ``lambda x, t, c: model(x, t, t, c)`` is a velocity field. Arguments as for
    :class:`UNetVelocity`; ``r`` and ``t`` may each be a scalar tensor, ``(B,)`` or
    ``(B, 1, …, 1)``. The default ``max_frequency`` is 10, as for
    :class:`flow_core.models.mlp.MLPAverageVelocity`: MeanFlow's target contains ∂u/∂r,
    which high time frequencies scale up.
    """

    model_kind: ClassVar[str] = "average-velocity"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 0,
        base_channels: int = 16,
        channel_mults: tuple[int, ...] = (1, 2),
        num_res_blocks: int = 1,
        attention: bool = True,
        dropout: float = 0.0,
        max_frequency: float = AVERAGE_MAX_FREQUENCY,
        norm: str | None = None,
    ) -> None:
        _refuse_norm(norm)
        super().__init__(
            "unet-average",
            2,
            in_channels,
            image_size,
            num_classes,
            base_channels,
            tuple(channel_mults),
            num_res_blocks,
            attention,
            dropout,
            max_frequency,
        )

    def forward(self, x: Tensor, r: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        batch = image_batch(self.kind, x, self.in_channels, self.image_size)
        r = batch_times(self.kind, "r", r, batch, x.dtype)
        t = batch_times(self.kind, "t", t, batch, x.dtype)
        return self._evaluate(x, [r, t - r], cond)
