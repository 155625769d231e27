"""Power Normalization (Shen, Yao, Gholami, Mahoney & Keutzer, ICML 2020, "PowerNorm:
Rethinking Batch Normalization in Transformers"), with masking of padded positions.

Per feature c, over the *valid* (non-padded) positions B of a batch (Algorithm 1 of the paper):

* batch quadratic mean ψ_B² = mean_B(x²) — no mean is subtracted;
* forward z = x / ψ_{t−1} with the *running* quadratic mean, y = γ·z + β;
* running statistic ψ_t² = α_f·ψ_{t−1}² + (1 − α_f)·ψ_B²;
* approximate backward, with g = ∂L/∂z = γ·∂L/∂y:
  ∂L/∂x = (g − ν_{t−1}·z) / ψ_{t−1}, and ν_t = ν_{t−1}·(1 − (1 − α_b)·Γ) + (1 − α_b)·Λ with
  Γ = mean_B(z²), Λ = mean_B(z·g). ν tracks the term mean_B(g·z) that the exact gradient of a
  batch-statistics layer subtracts, so the gradient stays bounded while the forward pass uses
  running statistics only;
* inference y = γ·x/ψ_T + β.

Here ψ = √(ψ² + ε) wherever it divides. What the reference implementation (sIncerass/powernorm,
``MaskPowerNorm``) adds, and how this module treats it:

* **warm-up** — for the first ``warmup_iters`` training calls the forward pass uses the batch
  statistic ψ_B instead of ψ_{t−1}; here ψ² is the running *mean* of ψ_B² over the warm-up
  calls (so it starts from a good estimate) and the EMA above afterwards;
* **per-token scaling** (``group_scaling=True``) — inputs are first divided by their per-token
  RMS over the features, ``GroupScaling1D`` with one group (a gain-less RMSNorm), a step the
  paper does not describe;
* the reference's ``ema_gz`` is our ν divided by (1 − α_b) (the same rule, rescaled), and it
  divides by the current batch statistic in the backward pass; we divide by the ψ the forward
  pass used, as in the paper.

``backward="exact"`` replaces the approximate backward by the true gradient of the forward
pass as computed (g/ψ with running statistics; (g − z·Σ g·z / |B|)/ψ_B with batch statistics
during warm-up) — the ablation without the ν correction, and the mode that ``gradcheck``
verifies. Padded positions never enter ψ_B, Γ or Λ; their gradient is g/ψ. ν is updated once
per backward pass (twice if a graph through the layer is differentiated twice); second
derivatives through the layer are not supported. Statistics are per process (no
synchronisation across data-parallel ranks).

Speed: neither z = x/ψ nor any other full-size intermediate is kept; on CPU the statistics
and the backward pass sweep the rows in cache-sized blocks, so that forward + backward read
x and ∇y from memory about as often as torch's fused LayerNorm kernels do (see
:class:`PowerNormFunction` and ``docs/benchmarks/norms.md``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from flow_core.errors import ConfigError
from flow_norms.norms._inputs import check_positive, flatten

__all__ = ["PowerNorm", "PowerNormFunction", "group_scaling", "power_norm"]

BACKWARDS = ("approx", "exact")


def group_scaling(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Divide each token by its RMS over the last dimension (reference ``GroupScaling1D``,
    one group): x / √(mean_c(x²) + ε)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


BLOCK = 2**17
"""Values per block of rows in the CPU kernels below (512 KiB of float32): a block's
temporaries stay in cache, so each kernel reads its inputs from memory once."""


def _row_blocks(x: torch.Tensor) -> list[slice]:
    """Ranges of rows of ``x`` with about :data:`BLOCK` values each on CPU (one range on
    other devices, where a kernel launch per block would cost more than it saves)."""
    if x.device.type != "cpu":
        return [slice(None)]
    rows = max(1, BLOCK // max(1, x.shape[1]))
    return [slice(i, i + rows) for i in range(0, x.shape[0], rows)]


def _valid_rows(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``x`` with its padded rows zeroed (``x`` itself when nothing is padded)."""
    return x if valid is None else x * valid.to(x.dtype).unsqueeze(1)


