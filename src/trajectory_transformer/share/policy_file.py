"""The one-file policy: a trained run's config, model, discretizer and env description in one file.

A `.tt` file is a safetensors file (never a pickle): the model's weights under `model/<name>`,
the discretizer's bins under `discretizer/edges` and `discretizer/centers`, and as string
metadata the JSON of the run's config (`config`), the model's architecture (`model`, a GPTConfig),
the dataset description with the spaces and env spec (`dataset`, a DatasetInfo) and the
discretizer's strategy, plus a SHA-256 over all of it (`utils.tensor_digest`), checked on load.

Loading never needs the dataset and never runs code: every metadata field is type-checked before
it is used, so a truncated file, a flipped byte or a field of the wrong type is a one-line TTError
naming the file and the field, never a traceback. The run folder stays the training format; this
is what a policy is shared as (`TTPolicy.save`, `tt push`, the shipped policies).
"""

from __future__ import annotations

import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors.torch import save_file

from ..config import RunConfig, config_from_dict, config_to_dict
from ..data.discretizer import Discretizer
from ..data.episodes import DatasetInfo
from ..errors import TTError
from ..model.gpt import GPTConfig, TrajectoryGPT
from ..runs import LoadedRun
from ..utils import DIGEST_KEY, atomic_path, read_safetensors, tensor_digest

__all__ = ["FORMAT", "SUFFIX", "read_policy_file", "write_policy_file"]

FORMAT = "trajectory_transformer.policy/1"
SUFFIX = ".tt"
"""The suffix `TTPolicy.save` suggests; any name is read."""
_MODEL, _DISC = "model/", "discretizer/"
_HINT = (
    "download or save it again (`TTPolicy.save`), or pass verify=False if you changed it on purpose"
)


def write_policy_file(
    path: str | os.PathLike[str],
    config: RunConfig,
    gpt_config: GPTConfig,
    info: DatasetInfo,
    discretizer: Discretizer,
    state: Mapping[str, torch.Tensor],
) -> Path:
    """Write the one file atomically (a half-written file never appears under `path`)."""
    arrays, disc_meta = discretizer.state_dict()
    tensors = {f"{_MODEL}{k}": v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    tensors.update(
        {f"{_DISC}{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    )
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config_to_dict(config)),
        "model": json.dumps(gpt_config.to_dict()),
        "dataset": json.dumps(info.to_dict()),
        "discretizer": json.dumps(disc_meta),
    }
    metadata[DIGEST_KEY] = tensor_digest(tensors, metadata)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def read_policy_file(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", verify: bool = True
) -> LoadedRun:
    """A `LoadedRun` from a one-file policy (its `run_dir` is the file); errors are one line."""
    p = Path(path)
    tensors, meta = read_safetensors(
        p,
        "pt",
        what="policy",
        corrupt="{path}: not a policy file, or a corrupt or truncated one ({error}); download "
        "or save it again (`TTPolicy.save`)",
        verify=verify,
        hint=_HINT,
    )
    if meta.get("format") != FORMAT:
        raise TTError(f"{p}: not a trajectory_transformer policy file (format {FORMAT})")
    config_raw = _json(p, meta, "config")
    try:
        config: RunConfig = config_from_dict(config_raw)
    except TTError as err:
        raise TTError(f"{p}: metadata 'config': {err}") from None
    gpt_config = _typed(GPTConfig, _json(p, meta, "model"), p, "model")
    info = _typed(DatasetInfo, _json(p, meta, "dataset"), p, "dataset")
    disc_meta = _json(p, meta, "discretizer")
    if not all(isinstance(v, str) for v in disc_meta.values()):
        raise TTError(f"{p}: metadata 'discretizer' must map names to strings")
    arrays = {k.removeprefix(_DISC): v.numpy() for k, v in tensors.items() if k.startswith(_DISC)}
    discretizer = Discretizer.from_state_dict(arrays, disc_meta, where=str(p))
    want = (gpt_config.token_dims, gpt_config.vocab_size)
    for name in ("edges", "centers"):
        shape = arrays[name].shape
        if shape != (want[0], want[1] + (name == "edges")) or arrays[name].dtype != np.float64:
            raise TTError(
                f"{p}: discretizer {name} are {arrays[name].dtype} {shape}, but the model "
                f"needs float64 ({want[0]}, {want[1] + (name == 'edges')})"
            )
    model_dims = (gpt_config.observation_dim + gpt_config.goal_dim, gpt_config.action_dim)
    if model_dims != (info.observation_dim, info.action_dim):
        raise TTError(
            f"{p}: the model is built for {model_dims[0]} observation + {model_dims[1]} action "
            f"dims, but its dataset describes {info.observation_dim} + {info.action_dim}"
        )
    if not info.observation_space or not info.action_space:
        raise TTError(f"{p}: metadata 'dataset' records no observation and action spaces")
    model = TrajectoryGPT(gpt_config)
    state = {k.removeprefix(_MODEL): v for k, v in tensors.items() if k.startswith(_MODEL)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise TTError(f"{p}: the weights do not match its model metadata ({first})") from None
    model.to(device).eval()
    return LoadedRun(
        run_dir=p,
        config=config,
        gpt_config=gpt_config,
        model=model,
        discretizer=discretizer,
        info=info,
    )


def _json(path: Path, meta: dict[str, str], key: str) -> dict[str, Any]:
    text = meta.get(key)
    if text is None:
        raise TTError(f"{path}: metadata '{key}' is missing; " + _HINT)
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise TTError(f"{path}: metadata '{key}' is not JSON; " + _HINT) from None
    if not isinstance(value, dict):
        raise TTError(f"{path}: metadata '{key}' must be a JSON object, got {type(value).__name__}")
    return value


T = typing.TypeVar("T")


def _typed(cls: type[T], raw: dict[str, Any], path: Path, key: str) -> T:
    """`cls(**raw)` once every field has its annotated JSON type (no coercion, no surprises)."""
    hints = typing.get_type_hints(cls)
    for name, value in raw.items():
        if name not in hints:
            raise TTError(f"{path}: metadata '{key}' has an unknown field {name!r}")
        if not _matches(value, hints[name]):
            shown = json.dumps(value)[:40]
            raise TTError(
                f"{path}: metadata '{key}' field {name!r} is {shown}, not of type "
                f"{_type_name(hints[name])}"
            )
    try:
        return cls(**raw)
    except (TTError, TypeError, ValueError) as err:
        raise TTError(f"{path}: metadata '{key}': {str(err).splitlines()[0]}") from None


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return False


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
