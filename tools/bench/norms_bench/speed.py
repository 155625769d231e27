"""Speed: optimizer.step() alone, whole training steps, and norm layers forward + backward."""

from __future__ import annotations

from collections.abc import Callable

import adamp
import torch
from torch import nn

from flow_norms.norms import LayerNorm, PowerNorm, RMSNorm, SequenceBatchNorm
from flow_norms.optim import SGDP, AdamP
from norms_bench.common import Section, cnn, table, time_interleaved, transformer

OPTIMIZERS: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
    "torch AdamW foreach": lambda p: torch.optim.AdamW(p, lr=1e-6, weight_decay=1e-2, foreach=True),
    "ours AdamP (default)": lambda p: AdamP(p, lr=1e-6, weight_decay=1e-2),
    "ours AdamP (reference_order)": lambda p: AdamP(
        p, lr=1e-6, weight_decay=1e-2, reference_order=True
    ),
    "adamp.AdamP 0.3.0": lambda p: adamp.AdamP(p, lr=1e-6, weight_decay=1e-2),
    "torch SGD momentum foreach": lambda p: torch.optim.SGD(
        p, lr=1e-6, momentum=0.9, weight_decay=1e-4, foreach=True
    ),
    "ours SGDP": lambda p: SGDP(p, lr=1e-6, momentum=0.9, weight_decay=1e-4),
    "adamp.SGDP 0.3.0": lambda p: adamp.SGDP(p, lr=1e-6, momentum=0.9, weight_decay=1e-4),
}


def _models(quick: bool) -> dict[str, tuple[nn.Module, Callable[[nn.Module], torch.Tensor]]]:
    def cnn_loss(model: nn.Module) -> torch.Tensor:
        x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        return nn.functional.cross_entropy(model(x), torch.arange(16) % 10)

    def tf_loss(model: nn.Module) -> torch.Tensor:
        tokens = torch.randint(0, 1000, (4, 32), generator=torch.Generator().manual_seed(0))
        return nn.functional.cross_entropy(model(tokens).reshape(-1, 1000), tokens.reshape(-1))

    models = {
        "small transformer (dim 128, 2 blocks)": (transformer(128, 2), tf_loss),
        "CNN with BatchNorm": (cnn(), cnn_loss),
    }
    if not quick:
        models["transformer (dim 256, 6 blocks)"] = (transformer(256, 6), tf_loss)
    return models


def _step_times(quick: bool) -> tuple[str, list[tuple[str, str, str, bool]]]:
    rows, verdicts = [], []
    for model_name, (model, loss_fn) in _models(quick).items():
        params = list(model.parameters())
        loss_fn(model).backward()  # real gradients (kept fixed): the projection test sees them
        size = sum(p.numel() for p in params)
        optimizers = {name: make(params) for name, make in OPTIMIZERS.items()}
        with torch.no_grad():
            times = time_interleaved(
                {name: opt.step for name, opt in optimizers.items()},
                repeats=3 if quick else 7,
                inner=3,
            )
        base = times["torch AdamW foreach"]
        for name, seconds in times.items():
            rows.append(
                [
                    model_name,
                    f"{size / 1e6:.2f}M / {len(params)}",
                    name,
                    seconds * 1e3,
                    seconds / base,
                ]
            )
        ours, ref = times["ours AdamP (default)"], times["adamp.AdamP 0.3.0"]
        verdicts.append(
            (
                f"AdamP step within 1.15x of torch AdamW foreach ({model_name})",
                "<= 1.15x",
                f"{ours / base:.2f}x",
                ours / base <= 1.15,
            )
        )
        verdicts.append(
            (
                f"AdamP step faster than adamp 0.3.0 ({model_name})",
                "< 1.0x of adamp",
                f"{ours / ref:.2f}x",
                ours < ref,
            )
        )
    markdown = (
        "`optimizer.step()` alone, on fixed real gradients (one backward pass of the model),"
        " lr 1e-6 so the weights barely move; median of interleaved rounds, ratio to torch"
        " AdamW foreach on the same model. AdamP has to do more than AdamW: its scale-invariance"
        " test needs three per-row reductions over every weight and its gradient (about three"
        " extra passes over memory on top of AdamW's eight), and a projected weight needs its"
        " update materialised and projected; on one memory-bound CPU thread that work alone"
        " costs roughly 1.3x, so the 1.15x target is out of reach here. The timings share a"
        " loaded 2-core machine with other jobs (load average on the page), so repeat them"
        " before relying on ratios closer than about 10 %.\n\n"
        + table(["model", "params / tensors", "optimizer", "ms per step", "/ AdamW"], rows)
    )
    return markdown, verdicts


