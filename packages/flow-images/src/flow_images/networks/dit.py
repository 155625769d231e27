"""A small diffusion transformer (DiT) velocity field for images (NCHW).

Peebles & Xie 2023, "Scalable Diffusion Models with Transformers". The image (B, C, S, S) is
cut into (S/p)² patches of p×p pixels, each linearly embedded to ``width`` channels, plus a
learned position embedding. ``depth`` transformer blocks follow, each conditioned on the
time/label embedding e by adaLN-zero: from SiLU(e) a linear map (initialised to zero) gives
shifts β, scales γ and gates α for the attention and MLP branches, and

    x ← x + α₁·Attention(LN(x)·(1 + γ₁) + β₁),
    x ← x + α₂·MLP(LN(x)·(1 + γ₂) + β₂),

with LN a layer norm without learned affine parameters. A final adaptive layer norm and a
linear layer (also zero at initialisation) map each token back to a p×p×C patch. At
initialisation every block is the identity and the output is the zero field.

:class:`DiTVelocity` is v_θ(x, t, c) regressing x1 − x0 (Lipman et al. 2023; t = 0 noise,
t = 1 data); :class:`DiTAverageVelocity` is the average velocity u_θ(x, r, t, c) over [r, t]
(MeanFlow, Geng et al. 2025) with time input [φ(r), φ(t − r)], so u(x, t, t) = v(x, t). The
attention is written out explicitly so that MeanFlow can differentiate it in forward mode.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.models import AVERAGE_MAX_FREQUENCY, MAX_FREQUENCY
from flow_core.norms import make_norm
from flow_images.networks.attention import SelfAttention
from flow_images.networks.embedding import ConditionEmbedding
from flow_images.networks.inputs import batch_times, check_common, image_batch

__all__ = ["DiTAverageVelocity", "DiTVelocity"]

_TIME_FEATURES = 64


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """``x·(1 + γ) + β`` for tokens ``(B, N, d)`` and per-sample ``(B, d)`` parameters."""
    return x * (1 + scale[:, None]) + shift[:, None]


def _layer_norm(width: int) -> nn.Module:
    return nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)


def _norm(name: str | None, width: int) -> nn.Module:
    """The blocks' normalisation: LayerNorm, or the registered norm ``name``."""
    return make_norm(name, width, _layer_norm, affine=False)


def _zero_linear(width_in: int, width_out: int) -> nn.Linear:
    layer = nn.Linear(width_in, width_out)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class DiTBlock(nn.Module):
    """A transformer block with adaLN-zero conditioning (Peebles & Xie 2023, Fig. 3)."""

    def __init__(
        self,
        kind: str,
        width: int,
        heads: int,
        mlp_ratio: float,
        dropout: float,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        hidden = max(1, round(width * mlp_ratio))
        self.norm_attention = _norm(norm, width)
        self.attention = SelfAttention(kind, width, heads)
        self.norm_mlp = _norm(norm, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(hidden, width),
        )
        self.modulation = _zero_linear(width, 6 * width)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(emb)).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attention(_modulate(self.norm_attention(x), shift1, scale1))
        out: Tensor = x + gate2[:, None] * self.mlp(_modulate(self.norm_mlp(x), shift2, scale2))
        return out


