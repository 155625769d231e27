"""The task contract's cost and its eval round trip (issue 11's evidence).

1. The training loop with the shared training section — optimizer built from the registry,
   a learning-rate schedule, clipping, checkpointing switched off — against a plain
   hand-written PyTorch loop doing the same steps, with the same CFM loss function, on the
   same MLP and batches (core.toy2d's network and data): only the loops differ. Two
   settings: the bare loop (Adam, constant rate, no clipping) and the section's usual one
   (Adam, cosine schedule with warm-up, clipping at 1).
2. ``flow eval`` of a finished ``core.toy2d`` run reproduces its ``metrics.json`` with the same
   sampler and seed (every entry, compared exactly).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from core_bench.common import Section, Settings, fmt, paired_speed, table
from flow_core.datasets.toy2d import sample_toy2d
from flow_core.gpu import DistInfo
from flow_core.models.mlp import MLPVelocity
from flow_core.registry import get_registry
from flow_core.runner import RunContext
from flow_core.training import TrainSettings, lr_factor, train

__all__ = ["run"]

BATCH = 256


def _model() -> nn.Module:
    torch.manual_seed(0)
    return MLPVelocity(dim=2, hidden=256, depth=3)


def _draw(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"x1": sample_toy2d("eight-gaussians", BATCH, generator)}


def _cfm_loss(model: nn.Module, x1: torch.Tensor) -> torch.Tensor:
    """The plain CFM loss both loops use, so that only the loops differ."""
    x0 = torch.randn_like(x1)
    t = torch.rand(x1.shape[0])
    x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
    return (model(x_t, t) - (x1 - x0)).pow(2).mean()


def _objective(
    model: nn.Module, batch: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, float]]:
    return _cfm_loss(model, batch["x1"]), {}


def _ours(settings: TrainSettings) -> Callable[[], None]:
    model = _model()
    objective = _objective

    def run() -> None:
        with tempfile.TemporaryDirectory() as folder:
            ctx = RunContext(
                "bench",
                None,
                Path(folder),
                torch.device("cpu"),
                0,
                False,
                get_registry(),
                DistInfo(0, 0, 1),
                show_progress=False,
            )
            train(ctx, model, objective, _draw, settings)

    return run


def _plain(settings: TrainSettings) -> Callable[[], None]:
    """The same steps written by hand: Adam, the same schedule, clipping if asked."""
    model = _model()

    def run() -> None:
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(settings, step)
        )
        generator = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(settings.steps):
            loss = _cfm_loss(model, _draw(generator)["x1"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            schedule.step()

    return run


def _speed_rows(settings: Settings) -> list[dict[str, str]]:
    steps = 40 if settings.quick else 300
    repeats = 3 if settings.quick else 11
    cases = {
        "bare: Adam, constant rate, no clipping": TrainSettings(
            steps=steps, lr=1e-3, grad_clip=0.0, log_every=steps, checkpoint_every=0
        ),
        "usual: Adam, cosine with warm-up, clipping at 1": TrainSettings(
            steps=steps,
            lr=1e-3,
            lr_schedule="cosine",
            warmup_steps=steps // 10,
            grad_clip=1.0,
            log_every=steps,
            checkpoint_every=0,
        ),
    }
    rows = []
    for label, section in cases.items():
        ratio, low, high = paired_speed(_ours(section), _plain(section), repeats, warmup=1)
        rows.append(
            {
                "training section": label,
                "speed ratio (ours / hand-written)": fmt(ratio),
                "95% interval": f"{fmt(low)} – {fmt(high)}",
                "target": ">= 0.95",
                "verdict": "met" if ratio >= 0.95 else "missed",
                "_ratio": str(ratio),
            }
        )
    return rows


def _eval_round_trip(settings: Settings) -> tuple[bool, str]:
    steps = "150" if settings.quick else "2000"
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        flow = [sys.executable, "-m", "flow_core.cli"]
        trained_run = ["run", "core.toy2d", "--out", str(run_dir), "--set", f"steps={steps}"]
        subprocess.run([*flow, *trained_run, "--no-progress"], check=True, capture_output=True)
        subprocess.run([*flow, "eval", str(run_dir), "--no-progress"], check=True)
        trained = json.loads((run_dir / "metrics.json").read_text())
        evaluated_dir = next((run_dir / "evaluations").iterdir())
        evaluated = json.loads((evaluated_dir / "metrics.json").read_text())
    differ = sorted(k for k in trained if trained[k] != evaluated.get(k))
    same = not differ and set(trained) == set(evaluated)
    shown = ", ".join(f"{k}={fmt(v)}" for k, v in list(trained.items())[:4])
    why = (
        f"all {len(trained)} entries of metrics.json equal bit for bit ({shown}, ...)"
        if same
        else f"entries differ: {', '.join(differ)}"
    )
    return same, why


def run(settings: Settings) -> Section:
    section = Section("The task contract: training-loop cost and flow eval")
    section.add(
        "Our training loop (`flow_core.training.train` with the shared training section: the"
        " optimizer built from the registry, the schedule, clipping, logging off,"
        " checkpoints off) against a plain hand-written loop of the same steps, with the same"
        " CFM loss function, on the same MLP"
        f" (core.toy2d's, 256 wide, 3 deep) and the same batches of {BATCH}; paired trials"
        " alternating which goes first, median ratio and its 95% interval."
    )
    rows = _speed_rows(settings)
    section.add(table([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]))
    worst = min(float(r["_ratio"]) for r in rows)
    section.decide(
        "the training loop with the shared section is >= 0.95x a hand-written loop",
        worst >= 0.95 and not math.isnan(worst),
        f"the lower of the two median ratios is {fmt(worst)}",
    )
    same, why = _eval_round_trip(settings)
    section.add(
        "`flow run core.toy2d`, then `flow eval` of the finished run with the same sampler and"
        " seed (the run's own), comparing the two metrics.json files."
    )
    section.decide("flow eval reproduces a finished run's metrics.json exactly", same, why)
    return section
