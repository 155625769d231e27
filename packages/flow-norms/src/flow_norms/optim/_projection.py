"""The scale-invariance test and projection shared by AdamP and SGDP (Heo et al., ICLR 2021,
"AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant Weights").

For a weight w with more than one dimension, gradient ∇ and update p, two views are tried in
turn: per output channel (w viewed as ``(C, −1)``, rows of length k) and the whole layer
(``(1, −1)``, one row of length C·k). For a view, if

    max over rows |cos(∇_row, w_row)| < δ / √(row length)

the weight is treated as scale-invariant in that view: the radial part of the update is removed
row by row, p ← p − ŵ·⟨ŵ, p⟩ with ŵ = w/(‖w‖ + ε), and the weight decay is multiplied by
``wd_ratio``. The first view that passes wins; if none does, p is left alone.

Vectorisation: the per-row inner products and norms are computed once (three reductions per
weight, on views, without copies, instead of up to four normalisations and two reductions per
view); everything after them runs once for the rows of all weights concatenated (segment sums
give the layer view), so the test of every weight costs a fixed number of further operations
and a single device-to-host transfer per step. :func:`project` repeats the reference's
operations in the reference's order, so a projected update is bit-identical to ``adamp``
0.3.0's. The cosines are not computed with the same rounding as ``F.cosine_similarity``, so a
weight whose cosine lies within rounding error of the threshold could be classified
differently (never observed in our parity tests). The optimizers' default (fused) mode uses
:func:`radial_coefficients` instead: Π(p) = p − w·⟨w, p⟩/(‖w‖ + ε)², which lets the projection
and the weight decay be folded into one per-row scaling of w (the projection of Heo et al.
2021, arXiv:2006.08217, Algorithms 1 and 2, rearranged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "project",
    "project_scale_invariant",
    "radial_coefficients",
    "scale_invariant_views",
]


def _segments(rows: list[int], device: torch.device) -> torch.Tensor:
    """The index of the weight that each row of the concatenated rows belongs to."""
    return torch.repeat_interleave(
        torch.arange(len(rows), device=device), torch.tensor(rows, device=device)
    )


def _rows(t: torch.Tensor) -> torch.Tensor:
    """``t`` viewed as ``(output channels, −1)``."""
    return t.reshape(t.shape[0], -1)


def _row_statistics(
    weights: list[torch.Tensor], grads: list[torch.Tensor]
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per weight: the channel norms of w; concatenated over weights: ⟨∇, w⟩, ‖∇‖, ‖w‖ rows.

    Three reductions per weight, on views, one weight after the other (so that its w and ∇
    are still in cache for the second and third)."""
    weight_norms, dots, grad_norms = [], [], []
    for w, g in zip(weights, grads, strict=True):
        w2, g2 = _rows(w), _rows(g)
        weight_norms.append(torch.linalg.vector_norm(w2, dim=1))
        dots.append(torch.linalg.vecdot(g2, w2))
        grad_norms.append(torch.linalg.vector_norm(g2, dim=1))
    return weight_norms, torch.cat(dots), torch.cat(grad_norms), torch.cat(weight_norms)


def _decisions(
    weights: list[torch.Tensor],
    grads: list[torch.Tensor],
    delta: float,
    eps: float,
) -> tuple[list[int], list[torch.Tensor]]:
    """For each weight: 0 (not scale-invariant), 1 (channel view) or 2 (layer view)."""
    device = weights[0].device
    weight_norms, dot, grad_norm, weight_norm = _row_statistics(weights, grads)
    segment = _segments([w.shape[0] for w in weights], device)
    cosine = dot.abs() / (grad_norm.clamp_min(eps) * weight_norm.clamp_min(eps))
    stats = torch.zeros(4, len(weights), dtype=dot.dtype, device=device)
    stats[0].scatter_reduce_(0, segment, cosine, "amax", include_self=False)
    stats[1:].index_add_(1, segment, torch.stack([dot, grad_norm.square(), weight_norm.square()]))
    layer_cosine = stats[1].abs() / (
        stats[2].sqrt().clamp_min(eps) * stats[3].sqrt().clamp_min(eps)
    )
    thresholds = torch.tensor(
        [
            [delta / math.sqrt(w[0].numel()) for w in weights],
            [delta / math.sqrt(w.numel()) for w in weights],
        ],
        dtype=torch.float64,
        device=device,
    )
    channel = stats[0].double() < thresholds[0]
    layer = ~channel & (layer_cosine.double() < thresholds[1])
    return (channel.long() + 2 * layer.long()).tolist(), weight_norms


