"""The plan audit: each plan's predicted return paired with the discounted return that followed."""

from __future__ import annotations

import numpy as np
import pytest

from trajectory_transformer.envs.loop import StepInfo
from trajectory_transformer.evaluation.plan_audit import PlanAudit


class ScriptedPlans:
    """An agent stand-in whose `last_plans` the test sets before each step."""

    def __init__(self) -> None:
        self.plans: tuple[np.ndarray, np.ndarray] = (np.zeros(0, np.int64), np.zeros(0))

    @property
    def last_plans(self) -> tuple[np.ndarray, np.ndarray]:
        return self.plans


def step(slots: list[int], episodes: list[int], rewards: list[float]) -> StepInfo:
    k = len(slots)
    return StepInfo(
        np.asarray(slots),
        np.asarray(episodes),
        np.zeros((k, 1), np.float32),
        np.zeros((k, 1), np.float32),
        np.asarray(rewards, np.float64),
        np.zeros(k, bool),
        np.zeros(k, bool),
    )


def test_predictions_pair_with_the_discounted_return_that_followed_in_their_own_episode() -> None:
    agent = ScriptedPlans()
    audit = PlanAudit(agent, discount=0.5)
    # slot 0 runs episode 0 (rewards 1, 2, 4) and then episode 2 (rewards 8, 8); slot 1 runs
    # episode 1 (rewards 1, 1, 1, 1) and plans only every other step (plan_every=2)
    script = [
        ([0, 1], [0, 1], [1.0, 1.0], ([0, 1], [10.0, 3.0])),
        ([0, 1], [0, 1], [2.0, 1.0], ([0], [4.0])),
        ([0, 1], [0, 1], [4.0, 1.0], ([0, 1], [4.0, 1.0])),
        ([0, 1], [2, 1], [8.0, 1.0], ([0], [12.0])),
        ([0], [2], [8.0], ([0], [8.0])),
    ]
    for slots, episodes, rewards, (planned, predicted) in script:
        agent.plans = (np.asarray(planned), np.asarray(predicted, np.float64))
        audit(step(slots, episodes, rewards))

    # realized V_t = r_t + 0.5 V_{t+1} within each episode
    realized = {0: [3.0, 4.0, 4.0], 1: [1.875, 1.5], 2: [12.0, 8.0]}  # at the planned steps
    predicted = {0: [10.0, 4.0, 4.0], 1: [3.0, 1.0], 2: [12.0, 8.0]}
    pred = np.concatenate([predicted[e] for e in range(3)])
    real = np.concatenate([realized[e] for e in range(3)])
    summary = audit.summary()
    assert summary is not None
    assert summary["plans"] == 7 and summary["episodes"] == 3 and summary["discount"] == 0.5
    # means weigh episodes equally: episode 0's three plans count as much as episode 1's two
    pred_ep = [np.mean(predicted[e]) for e in range(3)]  # 6, 2, 10
    real_ep = [np.mean(realized[e]) for e in range(3)]  # 11/3, 1.6875, 10
    assert summary["predicted_mean"] == pytest.approx(np.mean(pred_ep)) == pytest.approx(6.0)
    assert summary["realized_mean"] == pytest.approx(np.mean(real_ep))
    assert summary["bias_mean"] == pytest.approx(np.mean(pred_ep) - np.mean(real_ep))
    assert summary["optimistic_fraction"] == pytest.approx(2 / 7)  # 10 > 3 and 3 > 1.875
    assert summary["correlation"] == pytest.approx(np.corrcoef(pred, real)[0, 1])  # pooled
    assert summary["first_plan"] == {
        "predicted_mean": pytest.approx((10 + 3 + 12) / 3),
        "realized_mean": pytest.approx((3 + 1.875 + 12) / 3),
    }
    per_episode = np.asarray([7 / 3, 0.3125, 0.0])  # each episode's mean bias: the CI's units
    assert summary["bias_mean"] == pytest.approx(per_episode.mean())
    half = 4.3027 * per_episode.std(ddof=1) / np.sqrt(3)
    assert summary["bias_ci95"] == pytest.approx(
        [per_episode.mean() - half, per_episode.mean() + half]
    )


def test_nothing_planned_means_no_audit() -> None:
    audit = PlanAudit(ScriptedPlans(), discount=0.99)
    audit(step([0], [0], [1.0]))
    assert audit.summary() is None


def test_a_true_termination_is_realized_with_the_penalty_the_model_was_trained_with() -> None:
    agent = ScriptedPlans()
    audit = PlanAudit(agent, discount=0.5, termination_penalty=-100.0)
    agent.plans = (np.asarray([0, 1]), np.asarray([0.0, 0.0]))
    audit(step([0, 1], [0, 1], [1.0, 1.0]))
    fall = step([0, 1], [0, 1], [1.0, 1.0])
    fall.terminated[0] = True  # episode 0 falls; episode 1 is cut by the time limit
    fall.truncated[1] = True
    agent.plans = (np.zeros(0, np.int64), np.zeros(0))
    audit(fall)
    summary = audit.summary()
    assert summary is not None and summary["termination_penalty"] == -100.0
    # episode 0: 1 + 0.5 * (1 - 100) = -48.5; episode 1 (truncated, no penalty): 1 + 0.5 = 1.5
    assert summary["first_plan"]["realized_mean"] == pytest.approx((-48.5 + 1.5) / 2)
