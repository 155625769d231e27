"""Evaluation helpers shared by the sections: reference noise, samples, straightness."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core_bench.common import Settings, Target, endpoint_rms, sample_metrics

__all__ = ["EvalSet", "eval_set", "few_step_row", "ode_endpoints"]

STRAIGHTNESS_STEPS = 100
"""Euler steps along which the straightness S is measured (the library's ``straightness``)."""


@dataclass
class EvalSet:
    """Held-out source noise and target samples of one target, fixed for the whole run."""

    x0: Tensor
    reference: Tensor


def eval_set(target: Target, settings: Settings) -> EvalSet:
    generator = torch.Generator().manual_seed(10_000 + settings.seed + target.dim)
    x0 = torch.randn(settings.eval_n, target.dim, generator=generator)
    return EvalSet(x0, target.sample(settings.eval_n, generator))


@torch.no_grad()
def ode_endpoints(model: nn.Module, x0: Tensor, tol: float = 1e-5) -> tuple[Tensor, int]:
    """The model's own ODE solution from ``x0`` by the library's AdaptiveODE (dopri5)."""
    from flow_core.samplers.adaptive import AdaptiveODE

    sampler = AdaptiveODE("dopri5", rtol=tol, atol=tol)
    return sampler.sample(model, x0), sampler.nfe


@torch.no_grad()
def euler(model: nn.Module, x0: Tensor, steps: int) -> Tensor:
    from flow_core.samplers.fixed_step import Euler

    return Euler(steps=steps).sample(model, x0)


def straightness(model: nn.Module, x0: Tensor) -> float:
    from flow_core.objectives.reflow import straightness as library_straightness

    with torch.no_grad():
        return float(library_straightness(model, x0, steps=STRAIGHTNESS_STEPS))


def few_step_row(
    label: str, model: nn.Module, target: Target, data: EvalSet, steps: tuple[int, ...]
) -> dict[str, object]:
    """Straightness, and the sliced W2 of Euler with ``steps`` and of dopri5, for one model."""
    exact, nfe = ode_endpoints(model, data.x0)
    row: dict[str, object] = {"model": label, "straightness S": straightness(model, data.x0)}
    for k in steps:
        samples = euler(model, data.x0, k)
        row[f"Euler {k}: SW2"] = sample_metrics(samples, target, data.reference)["sliced W2"]
        row[f"Euler {k}: endpoint RMS to own ODE"] = endpoint_rms(samples, exact)
    row["dopri5 NFE"] = nfe
    row["dopri5: SW2"] = sample_metrics(exact, target, data.reference)["sliced W2"]
    return row
