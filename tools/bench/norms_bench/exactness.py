"""Exactness: our AdamP/SGDP against ``adamp`` 0.3.0 after 100 steps on identical gradients,
and our LayerNorm/RMSNorm against torch's."""

from __future__ import annotations

from collections.abc import Callable

import adamp
import torch
from torch import nn

from flow_norms.norms import LayerNorm, RMSNorm
from flow_norms.optim import SGDP, AdamP
from flow_norms.optim._projection import scale_invariant_views
from norms_bench.common import Section, cnn, table, transformer

STEPS = 100


def _batch(model_name: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    if model_name == "cnn":
        return torch.randn(16, 3, 16, 16, generator=generator), torch.randint(0, 10, (16,))
    return torch.randint(0, 1000, (8, 32), generator=generator), torch.randint(0, 1000, (8, 32))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = model(x)
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))


def _parity(
    model_name: str,
    make_ours: Callable[..., torch.optim.Optimizer],
    make_ref: Callable[..., torch.optim.Optimizer],
) -> tuple[float, bool, int]:
    build = (lambda: cnn((3, 16, 32))) if model_name == "cnn" else (lambda: transformer(64, 2))
    ours_model, ref_model = build(), build()
    ours, ref = make_ours(ours_model.parameters()), make_ref(ref_model.parameters())
    generator = torch.Generator().manual_seed(0)
    projected = 0
    for _ in range(STEPS):
        x, y = _batch(model_name, generator)
        ref.zero_grad()
        _loss(ref_model, x, y).backward()
        params = list(ref_model.parameters())
        views, _ = scale_invariant_views(params, [p.grad for p in params], 0.1, 1e-8)
        projected += sum(1 for v in views if v)
        for a, b in zip(ours_model.parameters(), params, strict=True):
            a.grad = b.grad.clone()
        ours.step()
        ref.step()
    pairs = list(zip(ours_model.parameters(), ref_model.parameters(), strict=True))
    worst = max(float((a - b).detach().abs().max()) for a, b in pairs)
    identical = all(torch.equal(a, b) for a, b in pairs)
    return worst, identical, projected


def run() -> Section:
    adam_kw = {"lr": 1e-3, "weight_decay": 1e-2}
    sgd_kw = {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}
    cases = [
        (
            "AdamP (reference_order=True)",
            lambda p: AdamP(p, reference_order=True, **adam_kw),
            lambda p: adamp.AdamP(p, **adam_kw),
        ),
        (
            "AdamP (default, fused)",
            lambda p: AdamP(p, **adam_kw),
            lambda p: adamp.AdamP(p, **adam_kw),
        ),
        (
            "AdamP nesterov (reference_order=True)",
            lambda p: AdamP(p, reference_order=True, nesterov=True, **adam_kw),
            lambda p: adamp.AdamP(p, nesterov=True, **adam_kw),
        ),
        (
            "AdamP nesterov (default, fused)",
            lambda p: AdamP(p, nesterov=True, **adam_kw),
            lambda p: adamp.AdamP(p, nesterov=True, **adam_kw),
        ),
        (
            "SGDP (reference_order=True)",
            lambda p: SGDP(p, reference_order=True, **sgd_kw),
            lambda p: adamp.SGDP(p, **sgd_kw),
        ),
        ("SGDP (default, fused)", lambda p: SGDP(p, **sgd_kw), lambda p: adamp.SGDP(p, **sgd_kw)),
        (
            "SGDP nesterov (reference_order=True)",
            lambda p: SGDP(p, reference_order=True, nesterov=True, **sgd_kw),
            lambda p: adamp.SGDP(p, nesterov=True, **sgd_kw),
        ),
        (
            "SGDP nesterov (default, fused)",
            lambda p: SGDP(p, nesterov=True, **sgd_kw),
            lambda p: adamp.SGDP(p, nesterov=True, **sgd_kw),
        ),
    ]
    rows, verdicts = [], []
    for model_name in ("cnn", "transformer"):
        for label, make_ours, make_ref in cases:
            worst, identical, projected = _parity(model_name, make_ours, make_ref)
            rows.append([model_name, label, worst, "yes" if identical else "no", projected])
            verdicts.append(
                (
                    f"{label} equals adamp 0.3.0 after {STEPS} steps ({model_name})",
                    "max abs diff <= 1e-6",
                    f"{worst:.3g}" + (" (bit-identical)" if identical else ""),
                    worst <= 1e-6,
                )
            )
    norm_rows = []
    torch.manual_seed(0)
    x = torch.randn(16, 64, 256, requires_grad=True)
    for label, ours, theirs in (
        ("LayerNorm", LayerNorm(256), nn.LayerNorm(256)),
        ("RMSNorm", RMSNorm(256), nn.RMSNorm(256)),
    ):
        with torch.no_grad():
            for p in ours.parameters():
                p.normal_()
        theirs.load_state_dict(ours.state_dict())
        x1, x2 = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
        y1, y2 = ours(x1), theirs(x2)
        grad = torch.randn_like(y1)
        y1.backward(grad)
        y2.backward(grad)
        diff_y = float((y1 - y2).detach().abs().max())
        diff_g = float((x1.grad - x2.grad).abs().max())
        norm_rows.append([label, diff_y, diff_g])
        verdicts.append(
            (
                f"our {label} equals torch.nn.{label}",
                "max abs diff = 0",
                f"{max(diff_y, diff_g):.3g}",
                diff_y == 0 and diff_g == 0,
            )
        )
    markdown = (
        f"Two copies of a model get *identical* gradients (computed on the reference copy) for"
        f" {STEPS} steps; one is stepped by ours, one by `adamp` 0.3.0. Models: **cnn**, a"
        " small CNN (two stages of 16 and 32 channels) in which every convolution is followed"
        " by BatchNorm (so the projection fires), and **transformer**, a 2-block pre-LN"
        " transformer (dim 64). AdamP: lr 1e-3,"
        ' weight decay 1e-2; SGDP: lr 0.05, momentum 0.9, weight decay 1e-4. "projections"'
        " counts (weight, step) pairs that the scale-invariance test sent to the projection.\n\n"
        + table(["model", "optimizer", "max abs diff", "bit-identical", "projections"], rows)
        + "\n\nOur LayerNorm and RMSNorm against torch's modules on a (16, 64, 256) input"
        " (output and input gradient):\n\n"
        + table(["norm", "max abs diff, output", "max abs diff, gradient"], norm_rows)
    )
    return Section("Exactness against adamp 0.3.0 and torch", markdown, verdicts)
