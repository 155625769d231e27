"""A multilayer-perceptron velocity field for low-dimensional data.

The network v_θ(x, t, c) regresses the flow-matching target x1 − x0 (Lipman et al. 2023) in
the project convention (t = 0 source, t = 1 data). Time enters through sinusoidal features
(Vaswani et al. 2017; as in Ho et al. 2020 for diffusion), with geometrically spaced angular
frequencies ω_k between 1 and 1000:

    φ(t) = [sin(ω_1 t), …, sin(ω_K t), cos(ω_1 t), …, cos(ω_K t)].

With ``num_classes = C > 0`` the condition c is an integer label in {0, …, C}, where label C
is the null label ∅ used for classifier-free guidance (Ho & Salimans 2022):

    ṽ(x, t, c) = v(x, t, ∅) + w·(v(x, t, c) − v(x, t, ∅)).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError

__all__ = ["MLPVelocity"]


class MLPVelocity(nn.Module):
    """An MLP ``v(x, t, cond)`` with SiLU activations and sinusoidal time features.

    The input is ``[x, φ(t)]``, plus a learned label embedding of size ``time_embedding`` when
    ``num_classes > 0``; ``depth`` hidden layers of width ``hidden`` follow, then a linear
    output. ``x`` may have any shape ``(B, ...)`` with ``dim`` elements per sample; the output
    has the shape of ``x``.

    Args:
        dim: number of elements per sample.
        hidden: width of the hidden layers.
        depth: number of hidden layers (at least 1).
        num_classes: number of class labels; 0 for an unconditional field. When positive,
            ``cond`` holds integer labels of shape ``(B,)`` in ``[0, num_classes]``, and
            ``num_classes`` (also ``cond=None``) is the null label.
        time_embedding: number of sinusoidal time features (even, at least 2).
    """

    frequencies: Tensor

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        num_classes: int = 0,
        time_embedding: int = 32,
    ) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if value < 1:
                raise ConfigError(f"mlp: {name} must be >= 1, got {value}")
        if num_classes < 0:
            raise ConfigError(f"mlp: num_classes must be >= 0, got {num_classes}")
        if time_embedding < 2 or time_embedding % 2:
            raise ConfigError(f"mlp: time_embedding must be even and >= 2, got {time_embedding}")
        self.dim = dim
        self.num_classes = num_classes
        half = time_embedding // 2
        self.register_buffer(
            "frequencies", torch.logspace(0.0, math.log10(1000.0), half), persistent=False
        )
        self.label_embedding = (
            nn.Embedding(num_classes + 1, time_embedding) if num_classes > 0 else None
        )
        width_in = dim + time_embedding * (2 if num_classes > 0 else 1)
        layers: list[nn.Module] = []
        for width in [width_in] + [hidden] * (depth - 1):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``), for classifier-free guidance."""
        return self.num_classes

    def time_features(self, t: Tensor) -> Tensor:
        """The sinusoidal features φ(t), shape ``(B, time_embedding)``, of times ``(B,)``."""
        angles = t[:, None].to(self.frequencies.dtype) * self.frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        batch = x.shape[0]
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.dim:
            raise FlowError(
                f"mlp: x must have shape (B, ...) with {self.dim} elements per sample, "
                f"got {tuple(x.shape)}"
            )
        if t.shape != (batch,):
            raise FlowError(f"mlp: t must have shape ({batch},), got {tuple(t.shape)}")
        features = [x.reshape(batch, self.dim), self.time_features(t).to(x.dtype)]
        if self.label_embedding is not None:
            features.append(self.label_embedding(self._labels(cond, batch, x.device)).to(x.dtype))
        elif cond is not None:
            raise FlowError("mlp: cond was given but the model is unconditional (num_classes=0)")
        out: Tensor = self.net(torch.cat(features, dim=1))
        return out.reshape(x.shape)

    def _labels(self, cond: Tensor | None, batch: int, device: torch.device) -> Tensor:
        if cond is None:
            return torch.full((batch,), self.null_label, dtype=torch.long, device=device)
        integer = not (
            cond.dtype.is_floating_point or cond.is_complex() or cond.dtype == torch.bool
        )
        if cond.shape != (batch,) or not integer:
            raise FlowError(
                f"mlp: cond must be integer labels of shape ({batch},), "
                f"got {cond.dtype} of shape {tuple(cond.shape)}"
            )
        if bool(((cond < 0) | (cond > self.num_classes)).any()):
            raise FlowError(
                f"mlp: labels must lie in [0, {self.num_classes}] ({self.num_classes} is the "
                "null label)"
            )
        return cond.long()
