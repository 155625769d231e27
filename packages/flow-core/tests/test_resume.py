"""Exact resume: a run killed mid-training and resumed ends where an uninterrupted run ends
(model, EMA, optimizer and learning-rate schedule state, RNG and data generators)."""

import json
import os
import signal
import subprocess
import sys
import time

ARGS = [
    "run",
    "core.toy2d",
    "--no-progress",
    "--seed",
    "11",
    "--set",
    "steps=1500",
    "--set",
    "hidden=64",
    "--set",
    "depth=2",
    "--set",
    "batch_size=128",
    "--set",
    "eval_samples=300",
    "--set",
    "checkpoint_every=50",
    "--set",
    "log_every=50",
    # optimizer and schedule state are part of what must resume exactly
    "--set",
    "optimizer=adamw",
    "--set",
    "weight_decay=0.01",
    "--set",
    "lr_schedule=cosine",
    "--set",
    "warmup_steps=100",
]


def flow(*args, **kwargs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "flow_core.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_killed_then_resumed_equals_uninterrupted(tmp_path):
    straight = flow(*ARGS, "--out", str(tmp_path / "straight"))
    killed_dir = tmp_path / "killed"
    victim = flow(*ARGS, "--out", str(killed_dir))
    deadline = time.monotonic() + 300
    while not (killed_dir / "checkpoints" / "latest").exists():
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    # the interrupted run is marked as such and has no final metrics
    assert json.loads((killed_dir / "status.json").read_text())["state"] == "running"
    assert not (killed_dir / "metrics.json").exists()
    resumed = flow(*ARGS, "--out", str(killed_dir), "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    _, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err

    final = json.loads((killed_dir / "metrics.json").read_text())
    expected = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert final == expected
    log = (killed_dir / "metrics.jsonl").read_text()
    assert log == (tmp_path / "straight" / "metrics.jsonl").read_text()
