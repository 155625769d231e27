"""``physics.pta``: Bayesian model comparison of gravitational-wave background sources on a
pulsar timing array, with a normalizing flow per model (Lai & Li 2025, arXiv 2504.04211).

For each model (``<correlation>-<source>``, see :mod:`flow_physics.pta.models`) a neural-spline
flow (the ``flow`` component, default ``physics-nsf``) is trained through flow-core's loop by
reverse-KL variational inference on ``likelihood x prior``
(:func:`~flow_physics.pta.variational.reverse_kl_objective`), one training stage per model.
The evidence is then estimated twice: importance sampling with the flow as proposal (with its
standard error and effective sample size) and the learned harmonic mean on posterior draws
from flow-preconditioned Metropolis chains (:mod:`flow_physics.pta.neutra`), which are also
the draws the figures show. Bayes factors against ``reference`` (errors in quadrature) rank
the models.

Data: the seeded synthetic array (default; substitute data with a recorded truth) or, with
``--set data=DIR``, a folder of ``.par``/``.tim`` files (real pulsars read with PINT offline by
:func:`~flow_physics.data.partim.read_partim`) or of Feather pulsar files
(:func:`~flow_physics.data.feather.read_feather_folder`), where ``pulsars=N`` keeps the N
best-timed and ``pulsar_names=A,B`` names them; or a ceffyl density directory (the
factorised free-spectrum likelihood).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from flow_core.errors import ConfigError
from flow_core.options import component, option, setting, used_if
from flow_core.training import TrainSettings, train, training
from flow_physics.data.ceffyl import read_ceffyl
from flow_physics.data.feather import is_feather_folder, read_feather_folder
from flow_physics.data.partim import is_partim_folder, read_partim
from flow_physics.data.pulsar import Pulsar
from flow_physics.data.synthetic import YEAR, SyntheticConfig, make_array
from flow_physics.figures import corner, strain_spectrum
from flow_physics.networks.spline import SplineFlow
from flow_physics.pta.evidence import ln_bayes_factor
from flow_physics.pta.models import ModelSpec, build_posterior, parse_models
from flow_physics.pta.spectra import powerlaw_hc, psd_to_hc
from flow_physics.pta.variational import PosteriorDraws, flow_evidence, reverse_kl_objective

if TYPE_CHECKING:
    from flow_core.runner import RunContext

__all__ = ["PTAConfig", "PTATask"]

DEFAULT_MODELS = "curn-powerlaw,hd-powerlaw,hd-smbhb,hd-igw,hd-sigw-delta,hd-smbhb+igw"
AGREEMENT_SIGMAS = 3.0
"""The two evidence estimators of a model agree when they differ by at most this many combined
standard errors; where they do not, the flow has not converged on that posterior."""


def _synthetic(config: PTAConfig) -> bool:
    return config.data == ""


def _pulsar_folder(path: str) -> bool:
    """Whether ``data`` names a folder of real pulsars (par/tim or Feather files)."""
    return path != "" and (is_partim_folder(path) or is_feather_folder(path))


SYNTHETIC = used_if("data == ''", _synthetic)
TIMING_ARRAY = used_if(
    "data == '' or data is a pulsar folder",
    lambda config: config.data == "" or _pulsar_folder(config.data),
)
PULSAR_FOLDER = used_if("data is a pulsar folder", lambda config: _pulsar_folder(config.data))


@dataclass(frozen=True)
class PTAConfig:
    """Data, models, flow and evidence settings; the training section trains every model."""

    flow: str = component("flow", "physics-nsf")
    transforms: int = option("flow", "transforms", 3)
    hidden: int = option("flow", "hidden", 64)
    data: str = ""
    pulsars: int = setting(10, when=TIMING_ARRAY)
    pulsar_names: str = setting("", when=PULSAR_FOLDER)
    years: float = setting(12.0, when=SYNTHETIC)
    cadence_days: float = setting(30.0, when=SYNTHETIC)
    gw_log10_A: float = setting(-14.0, when=SYNTHETIC)
    n_freq: int = setting(5, when=TIMING_ARRAY)
    models: str = DEFAULT_MODELS
    reference: str = "hd-smbhb"
    is_samples: int = 4096
    lhm_temperature: float = 0.8
    chains: int = 256
    chain_steps: int = 50
    burn_in: int = 100
    train: TrainSettings = training(
        steps=1000, batch_size=64, lr=3e-3, lr_schedule="cosine", log_every=50, checkpoint_every=250
    )

    def __post_init__(self) -> None:
        lows = (("pulsars", 2), ("n_freq", 1), ("is_samples", 64), ("chains", 20))
        for name, low in (*lows, ("chain_steps", 2), ("burn_in", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)}; accepted: >= {low}")
        if not 0.0 < self.lhm_temperature < 1.0:
            raise ConfigError(f"lhm_temperature={self.lhm_temperature}; accepted: (0, 1)")
        names = [spec.name for spec in parse_models(self.models)]
        if self.reference not in names:
            raise ConfigError(f"reference={self.reference!r}; accepted: one of models {names}")


@dataclass(frozen=True)
class _Fitted:
    """One model's flow results and timings."""

    spec: ModelSpec
    names: list[str]
    draws: PosteriorDraws
    train_seconds: float
    evidence_seconds: float


