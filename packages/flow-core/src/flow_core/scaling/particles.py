"""Particle sampling: sequential Monte Carlo over the flow's SDE, steered by a reward.

The SMC baseline of Kim, Yoon, Hwang & Sung 2025 (arXiv 2503.19385), in the form of twisted SMC /
Feynman–Kac steering (Wu et al. 2023, "Practical and Asymptotically Exact Conditional Sampling in
Diffusion Models"; Singhal et al. 2025, "A General Framework for Inference-Time Scaling and Steering
of Diffusion Models"), in the project convention. K particles start at x0 ~ N(0, I) and follow the
Euler–Maruyama chain of :class:`flow_core.samplers.sde.EulerMaruyama` on the grid t_k = k/N. At step
k each particle's velocity v_k gives its Tweedie estimate x̂1_k (which costs nothing more)
and the potential φ_k = r(x̂1_k)/T, T the temperature. Each particle carries a log-weight that
grows by the increment φ_k − φ_{k−1} (φ_{−1} = 0); every ``resample_every`` steps the particles
are resampled in proportion to exp(log-weight) and the weights reset. The increments telescope,
so the population targets the tilted distribution

    p_T(x1) ∝ p(x1)·exp(r(x1)/T)

(exactly, for exact Tweedie estimates and small steps). Low T is greedy; T → ∞ switches the
steering off. Between resamplings the SDE noise spreads copies of one particle apart, which is
why the ODE (g = 0) is a poor proposal here. The result is the final particle with the highest
reward.

Every step evaluates the network once per particle, so the search costs K·N NFE; size K from a
budget with :func:`flow_core.scaling.result.n_for_budget`. With ``vp=True`` the model is first
re-expressed on the variance-preserving path (:func:`flow_core.paths.transform.to_vp`), whose
SDE gives more diverse particles (Kim et al. 2025, §3.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from flow_core.errors import ConfigError
from flow_core.paths.transform import to_vp
from flow_core.samplers.sde import EulerMaruyama
from flow_core.scaling.result import ScalingResult, expand_cond, placement
from flow_core.scaling.reward import Reward, evaluate_reward

__all__ = ["RESAMPLING", "particle_sampling", "resample_indices"]

RESAMPLING: tuple[str, ...] = ("systematic", "multinomial")
"""The resampling schemes :func:`particle_sampling` accepts."""


def resample_indices(
    log_weights: Tensor, scheme: str = "systematic", generator: torch.Generator | None = None
) -> Tensor:
    """Ancestor indices (K,) drawn in proportion to ``exp(log_weights)`` (K,), on the CPU.

    ``"multinomial"`` draws K independent ancestors; ``"systematic"`` (Kitagawa 1996) places
    K evenly spaced points with one random offset on the cumulative weights, which keeps every
    particle of weight ≥ 1/K and has lower variance. A single particle is its own ancestor,
    drawn without consuming random numbers.
    """
    weights = torch.softmax(log_weights.detach().double().cpu(), dim=0)
    k = weights.shape[0]
    if k == 1:
        return torch.zeros(1, dtype=torch.long)
    device = torch.device("cpu") if generator is None else generator.device
    if scheme == "systematic":
        offset = torch.rand(1, generator=generator, dtype=torch.float64, device=device).cpu()
        positions = (offset + torch.arange(k, dtype=torch.float64)) / k
    elif scheme == "multinomial":
        positions = torch.rand(k, generator=generator, dtype=torch.float64, device=device).cpu()
    else:
        raise ConfigError(
            f"unknown resampling {scheme!r}; expected one of: {', '.join(RESAMPLING)}"
        )
    cumulative = weights.cumsum(0)
    return torch.searchsorted(cumulative, positions, right=True).clamp(max=k - 1)


def particle_sampling(
    model: nn.Module,
    reward: Reward,
    n_particles: int,
    steps: int,
    shape: Sequence[int],
    *,
    diffusion: str = "released",
    scale: float = 3.0,
    vp: bool = False,
    temperature: float = 1.0,
    resample_every: int = 1,
    resampling: str = "systematic",
    generator: torch.Generator | None = None,
    cond: Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> ScalingResult:
    """Steer K particles of the SDE towards high reward by resampling; return the best.

    Runs without gradients and spends exactly ``n_particles·steps`` NFE.

    Args:
        model: a velocity field ``model(x, t, cond)`` on the linear path.
        reward: scores Tweedie estimates and final samples.
        n_particles: K >= 1.
        steps: N >= 1 Euler–Maruyama steps.
        shape: the shape of one sample, e.g. ``(2,)``.
        diffusion: the SDE's diffusion coefficient (see :class:`EulerMaruyama`).
        scale: its scale.
        vp: sample on the variance-preserving path of the converted model.
        temperature: T > 0 of the target p·exp(r/T).
        resample_every: resample at steps k with k % resample_every == 0 (>= 1).
        resampling: one of :data:`RESAMPLING`.
        generator: the source of all randomness (torch's global generator when ``None``).
        cond: one condition of leading dimension 1, expanded to the K particles.
        device: where to run; the model's device when ``None``.
        dtype: the samples' dtype; the model's when ``None``.

    Raises:
        ConfigError: a bad count, temperature, diffusion or resampling scheme.
    """
    if n_particles < 1 or resample_every < 1:
        raise ConfigError(
            f"particle_sampling: need n_particles >= 1 and resample_every >= 1, "
            f"got {n_particles} and {resample_every}"
        )
    if not (math.isfinite(temperature) and temperature > 0):
        raise ConfigError(
            f"particle_sampling: temperature must be finite and > 0, got {temperature}"
        )
    if resampling not in RESAMPLING:
        raise ConfigError(
            f"particle_sampling: unknown resampling {resampling!r}; expected one of: "
            f"{', '.join(RESAMPLING)}"
        )
    sde = EulerMaruyama(steps, diffusion, scale, path="cosine" if vp else "linear")
    field = to_vp(model) if vp else model
    device_, dtype_ = placement(model, device, dtype)
    noise_device = device_ if generator is None else generator.device
    x = torch.randn(
        (n_particles, *shape), generator=generator, dtype=dtype_, device=noise_device
    ).to(device_)
    cond_k = expand_cond(cond, n_particles)
    log_weights = torch.zeros(n_particles, dtype=torch.float64, device=device_)
    potential = torch.zeros_like(log_weights)
    trace: list[float] = []
    ess_sum = 0.0
    resamples = 0
    with torch.no_grad():
        for index in range(steps):
            v = field(x, sde.time(index, x), cond_k)
            rewards = evaluate_reward(reward, sde.data_estimate(x, v, index), cond_k)
            trace.append(float(rewards.max()))
            new_potential = rewards.double() / temperature
            log_weights = log_weights + new_potential - potential
            potential = new_potential
            if index % resample_every == 0:
                normalised = torch.softmax(log_weights, dim=0)
                ess_sum += float(1.0 / normalised.pow(2).sum()) / n_particles
                resamples += 1
                ancestors = resample_indices(log_weights, resampling, generator).to(device_)
                x, v, potential = x[ancestors], v[ancestors], potential[ancestors]
                log_weights = torch.zeros_like(log_weights)
            x = sde.step(x, v, index, generator)
        final_rewards = evaluate_reward(reward, x, cond_k)
    best = int(final_rewards.argmax())
    return ScalingResult(
        sample=x[best : best + 1],
        reward=float(final_rewards[best]),
        nfe=n_particles * steps,
        candidates=x,
        candidate_rewards=final_rewards,
        trace=trace,
        diagnostics={
            "mean_reward": float(final_rewards.mean()),
            "mean_relative_ess": ess_sum / max(resamples, 1),
            "resamples": float(resamples),
        },
    )
