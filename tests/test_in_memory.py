"""Training from data in memory: a `minari.MinariDataset` or `Episodes.from_arrays` gives the same
tokens as the dataset id, the run records its spaces, and `TTPolicy.load` and `tt eval` work on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest
from gymnasium import spaces

import trajectory_transformer as tt
from tiny import TINY_DATA, TINY_TRAIN
from trajectory_transformer import runs
from trajectory_transformer.config import DataConfig, load_config
from trajectory_transformer.data.memory import tokenize_in_memory
from trajectory_transformer.data.tokens import prepare_tokens
from trajectory_transformer.errors import TTError


def _flat_rows(dataset_id: str) -> dict[str, np.ndarray]:
    """A Minari dataset as d3rlpy-style flat arrays (N rows, the final observations dropped)."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "act", "rew", "term", "trunc")}
    for ep in minari.load_dataset(dataset_id).iterate_episodes():
        parts["obs"].append(np.asarray(ep.observations)[:-1])
        parts["act"].append(np.asarray(ep.actions))
        parts["rew"].append(np.asarray(ep.rewards))
        parts["term"].append(np.asarray(ep.terminations))
        parts["trunc"].append(np.asarray(ep.truncations))
    return {k: np.concatenate(v) for k, v in parts.items()}


def _episodes(dataset_id: str, **kwargs: Any) -> tt.Episodes:
    rows = _flat_rows(dataset_id)
    return tt.Episodes.from_arrays(
        rows["obs"], rows["act"], rows["rew"], rows["term"], rows["trunc"], **kwargs
    )


def _data_cfg(dataset_id: str) -> DataConfig:
    return load_config(None, [f"data.dataset={dataset_id}", *TINY_DATA]).data


def test_minari_dataset_and_arrays_give_the_tokens_of_the_dataset_id(
    pendulum_dataset: str,
) -> None:
    cfg = _data_cfg(pendulum_dataset)
    want = prepare_tokens(cfg)
    from_minari = tokenize_in_memory(minari.load_dataset(pendulum_dataset), cfg)
    from_arrays = tokenize_in_memory(_episodes(pendulum_dataset, env_id="Pendulum-v1"), cfg)
    for got in (from_minari, from_arrays):
        np.testing.assert_array_equal(got.tokens, want.tokens)
        np.testing.assert_array_equal(got.episode_starts, want.episode_starts)
        np.testing.assert_array_equal(got.discretizer.edges, want.discretizer.edges)
        assert got.info.observation_space == want.info.observation_space
        assert got.info.action_space == want.info.action_space
    assert from_minari.info.env_id == from_arrays.info.env_id == "Pendulum-v1"


def test_max_episodes_draws_the_same_subset_in_memory(pendulum_dataset: str) -> None:
    cfg = load_config(None, [f"data.dataset={pendulum_dataset}", *TINY_DATA, "data.max_episodes=3"])
    want = prepare_tokens(cfg.data, seed=7)
    got = tokenize_in_memory(_episodes(pendulum_dataset, env_id="Pendulum-v1"), cfg.data, seed=7)
    np.testing.assert_array_equal(got.tokens, want.tokens)


