"""Couplings of a minibatch of source samples x0 with data samples x1.

A coupling here returns an index tensor ``j`` of shape ``(B,)``: the training pairs are
``(x0[i], x1[j[i]])``. The cost of a pair is the squared Euclidean distance
C_ij = ‖x0_i − x1_j‖² over the flattened samples, computed on the batch's device with
:func:`torch.cdist`.

- :func:`independent_coupling`: ``j = i``. Source and data are drawn independently, so the
  pairing is already a sample of μ⊗ν (I-CFM; Lipman et al. 2023).
- :func:`exact_ot_permutation`: minibatch optimal transport (OT-CFM; Tong et al. 2023,
  "Improving and generalizing flow-based generative models with minibatch optimal
  transport"). With uniform weights on B points the optimal plan is a vertex of the Birkhoff
  polytope, a permutation matrix / B, so we return that permutation itself: every sample is
  used exactly once. (torchcfm instead draws B pairs from the plan with replacement, which
  keeps only about 63% of the pairs distinct.) The assignment is solved on the CPU by
  POT's network simplex (``ot.emd``) or SciPy's Jonker–Volgenant ``linear_sum_assignment``,
  whichever ``solver`` names; ``"auto"`` takes the one that was faster for the batch's
  dimension (POT up to 4 dimensions, SciPy above).
- :func:`sinkhorn_coupling`: entropic OT (Cuturi 2013), min_π ⟨π, C⟩ + ε·Σ π log π, through
  POT's Sinkhorn on the batch's device (in float64, log-domain when the kernel would
  underflow); each source row i then draws its partner from the plan's conditional π(j | i).
  The temperature is relative: ε = ``reg``·rms(C̃), with C̃ the double-centred cost
  (C minus its row and column means plus its grand mean; for squared distances
  C̃_ij = −2(x0_i − x̄0)·(x1_j − x̄1)), the part of C that a plan responds to. One ``reg``
  then means the same sharpness whatever the scale or offset of the data.

With integer class labels, :func:`exact_ot_permutation` and :func:`sinkhorn_coupling` pair
samples only within a class (label-preserving OT): the labels belong to the data, and the
returned indices keep ``labels[j] == labels``, so a condition c stays attached to its data
point and x0 is transported to the data of class c only. This is the per-class OT that
conditional OT-CFM needs (torchcfm issues #117, #120).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import Tensor

from flow_core.errors import ConfigError, FlowError

__all__ = [
    "COUPLINGS",
    "OT_SOLVERS",
    "exact_ot_permutation",
    "independent_coupling",
    "pair_cost",
    "sinkhorn_coupling",
]

COUPLINGS: tuple[str, ...] = ("independent", "ot", "sinkhorn")
"""The coupling names :class:`~flow_core.objectives.cfm.ConditionalFlowMatching` accepts."""

OT_SOLVERS: tuple[str, ...] = ("auto", "pot", "scipy")
"""Backends of :func:`exact_ot_permutation`."""

_EMD_MAX_ITERATIONS = 10_000_000
_POT_MAX_DIM = 4
_SINKHORN_MAX_ITERATIONS = 1_000
_SINKHORN_TOLERANCE = 1e-6
_SINKHORN_MARGIN_ERROR = 0.05


def _flatten_pair(x0: Tensor, x1: Tensor, where: str) -> tuple[Tensor, Tensor]:
    if x0.ndim < 1 or x0.shape[0] != x1.shape[0] or x0[0].numel() != x1[0].numel():
        raise FlowError(
            f"{where}: x0 and x1 need the same batch size and elements per sample, got "
            f"{tuple(x0.shape)} and {tuple(x1.shape)}"
        )
    return x0.reshape(x0.shape[0], -1), x1.reshape(x1.shape[0], -1)


def pair_cost(x0: Tensor, x1: Tensor) -> Tensor:
    """The cost matrix C_ij = ‖x0_i − x1_j‖², shape ``(B, B)``, on the batch's device."""
    a, b = _flatten_pair(x0, x1, "pair_cost")
    return torch.cdist(a.detach(), b.detach()).square()


def independent_coupling(x0: Tensor, x1: Tensor) -> Tensor:
    """The identity pairing ``j = i`` (independent samples are already coupled by μ⊗ν)."""
    _flatten_pair(x0, x1, "independent_coupling")
    return torch.arange(x0.shape[0], device=x0.device)


def _pick_solver(solver: str, dim: int) -> str:
    if solver not in OT_SOLVERS:
        raise ConfigError(f"unknown OT solver {solver!r}; expected one of: {', '.join(OT_SOLVERS)}")
    if solver != "auto":
        return solver
    # CPU time per solve, B = 256 … 1024: on clustered 2-D data (eight gaussians, moons) the
    # network simplex is 1.4-3x faster than Jonker-Volgenant; from 8-D up Jonker-Volgenant
    # wins (4x on 64-D binary images).
    return "pot" if dim <= _POT_MAX_DIM else "scipy"


