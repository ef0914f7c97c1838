"""Flatten batched values of Gymnasium spaces to float32 matrices (N, D) and back.

The Trajectory Transformer sees every transition as a flat vector that it discretizes one dimension
at a time, so every supported space must map to a fixed number of float dimensions:

- Box: its elements, row-major (integer Boxes are rounded on the way back).
- Discrete: ONE float, the index itself (not one-hot). TT bins each dimension separately, so the
  index becomes its own token; a one-hot code would spend n dimensions (and n tokens) per step.
  `unflatten` rounds and clips back to a valid index.
- MultiDiscrete / MultiBinary: one float per entry, rounded and clipped back.
- Dict / Tuple: the concatenation of their subspaces (Dict in `space.spaces` key order), nested.

Anything else (Text, Graph, Sequence, OneOf, ...) has no fixed flat size and raises TTError.
Spaces are stored in run folders as JSON (Minari's serializer), never pickled.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from minari.serialization import deserialize_space, serialize_space

from ..errors import TTError

__all__ = [
    "executed_action",
    "flat_bounds",
    "flat_dim",
    "flatten",
    "space_from_json",
    "space_to_json",
    "stack",
    "unflatten",
]

_SUPPORTED = "Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple"


def _unsupported(space: spaces.Space[Any], where: str) -> TTError:
    return TTError(
        f"{where}: space {space!r} is not supported (it has no fixed flat size); "
        f"supported spaces are {_SUPPORTED}, nested in any way"
    )


def flat_dim(space: spaces.Space[Any], where: str = "space") -> int:
    """Number of float dimensions one value of `space` flattens to."""
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, spaces.Discrete):
        return 1
    if isinstance(space, spaces.MultiDiscrete):
        return int(space.nvec.size)
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, spaces.Dict):
        return sum(flat_dim(sub, f"{where}[{key!r}]") for key, sub in space.spaces.items())
    if isinstance(space, spaces.Tuple):
        return sum(flat_dim(sub, f"{where}[{i}]") for i, sub in enumerate(space.spaces))
    raise _unsupported(space, where)


def _batch_size(space: spaces.Space[Any], value: Any, where: str) -> int:
    if isinstance(space, spaces.Dict):
        key = next(iter(space.spaces))
        return _batch_size(space.spaces[key], value[key], f"{where}[{key!r}]")
    if isinstance(space, spaces.Tuple):
        return _batch_size(space.spaces[0], value[0], f"{where}[0]")
    return int(np.shape(value)[0])


def flatten(space: spaces.Space[Any], value: Any, where: str = "space") -> np.ndarray:
    """Batched value of `space` (leading axis N) -> float32 (N, flat_dim(space))."""
    if isinstance(space, spaces.Dict | spaces.Tuple) and len(space.spaces) == 0:
        raise TTError(f"{where}: empty {type(space).__name__} space has nothing to flatten")
    if isinstance(space, spaces.Dict):
        missing = [k for k in space.spaces if k not in value]
        if missing:
            raise TTError(f"{where}: value lacks the keys {missing} of {space!r}")
        parts = [flatten(sub, value[k], f"{where}[{k!r}]") for k, sub in space.spaces.items()]
        return _concat(parts, where)
    if isinstance(space, spaces.Tuple):
        if len(value) != len(space.spaces):
            raise TTError(
                f"{where}: value has {len(value)} parts, {space!r} has {len(space.spaces)}"
            )
        parts = [flatten(sub, value[i], f"{where}[{i}]") for i, sub in enumerate(space.spaces)]
        return _concat(parts, where)
    dim = flat_dim(space, where)
    arr = np.asarray(value)
    if arr.ndim == 0 or int(np.prod(arr.shape[1:], dtype=np.int64)) != dim:
        shape = getattr(space, "shape", None)
        raise TTError(
            f"{where}: batched value of shape {arr.shape} does not match {space!r} "
            f"(expected (N, *{shape}))"
        )
    return arr.reshape(arr.shape[0], dim).astype(np.float32, copy=False)  # (N, D)


def _concat(parts: list[np.ndarray], where: str) -> np.ndarray:
    sizes = {p.shape[0] for p in parts}
    if len(sizes) != 1:
        raise TTError(f"{where}: subspaces have different batch sizes {sorted(sizes)}")
    return np.concatenate(parts, axis=1)


def unflatten(space: spaces.Space[Any], flat: np.ndarray, where: str = "space") -> Any:
    """float (N, flat_dim(space)) -> batched value of `space`; discrete parts rounded and clipped."""
    flat = np.asarray(flat)
    if flat.ndim != 2 or flat.shape[1] != flat_dim(space, where):
        raise TTError(f"{where}: flat array {flat.shape} does not match flat_dim {flat_dim(space)}")
    n = flat.shape[0]
    if isinstance(space, spaces.Dict | spaces.Tuple):
        items = space.spaces.items() if isinstance(space, spaces.Dict) else enumerate(space.spaces)
        out: dict[Any, Any] = {}
        offset = 0
        for key, sub in items:
            d = flat_dim(sub)
            out[key] = unflatten(sub, flat[:, offset : offset + d], f"{where}[{key!r}]")
            offset += d
        return out if isinstance(space, spaces.Dict) else tuple(out.values())
    if isinstance(space, spaces.Box):
        values = flat.reshape(n, *space.shape)
        if np.issubdtype(space.dtype, np.integer):
            values = np.rint(values)
        return values.astype(space.dtype)
    if isinstance(space, spaces.Discrete):
        lo = int(space.start)
        return np.clip(np.rint(flat[:, 0]), lo, lo + int(space.n) - 1).astype(space.dtype)  # (N,)
    if isinstance(space, spaces.MultiDiscrete):
        low = space.start.reshape(1, -1)
        high = low + space.nvec.reshape(1, -1) - 1
        values = np.clip(np.rint(flat), low, high).astype(space.dtype)
        return values.reshape(n, *space.nvec.shape)
    if isinstance(space, spaces.MultiBinary):
        return np.clip(np.rint(flat), 0, 1).astype(space.dtype).reshape(n, *space.shape)
    raise _unsupported(space, where)


def flat_bounds(space: spaces.Space[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per flat dimension (flatten order) low/high: Box bounds, ±inf elsewhere (unflatten clips)."""
    if isinstance(space, spaces.Dict | spaces.Tuple):
        subs = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
        parts = [flat_bounds(sub) for sub in subs]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(space.low, space.shape).reshape(-1).astype(np.float64)
        high = np.broadcast_to(space.high, space.shape).reshape(-1).astype(np.float64)
        return low, high
    d = flat_dim(space)
    return np.full(d, -np.inf), np.full(d, np.inf)