class _DiTField(nn.Module):
    """The DiT trunk, conditioned on the embedding of ``times`` time inputs and a label."""

    model_kind: ClassVar[str]

    def __init__(
        self,
        kind: str,
        times: int,
        in_channels: int,
        image_size: int,
        num_classes: int,
        patch_size: int,
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        dropout: float,
        max_frequency: float,
        norm: str | None,
    ) -> None:
        super().__init__()
        check_common(kind, in_channels, image_size, num_classes, max_frequency)
        for name, value in (("patch_size", patch_size), ("width", width), ("depth", depth)):
            if value < 1:
                raise ConfigError(f"{kind}: {name} must be >= 1, got {value}")
        if image_size % patch_size:
            raise ConfigError(
                f"{kind}: image_size {image_size} must be divisible by patch_size {patch_size}; "
                f"choose a patch_size that divides {image_size}"
            )
        if not mlp_ratio > 0:
            raise ConfigError(f"{kind}: mlp_ratio must be > 0, got {mlp_ratio}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{kind}: dropout must lie in [0, 1), got {dropout}")
        self.kind = kind
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.patch_size = patch_size
        patch_dim = in_channels * patch_size**2
        tokens = (image_size // patch_size) ** 2
        self.embedding = ConditionEmbedding(
            kind, times, width, num_classes, _TIME_FEATURES, max_frequency
        )
        self.patch_embedding = nn.Linear(patch_dim, width)
        self.position = nn.Parameter(torch.randn(1, tokens, width) * 0.02)
        self.blocks = nn.ModuleList(
            [DiTBlock(kind, width, heads, mlp_ratio, dropout, norm) for _ in range(depth)]
        )
        self.norm_out = _norm(norm, width)
        self.modulation_out = _zero_linear(width, 2 * width)
        self.head = _zero_linear(width, patch_dim)

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``), for classifier-free guidance."""
        return self.num_classes

    def _evaluate(self, x: Tensor, times: list[Tensor], cond: Tensor | None) -> Tensor:
        emb = self.embedding(times, cond).to(x.dtype)
        p = self.patch_size
        patches = rearrange(x, "b c (h p) (w q) -> b (h w) (p q c)", p=p, q=p)
        h = self.patch_embedding(patches) + self.position
        for block in self.blocks:
            h = block(h, emb)
        shift, scale = self.modulation_out(F.silu(emb)).chunk(2, dim=1)
        h = self.head(_modulate(self.norm_out(h), shift, scale))
        side = self.image_size // p
        out: Tensor = rearrange(h, "b (h w) (p q c) -> b c (h p) (w q)", h=side, p=p, q=p)
        return out


class DiTVelocity(_DiTField):
    """A DiT velocity field ``v(x, t, cond)`` for images ``(B, C, S, S)``.

    Args:
        in_channels: image channels C.
        image_size: image side S (divisible by ``patch_size``).
        num_classes: number of class labels; 0 for an unconditional field. When positive,
            ``cond`` holds integer labels of shape ``(B,)`` in ``[0, num_classes]``, and
            ``num_classes`` (also ``cond=None``) is the null label.
        patch_size: side p of the square patches; the sequence has (S/p)² tokens.
        width: token width (divisible by ``heads``); also the embedding width.
        depth: number of transformer blocks.
        heads: attention heads.
        mlp_ratio: hidden width of the blocks' MLPs relative to ``width``.
        dropout: dropout rate inside the MLPs.
        max_frequency: highest angular frequency of the sinusoidal time features (t ∈ [0, 1]).
        norm: a registered ``norm`` component instead of the blocks' LayerNorm (built without
            affine parameters where it takes ``affine``, since adaLN modulates it); ``None``
            keeps LayerNorm.

    ``t`` may be a scalar tensor, or have shape ``(B,)`` or ``(B, 1, …, 1)``.
    """

    model_kind: ClassVar[str] = "velocity"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 0,
        patch_size: int = 2,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        max_frequency: float = MAX_FREQUENCY,
        norm: str | None = None,
    ) -> None:
        super().__init__(
            "dit",
            1,
            in_channels,
            image_size,
            num_classes,
            patch_size,
            width,
            depth,
            heads,
            mlp_ratio,
            dropout,
            max_frequency,
            norm,
        )

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        batch = image_batch(self.kind, x, self.in_channels, self.image_size)
        return self._evaluate(x, [batch_times(self.kind, "t", t, batch, x.dtype)], cond)


class DiTAverageVelocity(_DiTField):
    """A DiT average velocity ``u(x, r, t, cond)`` over [r, t], x the state at r.

    The time input is [φ(r), φ(t − r)]; ``u(x, t, t)`` is the instantaneous velocity. Arguments
    as for :class:`DiTVelocity`, with a default ``max_frequency`` of 10 (see
    :class:`flow_images.networks.unet.UNetAverageVelocity`).
    """

    model_kind: ClassVar[str] = "average-velocity"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 0,
        patch_size: int = 2,
        width: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        max_frequency: float = AVERAGE_MAX_FREQUENCY,
        norm: str | None = None,
    ) -> None:
        super().__init__(
            "dit-average",
            2,
            in_channels,
            image_size,
            num_classes,
            patch_size,
            width,
            depth,
            heads,
            mlp_ratio,
            dropout,
            max_frequency,
            norm,
        )

    def forward(self, x: Tensor, r: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        batch = image_batch(self.kind, x, self.in_channels, self.image_size)
        r = batch_times(self.kind, "r", r, batch, x.dtype)
        t = batch_times(self.kind, "t", t, batch, x.dtype)
        return self._evaluate(x, [r, t - r], cond)
