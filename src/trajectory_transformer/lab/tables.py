"""A suite's results as a table, per-seed rows and a plot (results.md, results.png).

Aggregates the cells' scores per dataset and method (mean over seeds and the interval over all
episodes), beside the data's score and the published numbers.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_write_bytes
from .ledger import PLOT_FILE, TABLE_FILE
from .published import PUBLISHED_SOURCES, published_score
from .records import (
    ci95,
    fmt,
    fmt_ci,
    fmt_time,
    read_results,
)
from .suite import ALL_METHODS, SCHEMA

__all__ = [
    "aggregate",
    "write_report",
]


# ------------------------------------------------------------------------------ aggregation
def read_cells(results_dir: Path) -> list[dict[str, Any]]:
    return read_results(results_dir.rglob("*.json"), SCHEMA, "quality cell result")


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def aggregate(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, method): the mean over seeds and two 95% CIs.

    The headline score is D4RL-normalized where every cell of the row has D4RL references, else
    normalized by the dataset's references. `ci95_seeds` is a t-interval over the per-seed mean
    scores (what a new seed would vary by); `ci95_pooled` a t-interval over all episodes of all
    seeds pooled (narrower: it ignores seed-to-seed variation). Both need two values or more.
    """
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        if not cell.get("not_applicable"):
            groups.setdefault((cell["dataset"], cell["method"]), []).append(cell)
    datasets = list(dict.fromkeys(c["dataset"] for c in cells))
    rows = []
    for (dataset, method), group in sorted(
        groups.items(), key=lambda kv: (datasets.index(kv[0][0]), order.get(kv[0][1], 99))
    ):
        group = sorted(group, key=lambda c: c["seed"])
        if all(c.get("score_d4rl") for c in group):
            key, ref = "score_d4rl", "D4RL"
        elif all(c.get("score_dataset") for c in group):
            key, ref = "score_dataset", "dataset"
        else:
            key, ref = "", "none"
        seed_means = [float(c[key]["mean"]) for c in group] if key else []
        pooled = [float(s) for c in group for s in c[key]["per_episode"]] if key else []
        dataset_scores = [
            float(c["score_dataset"]["mean"]) for c in group if c.get("score_dataset")
        ]
        data_scores = [
            float(c["data"][key])
            for c in group
            if key and (c.get("data") or {}).get(key) is not None
        ]
        returns = [float(c["return"]["mean"]) for c in group]
        trained = [c["train"] for c in group if c.get("train")]
        env_id = next((c["env_id"] for c in group if c.get("env_id")), None)
        published = published_score(method, env_id, dataset)
        train_wall_s = _mean([float(t["wall_s"]) for t in trained])
        eval_s_per_episode = float(np.mean([c["eval"]["s_per_episode"] for c in group]))
        episodes = sum(int(c["episodes"]) for c in group)
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "seeds": [c["seed"] for c in group],
                "episodes": episodes,
                "reference": ref,
                "score_mean": _mean(seed_means),
                "score_seed_means": seed_means,
                "score_ci95_seeds": ci95(seed_means),
                "score_ci95_pooled": ci95(pooled),
                "dataset_score_mean": _mean(dataset_scores),
                "data_score": _mean(data_scores),
                "return_mean": _mean(returns),
                "return_std_seeds": float(np.std(returns, ddof=1)) if len(returns) > 1 else None,
                "train_wall_s": train_wall_s,
                "train_steps": _mean([float(t["steps"]) for t in trained]),
                "eval_s_per_episode": eval_s_per_episode,
                # what one seed of the row costs: its training (shared by tt-beam and tt-greedy)
                # plus evaluating its episodes
                "compute_s_per_seed": (train_wall_s or 0.0)
                + eval_s_per_episode * episodes / len(group),
                "ms_per_env_step": _mean([float(c["eval"]["ms_per_env_step"]) for c in group]),
                "published_d4rl": published,
                "published_source": PUBLISHED_SOURCES.get(method)
                if published is not None
                else None,
            }
        )
    return rows