def executed_action(space: spaces.Space[Any], flat: np.ndarray) -> tuple[Any, np.ndarray]:
    """(native batch, flat batch) of what an env executes for flat actions (k, act_dim).

    Box parts are clipped to their bounds and discrete parts rounded into range; the flat result is
    what a planner's history must hold, since the data it learned from recorded executed actions.
    """
    low, high = flat_bounds(space)
    native = unflatten(space, np.clip(np.asarray(flat, dtype=np.float64), low, high))
    return native, np.asarray(flatten(space, native), dtype=np.float32)


def stack(space: spaces.Space[Any], values: list[Any]) -> Any:
    """A list of single (unbatched) values -> one batched value with a leading axis."""
    if isinstance(space, spaces.Dict):
        return {k: stack(sub, [v[k] for v in values]) for k, sub in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(stack(sub, [v[i] for v in values]) for i, sub in enumerate(space.spaces))
    return np.stack([np.asarray(v) for v in values])


def space_to_json(space: spaces.Space[Any]) -> str:
    """JSON text for a space (Minari's serializer), so run folders describe their env safely."""
    return str(serialize_space(space))


def space_from_json(text: str) -> spaces.Space[Any]:
    try:
        return deserialize_space(text)
    except Exception as err:  # minari raises assorted types for unknown/corrupt specs
        raise TTError(f"cannot read a space from JSON ({err.__class__.__name__}: {err})") from err
