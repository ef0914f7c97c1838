"""Training, part 2 of 4: the loop. Steps, logs, evaluates and checkpoints what setup.py built.

Each step: the schedule advances by the batch's real target tokens, one forward/backward with
gradient clipping, and on log or save steps the finiteness check (guards.py), the metrics
(logs.py) and the checkpoint. A checkpoint holds everything an exact resume needs.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from .. import runs
from ..errors import TTError
from . import checkpoint as ckpt
from . import distributed as dist_utils
from .guards import check_finite, slow_run_warning
from .logs import RunLog
from .loss import PARTS, weighted_loss
from .rng import gather_torch_rng, rng_preserved, rng_state
from .setup import TrainerSetup

__all__ = ["Trainer"]


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class Trainer(TrainerSetup):
    """One training process: `run()` is the loop."""

    def run(self) -> Path:
        tc, info = self.cfg.train, self.info
        log = None
        if info.is_main:
            log = RunLog(
                self.run_dir, self.cfg, self.pos.step, self.total_steps,
                f"training {self.run_dir}: {self.n_windows} windows, {self.steps_per_epoch} steps/epoch, "
                f"{self.total_steps} steps, device {self.device}, world {info.world_size}",
            )  # fmt: skip
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
                        check_finite(int(first_bad.item()), last_saved, tc.lr)
                    self._warn_if_slow(time.perf_counter() - t_start, self.pos.step - start_step)
                    metrics: dict[str, float] = {}
                    if log_now:
                        metrics = self._metrics(acc, stats, n_log, time.perf_counter() - t_log)
                        if log is not None:
                            log.metrics(metrics)
                        acc, stats, n_log, t_log = (
                            zero_acc.clone(),
                            zero_stats.clone(),
                            0,
                            time.perf_counter(),
                        )
                    if log is not None:
                        log.advance()
                    if epoch_done and tc.eval_every > 0 and self.pos.epoch % tc.eval_every == 0:
                        self._evaluate(log)
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
            if log is not None:
                log.close()
        return self.run_dir

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

    def _evaluate(self, log: RunLog | None) -> None:
        """Rank 0 saves the current weights and runs the eval hook; the others wait."""
        if self.eval_fn is not None and log is not None:
            runs.save_weights(self.run_dir / runs.WEIGHTS_FILE, self.model.state_dict())
            with rng_preserved(self.device):
                result = self.eval_fn(self.run_dir, self.pos.epoch)
            log.evaluation(self.pos.step, self.pos.epoch, result)
        dist_utils.barrier(self.info)

    def _warn_if_slow(self, elapsed: float, steps_done: int) -> None:
        """Once, early, on rank 0 of a CPU run (guards.slow_run_warning says what)."""
        if self._slow_warned or steps_done < 10 or elapsed < 15.0 or not self.info.is_main:
            return
        self._slow_warned = True
        if self.device.type != "cpu":
            return
        warning = slow_run_warning(
            self.cfg.name, elapsed / steps_done, self.total_steps - self.pos.step
        )
        if warning is not None:
            print(warning, file=sys.stderr, flush=True)
