"""Evaluation outputs: the summary JSON, one line per episode, a return histogram, TensorBoard.

All files go to RUN_DIR/eval (or `--out`) under the names `runs.eval_name` gives, written
atomically; TensorBoard scalars go under `eval/` (the planner) or `eval_<agent>/`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path, atomic_write_bytes, atomic_write_json

__all__ = ["write_eval_outputs"]


def write_eval_outputs(
    summary: dict[str, Any],
    out_dir: Path,
    name: str = "eval",
    tb_dir: Path | None = None,
    tb_step: int = 0,
) -> dict[str, Path]:
    """eval JSON, episodes JSONL, return histogram PNG (atomic) and TensorBoard scalars."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"{name}.json",
        "episodes": out_dir / f"{name}_episodes.jsonl"
        if name != "eval"
        else out_dir / "episodes.jsonl",
        "histogram": out_dir / f"{name}_returns.png",
    }
    atomic_write_json(paths["json"], summary)
    lines = [
        json.dumps(
            {"episode": i, "seed": summary["seed"] + i, "return": r, "length": n, "terminated": d}
        )
        for i, (r, n, d) in enumerate(
            zip(summary["returns"], summary["lengths"], summary["terminated"])
        )
    ]
    atomic_write_bytes(paths["episodes"], ("\n".join(lines) + "\n").encode())
    _histogram(summary, paths["histogram"])
    if tb_dir is not None:
        _tensorboard(summary, tb_dir, tb_step, prefix="eval" if name == "eval" else f"eval_{name}")
    return paths


def _histogram(summary: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    returns = np.asarray(summary["returns"])
    ax.hist(returns, bins=min(20, max(5, returns.size)), color="#3b75af", edgecolor="white")
    ax.axvline(summary["return_mean"], color="black", linestyle="--", label="mean")
    ref = summary.get("reference")
    if ref is not None:
        ax.axvline(ref["random_return"], color="#c44e52", linestyle=":", label="random ref")
        ax.axvline(ref["expert_return"], color="#55a868", linestyle=":", label="expert ref")
    title = f"{summary.get('env_id')}: {summary['agent']}, {returns.size} episodes"
    if summary.get("normalized_score") is not None:
        title += f", score {summary['normalized_score']:.1f}"
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


_TB_KEYS = (
    "return_mean", "return_std", "return_min", "return_max", "normalized_score", "done_ratio",
    "length_mean", "env_steps_per_s", "plan_ms_per_step", "plan_ms_per_call", "wall_s",
)  # fmt: skip


def _tensorboard(summary: dict[str, Any], tb_dir: Path, step: int, prefix: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        for key in _TB_KEYS:
            value = summary.get(key)
            if value is not None:
                writer.add_scalar(f"{prefix}/{key}", float(value), step)
    finally:
        writer.close()
