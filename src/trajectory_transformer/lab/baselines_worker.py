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
(`as_stateful_wrapper`), conditioned on the dataset's best episode return (see `_dt_target`).

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
import hashlib
import itertools
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EvalConfig, config_from_dict
from ..data.mdp import MDPArrays, episode_bounds, load_mdp_arrays
from ..errors import TTError
from ..utils import atomic_write_json, read_json
from .baselines import BASELINES, REQUEST_SCHEMA, RESULT_SCHEMA, Budget, budget_for
from .records import machine_info

__all__ = ["DecisionTransformerAgent", "QPolicyAgent", "main", "run_request"]


# ------------------------------------------------------------------------------ agents
class QPolicyAgent:
    """A d3rlpy policy without memory (BC, TD3+BC, CQL, IQL), batched over env slots.

    `predict` is the deterministic action (the actor's output, or the mean of IQL's Gaussian),
    as d3rlpy's own environment evaluator uses.
    """

    def __init__(self, algo: Any) -> None:
        self.algo = algo

    def reset(self, slots: np.ndarray) -> None:
        pass

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        actions = self.algo.predict(np.asarray(observations, dtype=np.float32))
        return np.asarray(actions, dtype=np.float32).reshape(len(slots), -1)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class DecisionTransformerAgent:
    """Decision Transformer: one d3rlpy stateful wrapper per env slot.

    Each wrapper keeps its episode's context (observations, actions, returns-to-go, timesteps)
    and starts from `target_return`; the reward of each step is fed to the next `predict`, which
    lowers the return-to-go, exactly as d3rlpy's `evaluate_transformer_with_environment` does.
    """

    def __init__(self, algo: Any, target_return: float) -> None:
        self.algo = algo
        self.target_return = float(target_return)
        self.wrappers: dict[int, Any] = {}
        self.last_reward: dict[int, float] = {}

    def reset(self, slots: np.ndarray) -> None:
        for slot in map(int, slots):
            wrapper = self.wrappers.get(slot)
            if wrapper is None:
                self.wrappers[slot] = self.algo.as_stateful_wrapper(self.target_return)
            else:
                wrapper.reset()
            self.last_reward[slot] = 0.0  # d3rlpy's evaluator starts each episode with 0

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        actions = [
            np.asarray(self.wrappers[s].predict(obs, self.last_reward[s]), np.float32).reshape(-1)
            for s, obs in zip(map(int, slots), np.asarray(observations, np.float32))
        ]
        return np.stack(actions)  # (k, act_dim)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        for slot, reward in zip(map(int, slots), rewards):
            self.last_reward[slot] = float(reward)


# ------------------------------------------------------------------------------ d3rlpy objects
def mdp_dataset(d3rlpy: Any, arrays: MDPArrays) -> Any:
    """d3rlpy's `MDPDataset` of `arrays`, checked to hold exactly our episodes."""
    dataset = d3rlpy.dataset.MDPDataset(
        observations=arrays.observations,
        actions=arrays.actions,
        rewards=arrays.rewards,
        terminals=arrays.terminals,
        timeouts=arrays.timeouts,
        action_space=d3rlpy.ActionSpace.CONTINUOUS,
        action_size=int(arrays.actions.shape[1]),
    )
    starts = episode_bounds(arrays.terminals, arrays.timeouts)
    episodes = dataset.episodes
    ours = [(int(b - a), bool(arrays.terminals[b - 1])) for a, b in itertools.pairwise(starts)]
    theirs = [(int(ep.size()), bool(ep.terminated)) for ep in episodes]
    same = ours == theirs and np.array_equal(
        np.concatenate([ep.observations for ep in episodes]), arrays.observations
    )
    if not same:
        raise TTError("d3rlpy's MDPDataset does not hold our episodes one for one; not training")
    return dataset


