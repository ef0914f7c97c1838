"""Training, part 4 of 4: the checks that stop a run loud or warn it early.

A non-finite loss or gradient stops the run before anything non-finite is saved; a CPU run whose
estimate is hours long is told what to do about it, once.
"""

from __future__ import annotations

from ..config import list_presets
from ..errors import TTError

__all__ = ["check_finite", "slow_run_warning"]


def check_finite(first_bad: int, last_saved: int, lr: float) -> None:
    """Fail loud at the first non-finite loss or gradient; what was saved before stays intact.

    `first_bad` is the first such step (-1: none). Checkpoints are written only after this check
    passes, so no saved weights are non-finite.
    """
    if first_bad < 0:
        return
    saved = (
        f"checkpoints up to step {last_saved} are intact" if last_saved > 0 else "nothing was saved"
    )
    raise TTError(
        f"training diverged: the loss or gradient norm became non-finite at step {first_bad} "
        f"(train.lr={lr:g}); {saved}; lower train.lr or check the data for "
        "extreme values"
    )


def slow_run_warning(run_name: str, per_step: float, steps_left: int) -> str | None:
    """What to tell a CPU run that needs 2 h or more (None: it does not); probably sized for a GPU."""
    remaining_h = per_step * steps_left / 3600
    if remaining_h < 2.0:
        return None
    fit_1h = max(1, int(3600 / per_step))
    cpu_presets = [p for p in list_presets() if p.endswith("-cpu")]
    hint = (
        f"use a CPU preset ({len(cpu_presets)} *-cpu presets, e.g. --preset {cpu_presets[0]}; "
        "`tt train --help` lists them)" if cpu_presets
        else "use a smaller model (e.g. model.n_embd=64 model.n_layer=3)"
    )  # fmt: skip
    if run_name.endswith("-cpu"):  # already sized for a CPU: the machine is slow or busy
        why = (
            f"{run_name} is sized for about an hour on 2 quiet cores; is another process "
            "using the CPU? Else"
        )
    else:
        why = f"the defaults are the paper's GPU settings: {hint}, or"
    return (
        f"warning: this run needs about {remaining_h:.1f} h more on the CPU "
        f"({per_step:.2f} s/step, {steps_left} steps left); {why} "
        f"train.max_steps={fit_1h} trains for about an hour"
    )