def _latents(dim: int, batch_size: int) -> Callable[[torch.Generator], dict[str, torch.Tensor]]:
    """``next_batch`` for the training loop: standard-normal latents the flow maps to draws."""

    def next_batch(generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(batch_size, dim, generator=generator)}

    return next_batch


def _read_pulsars(config: PTAConfig) -> tuple[list[Pulsar], float, list[str]]:
    """The pulsars of the folder ``config.data`` (Feather files, else par/tim files): those
    named in ``pulsar_names``, else the ``pulsars`` best-timed (all when there are fewer);
    their span; notes."""
    names = [n.strip() for n in config.pulsar_names.split(",") if n.strip()]
    feather = is_feather_folder(config.data)
    count = min(
        config.pulsars, len(list(Path(config.data).glob("*.feather" if feather else "*.par")))
    )
    reader = read_feather_folder if feather else read_partim
    array = reader(config.data, names or count)
    return array.pulsars, array.tspan, array.notes


class PTATask:
    """Train a flow per model, estimate evidences, rank the models; see the module docstring."""

    Config: ClassVar[type[PTAConfig]] = PTAConfig

    def run(self, config: PTAConfig, ctx: RunContext) -> dict[str, float]:
        specs = parse_models(config.models)
        densities, truth = None, None
        notes: list[str] = []
        pulsars: list[Pulsar] | None = None
        tspan: float | None = None
        if _pulsar_folder(config.data):
            pulsars, tspan, notes = _read_pulsars(config)
            freqs = np.arange(1, config.n_freq + 1) / tspan
        elif config.data:
            densities = read_ceffyl(config.data)
            freqs = densities.freqs
        else:
            synthetic = SyntheticConfig(
                n_pulsars=config.pulsars,
                years=config.years,
                cadence_days=config.cadence_days,
                gw_log10_A=config.gw_log10_A,
            )
            array = make_array(synthetic, seed=ctx.seed)
            pulsars, tspan, truth = array.pulsars, array.tspan, array.truth
            freqs = np.arange(1, config.n_freq + 1) / (config.years * YEAR)
        fitted: list[_Fitted] = []
        for index, spec in enumerate(specs):
            posterior = build_posterior(spec, pulsars, densities, config.n_freq, tspan)
            posterior.to(ctx.device)
            flow = ctx.component("flow", dim=posterior.flow_dim)
            next_batch = _latents(posterior.flow_dim, config.train.batch_size)
            started = time.perf_counter()
            result = train(
                ctx,
                flow,
                reverse_kl_objective(posterior),
                next_batch,
                config.train,
                stage=spec.name,
            )
            trained = result.eval_model.eval()
            if not isinstance(trained, SplineFlow):
                raise ConfigError(
                    f"flow={config.flow!r} lacks sample_and_log_prob; use physics-nsf"
                )
            middle = time.perf_counter()
            draws = flow_evidence(
                trained,
                posterior,
                config.is_samples,
                seed=ctx.seed * 7919 + index,
                temperature=config.lhm_temperature,
                chains=config.chains,
                chain_steps=config.chain_steps,
                burn_in=config.burn_in,
            )
            ended = time.perf_counter()
            fitted.append(_Fitted(spec, posterior.names, draws, middle - started, ended - middle))
            np.savez_compressed(
                ctx.out_dir / f"posterior-{spec.name}.npz",
                samples=draws.samples.cpu().numpy(),
                names=np.array(posterior.names),
            )
        metrics = _metrics(fitted, config.reference, truth)
        if ctx.is_main:
            described = _describe(config, ctx.seed, pulsars, tspan, notes)
            _report(
                ctx, config, described, fitted, metrics, np.asarray(freqs, dtype=np.float64), truth
            )
        return metrics

    def evaluate(self, config: PTAConfig, ctx: RunContext) -> dict[str, float]:
        """``flow eval``: the trained flows are loaded, the evidences estimated again."""
        return self.run(config, ctx)


