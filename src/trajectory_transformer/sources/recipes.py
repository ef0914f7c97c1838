"""`tt collect --recipe`: D4RL-style datasets (random, medium, expert, medium-replay, medium-expert)
for Hopper, HalfCheetah and Walker2d, made on a CPU, reproducibly and resumably.

The levels as D4RL defines them (Fu et al. 2020, sec. 5), with PPO in place of SAC (see behaviour.py):
- random: a uniformly random policy.
- expert: the PPO checkpoint with the best evaluated return (deterministic actions).
- medium: the checkpoint before it whose evaluated return is closest to a third of the expert's.
- medium-replay: everything the PPO run stepped through while training, up to the medium checkpoint.
- medium-expert: the medium and expert datasets concatenated (equal parts).
Medium and expert data are collected with the checkpoint's deterministic action plus Gaussian noise
(std `collect.recipe.medium_action_noise` = 0.1 of the half-range for medium,
`collect.recipe.expert_action_noise` = 0 for expert). D4RL sampled its SAC policies' actions
(its files keep their log-probabilities). The noise matters: on Hopper medium-quick from the
deterministic policy alone, every episode follows nearly one path and TT greedy scored 12.3 where
the data scores 33.4 (its small per-step errors compound where the data shows no way back), while
on the same checkpoint's data with noise 0.1 it scored 34.4 against the data's 28.2 (BENCHMARKS.md).
The PPO experts do not tolerate it: Hopper's returns 3,281 without noise, 2,880 with 0.02 and
1,780 with 0.1 (10 episodes each), so expert data keeps the deterministic action by default.
`collect.recipe.stochastic=true` samples PPO's own action distribution instead, but PPO's noise is
wider than a converged SAC's and moves the data off its level: measured with the default budgets,
HalfCheetah's medium checkpoint returns 423 deterministic and -56 sampled, Walker2d's expert 3,971
and 2,290, Hopper's expert 3,126 and 2,750 (benchmarks/results/datasets/).

Dataset versions: -v0 was the deterministic policy (no noise at any level, before 2026-11-30); the recipes
now write -v1 for every level, so data from the two never mix in one suite. A dataset that exists
is kept only if its recorded action setting is the one asked for (else a one-line error).

Every dataset stores ref_min_score = the random policy's mean return and ref_max_score = the expert
checkpoint's mean deterministic return (the same seeds for both), and says so in `ref_scores_from`;
D4RL's published references for these envs (evaluation/metrics.py) follow from the env id. The
choices and evaluated returns go to manifest.json in the policy folder (behaviour.policy_dir).

Everything is resumable and idempotent: training resumes from its last checkpoint, a dataset that
exists is kept (collect.overwrite=true recollects it), and a rerun with nothing missing does nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CollectConfig, RecipeConfig
from ..envs.make import make_env
from ..errors import ConfigError, TTError
from ..store import COLLECT_RECORD_KEY, dataset_problem, minari_root, recover_interrupted
from ..utils import atomic_write_json, lock_run_dir, read_json
from .behaviour import (
    Checkpoint,
    PPOSettings,
    one_thread,
    policy_dir,
    read_replay,
    replay_episodes,
    select_checkpoints,
    train_behaviour,
)
from .collect import (
    REF_SEED_OFFSET,
    check_target,
    collect_record,
    cut_episode,
    rollout_returns,
    run_transitions,
    write_dataset,
)
from .policies import NoisyPolicy, Policy, RandomPolicy, SB3Policy

__all__ = [
    "FULL_TRANSITIONS",
    "LEVELS",
    "QUICK_TRANSITIONS",
    "RECIPE_ENVS",
    "RecipeEnv",
    "check_recipe_config",
    "dataset_exists",
    "describe_recipes",
    "make_if_recipe",
    "parse_recipe",
    "recipe_dataset_id",
    "recipe_making",
    "recipe_to_make",
    "register_recipe_env",
    "run_recipe",
]

LEVELS = ("random", "medium", "expert", "medium-replay", "medium-expert")
"""D4RL's dataset kinds, in the order a recipe makes them (medium-expert needs medium and expert)."""

FULL_TRANSITIONS = 1_000_000
"""Transitions per random/medium/expert dataset, as D4RL (medium-expert has twice as many)."""

