"""``torchrun --nproc_per_node=2`` on CPU (gloo) trains core.toy2d data-parallel."""

import json
import os
import subprocess
import sys


def test_torchrun_two_ranks_identical_parameters_single_run_dir(tmp_path):
    runs = tmp_path / "runs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_")}
    env["OMP_NUM_THREADS"] = "1"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "flow_core.cli",
        "run",
        "core.toy2d",
        "--no-progress",
        "--set",
        "steps=40",
        "--set",
        "hidden=32",
        "--set",
        "eval_samples=200",
        "--set",
        "checkpoint_every=20",
        "--set",
        "log_every=10",
    ]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = list((runs / "core.toy2d").iterdir())
    assert len(run_dirs) == 1, run_dirs
    run = run_dirs[0]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    # the training loop measures max |theta_rank - mean over ranks| at the end of training
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    divergence = [
        row["ddp/replica_divergence"] for row in logged if "ddp/replica_divergence" in row
    ]
    assert divergence == [0.0]
    assert [row["step"] for row in logged if "loss" in row] == [10, 20, 30, 40]
