"""Behaviour policies for `tt collect`: random, shipped scripted experts, SB3 checkpoints, and a
noise/epsilon mixture for D4RL-style random / medium / expert / medium-expert data.

A policy maps a BATCH of observations (N, ...) to a batch of actions (N, ...), so collection can
step several environments in lockstep with one policy call.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from ..errors import TTError
from ..utils import lazy_import

__all__ = [
    "EXPERTS",
    "MEDIUMS",
    "SCRIPTED",
    "NoisyPolicy",
    "PendulumExpert",
    "Policy",
    "RandomPolicy",
    "SB3Policy",
    "make_policy",
    "pendulum_medium",
    "register_expert",
]


class Policy(Protocol):
    def __call__(self, obs: Any) -> np.ndarray: ...


def _batch_size(obs: Any) -> int:
    if isinstance(obs, dict):
        return _batch_size(next(iter(obs.values())))
    if isinstance(obs, tuple):
        return _batch_size(obs[0])
    return int(np.shape(obs)[0])


class RandomPolicy:
    """Uniform random actions from the action space, seeded."""

    def __init__(self, action_space: gym.Space[Any], seed: int = 0) -> None:
        self.space = action_space
        self.space.seed(seed)

    def __call__(self, obs: Any) -> np.ndarray:
        return np.stack([np.asarray(self.space.sample()) for _ in range(_batch_size(obs))])


class PendulumExpert:
    """Energy-pumping swing-up plus PD balance for Pendulum-v1 (obs = [cos θ, sin θ, θ̇]).

    Pendulum-v1 dynamics: θ̈ = 3g/(2l)·sin θ + 3/(m l²)·u with g=10, m=l=1, so
    E = ½θ̇² + 15·cos θ has dE/dt = 3uθ̇; upright at rest is E* = 15. Far from upright,
    u = k(E* − E)·sign(θ̇) pumps energy toward E*; near upright a PD law balances.
    """

    def __init__(self, k_energy: float = 0.5, kp: float = 10.0, kd: float = 2.0) -> None:
        self.k_energy, self.kp, self.kd = k_energy, kp, kd

    def __call__(self, obs: Any) -> np.ndarray:
        obs = np.asarray(obs, np.float64).reshape(-1, 3)  # (N, 3)
        cos, sin, vel = obs[:, 0], obs[:, 1], obs[:, 2]
        theta = np.arctan2(sin, cos)  # 0 = upright
        energy = 0.5 * vel**2 + 15.0 * cos
        swing = self.k_energy * (15.0 - energy) * np.where(vel >= 0, 1.0, -1.0)
        balance = -self.kp * theta - self.kd * vel
        u = np.where(cos > 0.85, balance, swing)
        return np.clip(u, -2.0, 2.0).astype(np.float32)[:, None]  # (N, 1)


def pendulum_medium() -> PendulumExpert:
    """A clearly suboptimal Pendulum controller: the expert's balance, a tenth of its swing-up
    gain, so it takes several times longer to get upright (D4RL-normalized ~71 vs the expert's
    ~99 over 50 episodes). Data from it, with exploration noise, is what offline RL is for: better
    actions are in the data, but not as the behaviour's most likely ones."""
    return PendulumExpert(k_energy=0.05)


EXPERTS: dict[str, Callable[[], Policy]] = {"Pendulum-v1": PendulumExpert}
"""Shipped scripted experts by Gymnasium env id."""
MEDIUMS: dict[str, Callable[[], Policy]] = {"Pendulum-v1": pendulum_medium}
"""Shipped scripted medium-level (suboptimal) policies by Gymnasium env id."""
SCRIPTED: dict[str, dict[str, Callable[[], Policy]]] = {"expert": EXPERTS, "medium": MEDIUMS}
"""The shipped scripted policies: collect.policy name -> env id -> factory."""


def register_expert(env_id: str, factory: Callable[[], Policy]) -> None:
    """Make `collect.policy=expert` work for another env."""
    EXPERTS[env_id] = factory


