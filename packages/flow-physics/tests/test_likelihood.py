import math

import numpy as np
import pytest
import torch
from scipy.linalg import block_diag, null_space

from flow_core.errors import ConfigError
from flow_physics.data.pulsar import Pulsar
from flow_physics.data.synthetic import SyntheticConfig, make_array
from flow_physics.pta.hd import hellings_downs
from flow_physics.pta.likelihood import PTALikelihood
from flow_physics.pta.spectra import F_YR, SMBHB, free_spectrum, powerlaw_psd, psd_to_rho2

N_FREQ = 5


def dense_log_likelihood(array, theta, correlation, red_noise=True, gamma_fixed=None):
    """ln L built the slow way: C = N + F Phi F^T over the whole array, projected orthogonally
    to every pulsar's timing model, then slogdet and solve."""
    pulsars, tspan = array.pulsars, array.tspan
    n_psr = len(pulsars)
    freqs = np.arange(1, N_FREQ + 1) / tspan

    def rho2(log10_a, gamma):
        a = 10.0**log10_a
        return a**2 * F_YR ** (gamma - 3) * freqs ** (-gamma) / (12 * math.pi**2) / tspan

    offset = 2 * n_psr if red_noise else 0
    gw_gamma = gamma_fixed if gamma_fixed is not None else theta[offset + 1]
    gw = rho2(theta[offset], gw_gamma)
    bases = []
    for p in pulsars:
        phase = 2 * math.pi * np.outer(p.toas, freqs)
        basis = np.zeros((len(p.toas), 2 * N_FREQ))
        basis[:, ::2], basis[:, 1::2] = np.sin(phase), np.cos(phase)
        bases.append(basis)
    phi = np.zeros((n_psr * 2 * N_FREQ, n_psr * 2 * N_FREQ))
    for a, pa in enumerate(pulsars):
        for b, pb in enumerate(pulsars):
            if a == b:
                corr = 1.0
            elif correlation == "hd":
                corr = hellings_downs(torch.tensor(pa.position @ pb.position)).item()
            else:
                corr = 0.0
            block = corr * np.repeat(gw, 2)
            if a == b and red_noise:
                block = block + np.repeat(rho2(theta[2 * a], theta[2 * a + 1]), 2)
            rows = slice(a * 2 * N_FREQ, (a + 1) * 2 * N_FREQ)
            cols = slice(b * 2 * N_FREQ, (b + 1) * 2 * N_FREQ)
            phi[rows, cols] = np.diag(block)
    f_all = block_diag(*bases)
    noise = np.diag(np.concatenate([(p.efac * p.toaerrs) ** 2 for p in pulsars]))
    cov = noise + f_all @ phi @ f_all.T
    g = block_diag(*[null_space(p.design_matrix.T) for p in pulsars])
    r = np.concatenate([p.residuals for p in pulsars])
    projected = g.T @ cov @ g
    sign, logdet = np.linalg.slogdet(projected)
    assert sign > 0
    gr = g.T @ r
    return (
        -0.5 * gr @ np.linalg.solve(projected, gr)
        - 0.5 * logdet
        - 0.5 * len(gr) * math.log(2 * math.pi)
    )


def parameter_sets(likelihood, array, n, seed=0):
    rng = np.random.default_rng(seed)
    truth = likelihood.vector(array.truth).numpy()
    return torch.tensor(truth + rng.normal(0.0, 0.4, (n, likelihood.n_params)))


@pytest.mark.parametrize("correlation", ["curn", "hd"])
def test_woodbury_equals_dense(small_array, correlation):
    likelihood = PTALikelihood(
        small_array.pulsars, n_freq=N_FREQ, correlation=correlation, tspan=small_array.tspan
    )
    assert 30 <= min(len(p.toas) for p in small_array.pulsars) <= 50
    theta = parameter_sets(likelihood, small_array, 3)
    fast = likelihood(theta).numpy()
    slow = [dense_log_likelihood(small_array, row, correlation) for row in theta.numpy()]
    np.testing.assert_allclose(fast, slow, rtol=1e-8)


def test_without_red_noise_and_with_the_smbhb_spectrum(small_array):
    likelihood = PTALikelihood(
        small_array.pulsars,
        n_freq=N_FREQ,
        correlation="hd",
        red_noise=False,
        spectrum=SMBHB,
        tspan=small_array.tspan,
    )
    assert likelihood.parameter_names == ["gw_log10_A"]
    theta = torch.tensor([[-14.5], [-13.7], [-13.2]], dtype=torch.float64)
    slow = [
        dense_log_likelihood(small_array, row, "hd", red_noise=False, gamma_fixed=13 / 3)
        for row in theta.numpy()
    ]
    np.testing.assert_allclose(likelihood(theta).numpy(), slow, rtol=1e-8)


@pytest.mark.parametrize("correlation", ["curn", "hd"])
def test_batched_equals_looped(small_array, correlation):
    likelihood = PTALikelihood(
        small_array.pulsars, n_freq=N_FREQ, correlation=correlation, tspan=small_array.tspan
    )
    theta = parameter_sets(likelihood, small_array, 6, seed=1)
    batched = likelihood(theta)
    looped = torch.cat([likelihood(row[None]) for row in theta])
    np.testing.assert_allclose(batched.numpy(), looped.numpy(), rtol=1e-12)


