import math

import pytest
import torch

from flow_core.errors import FlowError
from flow_core.metrics import mmd_rbf, sliced_wasserstein


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _normal_quantiles(n, mean=0.0, std=1.0):
    """A 1-D sample of N(mean, std²) at evenly spaced quantiles: near-exact moments."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return (mean + std * torch.special.ndtri(u))[:, None]


def test_sliced_wasserstein_zero_against_itself():
    a = torch.randn(500, 3, generator=_gen(0))
    assert sliced_wasserstein(a, a, generator=_gen(1)) == 0.0
    shuffled = a[torch.randperm(500, generator=_gen(2))]
    assert sliced_wasserstein(a, shuffled, generator=_gen(1)) < 1e-6


def test_sliced_wasserstein_one_dimensional_gaussians_analytic():
    # In 1-D the only directions are ±1, so SW_2 = W_2 = sqrt((μa − μb)² + (σa − σb)²).
    a = _normal_quantiles(20_000, mean=0.0, std=1.0)
    b = _normal_quantiles(20_000, mean=1.5, std=2.0)
    value = sliced_wasserstein(a, b, n_projections=4, generator=_gen(0))
    assert value == pytest.approx(math.sqrt(1.5**2 + 1.0**2), rel=2e-3)
    # p = 1: the mean absolute difference of the matched quantiles.
    value_1 = sliced_wasserstein(a, b, n_projections=4, generator=_gen(0), p=1)
    assert value_1 == pytest.approx((b - a).abs().mean().item(), rel=1e-6)


def test_sliced_wasserstein_shifted_gaussian_in_2d_analytic():
    # θᵀN(0, I) vs θᵀN(m, I): W_2² = (θᵀm)², and E_θ (θᵀm)² = |m|²/d, so SW_2 = |m|/√d.
    a = torch.randn(5000, 2, generator=_gen(0), dtype=torch.float64)
    b = torch.randn(5000, 2, generator=_gen(1), dtype=torch.float64) + torch.tensor([2.0, 0.0])
    value = sliced_wasserstein(a, b, n_projections=2000, generator=_gen(2))
    assert value == pytest.approx(2.0 / math.sqrt(2.0), rel=0.04)


def test_sliced_wasserstein_grows_with_shift():
    a = torch.randn(2000, 2, generator=_gen(0))
    b = torch.randn(2000, 2, generator=_gen(1))
    values = [
        sliced_wasserstein(a, b + s, n_projections=256, generator=_gen(2)) for s in (0, 0.5, 1, 2)
    ]
    assert values[0] < 0.1
    assert values == sorted(values)


def test_sliced_wasserstein_is_reproducible_with_a_generator():
    a, b = torch.randn(300, 4, generator=_gen(0)), torch.randn(300, 4, generator=_gen(1))
    assert sliced_wasserstein(a, b, generator=_gen(5)) == sliced_wasserstein(
        a, b, generator=_gen(5)
    )


def test_sliced_wasserstein_bad_inputs():
    a = torch.zeros(10, 2)
    with pytest.raises(FlowError, match="equal sizes"):
        sliced_wasserstein(a, torch.zeros(11, 2))
    with pytest.raises(FlowError, match=r"\(n, d\)"):
        sliced_wasserstein(a, torch.zeros(10, 3))
    with pytest.raises(FlowError, match=r"\(n, d\)"):
        sliced_wasserstein(torch.zeros(10), torch.zeros(10))
    with pytest.raises(FlowError, match="n_projections"):
        sliced_wasserstein(a, a, n_projections=0)


def test_sliced_wasserstein_agrees_with_pot():
    ot = pytest.importorskip("ot")
    a = torch.randn(1000, 3, generator=_gen(0), dtype=torch.float64)
    b = 1.5 * torch.randn(1000, 3, generator=_gen(1), dtype=torch.float64) + 1.0
    ours = sliced_wasserstein(a, b, n_projections=300, generator=_gen(2))
    # The same directions as ours: standard normal (d, n_projections) from the generator,
    # normalised per column.
    directions = torch.randn(3, 300, generator=_gen(2), dtype=torch.float32).double()
    directions = (directions / directions.norm(dim=0, keepdim=True)).numpy()
    theirs = ot.sliced_wasserstein_distance(a.numpy(), b.numpy(), projections=directions)
    assert ours == pytest.approx(float(theirs), rel=1e-6)
    # Independent random directions: both are Monte-Carlo estimates of one quantity.
    ours = sliced_wasserstein(a, b, n_projections=2000, generator=_gen(4))
    theirs = ot.sliced_wasserstein_distance(a.numpy(), b.numpy(), n_projections=2000, seed=5)
    assert ours == pytest.approx(float(theirs), rel=0.05)


def _mmd_reference(a, b, bandwidths):
    """Unbiased MMD² by explicit double sums over pairs."""

    def k(x, y):
        return sum(math.exp(-float(((x - y) ** 2).sum()) / (2 * h * h)) for h in bandwidths)

    n, m = len(a), len(b)
    aa = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    bb = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    ab = sum(k(a[i], b[j]) for i in range(n) for j in range(m)) / (n * m)
    return aa + bb - 2 * ab


def test_mmd_matches_explicit_unbiased_estimator():
    a = torch.randn(12, 2, generator=_gen(0), dtype=torch.float64)
    b = torch.randn(9, 2, generator=_gen(1), dtype=torch.float64) + 0.7
    bandwidths = (0.3, 1.0)
    assert mmd_rbf(a, b, bandwidths) == pytest.approx(_mmd_reference(a, b, bandwidths), rel=1e-9)


def test_mmd_near_zero_for_same_distribution_and_grows_with_shift():
    a = torch.randn(1000, 2, generator=_gen(0))
    assert abs(mmd_rbf(a, a)) < 0.02
    b = torch.randn(1000, 2, generator=_gen(1))
    values = [mmd_rbf(a, b + s) for s in (0.0, 0.25, 0.5, 1.0)]
    assert abs(values[0]) < 0.01
    assert values == sorted(values)
    assert values[-1] > 0.3


def test_mmd_bad_inputs():
    with pytest.raises(FlowError, match="at least 2"):
        mmd_rbf(torch.zeros(1, 2), torch.zeros(5, 2))
    with pytest.raises(FlowError, match="bandwidths"):
        mmd_rbf(torch.zeros(3, 2), torch.zeros(3, 2), bandwidths=(1.0, 0.0))
    with pytest.raises(FlowError, match="bandwidths"):
        mmd_rbf(torch.zeros(3, 2), torch.zeros(3, 2), bandwidths=())
