"""Actions against the expert's on the expert's own states (evaluation/agreement.py, sweep agreement=N)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from trajectory_transformer import runs
from trajectory_transformer.envs.loop import rollout
from trajectory_transformer.evaluation.agreement import ShadowAgent, expert_agreement
from trajectory_transformer.lab import sweep

SMALL = ["eval.episodes=2", "eval.n_envs=2", "eval.max_episode_steps=6", "eval.progress=false",
         "plan.beam_width=2", "plan.context=2"]  # fmt: skip


class _Constant:
    """An Agent acting `value` everywhere; remembers what it was told it did."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.recorded: list[np.ndarray] = []

    def reset(self, slots: np.ndarray) -> None:
        pass

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        return np.full((len(slots), 1), self.value, dtype=np.float32)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.recorded.append(np.asarray(actions).copy())


def test_the_expert_drives_and_the_student_hears_the_expert() -> None:
    def make() -> gym.Env[Any, Any]:
        return gym.make("Pendulum-v1")

    space = make().action_space
    expert, student = _Constant(0.5), _Constant(3.0)  # 3.0 is clipped to 2.0 by the env
    shadow = ShadowAgent(expert, student, space, episodes=3)
    result = rollout(make, shadow, 3, n_envs=2, seed=7, max_episode_steps=9, progress=False,
                     on_step=shadow.on_step)  # fmt: skip
    alone = rollout(make, _Constant(0.5), 3, n_envs=2, seed=7, max_episode_steps=9, progress=False)
    np.testing.assert_array_equal(result.returns, alone.returns)  # the expert's episodes
    assert np.concatenate(student.recorded).ravel().tolist() == [0.5] * 27  # teacher-forced
    assert shadow.steps.tolist() == [9, 9, 9]
    # executed actions compared: |2.0 - 0.5| at every state
    np.testing.assert_allclose(np.sqrt(shadow.squared / shadow.steps[:, None]), 1.5)
    np.testing.assert_allclose(shadow.absolute.sum() / 27, 1.5)


def test_a_run_against_its_expert(checkpointed_run: Path) -> None:
    found = expert_agreement(checkpointed_run, [*SMALL, "plan.mode=greedy"], episodes=2, seed=5)
    assert found["episodes"] == 2 and found["states"] == 12  # 2 episodes of 6 steps
    assert len(found["rmse_per_episode"]) == 2 and len(found["rmse_per_dim"]) == 1
    assert 0 < found["mae"] <= found["rmse"] < 4 and 0 < found["floor_rmse"] < found["rmse"] + 1
    assert "expert" in found["expert"] and len(found["expert_returns"]) == 2


def test_sweep_adds_agreement_to_points_without_reevaluating(
    checkpointed_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    base = [
        f"run={checkpointed_run}",
        f"out={out}",
        "plan.mode=greedy,likelihood",
        "plan.horizon=2",
    ]
    base += SMALL
    assert len(sweep.run_sweep(sweep.parse_sweep(base), echo=lambda _m: None)) == 2
    assert "action RMSE" not in (out / "results.md").read_text()

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an evaluated point was evaluated again")

    monkeypatch.setattr(sweep, "evaluate_run", fail)
    plan = sweep.parse_sweep([*base, "agreement=2"])
    written = sweep.run_sweep(plan, echo=lambda _m: None)
    eval_seed = runs.read_run_config(checkpointed_run).eval.seed
    assert len(written) == 2
    for path in written:
        point = json.loads(path.read_text())
        agree = point["expert_actions"]
        assert agree["episodes"] == 2 and agree["states"] == 12
        assert agree["seed"] == eval_seed + sweep.AGREEMENT_SEED_OFFSET
        assert point["score_dataset"]["mean"] is not None  # the evaluated score is kept
    table = (out / "results.md").read_text().splitlines()
    header = [c.strip() for c in next(line for line in table if "| plan.mode |" in line).split("|")]
    rows = [[c.strip() for c in line.split("|")] for line in table if line.startswith("| final")]
    assert len(rows) == 2
    for path in written:
        point = json.loads(path.read_text())
        [row] = [r for r in rows if r[header.index("plan.mode")] == point["settings"]["plan.mode"]]
        shown = row[header.index("action RMSE vs expert [95% CI]")]
        assert shown.startswith(f"{point['expert_actions']['rmse']:.3f} [")
    assert sweep.run_sweep(plan, echo=lambda _m: None) == []  # done: nothing runs again
    with pytest.raises(sweep.TTError, match="option agreement expects int, got 'x'"):
        sweep.parse_sweep([*base, "agreement=x"])


def test_an_agent_that_is_the_expert_agrees_exactly(
    checkpointed_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the behaviour policy asked in the planner's place, every error is zero: the run's
    actions are paired with the expert's of the same state and step, and nothing else is added."""
    from trajectory_transformer.evaluation import agreement

    real = agreement.prepare_run
    monkeypatch.setattr(
        agreement,
        "prepare_run",
        lambda run, overrides, kind, **kw: real(run, overrides, "behaviour"),
    )
    found = expert_agreement(checkpointed_run, SMALL, episodes=2, seed=5)
    assert found["states"] == 12
    assert found["rmse"] == found["mae"] == 0.0 and found["rmse_per_dim"] == [0.0]
    assert found["floor_rmse"] > 0  # the floor is the expert's actions at their bin centers
