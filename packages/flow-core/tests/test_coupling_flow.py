import pytest
import torch

from flow_core.errors import ConfigError, FlowError
from flow_core.models import AffineCouplingFlow
from flow_core.protocols import InvertibleFlow


def perturbed(flow, scale=0.1, seed=0):
    """The flow starts as the identity; randomise it so the tests see a real transform."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return flow


def test_starts_as_the_identity():
    flow = AffineCouplingFlow()
    x = torch.randn(8, 2)
    z, logdet = flow(x)
    torch.testing.assert_close(z, x)
    torch.testing.assert_close(logdet, torch.zeros(8))
    assert isinstance(flow, InvertibleFlow)


@pytest.mark.parametrize("dim", [2, 5])
def test_inverse_round_trips(dim):
    torch.manual_seed(0)
    flow = perturbed(AffineCouplingFlow(dim=dim, hidden=32, layers=6))
    x = torch.randn(64, dim)
    z, _ = flow(x)
    assert (z - x).abs().max().item() > 0.1  # a real transform, not the identity
    assert (flow.inverse(z) - x).abs().max().item() < 1e-5
    assert (flow(flow.inverse(x))[0] - x).abs().max().item() < 1e-5


def test_logdet_equals_the_jacobian_log_determinant():
    torch.manual_seed(0)
    flow = perturbed(AffineCouplingFlow(dim=3, hidden=16, layers=4)).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    _, logdet = flow(x)
    for i in range(6):
        jacobian = torch.autograd.functional.jacobian(lambda row: flow(row[None])[0][0], x[i])
        expected = torch.linalg.slogdet(jacobian).logabsdet
        assert logdet[i].item() == pytest.approx(expected.item(), abs=1e-10)


def test_non_flat_samples_and_conditions():
    torch.manual_seed(0)
    flow = perturbed(AffineCouplingFlow(dim=4, hidden=16, layers=2, num_classes=2))
    x = torch.randn(5, 2, 2)
    z, logdet = flow(x, torch.tensor([0, 1, 0, 1, 2]))
    assert z.shape == x.shape and logdet.shape == (5,)
    zero, one = torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.long)
    assert not torch.allclose(flow(x, zero)[0], flow(x, one)[0])
    torch.testing.assert_close(flow(x)[0], flow(x, torch.full((5,), 2))[0])
    torch.testing.assert_close(flow.inverse(flow(x, one)[0], one), x, atol=1e-5, rtol=0)
    assert flow.null_label == 2


def test_errors():
    for kwargs, match in [
        ({"dim": 1}, "dim"),
        ({"layers": 1}, "layers"),
        ({"hidden": 0}, "hidden"),
    ]:
        with pytest.raises(ConfigError, match=match):
            AffineCouplingFlow(**kwargs)
    flow = AffineCouplingFlow()
    with pytest.raises(FlowError, match="elements per sample"):
        flow(torch.randn(3, 4))
    with pytest.raises(FlowError, match="unconditional"):
        flow(torch.randn(3, 2), torch.zeros(3, dtype=torch.long))
    conditional = AffineCouplingFlow(num_classes=2)
    with pytest.raises(FlowError, match="integer labels"):
        conditional(torch.randn(3, 2), torch.zeros(3))
    with pytest.raises(FlowError, match="labels must lie"):
        conditional(torch.randn(3, 2), torch.tensor([0, 1, 5]))
