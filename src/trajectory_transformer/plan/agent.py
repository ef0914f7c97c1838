"""The planner as an Agent: keeps each env slot's recent transitions as tokens and plans from them.

The prompt for a slot is its last `plan.context` real transitions (observation, action, reward and a
placeholder value: value tokens are masked from attention, so their content is never read) followed
by the current observation. Slots whose prompts have the same length are planned in one batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import PlanConfig
from ..model.gpt import TrajectoryGPT
from .beam import BeamPlanner

__all__ = ["PlannerAgent", "make_agent"]


class PlannerAgent:
    """TT beam search (or the model as a plain policy) behind the Agent protocol."""

    def __init__(self, model: TrajectoryGPT, discretizer: Any, cfg: PlanConfig) -> None:
        mcfg = model.config
        self.cfg = cfg
        self.discretizer = discretizer
        self.obs_dim, self.act_dim, self.td = (
            mcfg.observation_dim,
            mcfg.action_dim,
            mcfg.transition_dim,
        )
        self.obs_dims = np.arange(self.obs_dim)
        self.act_dims = np.arange(self.obs_dim, self.obs_dim + self.act_dim)
        self.reward_dim = self.obs_dim + self.act_dim
        bins = np.arange(mcfg.vocab_size)[:, None]  # (V, 1)
        reward_centers = discretizer.decode(bins, dims=[self.reward_dim])[:, 0]
        value_centers = discretizer.decode(bins, dims=[self.reward_dim + 1])[:, 0]
        self.planner = BeamPlanner(
            model,
            cfg,
            torch.as_tensor(np.asarray(reward_centers, dtype=np.float32)),
            torch.as_tensor(np.asarray(value_centers, dtype=np.float32)),
        )
        self.history: dict[int, list[np.ndarray]] = {}  # slot → token rows (td,)
        self.pending_obs: dict[int, np.ndarray] = {}  # slot → obs tokens of the last act
        self.plans: dict[int, list[np.ndarray]] = {}  # slot → queued action-token rows
        self.steps: dict[int, int] = {}
        self.predicted_return: dict[int, float] = {}

    def reset(self, slots: np.ndarray) -> None:
        for slot in np.asarray(slots).tolist():
            self.history[slot] = []
            self.plans[slot] = []
            self.steps[slot] = 0
            self.pending_obs.pop(slot, None)

    def _prompt(self, slot: int, obs_tokens: np.ndarray) -> np.ndarray:
        past = self.history.get(slot, [])[-self.cfg.context :] if self.cfg.context else []
        return np.concatenate([*past, obs_tokens]) if past else obs_tokens

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """(k,) slots with (k, obs_dim) flat observations → (k, act_dim) flat actions."""
        slots = np.asarray(slots)
        obs_tokens = self.discretizer.encode(np.asarray(observations), dims=self.obs_dims)
        obs_tokens = np.asarray(obs_tokens, dtype=np.int64)
        action_tokens = np.zeros((len(slots), self.act_dim), dtype=np.int64)
        need: dict[int, list[int]] = {}  # prompt length → row indices that must (re)plan
        for i, slot in enumerate(slots.tolist()):
            self.pending_obs[slot] = obs_tokens[i]
            if self.plans.get(slot):
                action_tokens[i] = self.plans[slot].pop(0)
            else:
                need.setdefault(len(self._prompt(slot, obs_tokens[i])), []).append(i)
        for rows in need.values():
            prompts = np.stack([self._prompt(int(slots[i]), obs_tokens[i]) for i in rows])
            prompt_t = torch.as_tensor(prompts)
            if self.cfg.mode == "beam":
                result = self.planner.plan(prompt_t)
                plan = result.tokens.cpu().numpy()  # (G, H, td)
                for j, i in enumerate(rows):
                    slot = int(slots[i])
                    steps = plan[j, : self.cfg.plan_every, self.obs_dim : self.reward_dim]
                    action_tokens[i] = steps[0]
                    self.plans[slot] = list(steps[1:])
                    self.predicted_return[slot] = float(result.predicted_return[j])
            else:
                action_tokens[rows] = self.planner.act(prompt_t).cpu().numpy()
        actions = self.discretizer.decode(action_tokens, dims=self.act_dims)
        return np.asarray(actions, dtype=np.float32)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Append the real transition (obs, executed action, reward, placeholder value)."""
        act_tokens = np.asarray(self.discretizer.encode(np.asarray(actions), dims=self.act_dims))
        reward_tokens = np.asarray(
            self.discretizer.encode(
                np.asarray(rewards, dtype=np.float32)[:, None], dims=[self.reward_dim]
            )
        )
        for i, slot in enumerate(np.asarray(slots).tolist()):
            row = np.concatenate(
                [
                    self.pending_obs[slot],
                    act_tokens[i],
                    reward_tokens[i],
                    np.zeros(1, dtype=np.int64),
                ]
            ).astype(np.int64)
            history = self.history.setdefault(slot, [])
            history.append(row)
            del history[: -max(self.cfg.context, 1)]
            self.steps[slot] = self.steps.get(slot, 0) + 1


def make_agent(
    loaded_run: Any, plan_cfg: PlanConfig, device: str | torch.device = "cpu"
) -> PlannerAgent:
    """An agent from a loaded run folder (train.checkpoint.load_run) and planning settings."""
    model = loaded_run.model.to(device).eval()
    return PlannerAgent(model, loaded_run.discretizer, plan_cfg)
