"""Training, part 1 of 4: everything a run needs before its first step.

The data and its windows, the model (identical initial weights on every rank), AdamW, the token
schedule sized from the run's length, the loss weights, and on resume the saved state restored
exactly. The loop (loop.py) runs what this builds; logs.py writes what it reports; guards.py
stops it loud.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, DistributedSampler

from .. import runs
from ..config import RunConfig, config_to_dict
from ..data.memory import tokenize_in_memory
from ..data.tokens import prepare_tokens
from ..data.windows import TokenWindows
from ..errors import TTError
from ..model.gpt import GPTConfig, TrajectoryGPT
from ..utils import atomic_write_json, check_memory, seed_everything
from . import checkpoint as ckpt
from . import distributed as dist_utils
from .distributed import DistInfo
from .loss import target_parts
from .resume import dataset_differences, truncate_metrics
from .rng import set_rng_state
from .schedule import TokenSchedule

if TYPE_CHECKING:
    from ..data.tokens import TokenizedDataset

__all__ = [
    "MAX_AUTO_EPOCHS",
    "EvalFn",
    "StepCallback",
    "TrainerSetup",
    "auto_epochs",
    "gpt_config_for",
]

EvalFn = Callable[[Path, int], dict[str, Any]]
"""Called as eval_fn(run_dir, epoch) on rank 0 after `model.safetensors` holds the current weights."""
StepCallback = Callable[[int, dict[str, float], nn.Module], None]
"""Called as callback(step, metrics, model) on every rank after each optimizer step and any
checkpoint (metrics only on log steps, else {}; model is the unwrapped TrajectoryGPT)."""

MAX_AUTO_EPOCHS = 1000


def gpt_config_for(
    cfg: RunConfig, observation_dim: int, action_dim: int, goal_dim: int = 0
) -> GPTConfig:
    """The model's architecture from a run config and the dataset's dimensions."""
    return GPTConfig.for_data(
        cfg.model,
        vocab_size=cfg.data.n_bins,
        observation_dim=observation_dim,
        action_dim=action_dim,
        n_transitions=cfg.data.n_transitions,
        goal_dim=goal_dim,
    )


def auto_epochs(n_windows: int) -> int:
    """Original TT: 50 reference epochs for 1M transitions, scaled by dataset size (capped)."""
    return int(min(MAX_AUTO_EPOCHS, max(1, round(50 * 1e6 / max(n_windows, 1)))))


def training_memory_bytes(g: GPTConfig, batch_size: int) -> int:
    """A lower bound on a training step's memory: fp32 weights, gradients and two AdamW moments
    (16 bytes a parameter) and the activations autograd keeps (about 10 floats per layer, token
    and channel)."""
    C, L, V = g.n_embd, g.n_layer, g.vocab_size
    heads = g.transition_dim if g.separate_heads else 1
    params = V * g.token_dims * C + g.block_size * C + L * (12 * C * C + 13 * C) + heads * C * V
    activations = batch_size * g.block_size * (C * L * 10 + heads * V) * 4
    return int(16 * params + activations)


def _check_training_memory(cfg: RunConfig, g: GPTConfig, device: torch.device) -> None:
    """Refuse, before the model is built, a size that cannot fit in the memory free here."""
    m = cfg.model
    check_memory(
        training_memory_bytes(g, cfg.train.batch_size),
        device,
        f"training model.n_embd={m.n_embd}, model.n_layer={m.n_layer} with "
        f"train.batch_size={cfg.train.batch_size} and data.n_bins={cfg.data.n_bins}",
        "lower model.n_embd, model.n_layer, train.batch_size or data.n_bins",
    )


@dataclass
class _Position:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def _mask_fraction(windows: Dataset[Any], n_windows: int, samples: int = 1024) -> float:
    """Mean fraction of non-padding targets per window (estimated on evenly spaced windows)."""
    idx = np.unique(np.linspace(0, n_windows - 1, num=min(samples, n_windows)).astype(int))
    masks = torch.stack([windows[int(i)][2] for i in idx])  # (S, L-1)
    return float(masks.float().mean())


def _make_windows(data: TokenizedDataset, n_transitions: int) -> Dataset[Any]:
    return TokenWindows(data.tokens, data.episode_starts, n_transitions, data.goal_tokens)


def _prepare_data(cfg: RunConfig, run_dir: Path, info: DistInfo) -> TokenizedDataset:
    """Rank 0 prepares (and caches) the tokens first, then the others read the cache."""
    seed = cfg.train.seed  # drives the episode subset when data.max_episodes is set
    data = prepare_tokens(cfg.data, cfg.data.cache_dir, seed=seed) if info.is_main else None
    dist_utils.barrier(info)
    return data if data is not None else prepare_tokens(cfg.data, cfg.data.cache_dir, seed=seed)


class TrainerSetup:
    """The state of one training process, built (or restored) before the first step."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        info: DistInfo,
        device: torch.device,
        resume: bool,
        dataset: Any,
        eval_fn: EvalFn | None,
        step_callback: StepCallback | None,
        verify: bool = True,
    ) -> None:
        self.cfg, self.run_dir, self.info, self.device = cfg, run_dir, info, device
        self.eval_fn, self.step_callback = eval_fn, step_callback
        self.verify = verify  # check checkpoint and discretizer checksums on resume
        self._slow_warned = False
        tc = cfg.train
        seed_everything(tc.seed)
        if device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 matmuls in fp32 mode
        self.data = (
            tokenize_in_memory(dataset, cfg.data, tc.seed)
            if dataset is not None
            else _prepare_data(cfg, run_dir, info)
        )
        preflight = getattr(eval_fn, "preflight", None)
        if preflight is not None and tc.eval_every > 0:  # the eval env, before any step
            preflight(cfg, self.data.info)
        self.gpt_config = gpt_config_for(
            cfg, int(self.data.observation_dim), int(self.data.action_dim), self.data.goal_dim
        )
        if resume:
            diffs = dataset_differences(run_dir, self.data, self.gpt_config, verify)
            if diffs:
                raise TTError(
                    f"the dataset does not match the run in {run_dir}: {'; '.join(diffs)}; "
                    "resume with the original dataset or start a new run"
                )
        self.windows = _make_windows(self.data, cfg.data.n_transitions)
        self.n_windows = len(self.windows)  # type: ignore[arg-type]
        if self.n_windows == 0:
            raise TTError(f"dataset '{cfg.data.dataset}' yields no training windows")
        longest = int(np.diff(self.data.episode_starts).max())
        if cfg.data.n_transitions > longest:
            raise TTError(
                f"data.n_transitions={cfg.data.n_transitions} is longer than every episode of "
                f"'{cfg.data.dataset}' (the longest has {longest} steps): every window would be "
                f"mostly padding; use data.n_transitions<={longest}"
            )

        _check_training_memory(cfg, self.gpt_config, device)
        # identical initial weights on every rank (DDP also broadcasts rank 0's)
        torch.manual_seed(tc.seed)
        self.model = TrajectoryGPT(self.gpt_config).to(device)
        self.model.activation_checkpointing = tc.activation_checkpointing
        self.optimizer = torch.optim.AdamW(
            self.model.decay_groups(tc.weight_decay),
            lr=tc.lr,
            betas=tc.betas,
            fused=True if device.type == "cuda" else None,
        )
        self.scaler = torch.amp.GradScaler("cuda") if tc.precision == "fp16" else None

        self.sampler: DistributedSampler[Any] = DistributedSampler(
            self.windows,
            num_replicas=info.world_size,
            rank=info.rank,
            shuffle=True,
            seed=tc.seed,
            drop_last=False,
        )
        self.steps_per_epoch = math.ceil(len(self.sampler) / tc.batch_size)
        epochs = tc.epochs if tc.epochs is not None else auto_epochs(self.n_windows)
        self.total_steps = max(1, math.ceil(epochs * self.steps_per_epoch))
        if tc.max_steps is not None:
            self.total_steps = min(self.total_steps, tc.max_steps)
        self.window_len = self.gpt_config.block_size  # input/target tokens per window, L - 1
        global_batch = tc.batch_size * info.world_size
        final_tokens = float(self.total_steps * global_batch * self.window_len)
        final_tokens *= _mask_fraction(self.windows, self.n_windows)
        self.schedule = TokenSchedule(
            tc.lr, tc.warmup_fraction * final_tokens, final_tokens, tc.lr_min_ratio
        )
        g = self.gpt_config
        parts = target_parts(self.window_len, g.observation_dim, g.action_dim, g.goal_dim)
        self.parts = parts.to(device)
        self.part_weights = torch.tensor(
            [1.0, tc.action_weight, tc.reward_weight, tc.value_weight], device=device
        )
        self.pos = _Position()
        # seconds of training loop behind the last checkpoint, summed over sessions (None: a
        # checkpoint from before this was recorded); a killed session's time after its last
        # checkpoint is not counted, since those steps are done again
        self.train_s_before: float | None = 0.0
        self._session_start = time.perf_counter()
        torch.manual_seed(tc.seed + info.rank)  # different dropout masks per rank
        if resume:
            self._restore()
        elif info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            runs.write_run_files(
                run_dir, cfg, self.gpt_config, self.data.info, self.data.discretizer
            )
        dist_utils.barrier(info)

        wrapped: nn.Module = self.model
        if info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            wrapped = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if tc.compile:
            wrapped = torch.compile(wrapped)  # type: ignore[assignment]
        self.wrapped = wrapped

    def _restore(self) -> None:
        path = runs.latest_checkpoint(self.run_dir)
        assert path is not None
        loaded = ckpt.load_checkpoint(path, self.device, verify=self.verify)
        state = loaded.state
        ckpt.check_trainer_state(state, path)
        try:
            self.model.load_state_dict(loaded.model, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise TTError(
                f"{path / runs.WEIGHTS_FILE}: does not match the model ({first})"
            ) from err
        current = self.optimizer.state_dict()["param_groups"]
        for saved, now in zip(loaded.optimizer["param_groups"], current):
            for key in ("fused", "foreach", "capturable"):  # device flags follow this run
                if key in now:
                    saved[key] = now[key]
        try:
            self.optimizer.load_state_dict(loaded.optimizer)
        except (ValueError, KeyError) as err:
            raise TTError(
                f"{path}/optimizer.safetensors: does not match the model ({err})"
            ) from err
        sched = dict(state["schedule"])
        self.schedule.tokens = int(sched["tokens"])  # the horizon follows the (maybe new) config
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.pos = _Position(int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"]))
        saved_s = state.get("train_s")
        self.train_s_before = None if saved_s is None else float(saved_s)
        same_world = int(state.get("world_size", 1)) == self.info.world_size
        if not same_world:
            # the permutation is split differently: restart the epoch rather than skip wrongly
            print(f"resuming with {self.info.world_size} processes instead of {state.get('world_size')}: "
                  "the current epoch restarts", file=sys.stderr)  # fmt: skip
            self.pos.batch_in_epoch = 0
        try:
            set_rng_state(state["rng"], self.device)
            per_rank = state.get("rng_ranks", [])
            if same_world and self.info.rank < len(per_rank):
                own = per_rank[self.info.rank]
                torch.set_rng_state(torch.tensor(own["torch"], dtype=torch.uint8))
                if self.device.type == "cuda" and "cuda" in own:
                    cuda_state = torch.tensor(own["cuda"], dtype=torch.uint8)
                    torch.cuda.set_rng_state(cuda_state, self.device)
        except (TypeError, ValueError, RuntimeError, OverflowError) as err:
            raise TTError(
                f"{path / ckpt.STATE_FILE}: field 'rng' is not a valid RNG state ({err}); "
                f"restore the file or delete {path}"
            ) from err
        if self.info.is_main:
            atomic_write_json(self.run_dir / runs.CONFIG_FILE, config_to_dict(self.cfg))
            truncate_metrics(self.run_dir / runs.METRICS_FILE, self.pos.step)
