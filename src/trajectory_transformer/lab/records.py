"""What every result file of `tt bench quality` and `tt bench sweep` records the same way: the
score on a reference scale with its interval, the machine, the commit, the date, and how numbers
are printed in their tables. One place, so a suite cell, a baseline cell and a sweep point of the
same returns say the same thing."""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.metrics import (
    D4RL_REFERENCE,
    D4RL_SOURCE,
    Reference,
    confidence_interval,
    score,
)
from ..utils import read_json

__all__ = [
    "ci95",
    "d4rl_reference",
    "evaluation_reference",
    "fmt",
    "fmt_ci",
    "fmt_time",
    "git_info",
    "machine_info",
    "now_iso",
    "read_results",
    "score_summary",
]


def read_results(paths: Iterable[Path], schema: str, what: str) -> list[dict[str, Any]]:
    """The JSON files among `paths` that carry `schema` (others, e.g. a manifest, are skipped)."""
    out = []
    for path in sorted(paths):
        data = read_json(path, what)
        if isinstance(data, dict) and data.get("schema") == schema:
            out.append(data)
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def d4rl_reference(env_id: str | None) -> Reference | None:
    """D4RL's published random/expert returns for the env (by id prefix), else None."""
    name = (env_id or "").split("/")[-1]
    for prefix, (random_return, expert_return) in D4RL_REFERENCE.items():
        if name.startswith(prefix):
            return Reference(random_return, expert_return, D4RL_SOURCE)
    return None


def evaluation_reference(summary: dict[str, Any]) -> Reference | None:
    """The random/expert reference an evaluation summary was normalized with (None if none)."""
    ref = summary.get("reference")
    if not ref:
        return None
    return Reference(float(ref["random_return"]), float(ref["expert_return"]), str(ref["source"]))


def ci95(values: Iterable[float]) -> list[float] | None:
    """A 95% t-interval, or None for fewer than two values."""
    low, high = confidence_interval(np.asarray(list(values), dtype=np.float64))
    return None if math.isnan(low) else [low, high]


def score_summary(returns: np.ndarray, reference: Reference | None) -> dict[str, Any] | None:
    """Per-episode normalized scores (x100) with mean, spread and interval; None without a
    reference."""
    if reference is None:
        return None
    s = score(returns, reference)
    return {
        "mean": s.mean,
        "std": s.std,
        "ci95": None if math.isnan(s.ci95[0]) else [s.ci95[0], s.ci95[1]],
        "ci95_note": "t-interval over this cell's episodes",
        "per_episode": [float(x) for x in s.per_episode],
        "random_return": reference.random,
        "expert_return": reference.expert,
        "source": reference.source,
        "scale": "x100: 0 = random reference, 100 = expert reference",
        "formula": "100 * (R - random_return) / (expert_return - random_return)",
    }


def git_info() -> dict[str, Any]:
    """The commit of this package's checkout and whether tracked files differ from it."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine_info(device: Any) -> dict[str, Any]:
    """Platform, cores, torch and its threads, and the evaluation device (GPU name if CUDA)."""
    import torch

    device = torch.device(device)
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "cores_available": affinity,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "eval_device": "cpu" if device.type == "cpu" else str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci: list[float] | None, digits: int = 1) -> str:
    return "—" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds:.2f} s"
