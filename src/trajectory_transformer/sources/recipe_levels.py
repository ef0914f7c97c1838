"""Making one env's recipe datasets: the PPO behaviour policy (trained or resumed), the manifest,
and each level's episodes, collected or replayed and written to the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import CollectConfig, RecipeConfig
from ..envs.make import make_env
from ..errors import TTError
from ..store import COLLECT_RECORD_KEY, dataset_problem, minari_root
from ..utils import atomic_write_json, read_json
from .behaviour import (
    Checkpoint,
    one_thread,
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
from .recipe_catalog import (
    _LEVEL_SEED,
    FULL_TRANSITIONS,
    QUICK_TRANSITIONS,
    RecipeEnv,
    recipe_dataset_id,
)

__all__ = [
    "dataset_exists",
]


# ----------------------------------------------------------------------------------- the recipe


@dataclass
class RecipeContext:
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


def manifest_path(folder: Path) -> Path:
    return folder / "manifest.json"


def read_manifest(folder: Path) -> dict[str, Any]:
    path = manifest_path(folder)
    return read_json(path, "recipe manifest") if path.exists() else {}


def _update_manifest(folder: Path, **patch: Any) -> None:
    manifest = read_manifest(folder)
    datasets = {**manifest.get("datasets", {}), **patch.pop("datasets", {})}
    atomic_write_json(manifest_path(folder), {**manifest, **patch, "datasets": datasets})


def _checkpoint_record(ckpt: Checkpoint, folder: Path) -> dict[str, Any]:
    return {
        "steps": ckpt.steps,
        "eval_return": ckpt.eval_return,
        "eval_std": ckpt.eval_std,
        "eval_episodes": ckpt.eval_episodes,
        "path": str(ckpt.path.relative_to(folder)),
        "wall_s": ckpt.wall_s,
    }


def prepare_policy(ctx: RecipeContext) -> None:
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
    manifest = read_manifest(ctx.folder)
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


def _behaviour_record(ctx: RecipeContext, level: str) -> dict[str, str]:
    """The `tt_collect` record that `tt eval --agent behaviour` rebuilds a level's policy from.

    Empty for the levels that have no one policy (medium-replay: a policy changing as it trained;
    medium-expert: two policies) and for sampled actions (`sb3:` policies rebuild deterministic).
    The checkpoint path is absolute: it lies under this machine's Minari root, next to the data.
    With action noise the record is the noisy policy with the data's seed, so it rebuilds the
    data's first episode action for action (tests/sources/test_recipes.py).
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


def kept_mismatch(ctx: RecipeContext, dataset_id: str) -> str | None:
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


def _level_buffers(ctx: RecipeContext, level: str) -> tuple[list[Any], dict[str, Any], str]:
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


def write_level(ctx: RecipeContext, level: str) -> None:
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