def _assignment(cost: Tensor, solver: str) -> Tensor:
    """Optimal permutation for one square cost matrix, on the CPU; result on cost's device."""
    # POT and SciPy are imported on first use: importing POT takes about two seconds.
    import ot
    from scipy.optimize import linear_sum_assignment

    matrix = cost.detach().to("cpu", torch.float64).numpy()
    n = matrix.shape[0]
    if solver == "pot":
        plan = ot.emd(np.empty(0), np.empty(0), matrix, numItermax=_EMD_MAX_ITERATIONS)
        columns = plan.argmax(axis=1)
        # A basic solution is a permutation; keep SciPy as the fallback for the rare case
        # where the simplex stopped early (iteration limit) and returned something else.
        if np.unique(columns).size != n:
            columns = linear_sum_assignment(matrix)[1]
    else:
        columns = linear_sum_assignment(matrix)[1]
    return torch.from_numpy(np.ascontiguousarray(columns, dtype=np.int64)).to(cost.device)


def _class_blocks(labels: Tensor | None, batch: int, where: str) -> list[Tensor] | None:
    """Index sets of the classes in ``labels``; ``None`` when there are no labels."""
    if labels is None:
        return None
    if labels.shape != (batch,) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise FlowError(
            f"{where}: label-preserving OT needs integer labels of shape ({batch},), got "
            f"{labels.dtype} of shape {tuple(labels.shape)}"
        )
    return [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]


def exact_ot_permutation(
    x0: Tensor, x1: Tensor, solver: str = "auto", labels: Tensor | None = None
) -> Tensor:
    """A permutation π minimising Σ_i ‖x0_i − x1_π(i)‖² over the batch.

    Args:
        x0, x1: batches of equal size ``B`` and equal elements per sample.
        solver: ``"pot"`` (``ot.emd``), ``"scipy"`` (``linear_sum_assignment``) or ``"auto"``.
        labels: optional integer class labels of the data ``x1``, shape ``(B,)``; when given,
            π maps each class onto itself (``labels[π] == labels``).

    Returns:
        A ``LongTensor`` of shape ``(B,)`` on the batch's device, a permutation of 0 … B − 1.
    """
    a, b = _flatten_pair(x0, x1, "exact_ot_permutation")
    choice = _pick_solver(solver, a.shape[1])
    cost = pair_cost(a, b)
    blocks = _class_blocks(labels, a.shape[0], "exact_ot_permutation")
    if blocks is None:
        return _assignment(cost, choice)
    perm = torch.empty(a.shape[0], dtype=torch.long, device=a.device)
    for index in blocks:
        perm[index] = index[_assignment(cost[index][:, index], choice)]
    return perm


def _contrast(cost: Tensor) -> Tensor:
    """RMS of the double-centred cost: the part of C that a transport plan responds to."""
    centred = cost - cost.mean(dim=1, keepdim=True) - cost.mean(dim=0, keepdim=True) + cost.mean()
    return centred.square().mean().sqrt().clamp_min(torch.finfo(cost.dtype).tiny)


def _sinkhorn_rows(cost: Tensor, reg: float, generator: torch.Generator | None) -> Tensor:
    import ot

    n = cost.shape[0]
    # Subtracting each row's minimum leaves the entropic plan unchanged (it shifts a dual
    # potential) and gives every row of the kernel an entry exp(0) = 1.
    scaled = (cost - cost.min(dim=1, keepdim=True).values) / _contrast(cost)
    weights = torch.full((n,), 1.0 / n, dtype=cost.dtype, device=cost.device)
    options = {"numItermax": _SINKHORN_MAX_ITERATIONS, "stopThr": _SINKHORN_TOLERANCE}
    # Matrix scaling is 3-5x faster than the log-domain iteration but can underflow for small
    # ε; it then stops early with wrong marginals, and the log-domain solver takes over.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = ot.sinkhorn(weights, weights, scaled, reg, method="sinkhorn", warn=False, **options)
    column_error = (plan.sum(dim=0) * n - 1).abs().max()
    if not (bool(torch.isfinite(plan).all()) and bool(column_error < _SINKHORN_MARGIN_ERROR)):
        plan = ot.sinkhorn(
            weights, weights, scaled, reg, method="sinkhorn_log", warn=False, **options
        )
    return torch.multinomial(plan, 1, generator=generator).flatten()


def sinkhorn_coupling(
    x0: Tensor,
    x1: Tensor,
    reg: float = 0.05,
    generator: torch.Generator | None = None,
    labels: Tensor | None = None,
) -> Tensor:
    """Partners drawn from the entropic OT plan: ``j[i] ~ π(· | i)``.

    Args:
        x0, x1: batches of equal size ``B`` and equal elements per sample.
        reg: entropic regularisation relative to the batch's cost contrast,
            ε = reg·rms(C̃) (dimensionless; see the module docstring); small values approach
            exact OT, large ones the independent coupling. Below about 0.01 the Sinkhorn
            iteration may not converge within its 1000 steps, and the plan's data marginal
            then drifts from uniform.
        generator: random generator for the draws (torch's global one when ``None``).
        labels: optional integer class labels of ``x1``; partners are drawn within a class.

    Returns:
        A ``LongTensor`` of shape ``(B,)`` on the batch's device; indices may repeat.
    """
    if not reg > 0:
        raise ConfigError(f"sinkhorn_coupling: reg must be > 0, got {reg}")
    a, b = _flatten_pair(x0, x1, "sinkhorn_coupling")
    cost = pair_cost(a, b).to(torch.float64)
    blocks = _class_blocks(labels, a.shape[0], "sinkhorn_coupling")
    if blocks is None:
        return _sinkhorn_rows(cost, reg, generator)
    partners = torch.empty(a.shape[0], dtype=torch.long, device=a.device)
    for index in blocks:
        partners[index] = index[_sinkhorn_rows(cost[index][:, index], reg, generator)]
    return partners
