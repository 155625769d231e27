"""Action-chunk policies: one observation encoder shared by every action head.

A policy sees the last ``history`` observations o_{t−H+1..t} and generates a chunk of
``chunk`` future actions a_{t..t+K−1} (action chunking, Zhao et al. 2023, arXiv 2304.13705;
Chi et al. 2023, Diffusion Policy, arXiv 2303.04137). The chunk is a flat vector of
``chunk · action_dim`` numbers in [−1, 1]: the sample ``x`` of a generative flow whose
condition is the observation history.

The observation history is standardised with statistics stored in the model (buffers, so they
travel with the checkpoint), then passed through an MLP encoder whose three layer outputs are
the *early*, *mid* and *late* embeddings that dispersive regularisation acts on
(:mod:`flow_robotics.dispersive`). The late embedding conditions the head, an MLP on
``[x, φ(t), (φ(t − r)), embedding]`` with flow-core's shared sinusoidal time features φ
(:class:`flow_core.models.time_embedding.SinusoidalTimeEmbedding`, highest angular frequency
``max_frequency``, by default core's :data:`~flow_core.models.time_embedding.MAX_FREQUENCY`).

- :class:`PolicyVelocity` — a velocity field v(x, t, obs) (flow matching ``cfm`` with Euler
  or the SDE sampler; behaviour cloning ``bc-mse``);
- :class:`PolicyAverageVelocity` — an average-velocity field u(x, r, t, obs) (MeanFlow, DM1:
  Zou et al. 2025; Geng et al. 2025, arXiv 2505.13447), in the project convention (t = 0
  noise, t = 1 action chunk; a = z + u(z, 0, 1) in one call). Following MeanFlow's best
  embedding it feeds φ(r) and φ(t − r). Its forward pass is a pure function of (x, r, t), so
  forward-mode AD (the MeanFlow target's JVP) passes through it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MAX_FREQUENCY, SinusoidalTimeEmbedding
from flow_core.norms import make_norm

__all__ = ["LAYERS", "ObservationEncoder", "PolicyAverageVelocity", "PolicyVelocity"]

LAYERS: tuple[str, ...] = ("early", "mid", "late")
"""The encoder layers whose outputs dispersive regularisation can act on."""


def _block(width_in: int, width: int, norm: str | None) -> nn.Sequential:
    normed = [make_norm(norm, width, nn.Identity)] if norm is not None else []
    return nn.Sequential(nn.Linear(width_in, width), *normed, nn.Mish())


class ObservationEncoder(nn.Module):
    """Standardise a flat observation history and embed it with a three-layer MLP.

    ``forward`` returns the late embedding; :meth:`layers` returns all three outputs.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, obs_dim: int, hidden: int, embedding: int, norm: str | None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_dim))
        self.register_buffer("std", torch.ones(obs_dim))
        self.early = _block(obs_dim, hidden, norm)
        self.mid = _block(hidden, hidden, norm)
        self.late = _block(hidden, embedding, norm)

    def set_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Store the observation statistics used to standardise inputs (std floored at 1e-3)."""
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(std.to(self.std).clamp_min(1e-3))

    def layers(self, obs: Tensor) -> dict[str, Tensor]:
        """The early, mid and late embeddings of a batch of flat observation histories."""
        early = self.early((obs - self.mean) / self.std)
        mid = self.mid(early)
        return {"early": early, "mid": mid, "late": self.late(mid)}

    def forward(self, obs: Tensor) -> Tensor:
        return self.layers(obs)["late"]


class _ChunkPolicy(nn.Module):
    """Shared body of the two policy fields (the encoder, time features and head)."""

    kind: ClassVar[str] = "policy"
    times: ClassVar[int] = 1

    def __init__(
        self,
        obs_dim: int = 39,
        action_dim: int = 4,
        history: int = 2,
        chunk: int = 4,
        hidden: int = 256,
        embedding: int = 128,
        depth: int = 3,
        time_embedding: int = 32,
        norm: str | None = None,
        max_frequency: float = MAX_FREQUENCY,
    ) -> None:
        super().__init__()
        for name, value in (
            ("obs_dim", obs_dim),
            ("action_dim", action_dim),
            ("history", history),
            ("chunk", chunk),
            ("hidden", hidden),
            ("embedding", embedding),
            ("depth", depth),
        ):
            if value < 1:
                raise ConfigError(f"{self.kind}: {name} must be >= 1, got {value}")
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.history, self.chunk = history, chunk
        self.dim = action_dim * chunk
        self.encoder = ObservationEncoder(obs_dim * history, hidden, embedding, norm)
        self.time_features = SinusoidalTimeEmbedding(time_embedding, max_frequency, self.kind)
        width = self.dim + self.times * time_embedding + embedding
        blocks = [_block(width if i == 0 else hidden, hidden, norm) for i in range(depth)]
        self.head = nn.Sequential(*blocks, nn.Linear(hidden, self.dim))

    def _evaluate(self, x: Tensor, times: list[Tensor], cond: Tensor | None) -> Tensor:
        if cond is None:
            raise FlowError(f"{self.kind}: the policy needs the observation history as cond")
        batch = x.shape[0]
        if math.prod(x.shape[1:]) != self.dim:
            raise FlowError(
                f"{self.kind}: x must hold {self.dim} numbers per sample (chunk {self.chunk} x "
                f"action_dim {self.action_dim}), got shape {tuple(x.shape)}"
            )
        embedding = self.encoder(cond.reshape(batch, -1))
        features = [x.reshape(batch, self.dim), embedding]
        features += [self.time_features(value.expand(batch).to(x.dtype)) for value in times]
        out: Tensor = self.head(torch.cat(features, dim=1))
        return out.reshape(x.shape)


class PolicyVelocity(_ChunkPolicy):
    """A velocity field ``v(x, t, obs)`` over action chunks (see the module docstring).

    Args:
        obs_dim: size of one observation; action_dim: size of one action.
        history: observations per condition (H); chunk: actions per sample (K).
        hidden: width of the encoder's and head's hidden layers.
        embedding: width of the observation embedding (the encoder's late layer).
        depth: hidden layers of the head.
        time_embedding: number of sinusoidal time features (even).
        norm: a registered norm after each linear layer (``None``: none).
        max_frequency: highest angular frequency of the time features (at least 1).
    """

    model_kind: ClassVar[str] = "velocity"
    kind: ClassVar[str] = "policy-velocity"

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        return self._evaluate(x, [t], cond)


class PolicyAverageVelocity(_ChunkPolicy):
    """An average-velocity field ``u(x, r, t, obs)`` over action chunks (module docstring).

    The arguments are those of :class:`PolicyVelocity`.
    """

    model_kind: ClassVar[str] = "average-velocity"
    kind: ClassVar[str] = "policy-average"
    times: ClassVar[int] = 2

    def forward(self, x: Tensor, r: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        return self._evaluate(x, [r, t - r], cond)
