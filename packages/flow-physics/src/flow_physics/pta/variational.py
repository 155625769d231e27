"""Variational inference of a PTA posterior with a normalizing flow, and its evidences.

The prior is a box of independent uniforms (the NANOGrav agnostic priors). The flow lives in
an unbounded space ``u`` mapped onto the box by ``x = low + (high - low) sigmoid(u)``, so
every flow sample is inside the support. In ``u`` the unnormalised posterior is

    ln p~(u) = ln L(x(u)) + ln pi(x(u)) + ln |dx/du|
             = ln L(x(u)) + sum_i [ln sigmoid(u_i) + ln sigmoid(-u_i)],

(the uniform density cancels the ``(high - low)`` of the Jacobian), and it integrates to the
same evidence ``Z = int L pi dx``. The flow ``q`` is trained by minimising the reverse
Kullback-Leibler divergence (variational inference with normalizing flows; Rezende & Mohamed
2015, arXiv 1505.05770),

    KL(q || p) = E_{u ~ q}[ln q(u) - ln p~(u)] + ln Z  >=  0,

whose first term is minus the evidence lower bound (ELBO). It needs no posterior samples, only
likelihood calls on batches the flow itself draws (reparameterised through the flow, so the
gradient flows through ``ln L``). Its mode-seeking bias is then removed by importance sampling
with ``q`` as the proposal (:func:`~flow_physics.pta.evidence.importance_sampling`); the
learned harmonic mean (McEwen et al. 2021, arXiv 2111.12720) on posterior draws from
flow-preconditioned Metropolis chains is the second, independent estimator (Lai & Li 2025,
arXiv 2504.04211, use it on flow samples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_physics.networks.spline import SplineFlow
from flow_physics.pta.evidence import EvidenceEstimate, importance_sampling, learned_harmonic_mean
from flow_physics.pta.neutra import neutra_chains

__all__ = [
    "BoxPosterior",
    "FlowProposal",
    "PosteriorDraws",
    "flow_evidence",
    "reverse_kl_objective",
]


class BoxPosterior:
    """``ln L`` under a uniform prior box, in the unbounded coordinates ``u``.

    Args:
        log_likelihood: ``ln L`` of ``(n, dim)`` parameter sets in float64, shape ``(n,)``.
        names: parameter names, in column order.
        box: ``name -> (low, high)`` for every name.
    """

    def __init__(
        self,
        log_likelihood: Callable[[Tensor], Tensor],
        names: list[str],
        box: Mapping[str, tuple[float, float]],
    ) -> None:
        missing = [name for name in names if name not in box]
        if missing:
            raise ConfigError(f"BoxPosterior: no prior range for {missing}")
        bad = [name for name in names if not box[name][0] < box[name][1]]
        if bad:
            raise ConfigError(f"BoxPosterior: prior ranges of {bad} need low < high")
        self.log_likelihood = log_likelihood
        self.names = list(names)
        self.low = torch.tensor([box[n][0] for n in names], dtype=torch.float64)
        self.high = torch.tensor([box[n][1] for n in names], dtype=torch.float64)

    @property
    def dim(self) -> int:
        """Number of parameters."""
        return len(self.names)

    @property
    def flow_dim(self) -> int:
        """Dimension of ``u``: :attr:`dim`, or 2 for one parameter (an auxiliary standard
        normal coordinate is appended, so the flow's coupling layers have two coordinates to
        work with; it integrates to 1 and leaves the evidence unchanged)."""
        return max(2, self.dim)

    def to(self, device: torch.device | str) -> BoxPosterior:
        """Move the likelihood (when it is a module) to ``device``; returns ``self``."""
        if isinstance(self.log_likelihood, nn.Module):
            self.log_likelihood.to(device)
        return self

    def to_box(self, u: Tensor) -> Tensor:
        """``x = low + (high - low) sigmoid(u)``, in float64 (an auxiliary column dropped)."""
        u = u[:, : self.dim].to(torch.float64)
        return self.low.to(u.device) + (self.high - self.low).to(u.device) * torch.sigmoid(u)

    def to_unbounded(self, x: Tensor) -> Tensor:
        """The inverse of :meth:`to_box`; a value outside the open box raises, naming it."""
        x = x.to(torch.float64)
        low, high = self.low.to(x.device), self.high.to(x.device)
        outside = ((x <= low) | (x >= high)).any(0)
        if bool(outside.any()):
            names = [n for n, o in zip(self.names, outside.tolist(), strict=True) if o]
            raise ConfigError(f"values of {names} lie outside their prior ranges")
        return torch.logit((x - low) / (high - low))

    def log_target(self, u: Tensor) -> Tensor:
        """``ln p~(u) = ln L(x(u)) + sum ln sigmoid(u) + ln sigmoid(-u)``, float64 (plus
        ``ln N(u_aux; 0, 1)`` for the auxiliary column of a one-parameter model)."""
        u, aux = u[:, : self.dim].to(torch.float64), u[:, self.dim :].to(torch.float64)
        log_jacobian = (F.logsigmoid(u) + F.logsigmoid(-u)).sum(-1)
        log_aux = (-0.5 * aux**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        value = self.log_likelihood(self.to_box(u)) + log_jacobian + log_aux
        _check_finite(value, u, self)
        return value


def _check_finite(value: Tensor, u: Tensor, posterior: BoxPosterior) -> None:
    """NaN or +inf log likelihoods are bugs in a model: name a parameter set that gives one
    (``-inf``, a zero likelihood, is allowed)."""
    bad = torch.isnan(value) | (value == math.inf)
    if bool(bad.any()):
        row = posterior.to_box(u[bad][:1])[0].tolist()
        values = ", ".join(f"{n}={v:.4g}" for n, v in zip(posterior.names, row, strict=True))
        raise ConfigError(f"the log likelihood is {value[bad][0].item()} at {values}")


def reverse_kl_objective(
    posterior: BoxPosterior,
) -> Callable[[nn.Module, Mapping[str, Tensor]], tuple[Tensor, dict[str, float]]]:
    """The training objective ``loss = mean(ln q(u) - ln p~(u))`` (minus the ELBO) on the
    batch's latents ``batch["z"]``, for :func:`flow_core.training.train`.

    Logged: ``elbo`` and ``ess_fraction``, the importance weights' effective sample size over
    the batch size (1 when ``q`` is the posterior).
    """

    def objective(model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        if not isinstance(model, SplineFlow):
            raise ConfigError(
                f"the pta task trains a flow with sample_and_log_prob (flow 'physics-nsf'), "
                f"got {type(model).__name__}"
            )
        u, log_q = model.sample_and_log_prob(batch["z"])
        log_p = posterior.log_target(u)
        finite = torch.isfinite(log_p)
        if not bool(finite.any()):
            raise ConfigError("every flow draw of the batch has zero likelihood")
        diff = log_q.to(torch.float64) - log_p
        loss = diff[finite].mean()
        log_w = -diff.detach()
        weights = torch.exp(log_w - log_w.max())
        ess = float(weights.sum() ** 2 / (weights**2).sum()) / len(weights)
        return loss.to(log_q.dtype), {"elbo": -float(loss.detach()), "ess_fraction": ess}

    return objective


class FlowProposal:
    """A trained :class:`SplineFlow` as an importance-sampling proposal (float64 draws)."""

    def __init__(self, flow: SplineFlow, seed: int = 0) -> None:
        self.flow = flow
        device = next(flow.parameters()).device
        self._generator = torch.Generator(device=device).manual_seed(seed)
        self._device = device

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """``n`` draws ``u ~ q``, shape ``(n, dim)``."""
        z = torch.randn(n, self.flow.dim, generator=self._generator, device=self._device)
        return self.flow.inverse(z).to(torch.float64)

    @torch.no_grad()
    def log_prob(self, x: Tensor) -> Tensor:
        """``ln q`` of each row."""
        dtype = next(self.flow.parameters()).dtype
        return self.flow.log_prob(x.to(dtype)).to(torch.float64)


@dataclass(frozen=True)
class PosteriorDraws:
    """Evidence estimates and posterior draws in the box coordinates (chain-major chain
    states), with the chains' acceptance rate."""

    importance: EvidenceEstimate
    harmonic: EvidenceEstimate
    samples: Tensor
    acceptance: float


