"""The linear probability path of flow matching and rectified flow.

Lipman et al. 2023, "Flow Matching for Generative Modeling" (the conditional-OT path with
σ_min = 0), and Liu et al. 2022, "Flow Straight and Fast" (rectified flow), in the project
convention (t = 0 source x0, t = 1 data x1):

    x_t = (1 − t)·x0 + t·x1,        dx_t/dt = x1 − x0.

A velocity prediction v ≈ E[x1 − x0 | x_t] converts to estimates of the endpoints
("Principles of Diffusion Models", Lai et al. 2025, linear case of the affine identities):

    x̂1 = x_t + (1 − t)·v,           x̂0 = x_t − t·v,           s = (t·v − x_t)/(1 − t).

This is the affine path x_t = α_t·x1 + σ_t·x0 with α_t = t and σ_t = 1 − t
(:class:`flow_core.paths.affine.AffinePath` with the linear schedule).
"""

from __future__ import annotations

from torch import Tensor

from flow_core.paths.affine import AffinePath, LinearSchedule, expand_time

__all__ = ["LinearPath", "expand_time"]


class LinearPath(AffinePath):
    """The path ``x_t = (1 − t)·x0 + t·x1`` with conditional velocity ``x1 − x0``.

    Every method takes ``t`` of shape ``(B,)`` and tensors batch-first; ``t`` is broadcast
    over the remaining dimensions. Besides the :class:`AffinePath` conversions it keeps the
    two short forms below. Given the true velocity, one point of the path recovers both ends:

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x0, x1, t = torch.randn(3, 2), torch.randn(3, 2), torch.rand(3)
    >>> path = LinearPath()
    >>> x_t, v = path.interpolate(x0, x1, t), path.target_velocity(x0, x1, t)
    >>> torch.allclose(path.data_from_velocity(x_t, t, v), x1, atol=1e-6)
    True
    >>> torch.allclose(path.source_from_velocity(x_t, t, v), x0, atol=1e-6)
    True
    """

    def __init__(self) -> None:
        super().__init__(LinearSchedule())

    def __repr__(self) -> str:
        return "LinearPath()"

    def data_from_velocity(self, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
        """The data estimate ``x̂1 = x_t + (1 − t)·v`` from a velocity ``v`` at ``(x_t, t)``."""
        return x_t + (1 - expand_time(t, x_t)) * v

    def source_from_velocity(self, x_t: Tensor, t: Tensor, v: Tensor) -> Tensor:
        """The source estimate ``x̂0 = x_t − t·v`` from a velocity ``v`` at ``(x_t, t)``."""
        return x_t - expand_time(t, x_t) * v