def _remove_radial(update: torch.Tensor, unit: torch.Tensor, rows: int) -> None:
    """update ← update − ŵ·⟨ŵ, update⟩ row by row (``rows`` = 1 for the layer view)."""
    expand = [-1] + [1] * (update.ndim - 1)
    update.sub_(unit * (unit * update).reshape(rows, -1).sum(dim=1).view(expand))


def scale_invariant_views(
    weights: list[torch.Tensor], grads: list[torch.Tensor], delta: float, eps: float
) -> tuple[list[int], dict[int, torch.Tensor]]:
    """For each weight: the view in which it is scale-invariant (0 none, 1 channel, 2 layer);
    and, by index, the channel norms of the weights with more than one dimension (weights with
    one dimension are never projected)."""
    views = [0] * len(weights)
    norms: dict[int, torch.Tensor] = {}
    matrices = [i for i, w in enumerate(weights) if w.ndim > 1]
    if matrices:
        chosen, weight_norms = _decisions(
            [weights[i] for i in matrices], [grads[i] for i in matrices], delta, eps
        )
        for i, view, row_norms in zip(matrices, chosen, weight_norms, strict=True):
            views[i], norms[i] = view, row_norms
    return views, norms


def project(
    update: torch.Tensor, weight: torch.Tensor, view: int, norms: torch.Tensor, eps: float
) -> None:
    """Remove the radial part of ``update`` in place, in the ``view`` (1 or 2) chosen by
    :func:`scale_invariant_views`; ``norms`` are the weight's channel norms."""
    expand = [-1] + [1] * (weight.ndim - 1)
    if view == 1:
        unit = weight / norms.add(eps).view(expand)
        _remove_radial(update, unit, weight.shape[0])
    else:
        unit = weight / weight.reshape(1, -1).norm(dim=1).view(expand).add_(eps)
        _remove_radial(update, unit, 1)


def radial_coefficients(
    weights: list[torch.Tensor],
    updates: Sequence[torch.Tensor],
    views: list[int],
    norms: list[torch.Tensor],
    eps: float,
) -> list[torch.Tensor]:
    """The fused form of :func:`project` for many weights at once: per weight a coefficient c,
    shaped to broadcast over its rows, with Π(p) = p − w·c, that is
    c = ⟨w, p⟩/(‖w‖ + ε)² per row (``view`` 1) or over the whole weight (``view`` 2).

    Equal to :func:`project` up to rounding. One inner product per weight; everything else
    is a fixed number of operations on the rows of all weights concatenated."""
    rows = [w.shape[0] for w in weights]
    segment = _segments(rows, weights[0].device)
    dots = [torch.linalg.vecdot(_rows(w), _rows(p)) for w, p in zip(weights, updates, strict=True)]
    dot, norm = torch.cat(dots), torch.cat(norms)
    layer = torch.tensor(views, device=dot.device)[segment] == 2
    totals = torch.zeros(2, len(weights), dtype=dot.dtype, device=dot.device)
    totals.index_add_(1, segment, torch.stack([dot, norm.square()]))
    dot = torch.where(layer, totals[0][segment], dot)
    norm = torch.where(layer, totals[1].sqrt()[segment], norm)
    coefficients = dot / (norm + eps).square()
    return [
        c.view([-1] + [1] * (w.ndim - 1))
        for c, w in zip(torch.split(coefficients, rows), weights, strict=True)
    ]


def project_scale_invariant(
    weights: list[torch.Tensor],
    grads: list[torch.Tensor],
    updates: Sequence[torch.Tensor],
    delta: float,
    wd_ratio: float,
    eps: float,
) -> list[float]:
    """Project ``updates`` in place for scale-invariant weights; return the weight-decay ratio
    of each weight (``wd_ratio`` where projected, 1 elsewhere)."""
    views, norms = scale_invariant_views(weights, grads, delta, eps)
    ratios = [1.0] * len(weights)
    for i, view in enumerate(views):
        if view:
            project(updates[i], weights[i], view, norms[i], eps)
            ratios[i] = wd_ratio
    return ratios
