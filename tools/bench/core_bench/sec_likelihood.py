"""Claim 6: ODE log-likelihoods against the mixture's known density; zuko, flow_matching anchors."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from core_bench.common import Section, Settings, Target, table
from core_bench.zoo import Zoo

__all__ = ["run"]

TOL = 1e-5
ACCURATE = 0.01  # nats: mean absolute error the exact-divergence likelihood must reach


class Counted(nn.Module):
    """Counts the calls of a velocity field; accepts a scalar time (anchors pass one)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.calls = 0

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        self.calls += 1
        t = t.to(x).reshape(-1).expand(x.shape[0]) if t.numel() == 1 else t
        out: Tensor = self.model(x, t, cond)
        return out


def _ours(exact: bool) -> Callable[[nn.Module, Tensor], tuple[Tensor, int]]:
    from flow_core.samplers.likelihood import log_likelihood

    def run(model: nn.Module, x: Tensor) -> tuple[Tensor, int]:
        with torch.no_grad():
            return log_likelihood(
                model,
                x,
                exact=exact,
                rtol=TOL,
                atol=TOL,
                generator=torch.Generator().manual_seed(3),
            )

    return run


def _zuko(model: nn.Module, x: Tensor) -> tuple[Tensor, int]:
    """zuko 1.6's FFJORD transform with our field: data (t = 1) to noise (t = 0)."""
    from zuko.transforms import FreeFormJacobianTransform

    counted = Counted(model)
    transform = FreeFormJacobianTransform(
        lambda t, y: counted(y, t), t0=1.0, t1=0.0, atol=TOL, rtol=TOL, exact=True
    )
    with torch.no_grad():
        z, ladj = transform.call_and_ladj(x)
    log_p0 = -0.5 * z.square().sum(1) - 0.5 * x.shape[1] * math.log(2 * math.pi)
    return log_p0 + ladj, counted.calls


def _flow_matching(model: nn.Module, x: Tensor) -> tuple[Tensor, int]:
    """facebookresearch/flow_matching's ODESolver.compute_likelihood, exact divergence."""
    from flow_matching.solver import ODESolver
    from flow_matching.utils import ModelWrapper

    counted = Counted(model)

    class Wrapped(ModelWrapper):
        def forward(self, x: Tensor, t: Tensor, **extras: object) -> Tensor:
            return counted(x, t)

    solver = ODESolver(velocity_model=Wrapped(counted))

    def log_p0(z: Tensor) -> Tensor:
        return -0.5 * z.square().sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi)

    _, log_p = solver.compute_likelihood(
        x_1=x,
        log_p0=log_p0,
        step_size=None,
        method="dopri5",
        atol=TOL,
        rtol=TOL,
        exact_divergence=True,
    )
    return log_p.detach(), counted.calls


def run(settings: Settings, zoo: Zoo, targets: list[Target]) -> Section:
    from flow_core.datasets.mixture import MixtureVelocity

    section = Section("Log-likelihood by the instantaneous change of variables")
    section.add(
        "`flow_core.samplers.likelihood.log_likelihood` (dopri5, rtol = atol = 1e-5) on the exact "
        "velocity of the mixture, whose density `GaussianMixture.log_prob` is known in closed "
        "form, "
        "so the error is exact. Anchors with the same field and tolerances: zuko 1.6's FFJORD "
        "transform (`zuko.transforms.FreeFormJacobianTransform`, what `zuko.flows.CNF` uses, with "
        "our field in place of its MLP) and flow_matching 1.0.10's `ODESolver.compute_likelihood` "
        "(exact divergence). NFE counts evaluations of the field (each with its divergence)."
    )
    accurate, why = True, []
    for target in targets:
        n = 200 if settings.quick else (1000 if target.dim <= 2 else 300)
        x = target.sample(n, torch.Generator().manual_seed(31 + target.dim))
        truth = target.mixture.log_prob(x).double()
        model = MixtureVelocity(target.mixture).eval()
        methods: dict[str, Callable[[nn.Module, Tensor], tuple[Tensor, int]]] = {
            "ours, exact divergence": _ours(True),
            "ours, Hutchinson (1 probe)": _ours(False),
            "zuko FFJORD transform, exact": _zuko,
            "flow_matching ODESolver, exact": _flow_matching,
        }
        rows = []
        for name, method in methods.items():
            start = time.perf_counter()
            try:
                log_p, nfe = method(model, x)
            except ImportError as error:
                rows.append({"method": name, "mean |error| nats": float("nan"), "note": str(error)})
                continue
            seconds = time.perf_counter() - start
            err = log_p.double() - truth
            rows.append(
                {
                    "method": name,
                    "mean |error| nats": float(err.abs().mean()),
                    "max |error| nats": float(err.abs().max()),
                    "mean error (bias)": float(err.mean()),
                    "NFE": nfe,
                    "seconds": seconds,
                }
            )
        # A trained model's likelihood: no exact answer, but the gap to the true density is an
        # estimate of KL(p || p_model) >= 0, and the implementations should agree.
        cfm = zoo.get(target, "cfm").model
        few = 100 if target.dim > 2 else 200
        for name in ("ours, exact divergence", "zuko FFJORD transform, exact"):
            start = time.perf_counter()
            log_p, nfe = methods[name](cfm, x[:few])
            rows.append(
                {
                    "method": f"trained CFM ({few} samples): {name}",
                    "mean error (bias)": float((log_p.double() - truth[:few]).mean()),
                    "NFE": nfe,
                    "seconds": time.perf_counter() - start,
                }
            )
        section.add(
            f"**{target.name}** ({n} target samples; mean true log-density "
            f"{float(truth.mean()):.3f})"
        )
        section.add(table(rows, list(dict.fromkeys(k for r in rows for k in r))))
        ours = float(rows[0]["mean |error| nats"])
        accurate &= ours <= ACCURATE
        why.append(
            f"{target.name}: mean |error| {ours:.2g} nats "
            f"(max {float(rows[0]['max |error| nats']):.2g})"
        )
    section.add(
        "For the trained CFM rows the 'bias' is the mean of log p_model − log p_true over target "
        "samples, an estimate of −KL(p ‖ p_model) (≤ 0 up to sampling error)."
    )
    section.decide(
        "ODE log-likelihoods match the mixture's known density "
        f"(mean |error| <= {ACCURATE:g} nats)",
        accurate,
        "; ".join(why) + ".",
    )
    return section
