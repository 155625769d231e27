import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_core.models import MLPAverageVelocity
from flow_core.objectives import MeanFlow
from flow_core.objectives.meanflow import adaptive_weight, mean_flow_target, sample_interval
from flow_core.objectives.timesteps import TimeDensity

M, Q = torch.tensor([3.0, -2.0], dtype=torch.float64), 0.5


class ExactAverage(nn.Module):
    """The exact u for the deterministic coupling x1 = m + q·x0 (straight trajectories).

    x_r = r·m + (1 − r + r·q)·x0, so u(x, r, t) = m + (q − 1)(x − r·m)/(1 − r + r·q); both
    ∂u/∂x and ∂u/∂r are non-zero but cancel along trajectories (du/dr = 0).
    """

    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = scale

    def forward(self, x, r, t, cond=None):
        r = r[:, None]
        return self.scale * (M + (Q - 1) * (x - r * M) / (1 - r + r * Q))


def pairs(n, seed=0):
    x0 = torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return {"x0": x0, "x1": M + Q * x0}


def test_jvp_target_matches_a_finite_difference():
    torch.manual_seed(0)
    model = MLPAverageVelocity(hidden=32).double()
    x_r, v = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    r = torch.rand(16, dtype=torch.float64) * 0.6
    t = r + torch.rand(16, dtype=torch.float64) * 0.4
    u, target = mean_flow_target(model, x_r, r, t, v)
    torch.testing.assert_close(u, model(x_r, r, t))
    assert u.requires_grad and not target.requires_grad
    h = 1e-6
    derivative = (model(x_r + h * v, r + h, t) - model(x_r, r, t)) / h
    expected = v + (t - r)[:, None] * derivative
    assert (target - expected).abs().max().item() < 1e-3
    # The check has teeth: dropping the ∂u/∂r part of the tangent is caught.
    wrong = v + (t - r)[:, None] * (model(x_r + h * v, r, t) - model(x_r, r, t)) / h
    assert (target - wrong).abs().max().item() > 1e-2


def test_loss_vanishes_at_the_exact_average_velocity():
    torch.manual_seed(0)
    loss, metrics = MeanFlow(adaptive_power=0.0)(ExactAverage(), pairs(512))
    assert metrics["mse"] < 1e-20 and loss.item() < 1e-20
    _, off = MeanFlow(adaptive_power=0.0)(ExactAverage(scale=1.1), pairs(512))
    assert off["mse"] > 1e-2


def test_time_pairs_and_flow_share():
    density = TimeDensity.parse("logit-normal:mean=0.4")
    torch.manual_seed(0)
    r, t = sample_interval(density, 0.75, 20_000, device=torch.device("cpu"), dtype=torch.float32)
    assert bool((r <= t).all())
    assert (r == t).float().mean().item() == pytest.approx(0.75, abs=0.02)
    assert t.median().item() > 0.5  # logit-normal(+0.4) on t puts mass towards the data


def test_flow_ratio_one_is_flow_matching():
    seen = []

    class Recorder(nn.Module):
        def forward(self, x, r, t, cond=None):
            seen.append((r, t))
            return torch.zeros_like(x)

    torch.manual_seed(0)
    x0, x1 = torch.randn(64, 2), torch.randn(64, 2)
    loss, metrics = MeanFlow(flow_ratio=1.0, adaptive_power=0.0)(Recorder(), {"x0": x0, "x1": x1})
    r, t = seen[0]
    assert torch.equal(r, t)
    torch.testing.assert_close(loss, (x1 - x0).square().sum(dim=1).mean())
    assert metrics["mse"] == pytest.approx((x1 - x0).square().mean().item(), rel=1e-5)


