"""`tt bench oracle`: candidate actions scored by restoring the simulator and rolling out."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from trajectory_transformer.errors import TTError
from trajectory_transformer.lab.oracle import OracleOptions, _Snapshot, oracle_ranking, parse


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "Hopper-v5"])
def test_a_restored_snapshot_replays_the_same_future(env_id: str) -> None:
    """The premise of the oracle: restore + the same actions = the same rewards as the original."""
    env, other = gym.make(env_id), gym.make(env_id)
    env.reset(seed=0)
    other.reset(seed=5)  # a different state, overwritten by the restore
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(env.action_space.sample())
    snap = _Snapshot(env)
    actions = [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(10)]
    first = [env.step(a)[1] for a in actions]
    snap.restore(other)
    second = [other.step(a)[1] for a in actions]
    assert first == second


def test_oracle_scores_every_candidate_of_every_snapshot(tiny_run: Path) -> None:
    opts = OracleOptions(str(tiny_run), episodes=1, every=5, candidates=4, rollout=6)
    result = oracle_ranking(opts, ["plan.beam_width=4", "plan.horizon=2", "plan.context=2",
                                   "eval.max_episode_steps=12"])  # fmt: skip
    assert result["states"] == 3  # t = 0, 5, 10 of a 12-step episode
    # each rollout runs to the real episode's limit, whatever the worker's earlier rollouts
    assert [row["rollout_steps"] for row in result["per_state"]] == [6, 6, 2]
    for row in result["per_state"]:
        assert 1 <= row["candidates"] <= 4
        assert len(row["predicted"]) == len(row["realized"]) == row["candidates"]
        assert row["best_realized"] == pytest.approx(max(row["realized"]), abs=1e-3)
        # Pendulum: rewards are in [-16.3, 0], so a 6-step discounted return is too
        assert all(-16.3 * 6 <= r <= 0 for r in row["realized"])
    assert len(result["episode_returns"]) == 1


def test_oracle_options_are_checked_in_one_line() -> None:
    with pytest.raises(TTError, match="needs run="):
        parse(["episodes=2"])
    with pytest.raises(TTError, match="option rollout expects int, got 'ten'"):
        parse(["run=x", "rollout=ten"])
    with pytest.raises(TTError, match="'bogus=1'"):
        parse(["run=x", "bogus=1"])
    opts, over = parse(["run=x", "candidates=8", "plan.beam_width=4"])
    assert opts.candidates == 8 and over == ["plan.beam_width=4"]


def test_acting_on_the_realised_best_candidate_gives_the_ceiling_episode(tiny_run: Path) -> None:
    # rollout=1: a candidate's realised return is its own reward, so an episode that always takes
    # the realised-best candidate earns exactly the sum of the per-state bests
    opts = OracleOptions(str(tiny_run), episodes=1, every=1, candidates=4, rollout=1, act="oracle")
    result = oracle_ranking(opts, ["plan.beam_width=4", "plan.horizon=2", "plan.context=2",
                                   "eval.max_episode_steps=6"])  # fmt: skip
    bests = [row["best_realized"] for row in result["per_state"]]
    assert len(bests) == 6
    assert result["episode_returns"][0] == pytest.approx(sum(bests), abs=1e-2)
    with pytest.raises(TTError, match="act"):
        parse(["run=x", "act=best"])
