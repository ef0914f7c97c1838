"""How closely a trained run's agent acts like the policy that made its data, on that policy's states.

The paper's imitation setting (TT with beam search by likelihood) is judged by return, and by how
close its actions are to the expert's. A return alone cannot say whether an agent imitates (two
policies can score alike and act differently), and actions compared on the agent's own states
mix imitation with where the agent drifted. So here the expert drives: the behaviour policy
(rebuilt from the dataset's collection record, as `tt eval --agent behaviour`) steps the envs,
and at every step the run's agent is asked for its action on the same state, with the real
history (the expert's executed actions and rewards) as its context, i.e. teacher-forced. The
states are new episodes of the expert (reset seeds of the caller's choosing), not the training
data's.

Errors are in env units after the env's own clipping, for the executed actions of both. The
floor is the discretizer's: the error of the expert's action rounded to its bin center, below
which no tokenized agent can go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.spaces import executed_action, flat_dim
from ..envs.agents import Agent
from ..envs.loop import StepInfo, rollout
from .evaluate import prepare_run

__all__ = ["ShadowAgent", "expert_agreement"]


@dataclass
class ShadowAgent:
    """An Agent whose `expert` acts while `student` is asked on the same states (teacher-forced).

    Pass `on_step` to the episode loop: it pairs the student's action with the expert's for every
    slot that acted. `squared[e]` sums the squared error (per action dim) over episode e's steps.
    """

    expert: Agent
    student: Agent
    action_space: Any
    episodes: int
    squared: np.ndarray = field(init=False)
    absolute: np.ndarray = field(init=False)
    steps: np.ndarray = field(init=False)
    _student_actions: dict[int, np.ndarray] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        act_dim = flat_dim(self.action_space)
        self.squared = np.zeros((self.episodes, act_dim), dtype=np.float64)
        self.absolute = np.zeros((self.episodes, act_dim), dtype=np.float64)
        self.steps = np.zeros(self.episodes, dtype=np.int64)

    def reset(self, slots: np.ndarray) -> None:
        self.expert.reset(slots)
        self.student.reset(slots)

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        student = np.asarray(self.student.act(slots, observations), dtype=np.float32)  # (k, A)
        for i, slot in enumerate(np.asarray(slots).tolist()):
            self._student_actions[slot] = student[i]
        return np.asarray(self.expert.act(slots, observations), dtype=np.float32)  # (k, A)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        # both hear the expert's executed action: the student's context is the real history
        self.expert.record(slots, actions, rewards)
        self.student.record(slots, actions, rewards)

    def on_step(self, step: StepInfo) -> None:
        student = np.stack([self._student_actions[int(s)] for s in step.slots])  # (k, A)
        _, student_exec = executed_action(self.action_space, student)
        _, expert_exec = executed_action(self.action_space, step.actions)
        error = np.asarray(student_exec, np.float64) - np.asarray(expert_exec, np.float64)
        np.add.at(self.squared, step.episodes, error**2)
        np.add.at(self.absolute, step.episodes, np.abs(error))
        np.add.at(self.steps, step.episodes, 1)


def expert_agreement(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    episodes: int = 10,
    seed: int = 50_000,
    checkpoint: int | None = None,
) -> dict[str, Any]:
    """The run's agent (with `overrides`, e.g. plan.mode=likelihood) against the behaviour policy
    on `episodes` of the behaviour policy's own episodes (reset seeds seed, seed + 1, ...).

    Returns RMSE and mean absolute error over every state and action dim, per-dim and
    per-episode RMSE, the discretizer's floor (the expert's actions at their bin centers), and
    the expert episodes' returns. Needs a dataset made by `tt collect` (its collection record).
    """
    student = prepare_run(run_dir, overrides, "planner", checkpoint=checkpoint)
    expert = prepare_run(run_dir, overrides, "behaviour")
    cfg = student.config
    env = student.make_env()
    try:
        action_space = env.action_space
    finally:
        env.close()
    shadow = ShadowAgent(expert.agent, student.agent, action_space, episodes)
    floor = _FloorMeter(student.loaded.discretizer, student.loaded.model.config, action_space)

    def on_step(step: StepInfo) -> None:
        shadow.on_step(step)
        floor.on_step(step)

    result = rollout(
        student.make_env,
        shadow,
        episodes,
        n_envs=cfg.eval.n_envs,
        seed=seed,
        vector=cfg.eval.vector,
        max_episode_steps=cfg.eval.max_episode_steps,
        progress=cfg.eval.progress,
        on_step=on_step,
    )
    states = int(shadow.steps.sum())
    per_dim = np.sqrt(shadow.squared.sum(0) / max(states, 1))  # (A,)
    per_episode = np.sqrt(shadow.squared.sum(1) / np.maximum(shadow.steps, 1) / per_dim.size)
    return {
        "episodes": episodes,
        "seed": seed,
        "states": states,
        "rmse": float(np.sqrt(shadow.squared.sum() / max(states * per_dim.size, 1))),
        "mae": float(shadow.absolute.sum() / max(states * per_dim.size, 1)),
        "rmse_per_dim": per_dim.tolist(),
        "rmse_per_episode": per_episode.tolist(),
        "floor_rmse": floor.rmse(),
        "expert_returns": result.returns.tolist(),
        "expert": expert.policy,
        "wall_s": result.wall_s,
    }


class _FloorMeter:
    """RMSE of the expert's executed actions against their own bin centers (tokenization error)."""

    def __init__(self, discretizer: Any, model_config: Any, action_space: Any) -> None:
        start = model_config.observation_dim
        self.dims = np.arange(start, start + model_config.action_dim)
        self.discretizer, self.action_space = discretizer, action_space
        self.squared, self.count = 0.0, 0

    def on_step(self, step: StepInfo) -> None:
        _, executed = executed_action(self.action_space, step.actions)
        executed = np.asarray(executed, dtype=np.float64)
        tokens = self.discretizer.encode(executed, dims=self.dims)
        centers = np.asarray(self.discretizer.decode(tokens, dims=self.dims), dtype=np.float64)
        self.squared += float(((centers - executed) ** 2).sum())
        self.count += executed.size

    def rmse(self) -> float:
        return float(np.sqrt(self.squared / max(self.count, 1)))
