"""`tt bench sweep`: what one trained run scores, and at what planning cost, over a grid of plan
settings and training checkpoints.

TT's search has knobs whose effect on the *realised* return is not monotone (a wider beam can
exploit the model's errors), and a run's score depends on how long it trained. A sweep answers
both on one trained run without retraining: every point is a `tt eval` of the run with some
`plan.*`/`eval.*` settings, at the final weights or at a saved checkpoint (`tt eval --checkpoint`).

    tt bench sweep run=RUNS/hopper plan.beam_width=8,32,64 plan.horizon=5,10 eval.episodes=20
    tt bench sweep run=RUNS/hopper plan.mode=greedy,beam checkpoints=3000,6000,final

Options: `run=DIR` (required); `out=DIR` (default benchmarks/results/sweeps/<run folder name>);
`checkpoints=STEP,...,final` (default final). Any `plan.KEY=...` / `eval.KEY=...`: a comma list
is an axis of the grid (one value, an axis of one). A point is named by every key it was given
(sorted), so sweeps with other keys can share a folder and the same point is never evaluated
twice; keys left out take the run's saved config. `agreement=N` also measures, per point, how
close the agent's actions are to the policy that made the data, on N of that policy's own
episodes with the agent teacher-forced (evaluation/agreement.py; the imitation question: needs a
dataset made by `tt collect`); asked of points that exist without it, it adds just that.
Points are evaluated in grid order,
each into its own JSON (schema `tt-sweep-point/1`: settings, checkpoint and its training tokens,
scores with 95% CIs on the D4RL and dataset scales, returns, ms per env step, machine, commit,
the `tt eval` command that reproduces it); a point whose JSON exists is skipped, so an
interrupted sweep resumes. `results.md` in the same folder is rebuilt after every point.
"""

from __future__ import annotations

import itertools
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import runs
from ..config import apply_overrides, parse_options
from ..errors import TTError
from ..evaluation.agreement import expert_agreement
from ..evaluation.evaluate import evaluate_run
from ..training.checkpoint import STATE_FILE
from ..utils import atomic_write_bytes, atomic_write_json, read_json, resolve_device
from .records import (
    ci95,
    d4rl_reference,
    evaluation_reference,
    fmt,
    fmt_ci,
    fmt_time,
    git_info,
    machine_info,
    now_iso,
    read_results,
    score_summary,
)

__all__ = ["SCHEMA", "SweepPlan", "main", "parse_sweep", "run_sweep", "write_table"]

SCHEMA = "tt-sweep-point/1"
TABLE_FILE = "results.md"
QUICK_OVERRIDES = ("eval.episodes=2", "eval.n_envs=2", "eval.max_episode_steps=20")
_SECTIONS = ("plan", "eval")
AGREEMENT_SEED_OFFSET = 100_000
"""Agreement episodes reset with eval.seed + this, apart from the point's scored episodes."""


class SweepPlan:
    """A parsed sweep: the run, where results go, the checkpoints and the axes (key -> values)."""

    def __init__(
        self,
        run_dir: Path,
        out: Path,
        checkpoints: list[int | None],
        axes: dict[str, list[str]],
        agreement: int = 0,
    ) -> None:
        self.run_dir, self.out, self.checkpoints, self.axes = run_dir, out, checkpoints, axes
        self.agreement = agreement
        """Expert episodes for the action-agreement measure per point (0: not measured)."""

    def points(self) -> list[tuple[int | None, dict[str, str]]]:
        """(checkpoint, {key: value}) for every grid point, checkpoints outermost."""
        keys = sorted(self.axes)
        combos = itertools.product(*(self.axes[k] for k in keys))
        grid = [dict(zip(keys, combo, strict=True)) for combo in combos]
        return [(c, g) for c in self.checkpoints for g in grid]


def _checkpoint_list(text: str) -> list[int | None]:
    out: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part == "final":
            out.append(None)
        elif part.isdigit():
            out.append(int(part))
        else:
            raise TTError(f"checkpoints={text}: use optimizer steps and/or final, e.g. 3000,final")
    return out


