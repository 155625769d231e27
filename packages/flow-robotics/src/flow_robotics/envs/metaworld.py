"""Meta-World tasks, headless on the CPU, with their scripted experts made multimodal.

Meta-World (Yu et al. 2019, arXiv 1910.10897; v3 environments, Farama Foundation) runs on
MuJoCo and ships one hand-written expert policy per task. Observations are the 39-D state
vector (hand position, gripper opening, object poses, the previous frame's copy of those,
and the goal); actions are 4-D in [−1, 1] (hand displacement and gripper).

**Multimodal experts.** :class:`DetourExpert` makes a task's demonstrations deliberately
bimodal: each episode picks a side s ∈ {−1, +1} at random and first moves the hand to a via
point beside the straight line from the hand to its first target (the object, or the goal of
``reach``),

    via = (p_hand + p_target)/2 + s · offset · n,   n ⊥ (p_target − p_hand) in the table plane,

then hands over to the task's expert. A policy that averages the two modes (MSE behaviour
cloning) drives straight between them; one that keeps both goes round on either side.
:func:`episode_mode` reads the side back from a hand trajectory. Gaussian noise of standard
deviation ``noise`` is added to every executed action (clipped to [−1, 1]).

Episodes are seeded: the demonstrations use the task's *train* variations (object and goal
placements) and evaluation its *test* variations, so that success is measured on placements
the policy never saw.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flow_core.errors import ConfigError, FlowError

__all__ = [
    "ACTION_DIM",
    "OBS_DIM",
    "TASKS",
    "DetourExpert",
    "Episode",
    "episode_mode",
    "make_env",
    "run_episode",
    "target_position",
]

OBS_DIM = 39
ACTION_DIM = 4
TASKS: dict[str, str] = {
    "reach-v3": "goal",
    "push-v3": "object",
    "pick-place-v3": "object",
    "button-press-topdown-v3": "object",
    "drawer-close-v3": "object",
}
"""The Meta-World tasks this package is tested on, and the first target of each detour."""

Policy = Callable[[np.ndarray], np.ndarray]


def _metaworld() -> Any:
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import metaworld
    except ImportError as error:
        raise FlowError(
            f"Meta-World is not installed: pip install 'metaworld==3.1.1' 'mujoco==3.3.0' ({error})"
        ) from None
    return metaworld


def _check_task(name: str) -> None:
    if name not in TASKS:
        raise ConfigError(f"unknown Meta-World task {name!r}; expected one of: {', '.join(TASKS)}")


@functools.lru_cache(maxsize=8)
def _benchmark(name: str, split: str) -> Any:
    return _metaworld().MT1(name, seed=0 if split == "train" else 1)


@functools.lru_cache(maxsize=8)
def _environment(name: str, split: str, render: bool) -> Any:
    kwargs: dict[str, Any] = {"render_mode": "rgb_array"} if render else {}
    return _benchmark(name, split).train_classes[name](**kwargs)


def make_env(name: str, variation: int, split: str = "train", render: bool = False) -> Any:
    """The Meta-World environment ``name`` set to variation ``variation`` of ``split``.

    ``split`` is ``train`` (demonstrations) or ``test`` (evaluation: the placements of another
    seed); the variation index wraps around the 50 placements of the split. ``render=True``
    asks for ``rgb_array`` frames. Benchmarks and environments are built once per process
    (building one takes seconds) and shared: each call sets the variation afresh.
    """
    _check_task(name)
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    tasks = _benchmark(name, split).train_tasks
    env = _environment(name, split, render)
    env.set_task(tasks[variation % len(tasks)])
    return env


def expert_for(name: str) -> Policy:
    """The scripted expert policy Meta-World ships for task ``name``."""
    _check_task(name)
    from metaworld import policies

    words = name.removesuffix("-v3").split("-")
    class_name = "Sawyer" + "".join(w.capitalize() for w in words) + "V3Policy"
    expert = getattr(policies, class_name)()
    return lambda obs: np.asarray(expert.get_action(obs), dtype=np.float64)


def target_position(name: str, obs: np.ndarray) -> np.ndarray:
    """The first target of the task's expert: the goal (``reach``) or the object."""
    return np.asarray(obs[36:39] if TASKS[name] == "goal" else obs[4:7], dtype=np.float64)


