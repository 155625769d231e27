"""Running a flow-images task the way a user does (``flow run TASK --set ...``) for the
restoration and autoregressive sections, one run directory per label, in parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Job", "run_jobs"]


@dataclass(frozen=True)
class Job:
    """One ``flow run``: a label (its run directory), the task and its ``--set`` options."""

    label: str
    task: str
    options: dict[str, str]


def _run(
    job: Job, runs: Path, seed: int, threads: int, device: str, reuse: bool, render: bool
) -> dict[str, float]:
    out = runs / job.label
    status = out / "status.json"
    if reuse and status.exists() and json.loads(status.read_text())["state"] == "finished":
        print(f"  {job.label}: reusing {out}", flush=True)
        return {**json.loads((out / "metrics.json").read_text()), "reused": 1.0}
    if render:  # only the finished runs go on the page; nothing is trained
        print(f"  {job.label}: no finished run under {out}", flush=True)
        return {"failed": 1.0}
    command = [sys.executable, "-m", "flow_core.cli", "run", job.task, "--no-progress"]
    command += ["--out", str(out), "--seed", str(seed), "--device", device]
    for key, value in job.options.items():
        command += ["--set", f"{key}={value}"]
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MPLBACKEND": "Agg"}
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".log")
    started = time.perf_counter()
    with log.open("w") as handle:
        result = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    elapsed = time.perf_counter() - started
    print(f"  {job.label}: exit {result.returncode} after {elapsed:.0f} s ({log})", flush=True)
    if result.returncode != 0:
        return {"failed": 1.0}
    return {**json.loads((out / "metrics.json").read_text()), "wall_seconds": elapsed}


def run_jobs(
    jobs: list[Job],
    runs: Path,
    seed: int,
    threads: int,
    device: str,
    workers: int,
    reuse: bool,
    render: bool = False,
) -> dict[str, dict[str, float]]:
    """Run every job (``workers`` at a time); label → its metrics (``failed`` on error).
    ``reuse`` keeps finished runs; ``render`` also trains nothing new."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {
            job.label: pool.submit(_run, job, runs, seed, threads, device, reuse or render, render)
            for job in jobs
        }
        return {label: future.result() for label, future in futures.items()}
