"""Summary statistics of evaluation episodes, with the normalized score and where its reference came from.

Normalized score = 100 * (R - R_random) / (R_expert - R_random), i.e. x100 as in the TT and D4RL
papers (Minari's `get_normalized_score` returns the same thing /100). The reference returns come
from the config (data.ref_min_score / data.ref_max_score) where given, else from the dataset (its
ref_min_score / ref_max_score, which is what Minari's `get_normalized_score` reads), else, for the
standard MuJoCo locomotion tasks only, from D4RL's published references. Minari refuses a dataset
without references, so that last fallback is labelled "D4RL published" wherever it is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..envs.loop import RolloutResult
from ..errors import TTError

__all__ = [
    "D4RL_REFERENCE",
    "D4RL_SOURCE",
    "Reference",
    "Score",
    "check_reference",
    "confidence_interval",
    "normalized_score",
    "pick_reference",
    "score",
    "summarize",
    "wilson_interval",
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


D4RL_SOURCE = "D4RL published"
"""`Reference.source` when D4RL's published returns were used (the dataset has none)."""


@dataclass(frozen=True)
class Reference:
    """Random and expert returns that define 0 and 100, and where they came from."""

    random: float
    expert: float
    source: str
    """"config", "dataset", "config+dataset" (each end from where it was given) or "D4RL published"."""
    note: str = ""
    """A one-line explanation for output (empty when the source says it all)."""


def pick_reference(
    env_id: str | None,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    *,
    config_min_score: float | None = None,
    config_max_score: float | None = None,
) -> Reference | None:
    """The references to normalize with, and which ones they are.

    Each end comes from the config (data.ref_min_score / data.ref_max_score) if given, else from
    the dataset. Only when neither gives a full pair and no config value was given do D4RL's
    published references stand in, by env id prefix (source "D4RL published"); else None.
    A config value that cannot be completed is an error rather than silently unused.
    """
    low = config_min_score if config_min_score is not None else ref_min_score
    high = config_max_score if config_max_score is not None else ref_max_score
    if low is not None and high is not None:
        from_config = (config_min_score is not None, config_max_score is not None)
        source = {(True, True): "config", (False, False): "dataset"}.get(
            from_config, "config+dataset"
        )
        names = [
            "data.ref_min_score" if from_config[0] else "the dataset's ref_min_score",
            "data.ref_max_score" if from_config[1] else "the dataset's ref_max_score",
        ]
        check_reference(low, high, names[0], names[1])
        return Reference(float(low), float(high), source)
    if config_min_score is not None or config_max_score is not None:
        given, missing = (
            ("data.ref_min_score", "ref_max_score")
            if config_min_score is not None
            else ("data.ref_max_score", "ref_min_score")
        )
        raise TTError(f"{given} is set but the dataset has no {missing}; set data.{missing} too")
    name = (env_id or "").split("/")[-1]
    for prefix, (random_return, expert_return) in D4RL_REFERENCE.items():
        if name.startswith(prefix):
            note = (
                f"the dataset has no reference returns; D4RL's published {prefix} references are "
                "used (Minari's get_normalized_score refuses this dataset)"
            )
            return Reference(random_return, expert_return, D4RL_SOURCE, note)
    return None


def check_reference(low: Any, high: Any, low_name: str, high_name: str) -> None:
    """Reference returns that make a scale: two finite numbers, the expert's above the random's.

    Equal ends divide by zero and an expert below random runs the scale backwards (a worse policy
    would score higher), so either is refused with where each end came from and how to fix it.
    """
    fix = "set data.ref_min_score and data.ref_max_score (e.g. tt eval RUN_DIR data.ref_min_score=... data.ref_max_score=...)"
    for value, name in ((low, low_name), (high, high_name)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise TTError(f"reference return {name} is {value!r}, not a finite number; {fix}")
    if not high > low:
        relation = "equals" if high == low else "is below"
        raise TTError(
            f"reference returns make no scale: the expert return {high} ({high_name}) {relation} "
            f"the random return {low} ({low_name}), so a score would "
            f"{'divide by zero' if high == low else 'run backwards'}; {fix}"
        )


def normalized_score(returns: np.ndarray | float, reference: Reference) -> np.ndarray:
    """100 * (R - R_random) / (R_expert - R_random), elementwise (never on a backwards scale)."""
    check_reference(reference.random, reference.expert, "random_return", "expert_return")
    span = reference.expert - reference.random
    return 100.0 * (np.asarray(returns, dtype=np.float64) - reference.random) / span


@dataclass(frozen=True)
class Score:
    """Normalized scores (x100) of a set of episodes: per episode, mean, spread, 95% t-interval."""

    per_episode: np.ndarray
    mean: float
    std: float
    """Sample standard deviation (ddof=1); 0.0 for one episode."""
    ci95: tuple[float, float]
    """`confidence_interval` of the per-episode scores; (nan, nan) for one episode."""


def score(returns: np.ndarray, reference: Reference) -> Score:
    """The one place a normalized score and its interval are computed: `tt eval`'s summary, the
    quality suite's records and the report all call this, so they agree to the last digit."""
    scores = normalized_score(returns, reference)
    std = float(scores.std(ddof=1)) if scores.size > 1 else 0.0
    return Score(scores, float(scores.mean()), std, confidence_interval(scores))


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


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (nan, nan) for n = 0.

    Wilson rather than the normal approximation: it stays inside [0, 1] and is not empty at 0 or
    n successes (a maze solved 50/50 times still gets an interval below 1).
    """
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends (no rounding residue)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def _success_summary(success_step: np.ndarray) -> dict[str, Any]:
    """Success rate (Wilson 95% CI) and steps to the goal (t 95% CI, successful episodes only)."""
    reached = success_step[success_step > 0]
    n, k = int(success_step.size), int(reached.size)
    steps = reached.astype(np.float64)
    return {
        "success_rate": k / n,
        "success_count": k,
        "success_ci95": _ci_json(wilson_interval(k, n)),
        "success_ci_method": "Wilson score interval",
        "steps_to_goal_mean": float(steps.mean()) if k else None,
        "steps_to_goal_median": float(np.median(steps)) if k else None,
        "steps_to_goal_ci95": _ci_json(confidence_interval(steps)) if k else None,
        "success_steps": success_step.tolist(),
    }


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
    if result.success_step is not None:  # the env reports info["success"] (goal tasks)
        summary.update(_success_summary(result.success_step))
    if reference is not None:
        s = score(returns, reference)
        summary.update(
            normalized_score=s.mean,
            normalized_score_std=s.std,
            normalized_score_ci95=_ci_json(s.ci95),
            reference={
                "source": reference.source,
                "random_return": reference.random,
                "expert_return": reference.expert,
                "formula": "100 * (R - random_return) / (expert_return - random_return)",
                "note": reference.note,
            },
        )
    return summary