def _action_scaler(d3rlpy: Any, low: np.ndarray, high: np.ndarray) -> Any:
    """d3rlpy's continuous policies act in [-1, 1] (tanh); other Box bounds (Pendulum's ±2) are
    mapped with a min-max scaler. Hopper-like [-1, 1] spaces get none, as in the sources."""
    if np.all(low == -1.0) and np.all(high == 1.0):
        return None
    return d3rlpy.preprocessing.MinMaxActionScaler(
        minimum=low.astype(np.float32), maximum=high.astype(np.float32)
    )


def _dt_target(arrays: MDPArrays) -> float:
    """DT's target return: the best episode return in the data.

    d3rlpy's reproduction conditions on fixed, D4RL-specific returns (hopper 3600, halfcheetah
    6000, walker2d 5000: about the expert's); those mean nothing for other envs or data. The
    data's best return works for any env (also negative-return ones like Pendulum) and asks for
    the best behaviour the data has shown, which is what DT is trained to reproduce.
    """
    return float(arrays.episode_returns().max())


def build_algo(
    d3rlpy: Any, method: str, budget: Budget, arrays: MDPArrays, action_scaler: Any, device: Any
) -> Any:
    """The d3rlpy algorithm of `method` with the sources' settings and `budget`'s compute.

    Sources per method: `baselines.BASELINES[method].source`; the only changes are the budget's
    (steps, and DT's warm-up and IQL's cosine schedule length, which follow the steps).
    """
    encoder = d3rlpy.models.VectorEncoderFactory(list(budget.hidden))
    standard = d3rlpy.preprocessing.StandardObservationScaler
    if method == "bc":  # CORL any_percent_bc.py: Adam 3e-4, normalized states, tanh MLP actor
        cfg: Any = d3rlpy.algos.BCConfig(
            batch_size=budget.batch_size,
            learning_rate=3e-4,
            encoder_factory=encoder,
            observation_scaler=standard(),
            action_scaler=action_scaler,
        )
    elif method == "td3bc":  # d3rlpy reproductions/offline/td3_plus_bc.py
        cfg = d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            batch_size=budget.batch_size,
            target_smoothing_sigma=0.2,
            target_smoothing_clip=0.5,
            alpha=2.5,
            update_actor_interval=2,
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            observation_scaler=standard(),
            action_scaler=action_scaler,
        )
    elif method == "cql":  # d3rlpy reproductions/offline/cql.py (conservative_weight: see source)
        cfg = d3rlpy.algos.CQLConfig(
            actor_learning_rate=1e-4,
            critic_learning_rate=3e-4,
            temp_learning_rate=1e-4,
            alpha_learning_rate=3e-4,
            initial_alpha=math.e,
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            batch_size=budget.batch_size,
            n_action_samples=10,
            alpha_threshold=10,
            conservative_weight=5.0,
            action_scaler=action_scaler,
        )
    elif method == "iql":  # d3rlpy reproductions/offline/iql.py (cosine T_max = all steps)
        cfg = d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            actor_optim_factory=d3rlpy.optimizers.AdamFactory(
                lr_scheduler_factory=d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=budget.steps)
            ),
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            value_encoder_factory=encoder,
            batch_size=budget.batch_size,
            weight_temp=3.0,
            max_weight=100.0,
            expectile=0.7,
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0),
            action_scaler=action_scaler,
        )
    elif method == "dt":  # d3rlpy reproductions/offline/decision_transformer.py
        longest = int(np.diff(episode_bounds(arrays.terminals, arrays.timeouts)).max())
        cfg = d3rlpy.algos.DecisionTransformerConfig(
            batch_size=budget.batch_size,
            learning_rate=1e-4,
            optim_factory=d3rlpy.optimizers.AdamWFactory(
                weight_decay=1e-4,
                clip_grad_norm=0.25,
                lr_scheduler_factory=d3rlpy.optimizers.WarmupSchedulerFactory(
                    warmup_steps=max(budget.warmup_steps, 1)
                ),
            ),
            encoder_factory=d3rlpy.models.VectorEncoderFactory(
                list(budget.hidden), exclude_last_activation=True
            ),
            observation_scaler=standard(),
            reward_scaler=d3rlpy.preprocessing.MultiplyRewardScaler(0.001),
            action_scaler=action_scaler,
            position_encoding_type=d3rlpy.PositionEncodingType.SIMPLE,
            context_size=budget.context,
            num_heads=budget.heads,
            num_layers=budget.layers,
            max_timestep=max(1000, longest + 1),  # the source's 1000, or the longest episode's
        )
    else:
        raise TTError(f"'{method}' is not a baseline; use one of {list(BASELINES)}")
    return cfg.create(device=device)


