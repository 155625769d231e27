"""A small RealNVP-style invertible flow of affine coupling layers.

Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation using Real NVP". Each layer k splits
the coordinates with a binary mask m_k (alternating parity from layer to layer), keeps the
masked half and transforms the rest by an affine map whose scale and shift depend only on
the kept half (and the condition c):

    y = m⊙x + (1 − m)⊙(x⊙exp(s(m⊙x, c)) + b(m⊙x, c)),
    log|det ∂y/∂x| = Σ_i (1 − m_i)·s_i(m⊙x, c),
    x = m⊙y + (1 − m)⊙((y − b(m⊙y, c))⊙exp(−s(m⊙y, c))).

``forward`` maps data x to the latent z (whose reference density is N(0, I)) and returns
log|det ∂z/∂x|, so the change of variables gives log p(x) = log N(z; 0, I) + logdet (see
:class:`~flow_core.objectives.likelihood.MaximumLikelihood`); ``inverse`` maps z back to x,
and sampling is ``inverse(torch.randn(...))``. The log-scales are bounded as
s = a·tanh(ŝ/a) with a learned per-coordinate a, and every layer starts as the identity.
"""

from __future__ import annotations

import math
from typing import ClassVar, cast

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError

__all__ = ["AffineCouplingFlow"]


class _Coupling(nn.Module):
    """One affine coupling layer with a fixed mask."""

    mask: Tensor

    def __init__(self, mask: Tensor, hidden: int, label_features: int) -> None:
        super().__init__()
        dim = mask.numel()
        self.register_buffer("mask", mask, persistent=False)
        out = nn.Linear(hidden, 2 * dim)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(
            nn.Linear(dim + label_features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            out,
        )
        self.log_scale_bound = nn.Parameter(torch.zeros(dim))

    def scale_shift(self, kept: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        inputs = kept if labels is None else torch.cat([kept, labels], dim=1)
        raw_scale, shift = self.net(inputs).chunk(2, dim=1)
        bound = self.log_scale_bound.exp()
        free = 1 - self.mask
        return free * bound * torch.tanh(raw_scale / bound), free * shift

    def forward(self, x: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        scale, shift = self.scale_shift(self.mask * x, labels)
        return x * scale.exp() + shift, scale.sum(dim=1)

    def inverse(self, y: Tensor, labels: Tensor | None) -> Tensor:
        scale, shift = self.scale_shift(self.mask * y, labels)
        return (y - shift) * (-scale).exp()


class AffineCouplingFlow(nn.Module):
    """An invertible flow ``forward(x, cond) -> (z, logdet)``, ``inverse(z, cond) -> x``.

    ``x`` may have any shape ``(B, ...)`` with ``dim`` elements per sample; ``z`` has the same
    shape and ``logdet`` has shape ``(B,)``.

    Args:
        dim: number of elements per sample (at least 2).
        hidden: width of each conditioner's two hidden layers.
        layers: number of coupling layers (at least 2, so every coordinate is transformed).
        num_classes: number of class labels; 0 for an unconditional flow. When positive,
            ``cond`` holds integer labels of shape ``(B,)`` in ``[0, num_classes]``, and
            ``num_classes`` (also ``cond=None``) is the null label.
    """

    model_kind: ClassVar[str] = "invertible"

    def __init__(
        self, dim: int = 2, hidden: int = 64, layers: int = 6, num_classes: int = 0
    ) -> None:
        super().__init__()
        if dim < 2:
            raise ConfigError(f"coupling-flow: dim must be >= 2, got {dim}")
        if hidden < 1:
            raise ConfigError(f"coupling-flow: hidden must be >= 1, got {hidden}")
        if layers < 2:
            raise ConfigError(f"coupling-flow: layers must be >= 2, got {layers}")
        if num_classes < 0:
            raise ConfigError(f"coupling-flow: num_classes must be >= 0, got {num_classes}")
        self.dim = dim
        self.num_classes = num_classes
        label_features = min(hidden, 16) if num_classes > 0 else 0
        self.label_embedding = (
            nn.Embedding(num_classes + 1, label_features) if num_classes > 0 else None
        )
        parity = torch.arange(dim) % 2
        self.layers = nn.ModuleList(
            _Coupling((parity == k % 2).to(torch.get_default_dtype()), hidden, label_features)
            for k in range(layers)
        )

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``)."""
        return self.num_classes

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Data to latent: ``(z, log|det ∂z/∂x|)``."""
        flat, labels = self._prepare(x, cond)
        logdet = torch.zeros(flat.shape[0], dtype=flat.dtype, device=flat.device)
        for layer in self.layers:
            flat, step = layer(flat, labels)
            logdet = logdet + step
        return flat.reshape(x.shape), logdet

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Latent to data, the exact inverse of :meth:`forward`."""
        flat, labels = self._prepare(z, cond)
        for layer in reversed(self.layers):
            flat = cast(_Coupling, layer).inverse(flat, labels)
        return flat.reshape(z.shape)

    def _prepare(self, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor | None]:
        batch = x.shape[0] if x.ndim else 0
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.dim:
            raise FlowError(
                f"coupling-flow: input must have shape (B, ...) with {self.dim} elements per "
                f"sample, got {tuple(x.shape)}"
            )
        flat = x.reshape(batch, self.dim)
        if self.label_embedding is None:
            if cond is not None:
                raise FlowError("coupling-flow: cond was given but the flow is unconditional")
            return flat, None
        if cond is None:
            cond = torch.full((batch,), self.null_label, dtype=torch.long, device=x.device)
        if cond.shape != (batch,) or cond.dtype.is_floating_point or cond.dtype == torch.bool:
            raise FlowError(
                f"coupling-flow: cond must be integer labels of shape ({batch},), got "
                f"{cond.dtype} of shape {tuple(cond.shape)}"
            )
        if bool(((cond < 0) | (cond > self.num_classes)).any()):
            raise FlowError(f"coupling-flow: labels must lie in [0, {self.num_classes}]")
        return flat, self.label_embedding(cond.long()).to(flat.dtype)
