"""One quality cell: train (or resume) its run, evaluate it, and write its self-describing result.

TT's methods train and evaluate here; the d3rlpy baselines run in their own venv (baselines.py).
Every result records its config, commands, machine and the data's own score.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, runs
from ..config import (
    RunConfig,
    apply_overrides,
    config_to_dict,
)
from ..data.episodes import dataset_returns
from ..errors import TTError
from ..evaluation.evaluate import evaluate_run
from ..evaluation.metrics import (
    Reference,
    normalized_score,
)
from ..store import collect_record
from ..training.setup import StepCallback
from ..training.trainer import train
from ..utils import atomic_write_json, read_json, resolve_device
from .baselines import (
    BASELINES,
    request_for,
    run_worker,
    worker_command,
)
from .ledger import Layout, _read_ledger
from .records import (
    d4rl_reference,
    evaluation_reference,
    git_info,
    machine_info,
    now_iso,
    score_summary,
)
from .suite import (
    _RUNTIME_KEYS,
    CHECKPOINT_NOTE,
    METHODS,
    SCHEMA,
    Suite,
    SuiteDataset,
    _train_overrides,
    _value,
)

__all__ = [
    "baseline_cell",
    "not_applicable",
]


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


def not_applicable_cell(
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
