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
`suite=NAME|PATH` (required), `dry_run=true` (or `list=true`: print the cells and their status,
run nothing), `report_only=true` (rebuild results.md/results.png from the JSONs),
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

import io
import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .. import __version__, runs
from ..config import (
    PRESET_DIR,
    RunConfig,
    apply_overrides,
    config_to_dict,
    find_yaml,
    load_config,
)
from ..data.episodes import dataset_returns
from ..errors import ConfigError, TTError
from ..evaluation.evaluate import evaluate_run
from ..evaluation.metrics import (
    Reference,
    normalized_score,
)
from ..sources.recipes import make_if_recipe, recipe_to_make
from ..store import collect_record
from ..training.trainer import StepCallback, train
from ..utils import atomic_write_bytes, atomic_write_json, read_json, resolve_device
from .baselines import (
    BASELINES,
    BUDGET_LEVELS,
    BaselinesUnavailable,
    baselines_python,
    request_for,
    run_worker,
    worker_command,
)
from .published import PUBLISHED_SOURCES, published_score
from .records import (
    ci95,
    d4rl_reference,
    evaluation_reference,
    fmt,
    fmt_ci,
    fmt_time,
    git_info,
    machine_info,
    now_iso,
    read_results,
    score_summary,
)

__all__ = [
    "ALL_METHODS",
    "METHODS",
    "SCHEMA",
    "SUITE_DIR",
    "Layout",
    "Suite",
    "SuiteDataset",
    "aggregate",
    "baseline_cell",
    "cell_config",
    "cell_status",
    "d4rl_reference",
    "list_suites",
    "load_suite",
    "main",
    "not_applicable",
    "run_suite",
    "write_report",
]

SUITE_DIR = PRESET_DIR / "suites"
SCHEMA = "tt-quality-cell/1"
METHODS: dict[str, tuple[str, tuple[str, ...]]] = {
    # method -> (evaluate_run's agent_kind, plan overrides on top of the trained run's config)
    "tt-beam": ("planner", ("plan.mode=beam",)),
    "tt-greedy": ("planner", ("plan.mode=greedy",)),
    "behaviour": ("behaviour", ()),
}
ALL_METHODS: tuple[str, ...] = (*METHODS, *BASELINES)
"""Every method a suite may list: TT's (above) and the d3rlpy baselines (lab/baselines.py)."""
TABLE_FILE, PLOT_FILE = "results.md", "results.png"
CHECKPOINT_NOTE = "the LAST checkpoint's weights (the end of training), not the best checkpoint"
QUICK_OVERRIDES = (
    "train.max_steps=20",
    "eval.n_envs=2",
    "eval.max_episode_steps=50",
    "plan.beam_width=4",
    "plan.horizon=2",
)
# Keys that do not change what is trained (a resumed run may differ in these).
_RUNTIME_KEYS = ("device", "progress", "num_workers", "log_every", "save_every", "keep_last",
                 "eval_every")  # fmt: skip
_SUITE_KEYS = {"description", "datasets", "methods", "seeds", "episodes", "eval_seed", "overrides",
               "baseline_budget"}  # fmt: skip


# ------------------------------------------------------------------------------ the suite
@dataclass(frozen=True)
class SuiteDataset:
    """One dataset of a suite: its id (or path), the preset it trains with, extra overrides."""

    dataset: str
    preset: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[SuiteDataset, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    episodes: int
    """Evaluation episodes per cell."""
    eval_seed: int = 1000
    """Seed k's episode i is reset with eval_seed + k * episodes + i."""
    overrides: tuple[str, ...] = ()
    """Config overrides for every cell (after the preset, before the dataset's own)."""
    description: str = ""
    source: str = ""
    """How the suite was named (a shipped name or a YAML path), for the commands in results."""
    quick: bool = False
    """The `--quick` smoke-size version (first seed, 2 episodes, QUICK_OVERRIDES)."""
    baseline_budget: str = "quick"
    """Budget level of the d3rlpy baselines: published, quick or smoke (lab/baselines.py)."""

    def cells(self) -> list[tuple[SuiteDataset, int, str]]:
        return [(d, s, m) for d in self.datasets for s in self.seeds for m in self.methods]


def list_suites() -> list[str]:
    return sorted(p.stem for p in SUITE_DIR.glob("*.yaml"))


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of key=value strings")
    return tuple(value)


def load_suite(name_or_path: str) -> Suite:
    """A suite by name (configs/suites/<name>.yaml) or YAML path, checked before anything runs."""
    path = find_yaml(name_or_path, SUITE_DIR, "suite")
    where = f"suite {path}"
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML ({err.__class__.__name__})") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping")
    unknown = sorted(set(raw) - _SUITE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; valid keys are {sorted(_SUITE_KEYS)}")
    datasets = []
    for i, item in enumerate(raw.get("datasets") or []):
        if not isinstance(item, dict) or not {"dataset", "preset"} <= set(item):
            raise ConfigError(f"{where}: datasets[{i}] needs `dataset:` and `preset:`")
        extra = set(item) - {"dataset", "preset", "overrides"}
        if extra:
            raise ConfigError(f"{where}: datasets[{i}] has unknown keys {sorted(extra)}")
        preset = str(item["preset"])
        if Path(preset).suffix and not Path(preset).is_absolute():
            preset = str(path.parent / preset)  # a preset file beside the suite file
        datasets.append(
            SuiteDataset(
                str(item["dataset"]),
                preset,
                _str_list(item.get("overrides"), f"{where}: datasets[{i}].overrides"),
            )
        )
    if not datasets:
        raise ConfigError(f"{where}: `datasets:` must list at least one dataset")
    slugs = [_slug(d.dataset) for d in datasets]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"{where}: two datasets share a folder name ({slugs})")
    methods = raw.get("methods") or list(METHODS)
    if not isinstance(methods, list):
        raise ConfigError(f"{where}: `methods:` must be a list; use some of {list(ALL_METHODS)}")
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad or len(set(methods)) != len(methods):
        what = f"unknown methods {bad}" if bad else "a method is listed twice"
        raise ConfigError(f"{where}: {what}; use some of {list(ALL_METHODS)}")
    baseline_budget = raw.get("baseline_budget", "quick")
    if baseline_budget not in BUDGET_LEVELS:
        raise ConfigError(
            f"{where}: `baseline_budget:` must be one of {list(BUDGET_LEVELS)}, got {baseline_budget!r}"
        )
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise ConfigError(f"{where}: `seeds:` must be a non-empty list of integers")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: `seeds:` lists a seed twice")
    episodes = raw.get("episodes", 20)
    if type(episodes) is not int or episodes < 1:
        raise ConfigError(f"{where}: `episodes:` must be an integer >= 1")
    eval_seed = raw.get("eval_seed", 1000)
    if type(eval_seed) is not int:
        raise ConfigError(f"{where}: `eval_seed:` must be an integer")
    suite = Suite(
        name=path.stem,
        datasets=tuple(datasets),
        methods=tuple(methods),
        seeds=tuple(seeds),
        episodes=episodes,
        eval_seed=eval_seed,
        overrides=_str_list(raw.get("overrides"), f"{where}: overrides"),
        description=str(raw.get("description") or ""),
        source=str(name_or_path),
        baseline_budget=str(baseline_budget),
    )
    for ds in suite.datasets:  # every preset and override is checked before any compute
        for seed in suite.seeds:
            try:
                cell_config(suite, ds, seed)
            except (ConfigError, TTError) as err:
                raise ConfigError(f"{where}: dataset {ds.dataset}: {err}") from err
    return suite


