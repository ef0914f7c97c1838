"""What a training run may do to its folder: claim it, resume it, check its data is the same.

A folder that holds another run (a different config) or checkpoints of this run is refused unless
the user asks to overwrite; a resume may change runtime knobs but not what defines the model or its
tokens; and the dataset prepared now must match the one the run was trained on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import runs
from ..config import RunConfig, apply_overrides, config_to_dict
from ..data.discretizer import Discretizer
from ..errors import TTError
from ..model.gpt import GPTConfig
from ..utils import atomic_write_bytes, read_json
from . import distributed as dist_utils
from .distributed import DistInfo

if TYPE_CHECKING:
    from ..data.tokens import TokenizedDataset

__all__ = ["claim_run_dir", "dataset_differences", "resume_config", "truncate_metrics"]

# Keys that do not change what is trained; a rerun that differs only in these is the same run.
_RUNTIME_KEYS = {
    "progress",
    "device",
    "num_workers",
    "log_every",
    "save_every",
    "keep_last",
    "eval_every",
}
# On resume these sections may not change (they define the model and its tokens).
_FROZEN_ON_RESUME = ("model.", "data.n_bins", "data.strategy", "data.n_transitions", "data.discount",
                     "data.termination_penalty", "data.max_episodes", "data.goal_key",
                     "data.achieved_key", "data.goal_relabel")  # fmt: skip


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(config))
    for key in _RUNTIME_KEYS:
        out.get("train", {}).pop(key, None)
    for section in ("plan", "eval", "collect"):
        out.pop(section, None)
    return out


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix[:-1]} ({a!r} vs {b!r})"]


def claim_run_dir(run_dir: Path, cfg: RunConfig, overwrite: bool, info: DistInfo) -> None:
    """Refuse a folder holding another run (or this run's checkpoints) unless overwrite."""
    config_path = run_dir / runs.CONFIG_FILE
    if config_path.exists() and not overwrite:
        try:  # as a RunConfig: keys added since the folder was written compare as their defaults
            old = config_to_dict(runs.read_run_config(run_dir))
        except TTError:
            raise TTError(
                f"{config_path}: unreadable run config; pass --overwrite to replace the run"
            ) from None
        diff = _diff_keys(_comparable(old), _comparable(config_to_dict(cfg)))
        if diff:
            raise TTError(
                f"{run_dir} already holds a different run ({', '.join(diff[:3])}); "
                "pass --overwrite to replace it or choose another --run-dir"
            )
        if runs.list_checkpoints(run_dir):
            raise TTError(
                f"{run_dir} already holds checkpoints of this run; continue it with "
                f"`tt train --resume {run_dir}` or pass --overwrite to start over"
            )
    dist_utils.barrier(info)  # every rank has checked before rank 0 deletes anything
    if overwrite and info.is_main:
        for name in (runs.CHECKPOINT_DIR, runs.TB_DIR):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in (runs.CONFIG_FILE, runs.MODEL_CONFIG_FILE, runs.DATASET_FILE,
                     runs.DISCRETIZER_FILE, runs.WEIGHTS_FILE, runs.METRICS_FILE):  # fmt: skip
            (run_dir / name).unlink(missing_ok=True)
    elif config_path.exists() and info.is_main:
        # the same run, killed before its first checkpoint: a start from nothing starts its logs
        # from nothing too (else its steps are logged twice, once per attempt)
        shutil.rmtree(run_dir / runs.TB_DIR, ignore_errors=True)
        (run_dir / runs.METRICS_FILE).unlink(missing_ok=True)
    dist_utils.barrier(info)


def resume_config(run_dir: Path, overrides: list[str]) -> RunConfig:
    """The saved config plus overrides, refusing overrides of what defines the model or tokens."""
    cfg = runs.read_run_config(run_dir)
    for item in overrides:
        key = item.removeprefix("--").split("=", 1)[0]
        if key.startswith(_FROZEN_ON_RESUME):
            raise TTError(
                f"'{key}' cannot change when resuming (it defines the model or its tokens); "
                "start a new run instead"
            )
    return apply_overrides(cfg, overrides)


def dataset_differences(
    run_dir: Path, data: TokenizedDataset, gpt: GPTConfig, verify: bool = True
) -> list[str]:
    """What differs between the resumed run's dataset and the one prepared now (empty: same)."""
    saved_model = runs.load_gpt_config(run_dir / runs.MODEL_CONFIG_FILE)
    diffs = [
        f"{name} {getattr(saved_model, name)} vs {getattr(gpt, name)}"
        for name in ("observation_dim", "action_dim", "vocab_size", "goal_dim")
        if getattr(saved_model, name) != getattr(gpt, name)
    ]
    saved_info = read_json(run_dir / runs.DATASET_FILE, "dataset info")
    new_info = data.info.to_dict()
    if isinstance(saved_info, dict):
        for key in sorted(set(saved_info) | set(new_info)):
            if ("space" in key or key.endswith("_dim") or key == "env_id") and saved_info.get(
                key
            ) != new_info.get(key):
                diffs.append(f"dataset '{key}'")
    if not diffs:
        saved = Discretizer.load(run_dir / runs.DISCRETIZER_FILE, verify=verify)
        new = data.discretizer
        if saved.edges.shape != new.edges.shape or not np.array_equal(saved.edges, new.edges):
            diffs.append("discretizer bins (the dataset's contents changed)")
    return diffs


def truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop lines logged after the checkpoint so the curve is not duplicated."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if int(json.loads(line).get("step", 0)) <= step:
                kept.append(line)
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            continue  # a line cut by the crash

    atomic_write_bytes(path, ("\n".join(kept) + "\n" if kept else "").encode())
