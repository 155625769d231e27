"""Training throughput on the digits U-Net: our loop, a plain PyTorch loop and torchcfm.

All three train the same network (the task's default U-Net, class-conditional) with Adam on
the same batches of scikit-learn digits with the plain CFM loss (no label dropout, no gradient
clipping, no EMA, so that only the loops differ). Each trial runs ``steps`` steps; trials of
the three alternate, and the page reports the paired median speed ratios with 95% intervals.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from core_bench.common import fmt, paired_speed, table
from core_bench.env import ensure_anchors
from torch import Tensor, nn

from flow_core.gpu import DistInfo, resolve_device
from flow_core.objectives.cfm import ConditionalFlowMatching
from flow_core.registry import get_registry
from flow_core.runner import RunContext
from flow_core.training import TrainSettings, train
from flow_images.data import load_dataset
from flow_images.networks.unet import UNetVelocity

__all__ = ["throughput_section"]

BATCH = 128


def _model(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return UNetVelocity(in_channels=1, image_size=8, num_classes=10).to(device)


def _batches(images: Tensor, labels: Tensor) -> Callable[[torch.Generator], dict[str, Tensor]]:
    def draw(generator: torch.Generator) -> dict[str, Tensor]:
        index = torch.randint(0, images.shape[0], (BATCH,), generator=generator)
        return {"x1": images[index], "cond": labels[index]}

    return draw


def _ours(device: torch.device, steps: int, draw: Any) -> Callable[[], None]:
    model = _model(device)
    objective = ConditionalFlowMatching()
    # the shared training section: Adam at 1e-3, constant schedule, no clipping, no EMA
    settings = TrainSettings(
        steps=steps, lr=1e-3, grad_clip=0.0, log_every=steps, checkpoint_every=0
    )

    def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            ctx = RunContext(
                task_name="bench",
                config=None,
                out_dir=Path(folder),
                device=device,
                seed=0,
                resume=False,
                registry=get_registry(),
                dist=DistInfo(rank=0, local_rank=0, world_size=1),
                show_progress=False,
            )
            train(ctx, model, objective, draw, settings)

    return run


def _plain(
    device: torch.device, steps: int, draw: Any, pairs: Callable[[Tensor, Tensor], Any]
) -> Callable[[], None]:
    model = _model(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)

    def run() -> None:
        model.train()
        for _ in range(steps):
            batch = draw(generator)
            x1, cond = batch["x1"].to(device), batch["cond"].to(device)
            x0 = torch.randn_like(x1)
            t, x_t, target = pairs(x0, x1)
            loss = (model(x_t, t, cond) - target).square().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def _hand_pairs(x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    t = torch.rand(x1.shape[0], device=x1.device)
    tb = t.view(-1, 1, 1, 1)
    return t, (1 - tb) * x0 + tb * x1, x1 - x0


def throughput_section(device_name: str, threads: int, quick: bool) -> str:
    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    data = load_dataset("digits", "train")
    assert data.labels is not None
    draw = _batches(data.images, data.labels)
    steps, repeats = (5, 3) if quick else (100, 9)
    messages = ensure_anchors()
    ours = _ours(device, steps, draw)
    rows = []
    plain = _plain(device, steps, draw, _hand_pairs)
    ratio, low, high = paired_speed(ours, plain, repeats, warmup=1)
    rows.append(
        {
            "compared": "our training loop vs a plain hand-written loop",
            "speed ratio (ours / theirs, images/s)": fmt(ratio),
            "95% interval": f"{fmt(low)} – {fmt(high)}",
            "target": ">= 0.95",
            "verdict": "reproduced" if ratio >= 0.95 else "not reproduced",
        }
    )
    try:
        from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
    except ImportError:
        rows.append({"compared": "torchcfm", "verdict": "not installed; " + " ".join(messages)})
    else:
        matcher = ConditionalFlowMatcher(sigma=0.0)

        def torchcfm_pairs(x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            t, x_t, u_t = matcher.sample_location_and_conditional_flow(x0, x1)
            return t, x_t, u_t

        theirs = _plain(device, steps, draw, torchcfm_pairs)
        ratio, low, high = paired_speed(ours, theirs, repeats, warmup=1)
        rows.append(
            {
                "compared": "our loop vs torchcfm's ConditionalFlowMatcher in a plain loop",
                "speed ratio (ours / theirs, images/s)": fmt(ratio),
                "95% interval": f"{fmt(low)} – {fmt(high)}",
                "target": ">= 0.95",
                "verdict": "reproduced" if ratio >= 0.95 else "not reproduced",
            }
        )
    return "\n".join(
        [
            "## Training throughput",
            "",
            f"{steps} training steps of batch {BATCH} per trial, {repeats} paired trials, on "
            f"`{device}` with {threads} torch thread(s); the same class-conditional U-Net and "
            "digit batches for every loop. A ratio above 1 means our loop trains faster.",
            "",
            table(rows),
            "",
        ]
    )
