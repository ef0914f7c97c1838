"""Minari episodes -> flat transitions (s, a, r, V) with termination and truncation kept apart.

Conventions (the planner and the tests rely on them):
- An episode is cut at its FIRST termination; `termination_penalty` is added to that last reward
  (original TT: -100; its code sets the reward to the penalty, we add it so the env's own reward
  is kept) and `terminals` is True on that step.
- Truncation (time limit) is not termination: `timeouts` is True on the last step of a truncated
  episode and no penalty is applied.
- values[t] = discounted reward-to-go WITHIN the episode: V_t = r_t + γ V_{t+1}, V_last = r_last.
  Truncated episodes do NOT bootstrap past their last step (no value model exists at data time,
  and the original TT does the same), so late-episode values of truncated episodes are
  underestimates; the planner sees `timeouts` if it wants to treat them differently.
- The final observation of each Minari episode (T+1 rows) is not a transition and is dropped.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

import numpy as np

from ..errors import TTError
from ..store import COLLECT_RECORD_KEY, load_minari, read_guarded
from .spaces import flat_dim, flatten, space_to_json

__all__ = [
    "DatasetInfo",
    "EpisodeLike",
    "Transitions",
    "dataset_returns",
    "discounted_returns",
    "episodes_to_transitions",
    "load_transitions",
    "minari_transitions",
]


class EpisodeLike(Protocol):
    """What we read from an episode (minari.EpisodeData satisfies it)."""

    id: int
    observations: Any  # T+1 batched values of the observation space
    actions: Any  # T batched values of the action space
    rewards: np.ndarray  # (T,)
    terminations: np.ndarray  # (T,)
    truncations: np.ndarray  # (T,)


@dataclass
class Transitions:
    """All kept transitions of a dataset, episodes concatenated (CSR offsets in episode_starts)."""

    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32
    rewards: np.ndarray  # (N,) float32, termination penalty applied
    values: np.ndarray  # (N,) float32 discounted reward-to-go within the episode
    terminals: np.ndarray  # (N,) bool, True on the step of a true termination
    timeouts: np.ndarray  # (N,) bool, True on the last step of a truncated episode
    episode_starts: np.ndarray  # (E+1,) int64; episode e is rows [starts[e], starts[e+1])
    episode_ids: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.int64)
    )  # (E,) source ids

    @property
    def n_transitions(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_episodes(self) -> int:
        return int(self.episode_starts.shape[0] - 1)

    @property
    def observation_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def transition_dim(self) -> int:
        return self.observation_dim + self.action_dim + 2

    def joined(self) -> np.ndarray:
        """(N, obs_dim + act_dim + 2) float32 laid out [obs..., act..., reward, value]."""
        out = np.empty((self.n_transitions, self.transition_dim), np.float32)
        o, a = self.observation_dim, self.action_dim
        out[:, :o] = self.observations
        out[:, o : o + a] = self.actions
        out[:, o + a] = self.rewards
        out[:, o + a + 1] = self.values
        return out


@dataclass
class DatasetInfo:
    """JSON-able description of where tokens came from; stored in caches and run folders."""

    dataset: str
    dataset_id: str | None = None
    env_id: str | None = None
    env_spec: str | None = None
    eval_env_spec: str | None = None
    observation_space: str | None = None
    action_space: str | None = None
    observation_dim: int = 0
    action_dim: int = 0
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    n_episodes: int = 0
    n_transitions: int = 0
    dropped_episodes: int = 0
    discount: float = 0.99
    termination_penalty: float = 0.0
    n_bins: int = 0
    strategy: str = ""
    discretization_error: list[float] = field(default_factory=list)
    """Per-dimension mean |x - decode(encode(x))| over the dataset."""
    collect_settings: str | None = None
    """JSON of the `tt collect` settings that made the dataset (env, policy, noise, epsilon, seed,
    episodes, env_kwargs), from its Minari metadata; None for datasets made elsewhere."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DatasetInfo:
        """Rebuild from JSON, every field checked: a TTError names the first bad field."""
        if not isinstance(data, dict):
            raise TTError(f"must be a JSON object of dataset fields, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TTError(f"has unknown fields {unknown}")
        if "dataset" not in data:
            raise TTError("has no field 'dataset'")
        for name, value in data.items():
            kind = _INFO_FIELDS.get(name, "str?")
            if not _info_value_ok(value, kind):
                wanted = {"str": "a string", "str?": "a string or null", "int": "a whole number >= 0",
                          "float": "a finite number", "float?": "a finite number or null",
                          "floats": "a list of numbers"}[kind]  # fmt: skip
                raise TTError(f"field '{name}' must be {wanted}, got {str(value)[:40]!r}")
        return cls(**data)


_INFO_FIELDS = {
    "dataset": "str", "observation_dim": "int", "action_dim": "int", "n_episodes": "int",
    "n_transitions": "int", "dropped_episodes": "int", "n_bins": "int", "strategy": "str",
    "discount": "float", "termination_penalty": "float", "ref_min_score": "float?",
    "ref_max_score": "float?", "discretization_error": "floats",
}  # fmt: skip
"""DatasetInfo's field kinds for `from_dict` (fields not named here: a string or null)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _info_value_ok(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "str?":
        return value is None or isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63
    if kind == "float":
        return _is_number(value)
    if kind == "float?":
        return value is None or _is_number(value)
    return isinstance(value, list) and all(_is_number(v) for v in value)


def dataset_returns(spec: str) -> np.ndarray:
    """(E,) float64 undiscounted return of every episode of a dataset (id or path), in order.

    The data's own score, which a learned policy has to beat; every episode counts, including a
    fixed-size dataset's last, cut one (as D4RL's dataset statistics do).
    """
    dataset = load_minari(spec)
    return np.asarray(
        [
            float(np.sum(ep.rewards))
            for ep in read_guarded(dataset.iterate_episodes(), dataset, spec)
        ],
        np.float64,
    )


def discounted_returns(
    rewards: np.ndarray, episode_starts: np.ndarray, discount: float
) -> np.ndarray:
    """Exact V_t = r_t + γ V_{t+1} within each episode (V_last = r_last), in float64, vectorised.

    Episodes are laid into a right-padded (E, T_max) matrix and swept backwards once, so the
    Python loop runs T_max times regardless of the number of episodes.
    """
    starts = np.asarray(episode_starts, np.int64)
    lengths = np.diff(starts)  # (E,)
    n_eps = lengths.shape[0]
    if n_eps == 0:
        return np.zeros(0, np.float32)
    t_max = int(lengths.max())
    ep_of_row = np.repeat(np.arange(n_eps), lengths)  # (N,)
    pos = np.arange(rewards.shape[0]) - starts[ep_of_row]  # (N,) step within episode
    padded = np.zeros((n_eps, t_max + 1), np.float64)  # trailing zero column: V after the end
    padded[ep_of_row, pos] = rewards
    for t in range(t_max - 1, -1, -1):
        padded[:, t] += discount * padded[:, t + 1]
    return padded[ep_of_row, pos].astype(np.float32)


def _first_bad_row(arr: np.ndarray) -> int | None:
    bad = ~np.isfinite(arr)
    if bad.ndim > 1:
        bad = bad.any(axis=tuple(range(1, bad.ndim)))
    rows = np.flatnonzero(bad)
    return int(rows[0]) if rows.size else None


def _episode_arrays(
    ep: EpisodeLike, obs_space: Any, act_space: Any, penalty: float, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
    """One episode -> (obs (T', o), act (T', a), rewards (T',), terminated, truncated)."""
    rewards = np.asarray(ep.rewards, np.float64).reshape(-1)
    n_steps = rewards.shape[0]
    if n_steps == 0:
        raise TTError(f"{where} episode {ep.id} step 0: episode has 0 steps")
    try:
        obs = flatten(obs_space, ep.observations, "observation_space")
        act = flatten(act_space, ep.actions, "action_space")
    except TTError as err:
        raise TTError(f"{where} episode {ep.id} step 0: {err}") from None
    terms = np.asarray(ep.terminations, bool).reshape(-1)
    truncs = np.asarray(ep.truncations, bool).reshape(-1)
    for name, arr, want in (
        ("observations", obs, n_steps + 1),
        ("actions", act, n_steps),
        ("terminations", terms, n_steps),
        ("truncations", truncs, n_steps),
    ):
        if arr.shape[0] != want:
            step = min(arr.shape[0], want) - (1 if name == "observations" else 0)
            raise TTError(
                f"{where} episode {ep.id} step {max(step, 0)}: {name} have {arr.shape[0]} rows "
                f"but {n_steps} rewards need {want}"
            )
    hits = np.flatnonzero(terms)
    end = int(hits[0]) + 1 if hits.size else n_steps
    obs, act, rewards = obs[:end], act[:end], rewards[:end].copy()
    for name, arr in (("observation", obs), ("action", act), ("reward", rewards)):
        row = _first_bad_row(arr)
        if row is not None:
            raise TTError(
                f"{where} episode {ep.id} step {row}: {name} is not finite (NaN/inf); clean the "
                "data or set data.drop_bad_episodes=true"
            )
    terminated = bool(hits.size)
    if terminated:
        rewards[-1] += penalty
    truncated = not terminated and bool(truncs[end - 1])
    return obs, act, rewards, terminated, truncated


def episodes_to_transitions(
    episodes: Iterable[EpisodeLike],
    observation_space: Any,
    action_space: Any,
    discount: float = 0.99,
    termination_penalty: float = -100.0,
    drop_bad_episodes: bool = False,
    where: str = "dataset",
) -> tuple[Transitions, int]:
    """Episodes -> (Transitions, number of dropped bad episodes); see the module docstring."""
    obs_dim = flat_dim(observation_space, "observation_space")
    act_dim = flat_dim(action_space, "action_space")
    obs_parts: list[np.ndarray] = []
    act_parts: list[np.ndarray] = []
    rew_parts: list[np.ndarray] = []
    ends: list[tuple[bool, bool]] = []
    lengths: list[int] = []
    ids: list[int] = []
    dropped = 0
    seen = 0
    for ep in episodes:
        seen += 1
        try:
            obs, act, rew, terminated, truncated = _episode_arrays(
                ep, observation_space, action_space, termination_penalty, where
            )
        except TTError:
            if not drop_bad_episodes:
                raise
            dropped += 1
            continue
        obs_parts.append(obs)
        act_parts.append(act)
        rew_parts.append(rew)
        ends.append((terminated, truncated))
        lengths.append(rew.shape[0])
        ids.append(int(ep.id))
    if seen == 0:
        raise TTError(f"{where}: dataset has no episodes")
    if not lengths:
        raise TTError(f"{where}: all {seen} episodes were dropped as bad; nothing is left to use")
    starts = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    n = int(starts[-1])
    rewards = np.concatenate(rew_parts)  # (N,) float64
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    last = starts[1:] - 1
    flags = np.asarray(ends, bool).reshape(-1, 2)
    terminals[last] = flags[:, 0]
    timeouts[last] = flags[:, 1]
    transitions = Transitions(
        observations=np.concatenate(obs_parts).reshape(n, obs_dim),
        actions=np.concatenate(act_parts).reshape(n, act_dim),
        rewards=rewards.astype(np.float32),
        values=discounted_returns(rewards, starts, discount),
        terminals=terminals,
        timeouts=timeouts,
        episode_starts=starts,
        episode_ids=np.asarray(ids, np.int64),
    )
    return transitions, dropped


def _reference(meta: Any, key: str, spec: str) -> float | None:
    """A reference return from a dataset's metadata; one that is not a finite number is left out
    (said on stderr), so it is never used as a scale end: set data.<key> to give one."""
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, np.generic | np.ndarray) and np.size(value) == 1:
        value = np.asarray(value).item()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    print(
        f"warning: dataset '{spec}': metadata {key} is {str(value)[:40]!r}, not a finite number; "
        f"it is not used (set data.{key} to give the reference return)",
        file=sys.stderr,
    )
    return None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def load_transitions(
    spec: str,
    discount: float = 0.99,
    termination_penalty: float = -100.0,
    max_episodes: int | None = None,
    drop_bad_episodes: bool = False,
    seed: int = 0,
) -> tuple[Transitions, DatasetInfo]:
    """Load a Minari dataset (id or path), optionally a seeded subset of episodes, as transitions."""
    return minari_transitions(
        load_minari(spec),
        spec,
        discount=discount,
        termination_penalty=termination_penalty,
        max_episodes=max_episodes,
        drop_bad_episodes=drop_bad_episodes,
        seed=seed,
    )


def minari_transitions(
    dataset: Any,
    spec: str,
    discount: float = 0.99,
    termination_penalty: float = -100.0,
    max_episodes: int | None = None,
    drop_bad_episodes: bool = False,
    seed: int = 0,
) -> tuple[Transitions, DatasetInfo]:
    """An open `minari.MinariDataset` (named `spec` in messages and the info) as transitions."""
    indices = np.asarray(dataset.episode_indices, np.int64)
    if max_episodes is not None and max_episodes < indices.shape[0]:
        if max_episodes < 1:
            raise TTError(f"data.max_episodes must be >= 1, got {max_episodes}")
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=max_episodes, replace=False))
    episodes = read_guarded(
        dataset.iterate_episodes(episode_indices=indices.tolist()), dataset, spec
    )
    transitions, dropped = episodes_to_transitions(
        episodes,
        dataset.observation_space,
        dataset.action_space,
        discount=discount,
        termination_penalty=termination_penalty,
        drop_bad_episodes=drop_bad_episodes,
        where=f"dataset '{spec}'",
    )
    meta = dataset.storage.metadata
    env_spec = dataset.env_spec
    eval_spec = meta.get("eval_env_spec")
    info = DatasetInfo(
        dataset=spec,
        dataset_id=str(meta.get("dataset_id", spec)),
        env_id=env_spec.id if env_spec is not None else None,
        env_spec=env_spec.to_json() if env_spec is not None else None,
        eval_env_spec=str(eval_spec) if eval_spec is not None else None,
        observation_space=space_to_json(dataset.observation_space),
        action_space=space_to_json(dataset.action_space),
        observation_dim=transitions.observation_dim,
        action_dim=transitions.action_dim,
        ref_min_score=_reference(meta, "ref_min_score", spec),
        ref_max_score=_reference(meta, "ref_max_score", spec),
        n_episodes=transitions.n_episodes,
        n_transitions=transitions.n_transitions,
        dropped_episodes=dropped,
        discount=discount,
        termination_penalty=termination_penalty,
        collect_settings=_opt_str(meta.get(COLLECT_RECORD_KEY)),
    )
    return transitions, info
