import math

import pytest
import torch

from flow_core.errors import ConfigError
from flow_core.objectives.timesteps import TIME_DENSITIES, TimeDensity, sample_time

N = 20_000
# Kolmogorov–Smirnov: P(sup |F_n − F| > 1.95/√n) ≈ 0.001 for the true F.
KS_BOUND = 1.95 / math.sqrt(N)


def ks_distance(samples, cdf):
    x, _ = torch.sort(samples.double())
    f = cdf(x)
    n = x.numel()
    upper = torch.arange(1, n + 1, dtype=torch.float64) / n - f
    lower = f - torch.arange(0, n, dtype=torch.float64) / n
    return max(upper.max().item(), lower.max().item())


def normal_cdf(z):
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def u_shaped_cdf(a, margin=1e-5):
    def cdf(t):
        s = ((t - margin) / (1 - 2 * margin)).clamp(0, 1)
        return 0.5 + torch.sinh(a * (s - 0.5)) / (2 * math.sinh(a / 2))

    return cdf


CASES = [
    ("uniform", {}, lambda t: t),
    ("logit-normal", {}, lambda t: normal_cdf(torch.logit(t))),
    ("logit-normal", {"mean": 0.4, "std": 1.5}, lambda t: normal_cdf((torch.logit(t) - 0.4) / 1.5)),
    ("u-shaped", {}, u_shaped_cdf(4.0)),
    ("u-shaped", {"a": 1.5}, u_shaped_cdf(1.5)),
    ("shifted", {}, lambda t: 3 * t / (1 + 2 * t)),
    ("shifted", {"shift": 0.5}, lambda t: 0.5 * t / (1 - 0.5 * t)),
]


@pytest.mark.parametrize(("name", "params", "cdf"), CASES)
def test_matches_the_analytic_cdf(name, params, cdf):
    generator = torch.Generator().manual_seed(0)
    t = sample_time(name, N, generator=generator, dtype=torch.float64, **params)
    assert t.shape == (N,) and t.dtype == torch.float64
    assert bool(((t > 0) & (t < 1)).all())
    assert ks_distance(t, cdf) < KS_BOUND


def test_a_wrong_cdf_is_detected():
    # The bound has power: the u-shaped draws are far from uniform, and a = 4 from a = 3.
    t = sample_time("u-shaped", N, generator=torch.Generator().manual_seed(0))
    assert ks_distance(t, lambda s: s) > 5 * KS_BOUND
    assert ks_distance(t, u_shaped_cdf(3.0)) > 2 * KS_BOUND


def test_conventions_of_the_densities():
    generator = torch.Generator().manual_seed(1)
    # MeanFlow's logit-normal(−0.4, 1) on τ is logit-normal(+0.4, 1) on t: mass on the data side.
    t = sample_time("logit-normal", N, mean=0.4, generator=generator)
    assert t.median().item() == pytest.approx(1 / (1 + math.exp(-0.4)), abs=0.01)
    # SD3 shift s > 1 spends more time near the noise end t = 0.
    assert sample_time("shifted", N, shift=3.0, generator=generator).mean().item() < 0.4
    # 2-RF++'s U-shape is rescaled into [1e-5, 1 − 1e-5], not clipped.
    u = sample_time("u-shaped", N, a=40.0, generator=generator)
    assert u.min().item() >= 1e-5 and u.max().item() <= 1 - 1e-5


def test_generator_and_device_dtype():
    a = sample_time("u-shaped", 5, generator=torch.Generator().manual_seed(3))
    b = sample_time("u-shaped", 5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert a.dtype == torch.get_default_dtype() and a.device.type == "cpu"


def test_time_density_spec():
    density = TimeDensity.parse("logit-normal:mean=0.4, std=2")
    assert density.name == "logit-normal" and density.params == {"mean": 0.4, "std": 2.0}
    assert TimeDensity.parse("uniform").params == {}
    assert TimeDensity.parse("u-shaped").params == {"a": 4.0}
    t1 = density(100, generator=torch.Generator().manual_seed(0))
    t2 = sample_time(
        "logit-normal", 100, mean=0.4, std=2.0, generator=torch.Generator().manual_seed(0)
    )
    torch.testing.assert_close(t1, t2)
    assert set(TIME_DENSITIES) == {"uniform", "logit-normal", "u-shaped", "shifted"}


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("gamma", "unknown time density"),
        ("uniform:mean=1", "unknown parameter"),
        ("logit-normal:std=0", "std must be > 0"),
        ("logit-normal:mean", "key=value"),
        ("logit-normal:mean=abc", "key=value"),
        ("u-shaped:a=-1", "a must be > 0"),
        ("shifted:shift=0", "shift must be > 0"),
        ("shifted:shift=nan", "finite"),
    ],
)
def test_bad_specs_raise(spec, match):
    with pytest.raises(ConfigError, match=match):
        TimeDensity.parse(spec)


def test_sample_time_rejects_unknown_names():
    with pytest.raises(ConfigError, match="uniform, logit-normal"):
        sample_time("beta", 3)
