import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.models import MLPAverageVelocity, MLPVelocity
from flow_core.protocols import AverageVelocityField, VelocityField


def test_unconditional_shapes_and_protocol():
    model = MLPVelocity()
    assert isinstance(model, VelocityField)
    x, t = torch.randn(7, 2), torch.rand(7)
    assert model(x, t).shape == (7, 2)
    assert model(x, t, None).shape == (7, 2)
    assert model(torch.randn(0, 2), torch.rand(0)).shape == (0, 2)


def test_non_flat_samples_keep_their_shape():
    model = MLPVelocity(dim=12, hidden=32, depth=2)
    x = torch.randn(5, 3, 2, 2)
    assert model(x, torch.rand(5)).shape == x.shape


def test_output_depends_on_time():
    torch.manual_seed(0)
    model = MLPVelocity(hidden=32)
    x = torch.randn(4, 2)
    assert not torch.allclose(model(x, torch.zeros(4)), model(x, torch.full((4,), 0.5)))


def test_time_features():
    model = MLPVelocity(time_embedding=8)
    phi = model.time_features(torch.tensor([0.0, 0.3]))
    assert phi.shape == (2, 8)
    torch.testing.assert_close(phi[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    torch.testing.assert_close(phi[:, :4] ** 2 + phi[:, 4:] ** 2, torch.ones(2, 4))


def test_class_conditional_shapes_and_null_label():
    torch.manual_seed(0)
    model = MLPVelocity(num_classes=3, hidden=32)
    assert model.null_label == 3
    x, t = torch.randn(6, 2), torch.rand(6)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    assert model(x, t, labels).shape == (6, 2)
    null = torch.full((6,), model.null_label)
    torch.testing.assert_close(model(x, t), model(x, t, null))
    zeros, ones = torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.long)
    assert not torch.allclose(model(x, t, zeros), model(x, t, ones))


def test_gradients_reach_every_parameter():
    model = MLPVelocity(num_classes=2, hidden=16, depth=2)
    model(torch.randn(4, 2), torch.rand(4), torch.tensor([0, 1, 2, 0])).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_state_dict_has_no_fixed_buffers():
    assert not any("frequencies" in k for k in MLPVelocity().state_dict())


@pytest.mark.parametrize(
    "kwargs",
    [{"dim": 0}, {"hidden": 0}, {"depth": 0}, {"num_classes": -1}, {"time_embedding": 7}],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError, match="mlp"):
        MLPVelocity(**kwargs)


def test_bad_inputs_raise():
    plain, cond = MLPVelocity(hidden=8), MLPVelocity(hidden=8, num_classes=2)
    x, t = torch.randn(3, 2), torch.rand(3)
    with pytest.raises(FlowError, match="elements per sample"):
        plain(torch.randn(3, 5), t)
    with pytest.raises(FlowError, match=r"t must have shape \(3,\)"):
        plain(x, torch.rand(3, 1))
    with pytest.raises(FlowError, match="unconditional"):
        plain(x, t, torch.tensor([0, 1, 0]))
    with pytest.raises(FlowError, match="labels must lie"):
        cond(x, t, torch.tensor([0, 3, 1]))
    with pytest.raises(FlowError, match="integer labels"):
        cond(x, t, torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(FlowError, match="integer labels"):
        cond(x, t, torch.tensor([0, 1]))


def test_velocity_state_dict_keys_are_unchanged():
    keys = set(MLPVelocity(num_classes=2, depth=2).state_dict())
    assert keys == {
        "label_embedding.weight",
        "net.0.weight",
        "net.0.bias",
        "net.2.weight",
        "net.2.bias",
        "net.4.weight",
        "net.4.bias",
    }


def test_average_velocity_shapes_and_protocol():
    torch.manual_seed(0)
    model = MLPAverageVelocity(hidden=32)
    assert isinstance(model, AverageVelocityField)
    x, r = torch.randn(7, 2), torch.rand(7) * 0.5
    t = r + 0.3
    assert model(x, r, t).shape == (7, 2)
    # Depends on both times, through r and t − r.
    assert not torch.allclose(model(x, r, t), model(x, r, t + 0.2))
    assert not torch.allclose(model(x, r, t), model(x, r + 0.1, t))
    image = MLPAverageVelocity(dim=12, hidden=16)
    assert image(torch.randn(3, 3, 2, 2), torch.zeros(3), torch.ones(3)).shape == (3, 3, 2, 2)


def test_average_velocity_labels_and_errors():
    torch.manual_seed(0)
    model = MLPAverageVelocity(num_classes=2, hidden=16)
    x, r, t = torch.randn(4, 2), torch.zeros(4), torch.ones(4)
    torch.testing.assert_close(model(x, r, t), model(x, r, t, torch.full((4,), 2)))
    with pytest.raises(FlowError, match="same shape"):
        model(x, r, torch.ones(3))
    with pytest.raises(FlowError, match=r"r must have shape \(4,\)"):
        model(x, torch.zeros(4, 1), torch.ones(4, 1))
    with pytest.raises(FlowError, match="labels must lie"):
        model(x, r, t, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ConfigError, match="mlp-average: max_frequency"):
        MLPAverageVelocity(max_frequency=0.5)


def test_average_velocity_supports_forward_mode_jvp():
    torch.manual_seed(0)
    model = MLPAverageVelocity(num_classes=3, hidden=16).double()
    x, v = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    r = torch.rand(5, dtype=torch.float64) * 0.5
    t = r + 0.4
    labels = torch.tensor([0, 1, 2, 3, 0])
    ones, zeros = torch.ones_like(r), torch.zeros_like(t)

    def field(a, b, c):
        return model(a, b, c, labels)

    out, tangent = torch.func.jvp(field, (x, r, t), (v, ones, zeros))
    torch.testing.assert_close(out, model(x, r, t, labels))
    h = 1e-6
    central = (field(x + h * v, r + h, t) - field(x - h * v, r - h, t)) / (2 * h)
    torch.testing.assert_close(tangent, central, atol=1e-6, rtol=1e-6)