def test_train_on_a_minari_dataset_then_load_and_evaluate(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    cfg = tt.load_config(None, [*TINY_TRAIN, "train.max_steps=2", "plan.context=3"])
    run = tt.train(cfg, tmp_path / "run", dataset=minari.load_dataset(pendulum_dataset))
    assert tt.load_run(run).config.data.dataset == pendulum_dataset  # config.json names it
    policy = tt.TTPolicy.load(run, device="cpu", mode="greedy")
    action = policy.act(np.zeros(3, np.float32))
    assert policy.action_space.contains(action)


def test_train_from_arrays_then_load_and_tt_eval(pendulum_dataset: str, tmp_path: Path) -> None:
    episodes = _episodes(pendulum_dataset, env_id="Pendulum-v1", name="my-pendulum")
    cfg = tt.load_config(None, [*TINY_TRAIN, "train.max_steps=2", "plan.context=3"])
    run = tt.train(cfg, tmp_path / "run", dataset=episodes)
    loaded = tt.load_run(run)
    assert loaded.config.data.dataset == "my-pendulum"
    assert loaded.info.env_id == "Pendulum-v1" and loaded.info.observation_space
    policy = tt.TTPolicy.load(run, device="cpu", mode="greedy")
    assert isinstance(policy.observation_space, spaces.Box)
    summary = tt.evaluate(
        run,
        [
            "eval.episodes=1",
            "eval.n_envs=1",
            "eval.max_episode_steps=5",
            "plan.mode=greedy",
            "eval.device=cpu",
            "eval.progress=false",
        ],
    )
    assert summary["episodes"] == 1 and summary["dataset"] == "my-pendulum"


def test_from_arrays_reads_the_spaces_of_env_id_and_cuts_episodes_at_flags() -> None:
    n = 7
    obs = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    act = np.zeros((n, 1), np.float32)
    term = np.array([0, 0, 1, 0, 0, 0, 0], bool)
    trunc = np.array([0, 0, 0, 0, 1, 0, 0], bool)
    episodes = tt.Episodes.from_arrays(obs, act, np.ones(n), term, trunc, env_id="Pendulum-v1")
    assert episodes.observation_space == gym.make("Pendulum-v1").observation_space
    lengths = [len(ep.rewards) for ep in episodes.episodes]
    assert lengths == [3, 2, 2]  # terminated, truncated, and the cut rows after the last flag
    assert [len(ep.observations) for ep in episodes.episodes] == [4, 3, 3]
    np.testing.assert_array_equal(episodes.episodes[1].observations[:2], obs[3:5])


def test_from_arrays_takes_dict_observations_row_by_row() -> None:
    space = spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3)})
    n = 4
    obs = {
        "pos": np.linspace(-1, 1, n * 2, dtype=np.float32).reshape(n, 2),
        "mode": np.array([0, 1, 2, 0]),
    }
    episodes = tt.Episodes.from_arrays(
        obs,
        np.zeros((n, 1), np.float32),
        np.zeros(n),
        np.zeros(n, bool),
        np.array([0, 1, 0, 1], bool),
        observation_space=space,
        action_space=spaces.Box(-1, 1, (1,), np.float32),
    )
    second = episodes.episodes[1].observations
    np.testing.assert_array_equal(second["mode"], [2, 0, 0])  # rows 2, 3 and the stand-in final
    np.testing.assert_array_equal(second["pos"][0], obs["pos"][2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actions": np.zeros((4, 1))}, "actions has 4 rows but rewards has 5"),
        ({"terminations": np.zeros(3)}, r"terminations has shape \(3,\); expected \(5,\)"),
        ({"rewards": np.zeros((5, 2))}, "rewards must be a non-empty 1-D array"),
        ({"actions": 3.0}, r"actions has shape \(\); expected \(N, 1\)"),
        (
            {"observations": {"x": np.zeros((5, 3))}},
            r"observations has shape \(\); expected \(N, 3\)",
        ),
    ],
)
def test_from_arrays_bad_input_is_one_line(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "observations": np.zeros((5, 3), np.float32),
        "actions": np.zeros((5, 1), np.float32),
        "rewards": np.zeros(5),
        "terminations": np.zeros(5, bool),
        "truncations": np.zeros(5, bool),
    }
    args.update(kwargs)
    with pytest.raises(TTError, match=message) as err:
        tt.Episodes.from_arrays(**args, env_id="Pendulum-v1")
    assert "\n" not in str(err.value)


def test_from_arrays_without_spaces_or_env_id_says_what_to_give() -> None:
    with pytest.raises(TTError, match="needs observation_space and action_space, or env_id"):
        tt.Episodes.from_arrays(np.zeros((2, 3)), np.zeros((2, 1)), np.zeros(2), [0, 0], [0, 1])


def test_train_refuses_what_is_not_a_dataset(tmp_path: Path) -> None:
    cfg = tt.load_config(None, [*TINY_TRAIN, "train.max_steps=1"])
    with pytest.raises(TTError, match=r"dataset= takes a minari\.MinariDataset.*got dict"):
        tt.train(cfg, tmp_path / "run", dataset={"observations": []})


def test_a_run_from_arrays_resumes_with_the_same_dataset(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    episodes = _episodes(pendulum_dataset, env_id="Pendulum-v1")
    cfg = tt.load_config(None, [*TINY_TRAIN, "train.max_steps=2", "train.save_every=1"])
    run = tt.train(cfg, tmp_path / "run", dataset=episodes)
    tt.train(None, run, resume=True, overrides=["train.max_steps=3"], dataset=episodes)
    assert runs.train_step(run) == 3  # the newest checkpoint: one more step on the same data