def _table(suite_name: str, rows: list[dict[str, Any]], cells: list[dict[str, Any]]) -> str:
    command = next(
        (c["commands"]["suite"] for c in cells if "commands" in c),
        f"tt bench quality suite={suite_name}",
    )
    lines = [
        f"# Quality suite `{suite_name}`",
        "",
        f"Generated by `{command}` from the {len(cells)} cell JSONs in this folder (rebuild the "
        f"table and plot alone with `{command} report_only=true`).",
        "",
        "- **score**: normalized x100 (0 = random reference, 100 = expert reference), of the "
        "**last checkpoint** (the weights at the end of training, not the best checkpoint); "
        "`ref` says which references: D4RL = D4RL's "
        "published random/expert returns (HalfCheetah -280.18/12135.0, Hopper -20.27/3234.3, "
        "Walker2d 1.63/4592.3), dataset = the random and expert returns stored with the "
        "dataset. The dataset-ref score column always uses the dataset's.",
        "- **95% CI (seeds)**: t-interval over the per-seed mean scores; **(episodes)**: "
        "t-interval over all episodes of all seeds pooled (narrower: ignores seed-to-seed spread).",
        "- **return**: mean raw return over seeds ± its standard deviation across seeds.",
        "- **train time**: wall time of the one training run per seed that tt-beam and tt-greedy "
        "share (mean over seeds; the training loop's seconds summed over every session, as its "
        "last checkpoint records them; cells whose checkpoints predate that record sum the "
        "sessions that ended cleanly, see each cell's train.wall_note); behaviour trains nothing; "
        "a d3rlpy baseline (bc, td3bc, cql, iql, dt) trains its own, timed in its worker from "
        "loading the data to the last gradient step. **eval/episode**: evaluation wall time divided by episodes (envs run together in "
        "one vector env; every method is scored by the same episode loop on the same episodes).",
        "",
        "- **data**: the dataset's own mean episode return on the same scale as **score** (the "
        "data the method learned from; beating it is the point of offline RL).",
        "- **published D4RL (orientation only, different data)**: what the papers report for "
        "the method on D4RL's -v2 dataset of the same env and level (TT: the TT paper's Table 1; "
        "BC, TD3+BC, CQL, IQL, DT: the IQL paper's Table 1), D4RL-normalized. Other data, "
        "budgets and evaluation: never a result of this suite; shown only for Hopper, "
        "HalfCheetah and Walker2d medium, medium-replay and medium-expert datasets.",
        "",
        "| dataset | method | seeds | score | 95% CI (seeds) | 95% CI (episodes) | ref | data "
        "| dataset-ref score | return | train time | eval/episode | ms/env step "
        "| published D4RL (orientation only, different data) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ret = fmt(r["return_mean"])
        if r["return_std_seeds"] is not None:
            ret += f" ± {r['return_std_seeds']:.1f}"
        lines.append(
            f"| {r['dataset']} | {r['method']} | {len(r['seeds'])} | **{fmt(r['score_mean'])}** "
            f"| {fmt_ci(r['score_ci95_seeds'])} | {fmt_ci(r['score_ci95_pooled'])} "
            f"| {r['reference']} | {fmt(r['data_score'])} | {fmt(r['dataset_score_mean'])} "
            f"| {ret} "
            f"| {fmt_time(r['train_wall_s'])} | {fmt_time(r['eval_s_per_episode'])} "
            f"| {fmt(r['ms_per_env_step'], 2)} | {fmt(r['published_d4rl'])} |"
        )
    lines += _seed_table(rows)
    skipped = sorted(
        {(c["dataset"], c["method"], c["not_applicable"]) for c in cells if c.get("not_applicable")}
    )
    if skipped:
        lines += ["", "Not applicable:"]
        lines += [f"- {method} on {dataset}: {why}" for dataset, method, why in skipped]
    lines += ["", "## Budget per cell", ""]
    seen: set[str] = set()
    baselines_seen: set[str] = set()
    for cell in cells:
        if cell.get("agent") == "d3rlpy" and cell["method"] not in baselines_seen:
            baselines_seen.add(cell["method"])
            lines.append(_baseline_budget_line(cell))
        if cell["dataset"] in seen or cell.get("agent") != "planner":
            continue
        seen.add(cell["dataset"])
        cfg = cell["config"]
        t, m, p, e = cfg["train"], cfg["model"], cfg["plan"], cfg["eval"]
        lines.append(
            f"- {cell['dataset']} (preset `{Path(cell['preset']).stem}`): "
            f"{cell['train']['steps']} steps x batch {t['batch_size']} "
            f"({cell['train']['window_tokens'] / 1e6:.3g}M window tokens), model "
            f"{m['n_layer']}x{m['n_embd']} ({m['n_head']} heads), {cfg['data']['n_transitions']}-"
            f"transition windows; beam width {p['beam_width']}, horizon {p['horizon']}, expand "
            f"{p['expand']}, context {p['context']}; {e['episodes']} episodes per cell, "
            f"{e['n_envs']} envs at once"
        )
    scored = [c for c in cells if not c.get("not_applicable")]
    machines = sorted(
        {
            f"{c['machine']['platform']}, {c['machine']['cores']} cores, torch "
            f"{c['machine']['torch']}, {c['machine']['eval_device']}"
            + (f" ({c['machine']['gpu']})" if c["machine"].get("gpu") else "")
            for c in scored
        }
    )
    commits = sorted({str((c.get("git") or {}).get("commit"))[:12] for c in cells})
    dates = sorted(c["date"] for c in cells)
    lines += [
        "",
        "## Provenance",
        "",
        f"- machine(s): {'; '.join(machines)}",
        f"- commit(s): {', '.join(commits)}",
        f"- cells dated {dates[0]} to {dates[-1]}" if dates else "- no cells",
        "- each cell's JSON holds its exact config and the commands that reproduce it",
        "",
    ]
    return "\n".join(lines)


def _seed_table(rows: list[dict[str, Any]]) -> list[str]:
    """Every seed's score side by side, the mean's distance from the data, and the compute one
    seed costs: how steady each method is and what its score costs, in one table."""
    seeds = sorted({seed for r in rows for seed in r["seeds"]})
    lines = [
        "",
        "## Per seed",
        "",
        "Each seed's score (its cell's mean over episodes), the mean over seeds minus the data's "
        "own score, and one seed's compute: training (shared by tt-beam and tt-greedy) plus "
        "evaluating its episodes.",
        "",
        "| dataset | method | "
        + " | ".join(f"seed {seed}" for seed in seeds)
        + " | mean | 95% CI (seeds) | mean − data | compute per seed |",
        "|---|---|" + "---|" * len(seeds) + "---|---|---|---|",
    ]
    for r in rows:
        by_seed = dict(zip(r["seeds"], r["score_seed_means"], strict=False))
        gain = (
            None
            if r["score_mean"] is None or r["data_score"] is None
            else r["score_mean"] - r["data_score"]
        )
        lines.append(
            f"| {r['dataset']} | {r['method']} | "
            + " | ".join(fmt(by_seed.get(seed)) for seed in seeds)
            + f" | **{fmt(r['score_mean'])}** | {fmt_ci(r['score_ci95_seeds'])} "
            f"| {'—' if gain is None else f'{gain:+.1f}'} | {fmt_time(r['compute_s_per_seed'])} |"
        )
    return lines


def _baseline_budget_line(cell: dict[str, Any]) -> str:
    """A baseline's budget as its cell records it (budget level, steps, batch, network, source)."""
    train = cell["train"]
    budget = train["budget"]
    net = "-".join(str(h) for h in budget["hidden"])
    shape = (
        f"GPT {budget['layers']} layers x {net} ({budget['heads']} head(s)), context "
        f"{budget['context']}, {budget['warmup_steps']} warm-up steps"
        if budget.get("layers")
        else f"MLPs {net}"
    )
    return (
        f"- {cell['method']} (d3rlpy, budget '{train['budget_level']}'): {train['steps']} gradient "
        f"steps x batch {train['batch_size']}, {shape}; settings from {train['source']}"
    )


def _plot(suite_name: str, rows: list[dict[str, Any]]) -> bytes:
    """Per dataset: the scores as bars (top) and score against compute (bottom), the data's
    own score as a dashed line in both: where each method wins, and at what compute cost."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    fig = Figure(figsize=(max(4.5, 3.6 * len(datasets)), 6.8), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.subplots(2, len(datasets), sharey=True, squeeze=False)
    colors = {"tt-beam": "#3b75af", "tt-greedy": "#ef8636", "behaviour": "#519e3e",
              "bc": "#8d69b8", "td3bc": "#c53a32", "cql": "#84584e", "iql": "#d57fbe",
              "dt": "#7f7f7f"}  # fmt: skip
    marked = False
    for col, dataset in enumerate(datasets):
        bars, costs = grid[0][col], grid[1][col]
        mine = [r for r in rows if r["dataset"] == dataset]
        for i, r in enumerate(mine):
            if r["score_mean"] is None:
                continue
            color = colors.get(r["method"], "#888888")
            ci = r["score_ci95_seeds"] or r["score_ci95_pooled"]
            err = None if ci is None else [[r["score_mean"] - ci[0]], [ci[1] - r["score_mean"]]]
            bars.bar(i, r["score_mean"], color=color, yerr=err, capsize=4, alpha=0.85)
            bars.scatter([i] * len(r["score_seed_means"]), r["score_seed_means"], color="black",
                         s=10, zorder=3)  # fmt: skip
            if r.get("published_d4rl") is not None:
                bars.scatter([i], [r["published_d4rl"]], marker="D", facecolors="none",
                             edgecolors="black", s=28, zorder=4)  # fmt: skip
                marked = True
            if r["train_wall_s"] is not None:  # the cell's compute: its training + evaluation
                minutes = r["compute_s_per_seed"] / 60
                costs.errorbar([minutes], [r["score_mean"]], yerr=err, fmt="o", color=color,
                               capsize=3)  # fmt: skip
                costs.annotate(r["method"], (minutes, r["score_mean"]), fontsize=6,
                               xytext=(4, 3), textcoords="offset points")  # fmt: skip
        data_score = next((r["data_score"] for r in mine if r["data_score"] is not None), None)
        for ax in (bars, costs):
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.axhline(100, color="grey", linewidth=0.5, linestyle=":")
            if data_score is not None:
                ax.axhline(data_score, color="black", linewidth=0.8, linestyle="--")
        bars.set_xticks(range(len(mine)), [r["method"] for r in mine], fontsize=7, rotation=35,
                        ha="right")  # fmt: skip
        refs = {r["reference"] for r in mine}
        bars.set_title(f"{dataset}\n(ref: {', '.join(sorted(refs))}; dashed: the data)", fontsize=8)
        costs.set_xlim(left=0)
        costs.set_xlabel("training + evaluation wall time per seed, min", fontsize=7)
        costs.tick_params(labelsize=7)
    grid[0][0].set_ylabel("normalized score x100 (last checkpoint)", fontsize=8)
    grid[1][0].set_ylabel("score against compute", fontsize=8)
    note = "\ndiamonds: published D4RL scores (other data, orientation only)" if marked else ""
    fig.suptitle(f"{suite_name}: mean over seeds, 95% CI over seeds (pooled episodes for one seed), "
                 f"dots = seeds{note}", fontsize=9)  # fmt: skip
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report(suite_name: str, results_dir: Path) -> list[dict[str, Any]]:
    """Rebuild results.md and results.png from the cell JSONs under `results_dir`; returns the rows."""
    cells = read_cells(results_dir)
    rows = aggregate(cells)
    if not cells:
        return rows
    atomic_write_bytes(results_dir / TABLE_FILE, _table(suite_name, rows, cells).encode())
    if rows:  # only not-applicable cells so far: a table that says so, nothing to plot
        atomic_write_bytes(results_dir / PLOT_FILE, _plot(suite_name, rows))
    return rows
