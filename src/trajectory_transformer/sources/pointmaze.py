"""`tt collect --recipe pointmaze-<maze>`: goal-conditioned PointMaze datasets laid out as Minari's
own D4RL/pointmaze/* (so a run trained on `tt/pointmaze/medium-v0` and one trained on
`D4RL/pointmaze/medium-v2`, for users with a network, see the same spaces, envs and episodes).

What Minari's D4RL/pointmaze datasets are (minari.farama.org/datasets/D4RL/pointmaze and the
generation script at github.com/rodrigodelazcano/d4rl-minari-dataset-generation, pointmaze/):
- One continuing run per maze: `PointMaze_<Maze>-v3` (sparse reward: 1 within 0.45 of the goal)
  or `PointMaze_<Maze>Dense-v3` (reward exp(-distance)), made with continuing_task=True,
  reset_target=True, max_episode_steps=1,000,000. Reaching the goal draws a new goal; the ball
  is not reset.
- The run is cut into episodes where the goal is reached: that step is marked TRUNCATED, and
  nothing is ever terminated (no terminal states); the run's last episode is truncated by the
  budget. 1,000,000 steps per dataset, with Gaussian action noise of std 0.5, clipped to [-1, 1].
- Observations are Dict(achieved_goal (2,), desired_goal (2,), observation (4,) = x, y, vx, vy),
  float64; actions Box(-1, 1, (2,), float32).
- The evaluation env (eval_env_spec) is the same env id with a single-goal map (D4RL maze2d's
  fixed goal cell, any free cell a start), continuing_task=True, reset_target=False and the
  registered time limit (UMaze 300, Medium 600, Large 800 steps): a sparse return counts the steps
  spent at the goal. ref_min_score is a random policy's mean return there, ref_max_score the
  waypoint controller's.

Ours, `tt/pointmaze/<maze>[-dense][-quick]-v0`, are made the same way with the Markovian controller
of sources/maze.py (Minari's follows Q-iteration waypoints and remembers the ones it passed), and with
two deliberate differences: the first observation of each episode after the first carries the new
goal (Minari's repeats the previous episode's last observation, whose desired_goal is the goal just
reached), so every observation of an episode names that episode's goal and every recorded action
was chosen from the observation recorded with it; and no per-step infos (qpos, qvel, goal,
success) are stored, since all of them are in the observation already. Reference returns use
collect.recipe.eval_episodes episodes (Minari: 100).

Sizes: 1,000,000 transitions, or 100,000 for -quick (collect.recipe.transitions overrides both).
A dataset that exists is kept (collect.overwrite=true recollects it).

Without a recipe, `tt collect` runs the same controller in reset-per-episode episodes instead:
    tt collect collect.env=PointMaze_Medium-v3 collect.policy=maze collect.noise=0.5 \\
        collect.episodes=1000
(each episode is one registered-time-limit run from a reset, the ball parked at the goal once it
is reached, exactly the evaluation task). Adding 'collect.env_kwargs={continuing_task: false}'
ends episodes at the goal instead, as terminations: train on those with
data.termination_penalty=0, since TT's default -100 would punish reaching the goal.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import CollectConfig
from ..data.spaces import stack
from ..envs.make import make_env, registered_env_spec
from ..errors import TTError
from ..store import COLLECT_RECORD_KEY, check_writable_root, minari_root, recover_interrupted
from .collect import REF_SEED_OFFSET, check_target, collect_record, rollout_returns, write_dataset
from .maze import maze_policy
from .policies import NoisyPolicy, Policy, RandomPolicy
from .recipe_catalog import check_recipe_config
from .recipe_levels import dataset_exists

__all__ = [
    "EVAL_GOALS",
    "MAZES",
    "NOISE",
    "collect_stream",
    "describe_pointmaze_recipes",
    "eval_env_kwargs",
    "is_pointmaze_recipe",
    "maze_env_id",
    "parse_pointmaze_recipe",
    "pointmaze_dataset_id",
    "pointmaze_recipe_making",
    "run_pointmaze_recipe",
]

MAZES = {"umaze": "UMaze", "medium": "Medium", "large": "Large"}
"""Recipe maze name -> the maze part of the Gymnasium-Robotics id PointMaze_<Maze>[Dense]-v3."""

EVAL_GOALS = {"umaze": (1, 1), "medium": (6, 6), "large": (7, 9)}
"""(row, col) of the evaluation goal cell: D4RL maze2d's fixed goals, as Minari's eval_env_spec."""

NOISE = 0.5
"""Action noise std as a fraction of half the action range (range [-1, 1]: std 0.5, as D4RL)."""

FULL_TRANSITIONS = 1_000_000
QUICK_TRANSITIONS = 100_000

STREAM_STEPS = 1_000_000
"""The data env's time limit (as Minari's): one continuing run, cut only by goals and the budget."""

_PREFIX = "pointmaze"


def maze_env_id(maze: str, dense: bool) -> str:
    """PointMaze_<Maze>[Dense]-v3: sparse reward (1 at the goal) or dense (exp(-distance))."""
    return f"PointMaze_{MAZES[maze]}{'Dense' if dense else ''}-v3"


def pointmaze_dataset_id(maze: str, dense: bool, quick: bool) -> str:
    """tt/pointmaze/<maze>[-dense][-quick]-v0, as D4RL/pointmaze/<maze>[-dense]-v2."""
    return f"tt/{_PREFIX}/{maze}{'-dense' if dense else ''}{'-quick' if quick else ''}-v0"


def pointmaze_recipe_making(dataset_id: str) -> str | None:
    """The `--recipe` name that writes `dataset_id` (e.g. pointmaze-medium-quick), or None."""
    for maze in MAZES:
        for dense in (False, True):
            for quick in (False, True):
                if pointmaze_dataset_id(maze, dense, quick) == dataset_id:
                    return f"{_PREFIX}-{maze}{'-dense' if dense else ''}{'-quick' if quick else ''}"
    return None


def is_pointmaze_recipe(recipe: str) -> bool:
    text = recipe.strip().lower()
    return text == _PREFIX or text.startswith(f"{_PREFIX}-")


def parse_pointmaze_recipe(recipe: str) -> list[tuple[str, bool, bool]]:
    """`pointmaze-medium`, `pointmaze-medium-dense-quick`, `pointmaze[-dense][-quick]` (all three
    mazes) -> [(maze, dense, quick)]."""
    text = recipe.strip().lower()
    quick = text.endswith("-quick")
    text = text.removesuffix("-quick")
    dense = text.endswith("-dense")
    text = text.removesuffix("-dense")
    if text == _PREFIX:
        return [(maze, dense, quick) for maze in MAZES]
    maze = text.removeprefix(f"{_PREFIX}-")
    if text.startswith(f"{_PREFIX}-") and maze in MAZES:
        return [(maze, dense, quick)]
    raise TTError(
        f"unknown recipe {recipe!r}; use pointmaze-<maze>[-dense][-quick] with maze in "
        f"{list(MAZES)}, or pointmaze[-dense][-quick] for all three (`tt collect --recipe list`)"
    )


def describe_pointmaze_recipes() -> list[str]:
    """Lines for `tt collect --recipe list`."""
    return [
        "pointmaze-<maze>[-dense][-quick], maze in "
        f"{', '.join(MAZES)}: goal-conditioned PointMaze data as Minari's D4RL/pointmaze/* "
        f"(needs gymnasium-robotics), the maze controller with noise {NOISE}, "
        f"{FULL_TRANSITIONS:,} transitions (-quick {QUICK_TRANSITIONS:,}); datasets "
        "tt/pointmaze/<maze>[-dense][-quick]-v0; pointmaze[-dense][-quick]: all three mazes",
    ]


def eval_env_kwargs(maze: str, dense: bool) -> dict[str, Any]:
    """gym.make kwargs of the evaluation env: the registered map with one goal cell ("g")."""

    name = maze_env_id(maze, dense)
    spec = registered_env_spec(name)
    if spec is None:
        raise TTError(
            f"recipe pointmaze-{maze}: {name} is not registered; run `pip install "
            "gymnasium-robotics`"
        )
    layout = [list(row) for row in spec.kwargs["maze_map"]]
    row, col = EVAL_GOALS[maze]
    layout[row][col] = "g"
    return {"maze_map": layout, "continuing_task": True, "reset_target": False}


def collect_stream(
    env: gym.Env[Any, Any], policy: Policy, n_transitions: int, seed: int, progress: Any = None
) -> list[Any]:
    """One continuing run of exactly `n_transitions` steps cut into episodes at each goal reached.

    Each goal reached ends an episode as a truncation (no termination, as D4RL/pointmaze); the
    next one starts from the same ball state with the env's new goal. `progress` (a tqdm bar or
    None) is advanced once per step.
    """
    from minari.data_collector import EpisodeBuffer

    if n_transitions < 1:
        raise TTError(f"collect.recipe.transitions must be >= 1, got {n_transitions}")
    space = env.observation_space
    buffers: list[Any] = []
    obs, _ = env.reset(seed=seed)
    episode: dict[str, list[Any]] = {"obs": [obs], "act": [], "rew": [], "term": [], "trunc": []}
    episode_seed: int | None = seed
    for step in range(n_transitions):
        action = policy(stack(space, [obs]))[0]
        obs, reward, terminated, truncated, info = env.step(action)
        episode["obs"].append(obs)
        episode["act"].append(action)
        episode["rew"].append(float(reward))
        reached = bool(info.get("success", False))
        last = step == n_transitions - 1
        ends = reached or terminated or truncated or last
        episode["term"].append(bool(terminated))
        episode["trunc"].append(bool(ends and not terminated))
        if progress is not None:
            progress.update(1)
        if not ends:
            continue
        buffers.append(
            EpisodeBuffer(
                id=len(buffers),
                seed=episode_seed,
                observations=stack(space, episode["obs"]),  # (T+1, ...)
                actions=stack(env.action_space, episode["act"]),  # (T, 2)
                rewards=episode["rew"],
                terminations=episode["term"],
                truncations=episode["trunc"],
                infos={},
            )
        )
        if terminated or truncated:  # the env's own end (not within the default time limit)
            obs, _ = env.reset()
        else:  # the goal was reached: the env drew a new one, the ball goes on from here
            obs = {**obs, "desired_goal": np.array(env.unwrapped.goal, dtype=np.float64)}  # type: ignore[attr-defined]
        episode = {"obs": [obs], "act": [], "rew": [], "term": [], "trunc": []}
        episode_seed = None
    return buffers


def _write_one(maze: str, dense: bool, quick: bool, cfg: CollectConfig, progress: bool) -> str:
    from tqdm import tqdm

    dataset_id = pointmaze_dataset_id(maze, dense, quick)
    name = maze_env_id(maze, dense)
    size = cfg.recipe.transitions or (QUICK_TRANSITIONS if quick else FULL_TRANSITIONS)
    data_kwargs: dict[str, Any] = {
        "continuing_task": True,
        "reset_target": True,
        "max_episode_steps": STREAM_STEPS,
    }
    env = make_env(name, data_kwargs, key=f"recipe pointmaze-{maze}")
    policy = NoisyPolicy(maze_policy(env), env.action_space, NOISE, 0.0, cfg.seed)
    bar = tqdm(total=size, desc=f"collect {dataset_id}", unit="step", disable=not progress)
    t0 = time.perf_counter()
    try:
        buffers = collect_stream(env, policy, size, cfg.seed, bar)
    finally:
        bar.close()

    eval_kwargs = eval_env_kwargs(maze, dense)
    eval_env = make_env(name, eval_kwargs, key=f"recipe pointmaze-{maze}")
    n_ref, ref_seed = cfg.recipe.eval_episodes, cfg.seed + REF_SEED_OFFSET
    random_policy = RandomPolicy(eval_env.action_space, ref_seed)
    ref_min = rollout_returns(name, random_policy, n_ref, ref_seed, eval_kwargs)
    ref_max = rollout_returns(name, maze_policy(eval_env), n_ref, ref_seed, eval_kwargs)
    record = CollectConfig(
        env=name,
        policy="maze",
        episodes=len(buffers),
        noise=NOISE,
        seed=cfg.seed,
        env_kwargs=data_kwargs,
    )
    write_dataset(
        dataset_id,
        buffers,
        env,
        ref_min=ref_min,
        ref_max=ref_max,
        ref_note=(
            f"ref_min_score: random policy, ref_max_score: maze controller (no noise), over "
            f"{n_ref} episodes of the evaluation env"
        ),
        ref_episodes=n_ref,
        algorithm_name=f"tt-collect:maze(noise={NOISE})",
        description=(
            f"{size} steps of one continuing {name} run (new goal at each goal reached, episodes "
            f"cut there as truncations), maze controller with action noise {NOISE}, seed "
            f"{cfg.seed}; laid out as Minari's D4RL/pointmaze (written by trajectory_transformer "
            "tt collect --recipe)"
        ),
        overwrite=bool(cfg.overwrite),
        extra_metadata={COLLECT_RECORD_KEY: collect_record(record)},
        eval_env=eval_env,
    )
    env.close()
    eval_env.close()
    if progress:
        returns = [float(np.sum(b.rewards)) for b in buffers]
        print(
            f"wrote {dataset_id}: {len(buffers)} episodes, {size} steps, mean return "
            f"{np.mean(returns):.1f} (evaluation env: random {ref_min:.1f}, controller "
            f"{ref_max:.1f}) in {time.perf_counter() - t0:.1f}s"
        )
    return dataset_id


def run_pointmaze_recipe(recipe: str, cfg: CollectConfig, progress: bool = True) -> list[str]:
    """Make the recipe's datasets (kept if they exist, unless collect.overwrite); their ids."""
    plan = parse_pointmaze_recipe(recipe)
    check_recipe_config(cfg)
    check_writable_root()
    recover_interrupted(minari_root())
    done = []
    for maze, dense, quick in plan:
        dataset_id = pointmaze_dataset_id(maze, dense, quick)
        if not cfg.overwrite and dataset_exists(dataset_id):
            if progress:
                print(f"{dataset_id} exists; kept (collect.overwrite=true recollects it)")
        else:
            check_target(dataset_id, bool(cfg.overwrite))
            _write_one(maze, dense, quick, cfg, progress)
        done.append(dataset_id)
    return done