QUICK_TRANSITIONS = 100_000
"""The -quick size, for the CPU suite: a TT that fits this machine trains ~4 epochs over 100k
transitions in ~20 min (FACTS.md), and 100k still holds 100+ full-length expert episodes; 200k
would double every CPU training run for data the small models there cannot use."""

RECIPE_VERSION = 1
"""The -vN of every recipe dataset id (see the module docstring: v0 had no action noise)."""

_LEVEL_SEED = {"random": 0, "medium": 10_000_000, "expert": 20_000_000}
"""Episode seeds per level: collect.seed + this + episode index (disjoint up to 10M episodes)."""


@dataclass(frozen=True)
class RecipeEnv:
    """An env the recipes know: its Gymnasium id and the PPO budget that reaches an expert there."""

    env_id: str
    ppo_steps: int
    """Default collect.recipe.ppo_steps (measured here, see the comments in RECIPE_ENVS)."""
    note: str = ""
    settings: PPOSettings = field(default_factory=PPOSettings)


RECIPE_ENVS: dict[str, RecipeEnv] = {
    # Measured here with seed 0 (benchmarks/results/datasets/): deterministic return 2,898 at 252k
    # steps, 3,126 at 551k (D4RL's expert: 3,234); PPO's returns jump, so 600k leaves room.
    "hopper": RecipeEnv("Hopper-v5", 600_000, "PPO reaches D4RL's expert return, 3,126 here"),
    # PPO's outcome here hangs on the run: with checkpoints every 50k steps (2026-11-25) it reached
    # 3,971 at 1M (86% of D4RL's 4,592); with the default 10k (2026-12-01, datasets/walker2d-quick-
    # v1-2026-12-01.json) the same seed peaked at 1,279 at 561k and stayed ~850-1,000 to 1M, so
    # that run's medium is 437 (D4RL 9.5). Levels follow the run's own expert either way.
    "walker2d": RecipeEnv(
        "Walker2d-v5", 1_000_000, "PPO's expert: 3,971 in one run here, 1,279 in another"
    ),
    # 1,326 at 502k, ~1,400-1,600 from there to 1.5M: PPO with these settings plateaus far below
    # D4RL's SAC expert (12,135), even below its medium (~4,770); more steps did not help.
    "halfcheetah": RecipeEnv(
        "HalfCheetah-v5", 1_000_000, "PPO plateaus at ~1,500 here, far below D4RL's expert 12,135"
    ),
}
"""Recipe name prefix -> env. Other code (and tests) may add envs with `register_recipe_env`."""


def register_recipe_env(
    name: str, env_id: str, ppo_steps: int, settings: PPOSettings | None = None, note: str = ""
) -> None:
    """Make `tt collect --recipe <name>-<level>` work for another env with Box spaces."""
    if not name.replace("_", "").isalnum() or not name.islower():
        raise TTError(f"recipe env name {name!r}: use lowercase letters, digits and '_'")
    RECIPE_ENVS[name] = RecipeEnv(env_id, ppo_steps, note, settings or PPOSettings())


def recipe_dataset_id(name: str, level: str, quick: bool) -> str:
    """tt/<env>/<level>-v1, or tt/<env>/<level>-quick-v1."""
    return f"tt/{name}/{level}{'-quick' if quick else ''}-v{RECIPE_VERSION}"


def recipe_making(dataset_id: str) -> str | None:
    """The `--recipe` name that writes `dataset_id` (e.g. hopper-medium-quick), or None."""
    for name in RECIPE_ENVS:
        for level in LEVELS:
            for quick in (False, True):
                if recipe_dataset_id(name, level, quick) == dataset_id:
                    return f"{name}-{level}{'-quick' if quick else ''}"
    return None


def parse_recipe(recipe: str) -> list[tuple[str, tuple[str, ...], bool]]:
    """`hopper-medium`, `hopper-medium-quick`, `hopper` / `hopper-all` (every level), `all`
    (every env and level), each with an optional `-quick` -> [(env name, levels, quick)]."""
    text = recipe.strip().lower()
    quick = text.endswith("-quick")
    if quick:
        text = text[: -len("-quick")]
    if text == "all":
        return [(name, LEVELS, quick) for name in RECIPE_ENVS]
    for name in sorted(RECIPE_ENVS, key=len, reverse=True):
        if text == name or text == f"{name}-all":
            return [(name, LEVELS, quick)]
        if text.startswith(f"{name}-") and text[len(name) + 1 :] in LEVELS:
            return [(name, (text[len(name) + 1 :],), quick)]
    raise TTError(
        f"unknown recipe {recipe!r}; use <env>-<level>[-quick], <env>[-quick] or all[-quick] with "
        f"env in {sorted(RECIPE_ENVS)} and level in {list(LEVELS)} (`tt collect --recipe list`)"
    )


