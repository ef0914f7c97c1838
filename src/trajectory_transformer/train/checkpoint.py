"""Run-folder I/O: everything a run needs to be resumed exactly or loaded for planning.

Layout of a run folder (RUN_DIR)::

    config.json                  resolved RunConfig (what `tt train` ran with)
    model.json                   GPTConfig dict (rebuilds the model without the dataset)
    dataset.json                 DatasetInfo dict (dataset spec, env spec, spaces, reference scores, counts)
    discretizer.safetensors      bin edges/centres (Discretizer.save)
    model.safetensors            latest weights, for inference (`load_run`)
    checkpoints/step_<N>/        model.safetensors, optimizer.safetensors, state.json
    metrics.jsonl                one JSON object per logged step
    tb/                          TensorBoard events

Every file is written to a temporary name and renamed into place (a checkpoint folder as a whole),
so a crash or a full disk leaves the previous files intact. Nothing is pickled: tensors go to
safetensors, everything else to JSON.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..config import RunConfig, config_from_dict
from ..model.gpt import GPTConfig, TrajectoryGPT
from ..utils import TTError, atomic_path, atomic_write_json, read_json

if TYPE_CHECKING:
    from ..data.discretizer import Discretizer
    from ..data.windows import DatasetInfo

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "DATASET_FILE",
    "DISCRETIZER_FILE",
    "METRICS_FILE",
    "MODEL_CONFIG_FILE",
    "TB_DIR",
    "WEIGHTS_FILE",
    "Checkpoint",
    "LoadedRun",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_run",
    "load_weights",
    "optimizer_state_from_tensors",
    "optimizer_state_to_tensors",
    "prune_checkpoints",
    "save_checkpoint",
    "save_weights",
]

CONFIG_FILE = "config.json"
MODEL_CONFIG_FILE = "model.json"
DATASET_FILE = "dataset.json"
DISCRETIZER_FILE = "discretizer.safetensors"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"
METRICS_FILE = "metrics.jsonl"
TB_DIR = "tb"
CHECKPOINT_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step_(\d+)$")


# ------------------------------------------------------------------------------ tensors on disk
def save_weights(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors to a safetensors file atomically (copies to contiguous CPU tensors first)."""
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp))


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file is a one-line TTError naming it."""
    p = Path(path)
    if not p.is_file():
        raise TTError(f"{p}: missing weights file")
    try:
        with safe_open(str(p), framework="pt", device=str(device)) as handle:
            return {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise TTError(
            f"{p}: corrupt or truncated safetensors file ({err.__class__.__name__}); "
            "restore it or delete this checkpoint"
        ) from err


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


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoint folders (temporary ones are skipped), oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


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


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint folder; any missing/corrupt file is a one-line TTError naming it."""
    p = Path(path)
    state = read_json(p / STATE_FILE, "checkpoint state")
    if not isinstance(state, dict) or "step" not in state or "optimizer" not in state:
        raise TTError(
            f"{p / STATE_FILE}: not a checkpoint state (no 'step'/'optimizer'); delete {p}"
        )
    model = load_weights(p / WEIGHTS_FILE, device)
    opt_tensors = load_weights(p / OPTIMIZER_FILE, device)
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


# ------------------------------------------------------------------------------ loading a run
@dataclass
class LoadedRun:
    """A trained run ready for planning: the model is in eval mode on the requested device."""

    run_dir: Path
    config: RunConfig
    gpt_config: GPTConfig
    model: TrajectoryGPT
    discretizer: Discretizer
    info: DatasetInfo


def load_gpt_config(path: str | os.PathLike[str]) -> GPTConfig:
    data = read_json(path, "model config")
    try:
        return GPTConfig(**data)
    except TypeError as err:
        raise TTError(f"{path}: not a GPTConfig ({err}); restore the file") from err


def load_run(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedRun:
    """Rebuild a trained run from its folder (config, model, discretizer, dataset info)."""
    from ..data.discretizer import Discretizer
    from ..data.windows import DatasetInfo

    root = Path(run_dir)
    if not root.is_dir():
        raise TTError(f"{root}: no such run folder; train one with `tt train --run-dir {root}`")
    raw_config = read_json(root / CONFIG_FILE, "run config")
    try:
        config = config_from_dict(raw_config)
    except ValueError as err:
        raise TTError(f"{root / CONFIG_FILE}: {err}") from err
    gpt_config = load_gpt_config(root / MODEL_CONFIG_FILE)
    raw_info = read_json(root / DATASET_FILE, "dataset info")
    try:
        info = DatasetInfo.from_dict(raw_info)
    except (KeyError, TypeError, ValueError) as err:
        raise TTError(
            f"{root / DATASET_FILE}: unreadable dataset info ({err}); restore the file"
        ) from err
    discretizer = Discretizer.load(root / DISCRETIZER_FILE)
    if (
        discretizer.n_dims != gpt_config.transition_dim
        or discretizer.n_bins != gpt_config.vocab_size
    ):
        raise TTError(
            f"{root / DISCRETIZER_FILE}: {discretizer.n_dims} dims x {discretizer.n_bins} bins, but "
            f"model.json expects {gpt_config.transition_dim} x {gpt_config.vocab_size}"
        )
    model = TrajectoryGPT(gpt_config)
    weights = load_weights(root / WEIGHTS_FILE)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise TTError(f"{root / WEIGHTS_FILE}: does not match model.json ({first})") from err
    model.to(device).eval()
    return LoadedRun(
        run_dir=root,
        config=config,
        gpt_config=gpt_config,
        model=model,
        discretizer=discretizer,
        info=info,
    )
