"""FlowTurbo's VelocityRefiner and FlowTurboModel."""

from __future__ import annotations

import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.models.mlp import MLPVelocity
from flow_images.flowturbo.model import FlowTurboModel, VelocityRefiner


def _inputs(batch=5, channels=1, size=8):
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size)
    return x, torch.rand(batch), torch.randn_like(x)


def test_untrained_refiner_returns_previous_velocity():
    x, t, v = _inputs()
    model = FlowTurboModel(MLPVelocity(dim=64), VelocityRefiner())
    assert torch.equal(model.refiner(x, t, v), torch.zeros_like(x))
    assert torch.equal(model.refine(x, t, v), v)


def test_trained_refiner_depends_on_all_inputs():
    x, t, v = _inputs(channels=3, size=16)
    refiner = VelocityRefiner(in_channels=3, image_size=16, num_classes=4, hidden=16)
    torch.nn.init.normal_(refiner.head[-1].weight, std=0.1)
    labels = torch.tensor([0, 1, 2, 3, 4])
    base = refiner(x, t, v, labels)
    assert base.shape == x.shape
    assert not torch.allclose(base, refiner(x + 0.1, t, v, labels))
    assert not torch.allclose(base, refiner(x, t * 0.5, v, labels))
    assert not torch.allclose(base, refiner(x, t, v + 0.1, labels))
    assert not torch.allclose(base, refiner(x, t, v, (labels + 1) % 4))
    null = torch.full_like(labels, refiner.null_label)
    assert torch.equal(refiner(x, t, v, None), refiner(x, t, v, null))


def test_width_sets_the_size():
    sizes = [sum(p.numel() for p in VelocityRefiner(hidden=h).parameters()) for h in (16, 32, 64)]
    assert sizes[0] < sizes[1] < sizes[2]
    # The default is about 5% of a 0.8M-parameter image U-Net.
    assert 0.03 * 800_000 < sizes[1] < 0.07 * 800_000


def test_model_forward_is_the_predictor():
    x, t, _ = _inputs()
    predictor = MLPVelocity(dim=64, hidden=32, depth=2)
    model = FlowTurboModel(predictor, VelocityRefiner())
    assert torch.equal(model(x, t), predictor(x, t))


def test_bad_inputs_raise():
    x, t, v = _inputs()
    refiner = VelocityRefiner()
    with pytest.raises(FlowError, match="unconditional"):
        refiner(x, t, v, torch.zeros(5, dtype=torch.long))
    with pytest.raises(FlowError, match="x must have shape"):
        refiner(x[:, :, :4], t, v[:, :, :4])
    with pytest.raises(FlowError, match="v_prev"):
        refiner(x, t, v[:4])
    with pytest.raises(FlowError, match="t must have shape"):
        refiner(x, t[:4], v)
    conditional = VelocityRefiner(num_classes=3)
    with pytest.raises(FlowError, match=r"labels must lie in \[0, 3\]"):
        conditional(x, t, v, torch.tensor([0, 1, 2, 3, 4]))
    with pytest.raises(FlowError, match="integer labels"):
        conditional(x, t, v, torch.zeros(5))
    with pytest.raises(FlowError, match="VelocityRefiner"):
        FlowTurboModel(MLPVelocity(dim=64), MLPVelocity(dim=64))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "value"),
    [("hidden", 0), ("blocks", 0), ("in_channels", 0), ("num_classes", -1), ("time_embedding", 3)],
)
def test_bad_config_raises(key, value):
    with pytest.raises(ConfigError, match=key):
        VelocityRefiner(**{key: value})
