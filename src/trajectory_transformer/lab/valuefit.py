"""`tt bench valuefit run=DIR [windows=2000] [seed=0]`: the run's reward and value heads on its data.

Teacher-forced on random windows of the run's own dataset (`evaluation.value_fit`): bias, MAE,
RMSE and correlation of the expected predicted reward and value against the data's, and the
value by quintile of the true reward-to-go (does the head tell good states from bad ones?).
Read beside `tt eval`'s plan audit: a head that fits here but whose plans do not come true in
the env is being exploited by the search. Writes RUN/eval/value_fit.json; `--json` prints it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import runs
from ..config import parse_options
from ..errors import ConfigError
from ..evaluation.value_fit import value_fit
from ..utils import atomic_write_json
from .records import fmt

__all__ = ["main"]


@dataclass(frozen=True)
class ValueFitOptions:
    """`tt bench valuefit` options (read by `config.parse_options`; it takes no overrides)."""

    run: str
    windows: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.windows < 1 or self.seed < 0:
            raise ConfigError("tt bench valuefit: windows must be at least 1 and seed at least 0")


def parse(items: list[str]) -> ValueFitOptions:
    """`key=value` options into typed values; an unknown or malformed one is a one-line error."""
    return parse_options(items, ValueFitOptions, "bench valuefit", sections=())[0]


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    options = parse(list(overrides or []))
    run_dir = Path(options.run)
    windows = 64 if quick else options.windows
    fit = value_fit(run_dir, windows=windows, seed=options.seed)
    path = run_dir / runs.EVAL_DIR / "value_fit.json"
    atomic_write_json(path, fit)
    if json_lines:
        print(json.dumps(fit))
        return 0
    print(f"{run_dir}: {fit['windows']} windows of its data, teacher-forced (in-sample)")
    print("| head | transitions | target mean | predicted mean | bias | MAE | correlation |")
    print("|---|---|---|---|---|---|---|")
    for head in ("reward", "value"):
        f = fit[head]
        print(
            f"| {head} | {f['n']} | {fmt(f['target_mean'], 2)} | {fmt(f['predicted_mean'], 2)} | "
            f"{fmt(f['bias'], 2)} | {fmt(f['mae'], 2)} | {fmt(f['correlation'], 3)} |"
        )
    quintiles = ", ".join(
        f"{fmt(q['target_mean'])} → {fmt(q['predicted_mean'])}" for q in fit["value_by_quintile"]
    )
    print(f"value by quintile of the true reward-to-go (true → predicted): {quintiles}")
    print(f"written: {path}")
    return 0
