"""Evaluation outputs: the summary JSON, one line per episode, a return histogram, TensorBoard,
and the short table `tt eval` prints.

All files go to RUN_DIR/eval (or `--out`) under the names `runs.eval_name` gives, written
atomically; TensorBoard scalars go under the prefix `names.tensorboard_prefix` gives.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_path, atomic_write_bytes, atomic_write_json

__all__ = ["format_summary", "write_eval_outputs"]


def write_eval_outputs(
    summary: dict[str, Any],
    out_dir: Path,
    name: str = "eval",
    tb_dir: Path | None = None,
    tb_step: int = 0,
    tb_prefix: str = "eval",
) -> dict[str, Path]:
    """eval JSON, episodes JSONL, return histogram PNG (atomic) and TensorBoard scalars (under
    `tb_prefix`, in `tb_dir` when given)."""
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
        _tensorboard(summary, tb_dir, tb_step, prefix=tb_prefix)
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
    "success_rate", "steps_to_goal_mean",
)  # fmt: skip


def _tensorboard(summary: dict[str, Any], tb_dir: Path, step: int, prefix: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        for key in _TB_KEYS:
            value = summary.get(key)
            if value is not None:
                writer.add_scalar(f"{prefix}/{key}", float(value), step)
        audit = summary.get("plan_audit") or {}
        for key in ("bias_mean", "correlation", "search_gain_mean"):
            if audit.get(key) is not None:
                writer.add_scalar(f"{prefix}/plan_audit_{key}", float(audit[key]), step)
    finally:
        writer.close()


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def format_summary(summary: dict[str, Any], json_path: Path | str | None = None) -> str:
    """The few numbers a reader wants from an evaluation summary, as aligned plain-text lines."""
    rows: list[tuple[str, str]] = [
        ("agent", str(summary.get("agent", "?"))),
    ]
    if summary.get("policy"):
        rows.append(("policy", str(summary["policy"])))
    rows.append(("env", f"{summary.get('env_id')}, {summary.get('episodes')} episodes"))
    ref = summary.get("reference")
    if summary.get("normalized_score") is not None and ref is not None:
        score = _num(summary["normalized_score"])
        ci = summary.get("normalized_score_ci95")
        if ci:
            score += f"  95% CI [{_num(ci[0])}, {_num(ci[1])}]"
        score += (
            f"  (x100; reference: {ref['source']}, 0 = {_num(ref['random_return'])}, "
            f"100 = {_num(ref['expert_return'])})"
        )
    else:
        score = "n/a (no reference returns: set data.ref_min_score and data.ref_max_score)"
    rows.append(("normalized score", score))
    if summary.get("normalized_score_note"):
        rows.append(("note", str(summary["normalized_score_note"])))
    rows += [
        ("return", f"{_num(summary.get('return_mean'))} ± {_num(summary.get('return_std'))}"),
        ("episode length", _num(summary.get("length_mean"))),
        ("done ratio", _num(summary.get("done_ratio"), 2)),
    ]
    if summary.get("success_rate") is not None:  # goal tasks (the env reports success)
        ci = summary.get("success_ci95")
        text = f"{_num(100 * summary['success_rate'])}% ({summary.get('success_count')} episodes)"
        if ci:
            text += f"  95% CI [{_num(100 * ci[0])}, {_num(100 * ci[1])}] (Wilson)"
        rows.append(("success", text))
        steps = _num(summary.get("steps_to_goal_mean"))
        ci = summary.get("steps_to_goal_ci95")
        if ci:
            steps += f"  95% CI [{_num(ci[0])}, {_num(ci[1])}] (t, successful episodes)"
        rows.append(("steps to goal", steps))
    audit = summary.get("plan_audit")
    if audit:  # beam / likelihood plans: did the env pay what the plans promised?
        ci = audit.get("bias_ci95")
        text = (
            f"{_num(audit['predicted_mean'])} vs {_num(audit['realized_mean'])} realized, bias "
            f"{_num(audit['bias_mean'])}"
        )
        if ci:
            text += f"  95% CI [{_num(ci[0])}, {_num(ci[1])}] (episodes)"
        text += f"; correlation {_num(audit.get('correlation'), 2)}, {audit['plans']} plans"
        rows.append(("predicted return", text))
        if audit.get("search_gain_mean") is not None:
            ci = audit.get("search_gain_ci95")
            gain = _num(audit["search_gain_mean"])
            gain += f"  95% CI [{_num(ci[0])}, {_num(ci[1])}]" if ci else ""
            rows.append(("search gain", f"{gain} (predicted, over the sampled first actions)"))
    rate = summary.get("env_steps_per_s")
    per_step = 1e3 / rate if isinstance(rate, int | float) and rate > 0 else None
    rows.append(
        (
            "ms per env step",
            f"{_num(per_step, 2)} (acting: {_num(summary.get('plan_ms_per_step'), 2)})",
        )
    )
    if json_path is not None:
        rows.append(("written", str(json_path)))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
