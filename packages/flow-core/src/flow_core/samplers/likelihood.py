"""Exact log-likelihoods of a velocity field by the instantaneous change of variables.

Chen et al. 2018, "Neural Ordinary Differential Equations" (Theorem 1), and Grathwohl et al.
2019, "FFJORD" (Hutchinson's trace estimator); for flow matching, Lipman et al. 2023, §C. Along
the flow dx/dt = v(x, t) the density of the pushed-forward distribution obeys

    d/dt log p_t(x_t) = −div v(x_t, t),

so with the source p_0 = N(0, I) at t = 0 (project convention)

    log p_1(x1) = log N(x(0); 0, I) − ∫_0^1 div v(x(t), t) dt,

where x(t) solves the ODE backwards from x(1) = x1. The backward solve integrates the pair
(x, ℓ) with dℓ/dt = div v from (x1, 0) at t = 1 to t = 0, so log p_1(x1) = log N(x(0)) + ℓ(0).

The divergence is exact (one backward pass per dimension) or Hutchinson's estimate
div v ≈ (1/M) Σ_m εₘᵀ (∂v/∂x) εₘ with Rademacher εₘ drawn once per call and held fixed along
the solve (so the adaptive solver sees a smooth field); the estimate is unbiased, and exact
whenever the Jacobian is diagonal.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from flow_core.errors import ConfigError, FlowError
from flow_core.objectives.likelihood import gaussian_log_density
from flow_core.samplers.adaptive import check_adaptive_method

__all__ = ["EXACT_DIVERGENCE_MAX_DIM", "log_likelihood"]

EXACT_DIVERGENCE_MAX_DIM = 16
"""Up to this many dimensions per sample the divergence is exact by default."""


def _divergence(velocity: Tensor, x: Tensor, probes: Tensor | None, create_graph: bool) -> Tensor:
    batch = x.shape[0]
    if probes is None:
        flat_v = velocity.reshape(batch, -1)
        total = torch.zeros(batch, dtype=x.dtype, device=x.device)
        for i in range(flat_v.shape[1]):
            (grad,) = torch.autograd.grad(
                flat_v[:, i].sum(), x, retain_graph=True, create_graph=create_graph
            )
            total = total + grad.reshape(batch, -1)[:, i]
        return total
    estimates = []
    for probe in probes:
        (vjp,) = torch.autograd.grad(
            velocity, x, probe, retain_graph=True, create_graph=create_graph
        )
        estimates.append((vjp * probe).reshape(batch, -1).sum(1))
    return torch.stack(estimates).mean(0)


def log_likelihood(
    model: nn.Module,
    x1: Tensor,
    cond: Tensor | None = None,
    *,
    exact: bool | None = None,
    method: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    hutchinson_samples: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, int]:
    """Per-sample ``log p_1(x1)`` (natural log) of the flow ``dx/dt = model(x, t, cond)``.

    The source is N(0, I) at t = 0. With gradients enabled (the default mode) the result is
    differentiable with respect to ``x1`` and the model's parameters (the solve is
    backpropagated step by step); under ``torch.no_grad()`` nothing is kept.

    Args:
        model: a velocity field ``model(x, t, cond)``.
        x1: data of shape ``(B, ...)``.
        cond: the per-sample condition passed to the model.
        exact: exact divergence (True) or Hutchinson's estimate (False); by default exact
            when a sample has at most :data:`EXACT_DIVERGENCE_MAX_DIM` elements.
        method: a torchdiffeq adaptive method (see
            :data:`flow_core.samplers.adaptive.ADAPTIVE_METHODS`).
        rtol: relative tolerance (> 0).
        atol: absolute tolerance (> 0).
        hutchinson_samples: number of probe vectors averaged by the estimator (>= 1).
        generator: random generator for the probes (on ``x1``'s device).

    Returns:
        ``(log_p, nfe)``: a tensor of shape ``(B,)`` in ``x1``'s dtype and the number of
        evaluations of the augmented dynamics (each is one model call plus its divergence).

    Raises:
        ConfigError: unknown ``method``, non-positive tolerances or ``hutchinson_samples < 1``.
        FlowError: ``x1`` has no batch dimension or is not floating point.
    """
    method = check_adaptive_method(method, "log_likelihood")
    if not rtol > 0 or not atol > 0:
        raise ConfigError(f"log_likelihood: rtol and atol must be > 0, got {rtol}, {atol}")
    if isinstance(hutchinson_samples, bool) or hutchinson_samples < 1:
        raise ConfigError(
            f"log_likelihood: hutchinson_samples must be an integer >= 1, got {hutchinson_samples}"
        )
    if x1.ndim < 2 or not x1.dtype.is_floating_point:
        raise FlowError(
            "log_likelihood: x1 must be a floating-point batch of shape (B, ...) with B >= 1 "
            f"samples, got {x1.dtype} of shape {tuple(x1.shape)}"
        )
    dim = math.prod(x1.shape[1:])
    use_exact = dim <= EXACT_DIVERGENCE_MAX_DIM if exact is None else exact
    probes = None
    if not use_exact:
        shape = (hutchinson_samples, *x1.shape)
        bits = torch.randint(0, 2, shape, generator=generator, device=x1.device)
        probes = (2 * bits - 1).to(x1.dtype)
    differentiable = torch.is_grad_enabled()
    nfe = 0

    def dynamics(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        nonlocal nfe
        nfe += 1
        x = state[0] if differentiable and state[0].requires_grad else state[0].detach()
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.requires_grad_()
            t_batch = t.to(dtype=x.dtype, device=x.device).expand(x.shape[0])
            velocity: Tensor = model(x, t_batch, cond)
            divergence = _divergence(velocity, x, probes, differentiable)
        if not differentiable:
            velocity = velocity.detach()
        return velocity, divergence

    span = torch.tensor([1.0, 0.0], dtype=x1.dtype, device=x1.device)
    start = (x1, torch.zeros(x1.shape[0], dtype=x1.dtype, device=x1.device))
    x_path, delta_path = odeint(dynamics, start, span, rtol=rtol, atol=atol, method=method)
    x0, delta = x_path[-1], delta_path[-1]
    return gaussian_log_density(x0) + delta, nfe