def describe_recipes() -> list[str]:
    """Lines for `tt collect --recipe list`."""
    lines = [
        f"levels: {', '.join(LEVELS)}; sizes: {FULL_TRANSITIONS:,} transitions, -quick "
        f"{QUICK_TRANSITIONS:,} (collect.recipe.transitions); datasets "
        f"tt/<env>/<level>[-quick]-v{RECIPE_VERSION}",
    ]
    for name, spec in RECIPE_ENVS.items():
        lines.append(
            f"{name}: {spec.env_id}, PPO {spec.ppo_steps:,} steps by default"
            + (f"; {spec.note}" if spec.note else "")
            + f"; e.g. --recipe {name}-medium-quick, {name}-quick, {name}"
        )
    lines.append("all, all-quick: every env and level")
    return lines


_NOT_FOR_RECIPES = (
    "env",
    "policy",
    "episodes",
    "noise",
    "epsilon",
    "dataset_id",
    "ref_episodes",
    "ref_min_score",
    "ref_max_score",
    "env_kwargs",
)


def check_recipe_config(cfg: CollectConfig) -> None:
    """Refuse collect.* keys that a recipe decides itself (instead of silently ignoring them)."""
    default = CollectConfig()
    changed = [k for k in _NOT_FOR_RECIPES if getattr(cfg, k) != getattr(default, k)]
    if changed:
        raise ConfigError(
            f"collect.{changed[0]} does not apply with --recipe (a recipe picks the env, policies, "
            "sizes and references); use collect.seed, collect.overwrite and collect.recipe.*"
        )


# ----------------------------------------------------------------------------------- the recipe


@dataclass
class _Context:
    name: str
    spec: RecipeEnv
    quick: bool
    cfg: CollectConfig
    folder: Path
    say: Callable[[str], None]
    expert: Checkpoint | None = None
    medium: Checkpoint | None = None
    ref_min: float = 0.0
    ref_note: str = ""

    @property
    def rc(self) -> RecipeConfig:
        return self.cfg.recipe

    @property
    def size(self) -> int:
        return self.rc.transitions or (QUICK_TRANSITIONS if self.quick else FULL_TRANSITIONS)

    @property
    def eval_seed(self) -> int:
        return self.rc.ppo_seed + REF_SEED_OFFSET

    def dataset_id(self, level: str) -> str:
        return recipe_dataset_id(self.name, level, self.quick)


def dataset_exists(dataset_id: str) -> bool:
    """Whether the dataset is there and whole (a corrupt one is a TTError naming the fix)."""
    folder = minari_root() / dataset_id
    if not (folder / "data").is_dir():
        return False
    problem = dataset_problem(folder)
    if problem is not None:
        raise TTError(
            f"Minari dataset '{dataset_id}' is incomplete or corrupt ({problem}); pass "
            "collect.overwrite=true to make it again"
        )
    return True


def _manifest_path(folder: Path) -> Path:
    return folder / "manifest.json"


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = _manifest_path(folder)
    return read_json(path, "recipe manifest") if path.exists() else {}


def _update_manifest(folder: Path, **patch: Any) -> None:
    manifest = _read_manifest(folder)
    datasets = {**manifest.get("datasets", {}), **patch.pop("datasets", {})}
    atomic_write_json(_manifest_path(folder), {**manifest, **patch, "datasets": datasets})


def _checkpoint_record(ckpt: Checkpoint, folder: Path) -> dict[str, Any]:
    return {
        "steps": ckpt.steps,
        "eval_return": ckpt.eval_return,
        "eval_std": ckpt.eval_std,
        "eval_episodes": ckpt.eval_episodes,
        "path": str(ckpt.path.relative_to(folder)),
        "wall_s": ckpt.wall_s,
    }


