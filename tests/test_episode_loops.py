"""Contract: the same policy and reset seeds give the same episodes through every episode loop.

Collection (`sources.collect.run_episodes`, which writes datasets and scores recipe checkpoints)
and evaluation (`envs.loop.rollout`, which `tt eval`, the behaviour baseline and `tt render` use)
step envs separately today; until they are one loop, this holds them to the same episodes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajectory_transformer.envs.agents import PolicyAgent
from trajectory_transformer.envs.loop import rollout
from trajectory_transformer.sources.collect import rollout_returns, run_episodes
from trajectory_transformer.sources.policies import PendulumExpert, pendulum_medium


@pytest.mark.parametrize("make_policy", [PendulumExpert, pendulum_medium])
@pytest.mark.parametrize("n_envs", [1, 3])
def test_collection_and_evaluation_loops_give_the_same_returns(
    make_policy: Any, n_envs: int
) -> None:
    env = gym.make("Pendulum-v1")
    agent = PolicyAgent(make_policy(), env.observation_space, env.action_space)
    evaluated = rollout(lambda: gym.make("Pendulum-v1"), agent, 5, n_envs=n_envs, seed=11,
                        progress=False)  # fmt: skip
    buffers = run_episodes("Pendulum-v1", make_policy(), 5, seed=11, n_envs=n_envs)
    collected = np.asarray([np.sum(b.rewards) for b in buffers])
    np.testing.assert_allclose(evaluated.returns, collected, rtol=0, atol=1e-9)
    assert evaluated.lengths.tolist() == [len(b.rewards) for b in buffers]
    mean = rollout_returns("Pendulum-v1", make_policy(), 5, seed=11)
    assert mean == pytest.approx(float(evaluated.returns.mean()), abs=1e-9)
