"""The linear probability path of flow matching and rectified flow.

Lipman et al. 2023, "Flow Matching for Generative Modeling" (the conditional-OT path with
σ_min = 0), and Liu et al. 2022, "Flow Straight and Fast" (rectified flow), in the project
convention (t = 0 source x0, t = 1 data x1):

    x_t = (1 − t)·x0 + t·x1,        dx_t/dt = x1 − x0.

A velocity prediction v ≈ E[x1 − x0 | x_t] converts to estimates of the endpoints
("Principles of Diffusion Models", Lai et al. 2025, linear case of the affine identities):

    x̂1 = x_t + (1 − t)·v,           x̂0 = x_t − t·v.

This is the affine path x_t = α_t·x1 + σ_t·x0 with α_t = t and σ_t = 1 − t.
"""

from __future__ import annotations

from torch import Tensor

from flow_core.errors import FlowError

__all__ = ["LinearPath", "expand_time"]


def expand_time(t: Tensor, like: Tensor) -> Tensor:
    """Reshape per-sample times ``t`` of shape ``(B,)`` to broadcast against ``like``.

    Returns a view of shape ``(B, 1, ..., 1)`` with ``like.ndim`` dimensions.

    Raises:
        FlowError: ``t`` is not one-dimensional or its length differs from ``like``'s batch.
    """
    if t.ndim != 1 or like.ndim < 1 or t.shape[0] != like.shape[0]:
        raise FlowError(
            f"time must have shape (B,) matching the batch of a tensor of shape "
            f"{tuple(like.shape)}; got shape {tuple(t.shape)}"
        )
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))


class LinearPath:
    """The path ``x_t = (1 − t)·x0 + t·x1`` with conditional velocity ``x1 − x0``.

    Every method takes ``t`` of shape ``(B,)`` and tensors batch-first; ``t`` is broadcast
    over the remaining dimensions.
    """

    def interpolate(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """The point ``x_t = (1 − t)·x0 + t·x1`` on the path from ``x0`` to ``x1``."""
        tb = expand_time(t, x1)
        return (1 - tb) * x0 + tb * x1

    def target_velocity(self, x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
        """The conditional velocity ``dx_t/dt = x1 − x0`` (constant in ``t``)."""
        expand_time(t, x1)  # checks that t matches the batch, as the other methods do
        return x1 - x0

    def data_from_velocity(self, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
        """The data estimate ``x̂1 = x_t + (1 − t)·v`` from a velocity ``v`` at ``(x_t, t)``."""
        return x_t + (1 - expand_time(t, x_t)) * v

    def source_from_velocity(self, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
        """The source estimate ``x̂0 = x_t − t·v`` from a velocity ``v`` at ``(x_t, t)``."""
        return x_t - expand_time(t, x_t) * v
