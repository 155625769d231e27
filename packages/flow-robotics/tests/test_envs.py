"""Meta-World experts: bimodal demonstrations that succeed at a stated rate."""

import numpy as np
import pytest

from flow_core.errors import ConfigError
from flow_robotics.data.demos import collect_demos
from flow_robotics.envs.metaworld import DetourExpert, episode_mode, make_env, run_episode


def test_bimodal_expert_demonstrations_succeed_and_keep_their_side():
    # stated rate: the noisy detour expert solves reach-v3 on every one of 8 placements
    demos, stats = collect_demos("reach-v3", 8, seed=3, noise=0.1, multimodal=True, horizon=150)
    assert stats.attempted == 8 and stats.success_rate == 1.0
    assert set(stats.modes) == {-1, 1}  # both detour sides were drawn
    for demo in demos.demos:
        observations = np.concatenate([demo.observations, demo.observations[-1:]])
        assert episode_mode("reach-v3", observations) == demo.mode
        assert demo.actions.shape[1] == 4 and np.abs(demo.actions).max() <= 1.0


def test_the_plain_expert_goes_straight():
    env = make_env("reach-v3", 0, "test")
    episode = run_episode(env, DetourExpert("reach-v3", 0), 150, seed=0)
    assert episode.success
    assert episode_mode("reach-v3", episode.observations) == 0


def test_unknown_tasks_and_splits_are_refused():
    with pytest.raises(ConfigError, match="unknown Meta-World task 'fly-v3'"):
        make_env("fly-v3", 0)
    with pytest.raises(ConfigError, match="split must be"):
        make_env("reach-v3", 0, "valid")