class SB3Policy:
    """A Stable-Baselines3 checkpoint (imported lazily): deterministic actions, or sampled ones.

    Sampled actions (`deterministic=False`) draw from torch's global generator: seed it (or run
    under `torch.random.fork_rng`) for reproducible data. Loading uses SB3's own zip loader, which
    unpickles parts of the file: load only checkpoints you trust (ours, or your own).
    """

    def __init__(self, algo: str, path: str, deterministic: bool = True) -> None:
        self.deterministic = deterministic
        sb3 = lazy_import("stable_baselines3", "sb3")
        cls = getattr(sb3, algo.upper(), None)
        if cls is None:
            raise TTError(f"policy sb3:{algo}:{path}: stable_baselines3 has no algorithm '{algo}'")
        file = Path(path)
        if not file.exists() and not file.with_suffix(".zip").exists():
            raise TTError(f"policy sb3:{algo}:{path}: checkpoint file not found")
        try:
            self.model = cls.load(str(file), device="cpu")
        except Exception as err:
            raise TTError(
                f"policy sb3:{algo}:{path}: cannot load ({err.__class__.__name__})"
            ) from err

    def __call__(self, obs: Any) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(action)


class NoisyPolicy:
    """Gaussian noise (std = noise · half the action range) and ε-random actions over a base policy.

    noise=0, epsilon=0 is the base policy; epsilon=1 is the random policy. D4RL-style mixtures:
    a "medium" dataset is an expert with noise/epsilon; "medium-expert" concatenates two collections.
    """

    def __init__(
        self,
        base: Policy,
        action_space: gym.Space[Any],
        noise: float = 0.0,
        epsilon: float = 0.0,
        seed: int = 0,
    ) -> None:
        if noise < 0 or not 0.0 <= epsilon <= 1.0:
            raise TTError(
                f"collect.noise must be >= 0 and collect.epsilon in [0, 1] ({noise}, {epsilon})"
            )
        if noise > 0 and not isinstance(action_space, gym.spaces.Box):
            raise TTError("collect.noise needs a Box action space; use collect.epsilon instead")
        self.base, self.space, self.noise, self.epsilon = base, action_space, noise, epsilon
        self.rng = np.random.default_rng(seed)
        self.random = RandomPolicy(action_space, seed + 1)

    def __call__(self, obs: Any) -> np.ndarray:
        action = np.asarray(self.base(obs))
        if self.noise > 0 and isinstance(self.space, gym.spaces.Box):
            low, high = self.space.low, self.space.high
            scale = np.where(np.isfinite(high - low), (high - low) / 2, 1.0)
            action = action + self.rng.normal(size=action.shape) * self.noise * scale
            action = np.clip(action, low, high).astype(self.space.dtype)
        if self.epsilon > 0:
            swap = np.asarray(self.rng.random(action.shape[0]) < self.epsilon)  # (N,) bool
            if swap.any():
                action = action.copy()
                action[swap] = self.random(np.zeros(int(swap.sum())))
        return action


def make_policy(name: str, env: gym.Env[Any, Any], seed: int = 0) -> Policy:
    """`random`, `expert` / `medium` (the shipped scripted policies for this env), `maze` (the
    PointMaze controller, sources/maze.py: it reads the env's maze), or `sb3:ALGO:PATH`."""
    env_id = env.spec.id if env.spec is not None else "?"
    if name == "random":
        return RandomPolicy(env.action_space, seed)
    if name == "maze":
        from .maze import maze_policy

        return maze_policy(env)
    if name in SCRIPTED:
        shipped = SCRIPTED[name]
        if env_id not in shipped:
            raise TTError(
                f"collect.policy={name}: no scripted {name} policy ships for {env_id} (have "
                f"{sorted(shipped)}); use collect.policy=sb3:ALGO:PATH or random"
            )
        return shipped[env_id]()
    if name.startswith("sb3:"):
        parts = name.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise TTError(
                f"collect.policy={name}: expected sb3:ALGO:PATH, e.g. sb3:SAC:runs/sac.zip"
            )
        return SB3Policy(parts[1], parts[2])
    raise TTError(
        f"collect.policy={name}: unknown policy; use random, expert, medium, maze or sb3:ALGO:PATH"
    )
