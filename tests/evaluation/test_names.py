"""One name per evaluation: the same for its files, its TensorBoard tags and the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from trajectory_transformer.cli import main
from trajectory_transformer.evaluation.names import (
    evaluation_name,
    find_evaluations,
    tensorboard_prefix,
)


@pytest.mark.parametrize(
    ("rel", "name"),
    [
        ("eval/eval.json", "planner"),
        ("eval/eval_behaviour.json", "behaviour"),
        ("eval/eval_greedy.json", "greedy"),  # the quickstart's greedy decoding
        ("eval_greedy/eval.json", "eval_greedy"),  # tt eval RUN --out RUN/eval_greedy
        ("eval_greedy/eval_random.json", "eval_greedy/random"),
        ("eval/tt-beam/eval.json", "tt-beam"),  # a quality-suite cell
        ("eval/sweep/plan.mode=greedy/eval.json", "sweep/plan.mode=greedy"),
        ("../elsewhere/eval.json", None),  # --out outside the run
    ],
)
def test_the_name_is_where_the_file_lies(tmp_path: Path, rel: str, name: str | None) -> None:
    run = tmp_path / "run"
    assert evaluation_name(run, run / rel) == name


def test_tensorboard_prefix() -> None:
    assert tensorboard_prefix("planner") == "eval"  # the series train.eval_every also logs
    assert tensorboard_prefix("behaviour") == "eval/behaviour"
    assert tensorboard_prefix("eval_greedy") == "eval/eval_greedy"


def _scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_evaluations_share_one_name_in_files_tensorboard_and_report(
    tiny_run: Path, tmp_path: Path
) -> None:
    small = ["plan.beam_width=2", "plan.horizon=2", "eval.episodes=2", "eval.n_envs=2",
             "eval.max_episode_steps=4", "eval.progress=false"]  # fmt: skip
    run = str(tiny_run)
    assert main(["eval", run, *small]) == 0
    assert main(["eval", run, "plan.mode=greedy", "--out", f"{run}/eval_greedy", *small]) == 0
    assert main(["eval", run, "--agent", "random", *small]) == 0
    tags = _scalars(tiny_run / "tb")
    evals = {t for t in tags if t.startswith("eval")}
    assert {"eval/return_mean", "eval/eval_greedy/return_mean", "eval/random/return_mean"} <= evals
    assert not any(t.startswith("eval_") for t in evals)  # no eval_eval_behaviour/*
    assert len(tags["eval/return_mean"]) == 1  # greedy did not land on the planner's tag
    assert "eval/eval_greedy/plan_audit_bias_mean" not in evals  # greedy makes no prediction
    assert "eval/plan_audit_bias_mean" in evals

    # --out outside the run: its files there, nothing in the run's eval/ or TensorBoard
    before = sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*"))
    elsewhere = tmp_path / "elsewhere"
    assert main(["eval", run, "plan.mode=greedy", "--out", str(elsewhere), *small]) == 0
    assert (elsewhere / "eval.json").is_file()
    assert sorted(p.relative_to(tiny_run) for p in tiny_run.rglob("*")) == before
    assert _scalars(tiny_run / "tb") == tags

    found = find_evaluations(tiny_run)
    assert list(found) == ["planner", "eval_greedy", "random"]
    assert found["eval_greedy"]["name"] == "eval_greedy"
    assert main(["report", run]) == 0
    html = (tiny_run / "report.html").read_text()
    for name in ("eval_greedy", "random"):
        assert f"<td>{name}</td>" in html  # a row of the score table
