"""Densities of training times t ∈ (0, 1), in the project convention (t = 0 noise, t = 1 data).

Where a paper states its density on τ = 1 − t (noise at τ = 1), the density on t is the mirror
image, p(t) = p^τ(1 − t); each entry below is already converted.

``"uniform"``
    t ~ U(0, 1) (Lipman et al. 2023; Liu et al. 2022).
``"logit-normal"`` (``mean`` = 0, ``std`` = 1)
    t = sigmoid(mean + std·n), n ~ N(0, 1) (Esser et al. 2024, SD3). A density stated on τ as
    logit-normal(μ, s) is logit-normal(−μ, s) on t: MeanFlow's logit-normal(−0.4, 1) on τ
    (Geng et al. 2025) is ``logit-normal:mean=0.4`` here.
``"u-shaped"`` (``a`` = 4)
    p(t) ∝ cosh(a·(t − ½)) on [0, 1], the even mixture of densities ∝ e^{a·t} and
    ∝ e^{a·(1 − t)}, then mapped affinely onto [10⁻⁵, 1 − 10⁻⁵] as in the 2-RF++ reference
    code (Lee et al. 2024, "Improving the training of rectified flows"). It is symmetric about
    ½, so it reads the same on τ. Drawn by inverting its CDF,
    F(t) = ½ + sinh(a·(t − ½)) / (2·sinh(a/2)), i.e. t = ½ + asinh((2u − 1)·sinh(a/2))/a.
``"shifted"`` (``shift`` = 3)
    u ~ U(0, 1) pushed through t = u / (s − (s − 1)·u): SD3's resolution shift
    τ′ = sτ/(1 + (s − 1)τ) (Esser et al. 2024) written on t = 1 − τ. With s > 1 more times fall
    near the noise end t = 0.

Objectives take a density as a *spec* string, ``"name"`` or ``"name:key=value,key=value"``
(for example ``"logit-normal:mean=0.4,std=1.0"``), which :class:`TimeDensity` parses and
checks when the objective is constructed, so a bad value fails before any training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor

from flow_core.errors import ConfigError

__all__ = ["TIME_DENSITIES", "TimeDensity", "sample_time"]

TIME_DENSITIES: tuple[str, ...] = ("uniform", "logit-normal", "u-shaped", "shifted")
"""The names :func:`sample_time` accepts."""

_DEFAULTS: dict[str, dict[str, float]] = {
    "uniform": {},
    "logit-normal": {"mean": 0.0, "std": 1.0},
    "u-shaped": {"a": 4.0},
    "shifted": {"shift": 3.0},
}
_U_SHAPED_MARGIN = 1e-5


def _check(name: str, params: Mapping[str, float]) -> dict[str, float]:
    if name not in _DEFAULTS:
        raise ConfigError(
            f"unknown time density {name!r}; expected one of: {', '.join(TIME_DENSITIES)}"
        )
    defaults = _DEFAULTS[name]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise ConfigError(
            f"time density {name!r} got unknown parameter(s) {unknown}; accepted: {accepted}"
        )
    values = {**defaults, **{k: float(v) for k, v in params.items()}}
    if not all(math.isfinite(v) for v in values.values()):
        raise ConfigError(f"time density {name!r}: parameters must be finite, got {values}")
    if name == "logit-normal" and values["std"] <= 0:
        raise ConfigError(f"time density 'logit-normal': std must be > 0, got {values['std']}")
    if name == "u-shaped" and values["a"] <= 0:
        raise ConfigError(f"time density 'u-shaped': a must be > 0, got {values['a']}")
    if name == "shifted" and values["shift"] <= 0:
        raise ConfigError(f"time density 'shifted': shift must be > 0, got {values['shift']}")
    return values


def sample_time(
    name: str,
    n: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
    **params: float,
) -> Tensor:
    """Draw ``n`` training times of shape ``(n,)`` from the density ``name``.

    Args:
        name: one of :data:`TIME_DENSITIES` (see the module docstring for each density).
        n: number of times.
        device, dtype: of the result (torch's defaults when ``None``).
        generator: optional random generator; torch's global one when ``None``.
        **params: the density's parameters (``mean``/``std``, ``a``, ``shift``).

    Raises:
        ConfigError: an unknown density or parameter, or a parameter out of range.
    """
    values = _check(name, params)
    dtype = dtype or torch.get_default_dtype()
    if name == "logit-normal":
        normal = torch.randn(n, device=device, dtype=dtype, generator=generator)
        return torch.sigmoid(values["mean"] + values["std"] * normal)
    u = torch.rand(n, device=device, dtype=dtype, generator=generator)
    if name == "u-shaped":
        a = values["a"]
        t = 0.5 + torch.asinh((2 * u - 1) * math.sinh(a / 2)) / a
        return _U_SHAPED_MARGIN + (1 - 2 * _U_SHAPED_MARGIN) * t
    if name == "shifted":
        s = values["shift"]
        return u / (s - (s - 1) * u)
    return u


class TimeDensity:
    """A checked time density, built from a name and parameters or from a spec string.

    ``TimeDensity("logit-normal", mean=0.4)`` and
    ``TimeDensity.parse("logit-normal:mean=0.4")`` are the same density; calling it draws
    times with :func:`sample_time`. A positive mean moves the mass toward the data (t = 1):

    >>> import torch
    >>> density = TimeDensity.parse("logit-normal:mean=0.4")
    >>> density
    TimeDensity(logit-normal:mean=0.4,std=1)
    >>> t = density(10_000, generator=torch.Generator().manual_seed(0))
    >>> bool(0 < t.min() and t.max() < 1), round(t.median().item(), 1)
    (True, 0.6)
    """

    def __init__(self, name: str = "uniform", **params: float) -> None:
        self.params = _check(name, params)
        self.name = name

    @classmethod
    def parse(cls, spec: str) -> TimeDensity:
        """Parse ``"name"`` or ``"name:key=value,key=value"``.

        Raises:
            ConfigError: the spec is malformed, or names an unknown density or parameter.
        """
        name, _, rest = spec.strip().partition(":")
        params: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in rest.split(","))):
            key, eq, raw = item.partition("=")
            try:
                if not eq:
                    raise ValueError
                params[key.strip()] = float(raw)
            except ValueError:
                raise ConfigError(
                    f"time density spec {spec!r}: expected 'name' or 'name:key=value,...' "
                    f"with numeric values, e.g. 'logit-normal:mean=0.4,std=1.0'"
                ) from None
        return cls(name.strip(), **params)

    def __repr__(self) -> str:
        args = ",".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"TimeDensity({self.name}{':' + args if args else ''})"

    def __call__(
        self,
        n: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw ``n`` times of shape ``(n,)``."""
        return sample_time(
            self.name, n, device=device, dtype=dtype, generator=generator, **self.params
        )