def _normal(start: np.ndarray, target: np.ndarray) -> np.ndarray:
    direction = target[:2] - start[:2]
    length = float(np.linalg.norm(direction))
    if length < 1e-6:
        return np.array([1.0, 0.0, 0.0])
    return np.array([-direction[1] / length, direction[0] / length, 0.0])


@dataclass
class DetourExpert:
    """The task's expert, preceded by a detour to one side (module docstring).

    ``side`` is −1, +1, or 0 (no detour: the plain expert). The detour ends when the hand is
    within ``tolerance`` of the via point or after ``max_detour`` steps.
    """

    name: str
    side: int
    offset: float = 0.12
    gain: float = 10.0
    tolerance: float = 0.03
    max_detour: int = 60
    expert: Policy = field(init=False)
    via: np.ndarray | None = field(init=False, default=None)
    steps: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.expert = expert_for(self.name)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        action = self.expert(obs)
        if self.side == 0 or self.steps < 0:
            return action
        hand = np.asarray(obs[:3], dtype=np.float64)
        if self.via is None:
            target = target_position(self.name, obs)
            self.via = (hand + target) / 2 + self.side * self.offset * _normal(hand, target)
            self.via[2] = max(hand[2], target[2]) + 0.02
        self.steps += 1
        if np.linalg.norm(self.via - hand) < self.tolerance or self.steps > self.max_detour:
            self.steps = -1  # detour done: the expert from here on
            return action
        detour = np.clip(self.gain * (self.via - hand), -1.0, 1.0)
        return np.concatenate([detour, action[3:]])


def episode_mode(name: str, observations: np.ndarray, threshold: float = 0.04) -> int:
    """The side (−1 or +1) an episode went round on, or 0 when it went straight.

    The signed distance of the hand from the straight line between its start and the first
    target, in the table plane, is taken over the first half of the way; the mode is its sign
    where its largest magnitude exceeds ``threshold`` (metres).
    """
    start = np.asarray(observations[0, :3], dtype=np.float64)
    target = target_position(name, observations[0])
    normal = _normal(start, target)
    total = float(np.linalg.norm(target[:2] - start[:2])) + 1e-9
    offsets = (observations[:, :3] - start) @ normal
    progress = (observations[:, :2] - start[:2]) @ (target[:2] - start[:2]) / total**2
    early = offsets[progress < 0.6]
    if early.size == 0:
        return 0
    peak = float(early[np.argmax(np.abs(early))])
    return 0 if abs(peak) < threshold else int(np.sign(peak))


@dataclass
class Episode:
    """One episode: observations (T + 1, 39), actions (T, 4), rewards (T,), success."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: bool
    frames: list[np.ndarray] = field(default_factory=list)


def run_episode(
    env: Any,
    policy: Policy,
    horizon: int,
    *,
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    seed: int = 0,
    frame_every: int = 0,
) -> Episode:
    """Run ``policy`` for up to ``horizon`` steps, stopping at the first success.

    ``noise`` adds Gaussian noise to each action (drawn from ``rng``) before clipping;
    ``frame_every`` > 0 keeps every n-th rendered frame.
    """
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, frames = [np.asarray(obs)], [], [], []
    success = False
    for step in range(horizon):
        action = np.asarray(policy(np.asarray(obs)), dtype=np.float64)
        if noise > 0:
            generator = rng if rng is not None else np.random.default_rng(seed)
            action = action + generator.normal(0.0, noise, size=action.shape)
        action = np.clip(action, -1.0, 1.0)
        obs, reward, _, truncated, info = env.step(action)
        observations.append(np.asarray(obs))
        actions.append(action)
        rewards.append(float(reward))
        if frame_every and step % frame_every == 0:
            frames.append(np.asarray(env.render()))
        if float(info.get("success", 0.0)) > 0:
            success = True
            break
        if truncated:
            break
    return Episode(np.stack(observations), np.stack(actions), np.asarray(rewards), success, frames)
