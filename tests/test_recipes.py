"""D4RL-style recipes: PPO checkpoints resume exactly, the replay splits into the right episodes,
levels are chosen as D4RL defines them, references come from the random and expert policies, and
a rerun does nothing.

A tiny PPO (2 envs x 64 steps per rollout) on InvertedPendulum-v5 stands in for Hopper: 3,072 steps
with a checkpoint every 1,024, trained once per module (~5-10 s here).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import minari
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from trajectory_transformer.cli import main as tt_main
from trajectory_transformer.config import CollectConfig, RecipeConfig, config_from_dict
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.sources import recipes
from trajectory_transformer.sources.behaviour import (
    Checkpoint,
    PPOSettings,
    list_checkpoints,
    policy_dir,
    read_replay,
    replay_episodes,
    select_checkpoints,
    train_behaviour,
)
from trajectory_transformer.sources.collect import (
    REF_SEED_OFFSET,
    behaviour_policy,
    rollout_returns,
    run_episodes,
    run_transitions,
)
from trajectory_transformer.sources.policies import RandomPolicy, SB3Policy

ENV = "InvertedPendulum-v5"
TINY = PPOSettings(n_envs=2, n_steps=64, batch_size=64, n_epochs=2)
STEPS, EVERY, EVAL = 3072, 1024, 3


def _train(folder: Path, **kwargs: Any) -> list[Checkpoint]:
    return train_behaviour(
        ENV, folder, STEPS, EVERY, seed=0, eval_episodes=EVAL, settings=TINY, **kwargs
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted tiny PPO run (the reference for resume and the recipe's policy)."""
    folder = tmp_path_factory.mktemp("ppo") / "run"
    _train(folder)
    return folder


def _chunks(folder: Path) -> list[dict[str, np.ndarray]]:
    return list(read_replay(folder, STEPS))


