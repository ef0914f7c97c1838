"""`train()`: a dataset becomes a self-describing run folder (see checkpoint.py for its layout).

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
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .. import runs
from ..config import RunConfig, apply_overrides, config_to_dict, list_presets
from ..errors import TTError
from ..model.gpt import GPTConfig, TrajectoryGPT
from ..utils import atomic_write_json, lock_run_dir, resolve_device, seed_everything
from . import checkpoint as ckpt
from . import distributed as dist_utils
from .distributed import DistInfo
from .loss import PARTS, target_parts, weighted_loss
from .resume import claim_run_dir, dataset_differences, resume_config, truncate_metrics
from .rng import gather_torch_rng, rng_preserved, rng_state, set_rng_state
from .schedule import TokenSchedule

if TYPE_CHECKING:
    from ..data.tokens import TokenizedDataset

__all__ = [
    "MAX_AUTO_EPOCHS",
    "EvalFn",
    "StepCallback",
    "auto_epochs",
    "gpt_config_for",
    "train",
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


# ------------------------------------------------------------------------------ the trainer
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


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _make_windows(data: TokenizedDataset, n_transitions: int) -> Dataset[Any]:
    from ..data.windows import TokenWindows

    return TokenWindows(data.tokens, data.episode_starts, n_transitions, data.goal_tokens)


def _prepare_data(cfg: RunConfig, run_dir: Path, info: DistInfo) -> TokenizedDataset:
    """Rank 0 prepares (and caches) the tokens first, then the others read the cache."""
    from ..data.tokens import prepare_tokens

    seed = cfg.train.seed  # drives the episode subset when data.max_episodes is set
    data = prepare_tokens(cfg.data, cfg.data.cache_dir, seed=seed) if info.is_main else None
    dist_utils.barrier(info)
    return data if data is not None else prepare_tokens(cfg.data, cfg.data.cache_dir, seed=seed)


def train(
    cfg: RunConfig | None,
    run_dir: str | Path,
    resume: bool = False,
    overwrite: bool = False,
    overrides: list[str] | None = None,
    *,
    dataset: TokenizedDataset | None = None,
    eval_fn: EvalFn | None = None,
    step_callback: StepCallback | None = None,
    verify: bool = True,
) -> Path:
    """Train a Trajectory Transformer into `run_dir` (or continue it with resume=True); returns run_dir.

    `dataset` skips `prepare_tokens(cfg.data)` (custom data); `eval_fn(run_dir, epoch) -> dict` runs
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
    if cfg.train.precision == "fp16" and resolve_device(cfg.train.device).type != "cuda":
        raise TTError(
            "train.precision=fp16 needs CUDA (a GradScaler); use train.precision=bf16 on CPU"
        )
    device = dist_utils.init(info, resolve_device(cfg.train.device))
    try:
        with contextlib.ExitStack() as held:
            if info.is_main:  # rank 0 writes the folder; it holds the lock for the whole run
                held.enter_context(lock_run_dir(run_dir, "tt train"))
            dist_utils.barrier(info)
            if not resume:
                claim_run_dir(run_dir, cfg, overwrite, info)
            trainer = _Trainer(
                cfg, run_dir, info, device, resume, dataset, eval_fn, step_callback, verify
            )
            return trainer.run()
    finally:
        dist_utils.cleanup(info)


