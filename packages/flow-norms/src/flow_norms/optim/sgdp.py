"""SGDP (Heo et al., ICLR 2021), a vectorised implementation.

For each parameter w with gradient ∇ (momentum μ, dampening τ, learning rate η, weight decay λ):

    b ← μ·b + (1 − τ)·∇                      (the momentum buffer starts at zero)
    d = b   (Nesterov: d = ∇ + μ·b)
    d ← Π(d) for scale-invariant w, and λ ← λ·wd_ratio   (see ``_projection``)
    w ← w·(1 − η·λ/(1 − μ))                  (decoupled weight decay, scaled by 1/(1 − μ))
    w ← w − η·d

Without Nesterov d *is* the buffer, so the projection also removes the radial part of the
momentum buffer itself, as in the reference. State (``step``, ``momentum``) and arithmetic
follow the reference package ``adamp`` 0.3.0 (``adamp.SGDP``) operation for operation, so
the parameters are bit-identical to its on CPU; elementwise work runs with ``torch._foreach_*``
over all parameters at once and the scale-invariance tests are batched (one host transfer per
step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from flow_norms.optim._common import Tensors, check_range, gradients, partition_by_step
from flow_norms.optim._projection import project_scale_invariant

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
        }
        super().__init__(params, defaults)

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
        ratios = project_scale_invariant(
            params, grads, directions, group["delta"], group["wd_ratio"], group["eps"]
        )
        if weight_decay > 0:
            torch._foreach_mul_(
                params, [1 - lr * weight_decay * r / (1 - momentum) for r in ratios]
            )
        torch._foreach_add_(params, directions, alpha=-lr)