def _device(name: str) -> str:
    """Our device names (auto, cpu, cuda, cuda:N) as d3rlpy's ('cpu:0', 'cuda:N')."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TTError(f"device '{name}' was asked for but CUDA is not available; use cpu")
    return name if ":" in name else f"{name}:0"


CHECKPOINT_PARTS = 10
"""A cell saves a checkpoint every 1/CHECKPOINT_PARTS of its steps, and at its last step."""


def checkpoint_every(steps: int) -> int:
    return steps // CHECKPOINT_PARTS if steps % CHECKPOINT_PARTS == 0 else steps


def fit(
    d3rlpy: Any,
    algo: Any,
    dataset: Any,
    steps: int,
    echo: Any = print,
    start: int = 0,
    every: int | None = None,
    on_checkpoint: Any = None,
) -> dict[str, float]:
    """Gradient steps `start`+1 .. `steps` (d3rlpy writes no files); the last logged losses.

    `on_checkpoint(step)` runs after every `every`-th step and after the last one. d3rlpy counts
    epochs of `per_epoch` steps; it divides both `steps` and `every`, so a resumed fit runs the
    same epochs (and logs the same per-epoch mean losses) as an uninterrupted one.
    """
    every = every or steps
    per_epoch = math.gcd(steps, every, 1000)
    report_every = max(per_epoch, steps // 10)
    clock = time.perf_counter()
    last: dict[str, float] = {}
    if start >= steps:
        return last

    def callback(algo: Any, epoch: int, step: int) -> None:
        done = start + step
        if done % report_every == 0 or done == steps:
            echo(f"step {done}/{steps} after {time.perf_counter() - clock:.0f} s", flush=True)
        if on_checkpoint is not None and (done % every == 0 or done == steps):
            on_checkpoint(done)

    kwargs: dict[str, Any] = {
        "n_steps": steps - start,
        "n_steps_per_epoch": per_epoch,
        "logger_adapter": d3rlpy.logging.NoopAdapterFactory(),
        "show_progress": False,
        "save_interval": steps + 1,  # never: the no-op logger would drop it anyway
        "callback": callback,
    }
    history = algo.fit(dataset, **kwargs)
    if history:  # Q-learning fit returns [(epoch, metrics)]; the transformer fit returns None
        last = {k: float(v) for k, v in history[-1][1].items() if isinstance(v, int | float)}
    return last


# ------------------------------------------------------------------------------ checkpoints
def _training_parts(algo: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The algorithm's networks and its optimizers (d3rlpy's own list of what its checkpoints
    hold: every torch module and optimizer wrapper of `algo.impl.modules`)."""
    import torch

    parts = algo.impl.modules.create_checkpointer("cpu:0").modules
    networks = {k: v for k, v in parts.items() if isinstance(v, torch.nn.Module)}
    optimizers = {k: v for k, v in parts.items() if k not in networks}
    return networks, optimizers


