"""`tt bench valuefit run=DIR [windows=2000] [seed=0]`: the run's reward and value heads on its data.

Teacher-forced on random windows of the run's own dataset (`evaluation.value_fit`): bias, MAE,
RMSE and correlation of the expected predicted reward and value against the data's, and the
value by quintile of the true reward-to-go (does the head tell good states from bad ones?).
Read beside `tt eval`'s plan audit: a head that fits here but whose plans do not come true in
the env is being exploited by the search. Writes RUN/eval/value_fit.json; `--json` prints it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import TTError
from ..evaluation.value_fit import value_fit
from ..utils import atomic_write_json
from .records import fmt

__all__ = ["main"]

_OPTIONS = {"run": str, "windows": int, "seed": int}


def parse(items: list[str]) -> dict[str, Any]:
    """`key=value` options into typed values; an unknown or malformed one is a one-line TTError."""
    options: dict[str, Any] = {"windows": 2000, "seed": 0}
    for item in items:
        key, has_value, value = item.partition("=")
        if key not in _OPTIONS or not has_value:
            raise TTError(f"'{item}': tt bench valuefit takes run=DIR, windows=N and seed=N")
        try:
            options[key] = _OPTIONS[key](value)
        except ValueError:
            raise TTError(f"'{item}': {key} must be an integer") from None
    if "run" not in options:
        raise TTError("tt bench valuefit needs run=DIR (a trained run folder)")
    return options


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    options = parse(list(overrides or []))
    run_dir = Path(options["run"])
    windows = 64 if quick else options["windows"]
    fit = value_fit(run_dir, windows=windows, seed=options["seed"])
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
