"""The built-in ``jsonl`` logger: one JSON line per logged step in ``<run>/metrics.jsonl``.

It is always on. A line is ``{"step": step, "stage": stage, **metrics}``, with ``stage`` left
out for single-stage tasks. On resume, :meth:`JsonlLogger.truncate` drops the lines a stage
logged after its checkpoint, so a resumed run's log equals an uninterrupted run's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["JsonlLogger"]


class JsonlLogger:
    """Appends metrics to ``<run_dir>/metrics.jsonl``; figures and config are left to the run
    directory itself (``figures/``, ``config.json``)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "metrics.jsonl"

    def log_metrics(self, step: int, metrics: Mapping[str, float], stage: str = "") -> None:
        record: dict[str, Any] = {"step": step}
        if stage:
            record["stage"] = stage
        record.update({k: float(v) for k, v in metrics.items()})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate(self, after_step: int, stage: str = "") -> None:
        """Drop the lines of ``stage`` logged after ``after_step`` (used when resuming)."""
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("stage", "") != stage or record.get("step", 0) <= after_step:
                kept.append(line)
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def log_figure(self, name: str, path: Path) -> None:
        """Nothing to do: the figure already lives in ``figures/``."""

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Nothing to do: the runner writes ``config.json``."""

    def close(self) -> None:
        """Nothing to do: every line is written and closed at once."""
