"""The heads × encodings sweep and the sequence-model comparison, through the nids tasks."""

from __future__ import annotations

import statistics
from pathlib import Path

import flow_nids.plugin
from flow_core.testing import isolated_registry, run_task
from flow_nids.flowtransformer.encodings import ENCODINGS
from flow_nids.flowtransformer.heads import HEADS

__all__ = ["Cell", "run_grid"]

Cell = dict[str, float]


def run_grid(
    out: Path,
    seeds: list[int],
    *,
    encodings: tuple[str, ...] = ENCODINGS,
    heads: tuple[str, ...] = HEADS,
    sequence: str = "basic",
    steps: int,
    data: str = "nf-synth",
) -> tuple[dict[tuple[str, str], Cell], dict[str, Cell]]:
    """Per (encoding, head) the seed means (and F1 spread) of the sweep metrics, and the
    tree baselines' seed means; one ``nids.sweep`` run per seed."""
    registry = isolated_registry(flow_nids.plugin)
    runs = []
    for seed in seeds:
        overrides = {
            "data": data,
            "encodings": ",".join(encodings),
            "heads": ",".join(heads),
            "sequence": sequence,
            "steps": steps,
            "checkpoint_every": steps,
        }
        runs.append(
            run_task(
                "nids.sweep",
                out / f"{sequence}-seed{seed}",
                overrides,
                seed=seed,
                registry=registry,
            )
        )
        print(f"sweep {sequence} seed {seed} done", flush=True)
    keys = (
        "f1",
        "balanced_accuracy",
        "precision",
        "recall",
        "parameters",
        "train_flows_per_s",
        "inference_flows_per_s",
    )
    cells = {}
    for encoding in encodings:
        for head in heads:
            prefix = f"{encoding}/{head}"
            cell = {k: statistics.fmean(r[f"{prefix}/{k}"] for r in runs) for k in keys}
            f1s = [r[f"{prefix}/f1"] for r in runs]
            cell["f1_min"], cell["f1_max"] = min(f1s), max(f1s)
            cells[(encoding, head)] = cell
    baselines = {}
    for name in ("random-forest", "hist-gradient-boosting"):
        baselines[name] = {
            k: statistics.fmean(r[f"{name}/{k}"] for r in runs)
            for k in (
                "f1",
                "balanced_accuracy",
                "precision",
                "recall",
                "train_flows_per_s",
                "inference_flows_per_s",
            )
        }
    return cells, baselines
