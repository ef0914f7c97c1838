"""The policies a run was evaluated with and their normalized scores, as the report shows them."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..metrics import Reference, score
from .html import _is_num
from .read import _Run

# --------------------------------------------------------------------------- policies


def _policies(run: _Run) -> dict[str, dict[str, Any]]:
    """TT first, then baselines: the order every comparison plot and table uses."""
    out: dict[str, dict[str, Any]] = {}
    if run.eval is not None:
        out["TT"] = run.eval
    for name, summary in run.baselines.items():
        out[name] = summary
    return out


def _returns(summary: dict[str, Any]) -> np.ndarray:
    vals = summary.get("returns")
    if not isinstance(vals, list):
        return np.zeros(0)
    arr = np.asarray([v for v in vals if _is_num(v)], dtype=float)
    return arr[np.isfinite(arr)]


def _refs(run: _Run, summary: dict[str, Any]) -> tuple[float, float] | None:
    """(random, expert) reference returns: the summary's own, else the dataset's."""
    ref = summary.get("reference")
    if isinstance(ref, dict):  # as evaluation.metrics.summarize writes it
        lo, hi = ref.get("random_return"), ref.get("expert_return")
        if _is_num(lo) and _is_num(hi) and hi > lo:
            return float(lo), float(hi)
        return None  # a reference that makes no scale (edited, or from before it was checked)
    ds = run.dataset or {}
    lo, hi = ds.get("ref_min_score"), ds.get("ref_max_score")
    if _is_num(lo) and _is_num(hi) and hi > lo:
        return float(lo), float(hi)
    return None


def _ci(summary: dict[str, Any]) -> tuple[float, float] | None:
    ci = summary.get("normalized_score_ci95", summary.get("normalized_score_ci"))
    if isinstance(ci, dict):
        ci = [ci.get("low"), ci.get("high")]
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_is_num(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def _score(run: _Run, summary: dict[str, Any]) -> tuple[float | None, tuple[float, float] | None]:
    """(normalized score, CI) as logged; computed from returns and references when not logged."""
    logged = summary.get("normalized_score")
    ci = _ci(summary)
    refs = _refs(run, summary)
    if isinstance(summary.get("reference"), dict) and refs is None:
        return None, None  # its scale runs backwards or divides by zero: no score at all
    if _is_num(logged):
        return float(logged), ci
    rets = _returns(summary)
    if refs is None or rets.size == 0:
        return None, ci
    lo, hi = refs
    s = score(rets, Reference(lo, hi, "report"))  # the t-interval `tt eval` and the suite use
    if ci is None and rets.size > 1:
        ci = s.ci95
    return s.mean, ci
