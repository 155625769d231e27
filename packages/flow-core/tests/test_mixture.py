import math

import pytest
import torch

from flow_core.datasets.mixture import GaussianMixture, MixtureVelocity
from flow_core.errors import ConfigError, FlowError
from flow_core.samplers import Euler


def _uneven_ring():
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    return GaussianMixture.ring(k=4, radius=2.0, std=0.3, weights=weights)


def test_ring_and_random_constructors():
    ring = GaussianMixture.ring()
    assert ring.means.shape == (8, 2) and ring.dim == 2 and ring.n_components == 8
    torch.testing.assert_close(ring.means.norm(dim=1), torch.full((8,), 2.0))
    torch.testing.assert_close(ring.weights, torch.full((8,), 1 / 8))
    big = GaussianMixture.random(dim=16, k=5, seed=3)
    assert big.means.shape == (5, 16)
    torch.testing.assert_close(big.means, GaussianMixture.random(dim=16, k=5, seed=3).means)
    assert not torch.equal(big.means, GaussianMixture.random(dim=16, k=5, seed=4).means)
    # well separated: the closest pair of means is many standard deviations apart
    gaps = torch.cdist(big.means, big.means) + 1e9 * torch.eye(5)
    assert gaps.min() > 6 * big.stds.max()


@pytest.mark.parametrize(
    "means, stds, weights",
    [
        (torch.zeros(3), 1.0, None),
        (torch.zeros(3, 2), torch.tensor([1.0, 0.0, 1.0]), None),
        (torch.zeros(3, 2), torch.ones(2), None),
        (torch.zeros(3, 2), 1.0, torch.tensor([1.0, -1.0, 1.0])),
        (torch.zeros(3, 2), 1.0, torch.zeros(3)),
    ],
)
def test_bad_parameters_raise_config_error(means, stds, weights):
    with pytest.raises(ConfigError, match="GaussianMixture"):
        GaussianMixture(means, stds, weights)


def test_log_prob_integrates_to_one_on_a_grid():
    mixture = _uneven_ring()
    h = 0.02
    axis = torch.arange(-4.5, 4.5, h, dtype=torch.float64) + h / 2
    grid = torch.cartesian_prod(axis, axis)
    total = mixture.to(dtype=torch.float64).log_prob(grid).exp().sum() * h * h
    assert total.item() == pytest.approx(1.0, abs=1e-3)


def test_samples_match_weights_mean_and_covariance():
    torch.manual_seed(0)
    mixture = _uneven_ring()
    n = 20000
    x, components = mixture.sample_with_components(n, torch.Generator().manual_seed(1))
    freq = torch.bincount(components, minlength=4).double() / n
    sd = (mixture.weights * (1 - mixture.weights) / n).sqrt().double()
    assert ((freq - mixture.weights.double()).abs() < 4 * sd).all()
    # the components are far apart, so the most probable component is the true one
    assert (mixture.assign(x) == components).float().mean() > 0.99
    torch.testing.assert_close(x.mean(0), mixture.mean(), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), mixture.covariance(), atol=0.08, rtol=0)
    again = mixture.sample(n, torch.Generator().manual_seed(1))
    assert torch.equal(again, x)


def test_zero_weight_component_is_never_sampled():
    mixture = GaussianMixture.ring(k=3, weights=torch.tensor([1.0, 0.0, 1.0]))
    _, components = mixture.sample_with_components(5000, torch.Generator().manual_seed(0))
    assert (components != 1).all()


