"""Training checkpoints: weights, optimizer state and the trainer's JSON state, as one folder.

`checkpoints/step_<N>/` (see `runs.py` for the whole run folder) holds model.safetensors,
optimizer.safetensors and state.json. A checkpoint folder is written under a temporary name and
renamed into place as a whole, so a crash or a full disk leaves the previous checkpoints intact.
Nothing is pickled: the optimizer state is split into tensors (safetensors) and JSON.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import TTError
from ..runs import (
    CHECKPOINT_DIR,
    WEIGHTS_FILE,
    list_checkpoints,
    load_weights,
    load_weights_and_metadata,
    save_weights,
)
from ..utils import atomic_write_json, read_json

__all__ = [
    "OPTIMIZER_FILE",
    "STATE_FILE",
    "Checkpoint",
    "check_trainer_state",
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
STATE_DIGEST_KEY = "state_sha256"
"""optimizer.safetensors metadata: the SHA-256 of state.json's bytes, so the JSON state is covered
by the tensors' checksum (editing either file, or dropping the key, fails verification)."""
MAX_STEP = 2**62
"""No run takes more optimizer steps; a step beyond it is a hand-edited file."""


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
        atomic_write_json(tmp / STATE_FILE, {**state, "step": step, "optimizer": opt_meta})
        digest = hashlib.sha256((tmp / STATE_FILE).read_bytes()).hexdigest()
        save_weights(tmp / OPTIMIZER_FILE, opt_tensors, metadata={STATE_DIGEST_KEY: digest})
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
    opt_tensors, opt_meta = load_weights_and_metadata(p / OPTIMIZER_FILE, device, verify=verify)
    stored = opt_meta.get(STATE_DIGEST_KEY)  # absent in checkpoints written before it existed
    if verify and stored and stored != hashlib.sha256((p / STATE_FILE).read_bytes()).hexdigest():
        raise TTError(
            f"{p / STATE_FILE}: checksum mismatch: it changed after the checkpoint was written "
            f"(a corrupt or edited file); delete {p} to resume from the checkpoint before it, "
            "restore the file, or pass --ignore-checksums to tt train --resume if you changed it "
            "on purpose"
        )
    _check_step(state.get("step"), p)
    try:
        optimizer = optimizer_state_from_tensors(opt_tensors, state.pop("optimizer"))
    except (KeyError, ValueError, TypeError) as err:
        raise TTError(
            f"{p / OPTIMIZER_FILE}: unreadable optimizer state ({err}); delete {p}"
        ) from err
    return Checkpoint(path=p, model=model, optimizer=optimizer, state=state)


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} chars)"


def _check_step(step: Any, path: Path) -> None:
    """state.json's step: a whole number in [0, MAX_STEP], the N of the folder's step_<N>."""
    where = f"{path / STATE_FILE}: field 'step'"
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise TTError(
            f"{where} must be a whole number in [0, 2**62], got {_shown(step)}; restore the "
            f"file or delete {path}"
        )
    folder = path.name.removeprefix("step_")
    if folder.isdigit() and int(folder) != step:
        raise TTError(
            f"{where} is {step} but the folder says step {folder}; restore the file or delete {path}"
        )


def _whole(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_STEP


def check_trainer_state(state: dict[str, Any], path: Path) -> None:
    """The trainer's fields of a checkpoint state.json, each of the type and range it must have.

    A hand-edited state (a negative epoch, an RNG state that is not an object, a schedule with a
    string) is refused in one line naming the file and field before anything is restored.
    """

    def bad(field: str, what: str) -> TTError:
        return TTError(
            f"{path / STATE_FILE}: field '{field}' {what}; restore the file or delete {path}"
        )

    for name in ("epoch", "batch_in_epoch", "tokens"):
        if name in state and not _whole(state[name]):
            raise bad(name, f"must be a whole number in [0, 2**62], got {_shown(state[name])}")
    if "world_size" in state and not _whole(state["world_size"], 1):
        raise bad("world_size", f"must be a whole number >= 1, got {str(state['world_size'])[:30]}")
    schedule = state.get("schedule")
    if not isinstance(schedule, dict) or not _whole(schedule.get("tokens")):
        raise bad("schedule", "must be an object whose 'tokens' is a whole number >= 0")
    for name in ("train_s", "loss"):
        value = state.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise bad(name, f"must be a number or null, got {str(value)[:30]}")
    if state.get("scaler") is not None and not isinstance(state["scaler"], dict):
        raise bad("scaler", "must be an object or null")
    rng = state.get("rng")
    if not isinstance(rng, dict):
        raise bad("rng", f"must be an object of RNG states, got {type(rng).__name__}")
    shapes = {"torch": None, "numpy": 5, "python": 3}
    for name, length in shapes.items():
        value = rng.get(name)
        if not isinstance(value, list) or (length is not None and len(value) != length):
            raise bad(f"rng.{name}", "is not the RNG state this trainer saves")
    ranks = state.get("rng_ranks", [])
    if not isinstance(ranks, list) or not all(
        isinstance(r, dict) and isinstance(r.get("torch"), list) for r in ranks
    ):
        raise bad("rng_ranks", "must be a list of objects with a 'torch' state")


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