def select(
    suite: Suite,
    datasets: Sequence[str] = (),
    methods: Sequence[str] = (),
    seeds: Sequence[str] = (),
) -> Suite:
    """The part of `suite` to run now: the listed datasets (ids or folder names), methods and
    seeds, each a subset of the suite's own (empty = all). Cells keep their suite's name, layout
    and settings, so running the parts one by one gives the same files as running the whole."""

    def pick(given: Sequence[str], known: dict[str, Any], what: str) -> list[Any]:
        unknown = [g for g in given if g not in known]
        if unknown:
            raise TTError(
                f"tt bench quality: {what}={unknown[0]} is not in suite {suite.name}; "
                f"use some of {sorted(dict.fromkeys(str(k) for k in known))}"
            )
        return list(dict.fromkeys(known[g] for g in given))

    by_name = {d.dataset: d for d in suite.datasets} | {_slug(d.dataset): d for d in suite.datasets}
    chosen_datasets = pick(datasets, by_name, "datasets")
    chosen_methods = pick(methods, {m: m for m in suite.methods}, "methods")
    chosen_seeds = pick(seeds, {str(s): s for s in suite.seeds}, "seeds")
    return replace(
        suite,
        datasets=tuple(d for d in suite.datasets if not datasets or d in chosen_datasets),
        methods=tuple(m for m in suite.methods if not methods or m in chosen_methods),
        seeds=tuple(s for s in suite.seeds if not seeds or s in chosen_seeds),
    )


def _slug(dataset: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", dataset).strip("-.") or "dataset"


def _value(value: Any) -> str:
    """A config value as override text that parses back to the same value."""
    if isinstance(value, str):
        try:
            if yaml.safe_load(value) == value and value.strip() == value and value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value)


def _forced(suite: Suite, ds: SuiteDataset, seed: int) -> list[str]:
    """What the suite fixes for a cell (after every other override, so they cannot move it)."""
    return [
        f"name={suite.name}-{_slug(ds.dataset)}-seed{seed}",
        f"data.dataset={_value(ds.dataset)}",
        f"train.seed={seed}",
        f"plan.seed={seed}",
        f"eval.episodes={suite.episodes}",
        f"eval.seed={suite.eval_seed + seed * suite.episodes}",
    ]


def _train_overrides(
    suite: Suite, ds: SuiteDataset, seed: int, extra: Sequence[str] = ()
) -> list[str]:
    return [*suite.overrides, *ds.overrides, *extra, *_forced(suite, ds, seed)]


def cell_config(suite: Suite, ds: SuiteDataset, seed: int, extra: Sequence[str] = ()) -> RunConfig:
    """The training config of (dataset, seed): preset, suite overrides, `extra`, then the suite's
    fixed keys (dataset, seeds, evaluation episodes)."""
    return load_config(ds.preset, _train_overrides(suite, ds, seed, extra))


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
        return self.work_dir / _slug(dataset) / f"seed{seed}"

    def ledger(self, dataset: str, seed: int) -> Path:
        return self.work_dir / _slug(dataset) / f"seed{seed}.train.json"

    def baseline_dir(self, dataset: str, method: str, seed: int) -> Path:
        """A baseline cell's request.json, result.json and worker.log."""
        return self.work_dir / _slug(dataset) / f"{method}-seed{seed}"

    def cell_json(self, dataset: str, method: str, seed: int) -> Path:
        return self.results_dir / _slug(dataset) / f"{method}-seed{seed}.json"

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


