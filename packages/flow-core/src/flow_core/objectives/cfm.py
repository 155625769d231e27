"""Conditional flow matching with independent, exact-OT or Sinkhorn couplings.

Lipman et al. 2023, "Flow Matching for Generative Modeling"; Tong et al. 2023, "Improving and
Generalizing Flow-Based Generative Models with Minibatch Optimal Transport" (the σ-smoothed
path and the OT couplings); Liu et al. 2022, "Flow Straight and Fast" (rectified flow, σ = 0).
In the project convention (t = 0 source, t = 1 data), with x0 ~ N(0, I), t drawn from a time
density (uniform by default) and ξ ~ N(0, I), on the linear path:

    x_t = (1 − t)·x0 + t·x1 + σ·ξ,
    L(θ) = E_{t, (x0, x1) ~ π, ξ} ℓ(v_θ(x_t, t, c) − (x1 − x0)),

with ℓ the squared error (or the pseudo-Huber loss) and π the coupling of each minibatch:

- ``"independent"`` (I-CFM): x0 and x1 drawn independently;
- ``"ot"`` (OT-CFM): the batch re-paired by the exact optimal assignment under squared
  Euclidean cost (:func:`~flow_core.objectives.couplings.exact_ot_permutation`);
- ``"sinkhorn"``: partners drawn from the entropic OT plan
  (:func:`~flow_core.objectives.couplings.sinkhorn_coupling`).

The I-CFM minimiser is the marginal velocity v(x, t) = E[x1 − x0 | x_t = x], whose flow
carries the source to the data; the OT couplings give straighter paths of the same
marginals. With integer class labels in ``batch["cond"]`` the OT couplings pair within a
class, so each condition stays with its data point. Other schedules of the affine path
x_t = α_t·x1 + σ_t·x0 (:class:`~flow_core.paths.affine.AffinePath`) are chosen by ``path``;
their target is α̇_t·x1 + σ̇_t·x0.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.objectives.common import (
    check_probability,
    drop_condition,
    is_label_tensor,
    source_and_data,
)
from flow_core.objectives.couplings import (
    COUPLINGS,
    OT_SOLVERS,
    exact_ot_permutation,
    sinkhorn_coupling,
)
from flow_core.objectives.losses import check_loss, per_sample_loss
from flow_core.objectives.timesteps import TimeDensity
from flow_core.paths.affine import AffinePath
from flow_core.protocols import Batch

__all__ = [
    "PARTNERS",
    "ConditionalFlowMatching",
    "OTConditionalFlowMatching",
    "SinkhornConditionalFlowMatching",
]

PARTNERS = "partners"
"""Batch key of the partner indices that :meth:`ConditionalFlowMatching.prepare_batch` adds."""


def _distinct_fraction(partners: Tensor) -> float:
    return float(torch.unique(partners).numel() / max(partners.numel(), 1))


class ConditionalFlowMatching:
    """The CFM objective: ``loss, metrics = objective(model, batch)``.

    ``batch`` holds ``"x1"`` (data, batch-first), optionally ``"x0"`` (a source sample of the
    same shape, e.g. the noise of a reflow pair; standard normal noise is drawn when absent)
    and ``"cond"`` (passed to the model, after dropout). The loss is the batch mean of the
    per-sample loss; with ``loss="squared"`` that is the mean squared error over all
    elements. ``metrics`` holds ``"loss"``, plus ``"unique_pairs"`` (the fraction of distinct
    data partners) for the OT couplings.

    Randomness comes from torch's global generators, drawn in this order: ``x0`` (when absent),
    ``t``, the Sinkhorn draws, ``ξ`` (when ``sigma > 0``), the condition dropout; saving and
    restoring the RNG state therefore reproduces a step exactly. Under
    :func:`flow_core.training.train`, the OT couplings pair each batch beforehand with
    :meth:`prepare_batch` (one step ahead, in a background thread): ``x0`` and the Sinkhorn
    draws then come from that step's own generator instead.

    Args:
        sigma: standard deviation σ ≥ 0 of the Gaussian smoothing around the path.
        coupling: ``"independent"``, ``"ot"`` or ``"sinkhorn"`` (see the module docstring).
        sinkhorn_reg: entropic regularisation of the Sinkhorn coupling, relative to the
            batch's cost contrast (see
            :func:`~flow_core.objectives.couplings.sinkhorn_coupling`).
        ot_solver: assignment backend of the exact coupling, ``"auto"``, ``"pot"`` or
            ``"scipy"``.
        time_density: time-density spec, e.g. ``"uniform"`` or ``"logit-normal:mean=0.4"``
            (see :mod:`flow_core.objectives.timesteps`).
        loss: ``"squared"`` or ``"pseudo-huber"`` (see :mod:`flow_core.objectives.losses`).
        path: schedule of the affine path, a name :func:`flow_core.paths.affine.get_schedule`
            accepts (``"linear"`` is x_t = (1 − t)·x0 + t·x1).
        cond_dropout: probability of replacing a sample's condition by the null condition
            (classifier-free guidance training).
    """

    model_kind: ClassVar[str] = "velocity"
    name: ClassVar[str] = "cfm"

    def __init__(
        self,
        sigma: float = 0.0,
        coupling: str = "independent",
        sinkhorn_reg: float = 0.05,
        ot_solver: str = "auto",
        time_density: str = "uniform",
        loss: str = "squared",
        path: str = "linear",
        cond_dropout: float = 0.0,
    ) -> None:
        if sigma < 0:
            raise ConfigError(f"{self.name}: sigma must be >= 0, got {sigma}")
        if coupling not in COUPLINGS:
            raise ConfigError(
                f"{self.name}: unknown coupling {coupling!r}; expected one of: "
                f"{', '.join(COUPLINGS)}"
            )
        if not sinkhorn_reg > 0:
            raise ConfigError(f"{self.name}: sinkhorn_reg must be > 0, got {sinkhorn_reg}")
        if ot_solver not in OT_SOLVERS:
            raise ConfigError(
                f"{self.name}: unknown ot_solver {ot_solver!r}; expected one of: "
                f"{', '.join(OT_SOLVERS)}"
            )
        self.sigma = float(sigma)
        self.coupling = coupling
        self.sinkhorn_reg = float(sinkhorn_reg)
        self.ot_solver = ot_solver
        self.time_density = TimeDensity.parse(time_density)
        self.loss = check_loss(loss, self.name)
        self.path = AffinePath(path)
        self.cond_dropout = check_probability(cond_dropout, "cond_dropout", self.name)

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        x0, x1 = source_and_data(batch, self.name)
        t = self.time_density(x1.shape[0], device=x1.device, dtype=x1.dtype)
        cond = batch.get("cond")
        if PARTNERS in batch:  # paired ahead by prepare_batch
            unique: float | None = _distinct_fraction(batch[PARTNERS])
        else:
            x1, unique = self.couple(x0, x1, cond)
        per_sample = self.regression_loss(model, x0, x1, t, cond)
        loss = per_sample.mean()
        metrics = {"loss": loss.item()}
        if unique is not None:
            metrics["unique_pairs"] = unique
        return loss, metrics

    def prepare_batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        """Pair the batch before the step (:class:`~flow_core.protocols.BatchPreparer`).

        Draws ``x0`` from ``generator`` when the batch has none and re-pairs ``x1`` with it
        by the coupling; the result carries the partner indices under ``"partners"``, so
        ``__call__`` uses the pairs as they are. The independent coupling has nothing to
        prepare: the batch is returned unchanged.
        """
        if self.coupling == "independent":
            return batch
        if "x1" not in batch:
            raise FlowError(f"{self.name}: the batch needs key 'x1'; got keys {sorted(batch)}")
        x1 = batch["x1"]
        x0 = batch.get("x0")
        if x0 is None:
            x0 = torch.randn(
                x1.shape, generator=generator, device=generator.device, dtype=x1.dtype
            ).to(x1.device)
        x0, x1 = source_and_data({"x0": x0, "x1": x1}, self.name)
        partners = self.partners(x0, x1, batch.get("cond"), generator)
        return {**batch, "x0": x0, "x1": x1[partners], PARTNERS: partners}

    def couple(self, x0: Tensor, x1: Tensor, cond: Tensor | None) -> tuple[Tensor, float | None]:
        """Re-pair the data with the source: ``(x1[j], fraction of distinct j)``.

        With class labels ``cond``, partners share the label (``cond[j] == cond``), so the
        labels stay valid for the re-paired batch. For the independent coupling ``x1`` is
        returned as it is, with ``None``.
        """
        if self.coupling == "independent":
            return x1, None
        partners = self.partners(x0, x1, cond, None)
        return x1[partners], _distinct_fraction(partners)

    def partners(
        self, x0: Tensor, x1: Tensor, cond: Tensor | None, generator: torch.Generator | None
    ) -> Tensor:
        """The partner ``j[i]`` of each source sample under the (non-independent) coupling;
        the Sinkhorn draws use ``generator`` (torch's global one when ``None``)."""
        labels = cond if cond is not None and is_label_tensor(cond) else None
        if cond is not None and labels is None:
            raise FlowError(
                f"{self.name}: the {self.coupling!r} coupling pairs within classes and needs "
                f"integer labels as 'cond'; got {cond.dtype} (use coupling='independent' or "
                "w-cfm for continuous conditions)"
            )
        if self.coupling == "ot":
            return exact_ot_permutation(x0, x1, self.ot_solver, labels=labels)
        return sinkhorn_coupling(x0, x1, self.sinkhorn_reg, generator, labels=labels)

    def regression_loss(
        self, model: nn.Module, x0: Tensor, x1: Tensor, t: Tensor, cond: Tensor | None
    ) -> Tensor:
        """Per-sample loss ℓ(v_θ(x_t, t, c) − target), shape ``(B,)``, on given pairs."""
        x_t = self.path.interpolate(x0, x1, t)
        if self.sigma > 0:
            x_t = x_t + self.sigma * torch.randn_like(x_t)
        target = self.path.target_velocity(x0, x1, t)
        cond = drop_condition(model, cond, self.cond_dropout, self.name)
        return per_sample_loss(self.loss, model(x_t, t, cond) - target)


class OTConditionalFlowMatching(ConditionalFlowMatching):
    """OT-CFM: :class:`ConditionalFlowMatching` with the exact minibatch OT coupling.

    Each batch is re-paired by the optimal permutation under squared Euclidean cost (Tong et
    al. 2023), within classes when ``cond`` holds labels. Options as for
    :class:`ConditionalFlowMatching`.
    """

    name: ClassVar[str] = "ot-cfm"

    def __init__(
        self,
        sigma: float = 0.0,
        ot_solver: str = "auto",
        time_density: str = "uniform",
        loss: str = "squared",
        path: str = "linear",
        cond_dropout: float = 0.0,
    ) -> None:
        super().__init__(
            sigma=sigma,
            coupling="ot",
            ot_solver=ot_solver,
            time_density=time_density,
            loss=loss,
            path=path,
            cond_dropout=cond_dropout,
        )


class SinkhornConditionalFlowMatching(ConditionalFlowMatching):
    """OT-CFM with the entropic (Sinkhorn) coupling: partners drawn from the Sinkhorn plan.

    ``sinkhorn_reg`` is the regularisation relative to the batch's cost contrast
    (see :func:`~flow_core.objectives.couplings.sinkhorn_coupling`); options as for
    :class:`ConditionalFlowMatching`.
    """

    name: ClassVar[str] = "ot-cfm-sinkhorn"

    def __init__(
        self,
        sigma: float = 0.0,
        sinkhorn_reg: float = 0.05,
        time_density: str = "uniform",
        loss: str = "squared",
        path: str = "linear",
        cond_dropout: float = 0.0,
    ) -> None:
        super().__init__(
            sigma=sigma,
            coupling="sinkhorn",
            sinkhorn_reg=sinkhorn_reg,
            time_density=time_density,
            loss=loss,
            path=path,
            cond_dropout=cond_dropout,
        )
