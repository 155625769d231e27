"""Autoregressive rollouts of a one-step predictor and their scores against the truth.

Scores follow the evaluation of IFactFormer-m (Yang et al. 2024, arXiv:2412.18840) on the
substitute flows: the relative L2 error ‖û_t − u_t‖/‖u_t‖ against the horizon t, the horizon
before it first exceeds a threshold (divergence), and the statistics of the rolled-out fields
(E(k), mean, rms and Reynolds-stress profiles, see :mod:`.diagnostics`) against the truth's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from flow_physics.turbulence.diagnostics import energy_spectrum, profiles

__all__ = [
    "Rollout",
    "relative_l2",
    "rollout",
    "score_rollout",
]


def relative_l2(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """‖prediction − truth‖ / ‖truth‖ per sample (over every axis but the first)."""
    dims = tuple(range(1, truth.dim()))
    norm = torch.linalg.vector_norm
    ratio: torch.Tensor = norm(prediction - truth, dim=dims) / norm(truth, dim=dims)
    return ratio


@dataclass
class Rollout:
    """Predicted fields ``[N, steps + 1, C, *grid]`` (frame 0 is the start) and the mean
    seconds of one model step for the whole batch."""

    fields: torch.Tensor
    seconds_per_step: float


@torch.no_grad()
def rollout(model: nn.Module, start: torch.Tensor, steps: int, scale: float) -> Rollout:
    """Apply ``model`` (which maps fields divided by ``scale``) ``steps`` times from
    ``start`` ``[N, C, *grid]``; non-finite values are kept so that divergence shows."""
    model.eval()
    state = start / scale
    frames = [state]
    started = time.perf_counter()
    for _ in range(steps):
        state = model(state)
        frames.append(state)
    seconds = (time.perf_counter() - started) / max(steps, 1)
    return Rollout(torch.stack(frames, dim=1) * scale, seconds)


def _log_spectrum(fields: torch.Tensor) -> torch.Tensor:
    flat = fields.flatten(0, 1).double()
    return torch.log10(energy_spectrum(flat).mean(0)[1:].clamp_min(1e-30))


def score_rollout(
    prediction: torch.Tensor, truth: torch.Tensor, divergence_error: float
) -> dict[str, object]:
    """Scores of a rollout ``[N, T + 1, C, *grid]`` against the truth of the same shape:
    ``error`` (mean relative L2 per step 1..T), ``horizon`` (steps before the error first
    exceeds ``divergence_error``; T when it never does), ``spectrum``/``truth_spectrum``
    (log10 E(k) over the rollout, k ≥ 1), ``spectrum_error`` (mean |Δ log10 E|), ``profiles``
    and ``truth_profiles``, and ``profile_error`` (relative L2 of each profile)."""
    steps = truth.shape[1] - 1
    errors = torch.stack(
        [
            relative_l2(prediction[:, t].double(), truth[:, t].double()).mean()
            for t in range(1, steps + 1)
        ]
    )
    errors = torch.nan_to_num(errors, nan=float("inf"))
    above = (errors > divergence_error).nonzero()
    horizon = int(above[0, 0]) if len(above) else steps
    finite = torch.isfinite(prediction).all()
    spectrum = _log_spectrum(prediction[:, 1:]) if finite else torch.full((1,), float("nan"))
    truth_spectrum = _log_spectrum(truth[:, 1:])
    truth_profiles = {
        k: v.float() for k, v in profiles(truth[:, 1:].flatten(0, 1).double()).items()
    }
    if finite:
        predicted_profiles = {
            k: v.float() for k, v in profiles(prediction[:, 1:].flatten(0, 1).double()).items()
        }
    else:
        predicted_profiles = {
            k: torch.full_like(v, float("nan")) for k, v in truth_profiles.items()
        }
    profile_error = {
        k: float(torch.linalg.vector_norm(predicted_profiles[k] - v) / torch.linalg.vector_norm(v))
        for k, v in truth_profiles.items()
    }
    spectrum_error = float((spectrum - truth_spectrum).abs().mean()) if finite else float("nan")
    return {
        "error": errors,
        "horizon": horizon,
        "spectrum": spectrum,
        "truth_spectrum": truth_spectrum,
        "spectrum_error": spectrum_error,
        "profiles": predicted_profiles,
        "truth_profiles": truth_profiles,
        "profile_error": profile_error,
    }