# ------------------------------------------------------------------------------ training
def _comparable(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg.get(k) for k in ("name", "data", "model", "train")}
    out["train"] = {k: v for k, v in (out["train"] or {}).items() if k not in _RUNTIME_KEYS}
    return out


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")
        ]
    return [] if a == b else [f"{prefix[:-1]} ({a!r} vs {b!r})"]


def _check_same_run(run_dir: Path, cfg: RunConfig) -> None:
    """A run folder left by an earlier attempt must hold this cell's training config."""
    if not (run_dir / runs.CONFIG_FILE).is_file():
        return
    saved = config_to_dict(runs.read_run_config(run_dir))
    diffs = _diff(_comparable(saved), _comparable(config_to_dict(cfg)))
    if diffs:
        raise TTError(
            f"{run_dir} holds a run trained with other settings ({'; '.join(diffs[:3])}): the suite "
            "or its presets changed since; delete that folder and its .train.json, or pass another "
            "work_dir"
        )


def ensure_trained(
    cfg: RunConfig,
    layout: Layout,
    dataset: str,
    seed: int,
    step_callback: StepCallback | None = None,
) -> bool:
    """Train (dataset, seed) unless already finished; resume from a checkpoint when there is one.

    Returns whether training ran now. Each session's wall time and steps go to the ledger, also
    when it is interrupted (KeyboardInterrupt); a killed process's session is not recorded.
    """
    run_dir, ledger_path = layout.run_dir(dataset, seed), layout.ledger(dataset, seed)
    _check_same_run(run_dir, cfg)
    ledger = _read_ledger(ledger_path)
    if ledger.get("complete") and (run_dir / runs.WEIGHTS_FILE).is_file():
        return False
    resume = runs.latest_checkpoint(run_dir) is not None
    from_step = runs.train_step(run_dir)
    session: dict[str, Any] = {"started": now_iso(), "resumed": resume, "from_step": from_step}
    start, finished = time.perf_counter(), False
    try:
        if resume:
            runtime = [f"train.{k}={_value(getattr(cfg.train, k))}" for k in _RUNTIME_KEYS]
            train(None, run_dir, resume=True, overrides=runtime, step_callback=step_callback)
        else:
            train(cfg, run_dir, step_callback=step_callback)
        finished = True
    finally:
        session.update(
            wall_s=time.perf_counter() - start, to_step=runs.train_step(run_dir), finished=finished
        )
        ledger["sessions"].append(session)
        ledger["complete"] = finished
        atomic_write_json(ledger_path, ledger)
    return True


def _train_summary(run_dir: Path, ledger: dict[str, Any]) -> dict[str, Any]:
    from ..training.checkpoint import STATE_FILE

    last = runs.latest_checkpoint(run_dir)
    if last is None:
        raise TTError(f"{run_dir}: no checkpoint after training")
    state = read_json(last / STATE_FILE, "checkpoint state")
    cfg = runs.read_run_config(run_dir)
    gpt = runs.load_gpt_config(run_dir / runs.MODEL_CONFIG_FILE)
    steps = int(state["step"])
    window_tokens = steps * cfg.train.batch_size * int(state.get("world_size", 1)) * gpt.block_size
    sessions = ledger.get("sessions", [])
    trained_s = state.get("train_s")  # survives killed sessions, which the ledger cannot record
    if trained_s is not None:
        wall = float(trained_s)
        wall_note = (
            "training-loop seconds behind the last checkpoint, summed over every session "
            "(killed ones included; data preparation not included)"
        )
    else:  # a checkpoint written before train_s was recorded
        wall = float(sum(s.get("wall_s", 0.0) for s in sessions))
        wall_note = (
            "sum over the recorded training sessions (data preparation included; a killed "
            "session is missing, so this can be too low)"
        )
    return {
        "steps": steps,
        "window_tokens": window_tokens,
        "window_tokens_note": "steps x batch x input tokens per window (padding included)",
        "target_tokens": int(state["tokens"]),
        "target_tokens_note": "non-padding target tokens, as the learning-rate schedule counts them",
        "wall_s": wall,
        "wall_note": wall_note,
        "window_tokens_per_s": window_tokens / wall if wall > 0 else None,
        "sessions": len(sessions),
        "resumed": any(s.get("resumed") for s in sessions),
        "checkpoint": "last",
        "checkpoint_step": steps,
        "device": str(resolve_device(cfg.train.device)),
        "precision": cfg.train.precision,
    }


# ------------------------------------------------------------------------------ one cell's result


def _eval_overrides(run_dir: Path, cfg: RunConfig, method: str) -> list[str]:
    """plan.*/eval.* where the cell's config differs from the saved run's, then the method's."""
    saved = config_to_dict(runs.read_run_config(run_dir))
    wanted = config_to_dict(cfg)
    out = []
    for section in ("plan", "eval"):
        for key, value in wanted[section].items():
            if saved[section].get(key) != value and not (section == "plan" and key == "mode"):
                out.append(f"{section}.{key}={_value(value)}")
    return [*out, *METHODS[method][1]]


