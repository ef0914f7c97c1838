"""Training checkpoints: weights, optimizer state and the trainer's JSON state, as one folder.

`checkpoints/step_<N>/` (see `runs.py` for the whole run folder) holds model.safetensors,
optimizer.safetensors and state.json. A checkpoint folder is written under a temporary name and
renamed into place as a whole, so a crash or a full disk leaves the previous checkpoints intact.
Nothing is pickled: the optimizer state is split into tensors (safetensors) and JSON.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import TTError
from ..runs import CHECKPOINT_DIR, WEIGHTS_FILE, list_checkpoints, load_weights, save_weights
from ..utils import atomic_write_json, read_json

__all__ = [
    "OPTIMIZER_FILE",
    "STATE_FILE",
    "Checkpoint",
    "load_checkpoint",
    "merge_optimizer_states",
    "optimizer_state_from_tensors",
    "optimizer_state_to_tensors",
    "prune_checkpoints",
    "save_checkpoint",
    "split_optimizer_states",
]

OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"


# ------------------------------------------------------------------------------ optimizer state
def optimizer_state_to_tensors(
    state: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split `optimizer.state_dict()` into tensors (for safetensors) and JSON (groups, scalars)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = value
    groups = [dict(g) for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_state_from_tensors(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> dict[str, Any]:
    """Inverse of `optimizer_state_to_tensors` (tuples such as betas come back as tuples)."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = []
    for group in meta["param_groups"]:
        group = dict(group)
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def merge_optimizer_states(states: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Several named `optimizer.state_dict()`s as one, so one checkpoint format holds them all.

    Each optimizer's parameter ids are shifted past the previous ones' and each of its groups
    records its `owner` and `offset`; `split_optimizer_states` undoes it exactly. (A d3rlpy
    algorithm has one optimizer per network: actor, critic, temperature, ...)
    """
    merged: dict[int, dict[str, Any]] = {}
    groups: list[dict[str, Any]] = []
    offset = 0
    for owner, state in states.items():
        n_params = sum(len(g["params"]) for g in state["param_groups"])
        for idx, per_param in state["state"].items():
            merged[int(idx) + offset] = per_param
        for group in state["param_groups"]:
            shifted = [int(i) + offset for i in group["params"]]
            groups.append({**group, "params": shifted, "owner": owner, "offset": offset})
        offset += n_params
    return {"state": merged, "param_groups": groups}


def split_optimizer_states(merged: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Inverse of `merge_optimizer_states`: each owner's `optimizer.state_dict()` again."""
    out: dict[str, dict[str, Any]] = {}
    offsets: dict[str, int] = {}
    for group in merged["param_groups"]:
        group = dict(group)
        owner, offset = str(group.pop("owner")), int(group.pop("offset"))
        group["params"] = [int(i) - offset for i in group["params"]]
        offsets[owner] = offset
        out.setdefault(owner, {"state": {}, "param_groups": []})["param_groups"].append(group)
    sizes = {o: sum(len(g["params"]) for g in e["param_groups"]) for o, e in out.items()}
    for idx, per_param in merged["state"].items():
        owners = [o for o in out if offsets[o] <= int(idx) < offsets[o] + sizes[o]]
        if len(owners) != 1:
            raise TTError(f"optimizer state of parameter {idx} belongs to no single optimizer")
        out[owners[0]]["state"][int(idx) - offsets[owners[0]]] = per_param
    return out


# ------------------------------------------------------------------------------ checkpoints
@dataclass
class Checkpoint:
    """One checkpoint folder read back: weights, optimizer state and the JSON trainer state."""

    path: Path
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.state["step"])


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """Write `checkpoints/step_<step>/` as a whole: a temporary folder renamed into place.

    `state` is the trainer's JSON state (step, epoch, position, schedule, RNG, loss, ...).
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step_{step}.", suffix=".tmp", dir=root))
    try:
        opt_tensors, opt_meta = optimizer_state_to_tensors(optimizer_state)
        save_weights(tmp / WEIGHTS_FILE, model_state)
        save_weights(tmp / OPTIMIZER_FILE, opt_tensors)
        atomic_write_json(tmp / STATE_FILE, {**state, "step": step, "optimizer": opt_meta})
        _fsync_dir(tmp)
        if final.exists():  # a rerun of the same step (e.g. after resume): replace it whole
            old = root / f".step_{step}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", verify: bool = True
) -> Checkpoint:
    """Read a checkpoint folder; any missing/corrupt file is a one-line TTError naming it.

    `verify`: check the files' checksums (False: `tt train --resume RUN --ignore-checksums`).
    """
    p = Path(path)
    state = read_json(p / STATE_FILE, "checkpoint state")
    if not isinstance(state, dict) or "step" not in state or "optimizer" not in state:
        raise TTError(
            f"{p / STATE_FILE}: not a checkpoint state (no 'step'/'optimizer'); delete {p}"
        )
    model = load_weights(p / WEIGHTS_FILE, device, verify=verify)
    opt_tensors = load_weights(p / OPTIMIZER_FILE, device, verify=verify)
    try:
        optimizer = optimizer_state_from_tensors(opt_tensors, state.pop("optimizer"))
    except (KeyError, ValueError, TypeError) as err:
        raise TTError(
            f"{p / OPTIMIZER_FILE}: unreadable optimizer state ({err}); delete {p}"
        ) from err
    return Checkpoint(path=p, model=model, optimizer=optimizer, state=state)


def prune_checkpoints(run_dir: str | os.PathLike[str], keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints and the best one (lowest `loss`)."""
    found = list_checkpoints(run_dir)
    keep = {path for _, path in found[-max(keep_last, 1) :]}
    best: tuple[float, Path] | None = None
    for _, path in found:
        try:
            loss = float(read_json(path / STATE_FILE).get("loss", float("inf")))
        except (TTError, AttributeError, TypeError, ValueError):
            keep.add(path)  # unreadable: leave it for the user to inspect
            continue
        if best is None or loss < best[0]:
            best = (loss, path)
    if best is not None:
        keep.add(best[1])
    removed = []
    for _, path in found:
        if path not in keep:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
