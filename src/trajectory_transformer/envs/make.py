"""Making envs by id: the Gymnasium registry (gymnasium-robotics registered on demand) and gym.make
with one-line errors. Used by collection (sources/) and by the env factory (factory.py)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import sys
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from ..errors import TTError
from .mujoco_log import quiet_mujoco_deprecations

__all__ = ["check_env_kwargs", "make_env", "registered_env_spec", "unregistered_hint"]

_ROBOTICS = "gymnasium_robotics"


def registered_env_spec(
    env_id: str, key: str = "collect.env"
) -> gym.envs.registration.EnvSpec | None:
    """The spec this process's Gymnasium registry holds for `env_id` (None: not registered).

    gymnasium-robotics registers its envs (PointMaze_UMaze-v3, AntMaze_*, Fetch*, ...) only when
    imported; we import it only when the id is not registered yet, so `collect.env=PointMaze_UMaze-v3`
    works without the `gymnasium_robotics:` prefix and without importing it for other envs. Only
    plain ids are looked up: a `module:Env-vN` id is not imported here. An installed but broken
    gymnasium-robotics is a TTError (`key` names the setting), not "unregistered".
    """
    spec = gym.registry.get(env_id)
    if spec is not None or ":" in env_id:
        return spec
    try:
        module = _import_robotics()
    except ImportError as err:
        if isinstance(err, ModuleNotFoundError) and err.name == _ROBOTICS:
            return None
        raise TTError(
            f"{key}={env_id}: not registered, and gymnasium-robotics, which may register "
            f"it, is installed but cannot be imported ({err.__class__.__name__}: {err}); "
            "reinstall it with `pip install gymnasium-robotics`"
        ) from None
    gym.register_envs(module)
    return gym.registry.get(env_id)


_ROBOTICS_NOTICE = "AdroitHandRelocateDense-v1, AdroitHandHammerDense-v1"
"""The start of the notice gymnasium-robotics 1.2.1-1.4.2 prints to stderr on every import (its
Adroit rewards changed without a version bump): about envs we never make, so not shown."""


def _import_robotics() -> Any:
    """Import gymnasium-robotics without its Adroit notice; anything else it prints still shows."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return importlib.import_module(_ROBOTICS)
    finally:
        kept = [
            line
            for line in captured.getvalue().splitlines()
            if not line.startswith(_ROBOTICS_NOTICE)
        ]
        if kept:
            print("\n".join(kept), file=sys.stderr)


def _kind(value: Any) -> str | None:
    """The kind of a YAML scalar for matching against a constructor default (None: any)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return None


def check_env_kwargs(
    spec: gym.envs.registration.EnvSpec, kwargs: Mapping[str, Any], key: str
) -> None:
    """Keyword arguments for a registered env, checked against its constructor before any env
    is made: a name it does not take, or a value of another kind than the parameter's default
    (`g: abc` where Pendulum's default is 10.0), is one TTError naming `key`.<name>.

    Only the registered constructor's signature is read (its module is the one the registry
    imports anyway); parameters without a default, or with None, accept anything.
    """
    if not kwargs or (
        not isinstance(spec.entry_point, str | type) and not callable(spec.entry_point)
    ):
        return
    import inspect

    try:
        creator = gym.envs.registration.load_env_creator(spec.entry_point)  # type: ignore[arg-type]
        target = creator.__init__ if inspect.isclass(creator) else creator
        params = inspect.signature(target).parameters
    except Exception:  # an entry point we cannot inspect is left to gym.make
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    generic = {"max_episode_steps", "render_mode", "disable_env_checker", "autoreset"}
    for name, value in kwargs.items():
        param = params.get(name)
        if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            if takes_any or name in generic:
                continue
            names = [p for p, v in params.items() if p != "self" and v.kind is not v.VAR_KEYWORD]
            raise TTError(
                f"{key}.{name}: {spec.id} takes no keyword '{name}' (it takes {', '.join(names)})"
            )
        default = param.default
        want = None if default is inspect.Parameter.empty or default is None else _kind(default)
        got = _kind(value)
        if want is not None and got is not None and value is not None and got != want:
            raise TTError(
                f"{key}.{name}: {spec.id} expects {want} (its default is {default!r}), "
                f"got {value!r}"
            )


def unregistered_hint() -> str:
    """What to do about an id the registry lacks (install gymnasium-robotics if it is missing)."""
    if importlib.util.find_spec(_ROBOTICS) is None:
        return (
            "if it comes from gymnasium-robotics (PointMaze, AntMaze, Fetch, Adroit, ...), run "
            "`pip install gymnasium-robotics`, else check the id"
        )
    return "check the id"


def make_env(
    env_id: str, env_kwargs: Mapping[str, Any] | None = None, key: str = "collect.env"
) -> gym.Env[Any, Any]:
    """gym.make with a one-line TTError; registers gymnasium-robotics envs on demand.

    See `registered_env_spec`. Here `env_id` is the user's own setting (collect.env), so an
    explicit `module:Env-vN` id is passed to gym.make, which imports that module.
    """
    kwargs = dict(env_kwargs or {})
    with_kwargs = f" with collect.env_kwargs={kwargs}" if kwargs else ""
    spec = registered_env_spec(env_id, key) if ":" not in env_id else None
    if spec is not None:
        check_env_kwargs(spec, kwargs, "collect.env_kwargs")
    try:
        with quiet_mujoco_deprecations():
            try:
                return gym.make(env_id, **kwargs)
            except gym.error.UnregisteredEnv:
                if ":" in env_id:  # an explicit module:Env-vN: gym.make already imported it
                    raise
                if registered_env_spec(env_id, key) is None:
                    raise TTError(
                        f"{key}={env_id}: no such registered Gymnasium env; {unregistered_hint()}"
                    ) from None
                return gym.make(env_id, **kwargs)
    except TTError:
        raise
    except gym.error.UnregisteredEnv as err:
        reason = str(err).splitlines()[0][:160]
        raise TTError(f"{key}={env_id}: no such registered Gymnasium env ({reason})") from None
    except Exception as err:
        reason = str(err).splitlines()[0][:160] if str(err) else ""
        raise TTError(
            f"{key}={env_id}{with_kwargs}: cannot make this Gymnasium env "
            f"({err.__class__.__name__}: {reason})"
        ) from None
