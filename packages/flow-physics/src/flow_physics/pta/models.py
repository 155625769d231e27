"""Named PTA models: a correlation and a source spectrum, with their likelihood and prior box.

A model name is ``<correlation>-<source>``: ``curn-powerlaw``, ``hd-powerlaw``, ``hd-smbhb``,
``hd-igw``, ``hd-sigw-delta``, ``hd-smbhb+igw`` ... (sources:
:data:`~flow_physics.pta.sources.SOURCE_NAMES`). On a timing array the likelihood is
:class:`~flow_physics.pta.likelihood.PTALikelihood` with a power-law red noise per pulsar
(prior ``log10_A ~ U(-20, -11)``, ``gamma ~ U(0, 7)``) and the source as the common process;
on ceffyl densities it is the factorised
:class:`~flow_physics.data.ceffyl.CeffylLikelihood`, interpolated linearly between grid points
(a flow is trained on its gradient, which the nearest-bin lookup lacks), whose correlation is
the one the densities were made with (the prefix is then only a label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flow_core.errors import ConfigError
from flow_physics.data.ceffyl import CeffylDensities, CeffylLikelihood
from flow_physics.data.pulsar import Pulsar
from flow_physics.pta.likelihood import PTALikelihood
from flow_physics.pta.sources import prior_box, source_model
from flow_physics.pta.spectra import SpectralModel
from flow_physics.pta.variational import BoxPosterior

__all__ = ["RED_NOISE_PRIOR", "ModelSpec", "build_posterior", "parse_models"]

RED_NOISE_PRIOR = {"log10_A": (-20.0, -11.0), "gamma": (0.0, 7.0)}
"""Uniform prior of each pulsar's red-noise power law."""

CORRELATIONS = ("curn", "hd")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the comparison: its name, correlation and source spectrum."""

    name: str
    correlation: str
    source: SpectralModel


def parse_models(text: str) -> list[ModelSpec]:
    """Models from a comma-separated list of names; a bad name raises, listing the forms."""
    specs: list[ModelSpec] = []
    for raw in text.split(","):
        name = raw.strip()
        correlation, _, source = name.partition("-")
        if correlation not in CORRELATIONS or not source:
            raise ConfigError(
                f"models: {name!r} is not <correlation>-<source>; accepted correlations: "
                f"{', '.join(CORRELATIONS)} (e.g. hd-powerlaw, curn-smbhb)"
            )
        specs.append(ModelSpec(name, correlation, source_model(source)))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"models: {names} repeat a name; accepted: each model once")
    return specs


def build_posterior(
    spec: ModelSpec,
    pulsars: Sequence[Pulsar] | None = None,
    densities: CeffylDensities | None = None,
    n_freq: int = 5,
    tspan: float | None = None,
) -> BoxPosterior:
    """The model's ``ln L`` and prior box on a timing array or on ceffyl densities."""
    gw_box = {f"gw_{key}": value for key, value in prior_box(spec.source).items()}
    if densities is not None:
        ceffyl = CeffylLikelihood(densities, spec.source, tspan, interpolation="linear")
        names = [f"gw_{name}" for name in spec.source.parameter_names]
        return BoxPosterior(ceffyl, names, gw_box)
    if not pulsars:
        raise ConfigError("build_posterior: needs pulsars or ceffyl densities")
    likelihood = PTALikelihood(
        pulsars,
        n_freq=n_freq,
        correlation="hd" if spec.correlation == "hd" else "curn",
        spectrum=spec.source,
        tspan=tspan,
    )
    box = {
        f"{p.name}_red_noise_{key}": value
        for p in pulsars
        for key, value in RED_NOISE_PRIOR.items()
    }
    return BoxPosterior(likelihood, likelihood.parameter_names, box | gw_box)
