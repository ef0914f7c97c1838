"""Did the planner get the return it predicted? Each plan's predicted return against what followed.

Beam search keeps the imagined trajectory with the highest predicted return (discounted expected
rewards plus the discounted terminal value), so where the model is wrong the search prefers the
places where it is wrong upwards. This audit measures that: at every env step where a plan was
made, the winning plan's predicted return is paired with the return that actually followed in the
episode, discounted the same way and cut at the episode's end exactly as the value targets are
(V_t = r_t + γ V_{t+1} within an episode, `data.episodes.discounted_returns`, with the run's
`data.termination_penalty` added to the reward of a true termination, as in the training data:
the model predicts returns in those units). A positive bias is
optimism: the plans promise more than the env pays. It costs nothing extra: the planner computes
the prediction anyway, the rollout loop supplies the rewards.

Only return-scored plans are audited (plan.mode beam or likelihood on a plain run); greedy and
sample decoding make no prediction, and goal search scores progress, not return.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from ..data.episodes import discounted_returns
from ..envs.loop import StepInfo
from .metrics import confidence_interval

__all__ = ["PlanAudit", "PredictsReturns"]


class PredictsReturns(Protocol):
    """An agent that says, after each `act`, which slots it planned and the return it predicted."""

    @property
    def last_plans(self) -> tuple[np.ndarray, np.ndarray]:
        """((k,) slots planned in the latest act call, (k,) their predicted returns)."""
        ...


class PlanAudit:
    """The rollout loop's `on_step`: pairs each plan's predicted return with the realized one."""

    def __init__(
        self, agent: PredictsReturns, discount: float, termination_penalty: float = 0.0
    ) -> None:
        self.agent = agent
        self.discount = discount
        self.termination_penalty = termination_penalty
        self.rewards: dict[int, list[float]] = {}  # episode -> its rewards, in order
        self.plans: dict[int, list[tuple[int, float]]] = {}  # episode -> (step, predicted)

    def __call__(self, step: StepInfo) -> None:
        slots, predicted = self.agent.last_plans
        by_slot = dict(zip(step.slots.tolist(), step.episodes.tolist(), strict=True))
        for slot, value in zip(slots.tolist(), predicted.tolist(), strict=True):
            episode = by_slot[slot]
            self.plans.setdefault(episode, []).append((len(self.rewards.get(episode, [])), value))
        rewards = step.rewards + self.termination_penalty * step.terminated  # as in the data
        for episode, reward in zip(step.episodes.tolist(), rewards.tolist(), strict=True):
            self.rewards.setdefault(episode, []).append(float(reward))

    def summary(self) -> dict[str, Any] | None:
        """Predicted vs realized returns of every plan (None if nothing was planned).

        Means weigh episodes equally (the mean over episodes of each episode's mean), and the
        bias's interval is over episodes: plans within an episode are strongly correlated,
        episodes are independent. The correlation pools all plans.
        """
        episodes = sorted(e for e in self.plans if self.plans[e])
        if not episodes:
            return None
        lengths = [len(self.rewards[e]) for e in episodes]
        starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (E + 1,)
        rewards = np.concatenate([self.rewards[e] for e in episodes]).astype(np.float64)
        to_go = discounted_returns(rewards, starts, self.discount).astype(np.float64)  # (N,)
        predicted, realized = [], []  # per episode: (plans,) arrays
        for start, episode in zip(starts[:-1].tolist(), episodes, strict=True):
            steps = np.asarray([s for s, _ in self.plans[episode]], dtype=np.int64)
            predicted.append(np.asarray([v for _, v in self.plans[episode]], dtype=np.float64))
            realized.append(to_go[start + steps])
        pred_ep = np.asarray([p.mean() for p in predicted])  # (E,)
        real_ep = np.asarray([r.mean() for r in realized])  # (E,)
        low, high = confidence_interval(pred_ep - real_ep)
        pred, real = np.concatenate(predicted), np.concatenate(realized)  # (plans,)
        corr = (
            float(np.corrcoef(pred, real)[0, 1]) if pred.size > 1 and pred.std() and real.std()
            else None
        )  # fmt: skip
        bias = float(pred_ep.mean() - real_ep.mean())
        return {
            "discount": self.discount,
            "termination_penalty": self.termination_penalty,
            "plans": int(pred.size),
            "episodes": len(episodes),
            "predicted_mean": float(pred_ep.mean()),
            "realized_mean": float(real_ep.mean()),
            "bias_mean": bias,
            "bias_ci95": None if math.isnan(low) else [low, high],
            "relative_bias": bias / abs(float(real_ep.mean())) if real_ep.mean() else None,
            "optimistic_fraction": float((pred > real).mean()),
            "correlation": corr,
            "first_plan": {  # each episode's first plan (its first step): the whole episode ahead
                "predicted_mean": float(np.mean([p[0] for p in predicted])),
                "realized_mean": float(np.mean([r[0] for r in realized])),
            },
            "note": (
                "predicted: the chosen plan's discounted expected rewards + discounted terminal "
                "value; realized: the discounted return that followed within the episode, a true "
                "termination's reward plus termination_penalty (as the value targets); bias = "
                "predicted - realized; means weigh episodes equally, the CI is over episodes"
            ),
        }
