"""plan.context fits the run: unset, it is the original TT's 5 or what the model's window allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tiny import tiny_model
from trajectory_transformer.config import PlanConfig, load_config
from trajectory_transformer.errors import ConfigError
from trajectory_transformer.plan.beam import fit_plan_config, validate_plan_config


@pytest.mark.parametrize(("n_transitions", "context"), [(1, 0), (2, 1), (4, 3), (6, 5), (10, 5)])
def test_unset_context_fits_the_window(n_transitions: int, context: int) -> None:
    model = tiny_model(n_transitions=n_transitions)
    fitted = fit_plan_config(PlanConfig(), model)
    assert fitted.context == context
    validate_plan_config(PlanConfig(), model)  # the unset default never breaks planning


def test_a_set_context_stays_and_is_checked() -> None:
    model = tiny_model(n_transitions=4)
    assert fit_plan_config(PlanConfig(context=1), model).context == 1
    with pytest.raises(ConfigError, match=r"plan.context<=3"):
        validate_plan_config(PlanConfig(context=5), model)


def test_defaults_and_presets_keep_their_context() -> None:
    """Runs that planned before keep their prompt: the default window (10) gives 5 as it did,
    the quickstart keeps its explicit 3."""
    assert load_config(None).plan.context is None
    assert fit_plan_config(PlanConfig(), tiny_model(n_transitions=10)).context == 5
    assert load_config("quickstart").plan.context == 3


def test_a_four_transition_run_evaluates_without_plan_context(tiny_run: Path) -> None:
    """The quickstart's window (data.n_transitions=4) with no plan.context: `tt eval` plans."""
    from trajectory_transformer.evaluation.evaluate import evaluate_run
    from trajectory_transformer.runs import read_run_config

    assert read_run_config(tiny_run).data.n_transitions == 4
    small = ["plan.beam_width=2", "plan.horizon=2", "eval.episodes=2", "eval.n_envs=2",
             "eval.max_episode_steps=4", "eval.progress=false"]  # fmt: skip
    summary = evaluate_run(tiny_run, small, out=tiny_run / "eval-context")
    assert summary["config"]["plan"]["context"] is None
    assert len(summary["returns"]) == 2
