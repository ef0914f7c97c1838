"""Making the run's environment from data, and checking it fits the run's spaces.

A dataset or run folder names its env by a Gymnasium id or spec (JSON). Everything that can be
wrong with it (unknown id, spaces that differ from the run's) is found here, before the first env
step, and reported as a one-line TTError naming the env and the first difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from ..errors import TTError

if TYPE_CHECKING:
    from ..data.episodes import DatasetInfo

__all__ = ["check_env_spaces", "env_factory"]


def env_factory(
    info: DatasetInfo,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
) -> Callable[[], gym.Env[Any, Any]]:
    """A zero-argument env constructor for the run's env, checked once so a bad id fails here.

    Prefers the dataset's evaluation env spec (Minari's eval_env_spec), then its env spec (both
    JSON, so custom kwargs survive), then the bare env id.
    """
    from gymnasium.envs.registration import EnvSpec

    target: str | EnvSpec
    text = info.eval_env_spec or info.env_spec
    if text:
        try:
            target = EnvSpec.from_json(text)
        except Exception as err:  # gymnasium raises plain errors for bad spec JSON
            raise TTError(f"dataset '{info.dataset}': unreadable env spec ({err})") from err
    elif info.env_id:
        target = info.env_id
    else:
        raise TTError(f"dataset '{info.dataset}' names no environment; it cannot be evaluated")
    name = target if isinstance(target, str) else target.id
    try:
        if isinstance(target, EnvSpec) and target.entry_point is None:
            gym.spec(target.id)
        elif isinstance(target, str):
            gym.spec(target)
    except gym.error.Error as err:
        raise TTError(f"env '{name}' does not exist in gymnasium here ({err})") from err

    def make_env() -> gym.Env[Any, Any]:
        try:
            return gym.make(target, max_episode_steps=max_episode_steps, render_mode=render_mode)
        except (gym.error.Error, ImportError, AttributeError) as err:
            raise TTError(f"cannot make env '{name}': {err.__class__.__name__}: {err}") from err

    return make_env


def _describe(space: gym.Space[Any]) -> str:
    shape = getattr(space, "shape", None)
    return f"{type(space).__name__}{tuple(shape) if shape is not None else ''}"


def _space_diff(want: gym.Space[Any], got: gym.Space[Any], where: str) -> str | None:
    """First structural difference (type, shape, size, keys, dtype kind); bounds are not compared."""
    if type(want) is not type(got):
        return f"{where}: run has {_describe(want)}, env has {_describe(got)}"
    if isinstance(want, gym.spaces.Dict) and isinstance(got, gym.spaces.Dict):
        if list(want.spaces) != list(got.spaces):
            return f"{where}: run has keys {list(want.spaces)}, env has {list(got.spaces)}"
        for key in want.spaces:
            diff = _space_diff(want.spaces[key], got.spaces[key], f"{where}[{key!r}]")
            if diff:
                return diff
        return None
    if isinstance(want, gym.spaces.Tuple) and isinstance(got, gym.spaces.Tuple):
        if len(want.spaces) != len(got.spaces):
            return f"{where}: run has {len(want.spaces)} parts, env has {len(got.spaces)}"
        for i, (a, b) in enumerate(zip(want.spaces, got.spaces)):
            diff = _space_diff(a, b, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if want.shape != got.shape:
        return f"{where}: run has {_describe(want)}, env has {_describe(got)}"
    if isinstance(want, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        size = ("n", "start") if isinstance(want, gym.spaces.Discrete) else ("nvec", "start")
        sizes = [[np.asarray(getattr(sp, k)).tolist() for k in size] for sp in (want, got)]
        if sizes[0] != sizes[1]:
            return f"{where}: run has {type(want).__name__}{sizes[0]}, env has {type(got).__name__}{sizes[1]}"
    return None


def check_env_spaces(env: gym.Env[Any, Any], info: DatasetInfo) -> None:
    """TTError naming the first difference between the run's spaces and the env's."""
    from ..data.spaces import flat_dim, space_from_json

    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    for label, text, dim, got in (
        ("observation space", info.observation_space, info.observation_dim, env.observation_space),
        ("action space", info.action_space, info.action_dim, env.action_space),
    ):
        if text:
            diff = _space_diff(space_from_json(text), got, label)
            if diff:
                raise TTError(f"the run does not fit env '{name}': {diff}")
        if dim and flat_dim(got) != dim:
            raise TTError(
                f"the run does not fit env '{name}': {label} has {dim} flat dims in the run, "
                f"{flat_dim(got)} in the env"
            )
