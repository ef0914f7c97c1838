"""`tt bench quality`: what TT scores, over datasets × methods × seeds, resumable, as JSON files.

A suite is data: a YAML file under `configs/suites/` (or any path) naming its datasets (each with a
preset), methods, seeds and evaluation episodes; its comments state the budget per cell. Methods:

- `tt-beam`:   the trained model with TT's beam search (`plan.mode=beam`);
- `tt-greedy`: the same trained model decoding greedily (`plan.mode=greedy`): a BC-like baseline;
- `behaviour`: the policy that made the dataset (`evaluate_run(..., agent_kind="behaviour")`);
- `bc`, `td3bc`, `cql`, `iql`, `dt`: d3rlpy's BC, TD3+BC, CQL, IQL and Decision Transformer on the
  same data, trained and scored by a worker in their own venv (lab/baselines.py; `make
  baselines`), with the budget the suite's `baseline_budget:` names (published | quick | smoke).
  They run only in suites that list them.

The TT methods share one training run per (dataset, seed); `behaviour` needs that run folder too
(evaluation reads the env and spaces from it) but does not use its weights. Seed k trains with
`train.seed=k` / `plan.seed=k` and evaluates episodes reset with `eval_seed + k·episodes + i`,
so seeds never share episodes and the methods of one seed see the same ones (paired); a baseline
of seed k trains with seed k and is scored on those same episodes by the same loop.

A recipe's dataset (`tt/hopper/medium-quick-v1`, ...) that is missing here is made first with its
`tt collect --recipe` (seeded: the same data on the same kind of machine), so one command
reproduces a suite from a fresh clone; other ids load as `data.dataset` does.

Baseline cells come after the TT cells of their (dataset, seed) and never block them: when the
baselines venv is missing, one line says so (`make baselines`), the baseline cells are left to do
and the TT cells run; a failing worker fails its cell with one line naming its log. Either way
the command ends with exit status 1 after the table, and a rerun picks the missing cells up.

Layout (paths relative to where the command runs; both folders are options)::

    runs/quality/<suite>/<dataset-slug>/seed<k>/          the run folder (see runs.py)
    runs/quality/<suite>/<dataset-slug>/seed<k>.train.json  training sessions: wall time, steps
    runs/quality/<suite>/<dataset-slug>/<baseline>-seed<k>/ a baseline's request, result, log,
                                                          checkpoints/
    benchmarks/results/<suite>/<dataset-slug>/<method>-seed<k>.json   one result per cell
    benchmarks/results/<suite>/results.md, results.png    the table and plot of every cell so far

<dataset-slug> is the dataset id with every character outside [A-Za-z0-9._-] replaced by "-"
(tt/hopper/medium-quick-v1 → tt-hopper-medium-quick-v0).

Resumable: a cell whose JSON exists is skipped; a run folder with checkpoints but no finished
training continues from its last checkpoint (`train(None, run_dir, resume=True)`), so an
interrupted suite loses at most `train.save_every` steps; a baseline cell continues from its
worker's last checkpoint (every 1/10 of its steps; lab/baselines_worker.py). Every score is the
LAST checkpoint's (the weights at the end of training), not the best one. The table and plot are
rebuilt after each cell, and from the JSONs alone with `report_only=true`.

Options (`tt bench quality OPTION=VALUE ...`; a leading `--` is accepted, e.g. `--suite=X`):
`suite=NAME|PATH` (required), `dry_run=true` (print the cells and their status, run nothing), `report_only=true` (rebuild results.md/results.png from the JSONs),
`work_dir=PATH` (default runs/quality/<suite>), `results_dir=PATH` (default
benchmarks/results/<suite>), `baselines_python=PATH` (the baselines venv's python; default
$TT_BASELINES_PYTHON, else .venv-baselines/bin/python here or beside the source checkout),
`datasets=A,B` / `methods=A,B` / `seeds=0,1` (run, or list, only those cells now: dataset ids or
folder names; the table still shows every cell done). Any `section.key=value` is a config override for every cell (e.g.
`train.device=cuda`); the suite's own settings (dataset, seeds, episodes) cannot be overridden.
`--quick` runs a smoke-size version (first seed, 20 steps, 2 short episodes; baselines at their
`smoke` budget) into runs/quality-quick/<suite> instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import parse_options as _parse_options
from ..errors import TTError
from ..sources.recipes import make_if_recipe, recipe_to_make
from ..training.setup import StepCallback
from ..utils import atomic_write_json
from .baselines import (
    BASELINES,
    BaselinesUnavailable,
    baselines_python,
)
from .cells import (
    baseline_cell,
    ensure_trained,
    evaluate_cell,
    not_applicable,
    not_applicable_cell,
)
from .ledger import Layout, cell_status
from .records import (
    fmt,
)
from .suite import (
    METHODS,
    QUICK_OVERRIDES,
    Suite,
    SuiteDataset,
    cell_config,
    list_suites,
    load_suite,
    select,
)
from .tables import read_cells, write_report

__all__ = ["main", "parse_options", "run_suite"]


# ------------------------------------------------------------------------------ running
def run_suite(
    suite: Suite,
    layout: Layout | None = None,
    extra: Sequence[str] = (),
    *,
    json_lines: bool = False,
    step_callback: StepCallback | None = None,
    echo: Callable[[str], None] = print,
    baselines_python_path: str | None = None,
    failed: list[str] | None = None,
) -> list[Path]:
    """Run every missing cell of `suite` (training shared per (dataset, seed)); returns the JSONs
    written now. The table and plot are rebuilt after each cell.

    Baseline cells run after the TT cells of their (dataset, seed), in the venv that
    `baselines_python_path` (else `baselines.baselines_python`'s default) names. A missing venv
    or a failing worker never stops the TT cells: one line each goes to `echo` and to `failed`
    (when given), and those cells stay to do.
    """
    layout = layout or Layout.default(suite)
    read_cells(layout.results_dir)  # a corrupt cell JSON stops us now, not after hours of work
    written: list[Path] = []
    failures = failed if failed is not None else []
    python = _baselines_interpreter(suite, layout, baselines_python_path, echo, failures)

    def record(ds: SuiteDataset, seed: int, method: str, result: dict[str, Any]) -> None:
        path = layout.cell_json(ds.dataset, method, seed)
        atomic_write_json(path, result)
        written.append(path)
        write_report(suite.name, layout.results_dir)
        if json_lines:
            echo(json.dumps(result))
        else:
            score = result["score_d4rl"] or result["score_dataset"] or {}
            echo(
                f"{ds.dataset} {method} seed {seed}: score {fmt(score.get('mean'))} "
                f"return {result['return']['mean']:.1f} -> {path}"
            )

    for ds in suite.datasets:
        for seed in suite.seeds:
            missing = [
                m for m in suite.methods if not layout.cell_json(ds.dataset, m, seed).is_file()
            ]
            if not missing:
                continue
            cfg = cell_config(suite, ds, seed, extra)
            make_if_recipe(ds.dataset, cfg.collect, echo)
            tt_methods = []
            for method in [m for m in missing if m in METHODS]:
                reason = not_applicable(ds.dataset, method)
                if reason is None:
                    tt_methods.append(method)
                    continue
                na = not_applicable_cell(suite, ds, seed, method, reason)
                atomic_write_json(layout.cell_json(ds.dataset, method, seed), na)
                write_report(suite.name, layout.results_dir)
                echo(f"{ds.dataset} {method} seed {seed}: not applicable ({reason})")
            if tt_methods:
                ensure_trained(cfg, layout, ds.dataset, seed, step_callback)
            for method in tt_methods:
                record(ds, seed, method, evaluate_cell(suite, ds, seed, method, cfg, layout, extra))
            for method in [m for m in missing if m in BASELINES]:
                if python is None:  # the venv is missing: said once, up front
                    continue
                try:
                    result = baseline_cell(suite, ds, seed, method, cfg, layout, python, extra)
                except TTError as err:
                    line = f"{ds.dataset} {method} seed {seed}: failed, left to do ({err})"
                    echo(line)
                    failures.append(line)
                    continue
                record(ds, seed, method, result)
    return written


def _baselines_interpreter(
    suite: Suite,
    layout: Layout,
    option: str | None,
    echo: Callable[[str], None],
    failures: list[str],
) -> Path | None:
    """The baselines venv's python if any baseline cell is to do; None (and one line) if that
    venv is missing, so the TT cells still run."""
    todo = [
        (ds, seed, m)
        for ds, seed, m in suite.cells()
        if m in BASELINES and not layout.cell_json(ds.dataset, m, seed).is_file()
    ]
    if not todo:
        return None
    try:
        return baselines_python(option)
    except BaselinesUnavailable as err:
        line = f"{len(todo)} baseline cell(s) left to do: {err}"
        echo(line)
        failures.append(line)
        return None


def _print_status(
    suite: Suite, layout: Layout, json_lines: bool, python_option: str | None = None
) -> None:
    if not json_lines:
        print(f"suite {suite.name}: {suite.description}".rstrip(": "))
        print(f"work dir {layout.work_dir}, results {layout.results_dir}")
        if any(m in BASELINES for m in suite.methods):
            try:
                where = f"venv python {baselines_python(python_option)}"
            except BaselinesUnavailable as err:
                where = f"NOT AVAILABLE: {err}"
            level = "smoke" if suite.quick else suite.baseline_budget
            print(f"baselines: budget '{level}', {where}")
        for ds in suite.datasets:
            recipe = recipe_to_make(ds.dataset)
            if recipe is not None:
                print(
                    f"dataset {ds.dataset}: missing, made first by `tt collect --recipe {recipe}`"
                )
    for ds, seed, method in suite.cells():
        status = cell_status(layout, ds.dataset, method, seed)
        path = layout.cell_json(ds.dataset, method, seed)
        if json_lines:
            row = {"dataset": ds.dataset, "method": method, "seed": seed, "preset": ds.preset,
                   "status": status, "result": str(path)}  # fmt: skip
            print(json.dumps(row))
        else:
            print(f"  {ds.dataset:<36} {method:<10} seed {seed:<3} {status:<30} {path}")


@dataclass(frozen=True)
class QualityOptions:
    """`tt bench quality` options (the module doc); read by `config.parse_options`."""

    suite: str | None = None
    dry_run: bool = False
    report_only: bool = False
    work_dir: str | None = None
    results_dir: str | None = None
    baselines_python: str | None = None
    datasets: tuple[str, ...] = ()  # the cells to run (or list) now
    methods: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()


def parse_options(items: Sequence[str]) -> tuple[QualityOptions, list[str]]:
    """Split `tt bench quality` arguments into options and config overrides (see the module doc)."""
    return _parse_options(items, QualityOptions, "bench quality")


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    options, extra = parse_options(overrides or [])
    if not options.suite:
        raise TTError(f"tt bench quality needs a suite: suite=NAME, one of {list_suites()}")
    suite = load_suite(options.suite)
    if quick:
        suite = replace(suite, seeds=suite.seeds[:1], episodes=2, quick=True,
                        overrides=(*suite.overrides, *QUICK_OVERRIDES))  # fmt: skip
    suite = select(suite, list(options.datasets), list(options.methods), list(options.seeds))
    default = Layout.default(suite, quick)
    layout = Layout(
        Path(options.work_dir or default.work_dir),
        Path(options.results_dir or default.results_dir),
    )
    for ds in suite.datasets:  # the overrides are checked before anything runs
        for seed in suite.seeds:
            cell_config(suite, ds, seed, extra)
    if options.dry_run:
        _print_status(suite, layout, json_lines, options.baselines_python)
        return 0
    failed: list[str] = []
    if not options.report_only:
        run_suite(suite, layout, extra, json_lines=json_lines,
                  baselines_python_path=options.baselines_python, failed=failed)  # fmt: skip
    rows = write_report(suite.name, layout.results_dir)
    if not rows:
        print(f"no results under {layout.results_dir} yet", file=sys.stderr)
    elif not json_lines:
        print(layout.table.read_text())
        print(f"plot: {layout.plot}")
    elif options.report_only:
        for row in rows:
            print(json.dumps(row))
    for line in failed:  # after the table, so the reason is the last thing on screen
        print(f"not done: {line}", file=sys.stderr)
    return 1 if failed else 0
