"""Goal-conditioned data: where the goal sits in a Dict observation, and each window's goal.

With `data.goal_key` (PointMaze: "desired_goal") the goal is taken OUT of every step's flat
observation and given to the model once, as a prefix of its own tokens ahead of each window
(model/gpt.py). `GoalLayout` says which flat observation dimensions are the goal, which stay the
per-step observation, and which of those are the achieved position (`data.achieved_key`) that the
goal is compared with. The training goal of a window (`data.goal_relabel`):
- episode: the goal stored with the window's first step (the data's own goal);
- final: hindsight relabelling, the episode's last achieved position, for data whose episodes have
  no goal of their own (or reach other places than the one they were given).
Reward and value tokens stay the dataset's either way (they are not recomputed for a relabelled
goal); `plan.mode=goal` does not read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from ..errors import ConfigError
from .spaces import flat_dim

__all__ = ["GoalLayout", "goal_layout", "window_goals"]


@dataclass(frozen=True)
class GoalLayout:
    """Flat indices of the goal and of the kept observation in the env's flat observation."""

    goal_key: str
    goal: np.ndarray  # (G,) indices into the env's flat observation
    state: np.ndarray  # (O,) indices into the env's flat observation: the per-step observation
    achieved: np.ndarray | None  # (G,) indices into the per-step observation; None: no such key

    @property
    def goal_dim(self) -> int:
        return int(self.goal.size)

    def split(self, flat_obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Env flat observations (N, O + G) -> (per-step observations (N, O), goals (N, G))."""
        return flat_obs[:, self.state], flat_obs[:, self.goal]


def _key_dims(space: spaces.Dict) -> dict[str, np.ndarray]:
    """Flat indices of every top-level key of a Dict space (flatten order: space.spaces order)."""
    out, offset = {}, 0
    for key, sub in space.spaces.items():
        d = flat_dim(sub, f"observation_space[{key!r}]")
        out[key] = np.arange(offset, offset + d)
        offset += d
    return out


def goal_layout(space: spaces.Space[Any], goal_key: str, achieved_key: str | None) -> GoalLayout:
    """The layout for `data.goal_key` in this observation space; a one-line ConfigError if the
    space is not a Dict or has no such key."""
    if not isinstance(space, spaces.Dict):
        raise ConfigError(
            f"data.goal_key={goal_key!r} needs a Dict observation space; this dataset observes "
            f"{type(space).__name__}{tuple(getattr(space, 'shape', None) or ())} (set "
            "data.goal_key=null)"
        )
    dims = _key_dims(space)
    if goal_key not in dims:
        raise ConfigError(
            f"data.goal_key={goal_key!r} is not a key of the observation space; its keys are "
            f"{list(dims)}"
        )
    goal = dims[goal_key]
    state = np.concatenate([d for k, d in dims.items() if k != goal_key]).astype(np.int64)
    achieved = None
    if achieved_key is not None:  # named, so needed: a typo must not surface hours later
        if achieved_key not in dims or dims[achieved_key].size != goal.size:
            raise ConfigError(
                f"data.achieved_key={achieved_key!r} must name a key of the observation with as "
                f"many dimensions as the goal ({goal.size}); its keys are "
                f"{ {k: int(d.size) for k, d in dims.items()} } (null: there is none)"
            )
        achieved = np.searchsorted(state, dims[achieved_key])  # positions within `state`
    return GoalLayout(goal_key, goal.astype(np.int64), state, achieved)


def window_goals(
    goals: np.ndarray,
    achieved: np.ndarray | None,
    episode_starts: np.ndarray,
    relabel: str,
) -> np.ndarray:
    """(N, G) the goal of the window starting at each transition (see the module docstring).

    goals (N, G) the stored goal of each step; achieved (N, G) the achieved position of each step
    (needed for relabel="final"); episode_starts (E+1,) CSR offsets. "final" takes the achieved
    position of the episode's last transition, which is one action before the episode's end:
    transitions keep no observation after their last action.
    """
    if relabel == "episode":
        return np.ascontiguousarray(goals)
    if relabel == "final":
        if achieved is None:
            raise ConfigError(
                "data.goal_relabel=final needs data.achieved_key to name a Dict key with as many "
                "dimensions as the goal"
            )
        starts = np.asarray(episode_starts, np.int64)
        last = np.repeat(starts[1:] - 1, np.diff(starts))  # (N,) last row of each row's episode
        return np.ascontiguousarray(achieved[last])
    raise ConfigError(f"data.goal_relabel={relabel!r}: use episode or final")