def test_invariant_to_the_scaling_of_the_timing_model(small_array):
    scaled = [
        Pulsar(
            p.name,
            p.toas,
            p.toaerrs,
            p.residuals,
            p.position,
            p.design_matrix * np.array([3.0, 1e-4, 7e5]),
            p.efac,
        )
        for p in small_array.pulsars
    ]
    a = PTALikelihood(small_array.pulsars, n_freq=N_FREQ, tspan=small_array.tspan)
    b = PTALikelihood(scaled, n_freq=N_FREQ, tspan=small_array.tspan)
    theta = parameter_sets(a, small_array, 3)
    np.testing.assert_allclose(a(theta).numpy(), b(theta).numpy(), rtol=1e-10)


def test_prefers_the_injected_amplitude(small_array):
    likelihood = PTALikelihood(small_array.pulsars, n_freq=N_FREQ, red_noise=False, spectrum=SMBHB)
    truth = small_array.truth["gw_log10_A"]
    values = likelihood(torch.tensor([[truth - 1.5], [truth], [truth + 1.5]], dtype=torch.float64))
    assert values[1] > values[0] and values[1] > values[2]


def test_bad_theta_shape_names_the_columns(small_array):
    likelihood = PTALikelihood(small_array.pulsars, n_freq=N_FREQ)
    with pytest.raises(ConfigError, match=r"expected \(n_sets, 10\) with columns"):
        likelihood(torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="accepted: hd, curn"):
        PTALikelihood(small_array.pulsars, correlation="dipole")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no value for"):
        likelihood.vector({"gw_log10_A": -14.0})
    twice = [small_array.pulsars[0], small_array.pulsars[0]]
    with pytest.raises(ConfigError, match="pulsar names repeat"):
        PTALikelihood(twice)


def test_default_span_is_the_array_span_of_the_toas(small_array):
    likelihood = PTALikelihood(small_array.pulsars, n_freq=N_FREQ)
    first = min(p.toas.min() for p in small_array.pulsars)
    last = max(p.toas.max() for p in small_array.pulsars)
    assert likelihood.tspan == pytest.approx(last - first)


@pytest.mark.parametrize("correlation", ["curn", "hd"])
def test_gradient_matches_finite_differences(small_array, correlation):
    likelihood = PTALikelihood(small_array.pulsars, n_freq=N_FREQ, correlation=correlation)
    theta = parameter_sets(likelihood, small_array, 1, seed=2).requires_grad_(True)
    (grad,) = torch.autograd.grad(likelihood(theta).sum(), theta)
    step = 1e-6
    for column in (0, likelihood.n_params - 2, likelihood.n_params - 1):
        shift = torch.zeros_like(theta)
        shift[0, column] = step
        with torch.no_grad():
            numeric = (likelihood(theta + shift) - likelihood(theta - shift)) / (2 * step)
        assert grad[0, column].item() == pytest.approx(numeric.item(), rel=1e-4, abs=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("correlation", ["curn", "hd"])
def test_cuda_equals_cpu(small_array, correlation):
    likelihood = PTALikelihood(small_array.pulsars, n_freq=N_FREQ, correlation=correlation)
    theta = parameter_sets(likelihood, small_array, 4)
    on_cpu = likelihood(theta)
    on_cuda = likelihood.to("cuda")(theta.to("cuda"))
    assert on_cuda.device.type == "cuda"
    np.testing.assert_allclose(on_cuda.cpu().numpy(), on_cpu.numpy(), rtol=1e-10)


@pytest.mark.parametrize(("injected", "other"), [("hd", "curn"), ("curn", "hd")])
def test_the_injected_correlation_is_preferred(injected, other):
    config = SyntheticConfig(
        n_pulsars=12,
        years=10.0,
        gw_log10_A=-13.5,
        correlation=injected,
        toaerr_us=(0.1, 0.3),
        red_noise_log10_A=(-16.0, -15.5),
    )
    array = make_array(config, seed=0)
    theta = torch.tensor([[-13.5]], dtype=torch.float64)

    def log_l(correlation):
        return PTALikelihood(
            array.pulsars, n_freq=8, correlation=correlation, red_noise=False, spectrum=SMBHB
        )(theta).item()

    assert log_l(injected) > log_l(other) + 1.0


@pytest.mark.parametrize("correlation", ["curn", "hd"])
def test_finite_over_the_corners_of_the_usual_prior(small_array, correlation):
    likelihood = PTALikelihood(small_array.pulsars, n_freq=N_FREQ, correlation=correlation)
    corners = [[a, g] for a in (-20.0, -11.0) for g in (0.0, 7.0)]
    theta = torch.tensor([pair * (likelihood.n_params // 2) for pair in corners])
    assert torch.isfinite(likelihood(theta)).all()


def test_free_spectrum_at_the_power_law_rhos_equals_the_power_law(small_array):
    tspan = small_array.tspan
    power_law = PTALikelihood(small_array.pulsars, n_freq=N_FREQ, correlation="hd", tspan=tspan)
    free = PTALikelihood(
        small_array.pulsars,
        n_freq=N_FREQ,
        correlation="hd",
        spectrum=free_spectrum(N_FREQ),
        tspan=tspan,
    )
    theta = parameter_sets(power_law, small_array, 2)
    rho2 = psd_to_rho2(powerlaw_psd(power_law.freqs, theta[:, -2], theta[:, -1]), tspan)
    theta_free = torch.cat((theta[:, :-2], 0.5 * torch.log10(rho2)), dim=1)
    assert free.parameter_names[-1] == f"gw_log10_rho_{N_FREQ - 1}"
    np.testing.assert_allclose(free(theta_free).numpy(), power_law(theta).numpy(), rtol=1e-10)
