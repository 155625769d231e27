"""TARFlow: a stack of transformer autoregressive flow blocks over image patches.

Zhai et al. 2024, "Normalizing flows are capable generative models" (arXiv 2412.06329). An
image x ∈ R^{C×H×W} is cut into T = (H/p)(W/p) patches of D = C·p² elements (patchify), and
N :class:`~flow_images.tarflow.block.AutoregressiveBlock` s map the token sequence to the
latent z, alternating the token order from block to block. With f = f_N ∘ … ∘ f_1,

    log p(x) = log N(f(x); 0, I) + Σ_k log|det ∂f_k/∂x_{k−1}|,  log|det| of block k = −Σ_i a_i,

so the flow is an invertible ``forward(x, cond) -> (z, logdet)`` that core's ``nll`` objective
trains, and ``inverse(z, cond)`` samples it, block by block in reverse and token by token
with a key-value cache. :class:`AutoregressiveFlow` takes one depth per block, which is also
STARFlow's deep-shallow stack (:mod:`flow_images.starflow.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, cast

import torch
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.gpu import unwrap
from flow_core.models import class_labels
from flow_images.tarflow.block import AutoregressiveBlock
from flow_images.tarflow.guidance import Guidance

__all__ = ["TARFLOW_FAMILY", "AutoregressiveFlow", "GuidedFlow", "TARFlow", "as_family"]


class AutoregressiveFlow(nn.Module):
    """Patchify, then one autoregressive block per entry of ``depths`` (data to latent).

    Args:
        kind: the flow's registered name, for error messages.
        in_channels, image_size: the images' shape ``(C, S, S)``.
        patch_size: patch side p (divides ``image_size``).
        width, heads: every block's transformer width and heads.
        depths: transformer layers of each block, in the data-to-latent order.
        num_classes: class labels (0: unconditional); ``num_classes`` is the null label.
        conditioned: which blocks read the labels (default: all).
        norm: a registered norm for the transformers (``norm=power``), else LayerNorm.
    """

    model_kind: ClassVar[str] = "invertible"

    def __init__(
        self,
        kind: str,
        in_channels: int,
        image_size: int,
        patch_size: int,
        width: int,
        depths: Sequence[int],
        heads: int,
        num_classes: int = 0,
        conditioned: Sequence[bool] | None = None,
        norm: str | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("patch_size", patch_size)):
            if value < 1:
                raise ConfigError(f"{kind}: {name} must be >= 1, got {value}")
        if image_size % patch_size:
            raise ConfigError(
                f"{kind}: patch_size {patch_size} must divide image_size {image_size}"
            )
        if len(depths) < 1:
            raise ConfigError(f"{kind}: needs at least one block")
        if num_classes < 0:
            raise ConfigError(f"{kind}: num_classes must be >= 0, got {num_classes}")
        conditioned = [True] * len(depths) if conditioned is None else list(conditioned)
        self.kind = kind
        self.in_channels, self.image_size, self.patch_size = in_channels, image_size, patch_size
        self.num_classes = num_classes
        self.sequence_length = (image_size // patch_size) ** 2
        self.blocks = nn.ModuleList(
            AutoregressiveBlock(
                kind,
                in_channels * patch_size**2,
                self.sequence_length,
                width,
                depth,
                heads,
                num_classes if wants_labels else 0,
                flip=index % 2 == 1,
                norm=norm,
            )
            for index, (depth, wants_labels) in enumerate(zip(depths, conditioned, strict=True))
        )

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``)."""
        return self.num_classes

    @property
    def flow_blocks(self) -> list[AutoregressiveBlock]:
        """The blocks in the data-to-latent order."""
        return [cast(AutoregressiveBlock, block) for block in self.blocks]

    def tokens(self, x: Tensor) -> Tensor:
        """Images ``(B, C, S, S)`` to patch tokens ``(B, T, C·p²)``."""
        shape = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise FlowError(
                f"{self.kind}: expected images of shape (B, {shape}), got {tuple(x.shape)}"
            )
        p = self.patch_size
        return rearrange(x, "b c (h p) (w q) -> b (h w) (c p q)", p=p, q=p)

    def image(self, tokens: Tensor) -> Tensor:
        """Patch tokens back to images (the inverse of :meth:`tokens`)."""
        side = self.image_size // self.patch_size
        p = self.patch_size
        return rearrange(tokens, "b (h w) (c p q) -> b c (h p) (w q)", h=side, p=p, q=p)

    def labels(self, cond: Tensor | None, batch: int, device: torch.device) -> Tensor | None:
        """Checked labels for a conditional flow (``None`` means the null label)."""
        return class_labels(self.kind, cond, self.num_classes, batch, device)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data to latent: ``(z, log|det ∂z/∂x|)`` with z shaped like x."""
        tokens = self.tokens(x)
        labels = self.labels(cond, x.shape[0], x.device)
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for block in self.blocks:
            tokens, step = block(tokens, labels)
            logdet = logdet + step
        return self.image(tokens), logdet

    def inverse(
        self,
        z: Tensor,
        cond: Tensor | None = None,
        guidance: Guidance | None = None,
        cached: bool = True,
    ) -> Tensor:
        """Latent to data by sequential decoding: N·(T − 1) transformer passes."""
        tokens = self.tokens(z)
        labels = self.labels(cond, z.shape[0], z.device)
        for block in reversed(self.flow_blocks):
            tokens = block.inverse(tokens, labels, guidance, cached)
        return self.image(tokens)


class TARFlow(AutoregressiveFlow):
    """TARFlow (Zhai et al. 2024): ``blocks`` blocks of ``depth`` causal layers each.

    Args:
        in_channels, image_size: the images' shape.
        patch_size: patch side p.
        width: transformer width.
        depth: causal-transformer layers per block.
        blocks: number of flow blocks N.
        heads: attention heads.
        num_classes: class labels (0: unconditional).
        norm: a registered norm for the transformers, else LayerNorm.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        patch_size: int = 2,
        width: int = 64,
        depth: int = 2,
        blocks: int = 4,
        heads: int = 4,
        num_classes: int = 0,
        norm: str | None = None,
    ) -> None:
        if blocks < 1:
            raise ConfigError(f"tarflow: blocks must be >= 1, got {blocks}")
        super().__init__(
            "tarflow",
            in_channels,
            image_size,
            patch_size,
            width,
            [depth] * blocks,
            heads,
            num_classes,
            norm=norm,
        )


