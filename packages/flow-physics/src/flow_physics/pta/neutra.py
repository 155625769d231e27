"""Flow-preconditioned MCMC: exact posterior draws from an approximate flow.

Hoffman, Sountsov, Dillon, Langmore, Tran & Vasudevan 2019, "NeuTra-lizing Bad Geometry in
Hamiltonian Monte Carlo Using Neural Transport" (arXiv 1903.03704). A flow ``u = g(z)``
trained on a posterior ``p~(u)`` is used as a change of variables: in the latent ``z`` the
posterior has the density

    ln pi(z) = ln p~(g(z)) + ln |det dg/dz| = ln w(g(z)) + ln N(z; 0, I),

with ``ln w = ln p~ - ln q`` the importance log weight, so it is a standard normal tilted by
the weights: close to isotropic where the flow is good, and random-walk Metropolis with one
global step size mixes well in it. Unlike resampling the flow's own draws (whose distinct
points number about the effective sample size), the chains target the exact posterior
whatever the flow's errors; the flow only sets how fast they mix.

Many chains run side by side, so each step is one batched flow pass and one batched
likelihood call. The step size adapts during burn-in towards the acceptance rate
:data:`TARGET_ACCEPTANCE` (Roberts, Gelman & Gilks 1997: 0.234 for random-walk Metropolis in
many dimensions) and is then frozen, so the kept draws come from a fixed Markov kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from flow_core.errors import ConfigError
from flow_physics.networks.spline import SplineFlow, standard_normal_log_prob

__all__ = ["TARGET_ACCEPTANCE", "ChainDraws", "neutra_chains"]

TARGET_ACCEPTANCE = 0.234


@dataclass(frozen=True)
class ChainDraws:
    """Kept chain states, chain-major: ``samples[c * steps + s]`` is chain ``c`` at kept step
    ``s``; ``log_target`` is ``ln p~`` there; ``acceptance`` the rate over the kept steps."""

    samples: Tensor
    log_target: Tensor
    acceptance: float
    step_size: float
    chains: int


@torch.no_grad()
def neutra_chains(
    flow: SplineFlow,
    log_target: Callable[[Tensor], Tensor],
    start: Tensor,
    steps: int,
    burn_in: int,
    seed: int = 0,
) -> ChainDraws:
    """Random-walk Metropolis in the flow's latent space, one chain per row of ``start``.

    Args:
        flow: the trained flow, ``u = flow.inverse(z)`` with ``ln q(u)`` from
            ``sample_and_log_prob``.
        log_target: ``ln p~(u)`` of each row (``-inf`` allowed, NaN not).
        start: latent starting points, shape ``(chains, flow.dim)``.
        steps: kept steps per chain (>= 1).
        burn_in: adaptation steps before them, discarded (>= 0).
        seed: seed of the proposals and the accept draws.

    Returns:
        The kept states in ``u``, chain-major, with their ``ln p~`` and the acceptance rate.
    """
    if start.ndim != 2 or start.shape[1] != flow.dim or len(start) < 2:
        raise ConfigError(
            f"neutra_chains: start {tuple(start.shape)}; accepted: (chains >= 2, {flow.dim})"
        )
    if steps < 1 or burn_in < 0:
        raise ConfigError(f"neutra_chains: steps={steps}, burn_in={burn_in}; accepted: >= 1, >= 0")
    dtype = next(flow.parameters()).dtype
    generator = torch.Generator(device=start.device).manual_seed(seed)

    def evaluate(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        u, log_q = flow.sample_and_log_prob(z.to(dtype))
        log_p = log_target(u.to(torch.float64))
        log_pi = log_p - log_q.to(torch.float64) + standard_normal_log_prob(z)
        return u.to(torch.float64), log_p, log_pi

    z = start.to(torch.float64)
    u, log_p, log_pi = evaluate(z)
    step_size = 2.38 / math.sqrt(flow.dim)
    kept_u, kept_log_p, accepted = [], [], 0.0
    for index in range(burn_in + steps):
        noise = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
        z_new = z + step_size * noise
        u_new, log_p_new, log_pi_new = evaluate(z_new)
        log_ratio = torch.nan_to_num(log_pi_new - log_pi, nan=-math.inf)
        uniform = torch.rand(len(z), generator=generator, dtype=z.dtype, device=z.device)
        accept = torch.log(uniform) < log_ratio
        z = torch.where(accept[:, None], z_new, z)
        u = torch.where(accept[:, None], u_new, u)
        log_p = torch.where(accept, log_p_new, log_p)
        log_pi = torch.where(accept, log_pi_new, log_pi)
        rate = float(accept.to(torch.float64).mean())
        if index < burn_in:
            step_size *= math.exp(rate - TARGET_ACCEPTANCE)
        else:
            kept_u.append(u)
            kept_log_p.append(log_p)
            accepted += rate
    samples = torch.stack(kept_u, dim=1).reshape(-1, u.shape[1])
    return ChainDraws(
        samples=samples,
        log_target=torch.stack(kept_log_p, dim=1).reshape(-1),
        acceptance=accepted / steps,
        step_size=step_size,
        chains=len(start),
    )
