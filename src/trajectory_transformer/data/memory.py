"""Datasets in memory: episodes from NumPy arrays or an open Minari dataset, without a store.

`tt.train(cfg, run_dir, dataset=...)` takes what a user already holds, as d3rlpy's `MDPDataset`
does: a `minari.MinariDataset` (e.g. from `minari.load_dataset`), an `Episodes` built from flat
arrays (`Episodes.from_arrays`), or a `TokenizedDataset` (already tokens). All of them become the
same tokens `prepare_tokens` makes from a dataset id (same termination penalty, reward-to-go,
seeded `data.max_episodes` subset, goal split and bins), and the run records the spaces and the
env id, so `TTPolicy.load(run)` and `tt eval` work on it like on any run.

`Episodes.from_arrays` reads the flat layout of d3rlpy and D4RL: row t is (observation_t, action_t,
reward_t, termination_t, truncation_t), and an episode ends on every row where termination or
truncation is set (rows after the last flag are one more, cut episode). Observations and actions
are batched values of their spaces (an (N, ...) array for a Box, a dict of them for a Dict), so
any space `data.spaces` flattens works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ..config import DataConfig
from ..errors import TTError
from .episodes import DatasetInfo, Transitions, episodes_to_transitions, minari_transitions
from .spaces import space_to_json
from .tokens import TokenizedDataset, build_tokenized, split_goals

__all__ = ["Episode", "Episodes", "dataset_name", "tokenize_in_memory"]


@dataclass
class Episode:
    """One episode in Minari's layout (T+1 observations, T of the rest); an `EpisodeLike`."""

    id: int
    observations: Any
    actions: Any
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray


@dataclass
class Episodes:
    """Episodes in memory with their spaces: a dataset for `tt.train(..., dataset=...)`.

    `env_id` (a registered Gymnasium id) is what `tt eval` and `TTPolicy` users evaluate in;
    without it the run trains and loads as a policy, but `tt eval` cannot make its env.
    `ref_min_score`/`ref_max_score`: the returns that score 0 and 100 at evaluation.
    """

    episodes: list[Episode]
    observation_space: gym.Space[Any]
    action_space: gym.Space[Any]
    name: str = "in-memory"
    env_id: str | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None

    @classmethod
    def from_arrays(
        cls,
        observations: Any,
        actions: Any,
        rewards: Any,
        terminations: Any,
        truncations: Any,
        *,
        observation_space: gym.Space[Any] | None = None,
        action_space: gym.Space[Any] | None = None,
        env_id: str | None = None,
        name: str = "in-memory",
        ref_min_score: float | None = None,
        ref_max_score: float | None = None,
    ) -> Episodes:
        """Episodes from flat arrays of N rows (see the module docstring for the layout).

        The spaces default to those of `env_id`'s env (made once to read them); give them when
        the data has no registered env. A row count that differs between the arrays, or data
        that does not fit its space, is a one-line TTError naming the argument.
        """
        if observation_space is None or action_space is None:
            if env_id is None:
                raise TTError(
                    "Episodes.from_arrays needs observation_space and action_space, or env_id "
                    "(a registered Gymnasium env to read them from)"
                )
            env = _make(env_id)
            observation_space = observation_space or env.observation_space
            action_space = action_space or env.action_space
            env.close()
        rewards = np.asarray(rewards, np.float64)
        if rewards.ndim != 1 or rewards.shape[0] == 0:
            raise TTError(f"rewards must be a non-empty 1-D array (N,), got shape {rewards.shape}")
        n = rewards.shape[0]
        flags = {}
        for label, values in (("terminations", terminations), ("truncations", truncations)):
            arr = np.asarray(values)
            if arr.shape != (n,):
                raise TTError(f"{label} has shape {arr.shape}; expected ({n},) like rewards")
            flags[label] = arr.astype(bool)
        for label, space, value in (
            ("observations", observation_space, observations),
            ("actions", action_space, actions),
        ):
            _check_rows(space, value, n, label)
        done = flags["terminations"] | flags["truncations"]
        ends = np.flatnonzero(done).tolist()
        if not ends or ends[-1] != n - 1:
            ends.append(n - 1)  # the rows after the last flag: one more, cut episode
        episodes = []
        start = 0
        for i, end in enumerate(ends):
            rows = np.arange(start, end + 1)
            # Minari's layout has T+1 observations; the last is not a transition and is dropped
            # (data/episodes.py), so the final row stands in for it
            obs_rows = np.append(rows, end)
            episodes.append(
                Episode(
                    id=i,
                    observations=_take(observation_space, observations, obs_rows),
                    actions=_take(action_space, actions, rows),
                    rewards=rewards[rows],
                    terminations=flags["terminations"][rows],
                    truncations=flags["truncations"][rows],
                )
            )
            start = end + 1
        return cls(
            episodes,
            observation_space,
            action_space,
            name=name,
            env_id=env_id,
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
        )

    def __len__(self) -> int:
        return len(self.episodes)


def _make(env_id: str) -> gym.Env[Any, Any]:
    try:
        return gym.make(env_id)
    except gym.error.Error as err:
        raise TTError(
            f"env_id={env_id!r}: cannot make it ({err}); pass the spaces instead"
        ) from err


