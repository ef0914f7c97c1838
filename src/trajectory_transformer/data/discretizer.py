"""Per-dimension discretization of transitions into tokens, and back.

Each of the D transition dimensions gets its own `n_bins` bins (edges (D, n_bins+1), centers
(D, n_bins)). Tokens are raw bin indices in [0, n_bins); the model adds `dim * n_bins` itself.

- uniform: equal-width bins between the data's min and max; a bin decodes to its midpoint, so the
  round-trip error inside the data range is at most half a bin width.
- quantile (original TT default): edges at the data's quantiles, so every bin holds about the same
  number of training values. A bin decodes to the MEAN of the training data that fell into it
  (the original TT decodes to the midpoint of its edges); the mean minimises the squared round-trip
  error and decodes point masses exactly (saturated torques, zero rewards). Empty bins decode to
  their midpoint. The error is bounded by the bin's width either way.
- Duplicate quantile edges (point masses) make zero-width bins [v, v]; a value equal to v is put in
  the zero-width bin, so it decodes exactly. Constant dimensions therefore decode to the constant.
- Out-of-range values are clipped to the outer edges and counted (`last_clipped`, `total_clipped`).

Saved as safetensors (arrays + string metadata, with a SHA-256 checked on load); never pickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from ..errors import TTError
from ..utils import DIGEST_KEY, atomic_path, check_tensor_digest, tensor_digest

__all__ = ["Dims", "Discretizer", "tokens_dtype"]

Dims = slice | int | np.ndarray | list[int] | None
"""Which transition dimensions an array covers: None (all), an int, a slice, or index array."""

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)
_FORMAT = "trajectory_transformer.discretizer/1"


def tokens_dtype(n_bins: int) -> np.dtype[Any]:
    """Smallest unsigned integer dtype holding token values 0 .. n_bins-1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n_bins - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise TTError(f"n_bins={n_bins} is too large")


def _index(dims: Dims, n_dims: int) -> slice | np.ndarray:
    if dims is None:
        return slice(None)
    if isinstance(dims, slice):
        return dims
    if isinstance(dims, int | np.integer):
        d = int(dims) % n_dims
        return slice(d, d + 1)
    idx = np.asarray(dims, dtype=np.int64)
    if idx.ndim != 1:
        raise TTError(f"discretizer dims must be 1-D, got shape {idx.shape}")
    return idx


