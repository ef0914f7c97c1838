"""`tt bench data`: tokens + windows for a HalfCheetah-sized synthetic dataset.

Default: 1M transitions, 17 obs + 6 act dims, 1000-step episodes, 100 quantile bins.
Targets (issue 3): build under 20 s, and peak extra memory under 3x the token array.
Peak memory is tracemalloc's peak of Python + NumPy allocations made while building (the
synthetic float data exists before and is not counted; it is the input, ~4x the token array).
Overrides: transitions=N episode_len=T n_bins=B strategy=quantile|uniform n_transitions=W batch=B.
"""

from __future__ import annotations

import dataclasses
import json
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..config import parse_options
from ..data.episodes import DatasetInfo, Transitions, discounted_returns
from ..data.tokens import build_tokenized

__all__ = ["main", "run"]


@dataclass(frozen=True)
class DataBenchOptions:
    """`tt bench data` options (read by `config.parse_options`)."""

    transitions: int = 1_000_000
    episode_len: int = 1000
    obs_dim: int = 17
    act_dim: int = 6
    n_bins: int = 100
    strategy: str = "quantile"
    n_transitions: int = 10
    batch: int = 256


def _parse(overrides: list[str], quick: bool) -> dict[str, Any]:
    items = ["transitions=50000", *overrides] if quick else overrides
    return dataclasses.asdict(parse_options(items, DataBenchOptions, "bench data", sections=())[0])


def synthetic_transitions(n: int, episode_len: int, obs_dim: int, act_dim: int) -> Transitions:
    """Smooth random-walk observations, bounded actions, rewards correlated with the state."""
    rng = np.random.default_rng(0)
    n_eps = max(1, n // episode_len)
    starts = np.minimum(np.arange(n_eps + 1, dtype=np.int64) * episode_len, n)
    starts[-1] = n
    obs = np.cumsum(rng.normal(scale=0.1, size=(n, obs_dim)).astype(np.float32), axis=0)
    obs -= obs.mean(0)
    act = np.tanh(rng.normal(size=(n, act_dim))).astype(np.float32)
    rewards = (obs[:, 0] * 0.1 + rng.normal(size=n)).astype(np.float32)
    timeouts = np.zeros(n, bool)
    timeouts[starts[1:] - 1] = True
    return Transitions(
        observations=obs,
        actions=act,
        rewards=rewards,
        values=np.zeros(n, np.float32),
        terminals=np.zeros(n, bool),
        timeouts=timeouts,
        episode_starts=starts,
    )


def run(params: dict[str, Any]) -> dict[str, Any]:
    """Time and measure the pipeline; returns one result record."""
    tr = synthetic_transitions(
        params["transitions"], params["episode_len"], params["obs_dim"], params["act_dim"]
    )
    info = DatasetInfo(dataset="synthetic")
    tracemalloc.start()
    t0 = time.perf_counter()
    tr.values = discounted_returns(tr.rewards, tr.episode_starts, 0.99)
    t_values = time.perf_counter() - t0
    data = build_tokenized(tr, info, params["n_bins"], params["strategy"])
    t_tokens = time.perf_counter() - t0 - t_values
    windows = data.windows(params["n_transitions"])
    t_build = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    loader = torch.utils.data.DataLoader(windows, batch_size=params["batch"], shuffle=True)
    it = iter(loader)
    next(it)  # warm up
    t1 = time.perf_counter()
    n_batches = 20
    for _ in range(n_batches):
        x, _y, _mask = next(it)
    t_batch = (time.perf_counter() - t1) / n_batches
    token_bytes = int(data.tokens.nbytes)
    return {
        "bench": "data",
        "transitions": int(tr.n_transitions),
        "transition_dim": int(data.transition_dim),
        "n_bins": params["n_bins"],
        "strategy": params["strategy"],
        "token_dtype": str(data.tokens.dtype),
        "values_s": round(t_values, 3),
        "tokenize_s": round(t_tokens, 3),
        "build_s": round(t_build, 3),
        "token_array_mb": round(token_bytes / 2**20, 2),
        "peak_mb": round(peak / 2**20, 2),
        "peak_over_tokens": round(peak / token_bytes, 2),
        "windows": len(windows),
        "batch_ms": round(t_batch * 1e3, 2),
        "batch_shape": list(x.shape),
        "mean_abs_error_max": round(max(info.discretization_error), 5),
        "target_time_ok": t_build < 20.0,
        "target_memory_ok": peak < 3 * token_bytes,
    }


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    result = run(_parse(overrides or [], quick))
    if json_lines:
        print(json.dumps(result))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            print(f"{key:<{width}}  {value}")
    return 0
