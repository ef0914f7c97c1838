"""`tt bench sweep`: a grid of plan settings x checkpoints over one trained run, resumable."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from trajectory_transformer.cli import main as tt_main
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.lab import sweep

SMALL = ["eval.episodes=2", "eval.n_envs=2", "eval.max_episode_steps=6", "eval.progress=false",
         "plan.beam_width=2", "plan.context=2"]  # fmt: skip


@pytest.fixture
def run(checkpointed_run: Path) -> Path:
    return checkpointed_run


def test_sweep_evaluates_the_grid_once_and_resumes(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    args = [f"run={run}", f"out={out}", "checkpoints=2,final", "plan.mode=greedy,beam",
            "plan.horizon=1,2", *SMALL]  # fmt: skip
    plan = sweep.parse_sweep(args)
    assert plan.checkpoints == [2, None]
    assert plan.axes["plan.mode"] == ["greedy", "beam"] and plan.axes["plan.horizon"] == ["1", "2"]
    assert plan.axes["eval.episodes"] == ["2"]  # one value: an axis of one
    seen: list[tuple[Any, list[str] | None]] = []
    real = sweep.evaluate_run

    def spy(run_dir: Path, overrides: list[str] | None = None, **kw: Any) -> dict[str, Any]:
        seen.append((kw.get("checkpoint"), overrides))
        return real(run_dir, overrides, **kw)

    monkeypatch.setattr(sweep, "evaluate_run", spy)
    written = sweep.run_sweep(plan, echo=lambda _m: None)
    assert len(written) == 8 and len(seen) == 8
    # checkpoints outermost, each point evaluated with exactly its settings
    assert [c for c, _ in seen] == [2, 2, 2, 2, None, None, None, None]
    by_key = sorted([*SMALL, "plan.horizon=1", "plan.mode=beam"], key=lambda o: o.split("=")[0])
    assert seen[1][1] == by_key
    points = [json.loads(p.read_text()) for p in written]
    for point in points:
        assert point["schema"] == sweep.SCHEMA and point["episodes"] == 2
        assert point["plan"]["mode"] == point["settings"]["plan.mode"]
        assert str(point["plan"]["horizon"]) == point["settings"]["plan.horizon"]
        assert point["score_dataset"]["mean"] is not None and point["eval"]["env_steps"] == 12
        beam = point["settings"]["plan.mode"] == "beam"  # only beam plans predict a return
        assert (point["plan_audit"] is not None) == beam and (
            not beam or point["plan_audit"]["plans"] == 12
        )
    assert points[0]["trained"]["step"] == 2 and points[-1]["trained"]["step"] == 4
    assert points[-1]["checkpoint"] == "final" and points[0]["checkpoint"] == 2
    assert points[0]["trained"]["tokens"] < points[-1]["trained"]["tokens"]
    assert "--checkpoint 2" in points[0]["command"] and "--checkpoint" not in points[-1]["command"]

    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 2 |") or "(step 4)" in line]
    assert len(rows) == 8
    assert "| plan.horizon | plan.mode |" in table
    assert "predicted vs realized return (bias [95% CI]) | search gain [95% CI] |" in table
    audited = [line for line in rows if "| beam |" in line]
    assert len(audited) == 4
    assert all(re.search(r"\]\) \| -?[\d.]+ \[-?[\d.]+, -?[\d.]+\] \|$", line) for line in audited)
    greedy = [line for line in rows if "| greedy |" in line]
    assert len(greedy) == 4 and all(line.endswith("| — | — |") for line in greedy)

    # a rerun evaluates nothing; a new axis value evaluates only the new points
    assert sweep.run_sweep(plan, echo=lambda _m: None) == []
    more = sweep.parse_sweep([*args[: -len(SMALL) - 1], "plan.horizon=1,2,3", *SMALL])
    assert len(sweep.run_sweep(more, echo=lambda _m: None)) == 4
    assert len(seen) == 12


def test_sweep_checks_everything_before_running(run: Path, tmp_path: Path) -> None:
    out = f"out={tmp_path / 'out'}"
    with pytest.raises(TTError, match="needs run="):
        sweep.parse_sweep([out, "plan.beam_width=2,4"])
    with pytest.raises(TTError, match="no checkpoint at step 3; its checkpoints are at steps"):
        sweep.parse_sweep([f"run={run}", out, "checkpoints=3,final"])
    with pytest.raises(
        TTError, match=r"'train\.lr=1' is not an option; it takes plan\.\*, eval\.\*"
    ):
        sweep.parse_sweep([f"run={run}", out, "train.lr=1"])
    with pytest.raises(ConfigError, match=r"plan\.beam_width"):
        sweep.parse_sweep([f"run={run}", out, "plan.beam_width=4,0"])
    with pytest.raises(TTError, match="checkpoints=x"):
        sweep.parse_sweep([f"run={run}", out, "checkpoints=x"])
    assert not (tmp_path / "out").exists()  # nothing written before every option is checked


def test_cli_runs_a_sweep(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert tt_main(["bench", "sweep", f"run={run}", f"out={out}", "plan.mode=greedy", *SMALL]) == 0
    assert "# Sweep of" in capsys.readouterr().out
    [point] = out.glob("*.json")  # every given key names the point, sorted
    assert point.name.startswith("ckpt-final_eval.episodes-2_eval.max_episode_steps-6_")
    assert point.name.endswith("_plan.context-2_plan.mode-greedy.json")
    # the same point asked for in another order is not evaluated again
    again = sweep.parse_sweep([f"run={run}", f"out={out}", *reversed(SMALL), "plan.mode=greedy"])
    assert sweep.run_sweep(again, echo=lambda _m: None) == []
    # a folder holding another run's points is refused, not mixed into one table
    other = json.loads(point.read_text()) | {"run": "elsewhere"}
    point.write_text(json.dumps(other))
    with pytest.raises(TTError, match="a point of another run"):
        sweep.run_sweep(again)
