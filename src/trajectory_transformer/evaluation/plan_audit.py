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

Beside it, the gain the search believes it finds: the winner's predicted return minus the mean
predicted return of the first step's sampled actions (`PlanResult.sampled_return`, what the model
expects from an action drawn without search). A gain that is small against the realized return
means the model sees little to choose between, so beam search cannot do much better than decoding
its most likely action; a large gain with a large bias means the search chooses by the model's
errors.

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

__all__ = ["MAX_POINTS", "PlanAudit", "PredictsReturns"]


class PredictsReturns(Protocol):
    """An agent that says, after each `act`, which slots it planned and the return it predicted."""

    @property
    def last_plans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """((k,) slots planned in the latest act call, (k,) their predicted returns, (k,) the mean
        predicted return of each plan's sampled first actions)."""
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
        # episode -> (step, predicted, sampled) per plan
        self.plans: dict[int, list[tuple[int, float, float]]] = {}

    def __call__(self, step: StepInfo) -> None:
        slots, predicted, sampled = self.agent.last_plans
        by_slot = dict(zip(step.slots.tolist(), step.episodes.tolist(), strict=True))
        for slot, value, drawn in zip(
            slots.tolist(), predicted.tolist(), sampled.tolist(), strict=True
        ):
            episode = by_slot[slot]
            at = len(self.rewards.get(episode, []))
            self.plans.setdefault(episode, []).append((at, value, drawn))
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
        predicted, realized, sampled = [], [], []  # per episode: (plans,) arrays
        for start, episode in zip(starts[:-1].tolist(), episodes, strict=True):
            rows = np.asarray(self.plans[episode], dtype=np.float64)  # (plans, 3)
            predicted.append(rows[:, 1])
            sampled.append(rows[:, 2])
            realized.append(to_go[start + rows[:, 0].astype(np.int64)])
        pred_ep = np.asarray([p.mean() for p in predicted])  # (E,)
        real_ep = np.asarray([r.mean() for r in realized])  # (E,)
        gain_ep = pred_ep - np.asarray([d.mean() for d in sampled])  # (E,)
        low, high = confidence_interval(pred_ep - real_ep)
        gain_low, gain_high = confidence_interval(gain_ep)
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
            # None where the planner did not report its sampled first actions (NaN)
            "sampled_mean": _finite(pred_ep.mean() - gain_ep.mean()),
            "search_gain_mean": _finite(gain_ep.mean()),
            "search_gain_ci95": None if math.isnan(gain_low) else [gain_low, gain_high],
            "first_plan": {  # each episode's first plan (its first step): the whole episode ahead
                "predicted_mean": float(np.mean([p[0] for p in predicted])),
                "realized_mean": float(np.mean([r[0] for r in realized])),
            },
            # what the report plots: each episode's means, and the plans themselves (evenly
            # thinned to at most MAX_POINTS, so a long evaluation keeps a small JSON)
            "episode_means": {"predicted": pred_ep.tolist(), "realized": real_ep.tolist()},
            "points": _thin(pred, real),
            "note": (
                "predicted: the chosen plan's discounted expected rewards + discounted terminal "
                "value; realized: the discounted return that followed within the episode, a true "
                "termination's reward plus termination_penalty (as the value targets); bias = "
                "predicted - realized; sampled: the mean predicted return of the first step's "
                "sampled actions (no search), search_gain = predicted - sampled; means weigh "
                "episodes equally, the CIs are over episodes"
            ),
        }


MAX_POINTS = 2000
"""Most (predicted, realized) plan pairs an audit keeps for plotting."""


def _thin(pred: np.ndarray, real: np.ndarray) -> dict[str, list[float]]:
    keep = np.unique(np.linspace(0, pred.size - 1, min(pred.size, MAX_POINTS)).round().astype(int))
    return {"predicted": pred[keep].tolist(), "realized": real[keep].tolist()}


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
