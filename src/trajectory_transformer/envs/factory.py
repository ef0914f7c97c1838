"""Making the run's environment from data, and checking it fits the run's spaces.

A dataset or run folder names its env by a Gymnasium id or spec (JSON). Everything that can be
wrong with it (unknown id, spaces that differ from the run's) is found here, before the first env
step, and reported as a one-line TTError naming the env and the first difference.

A stored spec is data, not code: a Gymnasium spec names an `entry_point` (and wrappers'
entry points) that `gym.make` would import and call, so a crafted dataset.json could run anything.
By default only the spec's id, kwargs (JSON values) and max_episode_steps are used, and the env is
built from the spec registered under that id in this process (gymnasium-robotics is imported to
register its envs when the id is not found). A stored entry point that differs from the registered
one, an unregistered id, or additional wrappers are refused unless the user opts in with
`eval.trust_env_code` (`--trust-env-code`), which makes the env from the stored spec as it is.
The stored `vector_entry_point` is never used (the episode loop vectorizes plain envs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from ..data.spaces import flat_dim, space_from_json
from ..errors import TTError
from .make import check_env_kwargs, registered_env_spec, unregistered_hint
from .mujoco_log import quiet_mujoco_deprecations

if TYPE_CHECKING:
    from ..data.episodes import DatasetInfo

__all__ = ["check_env_spaces", "env_factory"]

_OPT_IN = (
    "pass --trust-env-code (tt train, tt eval, tt render, tt quickstart, tt bench; the key "
    "eval.trust_env_code=true) if you trust it"
)


def env_factory(
    info: DatasetInfo,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    *,
    trust_env_code: bool = False,
    source: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    spec: str = "eval",
) -> Callable[[], gym.Env[Any, Any]]:
    """A zero-argument env constructor for the run's env, checked once so a bad id fails here.

    Prefers the dataset's evaluation env spec (Minari's eval_env_spec), then its env spec (both
    JSON, so custom kwargs survive), then the bare env id. `source` names where `info` came from
    in error messages (e.g. RUN_DIR/dataset.json; default: the dataset). `max_episode_steps`
    overrides the stored one, and `env_kwargs` (eval.env_kwargs) the stored kwargs, key by key.
    With `trust_env_code` the stored spec is made as it is, entry points and wrappers included
    (code it names is imported and run). `spec="data"` (eval.env_spec) skips the evaluation spec:
    the env the data was collected in.
    """
    extra = dict(env_kwargs or {})
    where = source or f"dataset '{info.dataset}'"
    eval_spec = info.eval_env_spec if spec == "eval" else None
    field = "eval_env_spec" if eval_spec else "env_spec"
    text = eval_spec or info.env_spec
    if trust_env_code:
        return _trusted_factory(info, text, where, field, max_episode_steps, render_mode, extra)
    kwargs: dict[str, Any] = {}
    steps: int | None = None
    entry_point: str | None = None
    if text:
        env_id, entry_point, kwargs, steps = _stored_spec(text, where, field)
        id_field = f"{field}.id"
    elif info.env_id:
        env_id, id_field = info.env_id, "env_id"
    else:
        raise TTError(f"{where} names no environment; it cannot be evaluated")
    registered = _registered_spec(env_id, where, id_field, entry_point)
    expected = _entry_name(registered.entry_point)
    if entry_point is not None and entry_point != expected:
        raise TTError(
            f"{where}: {field}.entry_point is {json.dumps(entry_point)}, but '{env_id}' is "
            f"registered here with {json.dumps(expected)}; a stored entry point is code that "
            f"making the env would import and run, so it is refused: {_OPT_IN}"
        )
    check_env_kwargs(registered, extra, "eval.env_kwargs")
    kwargs = {**kwargs, **extra}
    kwargs.pop("render_mode", None)  # rendering is the caller's choice, not the dataset's
    if max_episode_steps is None:
        max_episode_steps = steps

    def make_env() -> gym.Env[Any, Any]:
        try:
            with quiet_mujoco_deprecations():
                return gym.make(
                    env_id, max_episode_steps=max_episode_steps, render_mode=render_mode, **kwargs
                )
        except Exception as err:  # the env's own constructor may raise anything for bad kwargs
            # gym.make appends "was raised from the environment creator for <id> with kwargs ..."
            text = str(err).split(" was raised from the environment creator", 1)[0]
            reason = text.splitlines()[0][:160] if text else ""
            with_kwargs = f" with kwargs {kwargs}" if kwargs else ""
            raise TTError(
                f"{where}: cannot make env '{env_id}'{with_kwargs} "
                f"({err.__class__.__name__}: {reason})"
            ) from err

    return make_env


def _stored_spec(
    text: str, where: str, field: str
) -> tuple[str, str | None, dict[str, Any], int | None]:
    """(id, entry_point, kwargs, max_episode_steps) of a stored spec, read as plain JSON.

    Additional wrappers are refused here: each names an entry point that gym.make would call.
    """
    try:
        raw = json.loads(text)
    except ValueError as err:
        raise TTError(f"{where}: {field} is not valid JSON ({err}); restore the file") from err
    if not isinstance(raw, dict):
        raise TTError(f"{where}: {field} is not a JSON object; restore the file")
    env_id = raw.get("id")
    if not isinstance(env_id, str) or not env_id:
        raise TTError(f"{where}: {field}.id must be a Gymnasium env id, got {env_id!r}")
    entry_point = raw.get("entry_point")
    if entry_point is not None and not isinstance(entry_point, str):
        raise TTError(f"{where}: {field}.entry_point must be a string, got {entry_point!r}")
    kwargs = raw.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise TTError(f"{where}: {field}.kwargs must be a JSON object, got {kwargs!r}")
    steps = raw.get("max_episode_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise TTError(f"{where}: {field}.max_episode_steps must be null or >= 1, got {steps!r}")
    wrappers = raw.get("additional_wrappers") or []
    if wrappers:
        names = [w.get("entry_point") if isinstance(w, dict) else w for w in wrappers]
        raise TTError(
            f"{where}: {field}.additional_wrappers names {json.dumps(names)}, code that making "
            f"the env would import and run; refused: {_OPT_IN}"
        )
    return env_id, entry_point, dict(kwargs), steps


def _entry_name(entry_point: Any) -> str | None:
    if entry_point is None or isinstance(entry_point, str):
        return entry_point
    return f"{entry_point.__module__}:{entry_point.__qualname__}"  # registered with a callable


def _registered_spec(
    env_id: str, where: str, field: str, stored_entry_point: str | None
) -> gym.envs.registration.EnvSpec:
    """The registered spec for a stored id; an unregistered or module-qualified id is refused."""

    if ":" in env_id:
        raise TTError(
            f"{where}: {field} is {json.dumps(env_id)}, which names a module that making the env "
            f"would import and run; refused: {_OPT_IN}"
        )
    spec = registered_env_spec(env_id, f"{where}: {field}")
    if spec is None:
        opt_in = (
            f"; or, to make it from the stored entry point {json.dumps(stored_entry_point)}, "
            f"{_OPT_IN}"
            if stored_entry_point
            else ""
        )
        raise TTError(
            f"{where}: {field} is {json.dumps(env_id)}, which is not a registered Gymnasium env "
            f"here; {unregistered_hint()}{opt_in}"
        )
    return spec


def _trusted_factory(
    info: DatasetInfo,
    text: str | None,
    where: str,
    field: str,
    max_episode_steps: int | None,
    render_mode: str | None,
    env_kwargs: dict[str, Any],
) -> Callable[[], gym.Env[Any, Any]]:
    """eval.trust_env_code: gym.make on the stored spec as it is (its entry points run)."""
    from gymnasium.envs.registration import EnvSpec

    target: str | EnvSpec
    if text:
        try:
            target = EnvSpec.from_json(text)
        except Exception as err:  # gymnasium raises plain errors for bad spec JSON
            raise TTError(f"{where}: unreadable {field} ({err})") from err
    elif info.env_id:
        target = info.env_id
    else:
        raise TTError(f"{where} names no environment; it cannot be evaluated")
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
            with quiet_mujoco_deprecations():
                return gym.make(
                    target,
                    max_episode_steps=max_episode_steps,
                    render_mode=render_mode,
                    **env_kwargs,
                )
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


def check_env_spaces(env: gym.Env[Any, Any], info: DatasetInfo, where: str = "the run") -> None:
    """TTError naming the run (`where`), the env and the first difference between their spaces."""

    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    for label, text, dim, got in (
        ("observation space", info.observation_space, info.observation_dim, env.observation_space),
        ("action space", info.action_space, info.action_dim, env.action_space),
    ):
        if text:
            diff = _space_diff(space_from_json(text), got, label)
            if diff:
                raise TTError(f"{where} does not fit env '{name}': {diff}")
        if dim and flat_dim(got) != dim:
            raise TTError(
                f"{where} does not fit env '{name}': {label} has {dim} flat dims in the run, "
                f"{flat_dim(got)} in the env"
            )