def _commands(
    suite: Suite, ds: SuiteDataset, seed: int, method: str, layout: Layout,
    extra: Sequence[str], eval_overrides: list[str],
) -> dict[str, str]:  # fmt: skip
    run_dir = layout.run_dir(ds.dataset, seed)
    out = run_dir / runs.EVAL_DIR / method
    train_cmd = ["tt", "train", "--preset", ds.preset, "--run-dir", str(run_dir)]
    train_cmd += _train_overrides(suite, ds, seed, extra)
    eval_cmd = ["tt", "eval", "--out", str(out)]
    if METHODS[method][0] != "planner":
        eval_cmd += ["--agent", METHODS[method][0]]
    eval_cmd += [str(run_dir), *eval_overrides]
    return {
        "train": shlex.join(train_cmd),
        "eval": shlex.join(eval_cmd),
        "suite": _suite_command(suite, layout, extra),
    }


def _suite_command(suite: Suite, layout: Layout, extra: Sequence[str]) -> str:
    suite_cmd = ["tt", "bench", "quality", f"suite={suite.source or suite.name}"]
    suite_cmd += ["--quick", *extra] if suite.quick else list(extra)
    if layout != Layout.default(suite, suite.quick):
        suite_cmd += [f"work_dir={layout.work_dir}", f"results_dir={layout.results_dir}"]
    return shlex.join(suite_cmd)


def _data_score(dataset: str, env_id: str | None, dataset_ref: Reference | None) -> dict[str, Any]:
    """The score of the data itself (its episodes' mean return), on both scales: what a method
    trained on it has to beat. Stored in every cell so the table needs only the JSONs."""
    returns = dataset_returns(dataset)

    def mean_score(reference: Reference | None) -> float | None:
        return None if reference is None else float(normalized_score(returns, reference).mean())

    return {
        "episodes": int(returns.size),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "score_d4rl": mean_score(d4rl_reference(env_id)),
        "score_dataset": mean_score(dataset_ref),
        "note": "every episode of the dataset, its last (cut) one included",
    }


def not_applicable(dataset: str, method: str) -> str | None:
    """Why `method` cannot be evaluated on `dataset` (None if it can), decided from the dataset
    alone so that no TT run is trained for a cell that will not be scored.

    `behaviour` needs one policy that made the data; medium-replay (a policy changing as it
    trained) and medium-expert (two policies) have none, and their datasets record none.
    """
    if METHODS[method][0] == "behaviour" and not collect_record(dataset):
        return (
            "the dataset records no single behaviour policy (a mixture such as medium-replay or "
            "medium-expert, or data not made by tt collect); see the data score instead"
        )
    return None


def _not_applicable_cell(
    suite: Suite, ds: SuiteDataset, seed: int, method: str, reason: str
) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "suite": suite.name, "dataset": ds.dataset, "method": method,
        "seed": seed, "preset": ds.preset, "not_applicable": reason, "date": now_iso(),
        "git": git_info(), "package_version": __version__,
    }  # fmt: skip


