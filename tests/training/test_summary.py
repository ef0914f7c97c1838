"""`tt train` ends with a summary, with or without progress; train.eval_every without an eval_fn
says so."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from tiny import TINY_TRAIN
from trajectory_transformer.cli import main
from trajectory_transformer.config import load_config
from trajectory_transformer.training import train
from trajectory_transformer.training.summary import train_summary


def _args(dataset: str, run: Path, *extra: str) -> list[str]:
    return ["train", "--run-dir", str(run), f"data.dataset={dataset}", *TINY_TRAIN,
            "train.max_steps=4", "train.log_every=2", *extra]  # fmt: skip


def test_tt_train_ends_with_a_summary_without_progress(
    pendulum_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main(_args(pendulum_dataset, run, "--no-progress")) == 0
    out, err = capsys.readouterr()
    assert f"training {run}:" in err  # what it does, said once, bar or not
    assert "step/s" not in err and "it/s" not in err  # no progress bar
    lines = out.strip().splitlines()
    assert lines[-2].startswith(f"trained {run}: step 4, final loss ")
    assert "(step 4)" in lines[-2]
    assert lines[-1] == f"next: tt eval {run}    (then: tt report {run})"
    # --resume names the same folder and step
    assert main(["train", "--resume", str(run), "train.max_steps=6", "--no-progress"]) == 0
    assert f"trained {run}: step 6, final loss " in capsys.readouterr().out


def test_summary_of_a_run_without_metrics(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    assert train_summary(tmp_path / "run", 125.0).splitlines()[0] == (
        f"trained {tmp_path / 'run'}: step 0, no loss logged, 2 min 05 s"
    )


def _tiny(dataset: str, *extra: str) -> Any:
    return load_config(None, [f"data.dataset={dataset}", *TINY_TRAIN, "train.max_steps=2", *extra])


def test_eval_every_without_eval_fn_warns(pendulum_dataset: str, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"train.eval_every=1 does nothing without an eval_fn"):
        train(_tiny(pendulum_dataset, "train.eval_every=1"), tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # with an eval_fn, or eval_every=0: silent
        train(_tiny(pendulum_dataset, "train.eval_every=1"), tmp_path / "b",
              eval_fn=lambda run_dir, epoch: {})  # fmt: skip
        train(_tiny(pendulum_dataset), tmp_path / "c")
