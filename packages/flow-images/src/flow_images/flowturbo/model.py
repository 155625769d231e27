"""FlowTurbo's velocity refiner and the predictor + refiner pair the sampler runs.

Zhao et al. 2024, "FlowTurbo: Towards Real-time Flow-Based Image Generation with Velocity
Refiner" (NeurIPS 2024; its code builds on SiT and is already in the project convention,
t = 0 noise, t = 1 data). Late in sampling the predictor's velocity changes little from step to
step, so a network much smaller than the predictor v_θ learns the change instead of the
velocity itself:

    v̂(x, t) = v_prev + r_φ(x, t, v_prev, c),

where v_prev is the velocity used one step earlier. The paper's refiner is one transformer
block at the predictor's width fed with x and v_prev as extra input channels (about 5% of
SiT-XL's parameters). Ours is the same idea for the small image U-Nets here: a few residual
3×3 convolution blocks over the channels of x and v_prev concatenated, with the time (and,
for a class-conditional model, the label) added as an embedding; its width ``hidden`` sets
the size (the default, about 40k parameters, is ~5% of a 0.8M-parameter U-Net). Its output
layer starts at zero, so an untrained refiner leaves v_prev unchanged and the refiner phase of
the sampler starts as Euler steps with the last predicted velocity.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MAX_FREQUENCY, SinusoidalTimeEmbedding, class_labels

__all__ = ["FlowTurboModel", "VelocityRefiner"]


class _ResidualBlock(nn.Module):
    """``h + conv(SiLU(norm(conv(SiLU(norm(h))) + e)))`` with the embedding ``e`` per channel."""

    def __init__(self, hidden: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, hidden)
        self.conv1 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.act = nn.SiLU()

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        inner = self.conv1(self.act(self.norm1(h))) + rearrange(embedding, "b c -> b c 1 1")
        out: Tensor = h + self.conv2(self.act(self.norm2(inner)))
        return out


class VelocityRefiner(nn.Module):
    """The refiner r_φ(x, t, v_prev, cond): a small convolutional network (see the module doc).

    ``forward`` returns the *correction* r_φ, of the shape of ``x``; the refined velocity is
    ``v_prev + r_φ`` (:meth:`FlowTurboModel.refine`). The correction is exactly zero until the
    output layer has been trained.

    Args:
        in_channels: image channels C; x and v_prev have shape ``(B, C, image_size,
            image_size)``.
        image_size: height and width of the images.
        num_classes: number of class labels; 0 for an unconditional refiner. When positive,
            ``cond`` holds integer labels of shape ``(B,)`` in ``[0, num_classes]`` and
            ``num_classes`` (also ``cond=None``) is the null label of classifier-free
            guidance, as in :class:`flow_core.models.mlp.MLPVelocity`.
        hidden: number of channels of the hidden layers (sets the size, ~ 18·hidden² per
            block).
        blocks: number of residual blocks (at least 1).
        time_embedding: number of sinusoidal time features (even, at least 2).
        max_frequency: the highest angular frequency of the time features (at least 1; default
            core's :data:`~flow_core.models.time_embedding.MAX_FREQUENCY`).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 8,
        num_classes: int = 0,
        hidden: int = 32,
        blocks: int = 2,
        time_embedding: int = 32,
        max_frequency: float = MAX_FREQUENCY,
    ) -> None:
        super().__init__()
        for key, value in (
            ("in_channels", in_channels),
            ("image_size", image_size),
            ("hidden", hidden),
            ("blocks", blocks),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"flowturbo refiner: {key} must be an integer >= 1, got {value!r}"
                )
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ConfigError(
                f"flowturbo refiner: num_classes must be an integer >= 0, got {num_classes!r}"
            )
        self.time_features = SinusoidalTimeEmbedding(
            time_embedding, max_frequency, "flowturbo refiner"
        )
        self.in_channels = in_channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.time_mlp = nn.Sequential(
            nn.Linear(time_embedding, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        self.label_embedding = nn.Embedding(num_classes + 1, hidden) if num_classes > 0 else None
        groups = math.gcd(8, hidden)
        self.stem = nn.Conv2d(2 * in_channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden, groups) for _ in range(blocks))
        self.head = nn.Sequential(
            nn.GroupNorm(groups, hidden), nn.SiLU(), nn.Conv2d(hidden, in_channels, 3, padding=1)
        )
        output = self.head[-1]
        assert isinstance(output, nn.Conv2d)
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)  # type: ignore[arg-type]

    @property
    def null_label(self) -> int:
        """The label meaning "no condition" (``num_classes``), for classifier-free guidance."""
        return self.num_classes

    def check_labels(self, cond: Tensor | None, batch: int) -> Tensor | None:
        """``cond`` as long labels (``None`` stays ``None``), or :class:`FlowError` if invalid.

        Raises:
            FlowError: ``cond`` is given to an unconditional refiner, is not an integer tensor
                of shape ``(batch,)``, or holds a label outside ``[0, num_classes]``.
        """
        if cond is None:
            return None
        return class_labels("flowturbo refiner", cond, self.num_classes, batch, cond.device)

    def forward(self, x: Tensor, t: Tensor, v_prev: Tensor, cond: Tensor | None = None) -> Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise FlowError(
                f"flowturbo refiner: x must have shape (B, {', '.join(map(str, expected))}), "
                f"got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        if v_prev.shape != x.shape:
            raise FlowError(
                f"flowturbo refiner: v_prev must have the shape of x {tuple(x.shape)}, got "
                f"{tuple(v_prev.shape)}"
            )
        if t.shape != (batch,):
            raise FlowError(
                f"flowturbo refiner: t must have shape ({batch},), got {tuple(t.shape)}"
            )
        labels = self.check_labels(cond, batch)
        embedding = self.time_mlp(self.time_features(t).to(x.dtype))
        if self.label_embedding is not None:
            if labels is None:
                labels = torch.full((batch,), self.null_label, dtype=torch.long, device=x.device)
            embedding = embedding + self.label_embedding(labels)
        h = self.stem(torch.cat([x, v_prev], dim=1))
        for block in self.blocks:
            h = block(h, embedding)
        out: Tensor = self.head(h)
        return out


class FlowTurboModel(nn.Module):
    """A velocity predictor v_θ and its refiner r_φ, the model :class:`FlowTurboSampler` runs.

    ``forward(x, t, cond)`` is the predictor's velocity, so the pair is a plain velocity field
    for every other sampler; :meth:`refine` gives ``v_prev + r_φ(x, t, v_prev, cond)``. The
    predictor may be any velocity field, e.g. a
    :class:`flow_core.samplers.guidance.ClassifierFreeGuidance` wrapper of a conditional
    network; the refiner then receives the same ``cond`` (the real labels) and corrects the
    guided velocity.

    Args:
        predictor: the velocity field v_θ(x, t, cond).
        refiner: the refiner trained against that predictor (see
            :class:`flow_images.flowturbo.objective.RefinerObjective`).
    """

    def __init__(self, predictor: nn.Module, refiner: VelocityRefiner) -> None:
        super().__init__()
        if not isinstance(refiner, VelocityRefiner):
            raise FlowError(
                f"flowturbo: refiner must be a VelocityRefiner, got {type(refiner).__name__}"
            )
        self.predictor = predictor
        self.refiner = refiner

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        velocity: Tensor = self.predictor(x, t, cond)
        return velocity

    def refine(self, x: Tensor, t: Tensor, v_prev: Tensor, cond: Tensor | None = None) -> Tensor:
        """The refined velocity ``v_prev + r_φ(x, t, v_prev, cond)``."""
        correction: Tensor = self.refiner(x, t, v_prev, cond)
        return v_prev + correction
