import math

import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.pta.evidence import (
    GaussianDensity,
    Proposal,
    importance_sampling,
    learned_harmonic_mean,
    ln_bayes_factor,
)

PRIOR_SD, LIKE_SD = 2.0, 0.5


def gaussian_problem(dim):
    """Prior N(0, 2^2 I) times likelihood N(y | theta, 0.5^2 I): Z = N(y | 0, (4 + 0.25) I)."""
    y = torch.tensor([0.3, -0.5, 1.0, 0.2][:dim], dtype=torch.float64)

    def log_normal(x, mean, sd):
        return (-0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def log_target(theta):
        return log_normal(y, theta, LIKE_SD) + log_normal(theta, 0.0, PRIOR_SD)

    true_ln_z = log_normal(y, 0.0, math.sqrt(PRIOR_SD**2 + LIKE_SD**2)).item()
    post_var = 1.0 / (1.0 / PRIOR_SD**2 + 1.0 / LIKE_SD**2)
    post_mean = post_var * y / LIKE_SD**2
    return log_target, true_ln_z, post_mean, post_var


def test_gaussian_density_is_normalised_and_a_proposal():
    density = GaussianDensity(torch.zeros(2), torch.tensor([[2.0, 0.3], [0.3, 0.5]]))
    assert isinstance(density, Proposal)
    axis = torch.linspace(-12, 12, 601, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    mass = density.log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 2
    assert mass.item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dim", [1, 3])
def test_importance_sampling_recovers_the_analytic_evidence(dim):
    log_target, true_ln_z, post_mean, post_var = gaussian_problem(dim)
    proposal = GaussianDensity(post_mean, torch.eye(dim, dtype=torch.float64) * 2 * post_var, 7)
    estimate = importance_sampling(log_target, proposal, 20_000)
    assert abs(estimate.ln_z - true_ln_z) < 3 * estimate.ln_z_err
    assert abs(estimate.ln_z - true_ln_z) < 0.05
    assert 0 < estimate.ln_z_err < 0.02
    assert 0.2 * estimate.n < estimate.ess <= estimate.n


@pytest.mark.parametrize("dim", [1, 3])
def test_learned_harmonic_mean_recovers_the_analytic_evidence(dim):
    log_target, true_ln_z, post_mean, post_var = gaussian_problem(dim)
    gen = torch.Generator().manual_seed(11)
    samples = post_mean + math.sqrt(post_var) * torch.randn(
        20_000, dim, generator=gen, dtype=torch.float64
    )
    estimate = learned_harmonic_mean(samples, log_target(samples), temperature=0.8)
    assert estimate.n == 10_000
    assert abs(estimate.ln_z - true_ln_z) < 3 * estimate.ln_z_err
    assert abs(estimate.ln_z - true_ln_z) < 0.05
    assert 0 < estimate.ln_z_err < 0.02


def test_a_wrong_target_moves_the_estimates():
    log_target, true_ln_z, post_mean, post_var = gaussian_problem(2)
    proposal = GaussianDensity(post_mean, torch.eye(2, dtype=torch.float64) * 2 * post_var)
    shifted = importance_sampling(lambda x: log_target(x) + 1.0, proposal, 5000)
    assert shifted.ln_z == pytest.approx(true_ln_z + 1.0, abs=0.05)


def test_bad_inputs_raise_config_errors():
    samples = torch.randn(100, 2, dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"temperature=1.5; accepted: \(0, 1\)"):
        learned_harmonic_mean(samples, torch.zeros(100), temperature=1.5)
    with pytest.raises(ConfigError, match="accepted: \\(n, dim\\) and \\(n,\\)"):
        learned_harmonic_mean(samples, torch.zeros(99))
    with pytest.raises(ConfigError, match="n >= 2"):
        importance_sampling(lambda x: x.sum(-1), GaussianDensity(torch.zeros(1), torch.eye(1)), 1)


def test_bayes_factor_of_two_models_against_the_analytic_value():
    log_target, _, post_mean, post_var = gaussian_problem(2)
    proposal = GaussianDensity(post_mean, torch.eye(2, dtype=torch.float64) * 2 * post_var, 3)
    a = importance_sampling(log_target, proposal, 20_000)
    b = importance_sampling(lambda x: log_target(x) - 2.5, proposal, 20_000)
    ln_b, err = ln_bayes_factor(a, b)
    assert err == pytest.approx(math.hypot(a.ln_z_err, b.ln_z_err))
    assert abs(ln_b - 2.5) < max(3 * err, 1e-9)
