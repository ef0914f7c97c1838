"""One baseline cell in the d3rlpy venv: train a d3rlpy method on our data, score it with our loop.

Run by `tt bench quality` (lab/baselines.py) as

    <.venv-baselines>/bin/python -m trajectory_transformer.lab.baselines_worker \
        --request REQUEST.json --result RESULT.json

and by `make baselines` as `... --check` (every method builds, fits a few steps on synthetic data
and acts in Pendulum-v1 through our episode loop). Only this module imports d3rlpy.

What makes the comparison with TT fair (only the method differs):
- data: `data.mdp.load_mdp_arrays` — our loader, the same episodes (and `data.max_episodes`
  subset, seeded like TT's training), observations and actions flattened as TT sees them,
  terminations and truncations kept apart (`terminals` vs `timeouts`); the `MDPDataset` built
  here is checked to hold exactly those episodes. Rewards are the env's (no TT −100 penalty).
- evaluation: `evaluation.evaluate.evaluate_agent` — the env made from the dataset's spec by
  `envs.factory`, the one episode loop (`envs.loop`), episode i reset with `eval.seed + i`
  (the suite sets eval.seed = eval_seed + k·episodes for seed k, as for TT), the same episode
  count, the same normalized-score formula and references.
- the score is the policy at the LAST gradient step (no checkpoint selection), as for TT.

Policies act deterministically: `predict` (the greedy / mean action) for BC, TD3+BC, CQL and IQL,
batched over env slots; Decision Transformer through one d3rlpy stateful wrapper per env slot
(`as_stateful_wrapper`), conditioned on the dataset's best episode return (see `dt_target`).

Resumable: every 1/10 of its steps and at its last step the worker saves a checkpoint to
`checkpoints/step_<N>/` beside the result (networks and optimizer states as safetensors;
learning-rate schedules, d3rlpy's step counter and every RNG state as JSON; the newest one only).
A cell that is interrupted continues from there, bit for bit as if it had not stopped (`--check`
tests this for every method), and an interrupted evaluation does not retrain. A checkpoint made
for another request (method, budget, data or seed) is refused with a line saying to delete it.

Nothing is unpickled: d3rlpy's own model files (torch.save) are never written or read, its logger
is the no-op one, and our checkpoints hold only tensors and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EvalConfig, config_from_dict
from ..data.mdp import MDPArrays, load_mdp_arrays
from ..data.spaces import flat_bounds
from ..envs.factory import check_env_spaces, env_factory
from ..envs.loop import rollout
from ..errors import TTError
from ..evaluation.evaluate import evaluate_agent
from ..training.checkpoint import merge_optimizer_states, optimizer_state_to_tensors
from ..utils import atomic_write_json, read_json
from .baselines import BASELINES, REQUEST_SCHEMA, RESULT_SCHEMA, Budget, budget_for
from .d3rlpy_algos import (
    DecisionTransformerAgent,
    QPolicyAgent,
    action_scaler,
    build_algo,
    checkpoint_every,
    d3rlpy_device,
    dt_target,
    fit,
    mdp_dataset,
)
from .d3rlpy_checkpoints import (
    request_fingerprint,
    save_algo_checkpoint,
    train_resumable,
    training_parts,
)
from .records import machine_info

__all__ = ["main", "run_request"]


# ------------------------------------------------------------------------------ one cell
def _check_own_code(package_root: str) -> None:
    """Run only the source tree the main process runs (PYTHONPATH), not an installed copy."""
    here = Path(__file__).resolve().parents[2]
    if Path(package_root).resolve() != here:
        raise TTError(
            f"the worker runs the package from {here}, but tt bench quality runs it from "
            f"{package_root}; start the worker with PYTHONPATH={package_root}"
        )


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for name in ("d3rlpy", "torch", "gymnasium", "numpy", "minari"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


def run_request(
    request: dict[str, Any], echo: Any = print, checkpoints: Path | None = None
) -> dict[str, Any]:
    """Train and score one cell as `request` says; returns the result (plain JSON).

    `checkpoints`: the cell's folder, where training resumes from and saves its checkpoints.
    """
    if request.get("schema") != REQUEST_SCHEMA:
        raise TTError(f"not a {REQUEST_SCHEMA} request")
    _check_own_code(str(request["package_root"]))

    method, spec, seed = str(request["method"]), str(request["dataset"]), int(request["seed"])
    budget = budget_for(method, str(request["budget_level"]))
    if Budget(**{**request["budget"], "hidden": tuple(request["budget"]["hidden"])}) != budget:
        raise TTError(f"the request's budget differs from {method}'s {request['budget_level']} one")
    eval_cfg = config_from_dict(request["eval"], EvalConfig, "eval.")
    data = request["data"]
    device = d3rlpy_device(str(request["device"]))

    import d3rlpy

    start = time.perf_counter()
    arrays, info = load_mdp_arrays(spec, data["max_episodes"], data["drop_bad_episodes"], seed)
    where = f"dataset '{spec}'"
    make_env = env_factory(info, eval_cfg.max_episode_steps, trust_env_code=eval_cfg.trust_env_code,
                           source=where, env_kwargs=eval_cfg.env_kwargs)  # fmt: skip
    env = make_env()
    try:
        check_env_spaces(env, info, where=where)
        low, high = flat_bounds(env.action_space)
    finally:
        env.close()
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise TTError(f"{where}: the d3rlpy baselines need a bounded Box action space")
    d3rlpy.seed(seed)
    dataset = mdp_dataset(d3rlpy, arrays)
    algo = build_algo(d3rlpy, method, budget, arrays, action_scaler(d3rlpy, low, high), device)
    loaded = time.perf_counter()
    echo(f"{method} on {spec} seed {seed}: {arrays.n_transitions} transitions, "
         f"{len(dataset.episodes)} episodes, {budget.steps} steps on {device}", flush=True)  # fmt: skip
    losses, resumed_from, fit_s = train_resumable(d3rlpy, algo, dataset, budget.steps, checkpoints,
                                                  request_fingerprint(request), echo)  # fmt: skip

    target = dt_target(arrays) if method == "dt" else None
    agent: Any = (
        DecisionTransformerAgent(algo, target) if target is not None else QPolicyAgent(algo)
    )
    summary = evaluate_agent(make_env, agent, eval_cfg, info, desc=method,
                             ref_min_score=data["ref_min_score"],
                             ref_max_score=data["ref_max_score"])  # fmt: skip
    echo(f"scored: return {summary['return_mean']:.1f} over {summary['episodes']} episodes",
         flush=True)  # fmt: skip
    return {
        "schema": RESULT_SCHEMA,
        "method": method,
        "dataset": spec,
        "seed": seed,
        "summary": summary,
        "train": {
            "steps": budget.steps,
            "batch_size": budget.batch_size,
            "budget_level": request["budget_level"],
            "budget": request["budget"],
            "source": BASELINES[method].source,
            "wall_s": (loaded - start) + fit_s,
            "wall_note": "worker: loading the data, building the MDPDataset and the networks, "
            "then every gradient step of every session (interpreter start and d3rlpy import "
            "not included)",
            "fit_s": fit_s,
            "steps_per_s": budget.steps / fit_s if fit_s > 0 else None,
            "resumed_from_step": resumed_from,
            "last_losses": losses,
            "checkpoint": "last",
            "checkpoint_step": budget.steps,
            "device": device,
        },
        "data": {
            "transitions": arrays.n_transitions,
            "episodes": len(dataset.episodes),
            "terminated_episodes": int(arrays.terminals.sum()),
            "timeout_episodes": int(arrays.timeouts.sum()),
            "dropped_episodes": info.dropped_episodes,
            "rewards": "the env's (no termination penalty)",
        },
        "target_return": target,
        "target_return_note": None
        if target is None
        else "DT conditions on the dataset's best episode return (see baselines_worker.dt_target)",
        "versions": _versions(),
        "machine": machine_info(device),
    }


# ------------------------------------------------------------------------------ --check
def _synthetic_arrays(rng: np.random.Generator) -> MDPArrays:
    """Three Pendulum-shaped episodes: one terminated, one truncated, one cut (neither flag)."""
    lengths, ends = (30, 25, 20), ("terminal", "timeout", "timeout")
    n = sum(lengths)
    terminals, timeouts = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for end, kind in zip(np.cumsum(lengths) - 1, ends):
        (terminals if kind == "terminal" else timeouts)[end] = 1.0
    return MDPArrays(
        observations=rng.normal(size=(n, 3)).astype(np.float32),
        actions=rng.uniform(-2, 2, size=(n, 1)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        terminals=terminals,
        timeouts=timeouts,
    )


class _Interrupted(Exception):
    """Stands in for a killed worker in `check_resume`."""


def _training_tensors(algo: Any) -> dict[str, Any]:
    """Every tensor training changes: network weights and optimizer states."""

    networks, optimizers = training_parts(algo)
    tensors = {f"{n}.{k}": v for n, net in networks.items() for k, v in net.state_dict().items()}
    merged = merge_optimizer_states({n: o.state_dict()["optim"] for n, o in optimizers.items()})
    opt_tensors, _ = optimizer_state_to_tensors(merged)
    return {**tensors, **{f"optimizer/{k}": v for k, v in opt_tensors.items()}}


def check_resume(d3rlpy: Any, method: str, budget: Budget, arrays: MDPArrays, scaler: Any) -> None:
    """Training straight through equals training, being stopped at half way and resuming from
    the checkpoint in a new algorithm object: every weight and optimizer tensor bit for bit."""
    import torch

    quiet = lambda *a, **k: None  # noqa: E731
    fingerprint, half = f"check {method}", budget.steps // 2
    if half % checkpoint_every(budget.steps):
        raise TTError(f"check: {budget.steps} steps have no checkpoint at half way")

    def fresh() -> tuple[Any, Any]:
        d3rlpy.seed(0)
        return mdp_dataset(d3rlpy, arrays), build_algo(d3rlpy, method, budget, arrays, scaler,
                                                       "cpu:0")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        straight_dir, stopped_dir = Path(tmp) / "straight", Path(tmp) / "stopped"
        dataset, algo = fresh()
        train_resumable(d3rlpy, algo, dataset, budget.steps, straight_dir, fingerprint, quiet)
        straight = _training_tensors(algo)

        dataset, algo = fresh()

        def stop_half_way(step: int) -> None:
            save_algo_checkpoint(stopped_dir, step, algo, fingerprint, 0.0)
            if step == half:
                raise _Interrupted

        with contextlib.suppress(_Interrupted):
            fit(d3rlpy, algo, dataset, budget.steps, quiet,
                every=checkpoint_every(budget.steps), on_checkpoint=stop_half_way)  # fmt: skip
        dataset, algo = fresh()
        _, start, _ = train_resumable(d3rlpy, algo, dataset, budget.steps, stopped_dir,
                                      fingerprint, quiet)  # fmt: skip
        resumed = _training_tensors(algo)
    differ = sorted(
        k for k in straight if k not in resumed or not torch.equal(straight[k], resumed[k])
    )
    if start != half or differ or set(straight) != set(resumed):
        raise TTError(
            f"check: {method} resumed at step {start} (expected {half}) and differs from the "
            f"uninterrupted run in {differ[:3] or sorted(set(straight) ^ set(resumed))[:3]}"
        )


def check(echo: Any = print) -> int:
    """Every baseline builds, fits a few steps and acts in Pendulum-v1 through our loop, and
    resumes from a checkpoint bit for bit."""
    import d3rlpy
    import gymnasium as gym

    arrays = _synthetic_arrays(np.random.default_rng(0))
    low, high = np.array([-2.0]), np.array([2.0])
    for method in BASELINES:
        start = time.perf_counter()
        d3rlpy.seed(0)
        budget = budget_for(method, "smoke")
        budget = dataclasses.replace(budget, steps=4, batch_size=8, context=min(budget.context, 4))
        dataset = mdp_dataset(d3rlpy, arrays)
        algo = build_algo(d3rlpy, method, budget, arrays, action_scaler(d3rlpy, low, high),
                          "cpu:0")  # fmt: skip
        fit(d3rlpy, algo, dataset, budget.steps, echo=lambda *a, **k: None)
        agent: Any = (
            DecisionTransformerAgent(algo, dt_target(arrays))
            if method == "dt"
            else QPolicyAgent(algo)
        )
        result = rollout(lambda: gym.make("Pendulum-v1"), agent, episodes=2, n_envs=2,
                         max_episode_steps=5, progress=False)  # fmt: skip
        if result.env_steps != 10:
            raise TTError(f"check: {method} ran {result.env_steps} env steps, expected 10")
        check_resume(d3rlpy, method, dataclasses.replace(budget, steps=30), arrays,
                     action_scaler(d3rlpy, low, high))  # fmt: skip
        echo(f"check: {method} fit {budget.steps} steps, acted 10 env steps in Pendulum-v1 and "
             f"resumed 30 steps from step 15 bit for bit ({time.perf_counter() - start:.1f} s)")  # fmt: skip
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
    echo(f"check: all {len(BASELINES)} baselines work here ({versions})")
    return 0


# ------------------------------------------------------------------------------ entry point
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m " + __spec__.name if __spec__ else None,
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--request", type=Path, help="the cell's request JSON")
    parser.add_argument("--result", type=Path, help="where to write the result JSON")
    parser.add_argument("--check", action="store_true", help="check that every baseline works")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check()
        if args.request is None or args.result is None:
            parser.error("give --request and --result (or --check)")
        request = read_json(args.request, "baseline request")
        if not isinstance(request, dict):
            raise TTError(f"{args.request}: not a baseline request")
        atomic_write_json(args.result, run_request(request, checkpoints=args.result.parent))
    except TTError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
