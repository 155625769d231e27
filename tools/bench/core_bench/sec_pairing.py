"""OT-CFM's pairing off the critical path (issue 22's first claim).

Whole training steps through core's loop (`flow_core.training.train`: batch drawing,
objective, backward, clipping, Adam), on the couplings section's timing network
(`MLPVelocity` 4x512) and the same batches: CFM, OT-CFM pairing inside the step
(`prefetch=false`) and OT-CFM pairing the next batch in a background thread while the step
trains (`prefetch=true`, the default). Medians of alternating repeats of a short run each;
the ratio to CFM is what a user pays for exact OT. torch runs one intra-op thread (the
bench's setting), so the pairing thread has the second core of this machine.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from core_bench.common import Section, Settings, Target, fmt, interleaved_timing, table
from flow_core.models.mlp import MLPVelocity
from flow_core.objectives.cfm import ConditionalFlowMatching
from flow_core.testing import run_context
from flow_core.training import TrainSettings, train

__all__ = ["run"]

HIDDEN, DEPTH = 512, 4
TARGETS = {256: 1.3, 1024: 2.0}  # OT-CFM step / CFM step, with the pairing ahead


def _run(
    target: Target, batch: int, coupling: str, prefetch: bool, steps: int
) -> Callable[[], None]:
    torch.manual_seed(0)
    model = MLPVelocity(dim=target.dim, hidden=HIDDEN, depth=DEPTH)
    objective = ConditionalFlowMatching(coupling=coupling)
    settings = TrainSettings(
        steps=steps, batch_size=batch, prefetch=prefetch, log_every=0, checkpoint_every=0
    )

    def draw(generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"x1": target.sample(batch, generator)}

    def fit() -> None:
        with tempfile.TemporaryDirectory() as folder:
            train(run_context(Path(folder)), model, objective, draw, settings)

    return fit


def run(settings: Settings, targets: list[Target]) -> Section:
    section = Section("OT-CFM pairing ahead of the step")
    section.add(__doc__.split("\n\n", 1)[1].replace("\n", " ").strip())
    steps = 4 if settings.quick else 20
    repeats = 3 if settings.quick else 9
    rows = []
    verdicts: list[tuple[str, bool]] = []
    for target in targets:
        for batch, limit in TARGETS.items():
            fns = {
                "cfm": _run(target, batch, "independent", True, steps),
                "ot inline": _run(target, batch, "ot", False, steps),
                "ot ahead": _run(target, batch, "ot", True, steps),
            }
            med = interleaved_timing(fns, repeats=repeats, warmup=1)
            ahead = med["ot ahead"] / med["cfm"]
            rows.append(
                {
                    "target": target.name,
                    "batch": batch,
                    "CFM ms/step": fmt(1000 * med["cfm"] / steps),
                    "OT-CFM inline / CFM": fmt(med["ot inline"] / med["cfm"]),
                    "OT-CFM ahead / CFM": fmt(ahead),
                    "target (ahead)": f"<= {limit:g}",
                    "verdict": "met" if ahead <= limit else "missed",
                }
            )
            verdicts.append((f"{target.name} batch {batch}: {fmt(ahead)}x", ahead <= limit))
    section.add(table(rows))
    section.decide(
        "with the pairing ahead, an OT-CFM step costs <= 1.3x a CFM step at batch 256 and"
        " <= 2x at batch 1024",
        all(ok for _, ok in verdicts),
        "; ".join(text for text, _ in verdicts),
    )
    return section
