"""Classifier-free guidance (CFG) for a conditional velocity field.

Ho & Salimans 2022, "Classifier-Free Diffusion Guidance"; for flows, Zheng et al. 2023,
"Guided Flows for Generative Modeling and Decision Making". One network is trained with the
condition c and, part of the time, the null condition ∅; sampling uses

    v̂(x, t, c) = v_u + ω·(v_c − v_u) = v_c + w·(v_c − v_u),     w = ω − 1,

with v_c = v(x, t, c) and v_u = v(x, t, ∅). Two conventions name the same rule:

- the *scale* ω (Ho & Salimans' "1 + w", diffusers' ``guidance_scale``): ω = 1 is the
  conditional model, ω = 0 the unconditional one, ω > 1 guides;
- the *guidance weight* w = ω − 1 (Ho & Salimans' w): w = 0 is the conditional model.

The combination can be made on any prediction of an affine path: data x̂1, noise x̂0 or
score s. Each is an affine function a(x_t, t) + b(x_t, t)·v of the velocity with the same
coefficients for v_c and v_u, so the guided prediction converts back to exactly the velocity
above ("Principles of Diffusion Models", Lai et al. 2025: ŝ = s_u + ω(s_c − s_u) ⇔
v̂ = v_u + ω(v_c − v_u)). Choosing a parameterisation other than the velocity changes only the
rounding, and adds the conversions' singularities at the endpoints (on the linear path the
data form divides by 1 − t, the noise form by t).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.paths.affine import PREDICTION_KINDS, AffinePath
from flow_core.paths.linear import LinearPath

__all__ = ["ClassifierFreeGuidance"]


class ClassifierFreeGuidance(nn.Module):
    """A velocity field ``v̂(x, t, cond) = v_u + scale·(v_c − v_u)`` wrapping a conditional model.

    Give exactly one of ``scale`` (ω) and ``guidance_weight`` (w = ω − 1); see the module
    docstring. Called with ``cond=None`` it returns ``model(x, t, None)`` unguided. Each call
    evaluates the model on both conditions: once on the doubled batch when the null
    condition is a tensor or label (``null_cond`` given), twice otherwise. A sampler's ``nfe``
    counts calls of this wrapper, so the network runs on twice as many samples.

    Args:
        model: a velocity field ``model(x, t, cond)``.
        scale: the CFG scale ω (1 reproduces the conditional model).
        null_cond: the null condition ∅: ``None`` to call the model with ``cond=None`` (how
            :class:`flow_core.models.mlp.MLPVelocity` and most models here spell ∅), an int
            label (broadcast like ``cond``, e.g. ``model.null_label``), or a tensor, either
            batch-shaped like ``cond`` or one condition of shape ``cond.shape[1:]``.
        parameterization: where to combine: ``"velocity"``, ``"data"``, ``"noise"`` or
            ``"score"``.
        path: the affine path used to convert (default: the linear path).
        guidance_weight: the weight w = ω − 1 (0 reproduces the conditional model).

    Raises:
        ConfigError: both or neither of ``scale`` and ``guidance_weight`` are given, either is
            not finite, or ``parameterization`` is unknown.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: float | None = None,
        null_cond: Tensor | int | None = None,
        parameterization: str = "velocity",
        path: AffinePath | None = None,
        *,
        guidance_weight: float | None = None,
    ) -> None:
        super().__init__()
        if (scale is None) == (guidance_weight is None):
            raise ConfigError(
                "guidance: give exactly one of scale (ω; 1 = conditional) and guidance_weight "
                f"(w = ω − 1; 0 = conditional), got scale={scale}, "
                f"guidance_weight={guidance_weight}"
            )
        omega = float(scale) if scale is not None else 1.0 + float(guidance_weight or 0.0)
        if not math.isfinite(omega):
            raise ConfigError(f"guidance: the scale must be finite, got {omega}")
        if parameterization not in PREDICTION_KINDS:
            raise ConfigError(
                f"guidance: unknown parameterization {parameterization!r}; expected one of: "
                f"{', '.join(PREDICTION_KINDS)}"
            )
        self.model = model
        self.scale = omega
        self.null_cond = null_cond
        self.parameterization = parameterization
        self.path = path if path is not None else LinearPath()

    @property
    def guidance_weight(self) -> float:
        """w = ω − 1."""
        return self.scale - 1.0

    def _null_like(self, cond: Tensor) -> Tensor:
        null = torch.as_tensor(self.null_cond, dtype=cond.dtype, device=cond.device)
        return null.expand_as(cond)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        if cond is None:
            unguided: Tensor = self.model(x, t, None)
            return unguided
        if self.null_cond is None:
            v_c: Tensor = self.model(x, t, cond)
            v_u: Tensor = self.model(x, t, None)
        else:
            both = self.model(
                torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, self._null_like(cond)])
            )
            v_c, v_u = both.chunk(2)
        kind = self.parameterization
        if kind == "velocity":
            return v_u + self.scale * (v_c - v_u)
        p_c = self.path.convert(v_c, x, t, "velocity", kind)
        p_u = self.path.convert(v_u, x, t, "velocity", kind)
        return self.path.convert(p_u + self.scale * (p_c - p_u), x, t, kind, "velocity")
