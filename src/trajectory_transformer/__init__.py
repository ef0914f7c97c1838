"""trajectory-transformer: the Trajectory Transformer for offline RL, as a library and a `tt` command.

The names a user needs, imported lazily (so `import trajectory_transformer` and `tt --help` stay
fast and do not load torch until something is used)::

    import trajectory_transformer as tt

    cfg = tt.load_config("quickstart", ["train.max_steps=2000"])
    tt.collect(cfg.collect)                       # a Minari dataset from an env and a policy
    tt.train(cfg, "runs/api")                     # a run folder
    summary = tt.evaluate("runs/api")             # planner rollouts, normalized score
    policy = tt.TTPolicy.load("runs/api")         # the trained run as a policy for your own loop
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute): the verbs and the few types a user holds; everything else is
# imported from its own module (e.g. trajectory_transformer.model.gpt.TrajectoryGPT)
_EXPORTS: dict[str, tuple[str, str]] = {
    "RunConfig": ("config", "RunConfig"),
    "load_config": ("config", "load_config"),
    "TTError": ("errors", "TTError"),
    "ConfigError": ("errors", "ConfigError"),
    "Episodes": ("data.memory", "Episodes"),
    "collect": ("sources.collect", "collect_dataset"),
    "train": ("training.trainer", "train"),
    "evaluate": ("evaluation.evaluate", "evaluate_run"),
    "load_run": ("runs", "load_run"),
    "LoadedRun": ("runs", "LoadedRun"),
    "TTPolicy": ("policy", "TTPolicy"),
    "push": ("share.hub", "push"),
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from .config import RunConfig, load_config  # noqa: F401
    from .data.memory import Episodes  # noqa: F401
    from .errors import ConfigError, TTError  # noqa: F401
    from .evaluation.evaluate import evaluate_run as evaluate  # noqa: F401
    from .policy import TTPolicy  # noqa: F401
    from .runs import LoadedRun, load_run  # noqa: F401
    from .share.hub import push  # noqa: F401
    from .sources.collect import collect_dataset as collect  # noqa: F401
    from .training.trainer import train  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on first use (PEP 562)."""
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'trajectory_transformer' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
