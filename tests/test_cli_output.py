"""What the command line prints besides results: `--no-progress` on every long command, and
warnings as one clean line each."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from trajectory_transformer.cli import main, parse_args
from trajectory_transformer.errors import one_line_warnings


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["train", "--preset", "quickstart"], ["train.progress=false"]),
        (["train", "--resume", "runs/x"], ["train.progress=false"]),
        (["eval", "runs/x", "plan.horizon=2"], ["eval.progress=false"]),
        (["render", "runs/x"], ["eval.progress=false"]),
        (["quickstart"], ["train.progress=false", "eval.progress=false"]),
    ],
)
def test_no_progress_turns_the_bars_off(argv: list[str], keys: list[str]) -> None:
    args = parse_args([*argv, "--no-progress"])
    assert args.overrides[-len(keys) :] == keys
    assert not any("progress" in item for item in parse_args(argv).overrides)


def test_collect_reads_the_flag_itself() -> None:
    assert parse_args(["collect", "--no-progress"]).no_progress is True
    assert parse_args(["collect", "--no-progress"]).overrides == []


def test_collect_warnings_are_one_clean_line(
    minari_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["collect", "collect.env=CartPole-v1", "collect.policy=random", "collect.episodes=2",
            "collect.ref_episodes=1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "tt/cartpole/random-v0"
    assert err.splitlines() == [
        "tt collect: warning: no expert for CartPole-v1: ref_max_score not stored, so normalized "
        "scores need collect.ref_max_score (or data.ref_max_score at evaluation)"
    ]


def test_gymnasium_style_warnings_lose_colour_prefix_and_newlines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with one_line_warnings("tt eval"), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("\x1b[33mWARN: the env is\n   deprecated\x1b[0m", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "tt eval: warning: the env is deprecated\n"
    assert warnings.showwarning.__module__ != "trajectory_transformer.errors"  # restored