def _check_rows(space: gym.Space[Any], value: Any, n: int, where: str) -> None:
    """Every leaf of a batched value of `space` has n rows."""
    if isinstance(space, spaces.Dict):
        if not isinstance(value, dict) or any(k not in value for k in space.spaces):
            raise TTError(f"{where}: expected a dict with keys {list(space.spaces)}")
        for key, sub in space.spaces.items():
            _check_rows(sub, value[key], n, f"{where}[{key!r}]")
    elif isinstance(space, spaces.Tuple):
        if not isinstance(value, tuple | list) or len(value) != len(space.spaces):
            raise TTError(f"{where}: expected a tuple of {len(space.spaces)} parts")
        for i, sub in enumerate(space.spaces):
            _check_rows(sub, value[i], n, f"{where}[{i}]")
    else:
        shape = space.nvec.shape if isinstance(space, spaces.MultiDiscrete) else space.shape
        want: tuple[int, ...] = tuple(shape or ())
        got: tuple[int, ...] = tuple(np.shape(value)) if not isinstance(value, dict | str) else ()
        if len(got) != len(want) + 1 or got[1:] != want:
            expected = "(" + ", ".join(["N", *map(str, want)]) + ("," if not want else "") + ")"
            raise TTError(f"{where} has shape {got}; expected {expected} for {space}")
        if got[0] != n:
            raise TTError(f"{where} has {got[0]} rows but rewards has {n}; give one per step")


def _take(space: gym.Space[Any], value: Any, rows: np.ndarray) -> Any:
    """Rows of a batched value of `space` (dicts and tuples taken leaf by leaf)."""
    if isinstance(space, spaces.Dict):
        return {k: _take(sub, value[k], rows) for k, sub in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_take(sub, value[i], rows) for i, sub in enumerate(space.spaces))
    return np.asarray(value)[rows]


def _is_minari(source: Any) -> bool:
    return all(hasattr(source, a) for a in ("iterate_episodes", "episode_indices", "storage"))


def dataset_name(source: Any) -> str:
    """What a run's `data.dataset` records for an in-memory dataset: the Minari id or its name."""
    if isinstance(source, Episodes):
        return source.name
    if isinstance(source, TokenizedDataset):
        return source.info.dataset
    if _is_minari(source):
        return str(source.spec.dataset_id)
    raise TTError(
        f"dataset= takes a minari.MinariDataset, a trajectory_transformer Episodes "
        f"(Episodes.from_arrays) or a TokenizedDataset, got {type(source).__name__}"
    )


def _subset(episodes: Sequence[Episode], max_episodes: int | None, seed: int) -> list[Episode]:
    """The seeded subset `data.max_episodes` draws (the rule of `load_transitions`)."""
    if max_episodes is None or max_episodes >= len(episodes):
        return list(episodes)
    if max_episodes < 1:
        raise TTError(f"data.max_episodes must be >= 1, got {max_episodes}")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(np.arange(len(episodes)), size=max_episodes, replace=False))
    return [episodes[int(i)] for i in picked]


def _episodes_transitions(
    source: Episodes, cfg: DataConfig, seed: int
) -> tuple[Transitions, DatasetInfo]:
    transitions, dropped = episodes_to_transitions(
        _subset(source.episodes, cfg.max_episodes, seed),
        source.observation_space,
        source.action_space,
        discount=cfg.discount,
        termination_penalty=cfg.termination_penalty,
        drop_bad_episodes=cfg.drop_bad_episodes,
        where=f"dataset '{source.name}'",
    )
    info = DatasetInfo(
        dataset=source.name,
        dataset_id=None,
        env_id=source.env_id,
        observation_space=space_to_json(source.observation_space),
        action_space=space_to_json(source.action_space),
        observation_dim=transitions.observation_dim,
        action_dim=transitions.action_dim,
        ref_min_score=source.ref_min_score,
        ref_max_score=source.ref_max_score,
        n_episodes=transitions.n_episodes,
        n_transitions=transitions.n_transitions,
        dropped_episodes=dropped,
        discount=cfg.discount,
        termination_penalty=cfg.termination_penalty,
    )
    return transitions, info


def tokenize_in_memory(source: Any, cfg: DataConfig, seed: int = 0) -> TokenizedDataset:
    """Tokens of an in-memory dataset, as `prepare_tokens` makes them from a dataset id (no cache).

    `seed` draws the `data.max_episodes` subset (the run's train.seed, as for a dataset id).
    """
    if isinstance(source, TokenizedDataset):
        return source
    name = dataset_name(source)  # rejects what is not a dataset
    if isinstance(source, Episodes):
        transitions, info = _episodes_transitions(source, cfg, seed)
    else:
        transitions, info = minari_transitions(
            source,
            name,
            discount=cfg.discount,
            termination_penalty=cfg.termination_penalty,
            max_episodes=cfg.max_episodes,
            drop_bad_episodes=cfg.drop_bad_episodes,
            seed=seed,
        )
    goals = None
    if cfg.goal_key is not None:
        transitions, goals = split_goals(transitions, info, cfg)
    return build_tokenized(transitions, info, cfg.n_bins, cfg.strategy, goals)