def _cell(
    suite: Suite,
    ds: SuiteDataset,
    seed: int,
    method: str,
    summary: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """One cell's result from an evaluation summary (`evaluate_agent`'s), in the schema every
    method shares: scores on both scales, the data's own score, returns, timings. `fields` adds
    what belongs to the method (agent, train, config, commands, machine, ...), in that order."""
    returns = np.asarray(summary["returns"], dtype=np.float64)
    dataset_ref = evaluation_reference(summary)
    episodes = int(summary["episodes"])
    env_steps = int(summary["env_steps"])
    wall = float(summary["wall_s"])
    head = {
        "schema": SCHEMA,
        "suite": suite.name,
        "dataset": ds.dataset,
        "env_id": summary.get("env_id"),
        "method": method,
        "agent": fields.pop("agent"),
        "plan_mode": fields.pop("plan_mode", None),
        "seed": seed,
        "preset": ds.preset,
        "checkpoint": "last",
        "checkpoint_note": f"scores use {CHECKPOINT_NOTE}",
        "score_d4rl": score_summary(returns, d4rl_reference(summary.get("env_id"))),
        "score_dataset": score_summary(returns, dataset_ref),
        "data": _data_score(ds.dataset, summary.get("env_id"), dataset_ref),
        "return": {
            "mean": float(summary["return_mean"]),
            "std": float(summary["return_std"]),
            "min": float(summary["return_min"]),
            "max": float(summary["return_max"]),
            "ci95": summary.get("return_ci95"),
        },
        "returns": [float(r) for r in returns],
        "lengths": list(summary["lengths"]),
        "done_ratio": summary.get("done_ratio"),
        "episodes": episodes,
        "eval_seed": int(summary["seed"]),
        "plan_audit": summary.get("plan_audit"),
    }
    evaluation = {
        "wall_s": wall,
        "s_per_episode": wall / max(episodes, 1),
        "ms_per_env_step": 1000.0 * wall / max(env_steps, 1),
        "agent_ms_per_env_step": summary.get("plan_ms_per_step"),
        "env_steps": env_steps,
        "n_envs": summary.get("n_envs"),
        "max_episode_steps": summary.get("max_episode_steps"),
    }
    train = fields.pop("train")
    return {
        **head,
        "train": train,
        "train_note": fields.pop("train_note", None),
        "eval": evaluation,
        **fields,
        "date": now_iso(),
        "git": git_info(),
        "package_version": __version__,
    }


def evaluate_cell(
    suite: Suite,
    ds: SuiteDataset,
    seed: int,
    method: str,
    cfg: RunConfig,
    layout: Layout,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate one TT method on the trained (dataset, seed) run; returns the cell's result dict."""
    run_dir = layout.run_dir(ds.dataset, seed)
    agent_kind = METHODS[method][0]
    overrides = _eval_overrides(run_dir, cfg, method)
    summary = evaluate_run(
        run_dir, overrides, out=run_dir / runs.EVAL_DIR / method, agent_kind=agent_kind
    )
    evaluated = apply_overrides(runs.read_run_config(run_dir), overrides)
    commands = _commands(suite, ds, seed, method, layout, extra, overrides)
    ledger = _read_ledger(layout.ledger(ds.dataset, seed))
    planner = agent_kind == "planner"
    return _cell(
        suite, ds, seed, method, summary,
        agent=agent_kind,
        plan_mode=evaluated.plan.mode if planner else None,
        train=_train_summary(run_dir, ledger) if planner else None,
        train_note=None if planner
        else "this method does not use the trained weights; the run folder only supplies the env",
        run_dir=str(run_dir),
        config=config_to_dict(evaluated),
        command=f"{commands['train']} && {commands['eval']}",
        commands=commands,
        machine=machine_info(resolve_device(evaluated.eval.device)),
    )  # fmt: skip


def baseline_cell(
    suite: Suite,
    ds: SuiteDataset,
    seed: int,
    method: str,
    cfg: RunConfig,
    layout: Layout,
    python: Path,
    extra: Sequence[str] = (),
) -> dict[str, Any]:
    """Train and score one d3rlpy baseline in its venv (lab/baselines.py); the cell's result.

    The worker gets this cell's data selection and evaluation config (the same as TT's cells of
    this dataset and seed: episodes, eval seed, env settings) and the suite's baseline budget.
    """
    folder = layout.baseline_dir(ds.dataset, method, seed)
    level = "smoke" if suite.quick else suite.baseline_budget
    request = request_for(method, level, ds.dataset, seed, cfg)
    result = run_worker(python, request, folder)
    summary = result["summary"]
    worker = shlex.join(worker_command(python, folder))
    suite_cmd = _suite_command(suite, layout, extra)
    return _cell(
        suite, ds, seed, method, summary,
        agent="d3rlpy",
        train=result["train"],
        train_note=f"d3rlpy {result['versions'].get('d3rlpy')} in {python}; "
        f"budget '{level}' from {BASELINES[method].source}",
        run_dir=str(folder),
        config={"data": config_to_dict(cfg.data), "eval": request["eval"],
                "baseline": {"budget_level": level, "budget": request["budget"]}},
        command=f"PYTHONPATH={shlex.quote(str(folder / 'src'))} {worker}",
        commands={"suite": suite_cmd, "worker": worker},
        machine=result["machine"],
        versions=result["versions"],
        data_used=result["data"],
        target_return=result.get("target_return"),
        target_return_note=result.get("target_return_note"),
    )  # fmt: skip


# ------------------------------------------------------------------------------ aggregation
def _read_cells(results_dir: Path) -> list[dict[str, Any]]:
    return read_results(results_dir.rglob("*.json"), SCHEMA, "quality cell result")


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def aggregate(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, method): the mean over seeds and two 95% CIs.

    The headline score is D4RL-normalized where every cell of the row has D4RL references, else
    normalized by the dataset's references. `ci95_seeds` is a t-interval over the per-seed mean
    scores (what a new seed would vary by); `ci95_pooled` a t-interval over all episodes of all
    seeds pooled (narrower: it ignores seed-to-seed variation). Both need two values or more.
    """
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        if not cell.get("not_applicable"):
            groups.setdefault((cell["dataset"], cell["method"]), []).append(cell)
    datasets = list(dict.fromkeys(c["dataset"] for c in cells))
    rows = []
    for (dataset, method), group in sorted(
        groups.items(), key=lambda kv: (datasets.index(kv[0][0]), order.get(kv[0][1], 99))
    ):
        group = sorted(group, key=lambda c: c["seed"])
        if all(c.get("score_d4rl") for c in group):
            key, ref = "score_d4rl", "D4RL"
        elif all(c.get("score_dataset") for c in group):
            key, ref = "score_dataset", "dataset"
        else:
            key, ref = "", "none"
        seed_means = [float(c[key]["mean"]) for c in group] if key else []
        pooled = [float(s) for c in group for s in c[key]["per_episode"]] if key else []
        dataset_scores = [
            float(c["score_dataset"]["mean"]) for c in group if c.get("score_dataset")
        ]
        data_scores = [
            float(c["data"][key])
            for c in group
            if key and (c.get("data") or {}).get(key) is not None
        ]
        returns = [float(c["return"]["mean"]) for c in group]
        trained = [c["train"] for c in group if c.get("train")]
        env_id = next((c["env_id"] for c in group if c.get("env_id")), None)
        published = published_score(method, env_id, dataset)
        train_wall_s = _mean([float(t["wall_s"]) for t in trained])
        eval_s_per_episode = float(np.mean([c["eval"]["s_per_episode"] for c in group]))
        episodes = sum(int(c["episodes"]) for c in group)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "seeds": [c["seed"] for c in group],
                "episodes": episodes,
                "reference": ref,
                "score_mean": _mean(seed_means),
                "score_seed_means": seed_means,
                "score_ci95_seeds": ci95(seed_means),
                "score_ci95_pooled": ci95(pooled),
                "dataset_score_mean": _mean(dataset_scores),
                "data_score": _mean(data_scores),
                "return_mean": _mean(returns),
                "return_std_seeds": float(np.std(returns, ddof=1)) if len(returns) > 1 else None,
                "train_wall_s": train_wall_s,
                "train_steps": _mean([float(t["steps"]) for t in trained]),
                "eval_s_per_episode": eval_s_per_episode,
                # what one seed of the row costs: its training (shared by tt-beam and tt-greedy)
                # plus evaluating its episodes
                "compute_s_per_seed": (train_wall_s or 0.0)
                + eval_s_per_episode * episodes / len(group),
                "ms_per_env_step": _mean([float(c["eval"]["ms_per_env_step"]) for c in group]),
                "published_d4rl": published,
                "published_source": PUBLISHED_SOURCES.get(method)
                if published is not None
                else None,
            }
        )
    return rows


def _table(suite_name: str, rows: list[dict[str, Any]], cells: list[dict[str, Any]]) -> str:
    command = next(
        (c["commands"]["suite"] for c in cells if "commands" in c),
        f"tt bench quality suite={suite_name}",
    )
    lines = [
        f"# Quality suite `{suite_name}`",
        "",
        f"Generated by `{command}` from the {len(cells)} cell JSONs in this folder (rebuild the "
        f"table and plot alone with `{command} report_only=true`).",
        "",
        "- **score**: normalized x100 (0 = random reference, 100 = expert reference), of the "
        "**last checkpoint** (the weights at the end of training, not the best checkpoint); "
        "`ref` says which references: D4RL = D4RL's "
        "published random/expert returns (HalfCheetah -280.18/12135.0, Hopper -20.27/3234.3, "
        "Walker2d 1.63/4592.3), dataset = the random and expert returns stored with the "
        "dataset. The dataset-ref score column always uses the dataset's.",
        "- **95% CI (seeds)**: t-interval over the per-seed mean scores; **(episodes)**: "
        "t-interval over all episodes of all seeds pooled (narrower: ignores seed-to-seed spread).",
        "- **return**: mean raw return over seeds ± its standard deviation across seeds.",
        "- **train time**: wall time of the one training run per seed that tt-beam and tt-greedy "
        "share (mean over seeds; the training loop's seconds summed over every session, as its "
        "last checkpoint records them; cells whose checkpoints predate that record sum the "
        "sessions that ended cleanly, see each cell's train.wall_note); behaviour trains nothing; "
        "a d3rlpy baseline (bc, td3bc, cql, iql, dt) trains its own, timed in its worker from "
        "loading the data to the last gradient step. **eval/episode**: evaluation wall time divided by episodes (envs run together in "
        "one vector env; every method is scored by the same episode loop on the same episodes).",
        "",
        "- **data**: the dataset's own mean episode return on the same scale as **score** (the "
        "data the method learned from; beating it is the point of offline RL).",
        "- **published D4RL (orientation only, different data)**: what the papers report for "
        "the method on D4RL's -v2 dataset of the same env and level (TT: the TT paper's Table 1; "
        "BC, TD3+BC, CQL, IQL, DT: the IQL paper's Table 1), D4RL-normalized. Other data, "
        "budgets and evaluation: never a result of this suite; shown only for Hopper, "
        "HalfCheetah and Walker2d medium, medium-replay and medium-expert datasets.",
        "",
        "| dataset | method | seeds | score | 95% CI (seeds) | 95% CI (episodes) | ref | data "
        "| dataset-ref score | return | train time | eval/episode | ms/env step "
        "| published D4RL (orientation only, different data) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ret = fmt(r["return_mean"])
        if r["return_std_seeds"] is not None:
            ret += f" ± {r['return_std_seeds']:.1f}"
        lines.append(
            f"| {r['dataset']} | {r['method']} | {len(r['seeds'])} | **{fmt(r['score_mean'])}** "
            f"| {fmt_ci(r['score_ci95_seeds'])} | {fmt_ci(r['score_ci95_pooled'])} "
            f"| {r['reference']} | {fmt(r['data_score'])} | {fmt(r['dataset_score_mean'])} "
            f"| {ret} "
            f"| {fmt_time(r['train_wall_s'])} | {fmt_time(r['eval_s_per_episode'])} "
            f"| {fmt(r['ms_per_env_step'], 2)} | {fmt(r['published_d4rl'])} |"
        )
    lines += _seed_table(rows)
    skipped = sorted(
        {(c["dataset"], c["method"], c["not_applicable"]) for c in cells if c.get("not_applicable")}
    )
    if skipped:
        lines += ["", "Not applicable:"]
        lines += [f"- {method} on {dataset}: {why}" for dataset, method, why in skipped]
    lines += ["", "## Budget per cell", ""]
    seen: set[str] = set()
    baselines_seen: set[str] = set()
    for cell in cells:
        if cell.get("agent") == "d3rlpy" and cell["method"] not in baselines_seen:
            baselines_seen.add(cell["method"])
            lines.append(_baseline_budget_line(cell))
        if cell["dataset"] in seen or cell.get("agent") != "planner":
            continue
        seen.add(cell["dataset"])
        cfg = cell["config"]
        t, m, p, e = cfg["train"], cfg["model"], cfg["plan"], cfg["eval"]
        lines.append(
            f"- {cell['dataset']} (preset `{Path(cell['preset']).stem}`): "
            f"{cell['train']['steps']} steps x batch {t['batch_size']} "
            f"({cell['train']['window_tokens'] / 1e6:.3g}M window tokens), model "
            f"{m['n_layer']}x{m['n_embd']} ({m['n_head']} heads), {cfg['data']['n_transitions']}-"
            f"transition windows; beam width {p['beam_width']}, horizon {p['horizon']}, expand "
            f"{p['expand']}, context {p['context']}; {e['episodes']} episodes per cell, "
            f"{e['n_envs']} envs at once"
        )
    scored = [c for c in cells if not c.get("not_applicable")]
    machines = sorted(
        {
            f"{c['machine']['platform']}, {c['machine']['cores']} cores, torch "
            f"{c['machine']['torch']}, {c['machine']['eval_device']}"
            + (f" ({c['machine']['gpu']})" if c["machine"].get("gpu") else "")
            for c in scored
        }
    )
    commits = sorted({str((c.get("git") or {}).get("commit"))[:12] for c in cells})
    dates = sorted(c["date"] for c in cells)
    lines += [
        "",
        "## Provenance",
        "",
        f"- machine(s): {'; '.join(machines)}",
        f"- commit(s): {', '.join(commits)}",
        f"- cells dated {dates[0]} to {dates[-1]}" if dates else "- no cells",
        "- each cell's JSON holds its exact config and the commands that reproduce it",
        "",
    ]
    return "\n".join(lines)


def _seed_table(rows: list[dict[str, Any]]) -> list[str]:
    """Every seed's score side by side, the mean's distance from the data, and the compute one
    seed costs: how steady each method is and what its score costs, in one table."""
    seeds = sorted({seed for r in rows for seed in r["seeds"]})
    lines = [
        "",
        "## Per seed",
        "",
        "Each seed's score (its cell's mean over episodes), the mean over seeds minus the data's "
        "own score, and one seed's compute: training (shared by tt-beam and tt-greedy) plus "
        "evaluating its episodes.",
        "",
        "| dataset | method | "
        + " | ".join(f"seed {seed}" for seed in seeds)
        + " | mean | 95% CI (seeds) | mean − data | compute per seed |",
        "|---|---|" + "---|" * len(seeds) + "---|---|---|---|",
    ]
    for r in rows:
        by_seed = dict(zip(r["seeds"], r["score_seed_means"], strict=False))
        gain = (
            None
            if r["score_mean"] is None or r["data_score"] is None
            else r["score_mean"] - r["data_score"]
        )
        lines.append(
            f"| {r['dataset']} | {r['method']} | "
            + " | ".join(fmt(by_seed.get(seed)) for seed in seeds)
            + f" | **{fmt(r['score_mean'])}** | {fmt_ci(r['score_ci95_seeds'])} "
            f"| {'—' if gain is None else f'{gain:+.1f}'} | {fmt_time(r['compute_s_per_seed'])} |"
        )
    return lines


def _baseline_budget_line(cell: dict[str, Any]) -> str:
    """A baseline's budget as its cell records it (budget level, steps, batch, network, source)."""
    train = cell["train"]
    budget = train["budget"]
    net = "-".join(str(h) for h in budget["hidden"])
    shape = (
        f"GPT {budget['layers']} layers x {net} ({budget['heads']} head(s)), context "
        f"{budget['context']}, {budget['warmup_steps']} warm-up steps"
        if budget.get("layers")
        else f"MLPs {net}"
    )
    return (
        f"- {cell['method']} (d3rlpy, budget '{train['budget_level']}'): {train['steps']} gradient "
        f"steps x batch {train['batch_size']}, {shape}; settings from {train['source']}"
    )


def _plot(suite_name: str, rows: list[dict[str, Any]]) -> bytes:
    """Per dataset: the scores as bars (top) and score against compute (bottom), the data's
    own score as a dashed line in both: where each method wins, and at what compute cost."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig = Figure(figsize=(max(4.5, 3.6 * len(datasets)), 6.8), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.subplots(2, len(datasets), sharey=True, squeeze=False)
    colors = {"tt-beam": "#3b75af", "tt-greedy": "#ef8636", "behaviour": "#519e3e",
              "bc": "#8d69b8", "td3bc": "#c53a32", "cql": "#84584e", "iql": "#d57fbe",
              "dt": "#7f7f7f"}  # fmt: skip
    marked = False
    for col, dataset in enumerate(datasets):
        bars, costs = grid[0][col], grid[1][col]
        mine = [r for r in rows if r["dataset"] == dataset]
        for i, r in enumerate(mine):
            if r["score_mean"] is None:
                continue
            color = colors.get(r["method"], "#888888")
            ci = r["score_ci95_seeds"] or r["score_ci95_pooled"]
            err = None if ci is None else [[r["score_mean"] - ci[0]], [ci[1] - r["score_mean"]]]
            bars.bar(i, r["score_mean"], color=color, yerr=err, capsize=4, alpha=0.85)
            bars.scatter([i] * len(r["score_seed_means"]), r["score_seed_means"], color="black",
                         s=10, zorder=3)  # fmt: skip
            if r.get("published_d4rl") is not None:
                bars.scatter([i], [r["published_d4rl"]], marker="D", facecolors="none",
                             edgecolors="black", s=28, zorder=4)  # fmt: skip
                marked = True
            if r["train_wall_s"] is not None:  # the cell's compute: its training + evaluation
                minutes = r["compute_s_per_seed"] / 60
                costs.errorbar([minutes], [r["score_mean"]], yerr=err, fmt="o", color=color,
                               capsize=3)  # fmt: skip
                costs.annotate(r["method"], (minutes, r["score_mean"]), fontsize=6,
                               xytext=(4, 3), textcoords="offset points")  # fmt: skip
        data_score = next((r["data_score"] for r in mine if r["data_score"] is not None), None)
        for ax in (bars, costs):
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.axhline(100, color="grey", linewidth=0.5, linestyle=":")
            if data_score is not None:
                ax.axhline(data_score, color="black", linewidth=0.8, linestyle="--")
        bars.set_xticks(range(len(mine)), [r["method"] for r in mine], fontsize=7, rotation=35,
                        ha="right")  # fmt: skip
        refs = {r["reference"] for r in mine}
        bars.set_title(f"{dataset}\n(ref: {', '.join(sorted(refs))}; dashed: the data)", fontsize=8)
        costs.set_xlim(left=0)
        costs.set_xlabel("training + evaluation wall time per seed, min", fontsize=7)
        costs.tick_params(labelsize=7)
    grid[0][0].set_ylabel("normalized score x100 (last checkpoint)", fontsize=8)
    grid[1][0].set_ylabel("score against compute", fontsize=8)
    note = "\ndiamonds: published D4RL scores (other data, orientation only)" if marked else ""
    fig.suptitle(f"{suite_name}: mean over seeds, 95% CI over seeds (pooled episodes for one seed), "
                 f"dots = seeds{note}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report(suite_name: str, results_dir: Path) -> list[dict[str, Any]]:
    """Rebuild results.md and results.png from the cell JSONs under `results_dir`; returns the rows."""
    cells = _read_cells(results_dir)
    rows = aggregate(cells)
    if not cells:
        return rows
    atomic_write_bytes(results_dir / TABLE_FILE, _table(suite_name, rows, cells).encode())
    if rows:  # only not-applicable cells so far: a table that says so, nothing to plot
        atomic_write_bytes(results_dir / PLOT_FILE, _plot(suite_name, rows))
    return rows


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
    _read_cells(layout.results_dir)  # a corrupt cell JSON stops us now, not after hours of work
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
                na = _not_applicable_cell(suite, ds, seed, method, reason)
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


_FLAGS = {"dry_run": "list", "list": "list", "report_only": "report", "report": "report"}
_VALUES = ("suite", "work_dir", "results_dir", "baselines_python")
_SELECTORS = ("datasets", "methods", "seeds")  # comma lists: the cells to run now


def parse_options(items: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """Split `tt bench quality` arguments into options and config overrides (see the module doc)."""
    options: dict[str, Any] = {"list": False, "report": False}
    overrides: list[str] = []
    queue = list(items)
    while queue:
        item = queue.pop(0)
        text = item[2:] if item.startswith("--") else item
        key, has_value, value = text.partition("=")
        name = key.replace("-", "_")
        if "." in key and has_value:
            overrides.append(text)
        elif name in _FLAGS:
            flag = yaml.safe_load(value) if has_value else True
            if not isinstance(flag, bool):
                raise TTError(f"'{item}': use {name}=true or {name}=false")
            options[_FLAGS[name]] = options[_FLAGS[name]] or flag
        elif name in _SELECTORS:
            if not has_value or not value:
                raise TTError(f"'{item}' needs a comma list: {name}=A,B")
            options[name] = [v.strip() for v in value.split(",") if v.strip()]
        elif name in _VALUES:
            if not has_value:
                if not queue:
                    raise TTError(f"'{item}' needs a value: {name}=...")
                value = queue.pop(0)
            options[name] = value
        else:
            raise TTError(
                f"tt bench quality: unknown option '{item}'; use suite=NAME, dry_run=true, "
                "report_only=true, work_dir=PATH, results_dir=PATH, baselines_python=PATH, "
                "datasets=/methods=/seeds= comma lists or section.key=value overrides"
            )
    return options, overrides


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    options, extra = parse_options(overrides or [])
    if not options.get("suite"):
        raise TTError(f"tt bench quality needs a suite: suite=NAME, one of {list_suites()}")
    suite = load_suite(options["suite"])
    if quick:
        suite = replace(suite, seeds=suite.seeds[:1], episodes=2, quick=True,
                        overrides=(*suite.overrides, *QUICK_OVERRIDES))  # fmt: skip
    suite = select(suite, *(options.get(k, ()) for k in _SELECTORS))
    default = Layout.default(suite, quick)
    layout = Layout(
        Path(options.get("work_dir") or default.work_dir),
        Path(options.get("results_dir") or default.results_dir),
    )
    for ds in suite.datasets:  # the overrides are checked before anything runs
        for seed in suite.seeds:
            cell_config(suite, ds, seed, extra)
    if options["list"]:
        _print_status(suite, layout, json_lines, options.get("baselines_python"))
        return 0
    failed: list[str] = []
    if not options["report"]:
        run_suite(suite, layout, extra, json_lines=json_lines,
                  baselines_python_path=options.get("baselines_python"), failed=failed)  # fmt: skip
    rows = write_report(suite.name, layout.results_dir)
    if not rows:
        print(f"no results under {layout.results_dir} yet", file=sys.stderr)
    elif not json_lines:
        print(layout.table.read_text())
        print(f"plot: {layout.plot}")
    elif options["report"]:
        for row in rows:
            print(json.dumps(row))
    for line in failed:  # after the table, so the reason is the last thing on screen
        print(f"not done: {line}", file=sys.stderr)
    return 1 if failed else 0
