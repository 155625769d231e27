"""The image networks under flow-core's objectives: forward-mode AD, backward steps, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from flow_core.objectives.cfm import ConditionalFlowMatching
from flow_core.objectives.meanflow import MeanFlow, mean_flow_target
from flow_core.objectives.splitmeanflow import SplitMeanFlow
from flow_images.networks import DiTAverageVelocity, DiTVelocity, UNetAverageVelocity, UNetVelocity

SMALL = {
    UNetVelocity: {"base_channels": 8},
    UNetAverageVelocity: {"base_channels": 8},
    DiTVelocity: {"width": 32, "depth": 2, "heads": 2},
    DiTAverageVelocity: {"width": 32, "depth": 2, "heads": 2},
}
AVERAGE = (UNetAverageVelocity, DiTAverageVelocity)


def build(cls: type[nn.Module], classes: int = 0, **options: object) -> nn.Module:
    torch.manual_seed(0)
    return cls(num_classes=classes, **{**SMALL[cls], **options})


def batch(classes: int = 0, n: int = 8) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    data = {"x1": torch.rand(n, 1, 8, 8, generator=generator) * 2 - 1}
    if classes:
        data["cond"] = torch.randint(0, classes, (n,), generator=generator)
    return data


@pytest.mark.parametrize("cls", AVERAGE)
def test_forward_mode_derivative_matches_finite_differences(cls):
    """MeanFlow's tangent d/dr u = v·∂ₓu + ∂ᵣu through the whole network, checked in float64."""
    model = build(cls, classes=3, dropout=0.0).double()
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.1)
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(3, 1, 8, 8, generator=generator, dtype=torch.float64)
    v = torch.randn(3, 1, 8, 8, generator=generator, dtype=torch.float64)
    r = torch.tensor([0.1, 0.4, 0.7], dtype=torch.float64)
    t = torch.tensor([0.5, 0.9, 0.7], dtype=torch.float64)
    cond = torch.tensor([0, 2, 3])
    u, target = mean_flow_target(model, x, r, t, v, cond)
    h = 1e-5
    with torch.no_grad():
        ahead = model(x + h * v, r + h, t, cond)
        behind = model(x - h * v, r - h, t, cond)
        torch.testing.assert_close(u, model(x, r, t, cond))
    du_dr = (ahead - behind) / (2 * h)
    expected = v + (t - r).reshape(-1, 1, 1, 1) * du_dr
    assert du_dr.abs().max() > 1e-3
    torch.testing.assert_close(target, expected, rtol=1e-6, atol=1e-6)


OBJECTIVES = [
    (UNetVelocity, lambda: ConditionalFlowMatching(cond_dropout=0.2)),
    (DiTVelocity, lambda: ConditionalFlowMatching(cond_dropout=0.2)),
    (UNetAverageVelocity, lambda: MeanFlow(cond_dropout=0.2)),
    (DiTAverageVelocity, lambda: MeanFlow(cond_dropout=0.2)),
    (UNetAverageVelocity, lambda: MeanFlow(cond_dropout=0.2, cfg_omega=1.0, cfg_kappa=0.5)),
    (DiTAverageVelocity, lambda: MeanFlow(cond_dropout=0.2, cfg_omega=1.0, cfg_kappa=0.5)),
    (UNetAverageVelocity, lambda: SplitMeanFlow(cond_dropout=0.2)),
    (DiTAverageVelocity, lambda: SplitMeanFlow(cond_dropout=0.2)),
]


@pytest.mark.parametrize(("cls", "objective"), OBJECTIVES)
def test_objectives_run_a_backward_step(cls, objective):
    model = build(cls, classes=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # the second step runs with the zero-initialised layers moved
        loss, metrics = objective()(model, batch(classes=4))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert metrics["loss"] == pytest.approx(loss.item())


@pytest.mark.parametrize("cls", [UNetVelocity, DiTVelocity])
def test_flow_matching_overfits_a_tiny_fixed_batch(cls):
    model = build(cls, classes=4)
    data = batch(classes=4, n=16)
    data["x0"] = torch.randn(data["x1"].shape, generator=torch.Generator().manual_seed(3))
    objective = ConditionalFlowMatching()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(4)
    losses = []
    for _ in range(150):
        loss, _ = objective(model, data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first, (first, last)


@pytest.mark.parametrize("cls", list(SMALL))
def test_gradients_reach_every_parameter_once_zero_layers_move(cls):
    """adaLN-zero and the zero output convs block gradients at step 0; a few steps open them."""
    model = build(cls, classes=4)
    data = batch(classes=4)
    data["cond"][:2] = 4  # the null label's embedding row is trained too

    def loss_of(model: nn.Module) -> torch.Tensor:
        x, t = data["x1"], torch.linspace(0.1, 0.9, 8)
        out = model(x, t / 2, t, data["cond"]) if cls in AVERAGE else model(x, t, data["cond"])
        return (out - x).square().mean()

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_of(model).backward()
    blocked = [name for name, p in model.named_parameters() if not p.grad.any()]
    assert blocked  # zero initialisation: some layers get no gradient at first
    for _ in range(4):
        optimizer.zero_grad()
        loss_of(model).backward()
        optimizer.step()
    optimizer.zero_grad()
    loss_of(model).backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not silent
