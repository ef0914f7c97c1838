"""Speed benchmarks behind `tt bench data|train|plan`; each prints a table or JSON lines.

Targets are ratios measured within one run (these machines are noisy); results go to BENCHMARKS.md.
"""

from __future__ import annotations

import importlib

__all__ = ["run_benchmark"]


def run_benchmark(
    what: str, json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None
) -> int:
    """Run the benchmark module `bench/<what>.py` (its `main(json_lines, quick, overrides)`)."""
    module = importlib.import_module(f"{__name__}.{what}")
    return int(module.main(json_lines=json_lines, quick=quick, overrides=overrides or []))
