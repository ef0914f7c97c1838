"""`train()`: a dataset becomes a self-describing run folder (see checkpoint.py for its layout).

The run reads in four parts: setup.py (data, model, optimizer, schedule; restore on resume),
loop.py (steps, evaluation, checkpoints), logs.py (metrics.jsonl, TensorBoard, progress) and
guards.py (a non-finite loss fails loud; a slow CPU run is warned).

What the loop does, and where it differs from the original TT (Janner et al., 2021):
- Loss: weighted cross entropy normalised by the real (non-padding) targets (see loss.py).
- Schedule: minGPT's linear warmup + cosine decay counted in non-padding target tokens.
- Epochs: None means the original rule, 50 reference epochs scaled to a 1M-transition dataset,
  capped at `MAX_AUTO_EPOCHS` so a tiny dataset does not ask for 10^5 passes.
- Exact resume: a checkpoint stores the weights, AdamW state, schedule, the epoch and the batch
  position within it, and every RNG state (per rank); the same seeded permutation is rebuilt and
  the batches already seen are skipped, so on CPU the loss curve equals an uninterrupted run.
  The DataLoader gets its own generator so creating it does not advance the global torch RNG.
- Distributed: under torchrun, DistributedDataParallel with a DistributedSampler; only rank 0
  writes; logged metrics are summed over ranks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from pathlib import Path
from typing import Any

from .. import runs
from ..config import RunConfig, apply_overrides
from ..data.memory import dataset_name
from ..data.tokens import TokenizedDataset
from ..errors import TTError
from ..utils import lock_run_dir, resolve_device
from . import distributed as dist_utils
from .logs import require_wandb
from .loop import Trainer
from .resume import claim_run_dir, resume_config
from .setup import EvalFn, StepCallback

__all__ = ["train"]


def train(
    cfg: RunConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    overrides: list[str] | None = None,
    *,
    dataset: Any = None,
    eval_fn: EvalFn | None = None,
    step_callback: StepCallback | None = None,
    verify: bool = True,
) -> Path:
    """Train a Trajectory Transformer into `run_dir` (or continue it with resume=True); returns run_dir.

    `dataset` trains on data in memory instead of `cfg.data.dataset`: a `minari.MinariDataset`, an
    `Episodes` (`Episodes.from_arrays`) or a `TokenizedDataset` (data/memory.py); the run's
    `data.dataset` then records its name, and a resume needs it passed again. `eval_fn(run_dir, epoch) -> dict` runs
    every `train.eval_every` epochs and is logged under eval/; `step_callback(step, metrics, model)`
    is called after each step (tests use it to interrupt a run or inspect the weights).
    """
    run_dir = Path(run_dir)
    info = dist_utils.detect()
    if resume:
        if cfg is not None:
            raise TTError(
                "resume=True continues the saved config; pass cfg=None (changes as overrides)"
            )
        cfg = resume_config(run_dir, overrides or [])
        if runs.latest_checkpoint(run_dir) is None:
            raise TTError(
                f"{run_dir / runs.CHECKPOINT_DIR}: no checkpoint to resume from; train without --resume"
            )
    else:
        if cfg is None:
            raise TTError("train() needs a RunConfig unless resume=True")
        cfg = apply_overrides(cfg, overrides) if overrides else cfg
        if dataset is not None and not isinstance(dataset, TokenizedDataset):
            # config.json names the data the run learned from (a Minari id, or Episodes.name)
            data = dataclasses.replace(cfg.data, dataset=dataset_name(dataset))
            cfg = dataclasses.replace(cfg, data=data)
    require_wandb(cfg)
    # every place the run writes, checked before any work (a file, a read-only or immutable folder)
    hint = "make it writable" if resume else "choose another --run-dir"
    runs.check_run_writable(run_dir, hint)
    device = resolve_device(cfg.train.device, "train.device")
    if cfg.train.precision == "fp16" and device.type != "cuda":
        raise TTError(
            "train.precision=fp16 needs CUDA (a GradScaler); use train.precision=bf16 on CPU"
        )
    device = dist_utils.init(info, device)
    try:
        with contextlib.ExitStack() as held:
            if info.is_main:  # rank 0 writes the folder; it holds the lock for the whole run
                held.enter_context(lock_run_dir(run_dir, "tt train"))
            dist_utils.barrier(info)
            if not resume:
                claim_run_dir(run_dir, cfg, overwrite, info)
            if info.is_main:
                _warn_eval_every_unused(cfg.train.eval_every, eval_fn)
            trainer = Trainer(
                cfg, run_dir, info, device, resume, dataset, eval_fn, step_callback, verify
            )
            return trainer.run()
    finally:
        dist_utils.cleanup(info)


def _warn_eval_every_unused(eval_every: int, eval_fn: EvalFn | None) -> None:
    """train.eval_every asks for evaluations that only an eval_fn can run: say so, not nothing."""
    if eval_every > 0 and eval_fn is None:
        warnings.warn(
            f"train.eval_every={eval_every} does nothing without an eval_fn: pass "
            "eval_fn=trajectory_transformer.evaluation.evaluate.training_eval_hook() (as `tt "
            "train` does) to plan every train.eval_every epochs, or set train.eval_every=0",
            UserWarning,
            stacklevel=3,
        )
