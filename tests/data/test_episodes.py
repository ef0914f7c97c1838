"""Episodes -> transitions: reward-to-go exactness, termination/truncation, every bad input."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from trajectory_transformer.data.episodes import (
    discounted_returns,
    episodes_to_transitions,
    load_transitions,
)
from trajectory_transformer.errors import TTError
from trajectory_transformer.store import load_minari

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = spaces.Box(-2, 2, (1,), np.float32)


@dataclass
class Ep:
    id: int
    observations: Any
    actions: Any
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, Any] = field(default_factory=dict)


def make_ep(i: int, t: int, term_at: int | None = None, trunc: bool = True, seed: int = 0) -> Ep:
    rng = np.random.default_rng(seed + i)
    terms = np.zeros(t, bool)
    truncs = np.zeros(t, bool)
    if term_at is not None:
        terms[term_at:] = True  # steps after a termination must be ignored
    elif trunc:
        truncs[-1] = True
    return Ep(
        i,
        rng.normal(size=(t + 1, 3)).astype(np.float32),
        rng.uniform(-2, 2, (t, 1)).astype(np.float32),
        rng.normal(size=t),
        terms,
        truncs,
    )


def naive_values(rewards: list[float], gamma: float) -> list[float]:
    out, running = [], 0.0
    for r in reversed(rewards):
        running = r + gamma * running
        out.append(running)
    return out[::-1]


@pytest.mark.parametrize("gamma", [0.99, 0.5, 1.0])
def test_reward_to_go_matches_naive_loop(gamma: float) -> None:
    eps = [make_ep(i, t) for i, t in enumerate([1, 7, 30, 3])]
    tr, dropped = episodes_to_transitions(eps, OBS, ACT, discount=gamma)
    assert dropped == 0
    for e, ep in enumerate(eps):
        a, b = tr.episode_starts[e], tr.episode_starts[e + 1]
        want = naive_values(list(ep.rewards), gamma)
        np.testing.assert_allclose(tr.values[a:b], want, rtol=1e-6, atol=1e-6)
        assert tr.values[b - 1] == np.float32(ep.rewards[-1])  # V_last = r_last, no bootstrap
    flat = np.concatenate([ep.rewards for ep in eps])
    np.testing.assert_allclose(discounted_returns(flat, tr.episode_starts, gamma), tr.values)


def test_termination_cut_and_penalty_truncation_distinct() -> None:
    term = make_ep(0, 10, term_at=4)
    trunc = make_ep(1, 6)
    open_ended = make_ep(2, 5, trunc=False)
    tr, _ = episodes_to_transitions([term, trunc, open_ended], OBS, ACT, 0.9, -100.0)
    np.testing.assert_array_equal(np.diff(tr.episode_starts), [5, 6, 5])
    assert tr.rewards[4] == np.float32(term.rewards[4] - 100.0)
    np.testing.assert_allclose(tr.rewards[:4], term.rewards[:4].astype(np.float32))
    assert tr.terminals.tolist() == [False] * 4 + [True] + [False] * 11
    assert tr.timeouts.tolist() == [False] * 10 + [True] + [False] * 5
    assert not (tr.terminals & tr.timeouts).any()
    np.testing.assert_allclose(tr.values[:5], naive_values(list(tr.rewards[:5]), 0.9), rtol=1e-5)
    joined = tr.joined()
    assert joined.shape == (16, 3 + 1 + 2) and joined.dtype == np.float32
    np.testing.assert_array_equal(joined[:, 4], tr.rewards)
    np.testing.assert_array_equal(joined[:, 5], tr.values)
    np.testing.assert_array_equal(joined[:5, :3], term.observations[:5])


def _corrupt(kind: str) -> Ep:
    ep = make_ep(7, 8)
    if kind == "nan_obs":
        ep.observations[3, 1] = np.nan
    elif kind == "inf_action":
        ep.actions[5, 0] = np.inf
    elif kind == "nan_reward":
        ep.rewards[6] = np.nan
    elif kind == "short_actions":
        ep.actions = ep.actions[:5]
    elif kind == "wrong_obs_width":
        ep.observations = np.zeros((9, 4), np.float32)
    elif kind == "empty":
        ep = Ep(
            7, np.zeros((1, 3)), np.zeros((0, 1)), np.zeros(0), np.zeros(0, bool), np.zeros(0, bool)
        )
    return ep


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("nan_obs", r"episode 7 step 3: observation is not finite"),
        ("inf_action", r"episode 7 step 5: action is not finite"),
        ("nan_reward", r"episode 7 step 6: reward is not finite"),
        ("short_actions", r"episode 7 step 5: actions have 5 rows but 8 rewards need 8"),
        (
            "wrong_obs_width",
            r"episode 7 step 0: observation_space: batched value of shape \(9, 4\)",
        ),
        ("empty", r"episode 7 step 0: episode has 0 steps"),
    ],
)
def test_bad_input_messages_and_drop(kind: str, pattern: str) -> None:
    eps = [make_ep(0, 5), _corrupt(kind), make_ep(2, 4)]
    with pytest.raises(TTError, match=pattern) as err:
        episodes_to_transitions(eps, OBS, ACT, where="dataset 'x'")
    assert "\n" not in str(err.value) and str(err.value).startswith("dataset 'x' episode 7")
    tr, dropped = episodes_to_transitions(eps, OBS, ACT, drop_bad_episodes=True)
    assert dropped == 1 and tr.n_episodes == 2 and tr.episode_ids.tolist() == [0, 2]


def test_nan_after_termination_is_ignored() -> None:
    ep = make_ep(0, 8, term_at=2)
    ep.observations[5] = np.nan
    tr, _ = episodes_to_transitions([ep], OBS, ACT)
    assert tr.n_transitions == 3


def test_empty_dataset_and_all_dropped() -> None:
    with pytest.raises(TTError, match="dataset has no episodes"):
        episodes_to_transitions([], OBS, ACT)
    with pytest.raises(TTError, match="all 1 episodes were dropped"):
        episodes_to_transitions([_corrupt("nan_obs")], OBS, ACT, drop_bad_episodes=True)


def test_dict_spaces_flatten_in_transitions() -> None:
    obs_space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,)), "mode": spaces.Discrete(3)})
    ep = Ep(
        0,
        {"pos": np.zeros((4, 2), np.float32), "mode": np.array([0, 1, 2, 1])},
        np.zeros((3, 1), np.float32),
        np.ones(3),
        np.zeros(3, bool),
        np.array([False, False, True]),
    )
    tr, _ = episodes_to_transitions([ep], obs_space, ACT)
    assert tr.observations.shape == (3, 3)
    np.testing.assert_array_equal(tr.observations[:, 0], [0, 1, 2])  # Dict keys sorted: mode, pos


def test_load_from_minari_id_path_and_subsample(pendulum_dataset: str) -> None:
    tr, info = load_transitions(pendulum_dataset, discount=0.99)
    assert tr.n_episodes == 6 and tr.n_transitions == 1200 and tr.observation_dim == 3
    assert tr.timeouts.sum() == 6 and not tr.terminals.any()
    assert info.env_id == "Pendulum-v1" and info.ref_min_score is not None
    assert info.ref_max_score is not None and info.ref_max_score > info.ref_min_score
    folder = load_minari(pendulum_dataset).spec.data_path
    tr_path, _ = load_transitions(str(folder))
    np.testing.assert_array_equal(tr_path.observations, tr.observations)
    sub1, _ = load_transitions(pendulum_dataset, max_episodes=3, seed=5)
    sub2, _ = load_transitions(pendulum_dataset, max_episodes=3, seed=5)
    assert sub1.n_episodes == 3 and sub1.episode_ids.tolist() == sub2.episode_ids.tolist()


def test_unknown_id_one_line_error_with_collect_hint(
    minari_tmp: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minari.storage.hosting

    def no_network(dataset_id: str, force_download: bool = False) -> None:
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(minari.storage.hosting, "download_dataset", no_network)
    monkeypatch.setattr("trajectory_transformer.store.network_problem", lambda: None)
    with pytest.raises(TTError) as err:
        load_minari("mujoco/hopper/expert-v0")
    msg = str(err.value)
    assert "\n" not in msg and "not available locally" in msg and "cannot be downloaded" in msg
    assert "Name or service not known" in msg
    assert msg.endswith(
        "tt collect --recipe hopper-expert-quick, then data.dataset=tt/hopper/expert-quick-v1"
    )
