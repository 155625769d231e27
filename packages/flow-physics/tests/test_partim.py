"""The par/tim folder reader: its errors on bad folders, and a smoke test on real NANOGrav
9-yr pulsars (Arzoumanian et al. 2016, arXiv 1508.03024) read with PINT offline.

The real-data test needs the NG9 files (``FLOW_NG9_DIR``, from the enterprise-pulsar 3.5.0
wheel's ``enterprise/datafiles/ng9``) and PINT's clock files (``PINT_CLOCK_OVERRIDE``), which
the nox ``tests(physics)`` session downloads at install time and sets, together with
``FLOW_REQUIRE_REAL_DATA=1``: there a missing file fails the test instead of skipping it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import flow_physics.tasks.pta
from flow_core.testing import run_task
from flow_physics.data.partim import PartimError, _noise_txt, _scaled_errors, read_partim
from flow_physics.pta.likelihood import PTALikelihood

PAR = "PSR J0000+0000\nF0 100.0 1\nPEPOCH 55000\nTRES 1.5\n"
NG9_SUBSET = ("J1853+1303", "J1741+1351", "J1640+2224")


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.tim": "FORMAT 1\n"}, "no .par files"),
        ({"a.par": "F0 100.0\n"}, r"a.par: no pulsar name"),
        ({"a.par": PAR}, r"a.par: 0 matching .tim files"),
        ({"a.par": PAR, "a.tim": "", "b.tim": ""}, r"b.tim: a .tim file without a .par file"),
        ({"a.par": PAR, "b.par": PAR, "a.tim": "", "b.tim": ""}, "several .par files"),
    ],
)
def test_malformed_folders_name_the_file(tmp_path, files, message):
    folder = _write(tmp_path / "psrs", files)
    with pytest.raises(PartimError, match=message):
        read_partim(folder, clock_dir=tmp_path)


def test_choosing_pulsars_and_missing_clock_files(tmp_path, monkeypatch):
    pars = {f"{n}.par": PAR.replace("J0000+0000", n) for n in ("J1", "J2")}
    folder = _write(tmp_path / "psrs", pars | {"J1.tim": "", "J2.tim": ""})
    with pytest.raises(PartimError, match=r"no par file for \['J3'\]"):
        read_partim(folder, ["J3"])
    with pytest.raises(PartimError, match="pulsars=3; accepted: 1..2"):
        read_partim(folder, 3)
    monkeypatch.delenv("PINT_CLOCK_OVERRIDE", raising=False)
    with pytest.raises(PartimError, match="would be downloaded; set PINT_CLOCK_OVERRIDE"):
        read_partim(folder, 1)
    with pytest.raises(PartimError, match="no tai2tt_bipm"):
        read_partim(folder, 1, clock_dir=tmp_path)


def test_noise_file_scales_errors_and_names_missing_backends(tmp_path):
    path = tmp_path / "J1_noise.txt"
    path.write_text("efac-A 2.0\nequad-A -6\njitter_q-A -6.5\nRN-Amplitude -14\n")
    noise = _noise_txt(path)
    assert noise.has_ecorr
    sigma = np.array([1e-6, 2e-6])
    scaled = _scaled_errors(sigma, np.array(["A", "A"]), noise, str(path))
    np.testing.assert_allclose(scaled, np.sqrt(4 * sigma**2 + 1e-12))
    with pytest.raises(PartimError, match=r"J1_noise.txt: no white noise for backend\(s\) \['B'\]"):
        _scaled_errors(sigma, np.array(["A", "B"]), noise, str(path))
    path.write_text("efac-A two\n")
    with pytest.raises(PartimError, match="J1_noise.txt:1: expected"):
        _noise_txt(path)


@pytest.fixture(scope="module")
def ng9(tmp_path_factory):
    """Three NANOGrav 9-yr pulsars of the GWB set, read with PINT."""
    source = Path(os.environ.get("FLOW_NG9_DIR", "/nonexistent"))
    clocks = os.environ.get("PINT_CLOCK_OVERRIDE", "")
    if not (source.is_dir() and clocks):
        message = "NG9 files (FLOW_NG9_DIR) or PINT clock files (PINT_CLOCK_OVERRIDE) missing"
        if os.environ.get("FLOW_REQUIRE_REAL_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message + "; the nox tests(physics) session provides them")
    folder = tmp_path_factory.mktemp("ng9")
    for name in NG9_SUBSET:
        for path in source.glob(f"{name}_*"):
            (folder / path.name).symlink_to(path)
    return read_partim(folder, list(NG9_SUBSET)), source, folder


def test_ng9_pulsars_read_like_the_release(ng9):
    array, source, _ = ng9
    assert [p.name for p in array.pulsars] == list(NG9_SUBSET)
    assert array.notes and "ECORR" in array.notes[0]
    assert 8.0 < array.tspan / (365.25 * 86400) < 9.5  # the 9-yr set spans 2004-2013
    for pulsar in array.pulsars:
        par = next(source.glob(f"{pulsar.name}_*.par")).read_text().split("\n")
        header = {line.split()[0]: line.split()[1] for line in par if len(line.split()) > 1}
        assert pulsar.toas.shape == (int(header["NTOA"]),)
        assert pulsar.design_matrix.shape[0] == pulsar.toas.shape[0]
        assert 10 < pulsar.design_matrix.shape[1] < pulsar.toas.shape[0] // 4
        np.testing.assert_allclose(np.linalg.norm(pulsar.design_matrix, axis=0), 1.0)
        assert np.all(np.diff(pulsar.toas) >= 0) and pulsar.toas.min() >= 0
        # Residual rms: sub-microsecond to microsecond, within 10% of the release's TRES.
        weights = 1 / pulsar.toaerrs**2
        wrms_us = np.sqrt(np.sum(weights * pulsar.residuals**2) / weights.sum()) * 1e6
        assert wrms_us == pytest.approx(float(header["TRES"]), rel=0.1)
        assert 0.1e-6 < np.median(pulsar.toaerrs) < 5e-6
        assert np.linalg.norm(pulsar.position) == pytest.approx(1.0)


def test_ng9_likelihood_is_finite_and_limits_the_background(ng9):
    """ln L of a CURN power law (gamma 13/3, red noise off) over log10 A: flat far below the
    noise, falling steeply above it; the 95% upper limit (prior uniform in A, as in NG9) lies
    above NG9's 18-pulsar limit 1.5e-15 (three pulsars are weaker) and far below 1e-13."""
    array, _, _ = ng9
    likelihood = PTALikelihood(
        array.pulsars, n_freq=5, correlation="curn", red_noise=False, tspan=array.tspan
    )
    grid = torch.linspace(-17.0, -12.5, 91, dtype=torch.float64)
    theta = torch.stack((grid, torch.full_like(grid, 13 / 3)), 1)
    ln_l = likelihood(theta).numpy()
    assert np.all(np.isfinite(ln_l))
    assert abs(ln_l[0] - ln_l[10]) < 0.05
    assert ln_l[0] - ln_l[-1] > 20
    log_post = ln_l + grid.numpy() * np.log(10)  # uniform in A
    weights = np.exp(log_post - log_post.max())
    cdf = np.cumsum(weights) / weights.sum()
    upper = 10 ** float(grid[np.searchsorted(cdf, 0.95)])
    assert 3e-15 < upper < 3e-14


def test_task_runs_on_a_partim_folder(ng9, tmp_path, monkeypatch):
    """``physics.pta --set data=DIR`` on the NG9 folder: the named pulsars reach the
    likelihood and the report names them and the unused ECORR (the folder is read once, by
    the fixture: the task's call is answered from it)."""
    array, _, folder = ng9
    asked = []

    def read(directory, pulsars):
        asked.append((directory, pulsars))
        return array

    monkeypatch.setattr(flow_physics.tasks.pta, "read_partim", read)
    overrides = {
        "data": str(folder),
        "pulsar_names": "J1853+1303, J1741+1351, J1640+2224",
        "n_freq": 3,
        "models": "curn-powerlaw",
        "reference": "curn-powerlaw",
        "steps": 30,
        "is_samples": 256,
    }
    metrics = run_task("physics.pta", tmp_path, overrides, seed=0)
    assert asked == [(str(folder), list(NG9_SUBSET))]
    assert np.isfinite(metrics["ln_z/curn-powerlaw"])
    report = (tmp_path / "report.md").read_text()
    assert "3 pulsars read from the folder" in report and "ECORR" in report
    assert (tmp_path / "figures" / "spectrum.png").stat().st_size > 1000
