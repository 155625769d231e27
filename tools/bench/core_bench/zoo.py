"""Models trained once per run and shared by the sections, each with the library's objective.

Every model of one target has the same architecture (an MLP of ``settings.hidden`` x
``settings.depth``), the same number of steps, batch, optimiser and learning-rate schedule, so
the sections compare methods, not budgets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from core_bench.common import Settings, Target, data_batches, fit, frozen, pair_batches

__all__ = ["KINDS", "Trained", "Zoo"]

KINDS = (
    "cfm",
    "ot-cfm",
    "w-cfm",
    "torchcfm-ot",
    "2-rf",
    "meanflow",
    "split-meanflow",
)

Objective = Callable[[nn.Module, Mapping[str, Tensor]], tuple[Tensor, dict[str, float]]]


@dataclass
class Trained:
    """A trained model with how it was made."""

    model: nn.Module
    objective: str
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


def torchcfm_objective(exact_ot: bool) -> Objective:
    """torchcfm's matcher wrapped as ``objective(model, batch)`` (anchor; its documented loop)."""
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )

    matcher = (
        ExactOptimalTransportConditionalFlowMatcher(0.0)
        if exact_ot
        else ConditionalFlowMatcher(0.0)
    )

    def objective(model: nn.Module, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        x1 = batch["x1"]
        x0 = torch.randn_like(x1)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
        loss = (model(xt, t) - ut).square().mean()
        return loss, {"loss": loss.item()}

    return objective


class Zoo:
    """Lazily trains and caches the models of each target."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[tuple[str, str], Trained] = {}
        self.pairs_seconds: dict[str, float] = {}

    def velocity_net(self, target: Target) -> nn.Module:
        from flow_core.models.mlp import MLPVelocity

        return MLPVelocity(dim=target.dim, hidden=self.settings.hidden, depth=self.settings.depth)

    def average_net(self, target: Target) -> nn.Module:
        from flow_core.models.mlp import MLPAverageVelocity

        return MLPAverageVelocity(
            dim=target.dim, hidden=self.settings.hidden, depth=self.settings.depth
        )

    def get(self, target: Target, kind: str) -> Trained:
        key = (target.name, kind)
        if key not in self._cache:
            self._cache[key] = self._train(target, kind)
        return self._cache[key]

    def _seed(self, target: Target, kind: str) -> int:
        return self.settings.seed * 1000 + KINDS.index(kind) * 10 + (0 if target.dim == 2 else 1)

    def _train(self, target: Target, kind: str) -> Trained:
        s = self.settings
        torch.manual_seed(self._seed(target, "cfm"))  # same initial weights for every method
        generator = torch.Generator().manual_seed(self._seed(target, kind))
        batches: Iterator[dict[str, Tensor]] = data_batches(target, s.batch, generator)
        name: str
        model: nn.Module
        if kind in ("meanflow", "split-meanflow"):
            model = self.average_net(target)
        else:
            model = self.velocity_net(target)
        torch.manual_seed(self._seed(target, kind))
        if kind == "cfm":
            from flow_core.objectives.cfm import ConditionalFlowMatching

            objective: Objective = ConditionalFlowMatching()
            name = "ConditionalFlowMatching()"
        elif kind == "ot-cfm":
            from flow_core.objectives.cfm import ConditionalFlowMatching

            objective = ConditionalFlowMatching(coupling="ot")
            name = 'ConditionalFlowMatching(coupling="ot")'
        elif kind == "w-cfm":
            from flow_core.objectives.wcfm import WeightedConditionalFlowMatching

            objective = WeightedConditionalFlowMatching()
            name = "WeightedConditionalFlowMatching()"
        elif kind == "torchcfm-ot":
            objective = torchcfm_objective(exact_ot=True)
            name = "torchcfm ExactOptimalTransportConditionalFlowMatcher(0)"
        elif kind == "2-rf":
            from flow_core.objectives.cfm import ConditionalFlowMatching

            teacher = self.get(target, "cfm").model
            pairs = self.reflow_pairs(target)
            model.load_state_dict(teacher.state_dict())  # warm start from 1-RF (Liu et al.)
            batches = pair_batches(pairs, s.batch, generator)
            objective = ConditionalFlowMatching()
            name = "ConditionalFlowMatching() on (x0, 1-RF(x0)) pairs, warm-started from 1-RF"
        elif kind == "meanflow":
            from flow_core.objectives.meanflow import MeanFlow

            objective = MeanFlow()
            name = "MeanFlow()"
        elif kind == "split-meanflow":
            from flow_core.objectives.splitmeanflow import SplitMeanFlow

            objective = SplitMeanFlow()
            name = "SplitMeanFlow()"
        else:
            raise ValueError(kind)
        metrics = fit(model, objective, batches, s.steps)
        seconds = metrics.pop("seconds")
        return Trained(frozen(model), name, seconds, metrics)

    def reflow_pairs(self, target: Target) -> dict[str, Tensor]:
        """Pairs (x0, 1-RF(x0)) from the trained CFM teacher, via the library's generate_pairs."""
        import time

        from flow_core.objectives.reflow import generate_pairs
        from flow_core.samplers.adaptive import AdaptiveODE

        teacher = self.get(target, "cfm").model
        n = 2000 if self.settings.quick else 10000
        generator = torch.Generator().manual_seed(self.settings.seed + 77)
        start = time.perf_counter()
        pairs = generate_pairs(
            teacher, AdaptiveODE("dopri5", rtol=1e-5, atol=1e-5), n, 2000, (target.dim,), generator
        )
        self.pairs_seconds[target.name] = time.perf_counter() - start
        return pairs
