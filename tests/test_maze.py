"""PointMaze: the scripted maze controller reaches its goals; Dict-observation datasets (plain
`tt collect` and the D4RL/pointmaze-style recipe) round-trip through loading, training and the
policy. Tests that make PointMaze envs skip without gymnasium-robotics (it is in the dev extra)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest

from trajectory_transformer.cli import main as tt_main
from trajectory_transformer.config import CollectConfig, RecipeConfig
from trajectory_transformer.data.episodes import load_transitions
from trajectory_transformer.data.spaces import flatten, unflatten
from trajectory_transformer.envs.make import make_env
from trajectory_transformer.errors import TTError
from trajectory_transformer.sources.collect import behaviour_policy, collect_dataset
from trajectory_transformer.sources.maze import MazeController, goal_distances
from trajectory_transformer.sources.pointmaze import (
    parse_pointmaze_recipe,
    pointmaze_dataset_id,
    run_pointmaze_recipe,
)
from trajectory_transformer.sources.policies import NoisyPolicy, make_policy

needs_robotics = pytest.mark.skipif(
    importlib.util.find_spec("gymnasium_robotics") is None,
    reason="needs gymnasium-robotics for the PointMaze envs (pip install gymnasium-robotics; "
    "`make test` installs it with the dev extra)",
)

U_MAZE = [
    [1, 1, 1, 1, 1],
    [1, 0, 0, 0, 1],
    [1, 1, 1, 0, 1],
    [1, 0, 0, 0, 1],
    [1, 1, 1, 1, 1],
]
KEYS = ("achieved_goal", "desired_goal", "observation")


def test_goal_distances_are_shortest_paths_over_free_cells() -> None:
    free = np.array(U_MAZE) != 1
    dist = goal_distances(free, (1, 1))
    assert [dist[1, 2], dist[1, 3], dist[2, 3], dist[3, 3], dist[3, 2], dist[3, 1]] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    assert np.isinf(dist[free == 0]).all()


def test_controller_steers_along_the_path_and_clips() -> None:
    ctrl = MazeController(U_MAZE)
    start, goal = ctrl.cell_xy((3, 1)), ctrl.cell_xy((1, 1))  # the two ends of the U
    np.testing.assert_allclose(
        ctrl.waypoint(start, goal), ctrl.cell_xy((3, 2))
    )  # not through walls
    np.testing.assert_allclose(ctrl.waypoint(goal + 0.1, goal), goal)  # in the goal's cell
    obs = {
        "observation": np.array([[*start, 0.0, 0.0]]),
        "achieved_goal": start[None],
        "desired_goal": goal[None],
    }
    action = ctrl(obs)
    assert action.shape == (1, 2) and action.dtype == np.float32
    np.testing.assert_allclose(action, [[1.0, 0.0]])  # full force towards (3, 2), to the right
    with pytest.raises(TTError, match=r"collect\.policy=maze: expects PointMaze Dict observations"):
        ctrl(np.zeros((1, 8)))


def test_parse_pointmaze_recipes() -> None:
    assert parse_pointmaze_recipe("pointmaze-medium") == [("medium", False, False)]
    assert parse_pointmaze_recipe("PointMaze-large-dense-quick") == [("large", True, True)]
    assert parse_pointmaze_recipe("pointmaze-quick") == [
        ("umaze", False, True),
        ("medium", False, True),
        ("large", False, True),
    ]
    assert pointmaze_dataset_id("medium", True, True) == "tt/pointmaze/medium-dense-quick-v0"
    with pytest.raises(TTError, match="unknown recipe 'pointmaze-huge'"):
        parse_pointmaze_recipe("pointmaze-huge")


def test_maze_policy_refuses_other_envs() -> None:
    with pytest.raises(TTError, match=r"collect.policy=maze: Pendulum-v1 is not a PointMaze env"):
        make_policy("maze", gym.make("Pendulum-v1"))


def _run_to_goal(env: gym.Env[Any, Any], policy: Any, options: dict[str, Any], seed: int) -> int:
    """Steps until the ball is within 0.45 of the goal (0: never, within the time limit)."""
    obs, _ = env.reset(seed=seed, options=options)
    for step in range(1, 10_000):
        action = policy({k: v[None] for k, v in obs.items()})[0]
        assert env.action_space.contains(action)
        obs, _, terminated, truncated, info = env.step(action)
        if info["success"]:
            return step
        if terminated or truncated:
            return 0
    return 0


@needs_robotics
def test_controller_reaches_the_goal_on_umaze_from_every_start() -> None:
    env = make_env("PointMaze_UMaze-v3", {"continuing_task": False})
    policy = make_policy("maze", env)
    noisy = NoisyPolicy(policy, env.action_space, noise=0.5, seed=0)
    starts = [(3, 1), (3, 3), (2, 3), (1, 3)]
    for seed, start in enumerate(starts):
        options = {"goal_cell": np.array([1, 1]), "reset_cell": np.array(start)}
        assert 0 < _run_to_goal(env, policy, options, seed) <= 150, start
        assert 0 < _run_to_goal(env, noisy, options, seed) <= 200, start  # D4RL's noise
    back = {"goal_cell": np.array([3, 1]), "reset_cell": np.array([1, 1])}
    assert 0 < _run_to_goal(env, policy, back, 9) <= 150


@needs_robotics
@pytest.mark.parametrize("env_id", ["PointMaze_Medium-v3", "PointMaze_Large-v3"])
def test_controller_reaches_random_goals_on_medium_and_large(env_id: str) -> None:
    env = make_env(env_id, {"continuing_task": False})
    policy = NoisyPolicy(make_policy("maze", env), env.action_space, noise=0.5, seed=1)
    for seed in range(3):
        assert _run_to_goal(env, policy, {}, seed) > 0, seed


def _round_trips(dataset_id: str) -> tuple[Any, Any]:
    """Per key, the flattened observations unflatten to what Minari stored; flags are kept."""
    ds = minari.load_dataset(dataset_id)
    transitions, info = load_transitions(dataset_id, termination_penalty=0.0)
    space = ds.observation_space
    assert isinstance(space, gym.spaces.Dict) and tuple(space.spaces) == KEYS
    assert transitions.observation_dim == 8 and transitions.action_dim == 2
    episodes = list(ds.iterate_episodes())
    stored = {k: np.concatenate([ep.observations[k][:-1] for ep in episodes]) for k in KEYS}
    back = unflatten(space, transitions.observations)
    for key in KEYS:
        assert back[key].dtype == np.float64
        np.testing.assert_allclose(back[key], stored[key], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(transitions.observations, flatten(space, stored))
    np.testing.assert_array_equal(
        transitions.actions, np.concatenate([ep.actions for ep in episodes])
    )
    terminal = np.concatenate([ep.terminations for ep in episodes])
    timeout = np.concatenate([ep.truncations & ~ep.terminations for ep in episodes])
    np.testing.assert_array_equal(transitions.terminals, terminal)
    np.testing.assert_array_equal(transitions.timeouts, timeout)
    return ds, info


@needs_robotics
def test_plain_collect_dict_dataset_round_trips(minari_tmp: Path) -> None:
    """Episodic data: episodes end at the goal as terminations, or at the time limit."""
    cfg = CollectConfig(
        env="PointMaze_UMaze-v3",
        policy="maze",
        episodes=4,
        noise=0.5,
        ref_episodes=1,
        seed=3,
        env_kwargs={"continuing_task": False, "max_episode_steps": 60},
    )
    dataset_id = collect_dataset(cfg, progress=False)
    assert dataset_id == "tt/pointmaze_umaze/maze-v0"
    ds, info = _round_trips(dataset_id)
    ends = [(bool(ep.terminations[-1]), bool(ep.truncations[-1])) for ep in ds.iterate_episodes()]
    assert (True, False) in ends and (False, True) in ends  # some reach the goal, some time out
    assert info.ref_max_score is not None and info.ref_min_score is not None
    # the record rebuilds the behaviour policy (`tt eval --agent behaviour`) in the dataset's env
    record = CollectConfig(**{k: v for k, v in json.loads(info.collect_settings).items()})
    env = ds.recover_environment()
    policy = behaviour_policy(record, env, seed=0)
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(policy({k: v[None] for k, v in obs.items()})[0])


@needs_robotics
def test_pointmaze_recipe_is_laid_out_as_d4rl(minari_tmp: Path) -> None:
    cfg = CollectConfig(recipe=RecipeConfig(transitions=700, eval_episodes=1), seed=0)
    (dataset_id,) = run_pointmaze_recipe("pointmaze-umaze-quick", cfg, progress=False)
    assert dataset_id == "tt/pointmaze/umaze-quick-v0"
    ds, _ = _round_trips(dataset_id)
    assert ds.total_steps == 700 and ds.total_episodes >= 3
    episodes = list(ds.iterate_episodes())
    for ep, nxt in itertools.pairwise(episodes):
        assert not ep.terminations.any() and ep.truncations[-1] and not ep.truncations[:-1].any()
        assert ep.rewards[-1] == 1.0  # cut where the goal was reached (sparse reward)
        goal = ep.observations["desired_goal"]
        np.testing.assert_array_equal(goal, np.broadcast_to(goal[0], goal.shape))  # one goal
        # the ball goes on from where it was, towards a new goal
        np.testing.assert_array_equal(
            nxt.observations["observation"][0], ep.observations["observation"][-1]
        )
        assert not np.array_equal(nxt.observations["desired_goal"][0], goal[0])
    assert episodes[-1].truncations[-1] and not episodes[-1].terminations.any()
    meta = ds.storage.metadata
    data_spec, eval_spec = json.loads(meta["env_spec"]), json.loads(meta["eval_env_spec"])
    assert data_spec["id"] == eval_spec["id"] == "PointMaze_UMaze-v3"
    assert data_spec["max_episode_steps"] == 1_000_000
    assert data_spec["kwargs"]["continuing_task"] and data_spec["kwargs"]["reset_target"]
    assert eval_spec["max_episode_steps"] == 300 and not eval_spec["kwargs"]["reset_target"]
    assert eval_spec["kwargs"]["maze_map"][1][1] == "g"  # D4RL maze2d-umaze's goal cell
    assert meta["ref_max_score"] > meta["ref_min_score"]
    # a second run keeps what exists
    assert run_pointmaze_recipe("pointmaze-umaze-quick", cfg, progress=False) == [dataset_id]


@needs_robotics
def test_dict_dataset_trains_and_the_policy_acts_in_pointmaze(
    minari_tmp: Path, tmp_path: Path
) -> None:
    """collect (Dict observations) -> tt train -> TTPolicy acting in the Dict-observation env."""
    from trajectory_transformer.policy import TTPolicy

    dataset_id = "tt-maze-test/umaze/maze-v0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rc = tt_main(
            [
                "collect",
                "--no-progress",
                "collect.env=PointMaze_UMaze-v3",
                "collect.policy=maze",
                "collect.episodes=3",
                "collect.noise=0.5",
                "collect.ref_episodes=1",
                f"collect.dataset_id={dataset_id}",
                "collect.env_kwargs={max_episode_steps: 40}",
            ]
        )
    assert rc == 0
    overrides = [
        f"data.dataset={dataset_id}",
        "data.n_bins=16",
        "data.n_transitions=4",
        "model.n_embd=16",
        "model.n_layer=1",
        "model.n_head=2",
        "train.batch_size=8",
        "train.max_steps=6",
        "train.device=cpu",
        "train.progress=false",
        "plan.context=2",
        "plan.horizon=2",
        "plan.beam_width=2",
        "plan.expand=2",
    ]
    run_dir = tmp_path / "run"
    assert tt_main(["train", "--run-dir", str(run_dir), *overrides]) == 0
    policy = TTPolicy.load(run_dir, device="cpu", mode="greedy", seed=0)
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=5)
    assert policy.observation_space == env.observation_space
    obs, _ = env.reset(seed=0)
    policy.reset()
    for _ in range(5):
        action = policy.act(obs)
        assert env.action_space.contains(action), action
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe_reward(reward)
        if terminated or truncated:
            break
    assert policy.agent.count[0] > 0


@needs_robotics
def test_importing_gymnasium_robotics_for_a_maze_prints_no_adroit_notice() -> None:
    """gymnasium-robotics 1.4.2 prints an Adroit notice on import: not ours to show."""
    import subprocess
    import sys

    code = (
        "from trajectory_transformer.envs.make import registered_env_spec;"
        "import sys; print(registered_env_spec('PointMaze_UMaze-v3') is not None);"
        "print('stderr-works', file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "True"
    assert "Adroit" not in done.stderr and "stderr-works" in done.stderr
