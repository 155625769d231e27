import numpy as np
import pytest
import torch

from flow_core.errors import ConfigError
from flow_physics.data.ceffyl import (
    CeffylFormatError,
    CeffylLikelihood,
    read_ceffyl,
    write_ceffyl,
)
from flow_physics.pta.spectra import POWERLAW, powerlaw_psd

TSPAN = 15 * 365.25 * 86400
FREQS = np.arange(1, 6) / TSPAN
GRID = np.linspace(-9.0, -5.0, 81)


def densities(n_psr=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_psr, len(FREQS), len(GRID)))


def test_round_trip(tmp_path):
    density = densities()
    written = write_ceffyl(tmp_path / "fs", FREQS, GRID, density, ["J0030+0451", "J1909-3744"])
    read = read_ceffyl(tmp_path / "fs")
    np.testing.assert_array_equal(read.freqs, FREQS)
    np.testing.assert_array_equal(read.log10_rho_grid, GRID)
    np.testing.assert_array_equal(read.density, density)
    assert read.pulsars == ["J0030+0451", "J1909-3744"]
    assert read.labels == written.labels == [f"log10_rho_{k}" for k in range(5)]


def test_missing_file_is_named(tmp_path):
    write_ceffyl(tmp_path, FREQS, GRID, densities(1), ["hd"])
    (tmp_path / "density.npy").unlink()
    with pytest.raises(CeffylFormatError, match="missing density.npy") as info:
        read_ceffyl(tmp_path)
    assert isinstance(info.value, ConfigError)


def test_wrong_shape_names_the_file_and_the_expected_shape(tmp_path):
    write_ceffyl(tmp_path, FREQS, GRID, densities(1), ["hd"])
    np.save(tmp_path / "density.npy", np.zeros((1, 4, 81)))
    with pytest.raises(
        CeffylFormatError,
        match=r"density.npy: shape \(1, 4, 81\); expected "
        r"\(n_psr, n_freq, n_grid\) = \(1, 5, 81\)",
    ):
        read_ceffyl(tmp_path)
    with pytest.raises(CeffylFormatError, match="log10rhogrid.npy"):
        write_ceffyl(tmp_path / "b", FREQS, GRID[::-1], densities(1), ["hd"])
    with pytest.raises(CeffylFormatError, match="log10rholabels.txt"):
        write_ceffyl(tmp_path / "c", FREQS, GRID, densities(1), ["hd"], labels=["a"])


def test_factorised_likelihood_at_the_nearest_bin(tmp_path):
    density = densities(2, seed=3)
    data = write_ceffyl(tmp_path, FREQS, GRID, density, ["a", "b"])
    likelihood = CeffylLikelihood(data, POWERLAW)
    assert likelihood.tspan == pytest.approx(TSPAN)
    theta = torch.tensor([[-14.5, 13 / 3], [-15.0, 3.0], [-14.0, 5.0]], dtype=torch.float64)
    f = torch.tensor(FREQS)
    for row, value in zip(theta, likelihood(theta), strict=True):
        psd = powerlaw_psd(f, row[0], row[1])[0].numpy()
        log10_rho = 0.5 * np.log10(psd / TSPAN)
        index = np.abs(GRID[None, :] - log10_rho[:, None]).argmin(1)
        expected = density[:, np.arange(5), index].sum()
        assert value.item() == pytest.approx(expected, rel=1e-12)


def test_above_the_grid_is_impossible_and_below_is_clamped(tmp_path):
    density = densities(1, seed=5)
    likelihood = CeffylLikelihood(write_ceffyl(tmp_path, FREQS, GRID, density, ["hd"]), POWERLAW)
    values = likelihood(torch.tensor([[-9.0, 13 / 3], [-30.0, 13 / 3]], dtype=torch.float64))
    assert values[0].item() == -np.inf
    assert values[1].item() == pytest.approx(density[0, :, 0].sum())
    with pytest.raises(ConfigError, match="expected \\(n_sets, 2\\)"):
        likelihood(torch.zeros(3))
