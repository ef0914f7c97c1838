"""A quality suite as data: its YAML file (configs/suites/), the methods, and each cell's config.

A suite names datasets (each with a preset), methods, seeds and evaluation episodes; `cell_config`
is the run config of one dataset and seed with the suite's overrides and the forced keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from ..config import (
    PRESET_DIR,
    RunConfig,
    find_yaml,
    load_config,
)
from ..errors import ConfigError, TTError
from .baselines import (
    BASELINES,
    BUDGET_LEVELS,
)

__all__ = [
    "ALL_METHODS",
    "METHODS",
    "SCHEMA",
    "SUITE_DIR",
    "Suite",
    "SuiteDataset",
    "cell_config",
    "list_suites",
    "load_suite",
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
    slugs = [dataset_slug(d.dataset) for d in datasets]
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

    by_name = {d.dataset: d for d in suite.datasets} | {
        dataset_slug(d.dataset): d for d in suite.datasets
    }
    chosen_datasets = pick(datasets, by_name, "datasets")
    chosen_methods = pick(methods, {m: m for m in suite.methods}, "methods")
    chosen_seeds = pick(seeds, {str(s): s for s in suite.seeds}, "seeds")
    return replace(
        suite,
        datasets=tuple(d for d in suite.datasets if not datasets or d in chosen_datasets),
        methods=tuple(m for m in suite.methods if not methods or m in chosen_methods),
        seeds=tuple(s for s in suite.seeds if not seeds or s in chosen_seeds),
    )


def dataset_slug(dataset: str) -> str:
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
        f"name={suite.name}-{dataset_slug(ds.dataset)}-seed{seed}",
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
