"""Our episodes as the flat arrays of d3rlpy's `MDPDataset`, without importing d3rlpy.

The baselines of `tt bench quality` (lab/baselines.py) must learn from exactly the data TT
learns from: the same episodes, observations and actions flattened by `data.spaces` as TT sees
them, and termination kept apart from truncation. d3rlpy's `MDPDataset(observations, actions,
rewards, terminals, timeouts)` cuts a flat array into episodes at every row where `terminals` or
`timeouts` is set (its `EpisodeGenerator`); these arrays are built so that cut reproduces our
episodes one for one. Only the worker (lab/baselines_worker.py, in the d3rlpy venv) wraps them
in an `MDPDataset`, so this module and its tests run in the main environment.

Conventions (and where they differ from `Transitions`):
- rewards are the env's own: the caller loads with `termination_penalty=0`, since the −100
  penalty is TT's trick (the original TT config), not part of the baselines' published settings;
- `terminals[t] = 1` on the step of a true termination (bootstrapping stops there);
- `timeouts[t] = 1` on the last step of EVERY other episode: a truncated one, and also one that
  ends with neither flag (the cut last episode of a fixed-size dataset), which d3rlpy would
  otherwise silently glue to the next episode or drop. d3rlpy, like D4RL's `qlearning_dataset`,
  does not train Q-functions on the last step of such an episode (it has no next observation in
  this format); the row still counts for behaviour cloning and Decision Transformer windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import TTError
from .episodes import DatasetInfo, Transitions, load_transitions

__all__ = ["MDPArrays", "episode_bounds", "load_mdp_arrays", "mdp_arrays"]


@dataclass(frozen=True)
class MDPArrays:
    """`MDPDataset(observations, actions, rewards, terminals, timeouts)`'s arguments."""

    observations: np.ndarray  # (N, obs_dim) float32, flattened as TT sees them
    actions: np.ndarray  # (N, act_dim) float32, flattened
    rewards: np.ndarray  # (N,) float32, the env's rewards
    terminals: np.ndarray  # (N,) float32, 1.0 on the step of a true termination
    timeouts: np.ndarray  # (N,) float32, 1.0 on the last step of every other episode

    @property
    def n_transitions(self) -> int:
        return int(self.rewards.shape[0])

    def episode_returns(self) -> np.ndarray:
        """(E,) float64 undiscounted return of each episode, in order."""
        starts = episode_bounds(self.terminals, self.timeouts)
        return np.add.reduceat(self.rewards.astype(np.float64), starts[:-1])


def mdp_arrays(transitions: Transitions) -> MDPArrays:
    """The arrays for `transitions` (load them with termination_penalty=0 for env rewards)."""
    n = transitions.n_transitions
    last = transitions.episode_starts[1:] - 1  # (E,) the last row of each episode
    ended = np.zeros(n, bool)
    ended[last] = True
    terminals = transitions.terminals & ended
    if terminals.sum() != transitions.terminals.sum():
        raise TTError("a termination flag is set inside an episode; episodes end at termination")
    return MDPArrays(
        observations=np.ascontiguousarray(transitions.observations, np.float32),
        actions=np.ascontiguousarray(transitions.actions, np.float32),
        rewards=np.ascontiguousarray(transitions.rewards, np.float32),
        terminals=terminals.astype(np.float32),
        timeouts=(ended & ~terminals).astype(np.float32),
    )


def episode_bounds(terminals: np.ndarray, timeouts: np.ndarray) -> np.ndarray:
    """(E+1,) episode start rows, cutting where d3rlpy's EpisodeGenerator cuts (after every row
    with `terminals` or `timeouts` set). Rows after the last cut would belong to no episode."""
    ends = np.flatnonzero(np.logical_or(np.asarray(terminals) > 0, np.asarray(timeouts) > 0))
    return np.concatenate([[0], ends + 1]).astype(np.int64)


def load_mdp_arrays(
    spec: str,
    max_episodes: int | None = None,
    drop_bad_episodes: bool = False,
    seed: int = 0,
) -> tuple[MDPArrays, DatasetInfo]:
    """A Minari dataset (id or path) as MDP arrays, through the loader TT trains from.

    `max_episodes`, `drop_bad_episodes` and `seed` select episodes exactly as TT's training does
    (`data.max_episodes` subset seeded with `train.seed`); no termination penalty is applied.
    """
    transitions, info = load_transitions(
        spec,
        termination_penalty=0.0,
        max_episodes=max_episodes,
        drop_bad_episodes=drop_bad_episodes,
        seed=seed,
    )
    return mdp_arrays(transitions), info