def square_sums(x: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Σ x² per feature over the valid rows of ``(N, C)`` ``x``."""
    total = x.new_zeros(x.shape[1])
    weights = None if valid is None else valid.to(x.dtype).unsqueeze(1)
    for rows in _row_blocks(x):
        squares = x[rows].square()
        if weights is not None:
            squares *= weights[rows]
        total += squares.sum(0)
    return total


def _product_sums(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ a·b per feature over all rows."""
    total = a.new_zeros(a.shape[1])
    for rows in _row_blocks(a):
        total += (a[rows] * b[rows]).sum(0)
    return total


def _backward_kernel(
    grad_y: torch.Tensor,
    x: torch.Tensor,
    valid: torch.Tensor | None,
    scale: torch.Tensor,
    coefficient: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """∂L/∂x = ∇y·scale − x·coefficient on valid rows (∇y·scale on padded rows), and per
    feature Σ ∇y·x over all rows, Σ ∇y·x over the valid rows and Σ ∇y, in one sweep."""
    grad_x = torch.empty_like(grad_y)
    total, valid_total, grad_sum = grad_y.new_zeros(3, grad_y.shape[1]).unbind()
    weights = None if valid is None else valid.to(x.dtype).unsqueeze(1)
    for rows in _row_blocks(x):
        g, block = grad_y[rows], x[rows]
        products = g * block
        total += products.sum(0)
        grad_sum += g.sum(0)
        out = torch.mul(g, scale, out=grad_x[rows])
        if weights is not None:
            valid_total += (products * weights[rows]).sum(0)
            block = block * weights[rows]
        if coefficient is not None:
            out.addcmul_(block, coefficient, value=-1)
    return grad_x, total, total if valid is None else valid_total, grad_sum


class PowerNormFunction(torch.autograd.Function):
    """y = γ·x/√(ψ² + ε) + β on ``(N, C)`` rows, with the approximate or exact backward pass.

    ``psi2`` is the quadratic mean the forward pass divides by; ``batch_stats`` says whether it
    was computed from this batch (then the exact gradient includes its dependence on x).
    ``nu`` (shape ``(C,)``) is read and, in approximate mode, updated in place by backward.

    Every formula is written in terms of x and per-channel factors, so that z = x/ψ is never
    materialised: with s = 1/ψ, a = γ·s and S = Σ_B ∇y·x (valid rows),

        y = a·x + β,   ∂L/∂γ = s·Σ ∇y·x,   mean_B(z·g) = a·S/|B|,   mean_B(z²) = s²·mean_B(x²),
        ∂L/∂x = a·∇y − x·b on valid rows (a·∇y on padded rows), with b = ν·s² (approximate),
        b = s²·a·Σ ∇y·x/|B| over all rows (exact, batch statistics) or b = 0 (exact, running
        statistics)

    (Shen et al. 2020, arXiv:2003.07845, Algorithm 1, rearranged). The forward pass is one
    ``addcmul``; the backward pass is one sweep over blocks of rows that computes ∂L/∂x and
    the three per-feature sums it needs, so that on CPU it reads ∇y and x from memory once.
    The backward pass is not itself differentiable (no second derivatives).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        valid: torch.Tensor | None,
        psi2: torch.Tensor,
        nu: torch.Tensor,
        batch_stats: bool,
        approximate: bool,
        alpha_bkw: float,
        eps: float,
        square_mean: torch.Tensor | None,
    ) -> torch.Tensor:
        inv = torch.rsqrt(psi2 + eps)
        scale = inv if weight is None else inv * weight
        y = x * scale if bias is None else torch.addcmul(bias, x, scale)
        ctx.save_for_backward(x, inv, scale, valid, square_mean)
        ctx.nu = nu
        ctx.needs = (weight is not None, bias is not None)
        ctx.settings = (batch_stats, approximate, alpha_bkw)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, inv, scale, valid, square_mean = ctx.saved_tensors
        batch_stats, approximate, alpha_bkw = ctx.settings
        has_weight, has_bias = ctx.needs
        nu: torch.Tensor = ctx.nu
        grad_y = grad_y.contiguous()
        count = x.shape[0] if valid is None else valid.sum().clamp_min(1)
        coefficient = None
        if approximate:
            coefficient = nu * inv.square()
        elif batch_stats:  # padded outputs depend on ψ_B too: the sum runs over all rows
            coefficient = inv.square() * scale * _product_sums(grad_y, x) / count
        grad_x, total, valid_total, grad_sum = _backward_kernel(
            grad_y, x, valid, scale, coefficient
        )
        if approximate:
            if square_mean is None:
                square_mean = square_sums(x, valid) / count
            mean_z2 = square_mean * inv.square()
            mean_zg = scale * valid_total / count
            nu.mul_(1 - (1 - alpha_bkw) * mean_z2).add_((1 - alpha_bkw) * mean_zg)
        grad_weight = total * inv if has_weight else None
        grad_bias = grad_sum if has_bias else None
        return grad_x, grad_weight, grad_bias, None, None, None, None, None, None, None, None


def power_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    valid: torch.Tensor | None,
    psi2: torch.Tensor,
    nu: torch.Tensor,
    *,
    batch_stats: bool,
    approximate: bool,
    alpha_bkw: float = 0.9,
    eps: float = 1e-5,
    square_mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Functional PowerNorm on ``(N, C)`` rows (see :class:`PowerNormFunction`).

    ``square_mean``, mean_B(x²) over the valid rows if the caller has computed it, spares the
    approximate backward pass one reduction."""
    out: torch.Tensor = PowerNormFunction.apply(  # type: ignore[no-untyped-call]
        x, weight, bias, valid, psi2, nu, batch_stats, approximate, alpha_bkw, eps, square_mean
    )
    return out


class PowerNorm(nn.Module):
    """PowerNorm layer for channels-last input ``(..., num_features)``; see the module docstring.

    Args:
        num_features: size of the last dimension.
        eps: added to ψ² before the square root (reference default 1e-5).
        alpha_fwd: EMA factor α_f of the running quadratic mean ψ² (0.9).
        alpha_bkw: EMA factor α_b of the backward statistic ν (0.9).
        warmup_iters: training calls that use batch statistics in the forward pass (the
            reference uses 10000; 0 gives the paper's algorithm from the first step).
        affine: learn γ and β.
        group_scaling: divide each token by its RMS first (the reference's ``GroupScaling1D``).
        backward: ``approx`` (the paper's approximate backward) or ``exact``.

    ``forward(x, padding_mask=None)``: ``padding_mask`` is bool of shape ``x.shape[:-1]``,
    ``True`` at padded positions, which are left out of the statistics.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        alpha_fwd: float = 0.9,
        alpha_bkw: float = 0.9,
        warmup_iters: int = 10000,
        affine: bool = True,
        group_scaling: bool = False,
        backward: str = "approx",
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ConfigError(f"num_features must be >= 1, got {num_features}")
        check_positive("eps", eps)
        for name, value in (("alpha_fwd", alpha_fwd), ("alpha_bkw", alpha_bkw)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if warmup_iters < 0:
            raise ConfigError(f"warmup_iters must be >= 0, got {warmup_iters}")
        if backward not in BACKWARDS:
            raise ConfigError(f"backward must be one of {', '.join(BACKWARDS)}, got {backward!r}")
        self.num_features = num_features
        self.eps = eps
        self.alpha_fwd = alpha_fwd
        self.alpha_bkw = alpha_bkw
        self.warmup_iters = warmup_iters
        self.group_scaling = group_scaling
        self.backward_mode = backward
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.running_psi2: torch.Tensor
        self.nu: torch.Tensor
        self.iters: torch.Tensor
        self.register_buffer("running_psi2", torch.ones(num_features))
        self.register_buffer("nu", torch.zeros(num_features))
        self.register_buffer("iters", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, alpha_fwd={self.alpha_fwd},"
            f" alpha_bkw={self.alpha_bkw}, warmup_iters={self.warmup_iters},"
            f" group_scaling={self.group_scaling}, backward={self.backward_mode}"
        )

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.group_scaling:
            x = group_scaling(x, self.eps)
        flat, valid = flatten(x, self.num_features, padding_mask, "PowerNorm")
        if not self.training:
            out = flat * torch.rsqrt(self.running_psi2 + self.eps)
            if self.weight is not None and self.bias is not None:
                out = out * self.weight + self.bias
            return out.reshape(x.shape)
        with torch.no_grad():
            count = flat.shape[0] if valid is None else int(valid.sum())
            has_rows = count > 0
            self.iters += 1
            warm = has_rows and int(self.iters) <= self.warmup_iters
            batch_psi2 = square_sums(flat, valid) / max(count, 1)
            psi2 = batch_psi2 if warm else self.running_psi2.clone()
            if warm:
                self.running_psi2.add_((batch_psi2 - self.running_psi2) / int(self.iters))
            elif has_rows:
                self.running_psi2.mul_(self.alpha_fwd).add_((1 - self.alpha_fwd) * batch_psi2)
        out = power_norm(
            flat,
            self.weight,
            self.bias,
            valid,
            psi2,
            self.nu,
            batch_stats=warm,
            approximate=self.backward_mode == "approx",
            alpha_bkw=self.alpha_bkw,
            eps=self.eps,
            square_mean=batch_psi2 if has_rows else None,
        )
        return out.reshape(x.shape)
