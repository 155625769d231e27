import math

import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.pta.variational import BoxPosterior

BOX = {"a": (-2.0, 3.0), "b": (0.0, 7.0)}


def _posterior(log_likelihood):
    return BoxPosterior(log_likelihood, ["a", "b"], BOX)


def test_box_round_trip_and_jacobian():
    posterior = _posterior(lambda x: torch.zeros(len(x), dtype=torch.float64))
    x = torch.tensor([[0.5, 6.9], [-1.9, 0.1]], dtype=torch.float64)
    u = posterior.to_unbounded(x)
    torch.testing.assert_close(posterior.to_box(u), x)
    # with L = 1 the target is the prior in u; it integrates to 1 (checked on a grid)
    grid = torch.linspace(-30, 30, 3001, dtype=torch.float64)
    pairs = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    mass = torch.exp(posterior.log_target(pairs)).sum() * (grid[1] - grid[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def test_values_outside_the_prior_are_named():
    posterior = _posterior(lambda x: torch.zeros(len(x), dtype=torch.float64))
    with pytest.raises(ConfigError, match=r"\['b'\] lie outside their prior ranges"):
        posterior.to_unbounded(torch.tensor([[0.0, 8.0]], dtype=torch.float64))


def test_non_finite_likelihood_names_the_parameters():
    def broken(x):
        return torch.where(x[:, 0] > 0, torch.nan, 0.0).to(torch.float64)

    posterior = _posterior(broken)
    with pytest.raises(ConfigError, match=r"log likelihood is nan at a=2\.404, b=3\.5"):
        posterior.log_target(torch.tensor([[-10.0, 0.0], [2.0, 0.0]], dtype=torch.float64))
    assert math.isinf(
        _posterior(lambda x: torch.full((len(x),), -math.inf, dtype=torch.float64)).log_target(
            torch.zeros(1, 2, dtype=torch.float64)
        )[0]
    )


def test_missing_or_empty_prior_ranges_are_refused():
    with pytest.raises(ConfigError, match=r"no prior range for \['c'\]"):
        BoxPosterior(lambda x: x[:, 0], ["a", "c"], BOX)
    with pytest.raises(ConfigError, match="need low < high"):
        BoxPosterior(lambda x: x[:, 0], ["a"], {"a": (1.0, 1.0)})
