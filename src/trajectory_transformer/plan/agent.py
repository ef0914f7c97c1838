"""The planner as an Agent: keeps each env slot's recent transitions as tokens and plans from them.

The prompt for a slot is its last `plan.context` real transitions (observation, action, reward and a
placeholder value: value tokens are masked from attention, so their content is never read) followed
by the current observation. Slots whose prompts have the same length (all of them, except right
after episodes start at different times) are planned as one batch. Per-slot state lives in arrays
indexed by slot, so a step costs the same few array operations for 1 or 100 environments.

Goal-conditioned runs (a `GoalLayout`, data/goals.py): the env's flat observation holds the goal;
the agent takes it out, encodes it with the discretizer's goal dimensions and puts it in front of
every prompt, so the goal of THIS step conditions the plan (a goal that changes mid-episode is
followed at once; the history holds no goals).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..config import PlanConfig
from ..data.goals import GoalLayout
from ..errors import ConfigError
from ..model.gpt import TrajectoryGPT
from .beam import BeamPlanner, PlanResult, fit_plan_config

__all__ = ["PlannerAgent", "make_agent", "run_goal_layout"]


class PlannerAgent:
    """TT beam search (by return or by likelihood; or the model as a plain policy) as an Agent."""

    def __init__(
        self,
        model: TrajectoryGPT,
        discretizer: Any,
        cfg: PlanConfig,
        goal: GoalLayout | None = None,
        termination_penalty: float = 0.0,
    ) -> None:
        """`termination_penalty`: the run's data.termination_penalty; a reward bin whose center
        lies below half of it marks an imagined termination (plan.absorbing)."""
        mcfg = model.config
        cfg = fit_plan_config(cfg, model)  # plan.context=null: what this model's window allows
        assert cfg.context is not None
        self.cfg = cfg
        self.n_context: int = cfg.context
        """Past transitions in each prompt (plan.context resolved for this model)."""
        self.discretizer = discretizer
        if (goal is None) != (mcfg.goal_dim == 0) or (goal and goal.goal_dim != mcfg.goal_dim):
            given = "no goal layout" if goal is None else f"a {goal.goal_dim}-dim goal"
            raise ConfigError(
                f"the model has a goal prefix of {mcfg.goal_dim} tokens but the agent was given "
                f"{given}; a goal-conditioned model needs the Dict key of its goal (the run's "
                "data.goal_key; TTPolicy(..., goal_key=...)), a plain model none"
            )
        self.goal = goal
        self.goal_dims = np.arange(mcfg.transition_dim, mcfg.token_dims)  # discretizer dims
        self.obs_dim, self.act_dim, self.td = (
            mcfg.observation_dim,
            mcfg.action_dim,
            mcfg.transition_dim,
        )
        self.obs_dims = np.arange(self.obs_dim)
        self.act_dims = np.arange(self.obs_dim, self.obs_dim + self.act_dim)
        self.reward_dim = self.obs_dim + self.act_dim
        bins = np.arange(mcfg.vocab_size)[:, None]  # (V, 1)
        centers = [
            discretizer.decode(bins, dims=[d])[:, 0] for d in (self.reward_dim, self.reward_dim + 1)
        ]
        achieved_dims, achieved_centers = None, None
        if goal is not None and goal.achieved is not None:
            achieved_dims = [int(d) for d in goal.achieved]
            achieved_centers = torch.as_tensor(
                np.stack([discretizer.decode(bins, dims=[d])[:, 0] for d in achieved_dims]),
                dtype=torch.float32,
            )  # (K, V)
        reward_centers, value_centers = (
            torch.as_tensor(np.asarray(c, dtype=np.float32)) for c in centers
        )
        terminal_bins = None
        if termination_penalty < 0:
            terminal_bins = (reward_centers < termination_penalty / 2).float()  # (V,)
        self.planner = BeamPlanner(
            model,
            cfg,
            reward_centers,
            value_centers,
            achieved_dims=achieved_dims,
            achieved_centers=achieved_centers,
            terminal_bins=terminal_bins,
        )
        self.context = max(self.n_context, 1)
        # whether plans carry a predicted RETURN (goal search predicts progress; greedy, sample
        # make no prediction): `last_plans` is empty otherwise
        self.audits_returns = cfg.mode in ("beam", "likelihood") and goal is None
        self._planned: list[tuple[np.ndarray, ...]] = []  # this act call's plans
        self.last_result: PlanResult | None = None
        self._allocate(0)

    def _allocate(self, n_slots: int) -> None:
        """Grow the per-slot arrays (history, counts, queued plan) to hold `n_slots` slots."""
        old = getattr(self, "history", None)
        n_old = 0 if old is None else old.shape[0]
        if old is not None and n_slots <= n_old:
            return

        def grow(array: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
            out = np.zeros((n_slots, *shape), dtype=np.int64)
            if array is not None:
                out[:n_old] = array
            return out

        self.history = grow(old, (self.context, self.td))  # last transitions, right-aligned
        self.count = grow(getattr(self, "count", None), ())  # real transitions seen (capped)
        self.pending_obs = grow(getattr(self, "pending_obs", None), (self.obs_dim,))
        # the goal prefix of each slot's latest prompt (goal-conditioned runs; else width 0)
        self.pending_goal = grow(getattr(self, "pending_goal", None), (self.goal_dims.size,))
        self.queued = grow(getattr(self, "queued", None), (self.cfg.plan_every, self.act_dim))
        self.queued_left = grow(getattr(self, "queued_left", None), ())
        self.queued_next = grow(getattr(self, "queued_next", None), ())

    def reset(self, slots: np.ndarray) -> None:
        slots = np.asarray(slots, dtype=np.int64)
        if slots.size:
            self._allocate(int(slots.max()) + 1)
        self.count[slots] = 0
        self.queued_left[slots] = 0

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        """(k,) slots with (k, obs_dim) flat observations → (k, act_dim) flat actions.

        Goal-conditioned: (k, obs_dim + goal_dim) env flat observations, goal included."""
        slots = np.asarray(slots, dtype=np.int64)
        self._allocate(int(slots.max()) + 1 if slots.size else 0)
        self._planned = []
        goal_values = goal_tokens = None
        if self.goal is not None:
            observations, goal_values = self.goal.split(np.asarray(observations))
            goal_tokens = np.asarray(self.discretizer.encode(goal_values, dims=self.goal_dims))
            self.pending_goal[slots] = goal_tokens
        obs_tokens = np.asarray(
            self.discretizer.encode(np.asarray(observations), dims=self.obs_dims)
        )
        self.pending_obs[slots] = obs_tokens
        action_tokens = np.zeros((len(slots), self.act_dim), dtype=np.int64)

        # steps still covered by a stored plan (plan_every > 1)
        queued = self.queued_left[slots] > 0
        if queued.any():
            qs = slots[queued]
            action_tokens[queued] = self.queued[qs, self.queued_next[qs]]
            self.queued_next[qs] += 1
            self.queued_left[qs] -= 1

        # everyone else plans, one batch per prompt length
        past = np.minimum(self.count[slots], self.n_context)
        for n_past in np.unique(past[~queued]):
            rows = np.flatnonzero(~queued & (past == n_past))
            history = self.history[slots[rows], self.context - n_past :].reshape(len(rows), -1)
            parts = [history, obs_tokens[rows]]
            goal = None
            if goal_tokens is not None and goal_values is not None:  # the goal prefix in front
                parts.insert(0, goal_tokens[rows])
                goal = torch.as_tensor(goal_values[rows], dtype=torch.float32)
            prompt = torch.as_tensor(np.concatenate(parts, axis=1))
            action_tokens[rows] = self._plan(slots[rows], prompt, goal)
        actions = self.discretizer.decode(action_tokens, dims=self.act_dims)
        return np.asarray(actions, dtype=np.float32)

    def _plan(
        self, slots: np.ndarray, prompt: torch.Tensor, goal: torch.Tensor | None = None
    ) -> np.ndarray:
        """Action tokens (G, act_dim) for the first step; later planned steps are queued."""
        if self.cfg.mode in ("sample", "greedy"):  # no search (beam, likelihood, goal search)
            return self.planner.act(prompt).cpu().numpy()
        result = self.planner.plan(prompt) if goal is None else self.planner.plan(prompt, goal)
        self.last_result = result  # the latest batch's full result (bench/oracle.py reads it)
        actions = result.tokens[:, :, self.obs_dim : self.reward_dim].cpu().numpy()  # (G, H, A)
        steps = min(self.cfg.plan_every, actions.shape[1])
        self.queued[slots, :steps] = actions[:, :steps]
        self.queued_left[slots] = steps - 1
        self.queued_next[slots] = 1
        if self.audits_returns:
            predicted = result.predicted_return.double().cpu().numpy()
            sampled = (
                np.full_like(predicted, np.nan)  # a planner that does not say (a stand-in)
                if result.sampled_return is None
                else result.sampled_return.double().cpu().numpy()
            )
            self._planned.append((slots, predicted, sampled))
        return actions[:, 0]

    @property
    def last_plans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """((k,) slots that made a new plan in the latest `act`, (k,) its predicted return, (k,)
        the mean predicted return of the plan's sampled first actions).

        The predicted return is the winning plan's discounted expected rewards plus its discounted
        terminal value (raw reward units; `PlanResult.sampled_return` for the third); empty unless
        the plans are scored by return (beam or likelihood mode on a plain run).
        `evaluation.plan_audit` compares them with what followed.
        """
        if not self._planned:
            empty = np.zeros(0, dtype=np.float64)
            return np.zeros(0, dtype=np.int64), empty, empty
        slots, predicted, sampled = zip(*self._planned, strict=True)
        return np.concatenate(slots), np.concatenate(predicted), np.concatenate(sampled)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Append the real transition (obs, executed action, reward, placeholder value)."""
        slots = np.asarray(slots, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1, 1)
        rows = np.concatenate(
            [
                self.pending_obs[slots],
                np.asarray(self.discretizer.encode(np.asarray(actions), dims=self.act_dims)),
                np.asarray(self.discretizer.encode(rewards, dims=[self.reward_dim])),
                np.zeros((len(slots), 1), dtype=np.int64),  # value: masked, never read
            ],
            axis=1,
        )
        self.history[slots, :-1] = self.history[slots, 1:]  # shift left, newest last
        self.history[slots, -1] = rows
        self.count[slots] = np.minimum(self.count[slots] + 1, self.context)


def make_agent(
    loaded_run: Any, plan_cfg: PlanConfig, device: str | torch.device = "cpu"
) -> PlannerAgent:
    """An agent from a loaded run folder (runs.load_run) and planning settings."""
    model = loaded_run.model.to(device).eval()
    penalty = loaded_run.config.data.termination_penalty
    plan_cfg = plan_cfg.for_run(loaded_run.config.data)
    return PlannerAgent(
        model, loaded_run.discretizer, plan_cfg, run_goal_layout(loaded_run), penalty
    )


def run_goal_layout(loaded_run: Any) -> GoalLayout | None:
    """The goal layout of a loaded run (None unless it was trained with data.goal_key)."""
    data = loaded_run.config.data
    if data.goal_key is None:
        return None
    from ..data.goals import goal_layout
    from ..data.spaces import space_from_json

    space = space_from_json(loaded_run.info.observation_space or "")
    return goal_layout(space, data.goal_key, data.achieved_key)
