"""Rollover Budget Forcing (RBF): a greedy search over the flow's SDE under an NFE budget.

Kim, Yoon, Hwang & Sung 2025, "Inference-Time Scaling for Flow Models via Stochastic
Generation and Rollover Budget Forcing" (arXiv 2503.19385), §4, in the
project convention (their τ = 1 − t). One particle walks
the Euler–Maruyama chain of :class:`flow_core.samplers.sde.EulerMaruyama` on the grid
t_k = k/N, and the search spends its budget choosing each step's random child:

1. Draw M initial source samples x0 ~ N(0, I), evaluate the velocity of each (M NFE), score the
   Tweedie estimates x̂1 and keep the best: the current particle and the best reward so far.
2. Split the remaining budget evenly over the N − 1 stochastic steps k = 0 … N − 2.
3. At step k draw children x' of the current particle, one SDE step each, evaluate the
   velocity at (x', t_{k+1}) (1 NFE) and score its Tweedie estimate, until a child beats the
   best reward so far — it becomes the current particle and the unused share of the step's
   budget rolls over to the next step — or the step's share runs out, when the step's best
   child is taken. The last stochastic step spends everything that is left and keeps its best
   child.
4. The final step to t = 1 is deterministic and reuses the last velocity (0 NFE).

Scoring a child needs the velocity that its next step needs anyway, so rewards cost no extra
evaluations: the search spends exactly ``budget`` NFE, and a single ODE or SDE sample (M = 1,
one child per step) costs N. With ``vp=True`` (the paper's choice) the model is first converted
to the variance-preserving path (:func:`flow_core.paths.transform.to_vp`: ᾱ_s = sin(πs/2),
σ̄_s = cos(πs/2)), and the SDE runs on that path, with that path's score, for more diverse
children; ``vp=False`` runs the linear path's own SDE. The released configuration is FLUX.1
schnell with 10 steps, 500 NFE, 25 initial particles and g(t) = 3(1 − t)².
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

__all__ = ["rollover_budget_forcing"]


def rollover_budget_forcing(
    model: nn.Module,
    reward: Reward,
    budget: int,
    steps: int,
    shape: Sequence[int],
    *,
    initial_particles: int = 1,
    diffusion: str = "released",
    scale: float = 3.0,
    vp: bool = True,
    generator: torch.Generator | None = None,
    cond: Tensor | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> ScalingResult:
    """Search the SDE's random children step by step within ``budget`` NFE; return the result.

    Runs without gradients and spends exactly ``budget`` NFE.

    Args:
        model: a velocity field ``model(x, t, cond)`` on the linear path.
        reward: scores Tweedie estimates and the final sample.
        budget: the total number of network evaluations, at least
            ``initial_particles + steps − 1``.
        steps: N >= 2 Euler–Maruyama steps.
        shape: the shape of one sample, e.g. ``(2,)``.
        initial_particles: M >= 1 source samples to choose the start from.
        diffusion: the SDE's diffusion coefficient (see :class:`EulerMaruyama`).
        scale: its scale.
        vp: convert the model to the variance-preserving path first.
        generator: the source of all randomness (torch's global generator when ``None``).
        cond: one condition of leading dimension 1.
        device: where to run; the model's device when ``None``.
        dtype: the samples' dtype; the model's when ``None``.

    Raises:
        ConfigError: ``steps < 2``, ``initial_particles < 1``, or a budget below one child
            per step.
    """
    if steps < 2 or initial_particles < 1:
        raise ConfigError(
            f"rollover_budget_forcing: need steps >= 2 and initial_particles >= 1, "
            f"got {steps} and {initial_particles}"
        )
    minimum = initial_particles + steps - 1
    if budget < minimum:
        raise ConfigError(
            f"rollover_budget_forcing: budget {budget} is below the minimum {minimum} "
            f"(initial_particles + one child for each of the {steps - 1} stochastic steps)"
        )
    sde = EulerMaruyama(steps, diffusion, scale, path="cosine" if vp else "linear")
    field = to_vp(model) if vp else model
    device_, dtype_ = placement(model, device, dtype)
    noise_device = device_ if generator is None else generator.device
    with torch.no_grad():
        x0 = torch.randn(
            (initial_particles, *shape), generator=generator, dtype=dtype_, device=noise_device
        ).to(device_)
        cond_m = expand_cond(cond, initial_particles)
        v0 = field(x0, sde.time(0, x0), cond_m)
        rewards = evaluate_reward(reward, sde.data_estimate(x0, v0, 0), cond_m)
        start = int(rewards.argmax())
        x, v = x0[start : start + 1], v0[start : start + 1]
        best_reward = float(rewards[start])
        cond_1 = expand_cond(cond, 1)
        nfe = initial_particles
        share = (budget - initial_particles) // (steps - 1)
        carry = 0
        rollovers = 0
        trace = [best_reward]
        for index in range(steps - 1):
            last = index == steps - 2
            allowance = budget - nfe if last else share + carry
            # A finite reward beats -inf, so the first child always replaces this placeholder.
            chosen_x, chosen_v, chosen_score = x, v, -math.inf
            used = 0
            while used < allowance:
                child = sde.step(x, v, index, generator)
                child_v = field(child, sde.time(index + 1, child), cond_1)
                used += 1
                score = float(
                    evaluate_reward(reward, sde.data_estimate(child, child_v, index + 1), cond_1)[0]
                )
                if score > chosen_score:
                    chosen_x, chosen_v, chosen_score = child, child_v, score
                if not last and score > best_reward:
                    rollovers += 1
                    break
            nfe += used
            carry = allowance - used
            x, v = chosen_x, chosen_v
            best_reward = max(best_reward, chosen_score)
            trace.append(chosen_score)
        final = sde.step(x, v, steps - 1, generator)
        final_reward = evaluate_reward(reward, final, cond_1)
    return ScalingResult(
        sample=final,
        reward=float(final_reward[0]),
        nfe=nfe,
        candidates=final,
        candidate_rewards=final_reward,
        trace=trace,
        diagnostics={
            "rollovers": float(rollovers),
            "initial_reward": trace[0],
            "best_tweedie_reward": best_reward,
        },
    )
