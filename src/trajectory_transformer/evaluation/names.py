"""One name per evaluation of a run, shared by its files, its TensorBoard tags and the report.

An evaluation is a summary JSON named `eval.json` (the planner) or `eval_<agent>.json` (another
agent, or a name given to `evaluate_run`, e.g. the quickstart's `eval_greedy`). Its name is where
that file lies in the run folder:

- RUN/eval/eval.json: `planner`; RUN/eval/eval_<x>.json: `<x>` (`behaviour`, `random`, `greedy`);
- a file in another folder of the run (`tt eval --out RUN/eval_greedy`, the suite's
  RUN/eval/tt-beam, a sweep's RUN/eval/sweep/<point>): that folder's path relative to the run
  (a leading `eval/` dropped), plus `/<x>` for an `eval_<x>.json`: `eval_greedy`, `tt-beam`,
  `sweep/<point>`, `eval_greedy/behaviour`;
- a file outside the run folder (`--out` elsewhere) has no name in the run: its files go where
  `--out` says and nothing of it goes into the run's TensorBoard or report.

TensorBoard: the planner's scalars are `eval/<key>` (the same series as the evaluations during
training, `train.eval_every`), every other evaluation's `eval/<name>/<key>`. `tt report` shows
every named evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import runs

__all__ = ["PLANNER", "evaluation_name", "find_evaluations", "tensorboard_prefix"]

PLANNER = "planner"
"""The name of the run's own evaluation, RUN/eval/eval.json."""

_SKIP = (runs.CHECKPOINT_DIR, runs.TB_DIR, runs.VIDEOS_DIR)


def evaluation_name(run_dir: str | Path, json_path: str | Path) -> str | None:
    """The name of the evaluation written to `json_path`, or None outside `run_dir`."""
    try:
        rel = Path(json_path).resolve().relative_to(Path(run_dir).resolve())
    except ValueError:
        return None
    folder = list(rel.parent.parts)
    if folder[:1] == [runs.EVAL_DIR]:
        folder = folder[1:]
    agent = PLANNER if rel.stem == "eval" else rel.stem.removeprefix("eval_")
    if not folder:
        return agent
    return "/".join([*folder, *([] if agent == PLANNER else [agent])])


def tensorboard_prefix(name: str) -> str:
    """`eval` for the planner, `eval/<name>` for every other evaluation."""
    return "eval" if name == PLANNER else f"eval/{name}"


def find_evaluations(
    run_dir: str | Path, problems: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every evaluation summary in the run folder by name, the planner first, then by name.

    Files that are not summaries (unreadable, not an object, no return_mean or returns) are skipped: the report
    shows what it can. A summary whose fields have the wrong types is skipped too, and `problems`,
    if given, gets "<file>: <what is wrong>" for it, by file name.
    """
    root = Path(run_dir)
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("eval*.json")):
        rel = path.relative_to(root)
        if rel.parts[0] in _SKIP or not (path.stem == "eval" or path.stem.startswith("eval_")):
            continue
        in_eval_dir = rel.parent == Path(runs.EVAL_DIR)  # there every eval*.json is a summary
        try:
            obj = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            if in_eval_dir and problems is not None:
                problems[path.name] = f"{path}: not readable JSON ({err.__class__.__name__})"
            continue
        name = evaluation_name(root, path)
        is_summary = isinstance(obj, dict) and ("return_mean" in obj or "returns" in obj)
        if (is_summary or in_eval_dir) and name:
            problem = runs.eval_summary_problem(obj)
            if problem is not None:
                if problems is not None:
                    problems[path.name] = f"{path}: {problem}"
                continue
            found[name] = obj
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != PLANNER, kv[0])))
