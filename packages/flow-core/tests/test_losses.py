import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.objectives.losses import LOSSES, per_sample_loss, pseudo_huber, squared_error


def test_squared_error_is_per_sample_mse():
    torch.manual_seed(0)
    delta = torch.randn(5, 3, 4)
    per = squared_error(delta)
    assert per.shape == (5,)
    torch.testing.assert_close(per, delta.square().mean(dim=(1, 2)))
    torch.testing.assert_close(per.mean(), delta.square().mean())


def test_pseudo_huber_formula_and_default_constant():
    torch.manual_seed(0)
    delta = torch.randn(6, 2, 5, dtype=torch.float64)
    d = 10
    c = 0.00054 * d
    norm2 = delta.reshape(6, -1).square().sum(dim=1)
    torch.testing.assert_close(pseudo_huber(delta), ((norm2 + c**2).sqrt() - c) / d)
    torch.testing.assert_close(pseudo_huber(delta, c=2.0), ((norm2 + 4.0).sqrt() - 2.0) / d)


def test_pseudo_huber_regimes():
    # Quadratic for ‖Δ‖ ≪ c, linear for ‖Δ‖ ≫ c.
    small = torch.tensor([[1e-3, 0.0]], dtype=torch.float64)
    large = torch.tensor([[300.0, 400.0]], dtype=torch.float64)
    c = 1.0
    assert pseudo_huber(small, c=c).item() == pytest.approx(1e-6 / (2 * c * 2), rel=1e-4)
    assert pseudo_huber(large, c=c).item() == pytest.approx(500.0 / 2, rel=1e-2)
    # Zero at zero, and growing with ‖Δ‖.
    assert pseudo_huber(torch.zeros(3, 2)).abs().max().item() == 0.0
    grows = pseudo_huber(torch.tensor([[0.1, 0.0], [0.2, 0.0], [0.4, 0.0]]))
    assert bool((grows[1:] > grows[:-1]).all())


def test_per_sample_loss_dispatch_and_errors():
    delta = torch.randn(4, 2)
    torch.testing.assert_close(per_sample_loss("squared", delta), squared_error(delta))
    torch.testing.assert_close(per_sample_loss("pseudo-huber", delta), pseudo_huber(delta))
    assert LOSSES == ("squared", "pseudo-huber")
    with pytest.raises(ConfigError, match="unknown loss 'l1'"):
        per_sample_loss("l1", delta)
    with pytest.raises(ConfigError, match="c must be > 0"):
        pseudo_huber(delta, c=0.0)
    with pytest.raises(FlowError, match="batch dimension"):
        squared_error(torch.tensor(1.0))
