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

import sys
from collections.abc import Callable
from typing import Any

from ..config import CollectConfig
from ..errors import TTError
from ..store import check_writable_root, minari_root, recover_interrupted
from ..utils import lock_run_dir
from .behaviour import (
    policy_dir,
)
from .recipe_catalog import LEVELS, RECIPE_ENVS, check_recipe_config, parse_recipe, recipe_making
from .recipe_levels import (
    RecipeContext,
    dataset_exists,
    kept_mismatch,
    manifest_path,
    prepare_policy,
    read_manifest,
    write_level,
)

__all__ = ["make_if_recipe", "recipe_to_make", "run_recipe"]


def _one(
    name: str, levels: tuple[str, ...], quick: bool, cfg: CollectConfig, progress: bool
) -> dict[str, Any]:
    spec = RECIPE_ENVS[name]
    say: Callable[[str], None] = (
        (lambda msg: print(msg, flush=True)) if progress else (lambda _msg: None)
    )
    folder = policy_dir(spec.env_id, cfg.recipe.ppo_seed)
    ctx = RecipeContext(name, spec, quick, cfg, folder, say)
    wanted = [lv for lv in LEVELS if lv in levels]
    if "medium-expert" in wanted:  # built from these two
        wanted = sorted({*wanted, "medium", "expert"}, key=LEVELS.index)
    todo = [lv for lv in wanted if cfg.overwrite or not dataset_exists(ctx.dataset_id(lv))]
    existing = [ctx.dataset_id(lv) for lv in wanted if lv not in todo]
    for dataset_id in existing:
        problem = kept_mismatch(ctx, dataset_id)
        if problem is not None:
            raise TTError(problem)
    for dataset_id in existing:
        say(f"exists: {dataset_id}")
    if not todo:
        manifest = read_manifest(folder)
        trained = manifest.get("ppo", {}).get("total_steps")
        asked = cfg.recipe.ppo_steps
        if asked is not None and trained is not None and asked != trained:
            say(
                f"note: these datasets came from a policy trained for {trained:,} steps; "
                f"collect.recipe.ppo_steps={asked:,} applies only with collect.overwrite=true"
            )
        say(f"{name}: nothing to do (manifest: {manifest_path(folder)})")
        return {"written": [], "existing": existing, "manifest": str(manifest_path(folder))}
    # One writer per policy folder (a second `tt collect --recipe` for this env and seed is refused
    # while this one trains or collects); what is missing is decided again under the lock.
    with lock_run_dir(folder, f"tt collect --recipe {name}"):
        todo = [lv for lv in todo if cfg.overwrite or not dataset_exists(ctx.dataset_id(lv))]
        if todo:
            prepare_policy(ctx)
        written = []
        for level in todo:
            write_level(ctx, level)
            written.append(ctx.dataset_id(level))
    say(f"{name}: manifest {manifest_path(folder)}")
    return {"written": written, "existing": existing, "manifest": str(manifest_path(folder))}


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
    check_writable_root()
    recover_interrupted(minari_root())
    results = []
    for name, levels, quick in plan:
        results.append(_one(name, levels, quick, cfg, progress))
    if progress:
        sys.stdout.flush()
    return results