def _prepare_policy(ctx: _Context) -> None:
    """Train or resume PPO, choose the expert and medium checkpoints, measure the random return."""
    total = ctx.rc.ppo_steps or ctx.spec.ppo_steps
    t0 = time.perf_counter()
    ckpts = train_behaviour(
        ctx.spec.env_id,
        ctx.folder,
        total_steps=total,
        checkpoint_every=ctx.rc.ppo_checkpoint_every,
        seed=ctx.rc.ppo_seed,
        eval_episodes=ctx.rc.eval_episodes,
        settings=ctx.spec.settings,
        log=ctx.say,
    )
    # Only the checkpoints of this budget (a run trained further before keeps its later ones).
    last = next((k for k, c in enumerate(ckpts) if c.steps >= total), len(ckpts) - 1)
    ckpts = ckpts[: last + 1]
    if any(c.eval_episodes != ctx.rc.eval_episodes for c in ckpts):
        ctx.say(
            f"note: some checkpoints of {ctx.folder} were evaluated over other episode counts "
            f"than collect.recipe.eval_episodes={ctx.rc.eval_episodes}"
        )
    ctx.expert, ctx.medium = select_checkpoints(ckpts)
    ctx.say(
        f"{ctx.name}: PPO {ckpts[-1].steps:,} steps ({time.perf_counter() - t0:.0f} s this time); "
        f"expert = step {ctx.expert.steps:,} (return {ctx.expert.eval_return:.1f}), medium = step "
        f"{ctx.medium.steps:,} (return {ctx.medium.eval_return:.1f}, target "
        f"{ctx.expert.eval_return / 3:.1f} = a third of the expert's)"
    )

    target = ctx.expert.eval_return / 3
    if abs(ctx.medium.eval_return - target) > 0.25 * abs(target):
        ctx.say(
            f"warning: no checkpoint before the expert's returned near a third of it (closest: "
            f"{ctx.medium.eval_return:.1f} vs {target:.1f}); the medium data is off its level. "
            "Lower collect.recipe.ppo_checkpoint_every (a new collect.recipe.ppo_seed trains anew)"
        )
    manifest = _read_manifest(ctx.folder)
    random_info = manifest.get("random", {})
    if (
        random_info.get("episodes") == ctx.rc.eval_episodes
        and random_info.get("seed") == ctx.eval_seed
    ):
        ctx.ref_min = float(random_info["eval_return"])
    else:
        env = make_env(ctx.spec.env_id)
        random_policy = RandomPolicy(env.action_space, ctx.eval_seed)
        env.close()
        ctx.ref_min = rollout_returns(
            ctx.spec.env_id, random_policy, ctx.rc.eval_episodes, ctx.eval_seed
        )
    ctx.ref_note = (
        f"ref_min_score: uniform random policy, mean return over {ctx.rc.eval_episodes} episodes "
        f"(seeds {ctx.eval_seed}..); ref_max_score: the expert policy, PPO seed {ctx.rc.ppo_seed} "
        f"checkpoint at step {ctx.expert.steps} ({ctx.expert.path.relative_to(minari_root())}), "
        f"deterministic actions, mean return over {ctx.expert.eval_episodes} episodes (same seeds)"
    )
    _update_manifest(
        ctx.folder,
        env_id=ctx.spec.env_id,
        algorithm="PPO (stable-baselines3)",
        ppo={
            "seed": ctx.rc.ppo_seed,
            "total_steps": total,
            "checkpoint_every": ctx.rc.ppo_checkpoint_every,
            "settings": ctx.spec.settings.to_dict(),
        },
        curve=[_checkpoint_record(c, ctx.folder) for c in ckpts],
        expert=_checkpoint_record(ctx.expert, ctx.folder) | {"rule": "best evaluated return"},
        medium=_checkpoint_record(ctx.medium, ctx.folder)
        | {
            "rule": "before the expert, return closest to a third of the expert's",
            "target": ctx.expert.eval_return / 3,
        },
        random={
            "eval_return": ctx.ref_min,
            "episodes": ctx.rc.eval_episodes,
            "seed": ctx.eval_seed,
        },
        references={
            "ref_min_score": ctx.ref_min,
            "ref_max_score": ctx.expert.eval_return,
            "ref_scores_from": ctx.ref_note,
        },
    )


