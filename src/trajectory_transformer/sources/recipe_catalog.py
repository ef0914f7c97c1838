"""The recipes as data: D4RL's levels, the envs a recipe knows, dataset ids and recipe names.

Which recipe makes which dataset id (the store's collect hints read it) and the checks on
`collect.recipe.*`; recipes.py makes the datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import CollectConfig
from ..errors import ConfigError, TTError
from .behaviour import (
    PPOSettings,
)

__all__ = [
    "FULL_TRANSITIONS",
    "LEVELS",
    "QUICK_TRANSITIONS",
    "RECIPE_ENVS",
    "RecipeEnv",
    "check_recipe_config",
    "describe_recipes",
    "parse_recipe",
    "recipe_dataset_id",
    "recipe_making",
    "register_recipe_env",
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
