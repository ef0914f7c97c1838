"""Rollouts: exact returns/lengths/flags on a hand-made corridor, slot bookkeeping, seeding."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajectory_transformer.envs.agents import Agent, PolicyAgent, RandomAgent
from trajectory_transformer.envs.loop import StepInfo, rollout

GOAL = 5
TIME_LIMIT = 8
CORRIDOR_ID = "TTTestCorridor-v0"


class Corridor(gym.Env[np.ndarray, np.ndarray]):
    """Positions 0..GOAL; action > 0 steps right, else left (clamped at 0).

    Reward -1 per step, +10 on reaching GOAL (terminates). The start position (0, 1 or 2) comes
    from the reset seed, so per-episode seeding is visible in the results. obs = [position, t].
    """

    observation_space = gym.spaces.Box(0.0, 100.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.pos = int(self.np_random.integers(0, 3))
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.pos, self.t], dtype=np.float32)

    def step(self, action: np.ndarray) -> Any:
        assert self.action_space.contains(action), action
        self.pos = min(GOAL, self.pos + 1) if action[0] > 0 else max(0, self.pos - 1)
        self.t += 1
        done = self.pos == GOAL
        return self._obs(), (10.0 if done else -1.0), done, False, {}


if CORRIDOR_ID not in gym.registry:
    gym.register(CORRIDOR_ID, entry_point=Corridor, max_episode_steps=TIME_LIMIT)


def make_corridor() -> gym.Env[Any, Any]:
    return gym.make(CORRIDOR_ID)


def start_of(seed: int) -> int:
    obs, _ = make_corridor().reset(seed=seed)
    return int(obs[0])


def expected(seed: int) -> tuple[float, int, bool]:
    """(return, length, terminated) of the scripted policy from this seed's start."""
    start = start_of(seed)
    if start % 2 == 0:  # walks right to the goal
        steps = GOAL - start
        return float(10 - (steps - 1)), steps, True
    return float(-TIME_LIMIT), TIME_LIMIT, False  # walks left until the time limit


class ScriptedAgent:
    """Right from even starts, left from odd ones; checks the rollout's slot bookkeeping."""

    def __init__(self) -> None:
        self.start: dict[int, int] = {}
        self.t: dict[int, int] = {}
        self.rows = 0
        self.resets: list[int] = []

    def reset(self, slots: np.ndarray) -> None:
        for s in slots.tolist():
            self.start[s] = -1
            self.t[s] = 0
            self.resets.append(s)

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        assert observations.dtype == np.float32 and observations.shape == (len(slots), 2)
        out = np.zeros((len(slots), 1), dtype=np.float32)
        for i, s in enumerate(slots.tolist()):
            assert s in self.start, f"slot {s} acted before reset"
            pos, t = observations[i]
            assert pos < GOAL and t < TIME_LIMIT, "a finished env was passed to act"
            assert t == self.t[s], "observation does not follow the slot's own episode"
            if self.start[s] < 0:
                self.start[s] = int(pos)
            out[i, 0] = 1.0 if self.start[s] % 2 == 0 else -1.0
        self.rows += len(slots)
        return out

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        assert actions.shape == (len(slots), 1) and rewards.shape == (len(slots),)
        for s in slots.tolist():
            self.t[s] += 1


@pytest.mark.parametrize("kind", ["random", "policy"])
def test_agents_keep_the_contract(kind: str) -> None:
    """For any subset of slots, `act` returns one float32 row per slot that the env accepts, and
    the loop runs the agent to the end of every episode (not just: the methods exist)."""
    env = gym.make("Pendulum-v1")
    obs_space, act_space = env.observation_space, env.action_space
    agent: Agent = (
        RandomAgent(act_space, 0)
        if kind == "random"
        else PolicyAgent(lambda obs: -np.clip(obs[:, 2:3], -2, 2), obs_space, act_space)
    )
    slots = np.array([0, 2])
    agent.reset(slots)
    obs = np.stack([env.reset(seed=s)[0] for s in (1, 2)]).astype(np.float32)  # (2, 3)
    actions = agent.act(slots, obs)
    assert actions.shape == (2, 1) and actions.dtype == np.float32
    assert all(act_space.contains(a) for a in actions)
    agent.record(slots, actions, np.zeros(2, np.float32))
    result = rollout(lambda: gym.make("Pendulum-v1"), agent, 3, n_envs=2, seed=0,
                     max_episode_steps=5, progress=False)  # fmt: skip
    assert result.lengths.tolist() == [5, 5, 5] and np.isfinite(result.returns).all()


