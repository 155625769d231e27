"""SGDP (Heo et al., ICLR 2021), a vectorised implementation.

For each parameter w with gradient ∇ (momentum μ, dampening τ, learning rate η, weight decay λ):

    b ← μ·b + (1 − τ)·∇                      (the momentum buffer starts at zero)
    d = b   (Nesterov: d = ∇ + μ·b)
    d ← Π(d) for scale-invariant w, and λ ← λ·wd_ratio   (see ``_projection``)
    w ← w·(1 − η·λ/(1 − μ))                  (decoupled weight decay, scaled by 1/(1 − μ))
    w ← w − η·d

Without Nesterov d *is* the buffer, so the projection also removes the radial part of the
momentum buffer itself, as in the reference. State (``step``, ``momentum``) follows the
reference package ``adamp`` 0.3.0 (``adamp.SGDP``). Elementwise work runs with
``torch._foreach_*`` over all parameters at once and the scale-invariance tests are batched
(one host transfer per step). Two arithmetic orders, as in :mod:`flow_norms.optim.adamp`:

* ``reference_order=True`` follows ``adamp.SGDP`` operation for operation, so the parameters
  are bit-identical to its on CPU (checked by the tests);
* the default projects all scale-invariant directions at once as d − w·⟨w, d⟩/(‖w‖ + ε)²
  (:func:`~flow_norms.optim._projection.radial_coefficients`, one ``addcmul`` per weight
  instead of materialising ŵ), which differs from the reference by rounding only.

Reference: Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
Scale-invariant Weights", ICLR 2021, arXiv:2006.08217.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from flow_norms.optim._common import Tensors, check_range, gradients, partition_by_step
from flow_norms.optim._projection import (
    project_scale_invariant,
    radial_coefficients,
    scale_invariant_views,
)

__all__ = ["SGDP"]


class SGDP(torch.optim.Optimizer):
    """SGD with momentum, projection of scale-invariant weights and decoupled weight decay.

    Args:
        params: parameters or parameter groups.
        lr: learning rate η (required).
        momentum: μ (0).
        dampening: τ (0).
        weight_decay: decoupled weight decay λ (0).
        nesterov: Nesterov momentum (False).
        eps: ε of the cosine and the projection (1e-8).
        delta: δ of the scale-invariance test (0.1).
        wd_ratio: factor on λ for scale-invariant weights (0.1).
        reference_order: reproduce ``adamp`` 0.3.0 bit for bit (see the module).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        eps: float = 1e-8,
        delta: float = 0.1,
        wd_ratio: float = 0.1,
        reference_order: bool = False,
    ) -> None:
        check_range("lr", lr, 0.0, math.inf, True)
        check_range("momentum", momentum, 0.0, 1.0, True)
        check_range("dampening", dampening, 0.0, 1.0, False)
        check_range("weight_decay", weight_decay, 0.0, math.inf, True)
        check_range("eps", eps, 0.0, math.inf, True)
        check_range("delta", delta, 0.0, math.inf, True)
        check_range("wd_ratio", wd_ratio, 0.0, 1.0, False)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "eps": eps,
            "delta": delta,
            "wd_ratio": wd_ratio,
            "reference_order": reference_order,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("reference_order", False)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Perform one optimisation step; ``closure`` re-evaluates the loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            partitions = partition_by_step(group["params"], self.state, ("momentum",))
            for step, params in partitions.items():
                self._update(group, params, step + 1)
        return loss

    def _update(self, group: dict[str, Any], params: list[torch.Tensor], step: int) -> None:
        momentum, lr, weight_decay = group["momentum"], group["lr"], group["weight_decay"]
        grads = gradients(params)
        buffers = [self.state[p]["momentum"] for p in params]
        for p in params:
            self.state[p]["step"] = step
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads, alpha=1 - group["dampening"])
        directions: Tensors
        if group["nesterov"]:
            directions = torch._foreach_mul(buffers, momentum)
            torch._foreach_add_(directions, grads)
        else:
            directions = buffers
        if group["reference_order"]:
            ratios = project_scale_invariant(
                params, grads, directions, group["delta"], group["wd_ratio"], group["eps"]
            )
        else:
            ratios = self._project_fused(group, params, grads, directions)
        if weight_decay > 0:
            torch._foreach_mul_(
                params, [1 - lr * weight_decay * r / (1 - momentum) for r in ratios]
            )
        torch._foreach_add_(params, directions, alpha=-lr)

    @staticmethod
    def _project_fused(
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        directions: Tensors,
    ) -> list[float]:
        """d ← d − w·c for the scale-invariant weights (all at once); their weight-decay ratio."""
        eps = group["eps"]
        views, norms = scale_invariant_views(params, grads, group["delta"], eps)
        projected = [i for i, view in enumerate(views) if view]
        if projected:
            weights = [params[i] for i in projected]
            chosen = [directions[i] for i in projected]
            coefficients = radial_coefficients(
                weights, chosen, [views[i] for i in projected], [norms[i] for i in projected], eps
            )
            torch._foreach_addcmul_(chosen, weights, coefficients, value=-1)
        return [group["wd_ratio"] if view else 1.0 for view in views]
