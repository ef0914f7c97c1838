"""Where a suite's cells live (work and results folders) and what state each cell is in.

The ledger records what each training run was asked for, so a resumed suite continues a cell
rather than starting it again; `cell_status` reads it with the cell's result file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import TTError
from ..utils import read_json
from .baselines import (
    BASELINES,
)
from .suite import Suite, dataset_slug

__all__ = [
    "PLOT_FILE",
    "TABLE_FILE",
    "Layout",
    "cell_status",
]

TABLE_FILE, PLOT_FILE = "results.md", "results.png"
"""A suite's table and plot, in its results folder."""


# ------------------------------------------------------------------------------ layout + status
@dataclass(frozen=True)
class Layout:
    """Where a suite's run folders and results go."""

    work_dir: Path
    results_dir: Path

    @classmethod
    def default(cls, suite: Suite, quick: bool = False) -> Layout:
        if quick:
            root = Path("runs") / "quality-quick" / suite.name
            return cls(root, root / "results")
        return cls(
            Path("runs") / "quality" / suite.name, Path("benchmarks") / "results" / suite.name
        )

    def run_dir(self, dataset: str, seed: int) -> Path:
        return self.work_dir / dataset_slug(dataset) / f"seed{seed}"

    def ledger(self, dataset: str, seed: int) -> Path:
        return self.work_dir / dataset_slug(dataset) / f"seed{seed}.train.json"

    def baseline_dir(self, dataset: str, method: str, seed: int) -> Path:
        """A baseline cell's request.json, result.json and worker.log."""
        return self.work_dir / dataset_slug(dataset) / f"{method}-seed{seed}"

    def cell_json(self, dataset: str, method: str, seed: int) -> Path:
        return self.results_dir / dataset_slug(dataset) / f"{method}-seed{seed}.json"

    @property
    def table(self) -> Path:
        return self.results_dir / TABLE_FILE

    @property
    def plot(self) -> Path:
        return self.results_dir / PLOT_FILE


def _read_ledger(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"sessions": [], "complete": False}
    data = read_json(path, "training ledger")
    if not isinstance(data, dict) or not isinstance(data.get("sessions"), list):
        raise TTError(f"{path}: not a training ledger; delete it (the run folder is kept)")
    return data


def cell_status(layout: Layout, dataset: str, method: str, seed: int) -> str:
    """done | corrupt | trained (evaluation pending) | partial (resumes at step N) | todo."""
    path = layout.cell_json(dataset, method, seed)
    if path.is_file():
        try:
            read_json(path, "quality cell result")
        except TTError:
            return "corrupt: restore or delete it"
        return "done"
    if method in BASELINES:  # its worker resumes from the cell folder's checkpoints/
        step = runs.train_step(layout.baseline_dir(dataset, method, seed))
        return f"partial: resumes at step {step}" if step else "todo"
    run_dir = layout.run_dir(dataset, seed)
    if _read_ledger(layout.ledger(dataset, seed)).get("complete"):
        return "trained, evaluation pending"
    step = runs.train_step(run_dir)
    return f"partial: resumes at step {step}" if step else "todo"