def test_killed_training_resumes_from_its_checkpoint_exactly(trained: Path, tmp_path: Path) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    class Kill(BaseCallback):  # type: ignore[misc]
        def _on_step(self) -> bool:
            if self.num_timesteps >= EVERY + 3 * TINY.rollout_steps:  # 3 rollouts past it
                raise KeyboardInterrupt("killed")
            return True

    folder = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _train(folder, callback=Kill())
    assert [c.steps for c in list_checkpoints(folder)] == [0, EVERY]
    stale = sorted(p.name for p in (folder / "replay").iterdir())
    assert len(stale) == EVERY // TINY.rollout_steps + 2  # rollouts recorded past the checkpoint

    seen: list[tuple[int, list[str]]] = []

    class Look(BaseCallback):  # type: ignore[misc]
        """At the resumed run's first step: it continues at the checkpoint, stale data gone."""

        def _on_step(self) -> bool:
            if not seen:
                names = sorted(p.name for p in (folder / "replay").iterdir())
                seen.append((self.num_timesteps, names))
            return True

    resumed = _train(folder, callback=Look())
    kept = [f"rollout-{s:010d}.npz" for s in range(0, EVERY, TINY.rollout_steps)]
    assert seen == [(EVERY + TINY.n_envs, kept)]
    reference = list_checkpoints(trained)
    assert [c.steps for c in resumed] == [c.steps for c in reference] == [0, 1024, 2048, 3072]
    # the recorded rollouts cover 0..STEPS once each, in order, and equal the uninterrupted run's
    chunks, ref_chunks = _chunks(folder), _chunks(trained)
    assert [int(c["start"]) for c in chunks] == list(range(0, STEPS, TINY.rollout_steps))
    assert len(list((folder / "replay").iterdir())) == len(chunks)
    for got, want in zip(chunks, ref_chunks, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # and the policy ends up the same (weights, evaluated returns)
    assert [c.eval_return for c in resumed] == [c.eval_return for c in reference]
    a = SB3Policy("PPO", str(resumed[-1].path)).model.policy.state_dict()
    b = SB3Policy("PPO", str(reference[-1].path)).model.policy.state_dict()
    for key in b:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    # a finished run is found, not retrained; other settings are refused
    assert _train(folder) == resumed
    with pytest.raises(TTError, match="other settings"):
        train_behaviour(ENV, folder, STEPS, EVERY, seed=0, eval_episodes=EVAL)


def test_recorded_replay_is_what_the_envs_did(trained: Path) -> None:
    """Rewards are the env's own (not VecNormalize's), episodes end where the env said."""
    episodes = replay_episodes(_chunks(trained))
    assert sum(len(e.rewards) for e in episodes) == STEPS
    for ep in episodes:
        assert ep.observations.shape == (len(ep.rewards) + 1, 4)
        # InvertedPendulum-v5: +1 per step, 0 in the step where the pole falls (VecNormalize's
        # normalised rewards would be neither)
        want = np.ones(len(ep.rewards))
        want[-1] = 0.0 if ep.terminations[-1] else 1.0
        np.testing.assert_array_equal(ep.rewards, want)
        assert ep.terminations[-1] or ep.truncations[-1]
        assert not any(ep.terminations[:-1]) and not any(ep.truncations[:-1])
        # a terminated InvertedPendulum episode ends with the pole past 0.2 rad
        if ep.terminations[-1]:
            assert abs(ep.observations[-1, 1]) > 0.2
            assert np.all(np.abs(ep.observations[:-1, 1]) <= 0.2)


def _stream() -> list[dict[str, np.ndarray]]:
    """Two hand-made rollouts of 2 envs; obs value = 100*chunk + 10*t + env."""

    def chunk(c: int, n_steps: int) -> dict[str, np.ndarray]:
        obs = np.array([[[100 * c + 10 * t + i] for i in range(2)] for t in range(n_steps)], float)
        return {
            "start": np.asarray(c * 6),
            "end": np.asarray(c * 6 + 2 * n_steps),
            "obs": obs,  # (T, N, 1)
            "actions": obs + 0.5,
            "rewards": obs[..., 0] + 0.25,
            "terminations": np.zeros((n_steps, 2), bool),
            "truncations": np.zeros((n_steps, 2), bool),
            "starts": np.zeros((n_steps, 2), bool),
            "final_obs": np.array([[100 * c + 90], [100 * c + 91]], float),
            "terminal_index": np.zeros((0, 2), np.int64),
            "terminal_obs": np.zeros((0, 1)),
        }

    a, b = chunk(0, 3), chunk(1, 2)
    # chunk a: env 0 terminates at t=1 (-> terminal obs -1) and restarts at t=2;
    #          env 1 hits its time limit at t=2 (-> terminal obs -2)
    a["starts"][0] = True
    a["terminations"][1, 0], a["starts"][2, 0] = True, True
    a["truncations"][2, 1] = True
    a["terminal_index"], a["terminal_obs"] = np.array([[1, 0], [2, 1]]), np.array([[-1.0], [-2.0]])
    # chunk b starts a new segment: both envs reset (env 0's episode is cut there);
    # env 1 terminates at t=0 (-> terminal obs -3) and restarts; the recording ends after t=1
    b["starts"][0] = True
    b["terminations"][0, 1], b["starts"][1, 1] = True, True
    b["terminal_index"], b["terminal_obs"] = np.array([[0, 1]]), np.array([[-3.0]])
    return [a, b]


def test_replay_split_follows_autoreset_terminal_obs_and_cuts() -> None:
    episodes = replay_episodes(_stream())
    got = [
        (
            ep.observations[:, 0].tolist(),
            list(ep.terminations),
            list(ep.truncations),
        )
        for ep in episodes
    ]
    assert got == [
        ([0, 10, -1], [False, True], [False, False]),  # env 0, terminal obs from infos
        ([1, 11, 21, -2], [False] * 3, [False, False, True]),  # env 1, time limit
        ([20, 90], [False], [True]),  # env 0 cut by the reset of a new segment
        ([100, 110, 190], [False, False], [False, True]),  # env 0 cut by the end of the recording
        ([101, -3], [True], [False]),  # env 1
        ([111, 191], [False], [True]),  # env 1 cut by the end of the recording
    ]
    first = episodes[1]
    assert first.actions[:, 0].tolist() == [1.5, 11.5, 21.5]
    assert first.rewards == [1.25, 11.25, 21.25]
    assert [e.id for e in episodes] == list(range(6))


def test_replay_split_refuses_broken_streams(tmp_path: Path) -> None:
    a, b = _stream()
    b["starts"][1, 0] = True  # env 0 "reset" mid-episode without a done
    with pytest.raises(TTError, match="reset mid-episode"):
        replay_episodes([a, b])
    a, b = _stream()
    a["starts"][0, 1] = False  # env 1's first step continues an unrecorded episode
    with pytest.raises(TTError, match="not recorded"):
        replay_episodes([a, b])
    (tmp_path / "replay").mkdir()
    for c in _stream():
        np.savez(tmp_path / "replay" / f"rollout-{int(c['start']):010d}.npz", **c)  # type: ignore[arg-type]
    assert len(list(read_replay(tmp_path, 10))) == 2
    (tmp_path / "replay" / "rollout-0000000000.npz").unlink()
    with pytest.raises(TTError, match=r"steps 0\.\.6 were not recorded"):
        list(read_replay(tmp_path, 10))


def _ckpt(steps: int, ret: float) -> Checkpoint:
    return Checkpoint(steps, ret, 0.0, 10, Path(f"step-{steps}.zip"), 0.0)


def test_select_expert_best_and_medium_closest_to_a_third() -> None:
    curve = [_ckpt(0, 5), _ckpt(1, 200), _ckpt(2, 1200), _ckpt(3, 900), _ckpt(4, 3000)]
    curve += [_ckpt(5, 2900), _ckpt(6, 3100), _ckpt(7, 400)]
    expert, medium = select_checkpoints(curve)
    assert (expert.steps, medium.steps) == (6, 3)  # |900 - 1033| < |1200 - 1033|
    # ties: the later expert (so the final one when it is best), the earlier medium
    expert, medium = select_checkpoints([_ckpt(0, 0), _ckpt(1, 10), _ckpt(2, 50), _ckpt(3, 30)])
    assert (expert.steps, medium.steps) == (2, 1)
    expert, medium = select_checkpoints([_ckpt(0, 0), _ckpt(1, 2), _ckpt(2, 4), _ckpt(3, 6)])
    assert (expert.steps, medium.steps) == (3, 1)  # 6/3 = 2: step 1 exactly
    expert, _ = select_checkpoints([_ckpt(0, 0), _ckpt(1, 2), _ckpt(2, 9), _ckpt(3, 9)])
    assert expert.steps == 3
    # never the untrained step-0 policy, never a checkpoint after the expert
    _, medium = select_checkpoints([_ckpt(0, 10), _ckpt(1, 0), _ckpt(2, 30), _ckpt(3, 10)])
    assert medium.steps == 1
    with pytest.raises(TTError, match="first trained one"):
        select_checkpoints([_ckpt(0, 1), _ckpt(1, 30), _ckpt(2, 10)])


def test_run_transitions_is_exact_and_ends_in_a_truncation(minari_tmp: Path) -> None:
    policy = RandomPolicy(__import__("gymnasium").make(ENV).action_space, 0)
    episodes = run_transitions(ENV, policy, 157, seed=3)
    assert sum(len(e.rewards) for e in episodes) == 157
    assert [e.id for e in episodes] == list(range(len(episodes)))
    assert [e.seed for e in episodes] == list(range(3, 3 + len(episodes)))
    last = episodes[-1]
    assert last.truncations[-1] and last.observations.shape == (len(last.rewards) + 1, 4)
    assert all(e.terminations[-1] for e in episodes[:-1])  # random InvertedPendulum always falls


@pytest.fixture
def tiny_recipe(
    minari_tmp: Path, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CollectConfig]:
    """A recipe env `invpend` whose PPO run is the module's trained one (copied into place)."""
    monkeypatch.setitem(recipes.RECIPE_ENVS, "invpend", recipes.RecipeEnv(ENV, STEPS, "test", TINY))
    shutil.copytree(trained, policy_dir(ENV, 0))
    yield CollectConfig(
        recipe=RecipeConfig(ppo_checkpoint_every=EVERY, eval_episodes=EVAL, transitions=600)
    )


def _load(dataset_id: str) -> Any:
    return minari.load_dataset(dataset_id)


def test_recipe_makes_the_levels_with_true_references_and_reruns_do_nothing(
    tiny_recipe: CollectConfig,
    minari_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = tiny_recipe
    assert (cfg.recipe.medium_action_noise, cfg.recipe.expert_action_noise) == (0.1, 0.0)
    cfg.recipe.expert_action_noise = 0.1  # noise on both levels here, checked on the expert's
    [summary] = recipes.run_recipe("invpend-quick", cfg)
    ids = [f"tt/invpend/{level}-quick-v1" for level in recipes.LEVELS]
    assert summary["written"] == ids and summary["existing"] == []
    folder = policy_dir(ENV, 0)
    manifest = json.loads((folder / "manifest.json").read_text())

    # the choice, as D4RL defines it, recorded with the whole evaluated curve
    ckpts = list_checkpoints(folder)
    expert, medium = select_checkpoints(ckpts)
    assert [r["steps"] for r in manifest["curve"]] == [c.steps for c in ckpts]
    assert [r["eval_return"] for r in manifest["curve"]] == [c.eval_return for c in ckpts]
    assert manifest["expert"]["steps"] == expert.steps == STEPS
    assert manifest["medium"]["steps"] == medium.steps
    assert 0 < medium.steps < expert.steps and medium.eval_return < expert.eval_return

    # references: the random policy's and the expert's mean returns, measured again here
    eval_seed = REF_SEED_OFFSET
    env = __import__("gymnasium").make(ENV)
    random_return = rollout_returns(ENV, RandomPolicy(env.action_space, eval_seed), EVAL, eval_seed)
    expert_policy = SB3Policy("PPO", str(expert.path))
    expert_return = np.mean(
        [np.sum(b.rewards) for b in run_episodes(ENV, expert_policy, EVAL, eval_seed)]
    )
    assert expert_return != pytest.approx(medium.eval_return)
    for dataset_id in ids:
        meta = _load(dataset_id).storage.metadata
        assert meta["ref_min_score"] == pytest.approx(random_return)
        assert meta["ref_max_score"] == pytest.approx(expert_return)
        assert f"checkpoint at step {expert.steps}" in meta["ref_scores_from"]
        assert "uniform random policy" in meta["ref_scores_from"]
        assert meta["tt_recipe"]["level"] in recipes.LEVELS
    assert manifest["references"]["ref_max_score"] == pytest.approx(expert_return)

    # sizes: exactly `transitions` for random/medium/expert; medium-replay at most that many
    for level in ("random", "medium", "expert"):
        ds = _load(f"tt/invpend/{level}-quick-v1")
        assert ds.total_steps == 600
        assert manifest["datasets"][ds.id]["transitions"] == 600
    sources = {i: _load(i).storage.metadata["tt_recipe"] for i in ids}
    assert sources["tt/invpend/medium-quick-v1"]["checkpoint_steps"] == medium.steps
    assert sources["tt/invpend/expert-quick-v1"]["checkpoint_steps"] == expert.steps
    # deterministic actions plus Gaussian noise of 0.1 x the half-range (3 here)
    for level in ("medium", "expert"):
        assert (
            sources[f"tt/invpend/{level}-quick-v1"]["actions"] == "deterministic + N(0, 0.1) noise"
        )
        assert sources[f"tt/invpend/{level}-quick-v1"]["action_noise"] == 0.1
    expert_data = _load("tt/invpend/expert-quick-v1")
    first_episode = next(expert_data.iterate_episodes())
    actions = np.concatenate([ep.actions for ep in expert_data.iterate_episodes()])  # (600, 1)
    clean = np.stack(
        [
            expert_policy(obs)
            for ep in expert_data.iterate_episodes()
            for obs in ep.observations[:-1]
        ]
    )
    residual = (actions - clean) / 3.0
    inside = np.abs(actions).max(axis=1) < 2.99  # clipping shrinks the rest
    assert residual[inside].std() == pytest.approx(0.1, rel=0.15)
    assert abs(residual[inside].mean()) < 0.03  # 600 draws: the mean's std is ~0.004

    # the single-policy levels record it for `tt eval --agent behaviour` (the mixtures have none):
    # the recorded policy, rebuilt, acts as the data did
    for level in ("random", "medium", "expert", "medium-replay", "medium-expert"):
        record = _load(f"tt/invpend/{level}-quick-v1").storage.metadata.get("tt_collect")
        if level in ("medium-replay", "medium-expert"):
            assert record is None
            continue
        record = json.loads(record)
        assert record["env"] == ENV and record["epsilon"] == 0
        assert record["noise"] == (0 if level == "random" else 0.1)
        ckpt = {"medium": medium, "expert": expert}.get(level)
        want = "random" if ckpt is None else f"sb3:PPO:{ckpt.path.resolve()}"
        assert record["policy"] == want
    rebuilt = behaviour_policy(
        config_from_dict(
            json.loads(expert_data.storage.metadata["tt_collect"]), CollectConfig, "collect."
        ),
        env,
    )
    replayed = run_episodes(ENV, rebuilt, 1, recipes._LEVEL_SEED["expert"])[0]
    np.testing.assert_array_equal(first_episode.actions, replayed.actions[: len(first_episode)])

    # medium-replay: the PPO run's own data up to the medium checkpoint (subsampled to the size)
    replay = _load("tt/invpend/medium-replay-quick-v1")
    recorded = replay_episodes(read_replay(folder, medium.steps))
    assert sum(len(e.rewards) for e in recorded) == medium.steps
    assert 0 < replay.total_steps <= 600
    pool = {e.observations.tobytes() for e in recorded}
    assert all(ep.observations.tobytes() in pool for ep in replay.iterate_episodes())

    # medium-expert: medium then expert, episode for episode
    both = list(_load("tt/invpend/medium-expert-quick-v1").iterate_episodes())
    parts = [
        *_load("tt/invpend/medium-quick-v1").iterate_episodes(),
        *_load("tt/invpend/expert-quick-v1").iterate_episodes(),
    ]
    assert len(both) == len(parts)
    for got, want in zip(both, parts, strict=True):
        np.testing.assert_array_equal(got.observations, want.observations)
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.rewards, want.rewards)
        np.testing.assert_array_equal(got.truncations, want.truncations)

    # a rerun finds everything and does nothing: no training, no collection, no writes
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a rerun did work")

    monkeypatch.setattr(recipes, "train_behaviour", must_not_run)
    monkeypatch.setattr(recipes, "run_transitions", must_not_run)
    before = {p: p.stat().st_mtime_ns for p in minari_tmp.rglob("*")}
    capsys.readouterr()
    assert tt_main(["collect", "--recipe", "invpend-quick", *_overrides(cfg)]) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and all(f"exists: {i}" in out for i in ids)
    assert {p: p.stat().st_mtime_ns for p in minari_tmp.rglob("*")} == before


def _overrides(cfg: CollectConfig) -> list[str]:
    rc = cfg.recipe
    return [
        f"collect.recipe.ppo_checkpoint_every={rc.ppo_checkpoint_every}",
        f"collect.recipe.eval_episodes={rc.eval_episodes}",
        f"collect.recipe.transitions={rc.transitions}",
        f"collect.recipe.medium_action_noise={rc.medium_action_noise}",
        f"collect.recipe.expert_action_noise={rc.expert_action_noise}",
    ]


def test_recipe_makes_only_what_is_missing(
    tiny_recipe: CollectConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny_recipe.recipe.stochastic = True  # sampled actions: seeded, so reproducible
    tiny_recipe.recipe.medium_action_noise = 0.0
    [summary] = recipes.run_recipe("invpend-medium-quick", tiny_recipe, progress=False)
    assert summary["written"] == ["tt/invpend/medium-quick-v1"]
    first = _load("tt/invpend/medium-quick-v1")
    assert first.storage.metadata["tt_recipe"]["actions"] == "sampled"
    actions = np.concatenate([ep.actions for ep in first.iterate_episodes()])
    tiny_recipe.overwrite = True
    recipes.run_recipe("invpend-medium-quick", tiny_recipe, progress=False)
    again = np.concatenate(
        [ep.actions for ep in _load("tt/invpend/medium-quick-v1").iterate_episodes()]
    )
    np.testing.assert_array_equal(again, actions)
    tiny_recipe.overwrite = False
    # medium-expert needs expert too (made now); medium is kept as it is
    [summary] = recipes.run_recipe("invpend-medium-expert-quick", tiny_recipe, progress=False)
    assert summary["written"] == ["tt/invpend/expert-quick-v1", "tt/invpend/medium-expert-quick-v1"]
    assert summary["existing"] == ["tt/invpend/medium-quick-v1"]
    # other action settings never keep (and mix in) data made with the old ones
    tiny_recipe.recipe.stochastic, tiny_recipe.recipe.medium_action_noise = False, 0.1
    with pytest.raises(
        TTError,
        match=r"medium-quick-v1 exists with actions 'sampled'.*medium_action_noise.*overwrite",
    ):
        recipes.run_recipe("invpend-medium-expert-quick", tiny_recipe, progress=False)


def test_a_second_recipe_on_the_same_policy_is_refused(tiny_recipe: CollectConfig) -> None:
    from trajectory_transformer.utils import lock_run_dir

    with (
        lock_run_dir(policy_dir(ENV, 0), "tt collect --recipe invpend"),
        pytest.raises(TTError, match=r"in use by pid \d+ .*tt collect --recipe invpend"),
    ):
        recipes.run_recipe("invpend-random-quick", tiny_recipe, progress=False)
    assert not (minari.list_local_datasets())


def test_recipe_names_and_config_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert recipes.parse_recipe("hopper-medium-replay-quick") == [
        ("hopper", ("medium-replay",), True)
    ]
    assert recipes.parse_recipe("walker2d") == [("walker2d", recipes.LEVELS, False)]
    assert recipes.parse_recipe("halfcheetah-all-quick") == [("halfcheetah", recipes.LEVELS, True)]
    assert [p[0] for p in recipes.parse_recipe("all-quick")] == list(recipes.RECIPE_ENVS)
    assert recipes.recipe_dataset_id("hopper", "medium-replay", True) == (
        "tt/hopper/medium-replay-quick-v1"
    )
    with pytest.raises(TTError, match="unknown recipe 'hopper-meduim'"):
        recipes.parse_recipe("hopper-meduim")
    with pytest.raises(ConfigError, match=r"collect\.policy does not apply with --recipe"):
        recipes.check_recipe_config(CollectConfig(policy="random"))
    with pytest.raises(ConfigError, match=r"collect\.recipe\.transitions"):
        RecipeConfig(transitions=0)
    with pytest.raises(ConfigError, match=r"recipe\.medium_action_noise.*stochastic=true"):
        RecipeConfig(stochastic=True)
    with pytest.raises(ConfigError, match=r"collect\.recipe\.expert_action_noise"):
        RecipeConfig(expert_action_noise=-0.1)
    RecipeConfig(stochastic=True, medium_action_noise=0.0)
    assert tt_main(["collect", "--recipe", "list"]) == 0
    out = capsys.readouterr().out
    assert "hopper: Hopper-v5" in out and "medium-replay" in out
    assert tt_main(["collect", "--recipe", "hopper-medium", "collect.env=Ant-v5"]) == 2
    assert "collect.env does not apply" in capsys.readouterr().err


def test_a_quality_suite_makes_its_missing_recipe_dataset_first(
    tiny_recipe: CollectConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh clone has no datasets: `tt bench quality` makes a recipe's dataset with the recipe
    settings of its preset, then trains and scores on it; a Minari id is left to the loader."""
    import yaml

    from trajectory_transformer.lab.quality import Layout, load_suite, run_suite

    dataset = "tt/invpend/medium-quick-v1"
    rc = tiny_recipe.recipe
    preset = {
        "collect": {"recipe": {"ppo_checkpoint_every": rc.ppo_checkpoint_every,
                               "eval_episodes": rc.eval_episodes,
                               "transitions": rc.transitions}},
        "data": {"n_bins": 16, "n_transitions": 4},
        "model": {"n_embd": 16, "n_layer": 1, "n_head": 2},
        "train": {"batch_size": 16, "max_steps": 2, "save_every": 2, "progress": False},
        "plan": {"context": 3},
        "eval": {"n_envs": 2, "max_episode_steps": 20, "progress": False},
    }  # fmt: skip
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(preset))
    suite_path = tmp_path / "suite.yaml"
    suite_path.write_text(yaml.safe_dump({
        "datasets": [{"dataset": dataset, "preset": "tiny.yaml"}],
        "methods": ["tt-greedy"], "seeds": [0], "episodes": 2, "eval_seed": 1000,
    }))  # fmt: skip
    assert not recipes.dataset_exists(dataset)
    where = [f"work_dir={tmp_path / 'work'}", f"results_dir={tmp_path / 'results'}"]
    assert tt_main(["bench", "quality", f"suite={suite_path}", "dry_run=true", *where]) == 0
    assert (
        f"dataset {dataset}: missing, made first by `tt collect --recipe invpend-medium-quick`"
        in capsys.readouterr().out
    )

    layout = Layout(tmp_path / "work", tmp_path / "results")
    printed: list[str] = []
    [path] = run_suite(load_suite(str(suite_path)), layout, echo=printed.append)
    assert printed[0] == (
        f"{dataset} is missing: making it with `tt collect --recipe invpend-medium-quick` first"
    )
    made = _load(dataset)
    assert made.total_steps == rc.transitions  # the preset's recipe settings, not the defaults
    assert made.storage.metadata["tt_recipe"]["actions"] == "deterministic + N(0, 0.1) noise"
    assert json.loads(path.read_text())["dataset"] == dataset

    # present now: nothing is made again; ids that are not a recipe's are the loader's business
    assert recipes.make_if_recipe(dataset, tiny_recipe, printed.append) is None
    assert recipes.make_if_recipe("mujoco/hopper/medium-v0", tiny_recipe, printed.append) is None
    assert sum("is missing" in line for line in printed) == 1