class _Trainer:
    """State of one training process; `run()` is the loop."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: Path,
        info: DistInfo,
        device: torch.device,
        resume: bool,
        dataset: TokenizedDataset | None,
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
        self.data = dataset if dataset is not None else _prepare_data(cfg, run_dir, info)
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

    # -------------------------------------------------------------------------- resume
    def _restore(self) -> None:
        path = runs.latest_checkpoint(self.run_dir)
        assert path is not None
        loaded = ckpt.load_checkpoint(path, self.device, verify=self.verify)
        state = loaded.state
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
        set_rng_state(state["rng"], self.device)
        per_rank = state.get("rng_ranks", [])
        if same_world and self.info.rank < len(per_rank):
            own = per_rank[self.info.rank]
            torch.set_rng_state(torch.tensor(own["torch"], dtype=torch.uint8))
            if self.device.type == "cuda" and "cuda" in own:
                torch.cuda.set_rng_state(torch.tensor(own["cuda"], dtype=torch.uint8), self.device)
        if self.info.is_main:
            atomic_write_json(self.run_dir / runs.CONFIG_FILE, config_to_dict(self.cfg))
            truncate_metrics(self.run_dir / runs.METRICS_FILE, self.pos.step)

    def _save(self, interval_loss: float) -> None:
        """All ranks gather RNG states; rank 0 writes the checkpoint and the inference weights."""
        rng_ranks = gather_torch_rng(self.device, self.info)
        if not self.info.is_main:
            return
        state = {
            "step": self.pos.step,
            "epoch": self.pos.epoch,
            "batch_in_epoch": self.pos.batch_in_epoch,
            "tokens": self.schedule.tokens,
            "loss": interval_loss,
            "world_size": self.info.world_size,
            "schedule": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(self.device),
            "rng_ranks": rng_ranks,
            "train_s": None
            if self.train_s_before is None
            else self.train_s_before + time.perf_counter() - self._session_start,
        }
        model_state = self.model.state_dict()
        bad = [
            k for k, t in model_state.items() if t.is_floating_point() and not t.isfinite().all()
        ]
        if (
            bad
        ):  # never write a checkpoint that cannot be used (the loss check normally stops first)
            raise TTError(
                f"training diverged: weight '{bad[0]}' is non-finite at step {self.pos.step}; "
                "the previous checkpoints are intact; lower train.lr"
            )
        ckpt.save_checkpoint(
            self.run_dir, self.pos.step, model_state, self.optimizer.state_dict(), state
        )
        runs.save_weights(self.run_dir / runs.WEIGHTS_FILE, model_state)
        ckpt.prune_checkpoints(self.run_dir, self.cfg.train.keep_last)

    # -------------------------------------------------------------------------- loop
    def _loader(
        self, skip_batches: int
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The epoch's seeded permutation (this rank's share), minus the batches already done."""
        self.sampler.set_epoch(self.pos.epoch)
        bs = self.cfg.train.batch_size
        indices = list(self.sampler)[skip_batches * bs :]
        batch_fn = getattr(self.windows, "batch", None)
        if self.cfg.train.num_workers == 0 and callable(batch_fn):
            # TokenWindows gathers a whole batch with one vectorised index: no per-item collate
            return (batch_fn(indices[i : i + bs]) for i in range(0, len(indices), bs))
        return iter(
            DataLoader(
                self.windows,
                batch_size=self.cfg.train.batch_size,
                sampler=indices,  # type: ignore[arg-type]
                num_workers=self.cfg.train.num_workers,
                pin_memory=self.device.type == "cuda",
                drop_last=False,
                generator=torch.Generator().manual_seed(self.cfg.train.seed + self.pos.epoch),
            )
        )

    def _step(
        self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n_tokens = mask.sum()  # on the host: no device sync for the schedule
        if self.info.enabled:
            n_tokens = dist_utils.all_reduce_sum(n_tokens, self.info)
        lr = self.schedule.advance(int(n_tokens.item()))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        nb = self.device.type == "cuda"
        x = x.to(self.device, non_blocking=nb)  # (B, T)
        y = y.to(self.device, non_blocking=nb)  # (B, T)
        mask = mask.to(self.device, non_blocking=nb)  # (B, T)
        with _autocast(self.device, self.cfg.train.precision):
            logits = self.wrapped(x)  # (B, T, V)
        loss, stats = weighted_loss(logits, y, mask, self.parts, self.part_weights)
        clip = self.cfg.train.grad_clip if self.cfg.train.grad_clip > 0 else float("inf")
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        # (loss, grad_norm) and the per-part stats stay on the device until a log step
        return torch.stack([loss.detach().float(), grad_norm.detach().float()]), stats

    def _metrics(
        self, acc: torch.Tensor, stats: torch.Tensor, n: int, seconds: float
    ) -> dict[str, float]:
        acc = dist_utils.all_reduce_sum(acc, self.info) / self.info.world_size
        stats = dist_utils.all_reduce_sum(stats, self.info)
        acc_l, stats_l = acc.tolist(), stats.tolist()
        tokens = n * self.cfg.train.batch_size * self.info.world_size * self.window_len
        out = {
            "step": self.pos.step,
            "epoch": self.pos.step / self.steps_per_epoch,
            "tokens": self.schedule.tokens,
            "losses/total": acc_l[0] / n,
        }
        for i, part in enumerate(PARTS):
            count = max(stats_l[2][i], 1.0)
            out[f"losses/{part}"] = stats_l[0][i] / count
            out[f"accuracy/{part}"] = stats_l[1][i] / count
        out["charts/lr"] = self.schedule.lr
        out["charts/grad_norm"] = acc_l[1] / n
        out["charts/tokens_per_s"] = tokens / max(seconds, 1e-9)
        return out

    def run(self) -> Path:
        tc, info = self.cfg.train, self.info
        writer = None
        metrics_file = None
        bar = None
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(
                str(self.run_dir / runs.TB_DIR),
                purge_step=self.pos.step + 1 if self.pos.step else None,
            )
            self._write_hparams(writer)
            metrics_file = open(self.run_dir / runs.METRICS_FILE, "a")  # noqa: SIM115
            if tc.progress:
                from tqdm.auto import tqdm

                print(
                    f"training {self.run_dir}: {self.n_windows} windows, {self.steps_per_epoch} steps/epoch, "
                    f"{self.total_steps} steps, device {self.device}, world {info.world_size}",
                    file=sys.stderr,
                )
                bar = tqdm(
                    total=self.total_steps, initial=self.pos.step, unit="step", dynamic_ncols=True
                )
        if self.pos.step >= self.total_steps and info.is_main:  # `tt train --resume` of a done run
            print(
                f"{self.run_dir}: already trained to step {self.pos.step} of {self.total_steps}; "
                "nothing to train (raise train.max_steps to train on)",
                file=sys.stderr,
            )
        self.model.train()
        zero_acc = torch.zeros(2, device=self.device)
        zero_stats = torch.zeros(3, len(PARTS), device=self.device)
        acc, stats, n_log = zero_acc.clone(), zero_stats.clone(), 0
        ckpt_loss, n_ckpt = zero_acc[:1].clone(), 0
        last_saved = self.pos.step if self.pos.step else -1
        first_bad = torch.tensor(-1, device=self.device)
        t_log = t_start = self._session_start = time.perf_counter()
        start_step = self.pos.step
        try:
            while self.pos.step < self.total_steps:
                skip = self.pos.batch_in_epoch
                for x, y, mask in self._loader(skip):
                    step_acc, step_stats = self._step(x, y, mask)
                    # first step whose loss or gradient norm is not finite (-1: none yet), kept on
                    # the device; read every step on CPU (free) and at log/save steps on a GPU
                    bad = ~torch.isfinite(step_acc).all()
                    first_bad = torch.where(bad & (first_bad < 0), self.pos.step + 1, first_bad)
                    acc += step_acc
                    stats += step_stats
                    ckpt_loss += step_acc[:1]
                    n_log, n_ckpt = n_log + 1, n_ckpt + 1
                    self.pos.step += 1
                    self.pos.batch_in_epoch += 1
                    epoch_done = self.pos.batch_in_epoch >= self.steps_per_epoch
                    if epoch_done:
                        self.pos.epoch, self.pos.batch_in_epoch = self.pos.epoch + 1, 0
                    last = self.pos.step >= self.total_steps
                    log_now = self.pos.step % max(tc.log_every, 1) == 0 or last
                    save_now = self.pos.step % max(tc.save_every, 1) == 0 or last
                    if self.device.type == "cpu" or log_now or save_now:
                        self._stop_if_diverged(int(first_bad.item()), last_saved)
                    self._warn_if_slow(time.perf_counter() - t_start, self.pos.step - start_step)
                    metrics: dict[str, float] = {}
                    if log_now:
                        metrics = self._metrics(acc, stats, n_log, time.perf_counter() - t_log)
                        if info.is_main:
                            self._log(metrics, writer, metrics_file, bar)
                        acc, stats, n_log, t_log = (
                            zero_acc.clone(),
                            zero_stats.clone(),
                            0,
                            time.perf_counter(),
                        )
                    if bar is not None:
                        bar.update(1)
                    if epoch_done and tc.eval_every > 0 and self.pos.epoch % tc.eval_every == 0:
                        self._evaluate(writer, metrics_file)
                    if save_now:
                        loss = float(dist_utils.all_reduce_sum(ckpt_loss, info).item()) / (
                            n_ckpt * info.world_size
                        )
                        self._save(loss)
                        last_saved = self.pos.step
                        ckpt_loss, n_ckpt = zero_acc[:1].clone(), 0
                    if self.step_callback is not None:
                        self.step_callback(self.pos.step, metrics, self.model)
                    if last:
                        break
            if last_saved != self.pos.step:  # e.g. resumed a run that had already finished
                self._save(float("inf"))
            dist_utils.barrier(info)
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
            if metrics_file is not None:
                metrics_file.close()
        return self.run_dir

    def _stop_if_diverged(self, first_bad: int, last_saved: int) -> None:
        """Fail loud at the first non-finite loss or gradient; what was saved before stays intact.

        Checkpoints are written only after this check passes, so no saved weights are non-finite.
        """
        if first_bad < 0:
            return
        saved = (
            f"checkpoints up to step {last_saved} are intact"
            if last_saved > 0
            else "nothing was saved"
        )
        raise TTError(
            f"training diverged: the loss or gradient norm became non-finite at step {first_bad} "
            f"(train.lr={self.cfg.train.lr:g}); {saved}; lower train.lr or check the data for "
            "extreme values"
        )

    def _warn_if_slow(self, elapsed: float, steps_done: int) -> None:
        """Once, early: a CPU run whose estimated time is hours long is probably sized for a GPU."""
        if self._slow_warned or steps_done < 10 or elapsed < 15.0 or not self.info.is_main:
            return
        self._slow_warned = True
        per_step = elapsed / steps_done
        remaining_h = per_step * (self.total_steps - self.pos.step) / 3600
        if self.device.type != "cpu" or remaining_h < 2.0:
            return
        fit_1h = max(1, int(3600 / per_step))
        cpu_presets = [p for p in list_presets() if p.endswith("-cpu")]
        hint = (
            f"use a CPU preset ({len(cpu_presets)} *-cpu presets, e.g. --preset {cpu_presets[0]}; "
            "`tt train --help` lists them)" if cpu_presets
            else "use a smaller model (e.g. model.n_embd=64 model.n_layer=3)"
        )  # fmt: skip
        if self.cfg.name.endswith("-cpu"):  # already sized for a CPU: the machine is slow or busy
            why = (
                f"{self.cfg.name} is sized for about an hour on 2 quiet cores; is another process "
                "using the CPU? Else"
            )
        else:
            why = f"the defaults are the paper's GPU settings: {hint}, or"
        print(
            f"warning: this run needs about {remaining_h:.1f} h more on the CPU "
            f"({per_step:.2f} s/step, {self.total_steps - self.pos.step} steps left); {why} "
            f"train.max_steps={fit_1h} trains for about an hour",
            file=sys.stderr,
            flush=True,
        )

    def _log(self, metrics: dict[str, float], writer: Any, metrics_file: Any, bar: Any) -> None:
        step = int(metrics["step"])
        for key, value in metrics.items():
            if "/" in key:
                writer.add_scalar(key, value, step)
        metrics_file.write(json.dumps(metrics) + "\n")
        metrics_file.flush()
        if bar is not None:
            bar.set_postfix(
                loss=f"{metrics['losses/total']:.3f}",
                tok_s=f"{metrics['charts/tokens_per_s']:.3g}",
                lr=f"{metrics['charts/lr']:.2e}",
                refresh=False,
            )

    def _evaluate(self, writer: Any, metrics_file: Any) -> None:
        """Rank 0 saves the current weights and runs the eval hook; the others wait."""
        if self.eval_fn is not None and self.info.is_main:
            runs.save_weights(self.run_dir / runs.WEIGHTS_FILE, self.model.state_dict())
            with rng_preserved(self.device):
                result = self.eval_fn(self.run_dir, self.pos.epoch)
            numeric = {
                f"eval/{k}": float(v)
                for k, v in (result or {}).items()
                if isinstance(v, int | float)
            }
            for key, value in numeric.items():
                writer.add_scalar(key, value, self.pos.step)
            metrics_file.write(
                json.dumps({"step": self.pos.step, "epoch": self.pos.epoch, **numeric}) + "\n"
            )
            metrics_file.flush()
        dist_utils.barrier(self.info)

    def _write_hparams(self, writer: Any) -> None:
        from torch.utils.tensorboard.summary import hparams

        flat: dict[str, Any] = {}
        for section in ("data", "model", "train"):
            for key, value in config_to_dict(getattr(self.cfg, section)).items():
                if isinstance(value, bool | int | float | str):
                    flat[f"{section}.{key}"] = value
                elif value is None:
                    flat[f"{section}.{key}"] = "None"
        exp, ssi, sei = hparams(flat, {"losses/total": float("nan")})
        file_writer = writer._get_file_writer()
        for summary in (exp, ssi, sei):
            file_writer.add_summary(summary)
