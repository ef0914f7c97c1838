"""The main job end to end with tiny budgets: collect → train → eval (+ baselines) → video → report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tiny import TINY_MODEL
from trajectory_transformer import quickstart
from trajectory_transformer.cli import main
from trajectory_transformer.config import load_config
from trajectory_transformer.quickstart import run_quickstart

TINY = [
    "collect.episodes=4",
    "collect.ref_episodes=2",
    "data.dataset=tt/pendulum/quickstart-test-v0",
    *TINY_MODEL,
    "train.max_steps=3",
    "train.batch_size=8",
    "train.progress=false",
    "plan.beam_width=2",
    "plan.horizon=2",
    "eval.episodes=2",
    "eval.n_envs=2",
    "eval.max_episode_steps=5",
    "eval.progress=false",
]


def test_quickstart_writes_a_complete_run(tmp_path: Path) -> None:
    cfg = load_config("quickstart", TINY)
    results = run_quickstart(cfg, tmp_path / "qs")
    run = tmp_path / "qs"
    assert set(results) == {"TT (beam search)", "TT (greedy, no search)", "behaviour", "random"}
    assert results["TT (greedy, no search)"]["config"]["plan"]["mode"] == "greedy"
    assert results["TT (beam search)"]["config"]["plan"]["mode"] == "beam"
    for name in (
        "config.json",
        "model.safetensors",
        "eval/eval.json",
        "eval/eval_greedy.json",
        "eval/eval_behaviour.json",
        "eval/eval_random.json",
        "phases.json",
        "report.html",
    ):
        assert (run / name).is_file(), name
    phases = json.loads((run / "phases.json").read_text())
    assert {"collect_s", "train_s", "eval_s", "total_s"} <= set(phases)
    assert list((run / "videos").glob("*.mp4"))
    html = (run / "report.html").read_text()
    # every part of the report was found in the run folder (each missing part is such a note)
    assert re.findall(r'class="note">[^<]*', html) == []
    assert '<video id="episode-video"' in html
    assert "<tr><td>greedy</td>" in html  # the model without search, beside the planner
    assert 'alt="discretization error per dimension"' in html
    # a second run finds the dataset and does not collect again
    run_quickstart(cfg, tmp_path / "qs2")
    assert "collect_s" not in json.loads((tmp_path / "qs2" / "phases.json").read_text())


def test_quickstart_films_its_first_scored_episode_without_planning_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import imageio.v3 as iio

    def no_planning(*args: object, **kwargs: object) -> None:
        raise AssertionError("the video planned its episode again instead of replaying it")

    monkeypatch.setattr(quickstart, "render_run", no_planning)
    results = run_quickstart(load_config("quickstart", TINY), tmp_path / "qs")
    film = tmp_path / "qs" / "videos" / "episode_0.mp4"
    assert results["TT (beam search)"]["lengths"][0] == 5
    assert sum(1 for _ in iio.imiter(film, plugin="FFMPEG")) == 6  # reset + the episode's 5 steps


def test_quickstart_plans_the_video_again_when_its_episode_cannot_be_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trajectory_transformer.evaluation import video

    def diverged(*args: object, **kwargs: object) -> None:
        raise video.ReplayDiverged("cannot replay episode 0 of the run: it gave another return")

    monkeypatch.setattr(quickstart, "replay_run", diverged)
    run_quickstart(load_config("quickstart", TINY), tmp_path / "qs")
    assert (tmp_path / "qs" / "videos" / "episode_0.mp4").is_file()  # planned by render_run
    assert "it gave another return; planning the video's episode again" in capsys.readouterr().out


def test_quickstart_cli_rejects_unknown_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quickstart", "train.max_stepz=3"]) == 2
    assert "did you mean 'train.max_steps'" in capsys.readouterr().err


def test_quickstart_env_override_carries_through_to_the_data(tmp_path: Path) -> None:
    cfg = load_config(
        "quickstart",
        [*TINY, "collect.env=CartPole-v1", "collect.policy=random", "collect.noise=0",
         "collect.epsilon=0", "collect.episodes=6", "collect.ref_episodes=2"],
    )  # fmt: skip
    results = run_quickstart(cfg, tmp_path / "cp")
    info = json.loads((tmp_path / "cp" / "dataset.json").read_text())
    assert info["dataset"].startswith("tt/cartpole/") and info["env_id"] == "CartPole-v1"
    assert {"TT (beam search)", "behaviour", "random"} <= set(results)


def test_quickstart_refuses_data_from_another_env(tmp_path: Path, pendulum_dataset: str) -> None:
    from trajectory_transformer.config import CollectConfig
    from trajectory_transformer.errors import TTError
    from trajectory_transformer.sources.collect import collect_dataset

    collect_dataset(
        CollectConfig(env="Pendulum-v1", policy="random", episodes=2, ref_episodes=1,
                      dataset_id="mine/pendulum-v0"),
        progress=False,
    )  # fmt: skip
    cfg = load_config(
        "quickstart", [*TINY, "data.dataset=mine/pendulum-v0", "collect.env=CartPole-v1"]
    )
    with pytest.raises(TTError, match=r"collected from Pendulum-v1, not collect\.env=CartPole-v1"):
        run_quickstart(cfg, tmp_path / "x")


def test_summary_table_keeps_whole_column_names_when_piped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trajectory_transformer.quickstart import _summary_table

    monkeypatch.setenv("COLUMNS", "60")  # a narrow pipe: rich would cut the columns to fit
    summary = {"normalized_score": 93.0, "normalized_score_ci95": [87.0, 99.1],
               "return_mean": -226.7, "return_std": 133.4, "episodes": 20}  # fmt: skip
    _summary_table(tmp_path, {"TT (greedy, no search)": summary, "behaviour": summary}, {})
    out = capsys.readouterr().out
    assert "…" not in out
    for text in ("TT (greedy, no search)", "mean return", "episodes", "[87.0, 99.1]", "-226.7"):
        assert text in out
