"""A multilayer-perceptron velocity field for low-dimensional data.

The network v_θ(x, t, c) regresses the flow-matching target x1 − x0 (Lipman et al. 2023) in
the project convention (t = 0 source, t = 1 data). Time enters through the shared sinusoidal
features of :class:`flow_core.models.time_embedding.SinusoidalTimeEmbedding` (Vaswani et al.
2017; as in Ho et al. 2020 for diffusion), with geometrically spaced angular frequencies ω_k
between 1 and ``max_frequency`` (:data:`~flow_core.models.time_embedding.MAX_FREQUENCY` by
default):

    φ(t) = [sin(ω_1 t), …, sin(ω_K t), cos(ω_1 t), …, cos(ω_K t)].

With ``num_classes = C > 0`` the condition c is an integer label in {0, …, C}, where label C
is the null label ∅ used for classifier-free guidance (Ho & Salimans 2022):

    ṽ(x, t, c) = v(x, t, ∅) + w·(v(x, t, c) − v(x, t, ∅)).

:class:`MLPAverageVelocity` is the same network for an average velocity u_θ(x, r, t, c)
(MeanFlow, Geng et al. 2025, in the project convention: x is the state at the start time r,
r ≤ t, and x_t = x + (t − r)·u). Following the paper's best embedding, which feeds the state's
own time and the interval length, it embeds φ(r) and φ(t − r); u(x, t, t) is then an
instantaneous velocity. Its forward pass is a pure function of (x, r, t) with no in-place
updates or data-dependent branches on them, so :func:`torch.func.jvp` can differentiate it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models.labels import class_labels
from flow_core.models.time_embedding import (
    AVERAGE_MAX_FREQUENCY,
    MAX_FREQUENCY,
    SinusoidalTimeEmbedding,
)
from flow_core.norms import make_norm

__all__ = ["MLPAverageVelocity", "MLPVelocity"]


class _MLPField(nn.Module):
    """Shared trunk: ``[x, φ(τ_1), …, φ(τ_k), label embedding]`` through a SiLU MLP."""

    def __init__(
        self,
        kind: str,
        times: int,
        dim: int,
        hidden: int,
        depth: int,
        num_classes: int,
        time_embedding: int,
        max_frequency: float,
        norm: str | None,
    ) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("hidden", hidden), ("depth", depth)):
            if value < 1:
                raise ConfigError(f"{kind}: {name} must be >= 1, got {value}")
        if num_classes < 0:
            raise ConfigError(f"{kind}: num_classes must be >= 0, got {num_classes}")
        self.time_features = SinusoidalTimeEmbedding(time_embedding, max_frequency, kind)
        self.kind = kind
        self.dim = dim
        self.num_classes = num_classes
        self.label_embedding = (
            nn.Embedding(num_classes + 1, time_embedding) if num_classes > 0 else None
        )
        width_in = dim + time_embedding * (times + (1 if num_classes > 0 else 0))
        layers: list[nn.Module] = []
        for width in [width_in] + [hidden] * (depth - 1):
            normed = [make_norm(norm, hidden, nn.Identity)] if norm is not None else []
            layers += [nn.Linear(width, hidden), *normed, nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``), for classifier-free guidance."""
        return self.num_classes

    def _evaluate(self, x: Tensor, times: dict[str, Tensor], cond: Tensor | None) -> Tensor:
        batch = x.shape[0]
        if x.ndim < 2 or math.prod(x.shape[1:]) != self.dim:
            raise FlowError(
                f"{self.kind}: x must have shape (B, ...) with {self.dim} elements per sample, "
                f"got {tuple(x.shape)}"
            )
        for name, value in times.items():
            if value.shape != (batch,):
                raise FlowError(
                    f"{self.kind}: {name} must have shape ({batch},), got {tuple(value.shape)}"
                )
        features = [x.reshape(batch, self.dim)]
        features += [self.time_features(value).to(x.dtype) for value in times.values()]
        labels = class_labels(self.kind, cond, self.num_classes, batch, x.device)
        if self.label_embedding is not None and labels is not None:
            features.append(self.label_embedding(labels).to(x.dtype))
        out: Tensor = self.net(torch.cat(features, dim=1))
        return out.reshape(x.shape)


class MLPVelocity(_MLPField):
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
        max_frequency: the highest angular frequency ω_K (at least 1; default
            :data:`~flow_core.models.time_embedding.MAX_FREQUENCY`).
        norm: a registered ``norm`` component after each hidden linear layer (``layer``,
            ``rms``, ``power`` with flow-norms); ``None`` for none.
    """

    model_kind: ClassVar[str] = "velocity"

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        num_classes: int = 0,
        time_embedding: int = 32,
        max_frequency: float = MAX_FREQUENCY,
        norm: str | None = None,
    ) -> None:
        super().__init__(
            "mlp", 1, dim, hidden, depth, num_classes, time_embedding, max_frequency, norm
        )

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        return self._evaluate(x, {"t": t}, cond)


class MLPAverageVelocity(_MLPField):
    """An MLP average velocity ``u(x, r, t, cond)`` over [r, t], x the state at r.

    The input is ``[x, φ(r), φ(t − r)]``, plus the label embedding when ``num_classes > 0``;
    otherwise as :class:`MLPVelocity` (same arguments and null label). ``u(x, t, t)`` is the
    instantaneous velocity at (x, t), so the model also serves as a velocity field through
    ``lambda x, t, c: model(x, t, t, c)``.

    The default ``max_frequency`` is
    :data:`~flow_core.models.time_embedding.AVERAGE_MAX_FREQUENCY` (10), below the velocity
    networks' :data:`~flow_core.models.time_embedding.MAX_FREQUENCY`: MeanFlow's target
    contains ∂u/∂r, which the highest time frequencies scale up; with ω_K = 1000 the target
    grew without bound when training on 2-D data, with ω_K = 10 it trained stably.
    """

    model_kind: ClassVar[str] = "average-velocity"

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        num_classes: int = 0,
        time_embedding: int = 32,
        max_frequency: float = AVERAGE_MAX_FREQUENCY,
        norm: str | None = None,
    ) -> None:
        super().__init__(
            "mlp-average", 2, dim, hidden, depth, num_classes, time_embedding, max_frequency, norm
        )

    def forward(self, x: Tensor, r: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        if r.shape != t.shape:
            raise FlowError(
                f"mlp-average: r and t must have the same shape, got {tuple(r.shape)} and "
                f"{tuple(t.shape)}"
            )
        return self._evaluate(x, {"r": r, "t - r": t - r}, cond)
