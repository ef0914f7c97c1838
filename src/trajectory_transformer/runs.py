"""The run folder: its file names and typed readers/writers, in one place.

Layout of a run folder (RUN_DIR)::

    config.json                  resolved RunConfig (what `tt train` ran with)
    model.json                   GPTConfig dict (rebuilds the model without the dataset)
    dataset.json                 DatasetInfo dict (dataset, env spec, spaces, reference scores,
                                 counts, per-dimension discretization error)
    discretizer.safetensors      bin edges/centres (Discretizer.save)
    model.safetensors            latest weights, for inference (`load_run`)
    checkpoints/step_<N>/        model.safetensors, optimizer.safetensors, state.json
    metrics.jsonl                one JSON object per logged step
    tb/                          TensorBoard events
    eval/<name>.json             evaluation summaries: `eval` (the planner), `eval_random`,
                                 `eval_behaviour`, ... with <name>_episodes.jsonl and a histogram
    phases.json                  quickstart phase timings
    videos/episode_<i>.mp4       `tt render`
    report.html                  `tt report`

The trainer, evaluation, the quickstart and the report all name these files through this module,
so they cannot drift apart. Every file is written to a temporary name and renamed into place.
Nothing is pickled: tensors go to safetensors, everything else to JSON. Reading a run never imports
the training package.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file

from .config import RunConfig, config_from_dict, config_to_dict
from .data.discretizer import Discretizer
from .data.episodes import DatasetInfo
from .errors import TTError
from .model.gpt import GPTConfig, TrajectoryGPT
from .utils import (
    DIGEST_KEY,
    IGNORE_CHECKSUMS_HINT,
    atomic_path,
    atomic_write_json,
    check_output_dir,
    read_json,
    read_safetensors,
    tensor_digest,
)

if TYPE_CHECKING:
    from .data.discretizer import Discretizer
    from .data.episodes import DatasetInfo

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "DATASET_FILE",
    "DISCRETIZER_FILE",
    "EVAL_DIR",
    "METRICS_FILE",
    "MODEL_CONFIG_FILE",
    "PHASES_FILE",
    "REPORT_FILE",
    "TB_DIR",
    "VIDEOS_DIR",
    "WEIGHTS_FILE",
    "LoadedRun",
    "check_run_writable",
    "checkpoint_weights",
    "eval_name",
    "eval_summary_problem",
    "latest_checkpoint",
    "list_checkpoints",
    "load_gpt_config",
    "load_run",
    "load_weights",
    "load_weights_and_metadata",
    "read_eval_summaries",
    "read_run_config",
    "save_weights",
    "train_step",
    "write_run_files",
]

CONFIG_FILE = "config.json"
MODEL_CONFIG_FILE = "model.json"
DATASET_FILE = "dataset.json"
DISCRETIZER_FILE = "discretizer.safetensors"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
TB_DIR = "tb"
CHECKPOINT_DIR = "checkpoints"
EVAL_DIR = "eval"
PHASES_FILE = "phases.json"
VIDEOS_DIR = "videos"
REPORT_FILE = "report.html"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def eval_name(agent: str) -> str:
    """File stem of an agent's evaluation in RUN_DIR/eval: `eval` for the planner, else eval_<agent>."""
    return "eval" if agent == "planner" else f"eval_{agent}"


