"""Scripted demonstrations, and the (observation history, action chunk) pairs policies learn.

:func:`collect_demos` runs a Meta-World task's expert (made bimodal by
:class:`~flow_robotics.envs.metaworld.DetourExpert`, with action noise) on the task's train
variations and keeps the successful episodes. :func:`chunk_pairs` cuts demonstrations into
training pairs as Diffusion Policy does (Chi et al. 2023, arXiv 2303.04137): for every step s
the condition is the observations o_{s−H+1..s} (the first one repeated before the start) and
the target the actions a_{s..s+K−1} (the last one repeated past the end).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flow_core.errors import FlowError
from flow_robotics.data.robomimic import Demo, Demos
from flow_robotics.envs.metaworld import DetourExpert, make_env, run_episode

__all__ = ["DemoStats", "chunk_pairs", "collect_demos"]


class DemoStats:
    """How the expert fared: attempted and successful episodes, and the modes kept."""

    def __init__(self, attempted: int, succeeded: int, modes: list[int]) -> None:
        self.attempted, self.succeeded, self.modes = attempted, succeeded, modes

    @property
    def success_rate(self) -> float:
        return self.succeeded / max(self.attempted, 1)


def collect_demos(
    task: str,
    count: int,
    *,
    seed: int,
    noise: float,
    multimodal: bool,
    horizon: int,
    progress: Callable[[int], None] = lambda n: None,
) -> tuple[Demos, DemoStats]:
    """``count`` successful expert demonstrations of ``task`` (at most 3·count attempts).

    Episode i uses train variation i and, when ``multimodal``, a side drawn at random.

    Raises:
        FlowError: the expert succeeded on fewer than ``count`` episodes.
    """
    rng = np.random.default_rng(seed)
    demos: list[Demo] = []
    attempted = 0
    while len(demos) < count and attempted < 3 * count:
        side = int(rng.choice([-1, 1])) if multimodal else 0
        env = make_env(task, attempted, "train")
        episode = run_episode(
            env,
            DetourExpert(task, side),
            horizon,
            noise=noise,
            rng=rng,
            seed=seed * 100_003 + attempted,
        )
        attempted += 1
        if episode.success:
            observations = episode.observations[:-1].astype(np.float32)
            demos.append(Demo(observations, episode.actions, episode.rewards, side))
            progress(1)
    if len(demos) < count:
        raise FlowError(
            f"the {task} expert succeeded on {len(demos)} of {attempted} episodes; "
            f"{count} demonstrations were asked for (raise horizon or lower noise)"
        )
    env_args = {"env_name": task, "type": "metaworld", "env_kwargs": {"multimodal": multimodal}}
    stats = DemoStats(attempted, len(demos), [d.mode for d in demos])
    return Demos(demos, env_args), stats


def chunk_pairs(demos: Demos, history: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """``(cond, actions)``: cond (N, H·D) observation histories, actions (N, K·A) chunks."""
    conds, targets = [], []
    for demo in demos.demos:
        steps = demo.actions.shape[0]
        if steps == 0:
            continue
        index = np.arange(steps)
        past = np.clip(index[:, None] + np.arange(1 - history, 1)[None, :], 0, steps - 1)
        future = np.clip(index[:, None] + np.arange(chunk)[None, :], 0, steps - 1)
        conds.append(demo.observations[past].reshape(steps, -1))
        targets.append(demo.actions[future].reshape(steps, -1))
    if not conds:
        raise FlowError("the demonstrations hold no steps")
    return (
        np.concatenate(conds).astype(np.float32),
        np.concatenate(targets).astype(np.float32),
    )
