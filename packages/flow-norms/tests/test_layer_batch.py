"""LayerNorm, RMSNorm and sequence BatchNorm against torch's modules."""

import pytest
import torch
from torch import nn

from flow_core.errors import ConfigError
from flow_norms.norms import LayerNorm, NormInputError, RMSNorm, SequenceBatchNorm


def _pair(ours, theirs):
    torch.manual_seed(0)
    for p in ours.parameters():
        nn.init.normal_(p)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: LayerNorm(16), lambda: nn.LayerNorm(16)),
        (lambda: LayerNorm(16, eps=1e-6, bias=False), lambda: nn.LayerNorm(16, 1e-6, bias=False)),
        (lambda: RMSNorm(16), lambda: nn.RMSNorm(16)),
        (lambda: RMSNorm(16, eps=1e-6), lambda: nn.RMSNorm(16, eps=1e-6)),
    ],
)
def test_layer_and_rms_norm_equal_torch(ours, theirs):
    a, b = _pair(ours(), theirs())
    x = torch.randn(3, 7, 16, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    ya, yb = a(x, torch.zeros(3, 7, dtype=torch.bool)), b(x2)
    assert torch.equal(ya, yb)
    grad = torch.randn_like(ya)
    ya.backward(grad)
    yb.backward(grad)
    assert torch.equal(x.grad, x2.grad)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa.grad, pb.grad)


def test_batch_norm_without_mask_equals_batchnorm1d():
    a, b = _pair(SequenceBatchNorm(6), nn.BatchNorm1d(6))
    x = torch.randn(4, 5, 6)
    assert torch.equal(a(x), b(x.reshape(-1, 6)).reshape(x.shape))
    assert torch.equal(a.running_var, b.running_var)
    a.eval()
    b.eval()
    assert torch.equal(a(x), b(x.reshape(-1, 6)).reshape(x.shape))


def test_masked_batch_norm_uses_only_valid_positions():
    ours = SequenceBatchNorm(6)
    reference = nn.BatchNorm1d(6)
    x = torch.randn(3, 5, 6)
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[1, 2:] = True
    mask[2, 4] = True
    garbage = x.clone()
    garbage[mask] = 50.0
    y = ours(garbage, mask)
    expected = reference(x[~mask])
    torch.testing.assert_close(y[~mask], expected)
    torch.testing.assert_close(ours.running_mean, reference.running_mean)
    torch.testing.assert_close(ours.running_var, reference.running_var)
    assert torch.isfinite(y[mask]).all()


def test_bad_inputs_are_refused():
    with pytest.raises(NormInputError, match="channels last"):
        LayerNorm(8)(torch.randn(2, 8, 3))
    with pytest.raises(NormInputError, match="padding_mask"):
        SequenceBatchNorm(8)(torch.randn(2, 3, 8), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(NormInputError, match="at least 2"):
        SequenceBatchNorm(8)(torch.randn(1, 2, 8), torch.tensor([[False, True]]))
    with pytest.raises(ConfigError, match="eps"):
        RMSNorm(8, eps=-1.0)
    with pytest.raises(ConfigError, match="momentum"):
        SequenceBatchNorm(8, momentum=0.0)
