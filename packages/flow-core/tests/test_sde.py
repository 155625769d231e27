import pytest
import torch
from torch import nn

from flow_core.datasets.mixture import GaussianMixture, MixtureVelocity
from flow_core.errors import ConfigError
from flow_core.models.mlp import MLPVelocity
from flow_core.paths.transform import to_vp
from flow_core.protocols import Sampler
from flow_core.samplers import Euler
from flow_core.samplers.sde import EulerMaruyama


class Counting(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x, t, cond=None):
        assert t.shape == (x.shape[0],) and t.dtype == x.dtype
        self.calls += 1
        return self.inner(x, t, cond)


def _mixture():
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
    return GaussianMixture.ring(k=8, radius=2.0, std=0.2, weights=weights)


def test_protocol_kind_and_nfe():
    sampler = EulerMaruyama(steps=7)
    assert isinstance(sampler, Sampler) and sampler.nfe == 0
    assert EulerMaruyama.model_kind == "velocity"
    model = Counting(MixtureVelocity(_mixture()))
    x = sampler.sample(model, torch.randn(5, 2))
    assert x.shape == (5, 2) and sampler.nfe == 7 == model.calls


@pytest.mark.parametrize(
    "options", [{"diffusion": "zero"}, {"diffusion": "released", "scale": 0.0}]
)
def test_zero_diffusion_is_exactly_euler(options):
    torch.manual_seed(0)
    model = MLPVelocity(dim=2, hidden=16, depth=2)
    x0 = torch.randn(8, 2)
    with torch.no_grad():
        sde = EulerMaruyama(steps=13, **options).sample(model, x0)
        ode = Euler(steps=13).sample(model, x0)
    assert torch.equal(sde, ode)


def test_single_step_is_deterministic_and_noise_is_injected_otherwise():
    model = MixtureVelocity(_mixture())
    x0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    one = EulerMaruyama(steps=1, diffusion="constant", scale=2.0)
    assert torch.equal(one.sample(model, x0), Euler(steps=1).sample(model, x0))
    sde = EulerMaruyama(steps=10, diffusion="constant", scale=1.0)
    a = sde.sample(model, x0, generator=torch.Generator().manual_seed(1))
    b = sde.sample(model, x0, generator=torch.Generator().manual_seed(2))
    assert (a - b).abs().max() > 1e-2


def test_seeded_sampler_is_reproducible():
    model = MixtureVelocity(_mixture())
    x0 = torch.randn(6, 2)
    first = EulerMaruyama(steps=20, generator_seed=5).sample(model, x0)
    assert torch.equal(first, EulerMaruyama(steps=20, generator_seed=5).sample(model, x0))
    assert not torch.equal(first, EulerMaruyama(steps=20, generator_seed=6).sample(model, x0))
    override = EulerMaruyama(steps=20, generator_seed=6).sample(
        model, x0, generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(first, override)


def test_step_follows_the_euler_maruyama_formula():
    """One step is x + h·[v + ½g²s] + g·√h·ξ with s the linear-path score (t·v − x)/(1 − t)."""
    mixture = _mixture().to(dtype=torch.float64)
    model = MixtureVelocity(mixture)
    sde = EulerMaruyama(steps=10, diffusion="released", scale=3.0)
    x = torch.randn(4, 2, dtype=torch.float64)
    index, t, h = 3, 0.3, 0.1
    v = model(x, sde.time(index, x))
    got = sde.step(x, v, index, torch.Generator().manual_seed(0))
    xi = torch.randn(4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = 3.0 * (1 - t) ** 2
    score = model.score(x, sde.time(index, x))
    torch.testing.assert_close(got, x + h * (v + 0.5 * g**2 * score) + g * h**0.5 * xi)
    # the Tweedie estimate of the linear path
    torch.testing.assert_close(sde.data_estimate(x, v, index), x + (1 - t) * v)


def _assert_matches_mixture(x, mixture):
    n = x.shape[0]
    freq = torch.bincount(mixture.assign(x), minlength=mixture.n_components).float() / n
    sd = (mixture.weights * (1 - mixture.weights) / n).sqrt()
    assert ((freq - mixture.weights).abs() < 4 * sd).all(), freq
    torch.testing.assert_close(x.mean(0), mixture.mean(), atol=0.12, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), mixture.covariance(), atol=0.2, rtol=0)
    # every sample sits inside a component, as tightly as the data: E min‖x − μ‖² = 2·std²
    nearest = torch.cdist(x, mixture.means).min(dim=1).values.pow(2).mean()
    assert nearest.item() == pytest.approx(2 * 0.2**2, rel=0.15)


@pytest.mark.parametrize(
    "options",
    [
        {"diffusion": "released", "scale": 3.0},
        {"diffusion": "constant", "scale": 1.0},
        {"diffusion": "released", "scale": 3.0, "path": "cosine"},
    ],
)
def test_sde_samples_have_the_marginals_of_the_ode(options):
    """The SDE preserves marginals: with the exact field, SDE samples follow the mixture.

    ``path="cosine"`` runs the VP SDE of the model converted to the cosine path.
    """
    mixture = _mixture()
    model = MixtureVelocity(mixture)
    if options.get("path") == "cosine":
        model = to_vp(model)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(3000, 2, generator=gen)
    with torch.no_grad():
        x1 = EulerMaruyama(steps=100, **options).sample(model, x0, generator=gen)
    _assert_matches_mixture(x1, mixture)
    # and the stochastic map differs from the deterministic one sample by sample
    with torch.no_grad():
        ode = Euler(steps=100).sample(MixtureVelocity(mixture), x0)
    assert (x1 - ode).norm(dim=1).mean() > 0.1


def test_constant_diffusion_is_stable_near_the_data():
    """A constant g makes ½g²h/σ² blow up as σ → 0; the cap g ≤ σ/√h keeps samples bounded."""
    mixture = _mixture()
    x0 = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    sde = EulerMaruyama(steps=50, diffusion="constant", scale=3.0)
    with torch.no_grad():
        x1 = sde.sample(MixtureVelocity(mixture), x0, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(x1).all() and x1.norm(dim=1).max() < 4.0


def test_dtype_is_preserved():
    model = MixtureVelocity(_mixture())
    x = EulerMaruyama(steps=5).sample(model, torch.randn(3, 2, dtype=torch.float64))
    assert x.dtype == torch.float64


@pytest.mark.parametrize(
    "options, match",
    [
        ({"steps": 0}, "steps"),
        ({"steps": True}, "steps"),
        ({"diffusion": "brownian"}, "released"),
        ({"scale": -1.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"path": "spiral"}, "cosine"),
    ],
)
def test_bad_options_raise_config_error(options, match):
    with pytest.raises(ConfigError, match=match):
        EulerMaruyama(**options)
