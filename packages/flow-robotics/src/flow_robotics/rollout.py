"""Closed-loop evaluation of a trained chunk policy in its environment.

:class:`ChunkedPolicy` keeps the last H observations, and whenever its queue of actions is
empty draws a new chunk of K actions with the sampler (one call, ``sampler.nfe`` network
evaluations), clipped to the action bounds [−1, 1], and executes all of them (receding
horizon with the whole chunk, as DM1's ``act_steps = K``). :func:`evaluate_policy` runs seeded
episodes on the task's test variations and measures success, return, per-call latency at
batch size 1 and the side each episode went round on.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from flow_robotics.envs.metaworld import episode_mode, make_env, run_episode
from flow_robotics.metrics import latency_ms, mode_shares, wilson_interval

__all__ = ["ChunkedPolicy", "PolicyResult", "evaluate_policy"]


class ChunkedPolicy:
    """A callable ``obs -> action`` around a chunk-generating model and its sampler."""

    def __init__(
        self,
        model: nn.Module,
        sampler: Any,
        *,
        history: int,
        chunk: int,
        action_dim: int,
        source_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.model, self.sampler = model, sampler
        self.history, self.chunk, self.action_dim = history, chunk, action_dim
        self.source_scale = source_scale
        self.generator = torch.Generator().manual_seed(seed)
        self.device = next(model.parameters()).device
        self.seconds: list[float] = []
        self.reset()

    def reset(self) -> None:
        """Forget the observation history and the queued actions (a new episode)."""
        self.past: deque[np.ndarray] = deque(maxlen=self.history)
        self.queue: deque[np.ndarray] = deque()

    def act_chunk(self, cond: torch.Tensor) -> torch.Tensor:
        """Chunks ``(B, K, A)`` in [−1, 1] for a batch of flat observation histories."""
        noise = torch.randn(cond.shape[0], self.chunk * self.action_dim, generator=self.generator)
        x0 = (self.source_scale * noise).to(self.device)
        with torch.no_grad():
            actions: torch.Tensor = self.sampler.sample(self.model, x0, cond.to(self.device))
        return actions.clamp(-1.0, 1.0).reshape(-1, self.chunk, self.action_dim).cpu()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if not self.past:
            self.past.extend([obs] * self.history)
        else:
            self.past.append(obs)
        if not self.queue:
            cond = torch.from_numpy(np.concatenate(list(self.past)).astype(np.float32))[None]
            started = time.perf_counter()
            chunk = self.act_chunk(cond)
            self.seconds.append(time.perf_counter() - started)
            self.queue.extend(chunk[0].numpy().astype(np.float64))
        return self.queue.popleft()


@dataclass
class PolicyResult:
    """Outcome of :func:`evaluate_policy`."""

    successes: list[bool]
    returns: list[float]
    modes: list[int]
    seconds: list[float]
    first: Any = None
    observations: list[np.ndarray] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """Success rate with its 95 % Wilson interval, mean return, latency, mode shares."""
        wins, n = sum(self.successes), len(self.successes)
        low, high = wilson_interval(wins, n)
        latency = latency_ms(self.seconds) if self.seconds else {"median": 0.0, "p95": 0.0}
        shares = mode_shares(self.modes)
        return {
            "success": wins / max(n, 1),
            "success_low": low,
            "success_high": high,
            "return": float(np.mean(self.returns)) if self.returns else 0.0,
            "latency_ms": latency["median"],
            "latency_p95_ms": latency["p95"],
            "mode_left": shares["left"],
            "mode_right": shares["right"],
            "mode_straight": shares["straight"],
            "modes_covered": shares["covered"],
        }


def evaluate_policy(
    task: str,
    policy: ChunkedPolicy,
    episodes: int,
    horizon: int,
    *,
    seed: int,
    frame_every: int = 0,
    progress: Any = None,
) -> PolicyResult:
    """Run ``episodes`` seeded episodes on the test variations of ``task``.

    Episode j uses test variation j and reset seed ``seed·100_003 + j``; the first episode's
    frames are rendered every ``frame_every`` steps when that is > 0.
    """
    result = PolicyResult([], [], [], [])
    policy.model.eval()
    for index in range(episodes):
        render = frame_every > 0 and index == 0
        env = make_env(task, index, "test", render=render)
        policy.reset()
        episode = run_episode(
            env, policy, horizon, seed=seed * 100_003 + index, frame_every=frame_every * render
        )
        result.successes.append(episode.success)
        result.returns.append(float(episode.rewards.sum()))
        result.modes.append(episode_mode(task, episode.observations))
        result.observations.append(episode.observations)
        if index == 0:
            result.first = episode
        if progress is not None:
            progress.update(1)
    result.seconds = list(policy.seconds)
    return result
