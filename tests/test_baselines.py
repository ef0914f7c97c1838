"""d3rlpy baselines in `tt bench quality`: the data adapter (pure NumPy, no d3rlpy needed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from trajectory_transformer.bench import baselines
from trajectory_transformer.bench.baselines import BASELINES, budget_for
from trajectory_transformer.data.episodes import (
    dataset_returns,
    episodes_to_transitions,
    load_transitions,
)
from trajectory_transformer.data.mdp import episode_bounds, load_mdp_arrays, mdp_arrays
from trajectory_transformer.data.spaces import flatten
from trajectory_transformer.errors import TTError

OBS = spaces.Dict(
    {"pos": spaces.Box(-np.inf, np.inf, (2,), np.float32), "mode": spaces.Discrete(3)}
)
ACT = spaces.Box(-1, 1, (2,), np.float32)


@dataclass
class Ep:
    id: int
    observations: Any
    actions: Any
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, Any] = field(default_factory=dict)


def _episode(i: int, t: int, end: str) -> Ep:
    """An episode of t steps ending by 'terminal' (at step t-3: the rest is ignored), 'timeout'
    (truncated at its last step) or 'cut' (neither flag: a fixed-size dataset's last episode)."""
    rng = np.random.default_rng(i)
    terms, truncs = np.zeros(t, bool), np.zeros(t, bool)
    if end == "terminal":
        terms[t - 3 :] = True
    elif end == "timeout":
        truncs[-1] = True
    obs = {"pos": rng.normal(size=(t + 1, 2)).astype(np.float32),
           "mode": rng.integers(0, 3, size=t + 1)}  # fmt: skip
    acts = rng.uniform(-1, 1, (t, 2)).astype(np.float32)
    return Ep(i, obs, acts, rng.normal(size=t), terms, truncs)


def _d3rlpy_cuts(terminals: np.ndarray, timeouts: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, end, terminated) of each episode, cut as d3rlpy's EpisodeGenerator does (a loop
    over rows that closes an episode at every terminal or timeout flag)."""
    out, start = [], 0
    for i in range(terminals.shape[0]):
        if terminals[i] or timeouts[i]:
            out.append((start, i + 1, bool(terminals[i])))
            start = i + 1
    return out


# ------------------------------------------------------------------------------ the adapter
def test_the_adapter_round_trips_episodes_terminations_and_truncations_exactly() -> None:
    kinds = ["terminal", "timeout", "cut", "timeout", "terminal", "cut"]
    episodes = [_episode(i, 9 + 2 * i, kind) for i, kind in enumerate(kinds)]
    transitions, dropped = episodes_to_transitions(
        episodes, OBS, ACT, termination_penalty=0.0, where="test"
    )
    arrays = mdp_arrays(transitions)

    assert dropped == 0 and arrays.n_transitions == transitions.n_transitions
    # the episodes d3rlpy will cut are ours, one for one, with the right end flag
    cuts = _d3rlpy_cuts(arrays.terminals, arrays.timeouts)
    starts = transitions.episode_starts
    assert [(a, b) for a, b, _ in cuts] == list(zip(starts[:-1].tolist(), starts[1:].tolist()))
    assert [term for _, _, term in cuts] == [k == "terminal" for k in kinds]
    assert np.array_equal(episode_bounds(arrays.terminals, arrays.timeouts), starts)
    assert not np.any((arrays.terminals > 0) & (arrays.timeouts > 0))
    assert arrays.terminals.sum() == 2 and arrays.timeouts.sum() == 4
    # every row is the episode's own step, flattened as TT sees it; rewards are the env's
    for (a, b, _), ep in zip(cuts, episodes):
        n = b - a
        assert n == (ep.rewards.shape[0] - 2 if ep.terminations.any() else ep.rewards.shape[0])
        native = {k: v[:n] for k, v in ep.observations.items()}
        assert np.array_equal(arrays.observations[a:b], flatten(OBS, native))
        assert np.array_equal(arrays.actions[a:b], ep.actions[:n])
        assert np.array_equal(arrays.rewards[a:b], ep.rewards[:n].astype(np.float32))
        assert arrays.terminals[a : b - 1].sum() == 0 and arrays.timeouts[a : b - 1].sum() == 0
    assert arrays.observations.dtype == arrays.actions.dtype == np.float32
    returns = [float(ep.rewards[: b - a].astype(np.float32).sum()) for (a, b, _), ep in
               zip(cuts, episodes)]  # fmt: skip
    assert arrays.episode_returns() == pytest.approx(returns, rel=1e-6)


def test_loading_gives_the_rows_tt_trains_from_with_the_env_rewards(
    pendulum_dataset: str,
) -> None:
    arrays, info = load_mdp_arrays(pendulum_dataset)
    plain, _ = load_transitions(pendulum_dataset, termination_penalty=0.0)
    # the same rows TT trains from (TT adds its penalty; the baselines get the env's rewards)
    assert np.array_equal(arrays.observations, plain.observations)
    assert np.array_equal(arrays.actions, plain.actions)
    assert np.array_equal(arrays.rewards, plain.rewards)
    assert np.array_equal(episode_bounds(arrays.terminals, arrays.timeouts), plain.episode_starts)
    assert info.n_episodes == 6 and arrays.timeouts.sum() == 6 and arrays.terminals.sum() == 0
    assert arrays.episode_returns() == pytest.approx(dataset_returns(pendulum_dataset), rel=1e-5)
    # a subset is the one TT's training draws (data.max_episodes, seeded by train.seed)
    sub, _ = load_mdp_arrays(pendulum_dataset, max_episodes=3, seed=7)
    tt_sub, _ = load_transitions(pendulum_dataset, max_episodes=3, seed=7)
    assert np.array_equal(sub.observations, tt_sub.observations)

    broken = plain
    broken.terminals[0] = True  # a termination flag inside an episode
    with pytest.raises(TTError, match="inside an episode"):
        mdp_arrays(broken)


# ------------------------------------------------------------------------------ budgets, numbers
def test_budgets_scale_only_steps_and_warmup_and_name_their_source() -> None:
    assert list(BASELINES) == ["bc", "td3bc", "cql", "iql", "dt"]
    for name, base in BASELINES.items():
        published, quick, smoke = (budget_for(name, lv) for lv in ("published", "quick", "smoke"))
        assert quick.steps == round(published.steps * base.quick_scale) < published.steps
        assert quick.warmup_steps == round(published.warmup_steps * base.quick_scale)
        assert smoke.steps == baselines.SMOKE_STEPS
        for budget in (quick, smoke):  # batch and network are the published ones at every level
            assert (budget.batch_size, budget.hidden, budget.context, budget.layers) == (
                published.batch_size, published.hidden, published.context, published.layers
            )  # fmt: skip
        assert "reproductions/offline/" in base.source or "CORL" in base.source
    assert budget_for("td3bc", "published").steps == 500_000
    assert (budget_for("dt", "quick").steps, budget_for("dt", "quick").warmup_steps) == (5_000, 500)
    assert budget_for("cql", "quick").steps == 20_000 and budget_for("bc", "quick").steps == 100_000
    with pytest.raises(TTError, match="unknown"):
        budget_for("bc", "huge")
    with pytest.raises(TTError, match="not a baseline"):
        budget_for("tt-beam", "quick")
