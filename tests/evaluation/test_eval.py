"""Evaluation: baselines through evaluate_agent, bad-input errors, outputs, and `tt eval` end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from trajectory_transformer.config import EvalConfig, load_config
from trajectory_transformer.data.episodes import DatasetInfo
from trajectory_transformer.data.spaces import space_to_json
from trajectory_transformer.envs.agents import PolicyAgent, RandomAgent
from trajectory_transformer.envs.factory import check_env_spaces, env_factory
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.evaluation.evaluate import evaluate_agent, evaluate_run
from trajectory_transformer.evaluation.outputs import format_summary, write_eval_outputs
from trajectory_transformer.sources.policies import PendulumExpert


def pendulum_info(**changes: Any) -> DatasetInfo:
    env = gym.make("Pendulum-v1")
    assert env.spec is not None
    info = DatasetInfo(
        dataset="test",
        env_id="Pendulum-v1",
        env_spec=env.spec.to_json(),
        observation_space=space_to_json(env.observation_space),
        action_space=space_to_json(env.action_space),
        observation_dim=3,
        action_dim=1,
        ref_min_score=-1200.0,
        ref_max_score=-150.0,
    )
    for key, value in changes.items():
        setattr(info, key, value)
    return info


FAST = EvalConfig(episodes=4, n_envs=2, seed=0, max_episode_steps=60, progress=False)


def test_expert_beats_random_through_evaluate_agent() -> None:
    info = pendulum_info()
    make_env = env_factory(info)
    space = make_env()
    expert = PolicyAgent(PendulumExpert(), space.observation_space, space.action_space)
    random = evaluate_agent(make_env, RandomAgent(space.action_space, 0), FAST, info, desc="random")
    good = evaluate_agent(make_env, expert, FAST, info, desc="behaviour")
    json.dumps(good, allow_nan=False)
    assert good["reference"]["source"] == "dataset"
    assert good["episodes"] == 4 and good["lengths"] == [60] * 4 and good["done_ratio"] == 0.0
    assert good["return_mean"] > random["return_mean"]
    assert good["normalized_score"] > random["normalized_score"]
    assert (
        good["normalized_score_ci95"][0]
        <= good["normalized_score"]
        <= good["normalized_score_ci95"][1]
    )


def test_bad_env_id_is_one_line_error() -> None:
    with pytest.raises(TTError, match="Nope-v0") as err:
        env_factory(pendulum_info(env_id="Nope-v0", env_spec=None))
    assert "\n" not in str(err.value)
    with pytest.raises(TTError, match="names no environment"):
        env_factory(pendulum_info(env_id=None, env_spec=None))


def test_space_mismatch_says_what_differs() -> None:
    env = gym.make("MountainCarContinuous-v0")  # Box(2,) observations, Box(1,) actions
    with pytest.raises(TTError, match=r"observation space: run has Box\(3,\), env has Box\(2,\)"):
        check_env_spaces(env, pendulum_info())
    with pytest.raises(TTError, match="action space has 2 flat dims in the run"):
        check_env_spaces(gym.make("Pendulum-v1"), pendulum_info(action_space=None, action_dim=2))
    check_env_spaces(gym.make("Pendulum-v1"), pendulum_info())  # the matching env passes


def test_outputs_written(tmp_path: Path) -> None:
    info = pendulum_info()
    make_env = env_factory(info)
    summary = evaluate_agent(make_env, RandomAgent(make_env().action_space, 0), FAST, info)
    paths = write_eval_outputs(summary, tmp_path / "eval", tb_dir=tmp_path / "tb", tb_step=3)
    assert json.loads(paths["json"].read_text())["episodes"] == 4
    lines = [json.loads(x) for x in paths["episodes"].read_text().splitlines()]
    assert [x["seed"] for x in lines] == [0, 1, 2, 3]
    assert paths["histogram"].read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


# --- end to end on a tiny trained run -------------------------------------------------------


SMALL = [
    "plan.beam_width=4",
    "plan.horizon=2",
    "plan.context=2",
    "eval.episodes=3",
    "eval.n_envs=2",
    "eval.max_episode_steps=8",
    "eval.progress=false",
    "eval.device=cpu",
]


def test_evaluate_run_end_to_end(tiny_run: Path) -> None:
    summary = evaluate_run(tiny_run, overrides=SMALL)
    out = tiny_run / "eval"
    saved = json.loads((out / "eval.json").read_text())
    assert saved["episodes"] == 3 and saved["lengths"] == [8, 8, 8]
    assert saved["reference"]["source"] == "dataset" and summary["normalized_score"] is not None
    assert saved["config"]["plan"]["beam_width"] == 4
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 3
    assert (out / "eval_returns.png").is_file()
    assert summary["plan_ms_per_step"] > 0
    random = evaluate_run(tiny_run, overrides=SMALL, agent_kind="random")
    assert (out / "eval_random.json").is_file() and random["agent"] == "random"


def test_evaluate_run_rejects_bad_input(tiny_run: Path, tmp_path: Path) -> None:
    with pytest.raises(TTError, match="only takes plan"):
        evaluate_run(tiny_run, overrides=["train.lr=1e-3"])
    with pytest.raises(ValueError, match=r"plan\.beam_width"):  # ConfigError, before any work
        evaluate_run(tiny_run, overrides=["plan.beam_width=0"])
    # a run whose dataset names another env: caught before any rollout, saying what differs
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_run, other, ignore=shutil.ignore_patterns("eval", "videos"))
    info = json.loads((other / "dataset.json").read_text())
    for env_id, message in (
        (
            "MountainCarContinuous-v0",
            rf"run {other} does not fit env 'MountainCarContinuous-v0': observation space: run has Box\(3,\), env has Box\(2,\)",
        ),
        ("Nope-v0", "Nope-v0"),
    ):
        info.update(env_id=env_id, env_spec=None, eval_env_spec=None)
        (other / "dataset.json").write_text(json.dumps(info))
        with pytest.raises(TTError, match=message):
            evaluate_run(other, overrides=SMALL)
    assert not (other / "eval").exists()  # nothing was written
    # model.json and dataset.json from different runs: named, with both sets of dims
    info.update(env_id="Pendulum-v1", observation_dim=4)
    (other / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(
        TTError,
        match=r"model.json is built for 3 observation \+ 1 action dims, but dataset.json describes 4 \+ 1",
    ):
        evaluate_run(other, overrides=SMALL)


def _skip_unless_pendulum_renders() -> None:
    try:
        env = gym.make("Pendulum-v1", render_mode="rgb_array")
        env.reset(seed=0)
        env.render()
    except gym.error.DependencyNotInstalled as err:
        pytest.skip(f"Pendulum-v1 cannot render here: {err}")


def test_render_run(tiny_run: Path) -> None:
    import imageio.v3 as iio

    _skip_unless_pendulum_renders()

    from trajectory_transformer.evaluation.video import render_run

    (episode,) = render_run(tiny_run, episodes=1, overrides=[*SMALL, "eval.max_episode_steps=5"])
    path = episode.path
    assert path == tiny_run / "videos" / "episode_0.mp4"
    assert episode.length == 5 and f"return {episode.episode_return:.1f} over 5 steps" in str(
        episode
    )
    assert sum(1 for _ in iio.imiter(path, plugin="FFMPEG")) == 6  # reset frame + 5 steps
    assert np.asarray(next(iter(iio.imiter(path, plugin="FFMPEG")))).ndim == 3


def test_replay_films_the_scored_episode_and_refuses_one_it_cannot_retrace(
    tiny_run: Path, tmp_path: Path
) -> None:
    """The quickstart's video replays an evaluated episode's actions instead of planning again:
    the film must be that episode (same length, bit-equal return) or no film at all."""
    import imageio.v3 as iio

    _skip_unless_pendulum_renders()

    from trajectory_transformer.evaluation.video import EpisodeActions, ReplayDiverged, replay_run

    log = EpisodeActions(episode=1)  # ran in the second env slot, beside episode 0
    summary = evaluate_run(tiny_run, overrides=SMALL, out=tmp_path / "eval", observe=log)
    assert len(log.actions) == summary["lengths"][1] == 8
    seed = summary["seed"] + 1
    episode = replay_run(tiny_run, log, seed, summary["returns"][1], overrides=SMALL)
    assert episode.path == tiny_run / "videos" / "episode_1.mp4"
    assert (episode.episode_return, episode.length) == (summary["returns"][1], 8)
    assert sum(1 for _ in iio.imiter(episode.path, plugin="FFMPEG")) == 9  # reset + 8 steps
    episode.path.unlink()

    log.actions[3] = -log.actions[3]  # not the episode that was scored any more
    with pytest.raises(ReplayDiverged, match=r"cannot replay episode 1 of .*not the evaluated"):
        replay_run(tiny_run, log, seed, summary["returns"][1], overrides=SMALL)
    log.actions[3] = -log.actions[3]
    short = EpisodeActions(episode=1)
    short.actions = log.actions[:7]
    with pytest.raises(ReplayDiverged, match="outlived its 7 logged actions"):
        replay_run(tiny_run, short, seed, summary["returns"][1], overrides=SMALL)
    with pytest.raises(ReplayDiverged, match="no actions were logged for episode 1"):
        replay_run(tiny_run, EpisodeActions(episode=1), seed, 0.0, overrides=SMALL)
    # neither a film nor a temporary file (test_render_run's episode_0 may be there)
    assert not list((tiny_run / "videos").glob("*episode_1*"))


def test_training_eval_hook_returns_headline_numbers(tiny_run: Path) -> None:
    from trajectory_transformer.evaluation.evaluate import training_eval_hook

    numbers = training_eval_hook(SMALL)(tiny_run, 7)
    assert {"return_mean", "normalized_score", "done_ratio"} <= set(numbers)
    saved = json.loads((tiny_run / "eval" / "epoch_7.json").read_text())
    assert saved["return_mean"] == pytest.approx(numbers["return_mean"])
    assert saved["episodes"] == 3


def test_slow_evaluation_warns_once_with_an_estimate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import time

    from trajectory_transformer.evaluation import evaluate as evaluate_module

    class SlowAgent(RandomAgent):
        def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
            time.sleep(0.05)
            return super().act(slots, observations)

    monkeypatch.setattr(evaluate_module._SlowEvalWarning, "WARN_AFTER_S", 0.5)
    cfg = EvalConfig(episodes=2, n_envs=1, max_episode_steps=20, progress=False)
    make_env = env_factory(pendulum_info())
    space = gym.make("Pendulum-v1").action_space
    evaluate_agent(make_env, SlowAgent(space), cfg, pendulum_info())
    err = capsys.readouterr().err
    # 2 waves x 20 steps x >= 0.05 s >= 2 s > 0.5 s
    assert err.count("warning:") == 1 and "2 episodes of up to 20 steps may take" in err
    evaluate_agent(make_env, RandomAgent(space), cfg, pendulum_info())
    assert "warning" not in capsys.readouterr().err  # a fast agent is not warned about

    class SlowFirstStep(RandomAgent):  # one-off warm-up, then fast
        calls = 0

        def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
            self.calls += 1
            time.sleep(0.6 if self.calls == 1 else 0.0)
            return super().act(slots, observations)

    evaluate_agent(make_env, SlowFirstStep(space), cfg, pendulum_info())
    assert "warning" not in capsys.readouterr().err  # a slow first step alone is no alarm


def test_eval_env_kwargs_replace_the_stored_ones(tiny_run: Path) -> None:
    cfg = load_config(None, ["eval.env_kwargs={g: 2.5}"])
    assert cfg.eval.env_kwargs == {"g": 2.5}
    env = env_factory(pendulum_info(), env_kwargs=cfg.eval.env_kwargs)()
    assert env.unwrapped.g == 2.5  # type: ignore[attr-defined]
    with pytest.raises(TTError, match=r"eval.env_kwargs.bad-name' must be a Python keyword name"):
        load_config(None, ["eval.env_kwargs={bad-name: 1}"])
    # checked against the registered constructor before any env is made (issue 31)
    with pytest.raises(TTError, match=r"^eval.env_kwargs.gee: Pendulum-v1 takes no keyword 'gee'"):
        evaluate_run(tiny_run, overrides=[*SMALL, "eval.env_kwargs={gee: 1}"])


def test_eval_of_a_checkpoint_uses_its_weights(
    checkpointed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trajectory_transformer import runs
    from trajectory_transformer.cli import main as tt_main
    from trajectory_transformer.evaluation.evaluate import prepare_run

    run = checkpointed_run
    assert [s for s, _ in runs.list_checkpoints(run)] == [2, 4]
    early = runs.load_weights(runs.checkpoint_weights(run, 2))
    final = runs.load_weights(run / runs.WEIGHTS_FILE)
    assert any(not torch.equal(early[k], final[k]) for k in early)

    loaded = prepare_run(run, SMALL, checkpoint=2).loaded.model.state_dict()
    assert all(torch.equal(loaded[k], early[k]) for k in early)
    summary = evaluate_run(run, SMALL, out=tmp_path / "at2", checkpoint=2)
    assert summary["checkpoint"] == 2
    assert json.loads((tmp_path / "at2" / "eval.json").read_text())["checkpoint"] == 2
    assert evaluate_run(run, SMALL, out=tmp_path / "final")["checkpoint"] == "final"

    assert tt_main(["eval", str(run), "--checkpoint", "3", *SMALL]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        "no checkpoint at step 3; its checkpoints are at steps [2, 4] (train.keep_last decides "
        "how many are kept)"
    )


def test_beam_evaluation_audits_every_plan_against_the_return_that_followed(
    tiny_run: Path, tmp_path: Path
) -> None:
    # discount 1: the realized return at an episode's first step is the whole episode's return
    every = evaluate_run(tiny_run, [*SMALL, "plan.discount=1.0"], out=tmp_path / "every")
    audit = every["plan_audit"]
    assert audit["plans"] == sum(every["lengths"]) == 24 and audit["episodes"] == 3
    assert audit["first_plan"]["realized_mean"] == pytest.approx(every["return_mean"], rel=1e-5)
    assert np.isfinite(audit["predicted_mean"]) and audit["bias_ci95"] is not None
    assert "predicted return" in format_summary(every)

    halves = evaluate_run(tiny_run, [*SMALL, "plan.plan_every=2"], out=tmp_path / "halves")
    assert halves["plan_audit"]["plans"] == 12  # steps 0, 2, 4, 6 of three 8-step episodes
    greedy = evaluate_run(tiny_run, [*SMALL, "plan.mode=greedy"], out=tmp_path / "greedy")
    assert greedy["plan_audit"] is None
    assert "predicted return" not in format_summary(greedy)


def test_beam_search_over_the_most_likely_action_only_is_greedy_decoding(
    tiny_run: Path, tmp_path: Path
) -> None:
    """With `k_act=1` every candidate's first action is the argmax bin, so beam search must act
    exactly as greedy decoding (measured on Hopper: the same ten returns to the last digit). Ties
    this with what separates beam from greedy on medium data: only the sampled actions."""
    greedy = evaluate_run(tiny_run, overrides=[*SMALL, "plan.mode=greedy"], out=tmp_path / "g")
    beam = evaluate_run(
        tiny_run, overrides=[*SMALL, "plan.mode=beam", "plan.k_act=1"], out=tmp_path / "b"
    )
    assert beam["returns"] == greedy["returns"]
    sampled = evaluate_run(tiny_run, overrides=[*SMALL, "plan.mode=beam"], out=tmp_path / "s")
    assert sampled["returns"] != greedy["returns"]  # the check has teeth: sampling changes actions


def test_the_planner_discounts_with_the_runs_data_discount_unless_plan_discount_is_set(
    tiny_run: Path, tmp_path: Path
) -> None:
    # issue 28: a run trained with data.discount=0.999 used to be planned at plan.discount's 0.99
    from trajectory_transformer.plan.agent import make_agent
    from trajectory_transformer.policy import TTPolicy
    from trajectory_transformer.runs import load_run

    loaded = load_run(tiny_run)
    loaded.config.data.discount = 0.9  # as if trained with it (the value tokens' discount)
    assert loaded.config.plan.discount is None
    plan = replace(loaded.config.plan, context=2)
    assert make_agent(loaded, plan).cfg.gamma == 0.9
    assert TTPolicy.from_loaded(loaded, context=2).agent.cfg.gamma == 0.9
    explicit = replace(plan, discount=0.5)
    assert make_agent(loaded, explicit).cfg.gamma == 0.5
    summary = evaluate_run(tiny_run, SMALL, out=tmp_path / "e")
    assert summary["config"]["plan"]["discount"] == 0.99  # the run's data.discount, recorded
    with pytest.raises(ConfigError, match=r"plan\.discount"):
        evaluate_run(tiny_run, [*SMALL, "plan.discount=0"], out=tmp_path / "bad")