@dataclass(frozen=True)
class SweepOptions:
    """`tt bench sweep` options (read by `config.parse_options`; plan.*/eval.* are the axes)."""

    run: str
    out: str | None = None
    checkpoints: str = "final"
    agreement: int = 0

    def __post_init__(self) -> None:
        if self.agreement < 0:
            raise TTError("tt bench sweep: agreement must be a number of expert episodes (>= 0)")


def parse_sweep(items: Sequence[str], quick: bool = False) -> SweepPlan:
    """Split `tt bench sweep` arguments (see the module doc); every value is checked here."""
    options, overrides = parse_options(items, SweepOptions, "bench sweep", sections=_SECTIONS)
    axes: dict[str, list[str]] = {}
    for item in [*(QUICK_OVERRIDES if quick else ()), *overrides]:
        key, _, value = item.partition("=")
        axes[key] = [v.strip() for v in value.split(",")]
    run_dir = Path(options.run)
    if not run_dir.is_dir():
        raise TTError(f"run={run_dir}: no such run folder")
    config = runs.read_run_config(run_dir)
    plan = SweepPlan(
        run_dir,
        Path(options.out or Path("benchmarks") / "results" / "sweeps" / run_dir.name),
        _checkpoint_list(options.checkpoints),
        axes,
        options.agreement,
    )
    for checkpoint, settings in plan.points():  # every point's settings, before anything runs
        apply_overrides(config, _overrides(settings))
        if checkpoint is not None:
            runs.checkpoint_weights(run_dir, checkpoint)
    return plan


def _overrides(settings: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in settings.items()]


def dataset_slug(checkpoint: int | None, settings: dict[str, str]) -> str:
    parts = [f"ckpt-{'final' if checkpoint is None else checkpoint}"]
    parts += [f"{k}-{v}" for k, v in sorted(settings.items())]
    return "_".join(parts).replace("/", "-")


def _training_at(run_dir: Path, checkpoint: int | None) -> dict[str, Any]:
    """Optimizer step and target tokens the weights were trained for."""

    folder = (
        runs.latest_checkpoint(run_dir)
        if checkpoint is None
        else runs.checkpoint_weights(run_dir, checkpoint).parent
    )
    if folder is None:
        return {"step": None, "tokens": None}
    state = read_json(folder / STATE_FILE, "checkpoint state")
    return {"step": int(state["step"]), "tokens": int(state["tokens"])}


def _point(plan: SweepPlan, checkpoint: int | None, settings: dict[str, str]) -> dict[str, Any]:
    overrides = _overrides(settings)
    slug = dataset_slug(checkpoint, settings)
    out = plan.run_dir / runs.EVAL_DIR / "sweep" / slug
    summary = evaluate_run(plan.run_dir, overrides, out=out, checkpoint=checkpoint)
    returns = np.asarray(summary["returns"], dtype=np.float64)
    dataset_ref = evaluation_reference(summary)
    env_steps = int(summary["env_steps"])
    command = ["tt", "eval", str(plan.run_dir), "--out", str(out)]
    command += [] if checkpoint is None else ["--checkpoint", str(checkpoint)]
    evaluated = apply_overrides(runs.read_run_config(plan.run_dir), overrides)
    return {
        "schema": SCHEMA,
        "run": str(plan.run_dir),
        "dataset": summary.get("dataset"),
        "env_id": summary.get("env_id"),
        "checkpoint": "final" if checkpoint is None else checkpoint,
        "trained": _training_at(plan.run_dir, checkpoint),
        "settings": settings,
        "score_d4rl": score_summary(returns, d4rl_reference(summary.get("env_id"))),
        "score_dataset": score_summary(returns, dataset_ref),
        "return": {"mean": float(returns.mean()), "ci95": summary.get("return_ci95")},
        "returns": returns.tolist(),
        "lengths": list(summary["lengths"]),
        "episodes": int(summary["episodes"]),
        "eval": {
            "wall_s": float(summary["wall_s"]),
            "ms_per_env_step": 1000.0 * float(summary["wall_s"]) / max(env_steps, 1),
            "agent_ms_per_env_step": summary.get("plan_ms_per_step"),
            "env_steps": env_steps,
            "n_envs": summary.get("n_envs"),
        },
        "plan": summary["config"]["plan"],
        "plan_audit": summary.get("plan_audit"),
        "command": shlex.join([*command, *overrides]),
        "machine": machine_info(resolve_device(evaluated.eval.device)),
        "git": git_info(),
        "date": now_iso(),
    }