def _train_step_times(quick: bool) -> str:
    rows = []
    for batch in (16,) if quick else (16, 128):
        model = cnn()
        params = list(model.parameters())
        x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        y = torch.arange(batch) % 10
        optimizers = {
            name: OPTIMIZERS[name](params)
            for name in ("torch AdamW foreach", "ours AdamP (default)", "adamp.AdamP 0.3.0")
        }

        def step(
            opt: torch.optim.Optimizer,
            model: nn.Module = model,
            x: torch.Tensor = x,
            y: torch.Tensor = y,
        ) -> Callable[[], None]:
            def run() -> None:
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                opt.step()

            return run

        times = time_interleaved(
            {name: step(opt) for name, opt in optimizers.items()},
            repeats=3 if quick else 5,
            inner=2,
        )
        base = times["torch AdamW foreach"]
        rows += [
            ["CNN with BatchNorm", batch, name, t * 1e3, t / base] for name, t in times.items()
        ]
    return (
        "A whole training step (zero_grad, forward, backward, step) of the CNN on 32x32"
        " inputs: the optimizer's share shrinks as the batch grows (the AdamP#9 complaint"
        " was a 2x slower step at batch 16).\n\n"
        + table(["model", "batch", "optimizer", "ms per training step", "/ AdamW"], rows)
    )


def _norm_times(quick: bool) -> str:
    shape = (16, 64, 256) if quick else (32, 128, 256)
    features = shape[-1]
    layers = {
        "LayerNorm (torch kernel)": LayerNorm(features),
        "RMSNorm (torch kernel)": RMSNorm(features),
        "SequenceBatchNorm": SequenceBatchNorm(features),
        "PowerNorm approx (after warm-up)": PowerNorm(features, warmup_iters=0),
        "PowerNorm exact (after warm-up)": PowerNorm(features, warmup_iters=0, backward="exact"),
        "PowerNorm approx, in warm-up": PowerNorm(features, warmup_iters=10**9),
        "PowerNorm + group scaling": PowerNorm(features, warmup_iters=0, group_scaling=True),
    }
    x = torch.randn(*shape, requires_grad=True)
    mask = torch.zeros(shape[:-1], dtype=torch.bool)
    mask[:, -shape[1] // 4 :] = True
    grad = torch.randn(*shape)

    def run(layer: nn.Module, masked: bool) -> Callable[[], None]:
        def call() -> None:
            layer(x, mask if masked else None).backward(grad)

        return call

    rows = []
    for masked in (False, True):
        times = time_interleaved(
            {name: run(layer, masked) for name, layer in layers.items()},
            repeats=3 if quick else 7,
            inner=3,
        )
        base = times["LayerNorm (torch kernel)"]
        rows += [[name, "yes" if masked else "no", t * 1e3, t / base] for name, t in times.items()]
    return (
        f"Forward + backward of one norm layer on a {shape} input in training mode (with a"
        " padding mask over the last quarter of every sequence, or none).\n\n"
        + table(["layer", "mask", "ms", "/ LayerNorm"], rows)
    )


def run(quick: bool) -> Section:
    steps, verdicts = _step_times(quick)
    markdown = (
        "### optimizer.step()\n\n"
        + steps
        + "\n\n### Whole training step\n\n"
        + _train_step_times(quick)
        + "\n\n### Norm layers\n\n"
        + _norm_times(quick)
    )
    return Section("Speed", markdown, verdicts)
