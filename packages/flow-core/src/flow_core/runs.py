"""``flow runs``: the run directories under a runs root, with their state and key numbers.

A run is a directory ``<root>/<task>/<name>/`` holding ``config.json`` or ``status.json``.
Its status is the ``state`` of ``status.json``, except that a ``running`` run whose lock
owner is gone (the process was killed) shows as ``interrupted``; a garbled ``status.json``
shows as ``unknown``. A run that is not finished and has a checkpoint is ``resumable``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flow_core.errors import ConfigError, UsageError
from flow_core.rundir import CONFIG, STATUS, lock_owner, read_status, resumable

__all__ = ["KEY_METRICS", "format_runs", "list_runs"]

KEY_METRICS = 3
"""How many metrics (the first ones ``metrics.json`` lists) a run shows."""

_TIME_FORMAT = "%Y%m%d-%H%M%S"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _state(run_dir: Path) -> tuple[str, dict[str, Any]]:
    try:
        status = read_status(run_dir)
    except ConfigError:
        return "unknown", {}
    if status is None:
        return "unknown", {}
    state = str(status["state"])
    if state == "running" and lock_owner(run_dir) is None:
        state = "interrupted"
    return state, status


def _metrics(run_dir: Path) -> dict[str, float]:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(metrics, dict):
        return {}
    numbers = {
        str(k): float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    return dict(list(numbers.items())[:KEY_METRICS])


def _describe(task: str, run_dir: Path, now: datetime) -> dict[str, Any]:
    state, status = _state(run_dir)
    started = _parse_time(status.get("started"))
    ended = _parse_time(status.get("ended"))
    if started is not None and ended is None and state == "running":
        ended = now
    duration = (ended - started).total_seconds() if started and ended else None
    return {
        "task": task,
        "run": str(run_dir),
        "status": state,
        "resumable": resumable(run_dir),
        "started": started.isoformat() if started else None,
        "duration_s": duration,
        "metrics": _metrics(run_dir),
    }


def list_runs(root: Path, task: str | None = None) -> list[dict[str, Any]]:
    """Every run under ``root`` (of ``task`` only, when given), oldest first per task.

    Raises:
        UsageError: ``root`` is not a directory.
    """
    if not root.exists():
        return []
    if not root.is_dir():
        raise UsageError(f"--root {root} is a file; expected the directory that holds the runs")
    now = datetime.now(timezone.utc)
    task_dirs = [root / task] if task else sorted(p for p in root.iterdir() if p.is_dir())
    rows: list[dict[str, Any]] = []
    for task_dir in task_dirs:
        if not task_dir.is_dir():
            continue
        for run_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            if (run_dir / CONFIG).exists() or (run_dir / STATUS).exists():
                rows.append(_describe(task_dir.name, run_dir, now))
    return rows


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_runs(rows: list[dict[str, Any]]) -> list[str]:
    """The lines ``flow runs`` prints for ``rows`` (one per run, a header first)."""
    if not rows:
        return ["no runs"]
    table = [("task", "run", "status", "started", "duration", "metrics")]
    for row in rows:
        status = row["status"] + (" (resumable)" if row["resumable"] else "")
        started = (row["started"] or "-").replace("+00:00", "Z")
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in row["metrics"].items())
        name = Path(row["run"]).name
        table.append((row["task"], name, status, started, _duration(row["duration_s"]), metrics))
    widths = [max(len(line[i]) for line in table) for i in range(5)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:5], widths, strict=True))
        + f"  {line[5]}".rstrip()
        for line in table
    ]