def _agreement(plan: SweepPlan, checkpoint: int | None, settings: dict[str, str]) -> dict[str, Any]:
    overrides = _overrides(settings)
    seed = apply_overrides(runs.read_run_config(plan.run_dir), overrides).eval.seed
    found = expert_agreement(
        plan.run_dir, overrides, plan.agreement, seed + AGREEMENT_SEED_OFFSET, checkpoint
    )
    return found | {"rmse_ci95": ci95(found["rmse_per_episode"])}


def _has_agreement(point: dict[str, Any], episodes: int) -> bool:
    return int((point.get("expert_actions") or {}).get("episodes", 0)) >= episodes


def run_sweep(plan: SweepPlan, echo: Any = print) -> list[Path]:
    """Evaluate every missing point; returns the JSONs written now (results.md after each)."""
    written = []
    for checkpoint, settings in plan.points():
        path = plan.out / f"{dataset_slug(checkpoint, settings)}.json"
        if path.is_file():
            done = read_json(path, "sweep point")
            if done.get("run") != str(plan.run_dir):
                raise TTError(
                    f"{path}: a point of another run ({done.get('run')}); use another out=DIR"
                )
            if not plan.agreement or _has_agreement(done, plan.agreement):
                continue
            result = done | {"expert_actions": _agreement(plan, checkpoint, settings)}
            atomic_write_json(path, result)
            written.append(path)
            write_table(plan.out)
            echo(f"{path.stem}: action RMSE vs the expert {result['expert_actions']['rmse']:.4f}")
            continue
        result = _point(plan, checkpoint, settings)
        if plan.agreement:
            result["expert_actions"] = _agreement(plan, checkpoint, settings)
        atomic_write_json(path, result)
        written.append(path)
        write_table(plan.out)
        score = result["score_d4rl"] or result["score_dataset"] or {}
        echo(
            f"{path.stem}: score {fmt(score.get('mean'))} return {result['return']['mean']:.1f} "
            f"({result['eval']['agent_ms_per_env_step'] or 0:.1f} ms/step planning) -> {path}"
        )
    return written


def _read_points(out: Path) -> list[dict[str, Any]]:
    return read_results(out.glob("*.json"), SCHEMA, "sweep point")


