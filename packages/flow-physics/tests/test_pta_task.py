"""The physics.pta task end to end, on ceffyl densities (checked against quadrature) and on a
small synthetic array."""

import json
import math

import numpy as np
import pytest
import torch

import flow_physics.plugin
from flow_core.errors import ConfigError
from flow_core.testing import run_task
from flow_physics.data.ceffyl import CeffylFormatError, CeffylLikelihood, write_ceffyl
from flow_physics.data.partim import PartimError
from flow_physics.pta.sources import prior_box, source_model
from flow_physics.pta.spectra import SMBHB, psd_to_rho2

TSPAN = 10 * 365.25 * 86400.0
FREQS = np.arange(1, 5) / TSPAN
GRID = np.linspace(-10.0, -5.0, 501)


@pytest.fixture(scope="module")
def densities(tmp_path_factory):
    """A Gaussian free-spectrum density around an SMBHB background with log10_A = -14.5."""
    psd = SMBHB.psd(torch.tensor(FREQS), torch.tensor([[-14.5]], dtype=torch.float64))
    centre = 0.5 * np.log10(psd_to_rho2(psd, TSPAN)[0].numpy())
    log_pdf = -0.5 * ((GRID[None, :] - centre[:, None]) / 0.2) ** 2
    root = tmp_path_factory.mktemp("ceffyl")
    return root, write_ceffyl(root, FREQS, GRID, log_pdf[None], ["hd"])


def _quadrature_ln_z(data, source: str, points: int) -> float:
    """ln Z under the uniform prior box on a regular grid (the mean of L over the box)."""
    model = source_model(source)
    box = prior_box(model)
    axes = [
        torch.linspace(*box[name], points, dtype=torch.float64) for name in model.parameter_names
    ]
    theta = torch.stack([g.ravel() for g in torch.meshgrid(*axes, indexing="ij")], 1)
    ln_l = CeffylLikelihood(data, model, interpolation="linear")(theta)
    return float(torch.logsumexp(ln_l, 0) - math.log(len(theta)))


def test_evidences_on_ceffyl_densities_match_quadrature(densities, tmp_path):
    root, data = densities
    overrides = {
        "data": str(root),
        "models": "hd-smbhb,hd-powerlaw",
        "reference": "hd-smbhb",
        "steps": 250,
        "batch_size": 128,
        "is_samples": 4000,
    }
    metrics = run_task("physics.pta", tmp_path, overrides)
    for model, source, points in (("hd-smbhb", "smbhb", 20001), ("hd-powerlaw", "powerlaw", 701)):
        exact = _quadrature_ln_z(data, source, points)
        error = metrics[f"ln_z_err/{model}"]
        assert error < 0.1
        assert abs(metrics[f"ln_z/{model}"] - exact) < 4 * error + 0.02
        lhm_error = metrics[f"ln_z_lhm_err/{model}"]
        assert abs(metrics[f"ln_z_lhm/{model}"] - exact) < 4 * lhm_error + 0.05
    exact_bf = _quadrature_ln_z(data, "powerlaw", 701) - _quadrature_ln_z(data, "smbhb", 20001)
    assert metrics["ln_bf/hd-powerlaw"] == pytest.approx(
        exact_bf, abs=4 * metrics["ln_bf_err/hd-powerlaw"] + 0.03
    )
    assert metrics["ln_bf/hd-smbhb"] == 0.0


def test_task_on_a_synthetic_array_writes_table_figures_and_posteriors(tmp_path):
    overrides = {
        "pulsars": 3,
        "n_freq": 3,
        "gw_log10_A": -13.7,
        "models": "curn-powerlaw,hd-smbhb",
        "steps": 120,
        "batch_size": 64,
        "is_samples": 1024,
        "chains": 64,
        "chain_steps": 20,
        "burn_in": 60,
    }
    metrics = run_task("physics.pta", tmp_path, overrides, seed=1)
    assert sorted(metrics[f"rank/{m}"] for m in ("curn-powerlaw", "hd-smbhb")) == [1.0, 2.0]
    for model in ("curn-powerlaw", "hd-smbhb"):
        assert math.isfinite(metrics[f"ln_z/{model}"]) and metrics[f"ess/{model}"] > 20
        both = math.hypot(metrics[f"ln_z_err/{model}"], metrics[f"ln_z_lhm_err/{model}"])
        assert abs(metrics[f"ln_z/{model}"] - metrics[f"ln_z_lhm/{model}"]) < 5 * both + 0.3
    assert metrics["truth_in_90/curn-powerlaw/gw_log10_A"] == 1.0
    report = (tmp_path / "report.md").read_text()
    assert "Bayes factors (flow route)" in report and "hd-smbhb" in report
    assert (tmp_path / "figures" / "corner.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "spectrum.png").stat().st_size > 1000
    posterior = np.load(tmp_path / "posterior-hd-smbhb.npz")
    assert posterior["samples"].shape == (64 * 20, 7)
    assert list(posterior["names"])[-1] == "gw_log10_A"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert "ln_bf/curn-powerlaw" in json.dumps(saved)


def test_registered_task_and_flow(flow_registry):
    registry = flow_registry(flow_physics.plugin)
    assert registry.get("task", "physics.pta") is not None
    assert registry.get("flow", "physics-nsf") is not None


def test_bad_inputs_name_what_is_wrong(tmp_path):
    (tmp_path / "psr").mkdir()
    (tmp_path / "psr" / "J0000+0000.tim").write_text("FORMAT 1\n")
    with pytest.raises(PartimError, match="psr: no .par files"):
        run_task(
            "physics.pta", tmp_path / "a", {"data": str(tmp_path / "psr"), "models": "hd-smbhb"}
        )
    with pytest.raises(CeffylFormatError, match="missing freqs.npy"):
        run_task("physics.pta", tmp_path / "b", {"data": str(tmp_path), "models": "hd-smbhb"})
    with pytest.raises(ConfigError, match="not <correlation>-<source>"):
        run_task("physics.pta", tmp_path / "c", {"models": "smbhb"})
    with pytest.raises(ConfigError, match="reference='hd-smbhb'"):
        run_task("physics.pta", tmp_path / "d", {"models": "hd-powerlaw"})


def test_disagreeing_evidence_estimators_mark_a_model_unconverged():
    from flow_physics.pta.evidence import EvidenceEstimate
    from flow_physics.pta.models import parse_models
    from flow_physics.pta.variational import PosteriorDraws
    from flow_physics.tasks.pta import _Fitted, _metrics

    def fitted(name: str, lhm_ln_z: float) -> _Fitted:
        draws = PosteriorDraws(
            EvidenceEstimate(10.0, 0.1, 500.0, 4096),
            EvidenceEstimate(lhm_ln_z, 0.1, 500.0, 4096),
            torch.zeros(4, 2, dtype=torch.float64),
            0.3,
        )
        return _Fitted(parse_models(name)[0], ["gw_log10_A", "gw_gamma"], draws, 1.0, 1.0)

    # 0.3 apart is within 3 combined errors (3 * 0.141); 5 apart is not.
    metrics = _metrics(
        [fitted("hd-powerlaw", 9.7), fitted("curn-powerlaw", 5.0)], "hd-powerlaw", None
    )
    assert metrics["estimators_agree/hd-powerlaw"] == 1.0
    assert metrics["estimators_agree/curn-powerlaw"] == 0.0
