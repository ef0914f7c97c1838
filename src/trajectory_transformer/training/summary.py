"""The lines `tt train` ends with: where the run is, how far it got, its last loss, the time it
took and the command that comes next. Printed with or without the progress bar, so a run with
`train.progress=false` still says what it did."""

from __future__ import annotations

import json
from pathlib import Path

from .. import runs

__all__ = ["train_summary"]


def _last_loss(run_dir: Path) -> tuple[int, float] | None:
    """(step, losses/total) of the last logged step in metrics.jsonl, or None."""
    path = run_dir / runs.METRICS_FILE
    if not path.is_file():
        return None
    for line in reversed(path.read_text(errors="replace").splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a killed run's partial last line
            continue
        if isinstance(row, dict) and isinstance(row.get("losses/total"), int | float):
            return int(row.get("step", 0)), float(row["losses/total"])
    return None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def train_summary(run_dir: str | Path, seconds: float) -> str:
    """Two lines: the run folder, its step, final loss and time; the commands that come next."""
    run_dir = Path(run_dir)
    step = runs.train_step(run_dir)
    last = _last_loss(run_dir)
    loss = f"final loss {last[1]:.4f} (step {last[0]})" if last else "no loss logged"
    return (
        f"trained {run_dir}: step {step}, {loss}, {_duration(seconds)}\n"
        f"next: tt eval {run_dir}    (then: tt report {run_dir})"
    )
