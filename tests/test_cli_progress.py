"""`--no-progress` on every long command: it turns that command's progress bars off."""

from __future__ import annotations

import pytest

from trajectory_transformer.cli import parse_args


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