def _metrics(
    fitted: list[_Fitted], reference: str, truth: dict[str, float] | None
) -> dict[str, float]:
    """Per model: ln Z by both estimators with errors, ESS, ln B against the reference,
    rank, seconds; and whether the injected background lies inside the 90% intervals."""
    ref = next(f for f in fitted if f.spec.name == reference).draws.importance
    order = sorted(fitted, key=lambda f: -f.draws.importance.ln_z)
    metrics: dict[str, float] = {}
    for item in fitted:
        name, draws = item.spec.name, item.draws
        ln_b, ln_b_err = ln_bayes_factor(draws.importance, ref)
        gap = abs(draws.importance.ln_z - draws.harmonic.ln_z)
        allowed = AGREEMENT_SIGMAS * float(
            np.hypot(draws.importance.ln_z_err, draws.harmonic.ln_z_err)
        )
        metrics |= {
            f"ln_z/{name}": draws.importance.ln_z,
            f"ln_z_err/{name}": draws.importance.ln_z_err,
            f"ess/{name}": draws.importance.ess,
            f"ln_z_lhm/{name}": draws.harmonic.ln_z,
            f"ln_z_lhm_err/{name}": draws.harmonic.ln_z_err,
            f"ln_bf/{name}": ln_b,
            f"ln_bf_err/{name}": ln_b_err,
            f"estimators_agree/{name}": float(gap <= allowed),
            f"rank/{name}": float(order.index(item) + 1),
            f"train_seconds/{name}": item.train_seconds,
            f"evidence_seconds/{name}": item.evidence_seconds,
            f"acceptance/{name}": draws.acceptance,
        }
        if truth is not None:
            for column, key in enumerate(item.names):
                if key.startswith("gw_") and key in truth:
                    low, high = np.percentile(draws.samples[:, column].cpu().numpy(), [5, 95])
                    metrics[f"truth_in_90/{name}/{key}"] = float(low <= truth[key] <= high)
    metrics["seconds_total"] = sum(f.train_seconds + f.evidence_seconds for f in fitted)
    return metrics


def _describe(
    config: PTAConfig,
    seed: int,
    pulsars: list[Pulsar] | None,
    tspan: float | None,
    notes: list[str],
) -> str:
    """The report's words for the data."""
    if not config.data:
        return (
            f"a synthetic {config.pulsars}-pulsar array over {config.years:g} yr (substitute "
            f"data, seed {seed}; injected HD power law log10_A={config.gw_log10_A}, gamma=13/3)"
        )
    if pulsars is None or tspan is None:
        return f"ceffyl densities from {config.data}"
    names = ", ".join(p.name for p in pulsars)
    extra = "".join(f"; {note}" for note in notes)
    return (
        f"{len(pulsars)} pulsars read from the folder {config.data} ({names}; "
        f"{sum(len(p.toas) for p in pulsars)} TOAs over {tspan / YEAR:.1f} yr, "
        f"{config.n_freq} frequencies{extra})"
    )