# ------------------------------------------------------------------------------ tensors on disk
def save_weights(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write tensors to a safetensors file atomically, with their SHA-256 in the metadata.

    Copies to contiguous CPU tensors first; the checksum (`utils.tensor_digest`, metadata key
    "sha256", over the tensors and any other `metadata`) is what `load_weights` verifies.
    """

    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = dict(metadata or {})
    with atomic_path(path) as tmp:
        save_file(flat, str(tmp), metadata={**meta, DIGEST_KEY: tensor_digest(flat, meta)})


def load_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", verify: bool = True
) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file is a one-line TTError naming it.

    With `verify` (the default) the tensors must match the checksum `save_weights` stored: a
    mismatch or a missing checksum is a TTError. The file is read on the CPU, checked, then moved.
    """
    return load_weights_and_metadata(path, device, verify)[0]


def load_weights_and_metadata(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", verify: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """`load_weights`, also returning the file's metadata (verified with the tensors)."""

    p = Path(path)
    in_checkpoint = _STEP_DIR.match(p.parent.name) and p.parent.parent.name == CHECKPOINT_DIR
    hint = (
        f"delete {p.parent} to resume from the checkpoint before it, restore the file, or "
        "pass --ignore-checksums to tt train --resume if you changed it on purpose"
        if in_checkpoint
        else IGNORE_CHECKSUMS_HINT
    )
    tensors, metadata = read_safetensors(
        p,
        "pt",
        what="weights",
        corrupt="{path}: corrupt or truncated safetensors file ({error}); restore it or delete "
        "this checkpoint",
        verify=verify,
        hint=hint,
    )
    if torch.device(device).type != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, metadata


# ------------------------------------------------------------------------------ checkpoints
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


def train_step(run_dir: str | os.PathLike[str]) -> int:
    """Optimizer step of the newest checkpoint (0 if none): the x-axis for evaluation scalars."""
    found = list_checkpoints(run_dir)
    return int(found[-1][0]) if found else 0


# ------------------------------------------------------------------------------ run files
def check_run_writable(run_dir: str | os.PathLike[str], hint: str, *parts: str) -> None:
    """Before any work: RUN_DIR and each of its folders a command writes (`parts`; default the
    trainer's: checkpoints, tb, eval) can be made or written; else one TTError naming the path."""
    root = Path(run_dir)
    check_output_dir(root, "run folder", hint)
    for part in parts or (CHECKPOINT_DIR, TB_DIR, EVAL_DIR):
        if (root / part).exists() or (root / part).is_symlink():
            check_output_dir(root / part, f"run's {part}/ folder", hint)


def write_run_files(
    run_dir: Path,
    cfg: RunConfig,
    gpt: GPTConfig,
    info: DatasetInfo,
    discretizer: Discretizer,
) -> None:
    """The files that describe a run (everything but weights, checkpoints and logs)."""

    atomic_write_json(run_dir / CONFIG_FILE, config_to_dict(cfg))
    atomic_write_json(run_dir / MODEL_CONFIG_FILE, gpt.to_dict())
    atomic_write_json(run_dir / DATASET_FILE, info.to_dict())
    discretizer.save(run_dir / DISCRETIZER_FILE)


def read_run_config(run_dir: Path) -> RunConfig:
    """config.json as a RunConfig; a missing or invalid file is a one-line TTError naming it."""
    path = Path(run_dir) / CONFIG_FILE
    raw = read_json(path, "run config (is this a run folder?)")
    if not isinstance(raw, dict):
        raise TTError(f"{path}: not a run config (expected a JSON object); restore the file")
    try:
        config: RunConfig = config_from_dict(raw)
    except TTError as err:
        raise TTError(f"{path}: {err}") from err
    return config


def load_gpt_config(path: str | os.PathLike[str]) -> GPTConfig:
    """model.json as a GPTConfig, every field type- and range-checked (one TTError naming it)."""
    data = read_json(path, "model config")
    if not isinstance(data, dict):
        raise TTError(f"{path}: not a model config (expected a JSON object); restore the file")
    try:
        config: GPTConfig = config_from_dict(data, GPTConfig)
    except TTError as err:
        raise TTError(f"{path}: {err}; restore the file") from err
    except TypeError as err:  # a required field is missing
        raise TTError(f"{path}: not a model config ({err}); restore the file") from err
    return config


def read_dataset_info(run_dir: Path) -> DatasetInfo:
    """dataset.json as a DatasetInfo, every field checked (one TTError naming file and field)."""
    path = Path(run_dir) / DATASET_FILE
    raw = read_json(path, "dataset info")
    try:
        return DatasetInfo.from_dict(raw)
    except TTError as err:
        raise TTError(f"{path}: {err}; restore the file") from err
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise TTError(f"{path}: unreadable dataset info ({err}); restore the file") from err


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_SUMMARY_NUMBERS = ("return_mean", "return_std", "return_min", "return_max", "normalized_score",
                    "normalized_score_std", "done_ratio", "length_mean", "success_rate")  # fmt: skip
_SUMMARY_LISTS = ("returns", "lengths", "normalized_score_ci95", "return_ci95", "success_steps")


def eval_summary_problem(obj: Any) -> str | None:
    """What is wrong with an evaluation summary's fields that readers use (None: nothing)."""
    if not isinstance(obj, dict):
        return f"not a JSON object of summary fields ({type(obj).__name__})"
    for key in _SUMMARY_NUMBERS:
        if obj.get(key) is not None and not _number(obj[key]):
            return f"field '{key}' must be a number or null, got {str(obj[key])[:30]!r}"
    for key in _SUMMARY_LISTS:
        value = obj.get(key)
        if value is not None and not (isinstance(value, list) and all(map(_number, value))):
            return f"field '{key}' must be a list of numbers or null, got {str(value)[:30]!r}"
    if obj.get("episodes") is not None and not _number(obj["episodes"]):
        return f"field 'episodes' must be a number, got {str(obj['episodes'])[:30]!r}"
    ref = obj.get("reference")
    if ref is not None:
        if not isinstance(ref, dict):
            return f"field 'reference' must be an object or null, got {str(ref)[:30]!r}"
        for key in ("random_return", "expert_return"):
            if not _number(ref.get(key)):
                return f"field 'reference.{key}' must be a number, got {str(ref.get(key))[:30]!r}"
    return None


def read_eval_summaries(
    run_dir: Path, problems: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Every RUN_DIR/eval/<name>.json summary by agent (planner first).

    Unreadable files and summaries whose fields have the wrong types are skipped; `problems`, if
    given, gets "<file>: <what is wrong>" for each, by file name.
    """
    out: dict[str, dict[str, Any]] = {}
    root = Path(run_dir) / EVAL_DIR
    for path in sorted(root.glob("eval*.json")):
        try:
            obj = read_json(path, "evaluation summary")
        except TTError as err:
            if problems is not None:
                problems[path.name] = str(err)
            continue
        problem = eval_summary_problem(obj)
        if problem is not None:
            if problems is not None:
                problems[path.name] = f"{path}: {problem}"
            continue
        agent = "planner" if path.stem == "eval" else path.stem.removeprefix("eval_")
        out[agent] = obj
    return dict(sorted(out.items(), key=lambda kv: kv[0] != "planner"))


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


def checkpoint_weights(run_dir: str | os.PathLike[str], step: int) -> Path:
    """The model weights of the checkpoint at optimizer step `step`; a missing one is a TTError
    that lists the steps there are."""
    path = Path(run_dir) / CHECKPOINT_DIR / f"step_{step}" / WEIGHTS_FILE
    if not path.is_file():
        steps = [s for s, _ in list_checkpoints(run_dir)]
        raise TTError(
            f"{run_dir}: no checkpoint at step {step}; its checkpoints are at steps {steps} "
            "(train.keep_last decides how many are kept)"
        )
    return path


def load_run(
    run_dir: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    verify: bool = True,
    checkpoint: int | None = None,
) -> LoadedRun:
    """Rebuild a trained run from its folder (config, model, discretizer, dataset info).

    `verify`: check the weights' and the discretizer's checksums (False: `--ignore-checksums`).
    `checkpoint`: load the weights of the checkpoint at this optimizer step instead of the final
    ones (score against training budget without retraining).
    """

    root = Path(run_dir)
    if not root.is_dir():
        raise TTError(f"{root}: no such run folder; train one with `tt train --run-dir {root}`")
    config = read_run_config(root)
    gpt_config = load_gpt_config(root / MODEL_CONFIG_FILE)
    info = read_dataset_info(root)
    # a goal-conditioned model sees the goal as its prefix, not in the observation
    model_dims = (gpt_config.observation_dim + gpt_config.goal_dim, gpt_config.action_dim)
    data_dims = (info.observation_dim, info.action_dim)
    if all(data_dims) and model_dims != data_dims:
        raise TTError(
            f"run {root}: model.json is built for {model_dims[0]} observation + {model_dims[1]} "
            f"action dims, but {DATASET_FILE} describes {data_dims[0]} + {data_dims[1]} "
            f"({info.env_id or info.dataset}); the files come from different runs: restore them"
        )
    discretizer = Discretizer.load(root / DISCRETIZER_FILE, verify=verify)
    if discretizer.n_dims != gpt_config.token_dims or discretizer.n_bins != gpt_config.vocab_size:
        raise TTError(
            f"{root / DISCRETIZER_FILE}: {discretizer.n_dims} dims x {discretizer.n_bins} bins, but "
            f"model.json expects {gpt_config.token_dims} x {gpt_config.vocab_size}"
        )
    model = TrajectoryGPT(gpt_config)
    weights_path = (
        root / WEIGHTS_FILE if checkpoint is None else checkpoint_weights(root, checkpoint)
    )
    weights = load_weights(weights_path, verify=verify)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise TTError(f"{weights_path}: does not match model.json ({first})") from err
    model.to(device).eval()
    return LoadedRun(
        run_dir=root,
        config=config,
        gpt_config=gpt_config,
        model=model,
        discretizer=discretizer,
        info=info,
    )