def test_at_time_has_the_linear_path_moments():
    mixture = GaussianMixture.ring(k=4, std=1.0, weights=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.equal(mixture.at_time(1.0).means, mixture.means)
    torch.testing.assert_close(mixture.at_time(1.0).stds, mixture.stds)
    start = mixture.at_time(0.0)
    torch.testing.assert_close(start.stds, torch.ones(4))
    assert (start.means == 0).all()
    # x_t = (1 - t) x0 + t x1 sampled directly has the moments of at_time(t)
    gen = torch.Generator().manual_seed(0)
    t, n = 0.4, 20000
    x_t = (1 - t) * torch.randn(n, 2, generator=gen) + t * mixture.sample(n, gen)
    marginal = mixture.at_time(t)
    torch.testing.assert_close(x_t.mean(0), marginal.mean(), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(x_t.T), marginal.covariance(), atol=0.04, rtol=0)
    with pytest.raises(FlowError, match=r"\[0, 1\]"):
        mixture.at_time(1.5)


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_velocity_equals_a_monte_carlo_conditional_expectation(t):
    """v(x, t) = E[x1 − x0 | x_t = x], estimated by self-normalised importance sampling.

    The pairs that reach x are (x0, x1) with (1 − t)·x0 + t·x1 = x. For t <= 1/2 draw x1 ~ p and
    set x0 = (x − t·x1)/(1 − t), weighted by N(x0; 0, I); otherwise draw x0 ~ N(0, I) and set
    x1 = (x − (1 − t)·x0)/t, weighted by p(x1) (the better-conditioned proposal in each case).
    """
    mixture = _uneven_ring().to(dtype=torch.float64)
    field = MixtureVelocity(mixture)
    gen = torch.Generator().manual_seed(0)
    n = 400_000
    draws = mixture.sample(n, gen) if t <= 0.5 else torch.randn(n, 2, generator=gen).double()
    points = torch.tensor([[0.3, -0.2], [1.0, 0.8], [-0.6, 0.1]], dtype=torch.float64)
    for x in points:
        if t <= 0.5:
            x1, x0 = draws, (x - t * draws) / (1 - t)
            log_weights = -0.5 * x0.pow(2).sum(1)
        else:
            x0, x1 = draws, (x - (1 - t) * draws) / t
            log_weights = mixture.log_prob(x1)
        weights = torch.softmax(log_weights, dim=0)
        estimate = (weights[:, None] * (x1 - x0)).sum(0)
        # delta-method standard error of a self-normalised importance-sampling estimate
        stderr = (weights[:, None] ** 2 * (x1 - x0 - estimate) ** 2).sum(0).sqrt()
        v = field(x[None], torch.tensor([t], dtype=torch.float64))[0]
        assert ((v - estimate).abs() < 4 * stderr + 1e-3).all(), (v, estimate, stderr)
        assert (stderr < 0.1).all()  # the check has teeth


def test_velocity_and_score_satisfy_continuity_and_the_score_identity():
    """∂_t log p_t + ∇·v + v·∇log p_t = 0, and s = ∇log p_t = (t·v − x)/(1 − t)."""
    mixture = _uneven_ring().to(dtype=torch.float64)
    field = MixtureVelocity(mixture)
    x = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 1.5
    for t in (0.1, 0.45, 0.9):
        tt = torch.full((6,), t, dtype=torch.float64)
        eps = 1e-5
        dlogp_dt = (mixture.at_time(t + eps).log_prob(x) - mixture.at_time(t - eps).log_prob(x)) / (
            2 * eps
        )
        xr = x.clone().requires_grad_(True)
        grad_logp = torch.autograd.grad(mixture.at_time(t).log_prob(xr).sum(), xr)[0]
        v = field(xr, tt)
        divergence = sum(
            torch.autograd.grad(v[:, i].sum(), xr, retain_graph=True)[0][:, i] for i in range(2)
        )
        residual = dlogp_dt + divergence + (v * grad_logp).sum(1)
        assert residual.abs().max() < 1e-6
        torch.testing.assert_close(field.score(x, tt), grad_logp)
        torch.testing.assert_close(field.score(x, tt), (t * v.detach() - x) / (1 - t))


def test_ode_of_the_exact_velocity_transports_noise_to_the_mixture():
    mixture = _uneven_ring()
    x0 = torch.randn(3000, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x1 = Euler(steps=200).sample(MixtureVelocity(mixture), x0)
    freq = torch.bincount(mixture.assign(x1), minlength=4).float() / 3000
    sd = (mixture.weights * (1 - mixture.weights) / 3000).sqrt()
    assert ((freq - mixture.weights).abs() < 4 * sd).all()
    # each point ends inside a component: its distance to the nearest mean is ~ std·√χ²₂
    nearest = torch.cdist(x1, mixture.means).min(dim=1).values
    assert nearest.pow(2).mean().item() == pytest.approx(2 * 0.3**2, rel=0.1)


def test_velocity_shapes_dtypes_and_bad_times():
    field = MixtureVelocity(GaussianMixture.random(dim=4, k=3))
    x = torch.randn(5, 2, 2, dtype=torch.float64)
    v = field(x, torch.rand(5, dtype=torch.float64))
    assert v.shape == x.shape and v.dtype == torch.float64 and torch.isfinite(v).all()
    with pytest.raises(FlowError, match="MixtureVelocity"):
        field(x, torch.rand(4))
    assert math.isfinite(float(field(torch.zeros(1, 4), torch.ones(1)).sum()))