@contextlib.contextmanager
def _seeded_torch(seed: int) -> Iterator[None]:
    """Sampled SB3 actions draw from torch's global generator: seed it without disturbing it."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield


def _behaviour_record(ctx: _Context, level: str) -> dict[str, str]:
    """The `tt_collect` record that `tt eval --agent behaviour` rebuilds a level's policy from.

    Empty for the levels that have no one policy (medium-replay: a policy changing as it trained;
    medium-expert: two policies) and for sampled actions (`sb3:` policies rebuild deterministic).
    The checkpoint path is absolute: it lies under this machine's Minari root, next to the data.
    With action noise the record is the noisy policy with the data's seed, so it rebuilds the
    data's first episode action for action (tests/test_recipes.py).
    """
    if level not in ("random", "medium", "expert") or (level != "random" and ctx.rc.stochastic):
        return {}
    assert ctx.expert is not None and ctx.medium is not None
    ckpt = ctx.expert if level == "expert" else ctx.medium
    policy = "random" if level == "random" else f"sb3:PPO:{ckpt.path.resolve()}"
    noise = ctx.rc.action_noise(level)
    cfg = dataclasses.replace(
        ctx.cfg, env=ctx.spec.env_id, policy=policy, noise=noise, epsilon=0.0,
        seed=ctx.cfg.seed + _LEVEL_SEED[level],
    )  # fmt: skip
    return {COLLECT_RECORD_KEY: collect_record(cfg)}


def _actions_label(rc: RecipeConfig, level: str) -> str:
    """How a medium/expert dataset's actions were made, as its metadata says it (`actions`)."""
    noise = rc.action_noise(level)
    if rc.stochastic:
        return "sampled"
    return f"deterministic + N(0, {noise:g}) noise" if noise else "deterministic"


def _kept_mismatch(ctx: _Context, dataset_id: str) -> str | None:
    """Why an existing medium/expert(-based) dataset may not be kept under this config, or None.

    A rerun with other action settings would otherwise keep the old data under the same id and
    mix two kinds of data in one suite (medium-expert is built from the two files on disk).
    """
    meta = read_json(minari_root() / dataset_id / "data" / "metadata.json", "Minari metadata")
    source = meta.get("tt_recipe", {})
    if source.get("level") not in ("medium", "expert"):
        return None
    want = _actions_label(ctx.rc, source["level"])
    got = source.get("actions")
    if got == want:
        return None
    return (
        f"{dataset_id} exists with actions {got!r}, but this config asks for {want!r} "
        f"(collect.recipe.{source['level']}_action_noise / collect.recipe.stochastic); pass "
        "collect.overwrite=true "
        "to recollect it, or the settings it was made with"
    )


def _level_buffers(ctx: _Context, level: str) -> tuple[list[Any], dict[str, Any], str]:
    """(episodes, tt_recipe metadata, algorithm name) of one level."""
    assert ctx.expert is not None and ctx.medium is not None
    env_id = ctx.spec.env_id
    if level in ("random", "medium", "expert"):
        seed = ctx.cfg.seed + _LEVEL_SEED[level]
        policy: Policy
        if level == "random":
            env = make_env(env_id)
            policy = RandomPolicy(env.action_space, seed)
            env.close()
            source: dict[str, Any] = {"policy": "uniform random"}
            algorithm = "random"
        else:
            ckpt = ctx.expert if level == "expert" else ctx.medium
            policy = SB3Policy("PPO", str(ckpt.path), deterministic=not ctx.rc.stochastic)
            noise = ctx.rc.action_noise(level)
            if noise > 0:
                env = make_env(env_id)
                policy = NoisyPolicy(policy, env.action_space, noise, 0.0, seed)
                env.close()
            actions = _actions_label(ctx.rc, level)
            source = {
                "policy": "PPO (stable-baselines3)",
                "ppo_seed": ctx.rc.ppo_seed,
                "checkpoint_steps": ckpt.steps,
                "checkpoint": str(ckpt.path.relative_to(minari_root())),
                "checkpoint_eval_return": ckpt.eval_return,
                "actions": actions,
                "action_noise": noise,
            }
            algorithm = f"PPO step {ckpt.steps}, {actions} actions"
        with _seeded_torch(seed), one_thread():
            buffers = run_transitions(env_id, policy, ctx.size, seed)
        return buffers, source | {"episode_seeds_from": seed}, algorithm
    if level == "medium-replay":
        episodes = replay_episodes(read_replay(ctx.folder, ctx.medium.steps))
        recorded = sum(len(b.rewards) for b in episodes)
        kept = _subsample(episodes, ctx.size, ctx.cfg.seed)
        source = {
            "policy": "PPO (stable-baselines3) training data",
            "ppo_seed": ctx.rc.ppo_seed,
            "replay_steps": ctx.medium.steps,
            "recorded_transitions": recorded,
            "recorded_episodes": len(episodes),
            "subsampled": len(kept) < len(episodes),
        }
        return kept, source, f"PPO training data, steps 0..{ctx.medium.steps}"
    # medium-expert: the two datasets as written, medium first (D4RL: equal parts)
    parts = [ctx.dataset_id("medium"), ctx.dataset_id("expert")]
    buffers = [b for part in parts for b in _read_buffers(part)]
    buffers = [dataclasses.replace(b, id=k) for k, b in enumerate(buffers)]
    return buffers, {"parts": parts}, "medium + expert"


