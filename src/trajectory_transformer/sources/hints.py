"""Which `tt collect` command makes a dataset id: the producers' side of the store's hint.

Registered with the store on import (the store cannot import its producers), so an error about a
missing dataset names the recipe, preset or `tt collect` settings that make it.
"""

from __future__ import annotations

import re

from .. import store
from ..config import list_presets, load_config
from .collect import default_dataset_id
from .pointmaze import MAZES, pointmaze_dataset_id, pointmaze_recipe_making
from .policies import SCRIPTED
from .recipe_catalog import LEVELS, RECIPE_ENVS, recipe_dataset_id, recipe_making

__all__ = ["collect_hint"]

_ENV_GUESS = {
    "pendulum": "Pendulum-v1",
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
    "invertedpendulum": "InvertedPendulum-v5",
}


def collect_hint(dataset_id: str) -> str:
    """A `tt collect` command that really writes `dataset_id`, or one with a policy to choose.

    A recipe's dataset (tt/hopper/medium-quick-v1) names its recipe; a shipped preset that
    collects this id wins next (its noise/epsilon/episodes matter: the quickstart's medium-noisy
    data is not `collect.policy=medium`); then an id that `tt collect` writes by default for an env
    and policy; otherwise a generic command with a placeholder policy.
    """
    recipe = recipe_making(dataset_id) or pointmaze_recipe_making(dataset_id)
    if recipe is not None:
        return f"tt collect --recipe {recipe}"

    for name in list_presets():
        try:
            preset = load_config(name)
        except Exception:  # a broken preset must not hide the error being reported
            continue
        if preset.collect.dataset_id == dataset_id:
            return f"tt collect --preset {name}"
    parts = dataset_id.split("/")
    env = next((_ENV_GUESS[p.lower()] for p in parts if p.lower() in _ENV_GUESS), None)
    if env is not None:
        for policy in ("random", "expert", "medium"):
            if policy != "random" and env not in SCRIPTED[policy]:
                continue
            if default_dataset_id(env, policy) == dataset_id:
                return f"tt collect collect.env={env} collect.policy={policy}"
    stand_in = _recipe_stand_in(dataset_id)
    if stand_in is not None:
        return stand_in
    if parts[0] != "tt" and env is not None:
        # a remote id (mujoco/..., D4RL/...): collect under our own namespace, never under the
        # official id, with the policies this env has
        local = "/".join(["tt", *parts[1:]]) if len(parts) > 2 else default_dataset_id(env, "x")
        policies = "|".join(
            ["random", *(p for p in ("expert", "medium") if env in SCRIPTED[p]), "sb3:ALGO:PATH"]
        )
        return (
            f"tt collect collect.env={env} collect.policy=<{policies}> "
            f"collect.dataset_id={local}, then data.dataset={local}"
        )
    return (
        f"tt collect collect.env={env or '<GymEnvId>'} "
        f"collect.policy=<random|expert|medium|sb3:ALGO:PATH> collect.dataset_id={dataset_id}"
    )


def _recipe_stand_in(dataset_id: str) -> str | None:
    """For a remote D4RL-style id (mujoco/hopper/medium-v0, D4RL/pointmaze/umaze-dense-v2): the
    recipe that makes our local counterpart at CPU size, and the id to train on instead."""
    parts = [p.lower() for p in dataset_id.split("/")]
    if parts[0] == "tt" or len(parts) < 2:
        return None
    level = re.sub(r"-v\d+$", "", parts[-1])
    for name in RECIPE_ENVS:
        if name in parts[:-1]:
            known = level if level in LEVELS else "medium"
            recipe = f"{name}-{known}-quick"
            local = recipe_dataset_id(name, known, quick=True)
            more = "" if known == level else " (`tt collect --recipe list` shows every level)"
            return f"tt collect --recipe {recipe}, then data.dataset={local}{more}"
    if "pointmaze" in parts[:-1]:
        dense = level.endswith("-dense")
        maze = level.removesuffix("-dense")
        maze = maze if maze in MAZES else "umaze"
        recipe = f"pointmaze-{maze}{'-dense' if dense else ''}-quick"
        return f"tt collect --recipe {recipe}, then data.dataset={pointmaze_dataset_id(maze, dense, True)}"
    return None


store.register_collect_hint(collect_hint)
