"""Normalized score formula, reference choice and confidence intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from trajectory_transformer.envs.loop import RolloutResult
from trajectory_transformer.errors import TTError
from trajectory_transformer.evaluation.metrics import (
    Reference,
    confidence_interval,
    normalized_score,
    pick_reference,
    summarize,
)


def make_result(returns: list[float], terminated: list[bool] | None = None) -> RolloutResult:
    n = len(returns)
    return RolloutResult(
        returns=np.asarray(returns, dtype=np.float64),
        lengths=np.full(n, 100, dtype=np.int64),
        terminated=np.asarray(terminated or [False] * n),
        seeds=np.arange(n),
        n_envs=2,
        wall_s=2.0,
        env_s=0.5,
        agent_s=1.0,
        agent_calls=50,
    )


def test_normalized_score_formula() -> None:
    ref = Reference(random=-100.0, expert=300.0, source="dataset")
    np.testing.assert_allclose(
        normalized_score([-100.0, 300.0, 100.0, 700.0], ref), [0, 100, 50, 200]
    )
    hopper = pick_reference("Hopper-v5")
    assert hopper is not None
    # D4RL's hopper references: 100 * (3565 + 20.272305) / (3234.3 + 20.272305)
    assert normalized_score(3565.0, hopper) == pytest.approx(110.1611, abs=1e-4)


def test_reference_choice() -> None:
    assert pick_reference("Pendulum-v1", -1200.0, -150.0) == Reference(-1200.0, -150.0, "dataset")
    # the dataset's references win over D4RL's
    assert pick_reference("Hopper-v5", 0.0, 1.0) == Reference(0.0, 1.0, "dataset")
    cheetah = pick_reference("HalfCheetah-v5")
    assert cheetah is not None and cheetah.source == "D4RL published"
    assert (cheetah.random, cheetah.expert) == (-280.178953, 12135.0)
    assert "get_normalized_score refuses" in cheetah.note  # the fallback says what it is
    walker = pick_reference("Walker2d-v4", None, 10.0)
    assert walker is not None and (walker.random, walker.expert, walker.source) == (
        1.629008,
        4592.3,
        "D4RL published",
    )
    assert pick_reference("Pendulum-v1") is None
    assert pick_reference(None) is None


def test_confidence_interval() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    lo, hi = confidence_interval(x)
    half = 2.7764 * x.std(ddof=1) / math.sqrt(5)  # t_{0.975, 4}
    assert (lo, hi) == pytest.approx((3 - half, 3 + half))
    lo, hi = confidence_interval(np.random.default_rng(0).normal(size=10_000))
    assert hi - lo == pytest.approx(2 * 1.96 / 100, rel=0.05)  # large n: the normal interval
    assert all(math.isnan(v) for v in confidence_interval(np.array([1.0])))


def test_summarize_is_json_and_names_its_reference() -> None:
    s = summarize(
        make_result([0.0, 50.0, 100.0], [True, False, False]), Reference(0, 100, "dataset")
    )
    json.loads(json.dumps(s, allow_nan=False))
    assert s["normalized_score"] == pytest.approx(50.0)
    assert s["reference"]["source"] == "dataset"
    assert "x100" in s["normalized_score_scale"]
    assert s["done_ratio"] == pytest.approx(1 / 3)
    assert s["return_min"] == 0.0 and s["return_max"] == 100.0
    assert s["env_steps"] == 300 and s["env_steps_per_s"] == pytest.approx(150.0)
    assert s["plan_ms_per_step"] == pytest.approx(1000.0 / 300)
    assert s["plan_ms_per_call"] == pytest.approx(20.0)
    lo, hi = s["normalized_score_ci95"]
    assert lo < 50.0 < hi

    single = summarize(make_result([5.0]), None)
    json.loads(json.dumps(single, allow_nan=False))
    assert single["normalized_score"] is None and single["reference"] is None
    assert single["return_ci95"] is None


def test_reference_from_config_overrides_and_says_so() -> None:
    both = pick_reference(
        "Pendulum-v1", -1200.0, -150.0, config_min_score=-1000.0, config_max_score=0.0
    )
    assert both == Reference(-1000.0, 0.0, "config")
    # no dataset references at all (a random-policy dataset of an env without an expert)
    assert pick_reference(
        "CartPole-v1", config_min_score=20.0, config_max_score=500.0
    ) == Reference(20.0, 500.0, "config")
    # the config beats D4RL's published references too
    hopper = pick_reference("Hopper-v5", config_min_score=0.0, config_max_score=3000.0)
    assert hopper == Reference(0.0, 3000.0, "config")
    # one end from the config, the other from the dataset (collect stores ref_min_score alone)
    mixed = pick_reference("CartPole-v1", 22.0, None, config_max_score=500.0)
    assert mixed == Reference(22.0, 500.0, "config+dataset")


def test_half_given_config_reference_is_an_error() -> None:
    with pytest.raises(TTError) as err:
        pick_reference("Hopper-v5", None, None, config_max_score=3000.0)
    assert str(err.value) == (
        "data.ref_max_score is set but the dataset has no ref_min_score; set data.ref_min_score too"
    )


def test_summary_reference_keeps_keys_and_adds_note() -> None:
    ref = pick_reference("Hopper-v5")
    assert ref is not None
    s = summarize(make_result([-20.272305, 3234.3]), ref)
    assert s["reference"]["random_return"] == -20.272305  # the keys callers read are unchanged
    assert s["reference"]["expert_return"] == 3234.3
    assert s["reference"]["source"] == "D4RL published" and "D4RL" in s["reference"]["note"]
    assert s["normalized_score"] == pytest.approx(50.0)


def test_eval_suite_and_report_give_the_same_score_and_interval() -> None:
    """`tt eval`'s summary, a quality cell's record and the report (from returns alone) agree to
    the last digit: one function computes the score and its t-interval for all three."""
    from trajectory_transformer.evaluation.report.read import _Run
    from trajectory_transformer.evaluation.report.scores import _score
    from trajectory_transformer.lab.records import score_summary

    returns = [-150.3, -120.7, -300.1, -95.2, -180.0]
    reference = Reference(-1200.0, -140.0, "dataset")
    summary = summarize(make_result(returns), reference)
    record = score_summary(np.asarray(returns), reference)
    assert record is not None
    bare = {"returns": returns, "reference": summary["reference"]}  # nothing logged: computed
    mean, ci = _score(_Run(root=Path(".")), bare)
    assert summary["normalized_score"] == record["mean"] == mean
    assert summary["normalized_score_ci95"] == record["ci95"] == list(ci or ())
    # the report's interval is the t-interval (it was a normal approximation, narrower)
    low, high = confidence_interval(normalized_score(np.asarray(returns), reference))
    assert list(ci or ()) == [low, high]