@dataclass(eq=False)
class Discretizer:
    """Per-dimension bins; see the module docstring for how each strategy decodes.

    Compare discretizers with np.array_equal on `edges` and `centers` (== is identity).
    """

    edges: np.ndarray  # (D, n_bins + 1) float64, non-decreasing along each row
    centers: np.ndarray  # (D, n_bins) float64, centers[d, i] within [edges[d, i], edges[d, i+1]]
    strategy: Literal["quantile", "uniform"] = "quantile"
    last_clipped: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Per-dimension count of values clipped by the latest `encode` call."""
    total_clipped: int = 0
    """Values clipped by every `encode` call on this object (for reports)."""
    _torch_cache: dict[tuple[str, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self.edges = np.ascontiguousarray(self.edges, dtype=np.float64)
        self.centers = np.ascontiguousarray(self.centers, dtype=np.float64)
        d, b = self.centers.shape
        if self.edges.shape != (d, b + 1):
            raise TTError(f"discretizer edges {self.edges.shape} do not match centers {(d, b)}")
        if not (np.isfinite(self.edges).all() and np.isfinite(self.centers).all()):
            raise TTError("discretizer edges/centers contain NaN or inf")
        if (np.diff(self.edges, axis=1) < 0).any():
            raise TTError("discretizer edges must be non-decreasing in every dimension")

    @property
    def n_dims(self) -> int:
        return int(self.centers.shape[0])

    @property
    def n_bins(self) -> int:
        return int(self.centers.shape[1])

    @property
    def tokens_dtype(self) -> np.dtype[Any]:
        return tokens_dtype(self.n_bins)

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        data: np.ndarray | Sequence[np.ndarray],
        n_bins: int,
        strategy: Literal["quantile", "uniform"] = "quantile",
    ) -> Discretizer:
        """Fit bins to data (N, D), or to a sequence of D columns (N,) (avoids joining big arrays).

        N >= 1 and all values finite.
        """
        if isinstance(data, np.ndarray):
            if data.ndim != 2:
                raise TTError(f"discretizer needs data of shape (N>0, D), got {data.shape}")
            columns: Sequence[np.ndarray] = [data[:, j] for j in range(data.shape[1])]
        else:
            columns = data
        if n_bins < 1:
            raise TTError(f"n_bins must be >= 1, got {n_bins}")
        if strategy not in ("quantile", "uniform"):
            raise TTError(f"unknown discretization strategy {strategy!r}; use quantile|uniform")
        d = len(columns)
        edges = np.empty((d, n_bins + 1), np.float64)
        centers = np.empty((d, n_bins), np.float64)
        probs = np.linspace(0.0, 1.0, n_bins + 1)
        for j, column in enumerate(columns):
            col = np.array(column, dtype=np.float64, copy=True).reshape(-1)  # (N,) ours to sort
            n = col.shape[0]
            if n == 0:
                raise TTError(f"discretizer needs at least one value (dimension {j} is empty)")
            if not np.isfinite(col).all():
                raise TTError(f"discretizer data dimension {j} contains NaN or inf; clean the data")
            if strategy == "uniform":
                edges[j] = np.linspace(col.min(), col.max(), n_bins + 1)
                centers[j] = 0.5 * (edges[j, :-1] + edges[j, 1:])
                continue
            col.sort()
            # linear interpolation between order statistics, like np.quantile(method="linear")
            pos = probs * (n - 1)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, n - 1)
            frac = pos - lo
            edges[j] = np.maximum.accumulate(col[lo] * (1 - frac) + col[hi] * frac)
            idx = _bin_index(edges[j], col)
            counts = np.bincount(idx, minlength=n_bins)
            sums = np.bincount(idx, weights=col, minlength=n_bins)
            mean = np.clip(sums / np.maximum(counts, 1), edges[j, :-1], edges[j, 1:])
            centers[j] = np.where(counts > 0, mean, 0.5 * (edges[j, :-1] + edges[j, 1:]))
        return cls(edges=edges, centers=centers, strategy=strategy)

    # ---------------------------------------------------------------- encode / decode
    def encode(self, x: ArrayT, dims: Dims = None) -> ArrayT:
        """Values (..., len(dims)) -> tokens in [0, n_bins) (numpy: tokens_dtype; torch: int64).

        Out-of-range values go to the first/last bin; their per-dim count is in `last_clipped`.
        """
        idx = _index(dims, self.n_dims)
        edges = self.edges[idx]  # (K, B+1)
        if isinstance(x, torch.Tensor):
            return self._encode_torch(x, idx)
        x = np.asarray(x)
        if x.shape[-1:] != (edges.shape[0],):
            raise TTError(f"encode: last axis of {x.shape} must be {edges.shape[0]} (dims)")
        flat = x.reshape(-1, edges.shape[0])  # (M, K)
        out = np.empty(flat.shape, self.tokens_dtype)
        clipped = np.zeros(edges.shape[0], np.int64)
        for k in range(edges.shape[0]):
            col = flat[:, k]
            clipped[k] = np.count_nonzero(col < edges[k, 0]) + np.count_nonzero(col > edges[k, -1])
            out[:, k] = _bin_index(edges[k], col)
        self._record(clipped)
        return out.reshape(x.shape)

    def encode_column(self, dim: int, values: np.ndarray) -> np.ndarray:
        """Tokens (M,) int64 of one dimension's values (M,), without touching clip counters."""
        return _bin_index(self.edges[dim], np.asarray(values))

    def _encode_torch(self, x: torch.Tensor, idx: slice | np.ndarray) -> torch.Tensor:
        edges_t, _ = self._torch(x.device, torch.float64 if x.dtype == torch.float64 else x.dtype)
        edges = edges_t[torch.as_tensor(np.arange(self.n_dims)[idx], device=x.device)]  # (K, B+1)
        flat = x.reshape(-1, edges.shape[0]).to(edges.dtype)  # (M, K)
        lo, hi = edges[:, 0], edges[:, -1]
        clipped = ((flat < lo) | (flat > hi)).sum(0)
        interior = edges[:, 1:-1].contiguous()  # (K, B-1)
        tok = torch.searchsorted(interior, flat.T.contiguous(), right=True)  # (K, M)
        # values sitting on a duplicated edge go to the zero-width bin [v, v] just left of it
        left = torch.gather(edges, 1, tok)
        prev = torch.gather(edges, 1, (tok - 1).clamp(min=0))
        tok = tok - ((tok > 0) & (left == flat.T) & (prev == left)).long()
        self._record(clipped.cpu().numpy().astype(np.int64))
        return tok.T.reshape(x.shape)

    def _record(self, clipped: np.ndarray) -> None:
        self.last_clipped = clipped
        self.total_clipped += int(clipped.sum())

    def decode(self, tokens: ArrayT, dims: Dims = None) -> ArrayT:
        """Tokens (..., len(dims)) -> bin centers (numpy float32 / torch in the default float)."""
        idx = _index(dims, self.n_dims)
        if isinstance(tokens, torch.Tensor):
            _, centers_t = self._torch(tokens.device, torch.get_default_dtype())
            sel = torch.as_tensor(np.arange(self.n_dims)[idx], device=tokens.device)
            centers = centers_t[sel]  # (K, B)
            t = tokens.long().clamp(0, self.n_bins - 1)
            k = torch.arange(centers.shape[0], device=tokens.device)
            return centers[k, t]
        centers_np = self.centers[idx]  # (K, B)
        t_np = np.clip(np.asarray(tokens).astype(np.int64), 0, self.n_bins - 1)
        if t_np.shape[-1:] != (centers_np.shape[0],):
            raise TTError(f"decode: last axis of {t_np.shape} must be {centers_np.shape[0]}")
        return centers_np[np.arange(centers_np.shape[0]), t_np].astype(np.float32)

    def expectation(self, probs: ArrayT, dims: Dims = None) -> ArrayT:
        """Expected value under per-dim bin probabilities: (..., len(dims), n_bins) -> (..., len(dims)).

        Works on numpy arrays and on torch tensors on any device (centers are cached per device).
        """
        idx = _index(dims, self.n_dims)
        if isinstance(probs, torch.Tensor):
            _, centers_t = self._torch(probs.device, probs.dtype)
            centers = centers_t[idx] if isinstance(idx, slice) else centers_t[torch.as_tensor(idx)]
            return (probs * centers).sum(-1)
        centers_np = self.centers[idx]
        return (np.asarray(probs) * centers_np).sum(-1)

    def _torch(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (str(device), dtype)
        if key not in self._torch_cache:
            self._torch_cache[key] = (
                torch.as_tensor(self.edges, dtype=dtype, device=device),
                torch.as_tensor(self.centers, dtype=dtype, device=device),
            )
        return self._torch_cache[key]

    def bin_widths(self) -> np.ndarray:
        """(D, n_bins) edge-to-edge widths."""
        return np.diff(self.edges, axis=1)

    # ---------------------------------------------------------------- persistence
    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """Arrays and string metadata, for embedding in another safetensors file."""
        meta = {"format": _FORMAT, "strategy": self.strategy, "n_bins": str(self.n_bins)}
        return {"edges": self.edges, "centers": self.centers}, meta

    @classmethod
    def from_state_dict(
        cls, arrays: dict[str, np.ndarray], meta: dict[str, str], where: str = "discretizer"
    ) -> Discretizer:
        if meta.get("format") != _FORMAT or "edges" not in arrays or "centers" not in arrays:
            raise TTError(f"{where}: not a trajectory_transformer discretizer ({_FORMAT})")
        strategy = meta.get("strategy", "quantile")
        if strategy not in ("quantile", "uniform"):
            raise TTError(f"{where}: unknown strategy {strategy!r}")
        return cls(edges=arrays["edges"], centers=arrays["centers"], strategy=strategy)  # type: ignore[arg-type]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a safetensors file atomically, with a SHA-256 of its arrays and metadata."""
        from safetensors.numpy import save_file

        arrays, meta = self.state_dict()
        meta[DIGEST_KEY] = tensor_digest(arrays, meta)
        with atomic_path(path) as tmp:
            save_file(arrays, str(tmp), metadata=meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str], verify: bool = True) -> Discretizer:
        """Read a file written by `save`; a missing or corrupt file is a one-line TTError.

        With `verify` (the default) the stored checksum must match the arrays and metadata: a
        mismatch or a missing checksum is a one-line TTError naming the file.
        """
        from safetensors import safe_open

        p = Path(path)
        if not p.is_file():
            raise TTError(f"{p}: missing discretizer file")
        try:
            with safe_open(str(p), framework="numpy") as handle:
                meta = dict(handle.metadata() or {})
                arrays = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        except Exception as err:  # safetensors raises its own error types for bad headers
            raise TTError(
                f"{p}: corrupt discretizer file ({err.__class__.__name__}); re-run training data "
                "preparation or restore the file"
            ) from err
        if verify:
            check_tensor_digest(p, arrays, meta)
        return cls.from_state_dict(arrays, meta, where=str(p))

    def to_json(self) -> str:
        """Readable JSON of the bins (for reports and debugging; `save` is the primary format)."""
        return json.dumps(
            {
                "strategy": self.strategy,
                "edges": self.edges.tolist(),
                "centers": self.centers.tolist(),
            }
        )


def _bin_index(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of each value for one dimension's edges (B+1,), clipping out-of-range values."""
    tok = np.searchsorted(edges[1:-1], values, side="right")  # (M,) in [0, B-1]
    if edges.shape[0] > 2 and (edges[1:] == edges[:-1]).any():
        left = edges[tok]
        on_dup = (tok > 0) & (values == left) & (edges[np.maximum(tok - 1, 0)] == left)
        if on_dup.any():
            tok = tok - on_dup  # zero-width bin [v, v] left of a duplicated edge
    return tok