def _report(
    ctx: RunContext,
    config: PTAConfig,
    data: str,
    fitted: list[_Fitted],
    metrics: dict[str, float],
    freqs: np.ndarray,
    truth: dict[str, float] | None,
) -> None:
    ctx.report.add_text(
        f"Model comparison on {data}: one neural-spline flow per model trained by reverse KL "
        f"for {config.train.steps} steps; evidence by importance sampling "
        f"({config.is_samples} flow draws) and by the learned harmonic mean "
        f"(T={config.lhm_temperature}) on {config.chains} flow-preconditioned Metropolis chains "
        f"({config.burn_in} burn-in and {config.chain_steps} kept steps each). Bayes factors "
        f"against {config.reference}."
    )
    rows = []
    for item in sorted(fitted, key=lambda f: metrics[f"rank/{f.spec.name}"]):
        name = item.spec.name
        rows.append(
            {
                "rank": int(metrics[f"rank/{name}"]),
                "model": name,
                "params": len(item.names),
                "ln Z (IS)": f"{metrics[f'ln_z/{name}']:.2f} ± {metrics[f'ln_z_err/{name}']:.2f}",
                "ESS": round(metrics[f"ess/{name}"]),
                "ln Z (LHM)": (
                    f"{metrics[f'ln_z_lhm/{name}']:.2f} ± {metrics[f'ln_z_lhm_err/{name}']:.2f}"
                ),
                f"ln B vs {config.reference}": (
                    f"{metrics[f'ln_bf/{name}']:.2f} ± {metrics[f'ln_bf_err/{name}']:.2f}"
                ),
                "IS ≈ LHM": (
                    "yes"
                    if metrics[f"estimators_agree/{name}"]
                    else f"no (Δ {metrics[f'ln_z/{name}'] - metrics[f'ln_z_lhm/{name}']:+.1f})"
                ),
                "chain acceptance": round(metrics[f"acceptance/{name}"], 2),
                "train s": round(item.train_seconds, 1),
                "evidence s": round(item.evidence_seconds, 1),
            }
        )
    ctx.report.add_table("Bayes factors (flow route)", rows)
    unconverged = [f.spec.name for f in fitted if not metrics[f"estimators_agree/{f.spec.name}"]]
    if unconverged:
        ctx.report.add_text(
            f"**Not converged:** for {', '.join(unconverged)} the importance-sampling and "
            f"learned-harmonic-mean evidences differ by more than {AGREEMENT_SIGMAS:g} combined "
            "standard errors, so the flow is not yet close to that posterior and its ln Z and "
            "Bayes factor are not to be trusted. Train longer (a new run with "
            "`--set train.steps=...`) or raise `is_samples`."
        )
    _figures(ctx, fitted, freqs, truth)


def _figures(
    ctx: RunContext, fitted: list[_Fitted], freqs: np.ndarray, truth: dict[str, float] | None
) -> None:
    """Corner plot of the background parameters of the power-law models, and the strain
    spectrum of every model."""
    gw = ["gw_log10_A", "gw_gamma"]
    sets = {
        f.spec.name: f.draws.samples[:, [f.names.index(k) for k in gw]].cpu().numpy()
        for f in fitted
        if all(k in f.names for k in gw)
    }
    if sets:
        path = ctx.report.add_figure(
            "corner.png", "posterior marginals of the background (flow-preconditioned chains)"
        )
        corner(path, gw, sets, truth)
    f = torch.tensor(freqs, dtype=torch.float64)
    bands = {}
    for item in fitted:
        columns = [i for i, key in enumerate(item.names) if key.startswith("gw_")]
        params = item.draws.samples[:, columns].cpu()
        bands[item.spec.name] = psd_to_hc(f, item.spec.source.psd(f, params)).numpy()
    injected = None
    if truth is not None:
        injected = powerlaw_hc(f, truth["gw_log10_A"], truth["gw_gamma"])[0].numpy()
    path = ctx.report.add_figure(
        "spectrum.png", "characteristic strain: median and 90% band per model, injected dashed"
    )
    strain_spectrum(path, freqs, bands, injected)
