"""Our ``PTALikelihood`` against enterprise's likelihood on real NANOGrav 9-yr pulsars
(Arzoumanian et al. 2016, arXiv 1508.03024), read once with PINT (Luo et al. 2021,
arXiv 2012.00074) and handed to both: same TOAs, residuals, design matrix and per-backend white
noise (EFAC and added-in-quadrature EQUAD from the NG9 noise files; ECORR left out on both
sides, as our likelihood has no jitter term), same span, same number of frequencies, same
power-law red noise and common process. The two differ by the timing-model treatment
(enterprise: a very wide Gaussian prior on the design-matrix coefficients; ours: exact
marginalisation on an orthonormal basis), which changes ln L by a constant: the spread of
(ours - enterprise) across parameter points is the check.

Needs the NG9 folder (``FLOW_NG9_DIR``) and PINT's clock files (``PINT_CLOCK_OVERRIDE``), which
``nox -s bench -- physics`` fetches, and enterprise-pulsar (tools/bench/physics.requirements.txt).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from flow_core.report import markdown_table
from flow_physics.data.feather import read_feather_folder
from flow_physics.data.partim import pint_timing, to_pulsar
from flow_physics.pta.likelihood import PTALikelihood
from flow_physics.pta.models import RED_NOISE_PRIOR

__all__ = ["section"]

PULSARS = ("J1853+1303", "J1741+1351", "J1640+2224", "J2317+1439")
"""Four pulsars of NG9's 18-pulsar background set, with few TOAs (loading is the slow part)."""
N_FREQ = 10
N_POINTS = 8
GW_BOX = {"log10_A": (-16.0, -13.5), "gamma": (1.0, 6.0)}
RN_BOX = {"log10_A": (-17.0, -13.0), "gamma": (1.0, 6.0)}
"""Parameter points are drawn uniformly from these boxes (where the data say something)."""


def _enterprise_pta(psrs: list, noise: dict[str, float], tspan: float, hd: bool):
    """enterprise's likelihood: timing model, per-backend EFAC + TNEQUAD held at the noise
    file's values, power-law red noise per pulsar, a power-law common process (CURN or HD)."""
    from enterprise.signals import (
        gp_signals,
        parameter,
        selections,
        signal_base,
        utils,
        white_signals,
    )

    by_backend = selections.Selection(selections.by_backend)
    white = white_signals.MeasurementNoise(
        efac=parameter.Constant(), selection=by_backend
    ) + white_signals.TNEquadNoise(log10_tnequad=parameter.Constant(), selection=by_backend)
    low, high = RED_NOISE_PRIOR["log10_A"]
    red = gp_signals.FourierBasisGP(
        utils.powerlaw(
            log10_A=parameter.Uniform(low, high), gamma=parameter.Uniform(*RED_NOISE_PRIOR["gamma"])
        ),
        components=N_FREQ,
        Tspan=tspan,
    )
    common = utils.powerlaw(
        log10_A=parameter.Uniform(-18.0, -11.0)("gw_log10_A"),
        gamma=parameter.Uniform(0.0, 7.0)("gw_gamma"),
    )
    if hd:
        gw = gp_signals.FourierBasisCommonGP(
            common, utils.hd_orf(), components=N_FREQ, Tspan=tspan, name="gw"
        )
    else:
        gw = gp_signals.FourierBasisGP(common, components=N_FREQ, Tspan=tspan, name="gw")
    model = gp_signals.TimingModel() + white + red + gw
    pta = signal_base.PTA([model(psr) for psr in psrs])
    pta.set_default_params(noise)
    return pta


def _points(names: list[str], seed: int) -> np.ndarray:
    """``N_POINTS`` parameter vectors drawn uniformly from the boxes."""
    rng = np.random.default_rng(seed)
    rows = np.empty((N_POINTS, len(names)))
    for column, name in enumerate(names):
        box = GW_BOX if name.startswith("gw_") else RN_BOX
        key = "log10_A" if name.endswith("log10_A") else "gamma"
        rows[:, column] = rng.uniform(*box[key], N_POINTS)
    return rows


