"""Reading a run folder for the report: each part on its own, a note where one is missing."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import runs
from ..names import PLANNER, find_evaluations

# Keys that are the x axis (or bookkeeping), never plotted as a curve.
_X_KEYS = ("step", "epoch", "tokens", "time", "wall_time", "elapsed_s")
# A video above this size is linked as a note instead of embedded: a 100 MB HTML file helps nobody.
_MAX_VIDEO_BYTES = 40 * 1024 * 1024
_PALETTE = {"tt": "#1f77b4", "behaviour": "#2ca02c", "behavior": "#2ca02c", "random": "#d62728"}


@dataclass
class _Run:
    """Everything read from a run folder; `notes` collects why a part is missing."""

    root: Path
    config: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    video: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _read_optional_json(path: Path, what: str, notes: dict[str, str]) -> dict[str, Any] | None:
    """Read a JSON object, or record why it is not available (missing, corrupt, not an object)."""
    if not path.is_file():
        notes[what] = f"{path.name} not found"
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        notes[what] = f"{path.name} could not be read ({err.__class__.__name__})"
        return None
    if not isinstance(obj, dict):
        notes[what] = f"{path.name} is not a JSON object"
        return None
    return obj


def _read_metrics(path: Path, notes: dict[str, str]) -> list[dict[str, Any]]:
    """Read metrics.jsonl, skipping bad lines (a run killed mid-write leaves a partial last line)."""
    if not path.is_file():
        notes["metrics"] = f"{path.name} not found"
        return []
    rows: list[dict[str, Any]] = []
    bad = 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(obj, dict):
            rows.append(obj)
        else:
            bad += 1
    if bad:
        notes["metrics_skipped"] = f"{bad} unreadable line(s) in {path.name} were skipped"
    if not rows:
        notes["metrics"] = f"{path.name} holds no metrics"
    return rows


def _load_run(root: Path) -> _Run:
    run = _Run(root=root)
    n = run.notes
    run.config = _read_optional_json(root / runs.CONFIG_FILE, "config", n)
    run.dataset = _read_optional_json(root / runs.DATASET_FILE, "dataset", n)
    run.metrics = _read_metrics(root / runs.METRICS_FILE, n)
    # only the quickstart times its phases; other runs have no phases.json and need no note
    if (root / runs.PHASES_FILE).exists():
        run.phases = _read_optional_json(root / runs.PHASES_FILE, "phases", n)
    problems: dict[str, str] = {}
    summaries = find_evaluations(root, problems)
    for problem in problems.values():  # shown, never guessed around: the file is left out
        print(f"warning: report: left out {problem}", file=sys.stderr)
    run.eval = summaries.pop(PLANNER, None)
    planner_file = f"{runs.eval_name('planner')}.json"
    if run.eval is None and planner_file in problems:
        n["eval"] = f"left out {problems[planner_file]} (run `tt eval` again)"
    elif run.eval is None:
        n["eval"] = f"{runs.EVAL_DIR}/{planner_file} not found (run `tt eval`)"
    run.baselines = summaries
    videos = sorted((root / runs.VIDEOS_DIR).glob("*.mp4"))
    run.video = videos[0] if videos else None
    return run