@pytest.mark.parametrize(("episodes", "n_envs"), [(1, 1), (7, 3), (12, 4), (4, 10)])
def test_corridor_exact(episodes: int, n_envs: int) -> None:
    agent = ScriptedAgent()
    steps: list[StepInfo] = []
    result = rollout(
        make_corridor, agent, episodes, n_envs=n_envs, seed=10, progress=False, on_step=steps.append
    )
    want = [expected(10 + i) for i in range(episodes)]
    np.testing.assert_array_equal(result.seeds, 10 + np.arange(episodes))
    np.testing.assert_allclose(result.returns, [w[0] for w in want])
    np.testing.assert_array_equal(result.lengths, [w[1] for w in want])
    np.testing.assert_array_equal(result.terminated, [w[2] for w in want])
    # every act row is one real env step: no finished or idle env was ever asked to act
    assert agent.rows == result.env_steps == sum(w[1] for w in want)
    assert len(agent.resets) == episodes  # one agent.reset per episode, in its slot
    assert result.n_envs == min(episodes, n_envs)
    assert result.agent_calls == len(steps)
    # on_step sees terminated and truncated separately
    assert sum(int(s.terminated.sum()) for s in steps) == sum(w[2] for w in want)
    assert sum(int(s.truncated.sum()) for s in steps) == sum(not w[2] for w in want)
    if episodes >= 7:  # these seeds end some episodes at the goal and time the others out
        assert 0 < int(result.terminated.sum()) < episodes


def test_results_do_not_depend_on_n_envs() -> None:
    a = rollout(make_corridor, ScriptedAgent(), 9, n_envs=1, seed=3, progress=False)
    b = rollout(make_corridor, ScriptedAgent(), 9, n_envs=4, seed=3, progress=False)
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(a.lengths, b.lengths)


def test_max_episode_steps_truncates() -> None:
    result = rollout(make_corridor, ScriptedAgent(), 6, n_envs=2, seed=10, max_episode_steps=2,
                     progress=False)  # fmt: skip
    np.testing.assert_array_equal(result.lengths, 2)  # every start is >= 3 steps from the goal
    assert not result.terminated.any()  # a time limit is a truncation, not a termination


def test_bad_agent_output_shape_is_an_error() -> None:
    class Broken(ScriptedAgent):
        def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
            return np.zeros((len(slots), 3), dtype=np.float32)

    from trajectory_transformer.errors import TTError

    with pytest.raises(TTError, match="shape"):
        rollout(make_corridor, Broken(), 2, n_envs=2, seed=0, progress=False)


@pytest.mark.parametrize("vector", ["sync", "async"])
def test_pendulum_random_agent(vector: str) -> None:
    space = gym.make("Pendulum-v1").action_space

    def run() -> Any:
        return rollout(lambda: gym.make("Pendulum-v1"), RandomAgent(space, 0), 6, n_envs=3,
                       seed=0, vector=vector, progress=False)  # type: ignore[arg-type]  # fmt: skip

    a, b = run(), run()
    np.testing.assert_array_equal(a.lengths, 200)
    assert not a.terminated.any()  # Pendulum only truncates
    assert (a.returns < 0).all() and (a.returns > -2000).all()
    np.testing.assert_array_equal(a.returns, b.returns)  # same seed, same run
    assert a.env_steps_per_s > 0 and a.agent_ms_per_step >= 0


def test_progress_counts_running_episodes_by_their_steps(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Equal-length episodes end together; the bar moves as their steps go by, not only then."""
    from trajectory_transformer.envs import loop

    monkeypatch.setattr(loop, "_REFRESH_S", 0.0)
    space = gym.make("Pendulum-v1").action_space
    result = rollout(lambda: gym.make("Pendulum-v1"), RandomAgent(space, 0), 4, n_envs=2,
                     seed=0, max_episode_steps=4, progress=True)  # fmt: skip
    assert result.lengths.tolist() == [4, 4, 4, 4]
    err = capsys.readouterr().err
    # two envs at 1/4 of their 4 steps: half an episode done; then 1.0 at the first pair's end
    for shown in ("0.5/4 ep", "1.0/4 ep", "1.5/4 ep", "2.0/4 ep", "3.5/4 ep"):
        assert shown in err, err