def save_algo_checkpoint(
    folder: Path, step: int, algo: Any, fingerprint: str, fit_s: float
) -> Path:
    """checkpoints/step_<step>/ in `folder`: weights and optimizers as safetensors; learning-rate
    schedules, d3rlpy's step counter, every RNG and the fit seconds so far as JSON
    (training/checkpoint.py writes it atomically); older checkpoints of the cell are then deleted."""
    import torch

    from .. import runs
    from ..training.checkpoint import merge_optimizer_states, save_checkpoint
    from ..training.rng import rng_state

    networks, optimizers = _training_parts(algo)
    weights = {f"{name}.{k}": v for name, net in networks.items()
               for k, v in net.state_dict().items()}  # fmt: skip
    wrapped = {name: opt.state_dict() for name, opt in optimizers.items()}
    state = {
        "grad_step": int(algo.grad_step),
        "schedulers": {name: w.get("lr_scheduler") for name, w in wrapped.items()},
        "rng": rng_state(torch.device(algo.impl.device)),
        "request": fingerprint,
        "fit_s": fit_s,
    }
    path = save_checkpoint(folder, step, weights,
                           merge_optimizer_states({n: w["optim"] for n, w in wrapped.items()}),
                           state)  # fmt: skip
    for _, older in runs.list_checkpoints(folder)[:-1]:
        shutil.rmtree(older, ignore_errors=True)
    return path


def load_algo_checkpoint(path: Path, algo: Any, fingerprint: str) -> tuple[int, float]:
    """Restore `algo` (built, not trained) to the checkpoint at `path`; its step and fit seconds."""
    import torch

    from ..training.checkpoint import load_checkpoint, split_optimizer_states
    from ..training.rng import set_rng_state

    ckpt = load_checkpoint(path, device="cpu")
    if ckpt.state.get("request") != fingerprint:
        raise TTError(
            f"{path}: a checkpoint of another request (method, budget, data or seed changed); "
            f"delete {path.parent} to train this cell from scratch"
        )
    networks, optimizers = _training_parts(algo)
    device = algo.impl.device
    try:
        for name, net in networks.items():
            prefix = f"{name}."
            net.load_state_dict({k[len(prefix):]: v.to(device) for k, v in ckpt.model.items()
                                 if k.startswith(prefix)})  # fmt: skip
        per_optimizer = split_optimizer_states(ckpt.optimizer)
        for name, opt in optimizers.items():
            opt.load_state_dict({"optim": per_optimizer[name],
                                 "lr_scheduler": ckpt.state["schedulers"].get(name)})  # fmt: skip
    except (KeyError, RuntimeError, ValueError) as err:
        raise TTError(
            f"{path}: does not fit this algorithm ({err}); delete {path.parent} to start again"
        ) from err
    algo.set_grad_step(int(ckpt.state["grad_step"]))
    set_rng_state(ckpt.state["rng"], torch.device(device))
    return ckpt.step, float(ckpt.state.get("fit_s", 0.0))


def build_for_resume(algo: Any, dataset: Any) -> None:
    """Fit the scalers and build the networks as d3rlpy's `fit` would before its first step, so
    a checkpoint can be loaded into them (then `fit` skips both). The helpers are d3rlpy 2.8's
    own (`d3rlpy.algos.utility`), the ones its fit calls."""
    from d3rlpy.algos.utility import (
        build_scalers_with_trajectory_slicer,
        build_scalers_with_transition_picker,
    )

    transformer = hasattr(algo, "as_stateful_wrapper")
    build = (
        build_scalers_with_trajectory_slicer
        if transformer
        else build_scalers_with_transition_picker
    )
    build(algo, dataset)
    algo.build_with_dataset(dataset)


