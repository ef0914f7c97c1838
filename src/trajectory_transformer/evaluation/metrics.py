"""Summary statistics of evaluation episodes, with the normalized score and where its reference came from.

Normalized score = 100 * (R - R_random) / (R_expert - R_random), i.e. x100 as in the TT and D4RL
papers (Minari's `get_normalized_score` returns the same thing /100). The reference returns come
from the dataset (its ref_min_score / ref_max_score) when it has them, otherwise from the published
D4RL references for the standard MuJoCo locomotion tasks; the summary names which one it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..envs.loop import RolloutResult

__all__ = [
    "D4RL_REFERENCE",
    "Reference",
    "confidence_interval",
    "normalized_score",
    "pick_reference",
    "summarize",
]

D4RL_REFERENCE: dict[str, tuple[float, float]] = {
    # env id prefix -> (random, expert) returns; D4RL infos.py, also in the TT paper's tables.
    "HalfCheetah": (-280.178953, 12135.0),
    "Hopper": (-20.272305, 3234.3),
    "Walker2d": (1.629008, 4592.3),
}

# Two-sided 95% Student t quantiles t_{0.975, df} for df = 1..30 (beyond: Cornish-Fisher series).
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


@dataclass(frozen=True)
class Reference:
    """Random and expert returns that define 0 and 100, and where they came from."""

    random: float
    expert: float
    source: str  # "dataset" | "d4rl"


def pick_reference(
    env_id: str | None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
) -> Reference | None:
    """The dataset's reference scores if it has both, else D4RL's by env id prefix, else None."""
    if ref_min_score is not None and ref_max_score is not None:
        return Reference(float(ref_min_score), float(ref_max_score), "dataset")
    name = (env_id or "").split("/")[-1]
    for prefix, (low, high) in D4RL_REFERENCE.items():
        if name.startswith(prefix):
            return Reference(low, high, "d4rl")
    return None


def normalized_score(returns: np.ndarray | float, reference: Reference) -> np.ndarray:
    """100 * (R - R_random) / (R_expert - R_random), elementwise."""
    span = reference.expert - reference.random
    if span == 0:
        raise ValueError("reference expert and random returns are equal; cannot normalize")
    return 100.0 * (np.asarray(returns, dtype=np.float64) - reference.random) / span


def _t975(df: int) -> float:
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def confidence_interval(values: np.ndarray) -> tuple[float, float]:
    """95% t-interval for the mean (nan, nan) with fewer than 2 values.

    A t-interval rather than a bootstrap: evaluation uses ~10 episodes, where a percentile
    bootstrap is too narrow.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return (math.nan, math.nan)
    half = _t975(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    mean = float(x.mean())
    return (mean - half, mean + half)


def _ci_json(ci: tuple[float, float]) -> list[float] | None:
    """JSON has no NaN: a CI that does not exist (one episode) is null."""
    return None if math.isnan(ci[0]) else [ci[0], ci[1]]


def _stats(x: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
        "min": float(x.min()),
        "max": float(x.max()),
    }


def summarize(result: RolloutResult, reference: Reference | None) -> dict[str, Any]:
    """JSON-able summary: returns, normalized score (x100) with a 95% CI, done ratio, timings."""
    returns = result.returns
    ret = _stats(returns)
    summary: dict[str, Any] = {
        "episodes": int(returns.size),
        "return_mean": ret["mean"],
        "return_std": ret["std"],
        "return_min": ret["min"],
        "return_max": ret["max"],
        "return_ci95": _ci_json(confidence_interval(returns)),
        "normalized_score": None,
        "normalized_score_std": None,
        "normalized_score_ci95": None,
        "normalized_score_scale": "x100: 0 = random reference, 100 = expert reference",
        "reference": None,
        "done_ratio": float(result.terminated.mean()),
        "length_mean": float(result.lengths.mean()),
        "length_min": int(result.lengths.min()),
        "length_max": int(result.lengths.max()),
        "env_steps": result.env_steps,
        "n_envs": result.n_envs,
        "wall_s": result.wall_s,
        "env_steps_per_s": result.env_steps_per_s,
        "plan_ms_per_step": result.agent_ms_per_step,
        "plan_ms_per_call": result.agent_ms_per_call,
        "plan_s_total": result.agent_s,
        "env_s_total": result.env_s,
    }
    if reference is not None:
        scores = normalized_score(returns, reference)
        s = _stats(scores)
        summary.update(
            normalized_score=s["mean"],
            normalized_score_std=s["std"],
            normalized_score_ci95=_ci_json(confidence_interval(scores)),
            reference={
                "source": reference.source,
                "random_return": reference.random,
                "expert_return": reference.expert,
                "formula": "100 * (R - random_return) / (expert_return - random_return)",
            },
        )
    return summary