def flow_evidence(
    flow: SplineFlow,
    posterior: BoxPosterior,
    n: int,
    seed: int = 0,
    temperature: float = 0.8,
    chains: int = 256,
    chain_steps: int = 50,
    burn_in: int = 100,
    chunk: int = 1024,
) -> PosteriorDraws:
    """Two independent evidences of ``posterior`` from a trained flow, and posterior draws.

    Importance sampling uses ``n`` flow draws as the proposal (``ln Z`` with its error and
    ESS). The learned harmonic mean needs draws from the posterior itself: flow-preconditioned
    Metropolis chains (:func:`~flow_physics.pta.neutra.neutra_chains`; ``chains`` chains,
    ``burn_in`` adaptation steps, then ``chain_steps`` kept) give them, exact whatever the
    flow's errors, and the estimator is evaluated on them in ``u``, where the target is
    smooth, with its standard error from groups of whole chains. Where the flow is poor, the
    importance weights degenerate and the two estimates part: their agreement is the check
    that the flow has converged.
    """

    def log_target(u: Tensor) -> Tensor:
        return torch.cat([posterior.log_target(part) for part in torch.split(u, chunk)])

    with torch.no_grad():
        importance = importance_sampling(log_target, FlowProposal(flow, seed), n)
    device = next(flow.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    start = torch.randn(chains, flow.dim, generator=generator, device=device)
    states = neutra_chains(flow, log_target, start, chain_steps, burn_in, seed=seed + 2)
    harmonic = learned_harmonic_mean(states.samples, states.log_target, temperature=temperature)
    return PosteriorDraws(importance, harmonic, posterior.to_box(states.samples), states.acceptance)
