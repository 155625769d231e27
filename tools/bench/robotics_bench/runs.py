"""Training and rolling out the policies the benchmark compares, through the task itself."""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Runner", "fmt", "machine", "table"]


class Runner:
    """Runs ``robotics.metaworld`` with shared settings and keeps every run's metrics."""

    def __init__(self, root: Path, base: Mapping[str, object], only: Sequence[str] = ()) -> None:
        import flow_robotics.plugin
        from flow_core.testing import isolated_registry

        self.root, self.base, self.only = root, dict(base), set(only)
        self.registry = isolated_registry(flow_robotics.plugin)

    def wanted(self, name: str) -> bool:
        """Whether this invocation runs ``name`` (all when no ``--runs`` filter is given)."""
        return not self.only or name in self.only

    def train(self, name: str, seed: int, **overrides: object) -> dict[str, float] | None:
        """Train and evaluate run ``name``; a finished run's metrics are reused, and a run
        outside the ``--runs`` filter that has not finished is left out (``None``)."""
        from flow_core.testing import run_task

        out = self.root / f"{name}-seed{seed}"
        if (out / "metrics.json").exists():
            return dict(json.loads((out / "metrics.json").read_text()))
        if not self.wanted(name):
            return None
        settings = {**self.base, **overrides}
        print(f"[robotics bench] {name} seed {seed}: {settings}", flush=True)
        return run_task("robotics.metaworld", out, settings, seed=seed, registry=self.registry)

    def reevaluate(
        self, name: str, tag: str, seed: int, **overrides: object
    ) -> dict[str, float] | None:
        """``flow eval`` of run ``name`` with ``overrides``, kept as ``<tag>-metrics.json``."""
        from flow_core.evaluation import evaluate_run

        run = self.root / f"{name}-seed{seed}"
        saved = run / f"{tag}-metrics.json"
        if saved.exists():
            return dict(json.loads(saved.read_text()))
        if not self.wanted(name) or not (run / "metrics.json").exists():
            return None
        sets = [(k, str(v)) for k, v in overrides.items()]
        _, metrics = evaluate_run(
            run, overrides=sets, registry=self.registry, device="cpu", show_progress=False
        )
        saved.write_text(json.dumps(metrics))
        return metrics


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    import os

    import mujoco
    import torch

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores (shared;"
        f" load average {load:.1f} at the start), torch {torch.__version__}, mujoco"
        f" {mujoco.__version__}, Python {platform.python_version()}, 1 thread"
    )
