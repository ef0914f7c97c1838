"""Resumable d3rlpy training: a checkpoint every 1/10 of a cell's steps holding the algorithm's
weights, optimizer states and RNG, tied to the request it was made for (a fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import TTError
from ..training.checkpoint import (
    load_checkpoint,
    merge_optimizer_states,
    save_checkpoint,
    split_optimizer_states,
)
from ..training.rng import rng_state, set_rng_state
from .d3rlpy_algos import checkpoint_every, fit


# ------------------------------------------------------------------------------ checkpoints
def training_parts(algo: Any) -> tuple[dict[str, Any], dict[str, Any]]:
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

    networks, optimizers = training_parts(algo)
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

    ckpt = load_checkpoint(path, device="cpu")
    if ckpt.state.get("request") != fingerprint:
        raise TTError(
            f"{path}: a checkpoint of another request (method, budget, data or seed changed); "
            f"delete {path.parent} to train this cell from scratch"
        )
    networks, optimizers = training_parts(algo)
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
