import math

import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.networks.spline import SplineFlow
from flow_physics.pta.evidence import learned_harmonic_mean
from flow_physics.pta.neutra import TARGET_ACCEPTANCE, neutra_chains

MEAN = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64)
SCALE = torch.tensor([0.3, 2.0, 0.8], dtype=torch.float64)
LN_Z = 4.0


def _log_target(u):
    """An unnormalised Gaussian with evidence exp(LN_Z)."""
    white = (u - MEAN) / SCALE
    norm = torch.log(SCALE).sum() + 1.5 * math.log(2 * math.pi)
    return LN_Z - 0.5 * (white**2).sum(-1) - norm


def test_chains_of_a_mismatched_flow_target_the_exact_posterior():
    # An untrained flow is a standard normal: wrong mean and scales in every coordinate,
    # so resampling its draws would be far off; the chains must still land on the target.
    torch.manual_seed(0)
    flow = SplineFlow(3, transforms=1, hidden=8).double()
    start = torch.randn(200, 3, dtype=torch.float64)
    draws = neutra_chains(flow, _log_target, start, steps=60, burn_in=150, seed=1)
    assert draws.samples.shape == (200 * 60, 3)
    torch.testing.assert_close(draws.samples.mean(0), MEAN, atol=0.12, rtol=0)
    torch.testing.assert_close(draws.samples.std(0), SCALE, atol=0, rtol=0.1)
    assert abs(draws.acceptance - TARGET_ACCEPTANCE) < 0.1
    estimate = learned_harmonic_mean(draws.samples, draws.log_target, temperature=0.8)
    assert abs(estimate.ln_z - LN_Z) < max(4 * estimate.ln_z_err, 0.05)


def test_chains_are_reproducible_under_a_seed():
    flow = SplineFlow(2, transforms=1, hidden=8).double()
    start = torch.zeros(4, 2, dtype=torch.float64)

    def target(u):
        return -0.5 * (u**2).sum(-1)

    first = neutra_chains(flow, target, start, steps=5, burn_in=3, seed=7)
    again = neutra_chains(flow, target, start, steps=5, burn_in=3, seed=7)
    torch.testing.assert_close(first.samples, again.samples)


def test_bad_chain_settings_are_refused():
    flow = SplineFlow(2, transforms=1, hidden=8)
    with pytest.raises(ConfigError, match=r"start \(4, 3\); accepted: \(chains >= 2, 2\)"):
        neutra_chains(flow, lambda u: u[:, 0], torch.zeros(4, 3), steps=5, burn_in=0)
    with pytest.raises(ConfigError, match="steps=0"):
        neutra_chains(flow, lambda u: u[:, 0], torch.zeros(4, 2), steps=0, burn_in=0)