def _seconds_per_call(call, repeats: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return (time.perf_counter() - started) / repeats


def _compare(
    ours: PTALikelihood, pta, correlation: str, feathered: PTALikelihood
) -> dict[str, object]:
    """ln L by both at the same points: the spread of the difference, the time per call, and
    the largest difference between our likelihood on the PINT route and on the Feather
    files enterprise wrote."""
    names = ours.parameter_names
    missing = sorted(set(pta.param_names) ^ set(names))
    if missing:
        raise RuntimeError(f"parameter names differ between the likelihoods: {missing}")
    points = _points(names, seed=11)
    mine = ours(torch.tensor(points, dtype=torch.float64)).numpy()
    via_feather = feathered(torch.tensor(points, dtype=torch.float64)).numpy()
    theirs = np.array([pta.get_lnlikelihood(dict(zip(names, row, strict=True))) for row in points])
    diff = mine - theirs
    one = torch.tensor(points[:1], dtype=torch.float64)
    params = dict(zip(names, points[0], strict=True))
    ours_ms = 1e3 * _seconds_per_call(lambda: ours(one), 20)
    theirs_ms = 1e3 * _seconds_per_call(lambda: pta.get_lnlikelihood(params), 20)
    return {
        "model": f"{correlation}-powerlaw",
        "params": len(names),
        "points": N_POINTS,
        "ln L range over points (ours)": f"{mine.max() - mine.min():.1f}",
        "mean (ours − enterprise)": f"{diff.mean():.4f}",
        "spread max − min": f"{diff.max() - diff.min():.2e}",
        "std": f"{diff.std():.2e}",
        "Feather route: max abs(Δ ln L)": f"{np.abs(via_feather - mine).max():.2e}",
        "ours ms/call": f"{ours_ms:.2f}",
        "enterprise ms/call": f"{theirs_ms:.2f}",
    }


def section(args: argparse.Namespace) -> str:
    title = "## Our likelihood against enterprise's on real NG9 pulsars\n"
    source = os.environ.get("FLOW_NG9_DIR", "")
    try:
        import enterprise
        from enterprise.pulsar import PintPulsar
    except ImportError as error:
        return f"{title}\nNot run: enterprise-pulsar could not be imported ({error}).\n"
    if not (Path(source).is_dir() and os.environ.get("PINT_CLOCK_OVERRIDE")):
        return f"{title}\nNot run: FLOW_NG9_DIR or PINT_CLOCK_OVERRIDE not set.\n"
    names = PULSARS[:2] if args.quick else PULSARS
    folder = Path(tempfile.mkdtemp(prefix="ng9-"))
    for name in names:
        for path in Path(source).glob(f"{name}_*"):
            (folder / path.name).symlink_to(path)
    print(f"enterprise check on {len(names)} NG9 pulsars ...", flush=True)
    started = time.perf_counter()
    with pint_timing(folder, list(names)) as loaded:
        origin = min(float(p.toas.get_mjds().value.min()) for p in loaded) - 1
        ours = [to_pulsar(p, origin) for p in loaded]
        theirs = [PintPulsar(p.toas, p.model, planets=False) for p in loaded]
    load_s = time.perf_counter() - started
    tspan = max(float(p.toas.max()) for p in ours) - min(float(p.toas.min()) for p in ours)
    noise: dict[str, float] = {}
    for p in loaded:
        noise |= p.noise
    feathers = Path(tempfile.mkdtemp(prefix="ng9-feather-"))
    for psr in theirs:
        # The writer wants Sun and planet positions, which no likelihood here uses and our
        # TOAs (read without planets) lack: zeros stand in.
        psr._sunssb = np.zeros((len(psr.toas), 6))
        psr._planetssb = np.zeros((len(psr.toas), 9, 6))
        psr.to_feather(str(feathers / f"ng9-{psr.name}.feather"), noisedict=noise)
    from_feather = read_feather_folder(feathers, list(names)).pulsars
    rows = []
    for correlation in ("curn", "hd"):
        mine = PTALikelihood(ours, n_freq=N_FREQ, correlation=correlation, tspan=tspan)
        pta = _enterprise_pta(theirs, noise, tspan, hd=correlation == "hd")
        feathered = PTALikelihood(from_feather, n_freq=N_FREQ, correlation=correlation, tspan=tspan)
        rows.append(_compare(mine, pta, correlation, feathered))
    n_toa = sum(len(p.toas) for p in ours)
    return "\n".join(
        [
            title,
            f"Pulsars {', '.join(names)} ({n_toa} TOAs, {tspan / 3.15576e7:.1f} yr) from the"
            " NANOGrav 9-yr release shipped in enterprise-pulsar 3.5.0's wheel, read once with"
            f" PINT offline (`flow_physics.data.partim.pint_timing`, {load_s:.0f} s) and given"
            f" to both likelihoods: enterprise {enterprise.__version__} (`PintPulsar`,"
            " `TimingModel` + per-backend `MeasurementNoise` EFAC and `TNEquadNoise` from the"
            f" NG9 noise files + `FourierBasisGP` power-law red noise + a power-law common"
            " process, `FourierBasisGP` for CURN, `FourierBasisCommonGP` with `hd_orf` for HD)"
            " and ours (`PTALikelihood`, the same white noise folded into the TOA errors by the"
            f" reader). {N_FREQ} frequencies k/T, one span T for both; ECORR left out on both"
            f" sides. {N_POINTS} points drawn uniformly (red noise log10_A U{RN_BOX['log10_A']},"
            f" gamma U{RN_BOX['gamma']}; common log10_A U{GW_BOX['log10_A']}, gamma"
            f" U{GW_BOX['gamma']}); one thread. A constant difference is the two timing-model"
            " conventions (enterprise's wide finite prior on the design-matrix coefficients,"
            " our exact marginalisation on an orthonormal basis); its spread across points is"
            " what would show a disagreement. Last column: enterprise writes the same pulsars"
            " as Feather files (`to_feather`, with the noise dictionary) and"
            " `flow_physics.data.feather.read_feather_folder` reads them back; our likelihood on"
            " those against our likelihood on the PINT route.\n",
            markdown_table(rows),
        ]
    )
