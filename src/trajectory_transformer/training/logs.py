"""Training, part 3 of 4: what a run reports as it goes (rank 0 only).

metrics.jsonl (one JSON line per log step and per evaluation), TensorBoard scalars under
namespaced keys (`losses/`, `accuracy/`, `charts/`, `eval/`) with the config as hparams, the
progress bar, and with `train.wandb` the same scalars and the config in Weights & Biases (one W&B
run per training session, named after the run folder, files under RUN_DIR/wandb).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .. import runs
from ..config import RunConfig, config_to_dict
from ..errors import TTError

__all__ = ["RunLog", "require_wandb"]


def require_wandb(cfg: RunConfig) -> None:
    """With train.wandb, fail before any work when wandb is missing, saying how to install it."""
    import importlib.util

    if cfg.train.wandb and importlib.util.find_spec("wandb") is None:
        raise TTError(
            "train.wandb=true needs the wandb package: pip install 'trajectory-transformer[wandb]' "
            "(or set train.wandb=false)"
        )


class RunLog:
    """The open metrics file, TensorBoard writer and progress bar of one training session."""

    def __init__(self, run_dir: Path, cfg: RunConfig, step: int, total_steps: int, what: str):
        """Open (append to) the run's logs at `step`; `what` heads the progress bar."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer: Any = SummaryWriter(
            str(run_dir / runs.TB_DIR), purge_step=step + 1 if step else None
        )
        _write_hparams(self.writer, cfg)
        self.metrics_file = open(run_dir / runs.METRICS_FILE, "a")  # noqa: SIM115
        self.wandb: Any = None
        self.bar: Any = None
        print(what, file=sys.stderr)  # also without the bar: a quiet run says what it does
        if cfg.train.wandb:
            import wandb

            try:
                self.wandb = wandb.init(
                    project=cfg.train.wandb_project,
                    entity=cfg.train.wandb_entity,
                    name=run_dir.name,
                    dir=str(run_dir),
                    config=config_to_dict(cfg),
                )
            except Exception as err:  # no login, no network: wandb raises its own types
                self.close()
                first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
                raise TTError(
                    f"train.wandb: Weights & Biases did not start ({err.__class__.__name__}: "
                    f"{first}); log in with `wandb login`, or set WANDB_MODE=offline"
                ) from None
        if cfg.train.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=step, unit="step", dynamic_ncols=True)

    def metrics(self, metrics: dict[str, float]) -> None:
        """One log step: TensorBoard scalars (keys with a namespace), a JSON line, the bar's text."""
        step = int(metrics["step"])
        for key, value in metrics.items():
            if "/" in key:
                self.writer.add_scalar(key, value, step)
        self.metrics_file.write(json.dumps(metrics) + "\n")
        self.metrics_file.flush()
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in metrics.items() if "/" in k}, step=step)
        if self.bar is not None:
            self.bar.set_postfix(
                loss=f"{metrics['losses/total']:.3f}",
                tok_s=f"{metrics['charts/tokens_per_s']:.3g}",
                lr=f"{metrics['charts/lr']:.2e}",
                refresh=False,
            )

    def evaluation(self, step: int, epoch: int, result: dict[str, Any] | None) -> None:
        """The eval hook's numbers, under eval/."""
        numeric = {
            f"eval/{k}": float(v) for k, v in (result or {}).items() if isinstance(v, int | float)
        }
        for key, value in numeric.items():
            self.writer.add_scalar(key, value, step)
        self.metrics_file.write(json.dumps({"step": step, "epoch": epoch, **numeric}) + "\n")
        self.metrics_file.flush()
        if self.wandb is not None:
            self.wandb.log(numeric, step=step)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.writer.close()
        self.metrics_file.close()
        if self.wandb is not None:
            self.wandb.finish()


def _write_hparams(writer: Any, cfg: RunConfig) -> None:
    from torch.utils.tensorboard.summary import hparams

    flat: dict[str, Any] = {}
    for section in ("data", "model", "train"):
        for key, value in config_to_dict(getattr(cfg, section)).items():
            if isinstance(value, bool | int | float | str):
                flat[f"{section}.{key}"] = value
            elif value is None:
                flat[f"{section}.{key}"] = "None"
    exp, ssi, sei = hparams(flat, {"losses/total": float("nan")})
    file_writer = writer._get_file_writer()
    for summary in (exp, ssi, sei):
        file_writer.add_summary(summary)
