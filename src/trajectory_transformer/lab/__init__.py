"""Experiments: the quality suite, planning sweeps, d3rlpy baselines, records and published scores.

`tt bench quality|sweep` run them; results go to benchmarks/results and BENCHMARKS.md.
"""

from __future__ import annotations

import importlib

__all__ = ["EXPERIMENTS", "run_experiment"]

EXPERIMENTS = ("quality", "sweep", "valuefit", "oracle")


def run_experiment(
    what: str, json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None
) -> int:
    """Run the experiment `lab/<what>.py` (its `main(json_lines, quick, overrides)`), as `tt bench`
    runs the speed benchmarks; the modules load only when asked for (matplotlib, yaml, d3rlpy)."""
    if what not in EXPERIMENTS:
        raise ValueError(f"no experiment {what!r}; choose one of {list(EXPERIMENTS)}")
    module = importlib.import_module(f"{__name__}.{what}")
    return int(module.main(json_lines=json_lines, quick=quick, overrides=overrides or []))
