"""The contract between rollouts and whatever picks actions: flat float vectors, batched by env slot.

Rollouts own the environments and their native spaces; agents see only flat float32 vectors
(`data.spaces.flatten`). Every call names the env slots it concerns, so an agent can keep per-slot
state (the planner keeps each env's context) while finished envs simply stop appearing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from ..data.spaces import flat_dim, flatten, unflatten

__all__ = ["Agent", "PolicyAgent", "RandomAgent"]


@runtime_checkable
class Agent(Protocol):
    """Acts in a batch of env slots; slots are ints in [0, n_envs)."""

    def reset(self, slots: np.ndarray) -> None:
        """New episodes start in these slots: forget what was stored for them."""

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """(k,) slots, (k, obs_dim) float32 → (k, act_dim) float32 flat actions."""
        ...

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """The transition just taken in these slots (actions as returned by `act`)."""


class RandomAgent:
    """Uniform actions from the env's action space: the 0 of the normalized score."""

    def __init__(self, action_space: gym.Space[Any], seed: int = 0) -> None:
        self.action_space = action_space
        self.act_dim = flat_dim(action_space)
        self._flatten = flatten
        self._box = isinstance(action_space, gym.spaces.Box)
        self._rng = np.random.default_rng(seed)
        if not self._box:
            action_space.seed(seed)

    def reset(self, slots: np.ndarray) -> None:
        pass

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        k = len(slots)
        if self._box:  # one vectorised draw instead of k calls to space.sample()
            space = self.action_space
            assert isinstance(space, gym.spaces.Box)
            low = np.broadcast_to(space.low, space.shape).reshape(-1).astype(np.float64)
            high = np.broadcast_to(space.high, space.shape).reshape(-1).astype(np.float64)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ValueError("RandomAgent needs a bounded Box action space")
            return self._rng.uniform(low, high, size=(k, low.size)).astype(np.float32)
        batch = gym.vector.utils.batch_space(self.action_space, k)
        batch.seed(int(self._rng.integers(2**31)))
        return np.asarray(self._flatten(self.action_space, batch.sample()), dtype=np.float32)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class PolicyAgent:
    """Wraps a memoryless policy (a `data.policies` callable on native observation batches).

    Used for the behaviour-policy baseline: the same rollout code evaluates it and the planner.
    """

    def __init__(
        self,
        policy: Callable[[Any], Any],
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
    ) -> None:

        self.policy = policy
        self.observation_space = observation_space
        self.action_space = action_space
        self._flatten = flatten
        self._unflatten = unflatten

    def reset(self, slots: np.ndarray) -> None:
        pass

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        native = self._unflatten(self.observation_space, observations)
        actions = self.policy(native)
        return np.asarray(self._flatten(self.action_space, actions), dtype=np.float32)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass
