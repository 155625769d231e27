"""A neural-spline normalizing flow (zuko), registered as the flow ``physics-nsf``.

Durkan, Bekasov, Murray & Papamakarios 2019, "Neural Spline Flows" (arXiv 1906.04032): each
transform is a monotonic rational-quadratic spline on ``[-5, 5]`` (identity outside) whose
knots are given by a conditioner network; with ``passes=2`` the conditioners are coupling
networks (half the coordinates condition the other half), so both directions cost one pass.
Reverse-KL training samples and evaluates the density in one call, so the cheap direction of
the spline (evaluation; its inverse solves a quadratic per coordinate) is used for sampling,
``x = g(z)``, and its inverse for the density. The flow maps data ``x`` to a standard-normal
latent ``z = g^-1(x)``. A learned elementwise affine map ``x = m + exp(s) y`` after the
splines lets the flow move and rescale the whole distribution in a few steps (a posterior is
often far narrower than the standard normal the splines start from, and in one dimension the
splines' knots are the only other parameters; ``m`` and ``s`` learn
:data:`AFFINE_RATE` times faster than the rest):

    x = m + exp(s) * g(z),   log q(x) = log N(z; 0, I) - log |det dg/dz| - sum(s).

The transforms are zuko's (Rozet et al., https://github.com/probabilists/zuko); this module
only adapts them to flow-core's :class:`~flow_core.protocols.InvertibleFlow` protocol and adds
the pieces variational inference needs.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import zuko
from torch import Tensor, nn

from flow_core.errors import ConfigError

__all__ = ["AFFINE_RATE", "SplineFlow", "standard_normal_log_prob"]

AFFINE_RATE = 10.0
"""The affine map's parameters are stored divided by this, so that an optimizer step (about
``lr`` per parameter for Adam) moves them this many times faster than the spline weights."""


class SplineFlow(nn.Module):
    """An unconditional neural-spline flow ``forward(x) -> (z, log|dz/dx|)``, ``inverse(z)``.

    Args:
        dim: number of parameters (>= 1).
        transforms: number of spline transforms.
        hidden: width of the conditioners' two hidden layers.
        bins: spline bins per transform.

    The flow takes no ``norm=``: the conditioners are masked networks whose hidden units
    carry autoregressive degrees, and a norm over the hidden units would mix them and break
    the triangular Jacobian the density relies on.
    """

    model_kind: ClassVar[str] = "invertible"

    def __init__(
        self,
        dim: int = 2,
        transforms: int = 3,
        hidden: int = 64,
        bins: int = 8,
    ) -> None:
        super().__init__()
        for label, value in (("dim", dim), ("transforms", transforms), ("hidden", hidden)):
            if value < 1:
                raise ConfigError(f"SplineFlow: {label}={value}; accepted: >= 1")
        if bins < 2:
            raise ConfigError(f"SplineFlow: bins={bins}; accepted: >= 2")
        self.dim = dim
        self.flow = zuko.flows.NSF(
            dim,
            0,
            transforms=transforms,
            bins=bins,
            hidden_features=(hidden, hidden),
            passes=2 if dim > 1 else None,
        )
        self.shift_raw = nn.Parameter(torch.zeros(dim))
        self.log_scale_raw = nn.Parameter(torch.zeros(dim))

    @property
    def shift(self) -> Tensor:
        """``m``, stored divided by :data:`AFFINE_RATE`."""
        return self.shift_raw * AFFINE_RATE

    @property
    def log_scale(self) -> Tensor:
        """``s``, stored divided by :data:`AFFINE_RATE`."""
        return self.log_scale_raw * AFFINE_RATE

    def _transform(self) -> Any:
        return self.flow().transform

    def forward(self, x: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Latent ``z`` and ``log |det dz/dx|`` of each row of ``x`` (``cond`` unused)."""
        y = (x - self.shift) * torch.exp(-self.log_scale)
        z, ladj = self._transform().inv.call_and_ladj(y)
        return z, ladj - self.log_scale.sum()

    def inverse(self, z: Tensor, cond: Tensor | None = None) -> Tensor:
        """Data ``x`` of each latent row ``z`` (``cond`` unused)."""
        x: Tensor = self.shift + torch.exp(self.log_scale) * self._transform()(z)
        return x

    def sample_and_log_prob(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``x = inverse(z)`` and ``log q(x)`` in one pass (differentiable in the weights)."""
        y, ladj = self._transform().call_and_ladj(z)
        x = self.shift + torch.exp(self.log_scale) * y
        return x, standard_normal_log_prob(z) - ladj - self.log_scale.sum()

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x)`` of each row of ``x``."""
        z, ladj = self.forward(x)
        return standard_normal_log_prob(z) + ladj


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``ln N(z; 0, I)`` of each row of ``z``."""
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2.0 * math.pi)
