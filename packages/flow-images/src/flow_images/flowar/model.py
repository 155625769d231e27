"""FlowAR (Ren et al. 2024, arXiv 2412.15205) on pixels: next-scale prediction with a flow-
matching head per scale.

**Pyramid.** An image x of side S is represented at the scales s_1 < … < s_K = S, each double
the previous one (2, 4, 8 on the 8×8 digits): x_k = area-average of x to s_k × s_k.

**Scale-wise AR transformer.** The tokens of scale k are the pixels of the previous scale,
upsampled to s_k × s_k (x_0 = a learned start map at s_1), embedded with a position and a
scale embedding; a transformer with a block-causal mask — tokens of scale k attend to the
tokens of scales ≤ k — and the class label through adaLN produces one condition vector per
token of every scale, c_k ∈ R^{s_k² × d}.

**Per-scale flow head.** For each scale a small transformer v_k(x_t, t, c_k) on the s_k²
pixels of the noisy scale image x_t = (1 − t)·ε + t·x_k (t = 0 noise, t = 1 data), with
spatial adaLN: every block's scale, shift and gate come from c_k at that position plus the
time embedding. It regresses the velocity x_k − ε.

**Sampling.** For k = 1 … K: the transformer runs on the scales generated so far, and the
head's ODE is integrated from ε ~ N(0, I) with any of core's samplers (``steps`` per scale,
so NFE = K·steps); the result is the next scale's input. The last scale is the image.
"""

from __future__ import annotations

import itertools
from typing import ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MAX_FREQUENCY, class_labels
from flow_images.networks.blocks import AdaLNBlock, zero_linear
from flow_images.networks.embedding import ConditionEmbedding

__all__ = ["FlowARModel", "ScaleField", "pyramid"]

_TIME_FEATURES = 64


def pyramid(x: Tensor, scales: tuple[int, ...]) -> list[Tensor]:
    """``[x_1, …, x_K]``: ``x`` (B, C, S, S) area-averaged to each side in ``scales``."""
    if x.ndim != 4 or x.shape[-1] != scales[-1] or x.shape[-2] != scales[-1]:
        raise FlowError(
            f"flowar: images must be (B, C, {scales[-1]}, {scales[-1]}) for scales {scales},"
            f" got {tuple(x.shape)}"
        )
    return [F.interpolate(x, size=(s, s), mode="area") for s in scales]


def _tokens(image: Tensor) -> Tensor:
    return rearrange(image, "b c h w -> b (h w) c")


class FlowHead(nn.Module):
    """v_k(x_t, t, c_k): a small transformer with spatial adaLN on one scale's pixels."""

    def __init__(
        self, channels: int, side: int, width: int, depth: int, heads: int, norm: str | None
    ) -> None:
        super().__init__()
        self.side = side
        self.embed = nn.Linear(channels, width)
        self.position = nn.Parameter(torch.randn(1, side * side, width) * 0.02)
        self.time = ConditionEmbedding("flowar", 1, width, 0, _TIME_FEATURES, MAX_FREQUENCY)
        self.blocks = nn.ModuleList([AdaLNBlock(width, heads, norm) for _ in range(depth)])
        self.out = zero_linear(width, channels)

    def forward(self, x: Tensor, t: Tensor, condition: Tensor) -> Tensor:
        condition = condition + self.time([t], None)[:, None]
        h = self.embed(_tokens(x)) + self.position
        for block in self.blocks:
            h = block(h, condition)
        out: Tensor = rearrange(self.out(h), "b (h w) c -> b c h w", h=self.side)
        return out


class ScaleField(nn.Module):
    """The head of one scale with its condition fixed: a velocity field ``v(x, t)`` for core's
    samplers."""

    model_kind: ClassVar[str] = "velocity"

    def __init__(self, head: FlowHead, condition: Tensor) -> None:
        super().__init__()
        self.head = head
        self.condition = condition

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        times = t.reshape(1).expand(x.shape[0]) if t.numel() == 1 else t.reshape(x.shape[0])
        out: Tensor = self.head(x, times.to(x.dtype), self.condition)
        return out