def write_table(out: Path) -> str:
    """Rebuild `out/results.md` from the point JSONs there; returns its text."""
    points = _read_points(out)
    keys = sorted({k for p in points for k in p["settings"]})
    d4rl = all(p.get("score_d4rl") for p in points)
    scale = "D4RL-normalized" if d4rl else "dataset-normalized"
    agreement = any(p.get("expert_actions") for p in points)
    audited = any(p.get("plan_audit") for p in points)
    lines = [
        f"# Sweep of `{points[0]['run'] if points else out}`",
        "",
        f"Score: {scale} x100 (0 = random, 100 = expert reference), mean over the episodes with "
        "a t-interval (95%). **planning ms/step**: the agent's time per env step (all envs of a "
        "step together, divided by their number); **eval ms/step**: the whole rollout's.",
        "",
        "| checkpoint | tokens | " + " | ".join(keys) + " | episodes | score | 95% CI "
        "| return | length | planning ms/step | eval ms/step |"
        + (" action RMSE vs expert [95% CI] | floor |" if agreement else "")
        + (
            " predicted vs realized return (bias [95% CI]) | search gain [95% CI] |"
            if audited
            else ""
        ),
        "|" + "---|" * (len(keys) + 9 + 2 * agreement + 2 * audited),
    ]

    def order(p: dict[str, Any]) -> tuple[float, list[str]]:
        ckpt = p["checkpoint"]
        return (
            float("inf") if ckpt == "final" else float(ckpt),
            [p["settings"].get(k, "") for k in keys],
        )

    for p in sorted(points, key=order):
        score = (p["score_d4rl"] if d4rl else p["score_dataset"]) or {}
        tokens = p["trained"].get("tokens")
        cells = [
            str(p["checkpoint"])
            + (f" (step {p['trained']['step']})" if p["checkpoint"] == "final" else ""),
            "—" if tokens is None else f"{tokens / 1e6:.1f}M",
            *(p["settings"].get(k, "—") for k in keys),
            str(p["episodes"]),
            f"**{fmt(score.get('mean'))}**",
            fmt_ci(score.get("ci95")),
            fmt(p["return"]["mean"]),
            fmt(float(np.mean(p["lengths"])), 0),
            fmt(p["eval"]["agent_ms_per_env_step"]),
            fmt(p["eval"]["ms_per_env_step"]),
        ]
        if agreement:
            agree = p.get("expert_actions") or {}
            cells += [
                "—" if not agree else f"{agree['rmse']:.3f} {fmt_ci(agree.get('rmse_ci95'), 3)}",
                "—" if not agree else f"{agree['floor_rmse']:.3f}",
            ]
        if audited:
            audit = p.get("plan_audit") or {}
            cells.append(
                "—" if not audit
                else f"{fmt(audit['predicted_mean'])} vs {fmt(audit['realized_mean'])} "
                f"({fmt(audit['bias_mean'])} {fmt_ci(audit.get('bias_ci95'))})"
            )  # fmt: skip
            gain = audit.get("search_gain_mean")  # absent from points of older commits
            cells.append(
                "—" if gain is None else f"{fmt(gain)} {fmt_ci(audit.get('search_gain_ci95'))}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    if points:
        first = points[0]
        lines += [
            "",
            "Keys not in the table are the run's saved config (—: that point left the key to it). "
            "Each point's JSON holds its `tt eval` command.",
            *(
                [
                    "**action RMSE vs expert**: on the behaviour policy's own episodes (it drives, "
                    "the agent is asked at every state with the real history as context), RMSE of "
                    "the executed actions over states and action dims, 95% CI over episodes; "
                    "**floor**: the expert's actions at their bin centers (tokenization alone)."
                ]
                if agreement
                else []
            ),
            *(
                [
                    "**predicted vs realized return**: the winning plans' predicted discounted "
                    "return against the discounted return that followed (termination penalty "
                    "included, as the model learned it), means over episodes, bias 95% CI over "
                    "episodes (`plan_audit` of `tt eval`). **search gain**: the winning plans' "
                    "predicted return minus the mean predicted return of their sampled first "
                    "actions (what the model expects without search), 95% CI over episodes."
                ]
                if audited
                else []
            ),
            f"Machine: {first['machine']['platform']}, {first['machine']['cores']} cores, torch "
            f"{first['machine']['torch']}, {first['machine']['eval_device']}; commit "
            f"{str((first.get('git') or {}).get('commit'))[:12]}; evaluation wall time "
            f"{fmt_time(sum(p['eval']['wall_s'] for p in points))} in all.",
            "",
        ]
    text = "\n".join(lines)
    if points:
        atomic_write_bytes(out / TABLE_FILE, text.encode())
    return text


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    plan = parse_sweep(overrides or [], quick=quick)
    written = run_sweep(plan, echo=(lambda _m: None) if json_lines else print)
    if json_lines:
        for path in written:
            print(path.read_text().replace("\n", " "))
    else:
        print(write_table(plan.out))
        print(f"{len(written)} new point(s); results in {plan.out}", file=sys.stderr)
    return 0
