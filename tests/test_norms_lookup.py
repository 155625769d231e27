"""Another plugin's model looks up a norm by name: it works with flow-norms installed, and
fails before any work with a message naming the package when flow-norms is absent."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("flow_norms")

# A third-party plugin whose task builds a small model with ``norm=<name>`` through the
# registry, exactly as a plugin's model would, and reports which class it got.
NORM_USER = """
from dataclasses import dataclass

import torch
from torch import nn

import flow_core
from flow_core import Component

FLOW_PLUGIN_API = 1


@flow_core.hookimpl
def flow_register_tasks():
    return [Component("normuser.fit", "flow_normuser_plugin:Fit", "fit a model with any norm")]


@dataclass(frozen=True)
class Config:
    norm: str = "power"


class Fit:
    Config = Config

    def run(self, config, ctx):
        torch.manual_seed(0)
        norm = ctx.build("norm", config.norm, num_features=8, warmup_iters=2)
        model = nn.Sequential(nn.Linear(4, 8))
        x = torch.randn(3, 5, 4)
        mask = torch.zeros(3, 5, dtype=torch.bool)
        mask[2, 3:] = True
        params = [*model.parameters(), *norm.parameters()]
        opt = ctx.build("optimizer", "adamp", params=params, lr=1e-2)
        first = last = None
        for _ in range(20):
            y = norm(model(x), mask)
            loss = (y[~mask] - 1.0).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            first = float(loss) if first is None else first
            last = float(loss)
        return {"is_" + type(norm).__name__: 1.0, "first_loss": first, "last_loss": last}
"""


def test_a_plugin_model_uses_a_norm_and_optimizer_from_flow_norms(fake_dist, flow_cli, tmp_path):
    path = fake_dist("flow-normuser", "normuser", NORM_USER)
    for name, cls in (
        ("power", "PowerNorm"),
        ("layer", "LayerNorm"),
        ("batch", "SequenceBatchNorm"),
    ):
        out = tmp_path / name
        result = flow_cli(
            "run",
            "normuser.fit",
            "--set",
            f"norm={name}",
            "--out",
            str(out),
            "--no-progress",
            env={"PYTHONPATH": path, "FLOW_STRICT_PLUGINS": "1"},
        )
        assert result.returncode == 0, result.stderr
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics[f"is_{cls}"] == 1.0
        assert metrics["last_loss"] < metrics["first_loss"]


def test_without_flow_norms_the_error_names_the_package(fake_dist, flow_cli, tmp_path):
    path = fake_dist("flow-normuser", "normuser", NORM_USER)
    result = flow_cli(
        "run",
        "normuser.fit",
        "--set",
        "norm=power",
        "--out",
        str(tmp_path / "run"),
        env={"PYTHONPATH": path, "FLOW_DISABLE_PLUGINS": "norms"},
    )
    assert result.returncode == 2
    assert "norm 'power' is provided by flow-norms: pip install flow-norms" in result.stderr
    assert not (tmp_path / "run" / "status.json").exists()  # refused before any work