def _subsample(episodes: list[Any], size: int, seed: int) -> list[Any]:
    """At most `size` transitions of whole episodes, drawn in a seeded random order, in time order.

    Every episode is equally likely to be kept whatever its length, so the kept data has (in
    expectation) the recording's mix of early short and late long episodes.
    """
    total = sum(len(b.rewards) for b in episodes)
    if total <= size:
        return episodes
    order = np.random.default_rng(seed).permutation(len(episodes))
    kept, steps = [], 0
    for index in order:
        length = len(episodes[index].rewards)
        if steps + length > size:
            break
        kept.append(int(index))
        steps += length
    if not kept:  # the first drawn episode alone is too long: keep its start
        return [dataclasses.replace(cut_episode(episodes[order[0]], size), id=0)]
    return [dataclasses.replace(episodes[i], id=k) for k, i in enumerate(sorted(kept))]


def _read_buffers(dataset_id: str) -> list[Any]:
    import minari
    from minari.data_collector import EpisodeBuffer

    dataset = minari.load_dataset(dataset_id)
    return [
        EpisodeBuffer(
            id=ep.id,
            observations=ep.observations,
            actions=ep.actions,
            rewards=list(ep.rewards),
            terminations=list(ep.terminations),
            truncations=list(ep.truncations),
            infos={},
        )
        for ep in dataset.iterate_episodes()
    ]


def _write_level(ctx: _Context, level: str) -> None:
    assert ctx.expert is not None
    dataset_id = ctx.dataset_id(level)
    check_target(dataset_id, bool(ctx.cfg.overwrite))
    t0 = time.perf_counter()
    buffers, source, algorithm = _level_buffers(ctx, level)
    steps = sum(len(b.rewards) for b in buffers)
    returns = np.array([float(np.sum(b.rewards)) for b in buffers])
    env = make_env(ctx.spec.env_id)
    recipe = f"{ctx.name}-{level}{'-quick' if ctx.quick else ''}"
    try:
        write_dataset(
            dataset_id,
            buffers,
            env,
            ref_min=ctx.ref_min,
            ref_max=ctx.expert.eval_return,
            ref_note=ctx.ref_note,
            ref_episodes=ctx.rc.eval_episodes,
            algorithm_name=f"tt-recipe:{recipe} ({algorithm})",
            description=(
                f"D4RL-style {level} data for {ctx.spec.env_id}: {len(buffers)} episodes, {steps} "
                f"transitions (tt collect --recipe {recipe}; the levels are defined in "
                "trajectory_transformer/sources/recipes.py)"
            ),
            overwrite=bool(ctx.cfg.overwrite),
            extra_metadata={
                "tt_recipe": {
                    "recipe": recipe,
                    "level": level,
                    "policy_dir": str(ctx.folder.relative_to(minari_root())),
                    "expert_steps": ctx.expert.steps,
                    **source,
                },
                **_behaviour_record(ctx, level),
            },
        )
    finally:
        env.close()
    wall = time.perf_counter() - t0
    span = ctx.expert.eval_return - ctx.ref_min
    entry = {
        "level": level,
        "transitions": steps,
        "episodes": len(buffers),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "normalized_mean_return": 100 * (float(returns.mean()) - ctx.ref_min) / span,
        "wall_s": round(wall, 2),
        "source": source,
    }
    _update_manifest(ctx.folder, datasets={dataset_id: entry})
    ctx.say(
        f"wrote {dataset_id}: {len(buffers)} episodes, {steps:,} transitions, mean return "
        f"{returns.mean():.1f} ({entry['normalized_mean_return']:.1f} on the random=0/expert=100 "
        f"scale) in {wall:.0f} s"
    )


