"""The plan audit (each plan's predicted return against the return that followed) and the value fit
(the reward and value heads teacher-forced on the run's own data)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trajectory_transformer import runs
from trajectory_transformer.data.episodes import load_transitions
from trajectory_transformer.data.windows import TokenWindows
from trajectory_transformer.envs.loop import StepInfo
from trajectory_transformer.evaluation import value_fit as value_fit_module
from trajectory_transformer.evaluation.plan_audit import PlanAudit
from trajectory_transformer.evaluation.value_fit import value_fit


class ScriptedPlans:
    """An agent stand-in whose `last_plans` the test sets before each step."""

    def __init__(self) -> None:
        self.plans: tuple[np.ndarray, ...] = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @property
    def last_plans(self) -> tuple[np.ndarray, ...]:
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
    # episode 1 (rewards 1, 1, 1, 1) and plans only every other step (plan_every=2); each plan
    # says (slot, predicted return, mean predicted return of its sampled first actions)
    script = [
        ([0, 1], [0, 1], [1.0, 1.0], ([0, 1], [10.0, 3.0], [8.0, 3.0])),
        ([0, 1], [0, 1], [2.0, 1.0], ([0], [4.0], [4.0])),
        ([0, 1], [0, 1], [4.0, 1.0], ([0, 1], [4.0, 1.0], [3.0, 0.0])),
        ([0, 1], [2, 1], [8.0, 1.0], ([0], [12.0], [10.0])),
        ([0], [2], [8.0], ([0], [8.0], [8.0])),
    ]
    for slots, episodes, rewards, (planned, predicted, sampled) in script:
        agent.plans = tuple(np.asarray(a) for a in (planned, predicted, sampled))
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
    # the search's believed gain, per episode's mean: (2 + 0 + 1) / 3, (0 + 1) / 2, (2 + 0) / 2
    gains = np.asarray([1.0, 0.5, 1.0])
    assert summary["search_gain_mean"] == pytest.approx(gains.mean())
    assert summary["sampled_mean"] == pytest.approx(6.0 - gains.mean())
    half = 4.3027 * gains.std(ddof=1) / np.sqrt(3)
    assert summary["search_gain_ci95"] == pytest.approx([gains.mean() - half, gains.mean() + half])


def test_nothing_planned_means_no_audit() -> None:
    audit = PlanAudit(ScriptedPlans(), discount=0.99)
    audit(step([0], [0], [1.0]))
    assert audit.summary() is None


def test_a_true_termination_is_realized_with_the_penalty_the_model_was_trained_with() -> None:
    agent = ScriptedPlans()
    audit = PlanAudit(agent, discount=0.5, termination_penalty=-100.0)
    agent.plans = (np.asarray([0, 1]), np.asarray([0.0, 0.0]), np.asarray([0.0, 0.0]))
    audit(step([0, 1], [0, 1], [1.0, 1.0]))
    fall = step([0, 1], [0, 1], [1.0, 1.0])
    fall.terminated[0] = True  # episode 0 falls; episode 1 is cut by the time limit
    fall.truncated[1] = True
    agent.plans = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    audit(fall)
    summary = audit.summary()
    assert summary is not None and summary["termination_penalty"] == -100.0
    # episode 0: 1 + 0.5 * (1 - 100) = -48.5; episode 1 (truncated, no penalty): 1 + 0.5 = 1.5
    assert summary["first_plan"]["realized_mean"] == pytest.approx((-48.5 + 1.5) / 2)


# --- value fit: the heads teacher-forced on the run's own data ------------------------------


class Oracle(torch.nn.Module):
    """A 'model' that puts all its probability on the true next token of each data window."""

    def __init__(self, model: torch.nn.Module, windows: TokenWindows) -> None:
        super().__init__()
        self.config = model.config
        self.windows = windows
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = np.arange(self.seen, self.seen + x.shape[0])  # value_fit walks every window in order
        self.seen += x.shape[0]
        data_x, y, _ = self.windows.batch(idx)
        assert torch.equal(x, data_x)
        return 50.0 * F.one_hot(y, self.config.vocab_size).float()  # (B, L-1, V)


def test_a_model_that_knows_the_data_fits_reward_and_value_to_within_a_bin(
    tiny_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_load = runs.load_run
    loaded = real_load(tiny_run)
    data = loaded.config.data
    tr, _ = load_transitions(data.dataset, discount=data.discount)
    tokens = np.asarray(loaded.discretizer.encode(tr.joined()))
    windows = TokenWindows(tokens, tr.episode_starts, loaded.model.config.n_transitions)
    oracle = Oracle(loaded.model, windows)
    monkeypatch.setattr(
        value_fit_module.runs, "load_run", lambda *a, **k: dataclasses.replace(loaded, model=oracle)
    )
    fit = value_fit(tiny_run, windows=10**9, batch_size=100)
    assert fit["windows"] == len(windows) == tr.n_transitions == 1200
    # every transition of every window that lies inside its episode is counted once per window
    n_real = sum(min(4, int(end) - i) for i, end in enumerate(windows.window_end))
    td = tokens.shape[1]
    for head, dim in (("reward", td - 2), ("value", td - 1)):
        f = fit[head]
        width = float(np.diff(loaded.discretizer.edges[dim]).max())
        assert f["n"] == n_real, head
        assert f["mae"] <= width / 2 + 1e-6 and abs(f["bias"]) <= width / 2, head
        assert f["correlation"] > 0.9, head  # 16 bins: the binning alone costs some
    true = [q["target_mean"] for q in fit["value_by_quintile"]]
    assert true == sorted(true) and len(true) == 5


def test_value_fit_command_writes_its_json_and_refuses_bad_options(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trajectory_transformer.cli import main as tt_main

    assert tt_main(["bench", "valuefit", f"run={tiny_run}", "windows=50"]) == 0
    out = capsys.readouterr().out
    assert "| value | " in out and "| reward | " in out
    saved = json.loads((tiny_run / "eval" / "value_fit.json").read_text())
    assert saved["windows"] == 50 and saved["in_sample"] is True
    assert tt_main(["bench", "valuefit", f"run={tiny_run}", "windows=many"]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .endswith("tt bench valuefit: option windows expects int, got 'many'")
    )
    assert tt_main(["bench", "valuefit", "windows=5"]) == 2
    assert "needs run=" in capsys.readouterr().err
