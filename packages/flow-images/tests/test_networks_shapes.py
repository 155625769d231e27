"""The image networks' interface: shapes, times, labels, input checks and configuration errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError, FlowError
from flow_core.samplers.adaptive import Dopri5
from flow_core.samplers.average import FewStepAverageVelocity
from flow_core.samplers.fixed_step import Euler
from flow_images.networks import DiTAverageVelocity, DiTVelocity, UNetAverageVelocity, UNetVelocity

VELOCITY = (UNetVelocity, DiTVelocity)
AVERAGE = (UNetAverageVelocity, DiTAverageVelocity)
ALL = VELOCITY + AVERAGE
SIZES = ((1, 8), (3, 32))
SMALL = {
    UNetVelocity: {"base_channels": 8},
    UNetAverageVelocity: {"base_channels": 8},
    DiTVelocity: {"width": 32, "depth": 1, "heads": 2},
    DiTAverageVelocity: {"width": 32, "depth": 1, "heads": 2},
}


def randomize(model: nn.Module) -> nn.Module:
    """Give the zero-initialised layers random weights, so that the output depends on inputs."""
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.1)
    return model


def call(model: nn.Module, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
    """``model(x, t, cond)``, or ``model(x, t / 2, t, cond)`` for an average velocity."""
    if isinstance(model, AVERAGE):
        return model(x, t / 2, t, cond)
    return model(x, t, cond)


def small(cls: type[nn.Module], channels: int = 1, size: int = 8, classes: int = 0) -> nn.Module:
    torch.manual_seed(0)
    model = cls(in_channels=channels, image_size=size, num_classes=classes, **SMALL[cls])
    return randomize(model)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(("channels", "size"), SIZES)
@pytest.mark.parametrize("classes", [0, 10])
def test_default_networks_keep_the_image_shape(cls, channels, size, classes):
    torch.manual_seed(0)
    model = randomize(cls(in_channels=channels, image_size=size, num_classes=classes))
    x = torch.randn(2, channels, size, size)
    cond = torch.tensor([0, classes]) if classes else None
    out = call(model, x, torch.rand(2), cond)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert model.null_label == model.num_classes == classes


@pytest.mark.parametrize(
    ("cls", "kind", "model_kind"),
    [
        (UNetVelocity, "unet", "velocity"),
        (UNetAverageVelocity, "unet-average", "average-velocity"),
        (DiTVelocity, "dit", "velocity"),
        (DiTAverageVelocity, "dit-average", "average-velocity"),
    ],
)
def test_kind_names_the_registered_flow(cls, kind, model_kind):
    model = cls()
    assert model.kind == kind
    assert cls.model_kind == model_kind


@pytest.mark.parametrize("cls", ALL)
def test_networks_start_as_the_zero_field(cls):
    torch.manual_seed(0)
    model = cls(num_classes=3)
    out = call(model, torch.randn(4, 1, 8, 8), torch.rand(4), torch.tensor([0, 1, 2, 3]))
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("cls", ALL)
def test_null_label_is_cond_none_and_labels_matter(cls):
    model = small(cls, classes=4)
    x, t = torch.randn(3, 1, 8, 8), torch.rand(3)
    unconditional = call(model, x, t, None)
    torch.testing.assert_close(call(model, x, t, torch.full((3,), 4)), unconditional)
    assert not torch.allclose(call(model, x, t, torch.tensor([0, 1, 2])), unconditional)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(
    ("cond", "message"),
    [
        (torch.tensor([0, 5]), r"labels must lie in \[0, 4\]"),
        (torch.tensor([-1, 0]), r"labels must lie in \[0, 4\]"),
        (torch.tensor([0.0, 1.0]), "integer labels"),
        (torch.tensor([0, 1, 2]), r"shape \(2,\)"),
    ],
)
def test_bad_labels_raise(cls, cond, message):
    model = small(cls, classes=4)
    with pytest.raises(FlowError, match=message):
        call(model, torch.randn(2, 1, 8, 8), torch.rand(2), cond)


@pytest.mark.parametrize("cls", ALL)
def test_labels_for_an_unconditional_network_raise(cls):
    model = small(cls)
    with pytest.raises(FlowError, match="unconditional"):
        call(model, torch.randn(2, 1, 8, 8), torch.rand(2), torch.tensor([0, 1]))


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 1, 16, 16), (2, 64), (1, 8, 8)])
def test_wrong_image_shapes_raise(cls, shape):
    model = small(cls)
    with pytest.raises(FlowError, match=r"x must have shape \(B, 1, 8, 8\)"):
        call(model, torch.randn(shape), torch.rand(shape[0]))


@pytest.mark.parametrize("cls", ALL)
def test_times_as_scalar_vector_or_broadcast_shape_agree(cls):
    model = small(cls, classes=2)
    x, cond = torch.randn(3, 1, 8, 8), torch.tensor([0, 1, 2])
    vector = call(model, x, torch.full((3,), 0.7), cond)
    torch.testing.assert_close(call(model, x, torch.tensor(0.7), cond), vector)
    torch.testing.assert_close(call(model, x, torch.full((3, 1, 1, 1), 0.7), cond), vector)
    torch.testing.assert_close(call(model, x, torch.full((1,), 0.7), cond), vector)
    per_sample = call(model, x, torch.tensor([0.1, 0.5, 0.9]), cond)
    for i, t in enumerate((0.1, 0.5, 0.9)):
        alone = call(model, x[i : i + 1], torch.tensor(t), cond[i : i + 1])
        torch.testing.assert_close(alone, per_sample[i : i + 1])


@pytest.mark.parametrize("cls", ALL)
def test_time_of_the_wrong_length_raises(cls):
    model = small(cls)
    with pytest.raises(FlowError, match=r"must be a scalar or have shape \(3,\)"):
        call(model, torch.randn(3, 1, 8, 8), torch.rand(2))


@pytest.mark.parametrize("cls", AVERAGE)
def test_average_velocity_on_the_diagonal_is_a_velocity_field(cls):
    model = small(cls, classes=3).eval()
    x0, cond = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    t = torch.rand(4)
    diagonal = model(x0, t, t, cond)
    torch.testing.assert_close(model(x0, t, t.clone(), cond), diagonal)
    assert not torch.allclose(model(x0, t / 2, t, cond), diagonal)

    def velocity(x: Tensor, s: Tensor, c: Tensor | None = None) -> Tensor:
        return model(x, s, s, c)

    with torch.no_grad():
        euler = Euler(steps=4).sample(velocity, x0, cond)
        jump = FewStepAverageVelocity(steps=2).sample(model, x0, cond)
    assert euler.shape == jump.shape == x0.shape
    assert torch.isfinite(euler).all() and torch.isfinite(jump).all()


@pytest.mark.parametrize("cls", VELOCITY)
def test_flow_core_samplers_drive_velocity_networks(cls):
    model = small(cls, classes=2).eval()
    x0, cond = torch.randn(3, 1, 8, 8), torch.tensor([0, 1, 2])
    with torch.no_grad():
        euler = Euler(steps=32).sample(model, x0, cond)
        adaptive = Dopri5(rtol=1e-3, atol=1e-3).sample(model, x0, cond)
    assert euler.shape == adaptive.shape == x0.shape
    torch.testing.assert_close(euler, adaptive, atol=0.05, rtol=0.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: UNetVelocity(image_size=6, channel_mults=(1, 2, 2)), "divisible by 2"),
        (lambda: UNetAverageVelocity(image_size=10, channel_mults=(1, 1, 2)), "divisible by 4"),
        (lambda: UNetVelocity(channel_mults=()), "channel_mults"),
        (lambda: UNetVelocity(base_channels=0), "base_channels"),
        (lambda: UNetVelocity(dropout=1.0), "dropout"),
        (lambda: UNetVelocity(num_classes=-1), "num_classes"),
        (lambda: UNetVelocity(in_channels=0), "in_channels"),
        (lambda: DiTVelocity(image_size=8, patch_size=3), "divisible by patch_size"),
        (lambda: DiTAverageVelocity(width=30, heads=4), "divisible by heads"),
        (lambda: DiTVelocity(depth=0), "depth"),
        (lambda: DiTVelocity(mlp_ratio=0.0), "mlp_ratio"),
        (lambda: DiTVelocity(max_frequency=0.5), "max_frequency"),
    ],
)
def test_bad_configurations_raise_config_errors(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize("cls", ALL)
def test_state_dict_round_trip(cls):
    model = small(cls, classes=2)
    copy = cls(num_classes=2, **SMALL[cls])
    copy.load_state_dict(model.state_dict())
    x, t = torch.randn(2, 1, 8, 8), torch.rand(2)
    torch.testing.assert_close(call(copy, x, t), call(model, x, t))
    assert not any("frequencies" in key for key in model.state_dict())