def request_fingerprint(request: dict[str, Any]) -> str:
    """What a checkpoint must match to be resumed: everything that changes training."""
    keys = ("method", "budget_level", "budget", "dataset", "seed", "data")
    chosen = json.dumps({k: request.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(chosen.encode()).hexdigest()


def train_resumable(
    d3rlpy: Any,
    algo: Any,
    dataset: Any,
    steps: int,
    folder: Path | None,
    fingerprint: str,
    echo: Any = print,
) -> tuple[dict[str, float], int, float]:
    """Train `algo` to `steps`, from the newest checkpoint in `folder` when there is one, saving
    checkpoints there as it goes; (last losses, the step it started from, fit seconds of every
    session). Losses are {} when the checkpoint was already at `steps` (only scoring was left)."""
    from .. import runs

    start, before = 0, 0.0
    latest = runs.latest_checkpoint(folder) if folder is not None else None
    if latest is not None:
        build_for_resume(algo, dataset)
        start, before = load_algo_checkpoint(latest, algo, fingerprint)
        echo(f"resuming from {latest} (step {start}/{steps})", flush=True)
    clock = time.perf_counter()

    def save(step: int) -> None:
        assert folder is not None
        save_algo_checkpoint(folder, step, algo, fingerprint, before + time.perf_counter() - clock)

    losses = fit(d3rlpy, algo, dataset, steps, echo, start=start, every=checkpoint_every(steps),
                 on_checkpoint=save if folder is not None else None)  # fmt: skip
    return losses, start, before + time.perf_counter() - clock


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
    from ..data.spaces import flat_bounds
    from ..envs.factory import check_env_spaces, env_factory
    from ..evaluation.evaluate import evaluate_agent

    method, spec, seed = str(request["method"]), str(request["dataset"]), int(request["seed"])
    budget = budget_for(method, str(request["budget_level"]))
    if Budget(**{**request["budget"], "hidden": tuple(request["budget"]["hidden"])}) != budget:
        raise TTError(f"the request's budget differs from {method}'s {request['budget_level']} one")
    eval_cfg = config_from_dict(request["eval"], EvalConfig, "eval.")
    data = request["data"]
    device = _device(str(request["device"]))

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
    algo = build_algo(d3rlpy, method, budget, arrays, _action_scaler(d3rlpy, low, high), device)
    loaded = time.perf_counter()
    echo(f"{method} on {spec} seed {seed}: {arrays.n_transitions} transitions, "
         f"{len(dataset.episodes)} episodes, {budget.steps} steps on {device}", flush=True)  # fmt: skip
    losses, resumed_from, fit_s = train_resumable(d3rlpy, algo, dataset, budget.steps, checkpoints,
                                                  request_fingerprint(request), echo)  # fmt: skip

    target = _dt_target(arrays) if method == "dt" else None
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
        else "DT conditions on the dataset's best episode return (see baselines_worker._dt_target)",
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
    from ..training.checkpoint import merge_optimizer_states, optimizer_state_to_tensors

    networks, optimizers = _training_parts(algo)
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

    from ..envs.loop import rollout

    arrays = _synthetic_arrays(np.random.default_rng(0))
    low, high = np.array([-2.0]), np.array([2.0])
    for method in BASELINES:
        start = time.perf_counter()
        d3rlpy.seed(0)
        budget = budget_for(method, "smoke")
        budget = dataclasses.replace(budget, steps=4, batch_size=8, context=min(budget.context, 4))
        dataset = mdp_dataset(d3rlpy, arrays)
        algo = build_algo(d3rlpy, method, budget, arrays, _action_scaler(d3rlpy, low, high),
                          "cpu:0")  # fmt: skip
        fit(d3rlpy, algo, dataset, budget.steps, echo=lambda *a, **k: None)
        agent: Any = (
            DecisionTransformerAgent(algo, _dt_target(arrays))
            if method == "dt"
            else QPolicyAgent(algo)
        )
        result = rollout(lambda: gym.make("Pendulum-v1"), agent, episodes=2, n_envs=2,
                         max_episode_steps=5, progress=False)  # fmt: skip
        if result.env_steps != 10:
            raise TTError(f"check: {method} ran {result.env_steps} env steps, expected 10")
        check_resume(d3rlpy, method, dataclasses.replace(budget, steps=30), arrays,
                     _action_scaler(d3rlpy, low, high))  # fmt: skip
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
