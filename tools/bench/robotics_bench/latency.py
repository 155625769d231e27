"""Latency per action chunk at batch 1, measured side by side in one quiet process.

The rollouts time every policy call too, but on a shared machine their medians for NFE > 1
absorb other processes' time slices. Here the trained networks are loaded from their
checkpoints and each head is called in rotation (order rotated every round), so that all heads
see the same machine state.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch

__all__ = ["measure"]

SIZES = {"obs_dim": 39, "action_dim": 4, "history": 2, "chunk": 4}


def _load(run: Path, average: bool, hidden: int) -> torch.nn.Module:
    from safetensors.torch import load_file

    from flow_robotics.networks.policy import PolicyAverageVelocity, PolicyVelocity

    cls = PolicyAverageVelocity if average else PolicyVelocity
    model = cls(**SIZES, hidden=hidden)
    latest = sorted((run / "checkpoints").glob("step-*"))[-1] / "weights.safetensors"
    weights = load_file(str(latest))
    prefix = "ema.module." if any(k.startswith("ema.module.") for k in weights) else "model."
    state = {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)}
    model.load_state_dict(state)
    return model.eval()


def measure(root: Path, hidden: int, rounds: int = 200) -> list[dict[str, Any]]:
    """Median and p95 ms per chunk for DM1 at NFE 1 and the flow-matching heads."""
    from flow_core.samplers import Euler, EulerMaruyama, FewStepAverageVelocity

    torch.set_num_threads(1)
    dm1 = _load(root / "dm1-seed0", True, hidden)
    cfm = _load(root / "cfm-seed0", False, hidden)
    heads = {
        "DM1 one step (NFE 1)": (dm1, FewStepAverageVelocity(steps=1)),
        "cfm + euler (NFE 10)": (cfm, Euler(steps=10)),
        "cfm + sde (NFE 10)": (cfm, EulerMaruyama(steps=10)),
        "cfm + sde (NFE 100)": (cfm, EulerMaruyama(steps=100)),
    }
    cond = torch.randn(1, SIZES["obs_dim"] * SIZES["history"])
    times: dict[str, list[float]] = {name: [] for name in heads}
    names = list(heads)
    with torch.no_grad():
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                model, sampler = heads[name]
                x0 = torch.randn(1, SIZES["chunk"] * SIZES["action_dim"])
                started = time.perf_counter()
                sampler.sample(model, x0, cond)
                times[name].append((time.perf_counter() - started) * 1000)
    base = statistics.median(times[names[0]])
    return [
        {
            "head": name,
            "median ms": statistics.median(values),
            "p95 ms": sorted(values)[int(0.95 * len(values))],
            "x DM1": statistics.median(values) / base,
        }
        for name, values in times.items()
    ]