class GuidedFlow(nn.Module):
    """A TARFlow-family flow whose :meth:`inverse` is guided (its density is the flow's).

    ``forward`` is the flow's own (the likelihood is never guided); ``inverse`` decodes with
    ``guidance`` (:class:`~flow_images.tarflow.guidance.Guidance`).
    """

    model_kind: ClassVar[str] = "invertible"

    def __init__(self, flow: AutoregressiveFlow, guidance: Guidance) -> None:
        super().__init__()
        self.flow = flow
        self.guidance = guidance

    @property
    def num_classes(self) -> int:
        """The flow's class count."""
        return self.flow.num_classes

    @property
    def null_label(self) -> int:
        """The flow's null label."""
        return self.flow.null_label

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The flow's ``(z, logdet)``, unguided."""
        out: tuple[Tensor, Tensor] = self.flow(x, cond)
        return out

    def inverse(self, z: Tensor, cond: Tensor | None = None, cached: bool = True) -> Tensor:
        """Guided sequential decoding."""
        return self.flow.inverse(z, cond, self.guidance, cached)


TARFLOW_FAMILY = (AutoregressiveFlow, GuidedFlow)
"""The models the GS-Jacobi sampler and the denoising step accept."""


def as_family(model: nn.Module, where: str) -> tuple[AutoregressiveFlow, Guidance | None]:
    """The autoregressive flow behind ``model`` and its guidance (``None``: unguided)."""
    inner = unwrap(model)
    if isinstance(inner, GuidedFlow):
        return inner.flow, inner.guidance
    if isinstance(inner, AutoregressiveFlow):
        return inner, None
    raise FlowError(
        f"{where} works on TARFlow-family flows (tarflow, starflow), got {type(inner).__name__}"
    )
