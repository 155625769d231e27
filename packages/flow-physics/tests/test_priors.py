import math

import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.pta.evidence import Proposal, importance_sampling
from flow_physics.pta.priors import BoxUniform, JointPrior, smbhb_astro_prior


def test_box_uniform_density_and_support():
    prior = BoxUniform([-20.0, 0.0], [-11.0, 7.0], seed=1)
    assert isinstance(prior, Proposal)
    draws = prior.sample(5000)
    assert draws.shape == (5000, 2)
    assert (draws[:, 0] >= -20).all() and (draws[:, 0] <= -11).all()
    assert draws[:, 1].mean().item() == pytest.approx(3.5, abs=0.15)
    log_p = prior.log_prob(torch.tensor([[-15.0, 3.0], [-10.0, 3.0], [-15.0, -0.1]]))
    assert log_p[0].item() == pytest.approx(-math.log(9 * 7))
    assert log_p[1].item() == -math.inf and log_p[2].item() == -math.inf


def test_box_uniform_rejects_bad_bounds():
    with pytest.raises(ConfigError, match="need low < high"):
        BoxUniform([0.0], [0.0])
    with pytest.raises(ConfigError, match="equally long"):
        BoxUniform([0.0, 1.0], [2.0])


def test_smbhb_astro_prior_moments():
    draws = smbhb_astro_prior(seed=3).sample(40_000)
    np.testing.assert_allclose(draws.mean(0).numpy(), [-15.61, 4.71], atol=0.02, rtol=0)
    expected = [[0.279, -0.0026], [-0.0026, 0.124]]
    np.testing.assert_allclose(torch.cov(draws.T).numpy(), expected, atol=0.01, rtol=0)


def test_joint_prior_sums_its_blocks():
    box = BoxUniform([-20.0, 0.0], [-11.0, 7.0])
    astro = smbhb_astro_prior()
    joint = JointPrior([(box, 2), (astro, 2)])
    x = joint.sample(7)
    assert x.shape == (7, 4)
    expected = box.log_prob(x[:, :2]) + astro.log_prob(x[:, 2:])
    np.testing.assert_allclose(joint.log_prob(x).numpy(), expected.numpy(), rtol=1e-12)
    with pytest.raises(ConfigError, match=r"expected \(n, 4\)"):
        joint.log_prob(x[:, :3])


def test_evidence_under_a_box_prior_with_the_prior_as_proposal():
    # Z = int N(y | theta, s^2) U(theta | -a, a) dtheta = [Phi((a - y)/s) - Phi((-a - y)/s)] / 2a
    y, s, a = 1.2, 0.4, 3.0
    prior = BoxUniform([-a], [a], seed=5)

    def log_target(theta):
        log_like = -0.5 * ((y - theta[:, 0]) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))
        return log_like + prior.log_prob(theta)

    def cdf(z):
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    true_ln_z = math.log((cdf((a - y) / s) - cdf((-a - y) / s)) / (2 * a))
    estimate = importance_sampling(log_target, prior, 40_000)
    assert abs(estimate.ln_z - true_ln_z) < 3 * estimate.ln_z_err
    assert abs(estimate.ln_z - true_ln_z) < 0.05