def _one(
    name: str, levels: tuple[str, ...], quick: bool, cfg: CollectConfig, progress: bool
) -> dict[str, Any]:
    spec = RECIPE_ENVS[name]
    say: Callable[[str], None] = (
        (lambda msg: print(msg, flush=True)) if progress else (lambda _msg: None)
    )
    folder = policy_dir(spec.env_id, cfg.recipe.ppo_seed)
    ctx = _Context(name, spec, quick, cfg, folder, say)
    wanted = [lv for lv in LEVELS if lv in levels]
    if "medium-expert" in wanted:  # built from these two
        wanted = sorted({*wanted, "medium", "expert"}, key=LEVELS.index)
    todo = [lv for lv in wanted if cfg.overwrite or not dataset_exists(ctx.dataset_id(lv))]
    existing = [ctx.dataset_id(lv) for lv in wanted if lv not in todo]
    for dataset_id in existing:
        problem = _kept_mismatch(ctx, dataset_id)
        if problem is not None:
            raise TTError(problem)
    for dataset_id in existing:
        say(f"exists: {dataset_id}")
    if not todo:
        manifest = _read_manifest(folder)
        trained = manifest.get("ppo", {}).get("total_steps")
        asked = cfg.recipe.ppo_steps
        if asked is not None and trained is not None and asked != trained:
            say(
                f"note: these datasets came from a policy trained for {trained:,} steps; "
                f"collect.recipe.ppo_steps={asked:,} applies only with collect.overwrite=true"
            )
        say(f"{name}: nothing to do (manifest: {_manifest_path(folder)})")
        return {"written": [], "existing": existing, "manifest": str(_manifest_path(folder))}
    # One writer per policy folder (a second `tt collect --recipe` for this env and seed is refused
    # while this one trains or collects); what is missing is decided again under the lock.
    with lock_run_dir(folder, f"tt collect --recipe {name}"):
        todo = [lv for lv in todo if cfg.overwrite or not dataset_exists(ctx.dataset_id(lv))]
        if todo:
            _prepare_policy(ctx)
        written = []
        for level in todo:
            _write_level(ctx, level)
            written.append(ctx.dataset_id(level))
    say(f"{name}: manifest {_manifest_path(folder)}")
    return {"written": written, "existing": existing, "manifest": str(_manifest_path(folder))}


def recipe_to_make(dataset_id: str) -> str | None:
    """The recipe that would make `dataset_id` if it is a recipe's and missing here, else None."""
    recipe = recipe_making(dataset_id)
    return None if recipe is None or dataset_exists(dataset_id) else recipe


def make_if_recipe(
    dataset_id: str, cfg: CollectConfig, say: Callable[[str], None] = print
) -> str | None:
    """Make `dataset_id` with its recipe if it is a recipe's and missing here; the recipe's name if
    it was made, else None (a Minari id or a path is left to the loader, which downloads or names
    the fix). Lets `tt bench quality` reproduce a suite from a fresh clone in one command."""
    recipe = recipe_to_make(dataset_id)
    if recipe is None:
        return None
    say(f"{dataset_id} is missing: making it with `tt collect --recipe {recipe}` first")
    run_recipe(recipe, cfg)
    return recipe


def run_recipe(recipe: str, cfg: CollectConfig, progress: bool = True) -> list[dict[str, Any]]:
    """Make whatever the recipe's datasets still lack; one summary dict per env.

    Each summary lists the dataset ids `written` and `existing`, and the `manifest` path.
    """
    check_recipe_config(cfg)
    plan = parse_recipe(recipe)
    recover_interrupted(minari_root())
    results = []
    for name, levels, quick in plan:
        results.append(_one(name, levels, quick, cfg, progress))
    if progress:
        sys.stdout.flush()
    return results
