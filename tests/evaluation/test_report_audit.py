"""The report of any run: titled by the run folder, no phase-timing box unless the run has
phases.json, the plan audit as a predicted-vs-realized plot, every evaluation in the run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from test_report import _make_run, _summary

from trajectory_transformer.evaluation.report import write_report


def test_titled_by_the_run_not_its_config(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "my-run-7", video=False)
    text = write_report(run).read_text()
    assert "<h1>Trajectory Transformer report: my-run-7</h1>" in text
    assert "<title>TT report: my-run-7</title>" in text
    assert "synthetic &lt;run&gt; &amp; co" in text  # the config's name is still shown


def test_no_phases_box_for_a_run_without_phases(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", video=False)
    (run / "phases.json").unlink()
    text = write_report(run).read_text()
    assert "phases.json" not in text and "Time per phase" not in text
    (run / "phases.json").write_text("{broken")  # there but unreadable: still said
    assert "phases.json could not be read" in write_report(run).read_text()


def test_audit_plot_and_every_evaluation_in_the_run(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", video=False)
    ev = json.loads((run / "eval" / "eval.json").read_text())
    ev["plan_audit"].update(
        points={"predicted": [120.0, 130.0, 125.0], "realized": [100.0, 99.0, 104.0]},
        episode_means={"predicted": [123.0, 124.0], "realized": [101.0, 102.0]},
    )
    (run / "eval" / "eval.json").write_text(json.dumps(ev))
    # a suite cell's evaluation and an --out evaluation that live in the run
    (run / "eval" / "tt-greedy").mkdir()
    (run / "eval" / "tt-greedy" / "eval.json").write_text(json.dumps(_summary([88.0, 92.0])))
    (run / "eval_likelihood").mkdir()
    likely = _summary([80.0, 84.0])
    likely["plan_audit"] = {**ev["plan_audit"], "bias_mean": 5.5, "bias_ci95": None}
    (run / "eval_likelihood" / "eval.json").write_text(json.dumps(likely))
    text = write_report(run).read_text()
    audit = re.search(r'<section id="audit">(.*?)</section>', text, re.S)
    assert audit is not None
    assert 'alt="predicted vs realized returns of the plans"' in audit.group(1)
    assert "<td>TT</td>" in audit.group(1) and "<td>eval_likelihood</td>" in audit.group(1)
    assert "21.75 [11.5, 32]" in audit.group(1)
    score = re.search(r'<section id="score">(.*?)</section>', text, re.S)
    assert score is not None
    for name in ("TT", "behaviour", "random", "tt-greedy", "eval_likelihood"):
        assert f"<td>{name}</td>" in score.group(1)


def test_no_audit_says_how_to_get_one(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", video=False)
    shutil.rmtree(run / "eval")
    text = write_report(run).read_text()
    audit = re.search(r'<section id="audit">(.*?)</section>', text, re.S)
    assert audit is not None and "no evaluation with a plan audit" in audit.group(1)


def test_score_by_training_step_from_checkpoint_evaluations(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", video=False)
    alt = 'alt="normalized score by training step"'
    assert alt not in write_report(run).read_text()  # only final weights evaluated: no curve
    (run / "checkpoints" / "step_40").mkdir(parents=True)
    ev = json.loads((run / "eval" / "eval.json").read_text())
    beam = {"agent": "planner", "config": {"plan": {"mode": "beam"}}}
    (run / "eval" / "eval.json").write_text(json.dumps({**ev, **beam, "checkpoint": "final"}))
    (run / "eval_step20").mkdir()
    early = {**_summary([40.0, 50.0, 45.0]), **beam, "checkpoint": 20}
    (run / "eval_step20" / "eval.json").write_text(json.dumps(early))
    text = write_report(run).read_text()
    assert alt in text and "Score by training step" in text