def test_adaptive_weight():
    squared = torch.tensor([0.0, 1.0, 3.0], requires_grad=True)
    w = adaptive_weight(squared, 1.0, 0.01)
    torch.testing.assert_close(w, 1 / (squared.detach() + 0.01))
    assert not w.requires_grad
    torch.testing.assert_close(adaptive_weight(squared, 0.5, 1.0), (squared.detach() + 1) ** -0.5)
    torch.testing.assert_close(adaptive_weight(squared, 0.0, 0.01), torch.ones(3))


def test_guidance_folded_into_the_target():
    calls = []

    class LabelField(nn.Module):
        null_label = 3

        def forward(self, x, r, t, cond=None):
            calls.append(cond)
            return (cond.to(x.dtype) + 1)[:, None] * torch.ones_like(x)

    model = LabelField()
    x, r, v = torch.zeros(4, 2), torch.rand(4), torch.randn(4, 2)
    labels = torch.tensor([0, 1, 2, 3])
    plain = MeanFlow()
    torch.testing.assert_close(plain.guided_velocity(model, x, r, v, labels), v)
    assert calls == []  # ω = 1, κ = 0 folds nothing and costs no evaluations
    folded = MeanFlow(cfg_omega=1.0, cfg_kappa=0.5).guided_velocity(model, x, r, v, labels)
    u_null = 4.0
    expected = v + 0.5 * ((labels.float() + 1)[:, None] - u_null)
    expected[3] = v[3]  # samples without a condition keep the plain velocity
    torch.testing.assert_close(folded, expected)
    omega = MeanFlow(cfg_omega=2.0, cfg_kappa=0.0).guided_velocity(model, x, r, v, labels)
    torch.testing.assert_close(omega[:3], 2 * v[:3] - u_null)


def test_meanflow_trains_a_one_step_generator():
    torch.manual_seed(0)
    m, q = torch.tensor([3.0, -2.0]), 0.5
    model = MLPAverageVelocity(hidden=64, depth=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    objective = MeanFlow()
    mse = []
    for _ in range(300):
        loss, metrics = objective(model, {"x1": m + q * torch.randn(256, 2)})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mse.append(metrics["mse"])
    assert sum(mse[-50:]) / 50 < 0.35 * sum(mse[:10]) / 10
    x0 = torch.randn(2000, 2)
    with torch.no_grad():
        x1 = x0 + model(x0, torch.zeros(2000), torch.ones(2000))  # one network evaluation
    # Untrained, u ≈ 0 leaves the mean at 0, ‖m‖ ≈ 3.6 away.
    assert (x1.mean(dim=0) - m).norm().item() < 0.25 * m.norm().item()


def test_config_errors():
    assert MeanFlow.model_kind == "average-velocity"
    for kwargs, match in [
        ({"flow_ratio": 1.5}, "flow_ratio"),
        ({"adaptive_power": -1.0}, "adaptive_power"),
        ({"eps": 0.0}, "eps"),
        ({"cfg_kappa": 2.0}, "cfg_kappa"),
        ({"time_density": "nope"}, "time density"),
    ]:
        with pytest.raises(ConfigError, match=match):
            MeanFlow(**kwargs)


DDP_SCRIPT = """
import sys, torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from flow_core.models import MLPAverageVelocity
from flow_core.objectives import MeanFlow
dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=0, world_size=1)
torch.manual_seed(0)
model = DistributedDataParallel(MLPAverageVelocity(hidden=16, num_classes=2))
batch = {"x1": torch.randn(16, 2), "cond": torch.randint(0, 2, (16,))}
loss, _ = MeanFlow(cond_dropout=0.2, cfg_kappa=0.5)(model, batch)
loss.backward()
assert all(p.grad is not None for p in model.parameters())
dist.destroy_process_group()
print("ok")
"""


def test_meanflow_runs_inside_distributed_data_parallel(tmp_path):
    # torch.func.jvp fails inside DDP's forward; the dual-tensor JVP must not.
    result = subprocess.run(
        [sys.executable, "-c", DDP_SCRIPT, str(tmp_path / "rendezvous")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