class FlowARModel(nn.Module):
    """FlowAR's AR transformer and per-scale heads; see the module docstring.

    Args:
        channels: image channels C.
        scales: the pyramid's sides, each double the previous (e.g. ``(2, 4, 8)``).
        num_classes: class labels (0: unconditional).
        width, depth, heads: the AR transformer's token width, blocks and heads.
        head_depth: blocks of each scale's flow head (same width).
        norm: ``None`` (LayerNorm) or a registered norm for every block.
    """

    model_kind: ClassVar[str] = "flowar"
    owner: Tensor
    mask: Tensor

    def __init__(
        self,
        channels: int = 1,
        scales: tuple[int, ...] = (2, 4, 8),
        num_classes: int = 10,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
        head_depth: int = 2,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        scales = tuple(scales)
        if not scales or scales[0] < 1 or any(b != 2 * a for a, b in itertools.pairwise(scales)):
            raise ConfigError(f"flowar: each scale must double the previous one, got {scales}")
        if min(channels, width, depth, heads, head_depth) < 1:
            raise ConfigError("flowar: channels, width, depth, heads and head_depth must be >= 1")
        self.channels = channels
        self.scales = scales
        self.num_classes = num_classes
        self.start = nn.Parameter(torch.zeros(1, channels, scales[0], scales[0]))
        self.embed = nn.Linear(channels, width)
        total = sum(s * s for s in scales)
        self.position = nn.Parameter(torch.randn(1, total, width) * 0.02)
        self.scale_embedding = nn.Embedding(len(scales), width)
        self.label = nn.Embedding(num_classes + 1, width) if num_classes else None
        self.blocks = nn.ModuleList([AdaLNBlock(width, heads, norm) for _ in range(depth)])
        self.heads = nn.ModuleList(
            [FlowHead(channels, s, width, head_depth, heads, norm) for s in scales]
        )
        owner = torch.cat([torch.full((s * s,), k) for k, s in enumerate(scales)])
        self.register_buffer("owner", owner, persistent=False)
        self.register_buffer("mask", owner[None, :] <= owner[:, None], persistent=False)

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``)."""
        return self.num_classes

    def inputs(self, images: list[Tensor]) -> Tensor:
        """The AR transformer's input maps: the start map, then each of ``images[:-1]``
        (scales 1 … K − 1) upsampled to the next scale, as tokens ``(B, Σ s_k², C)``."""
        batch = images[0].shape[0] if images else 1
        maps = [self.start.expand(batch, -1, -1, -1)]
        maps += [F.interpolate(image, scale_factor=2.0, mode="nearest") for image in images[:-1]]
        return torch.cat([_tokens(m) for m in maps], dim=1)

    def conditions(self, images: list[Tensor], label: Tensor | None) -> list[Tensor]:
        """c_1 … c_n, ``(B, s_k², d)`` each, n = ``len(images)``: c_k depends on the scale
        images before k only (the last entry of ``images`` just sets n)."""
        tokens = self.inputs(images)
        count = tokens.shape[1]
        h = self.embed(tokens) + self.position[:, :count]
        h = h + self.scale_embedding(self.owner[:count])
        emb = torch.zeros(h.shape[0], h.shape[-1], dtype=h.dtype, device=h.device)
        labels = class_labels("flowar", label, self.num_classes, h.shape[0], h.device)
        if self.label is not None and labels is not None:
            emb = self.label(labels).to(h.dtype)
        mask = self.mask[:count, :count]
        for block in self.blocks:
            h = block(h, emb, mask)
        sizes = [s * s for s in self.scales[: len(images)]]
        return list(h.split(sizes, dim=1))

    def sample(self, noise: list[Tensor], label: Tensor | None, sampler: object) -> Tensor:
        """Generate scale by scale from ``noise`` (one ``(B, C, s_k, s_k)`` per scale) with
        ``sampler`` (core's ``sample(model, x0)``); returns the last scale."""
        generated: list[Tensor] = []
        for k, x0 in enumerate(noise):
            condition = self.conditions([*generated, x0], label)[k]
            field = ScaleField(self.heads[k], condition)  # type: ignore[arg-type]
            generated.append(sampler.sample(field, x0))  # type: ignore[attr-defined]
        return generated[-1]
