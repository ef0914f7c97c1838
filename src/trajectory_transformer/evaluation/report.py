"""One self-contained HTML report for a run folder (`tt report RUN_DIR`).

The report is a single file with every image embedded as a base64 PNG and the video as a data
URI, so it can be mailed, attached to an issue or opened offline with nothing broken. It reads
each part of the run folder on its own and shows a "not available" note where a part is missing
or unreadable: a report of a half-finished run is more useful than a traceback.

Parts read (all optional except the folder itself; names from `runs`): config.json, dataset.json
(with the per-dimension discretization error), metrics.jsonl, phases.json, eval/eval.json (the
planner) and eval/eval_<agent>.json (baselines), videos/*.mp4.

Normalized scores use the 0–100 scale (0 = random policy, 100 = the reference expert), i.e.
100 · (R − R_random) / (R_expert − R_random), not Minari's 0–1 fraction.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from .. import runs
from ..errors import TTError
from ..utils import atomic_write_bytes

__all__ = ["build_report_html", "write_report"]

# Keys that are the x axis (or bookkeeping), never plotted as a curve.
_X_KEYS = ("step", "epoch", "tokens", "time", "wall_time", "elapsed_s")
# A video above this size is linked as a note instead of embedded: a 100 MB HTML file helps nobody.
_MAX_VIDEO_BYTES = 40 * 1024 * 1024
_PALETTE = {"tt": "#1f77b4", "behaviour": "#2ca02c", "behavior": "#2ca02c", "random": "#d62728"}


@dataclass
class _Run:
    """Everything read from a run folder; `notes` collects why a part is missing."""

    root: Path
    config: dict[str, Any] | None = None
    dataset: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, Any] | None = None
    eval: dict[str, Any] | None = None
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    video: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading


def _read_optional_json(path: Path, what: str, notes: dict[str, str]) -> dict[str, Any] | None:
    """Read a JSON object, or record why it is not available (missing, corrupt, not an object)."""
    if not path.is_file():
        notes[what] = f"{path.name} not found"
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        notes[what] = f"{path.name} could not be read ({err.__class__.__name__})"
        return None
    if not isinstance(obj, dict):
        notes[what] = f"{path.name} is not a JSON object"
        return None
    return obj


def _read_metrics(path: Path, notes: dict[str, str]) -> list[dict[str, Any]]:
    """Read metrics.jsonl, skipping bad lines (a run killed mid-write leaves a partial last line)."""
    if not path.is_file():
        notes["metrics"] = f"{path.name} not found"
        return []
    rows: list[dict[str, Any]] = []
    bad = 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(obj, dict):
            rows.append(obj)
        else:
            bad += 1
    if bad:
        notes["metrics_skipped"] = f"{bad} unreadable line(s) in {path.name} were skipped"
    if not rows:
        notes["metrics"] = f"{path.name} holds no metrics"
    return rows


def _load_run(root: Path) -> _Run:
    run = _Run(root=root)
    n = run.notes
    run.config = _read_optional_json(root / runs.CONFIG_FILE, "config", n)
    run.dataset = _read_optional_json(root / runs.DATASET_FILE, "dataset", n)
    run.metrics = _read_metrics(root / runs.METRICS_FILE, n)
    run.phases = _read_optional_json(root / runs.PHASES_FILE, "phases", n)
    summaries = runs.read_eval_summaries(root)
    run.eval = summaries.pop("planner", None)
    if run.eval is None:
        n["eval"] = f"{runs.EVAL_DIR}/{runs.eval_name('planner')}.json not found (run `tt eval`)"
    run.baselines = summaries
    videos = sorted((root / runs.VIDEOS_DIR).glob("*.mp4"))
    run.video = videos[0] if videos else None
    return run


# --------------------------------------------------------------------------- small helpers


def _is_num(x: Any) -> TypeGuard[int | float]:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fmt(x: Any, digits: int = 4) -> str:
    """A short human form of a value: 4 significant digits for floats, '—' for nothing."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return str(x)
        if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:,.0f}"
    if isinstance(x, list | tuple):
        return "[" + ", ".join(_fmt(v, digits) for v in x) + "]"
    if isinstance(x, dict):
        return json.dumps(x, default=str)
    return str(x)


def _esc(x: Any) -> str:
    return html.escape(x if isinstance(x, str) else _fmt(x), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">Not available: {_esc(text)}</p>'


def _table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    """An HTML table; every cell is escaped (values from JSON are untrusted text)."""
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _figure(width: float = 6.0, height: float = 3.4) -> Any:
    """A matplotlib Figure on the Agg canvas, without pyplot: no global state, no display needed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _png_img(fig: Any, alt: str) -> str:
    """Render a figure to an <img> with a base64 PNG data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _finite_series(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) for one metric: x is `step` when logged, else the row index; non-finite y dropped."""
    xs, ys = [], []
    for i, row in enumerate(rows):
        y = row.get(key)
        if not _is_num(y) or not math.isfinite(y):
            continue
        x = row.get("step", i)
        xs.append(x if _is_num(x) else i)
        ys.append(float(y))
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _group_metric_keys(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Group numeric metric keys by meaning so unknown producer keys are still plotted.

    Any key containing "loss" → Losses, starting with "acc" → Accuracy, the learning rate alone,
    and every other numeric key on its own plot (namespaced keys such as charts/grad_norm).
    """
    keys: list[str] = []
    for row in rows:
        for k, v in row.items():
            if k not in keys and _is_num(v) and k not in _X_KEYS:
                keys.append(k)
    groups: dict[str, list[str]] = {"Loss": [], "Accuracy": [], "Learning rate": []}
    for k in keys:
        low = k.lower()
        last = low.rsplit("/", 1)[-1]
        if "loss" in low:
            groups["Loss"].append(k)
        elif low.startswith("acc") or "/acc" in low or "accuracy" in low:
            groups["Accuracy"].append(k)
        elif last in ("lr", "learning_rate"):
            groups["Learning rate"].append(k)
        else:  # one plot per remaining metric (grad norm, tokens/s): their scales differ
            groups.setdefault(k.rsplit("/", 1)[-1].replace("_", " "), []).append(k)
    return {name: ks for name, ks in groups.items() if ks}


def _color(name: str, i: int) -> str:
    return _PALETTE.get(name.lower(), f"C{i % 10}")


# --------------------------------------------------------------------------- policies


def _policies(run: _Run) -> dict[str, dict[str, Any]]:
    """TT first, then baselines: the order every comparison plot and table uses."""
    out: dict[str, dict[str, Any]] = {}
    if run.eval is not None:
        out["TT"] = run.eval
    for name, summary in run.baselines.items():
        out[name] = summary
    return out


def _returns(summary: dict[str, Any]) -> np.ndarray:
    vals = summary.get("returns")
    if not isinstance(vals, list):
        return np.zeros(0)
    arr = np.asarray([v for v in vals if _is_num(v)], dtype=float)
    return arr[np.isfinite(arr)]


def _refs(run: _Run, summary: dict[str, Any]) -> tuple[float, float] | None:
    """(random, expert) reference returns: the summary's own, else the dataset's."""
    ref = summary.get("reference")
    if isinstance(ref, dict):  # as evaluation.metrics.summarize writes it
        lo, hi = ref.get("random_return"), ref.get("expert_return")
        if _is_num(lo) and _is_num(hi) and hi != lo:
            return float(lo), float(hi)
    ds = run.dataset or {}
    lo, hi = ds.get("ref_min_score"), ds.get("ref_max_score")
    if _is_num(lo) and _is_num(hi) and hi != lo:
        return float(lo), float(hi)
    return None


def _ci(summary: dict[str, Any]) -> tuple[float, float] | None:
    ci = summary.get("normalized_score_ci95", summary.get("normalized_score_ci"))
    if isinstance(ci, dict):
        ci = [ci.get("low"), ci.get("high")]
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(_is_num(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def _score(run: _Run, summary: dict[str, Any]) -> tuple[float | None, tuple[float, float] | None]:
    """(normalized score, CI) as logged; computed from returns and references when not logged."""
    score = summary.get("normalized_score")
    ci = _ci(summary)
    if _is_num(score):
        return float(score), ci
    refs = _refs(run, summary)
    rets = _returns(summary)
    if refs is None or rets.size == 0:
        return None, ci
    lo, hi = refs
    norm = 100.0 * (rets - lo) / (hi - lo)
    mean = float(norm.mean())
    if ci is None and norm.size > 1:
        # Normal-approximation 95% interval of the mean, used only when the producer gave none.
        half = 1.96 * float(norm.std(ddof=1)) / math.sqrt(norm.size)
        ci = (mean - half, mean + half)
    return mean, ci


# --------------------------------------------------------------------------- sections


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{_esc(title)}</h2>\n{body}\n</section>'


def _total_time(phases: dict[str, Any]) -> float:
    """The recorded end-to-end time (`total_s`), else the sum of the phases."""
    if _is_num(phases.get("total_s")):
        return float(phases["total_s"])
    return sum(float(v) for v in phases.values() if _is_num(v))


def _kpis(run: _Run) -> str:
    """The few numbers a newcomer looks for first, large, above the summary table."""
    cards: list[tuple[str, str]] = []
    for name, summary in _policies(run).items():
        if _is_num(summary.get("success_rate")):
            # a goal task: the return of an episode cut at success says little; success does
            cards.append((f"{name} success rate", _success_text(summary, "<small>", "</small>")))
            continue
        score, ci = _score(run, summary)
        if score is None:
            continue
        sub = f"95% CI [{_fmt(ci[0], 3)}, {_fmt(ci[1], 3)}]" if ci else "no CI"
        cards.append((f"{name} normalized score", f"{_fmt(score, 3)}<small>{_esc(sub)}</small>"))
    if run.phases:
        cards.append(("total time", f"{_total_time(run.phases) / 60:.1f} min"))
    if not cards:
        return ""
    items = "".join(
        f'<div class="kpi"><div class="kpi-label">{_esc(label)}</div>'
        f'<div class="kpi-value">{value}</div></div>'
        for label, value in cards
    )
    return f'<div class="kpis">{items}</div>'


def _success_text(summary: dict[str, Any], open_: str, close: str) -> str:
    """'98% (95% CI [89.5, 99.6], Wilson)', the interval wrapped in open_ / close."""
    text = f"{_fmt(100 * summary['success_rate'])}%"
    sci = summary.get("success_ci95")
    if isinstance(sci, list) and len(sci) == 2 and all(_is_num(v) for v in sci):
        text += f"{open_}95% CI [{_fmt(100 * sci[0])}, {_fmt(100 * sci[1])}], Wilson{close}"
    return text


def _summary_section(run: _Run) -> str:
    rows: list[tuple[str, Any]] = []
    cfg = run.config or {}
    ds = run.dataset or {}
    rows.append(("run", cfg.get("name", run.root.name)))
    for key in ("env_id", "env", "dataset_id", "dataset", "spec"):
        if key in ds and not isinstance(ds[key], dict | list):
            rows.append((key.replace("_", " "), ds[key]))
    ev = run.eval
    if ev is not None:
        score, ci = _score(run, ev)
        rows.append(("normalized score (0 = random, 100 = expert)", score))
        rows.append(("95% CI", f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else None))
        rets = _returns(ev)
        mean = ev.get("return_mean", float(rets.mean()) if rets.size else None)
        std = ev.get("return_std", float(rets.std()) if rets.size else None)
        rows.append(("mean return ± std", f"{_fmt(mean)} ± {_fmt(std)}"))
        rows.append(
            ("min / max return", f"{_fmt(ev.get('return_min'))} / {_fmt(ev.get('return_max'))}")
        )
        rows.append(("episodes", ev.get("episodes", int(rets.size) if rets.size else None)))
        for key in ("done_ratio", "mean_length"):
            if key in ev:
                rows.append((key.replace("_", " "), ev[key]))
        if _is_num(ev.get("success_rate")):  # goal tasks: the env reports success
            rows.append(("success rate", _success_text(ev, " (", ")")))
            rows.append(
                (
                    "mean steps to goal (successful episodes)",
                    ev.get("steps_to_goal_mean") or "— (no episode reached it)",
                )
            )
        audit = ev.get("plan_audit")
        if isinstance(audit, dict) and _is_num(audit.get("bias_mean")):
            ci = audit.get("bias_ci95")
            bias = _fmt(audit["bias_mean"]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
            rows.append(
                (
                    "plans' predicted vs realized discounted return (bias, 95% CI)",
                    f"{_fmt(audit.get('predicted_mean'))} vs {_fmt(audit.get('realized_mean'))}"
                    f" ({bias}; correlation {_fmt(audit.get('correlation'), 2)})",
                )
            )
            if _is_num(audit.get("search_gain_mean")):
                ci = audit.get("search_gain_ci95")
                rows.append(
                    (
                        "search gain: predicted return over the sampled first actions' (95% CI)",
                        _fmt(audit["search_gain_mean"])
                        + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""),
                    )
                )
    body = _kpis(run) + _table(rows)
    if ev is None:
        body += _note(run.notes.get("eval", "no evaluation"))
    if run.phases:
        prow = [
            (k.removesuffix("_s"), f"{_fmt(v)} s")
            for k, v in run.phases.items()
            if _is_num(v) and k != "total_s"
        ]
        prow.append(("total", f"{_fmt(_total_time(run.phases))} s"))
        body += "<h3>Time per phase</h3>\n" + _table(prow, ("phase", "wall time"))
    else:
        body += "<h3>Time per phase</h3>\n" + _note(run.notes.get("phases", "no phase timings"))
    return _section("summary", "Summary", body)


def _training_section(run: _Run) -> str:
    if not run.metrics:
        return _section("training", "Training curves", _note(run.notes.get("metrics", "")))
    imgs = []
    for name, keys in _group_metric_keys(run.metrics).items():
        fig = _figure()
        ax = fig.subplots()
        positive = True
        for i, key in enumerate(keys):
            x, y = _finite_series(run.metrics, key)
            if y.size == 0:
                continue
            positive = positive and bool((y > 0).all())
            style = "-" if len(y) > 1 else "o"
            ax.plot(x, y, style, label=key, color=f"C{i % 10}", linewidth=1.6 if i == 0 else 1.1)
        if name == "Loss" and positive and ax.lines:
            ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
        imgs.append(f"<figure>{_png_img(fig, f'training: {name}')}</figure>")
    body = '<div class="grid">' + "\n".join(imgs) + "</div>"
    last = run.metrics[-1]
    body += "<h3>Last logged values</h3>\n" + _table(
        [(k, v) for k, v in last.items() if _is_num(v)], ("metric", "value")
    )
    if "metrics_skipped" in run.notes:
        body += f'<p class="note">{_esc(run.notes["metrics_skipped"])}</p>'
    return _section("training", "Training curves", body)


def _dim_names(dataset: dict[str, Any], n: int, goal_dim: int = 0) -> list[str]:
    """obs0.., act0.., reward, value[, goal0..] when the dataset's dims add up, else d0, d1, ...

    A goal-conditioned run's goal left the observation (the dataset's observation_dim counts it)
    and has the discretizer's last dimensions."""
    obs, act = dataset.get("observation_dim"), dataset.get("action_dim")
    if isinstance(obs, int) and isinstance(act, int) and obs + act + 2 == n:
        return [
            *(f"obs{i}" for i in range(obs - goal_dim)),
            *(f"act{i}" for i in range(act)),
            "reward",
            "value",
            *(f"goal{i}" for i in range(goal_dim)),
        ]
    return [f"d{i}" for i in range(n)]


def _discretization_section(run: _Run) -> str:
    title = "Discretization error per dimension"
    if run.dataset is None:
        return _section("discretization", title, _note(run.notes.get("dataset", "")))
    err = run.dataset.get("discretization_error")
    if not isinstance(err, list) or not err or not all(_is_num(v) for v in err):
        return _section(
            "discretization", title, _note(f"{runs.DATASET_FILE} has no discretization_error")
        )
    model = _read_optional_json(run.root / runs.MODEL_CONFIG_FILE, "model", {})
    goal_dim = model.get("goal_dim", 0) if model is not None else 0
    names = _dim_names(run.dataset, len(err), goal_dim if isinstance(goal_dim, int) else 0)
    fig = _figure(max(6.0, 0.28 * len(err) + 2), 3.4)
    ax = fig.subplots()
    ax.bar(range(len(err)), err, color="C0")
    rot, ha = (60, "right") if len(err) > 8 else (0, "center")
    ax.set_xticks(range(len(err)), [str(n) for n in names], rotation=rot, ha=ha, fontsize=8)
    ax.set_ylabel("mean |x − decode(encode(x))|")
    ax.grid(axis="y", alpha=0.3)
    body = (
        '<p class="caption">Mean absolute round-trip error of each dimension after binning; '
        "a tall bar is a dimension the planner sees coarsely.</p>"
        + f"<figure>{_png_img(fig, 'discretization error per dimension')}</figure>"
    )
    return _section("discretization", title, body)


def _returns_section(run: _Run) -> str:
    pols = {k: v for k, v in _policies(run).items() if _returns(v).size}
    title = "Returns: TT vs behaviour vs random"
    if not pols:
        return _section("returns", title, _note(run.notes.get("eval", "no episode returns")))
    allr = np.concatenate([_returns(v) for v in pols.values()])
    lo, hi = float(allr.min()), float(allr.max())
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    bins = np.linspace(lo, hi, 25)
    fig = _figure(7.0, 3.6)
    ax = fig.subplots()
    for i, (name, summary) in enumerate(pols.items()):
        r = _returns(summary)
        c = _color(name, i)
        ax.hist(r, bins=bins, alpha=0.35, color=c, label=f"{name} (n={r.size})")
        ax.hist(r, bins=bins, histtype="step", color=c, linewidth=1.4)
        ax.axvline(float(r.mean()), color=c, linestyle="--", linewidth=1.2)
    refs = _refs(run, run.eval or {})
    if refs is not None:
        for val, lab in zip(refs, ("random ref", "expert ref")):
            if lo - 0.1 * (hi - lo) <= val <= hi + 0.1 * (hi - lo):
                ax.axvline(val, color="0.4", linestyle=":", linewidth=1)
                ax.annotate(lab, (val, 0.97), xycoords=("data", "axes fraction"), fontsize=7)
    ax.set_xlabel("episode return")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    body = f"<figure>{_png_img(fig, 'return histograms')}</figure>"
    body += '<p class="caption">Dashed lines: mean return of each policy.</p>'
    names = " ".join(pols).lower()
    missing = [b for b, tag in (("behaviour", "behav"), ("random", "random")) if tag not in names]
    if missing:
        found = ", ".join(f"{runs.EVAL_DIR}/{runs.eval_name(m)}.json" for m in missing)
        body += _note(f"{found} not found (run `tt eval RUN --agent NAME`)")
    return _section("returns", title, body)


def _score_section(run: _Run) -> str:
    pols = _policies(run)
    title = "Normalized score with confidence interval"
    if not pols:
        return _section("score", title, _note(run.notes.get("eval", "no evaluation")))
    rows = []
    points = []
    for name, s in pols.items():
        score, ci = _score(run, s)
        rets = _returns(s)
        ci_txt = f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else None
        n_ep = s.get("episodes", int(rets.size) if rets.size else None)
        rows.append((name, score, ci_txt, s.get("return_mean"), s.get("return_std"), n_ep))
        if score is not None:
            points.append((name, score, ci))
    refs = _refs(run, run.eval or next(iter(pols.values())))
    ref_txt = (
        f"random = {_fmt(refs[0])}, expert = {_fmt(refs[1])}" if refs else "reference not recorded"
    )
    ref_src = ((run.eval or {}).get("reference") or {}).get("source")
    if isinstance(ref_src, str):
        ref_txt = f"{ref_src} ({ref_txt})"
    body = (
        '<p class="caption">Normalized score = 100 · (R − R<sub>random</sub>) / '
        "(R<sub>expert</sub> − R<sub>random</sub>): 0 = random policy, 100 = expert "
        f"(not Minari's 0–1 fraction). Reference returns: {_esc(ref_txt)}.</p>"
    )
    body += _table(
        rows, ("policy", "normalized score", "95% CI", "mean return", "std return", "episodes")
    )
    if points:
        fig = _figure(6.0, 0.4 * len(points) + 1.0)
        ax = fig.subplots()
        for i, (name, score, ci) in enumerate(points):
            c = _color(name, i)
            if ci is not None:
                err = [[max(score - ci[0], 0.0)], [max(ci[1] - score, 0.0)]]
                ax.errorbar([score], [i], xerr=err, fmt="o", color=c, capsize=5)
            else:
                ax.plot([score], [i], "o", color=c)
        ax.set_yticks(range(len(points)), [p[0] for p in points])
        ax.invert_yaxis()
        for ref in (0, 100):
            ax.axvline(ref, color="0.5", linestyle=":", linewidth=1)
        ax.set_xlabel("normalized score")
        ax.grid(axis="x", alpha=0.3)
        body += f"<figure>{_png_img(fig, 'normalized score with confidence interval')}</figure>"
    return _section("score", title, body)


def _latency_section(run: _Run) -> str:
    ev = run.eval
    title = "Planning latency"
    if ev is None:
        return _section("latency", title, _note(run.notes.get("eval", "no evaluation")))
    keys = ("plan_ms_per_step", "plan_ms_per_call", "env_steps_per_s", "wall_s")
    rows = [(k, ev[k]) for k in keys if k in ev]
    rows += [
        (k, v)
        for k, v in ev.items()
        if k not in keys and _is_num(v) and any(t in k for t in ("_ms", "_per_s", "time"))
    ]
    body = _table(rows, ("timing", "value")) if rows else _note("no timings in eval.json")
    plan = ev.get("plan") or ev.get("plan_config")
    if isinstance(plan, dict) and plan:
        body += "<h3>Planner settings</h3>\n" + _table(sorted(plan.items()), ("setting", "value"))
    samples = ev.get("plan_ms")
    if isinstance(samples, list) and len(samples) > 1 and all(_is_num(v) for v in samples):
        fig = _figure(6.0, 3.0)
        ax = fig.subplots()
        ax.hist(samples, bins=30, color="C4")
        ax.set_xlabel("ms per planning step")
        ax.set_ylabel("steps")
        body += f"<figure>{_png_img(fig, 'planning latency histogram')}</figure>"
    return _section("latency", title, body)


def _dataset_section(run: _Run) -> str:
    if run.dataset is None:
        return _section("dataset", "Dataset", _note(run.notes.get("dataset", "")))
    rows = [(k, v) for k, v in run.dataset.items()]
    return _section("dataset", "Dataset", _table(rows, ("field", "value")))


def _config_section(run: _Run) -> str:
    if run.config is None:
        return _section("config", "Config", _note(run.notes.get("config", "")))
    text = json.dumps(run.config, indent=2, sort_keys=False, default=str)
    return _section("config", "Config", f"<pre>{html.escape(text)}</pre>")


def _video_section(run: _Run) -> str:
    title = "Evaluation episode"
    if run.video is None:
        return _section("video", title, _note("no videos/*.mp4 (run `tt render RUN_DIR`)"))
    size = run.video.stat().st_size
    if size > _MAX_VIDEO_BYTES:
        msg = f"{run.video.name} is {size / 2**20:.0f} MiB, too large to embed; open it beside the report"
        return _section("video", title, _note(msg))
    data = base64.b64encode(run.video.read_bytes()).decode("ascii")
    body = (
        f'<p class="caption">{_esc(run.video.name)}</p>'
        '<video id="episode-video" controls muted loop playsinline preload="auto" '
        f'src="data:video/mp4;base64,{data}"></video>'
    )
    return _section("video", title, body)


_CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#dfe3ea; --bg:#f6f7f9; --accent:#1f77b4; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:18px 32px; }
header h1 { margin:0; font-size:22px; }
header p { margin:4px 0 0; color:var(--muted); }
nav { margin-top:10px; display:flex; flex-wrap:wrap; gap:6px 14px; font-size:14px; }
nav a { color:var(--accent); text-decoration:none; }
main { max-width:1100px; margin:0 auto; padding:16px 32px 48px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px;
  padding:14px 22px 18px; margin:18px 0; }
h2 { font-size:18px; margin:4px 0 12px; }
h3 { font-size:15px; margin:16px 0 6px; color:var(--muted); }
table { border-collapse:collapse; margin:6px 0; font-size:14px; }
th, td { border-bottom:1px solid var(--line); padding:4px 14px 4px 0; text-align:left;
  vertical-align:top; }
th { color:var(--muted); font-weight:600; }
td { font-variant-numeric: tabular-nums; }
figure { margin:8px 0; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(440px,1fr)); gap:8px; }
img.plot { max-width:100%; height:auto; display:block; }
pre { background:var(--bg); border:1px solid var(--line); border-radius:6px; padding:10px;
  font-size:12.5px; overflow:auto; max-height:480px; }
video { max-width:100%; border:1px solid var(--line); border-radius:6px; background:#000; }
.note { color:#8a5a00; background:#fff8e6; border:1px solid #f0dca8; border-radius:6px;
  padding:6px 10px; display:inline-block; }
.kpis { display:flex; flex-wrap:wrap; gap:12px; margin:4px 0 14px; }
.kpi { border:1px solid var(--line); border-radius:8px; padding:8px 16px; min-width:150px; }
.kpi-label { color:var(--muted); font-size:13px; }
.kpi-value { font-size:24px; font-weight:600; font-variant-numeric: tabular-nums; }
.kpi-value small { display:block; font-size:12px; font-weight:400; color:var(--muted); }
.caption { color:var(--muted); font-size:13.5px; }
"""

# Sets data attributes on <body> saying whether every image decoded, whether the video loaded and
# whether any script error happened. Harmless for a reader; the browser test asserts on them
# after `chromium --dump-dom`.
_CHECK_JS = """
(function () {
  var b = document.body, errors = 0;
  window.addEventListener('error', function () { errors += 1; b.dataset.jsErrors = errors; }, true);
  b.dataset.jsErrors = 0;
  function images() {
    var imgs = Array.prototype.slice.call(document.images), ok = 0;
    imgs.forEach(function (i) { if (i.complete && i.naturalWidth > 0) ok += 1; });
    b.dataset.imagesTotal = imgs.length; b.dataset.imagesLoaded = ok;
  }
  window.addEventListener('load', images);
  images();
  var v = document.getElementById('episode-video');
  if (v) {
    b.dataset.videoReady = v.readyState >= 2 ? 1 : 0;
    v.addEventListener('loadeddata', function () {
      b.dataset.videoReady = 1; b.dataset.videoWidth = v.videoWidth;
      b.dataset.videoDuration = v.duration;
    });
    v.addEventListener('error', function () {
      b.dataset.videoError = v.error ? v.error.code : 'unknown';
    });
  }
  b.dataset.reportScript = 'ok';
})();
"""


def build_report_html(run_dir: str | Path) -> str:
    """The report as an HTML string (separate from writing so it can be tested or served)."""
    run_dir = Path(run_dir)
    run = _load_run(run_dir)
    name = (run.config or {}).get("name") or run_dir.name
    env_id = (run.dataset or {}).get("env_id") or ""
    sections = [
        ("summary", "Summary", _summary_section),
        ("training", "Training", _training_section),
        ("discretization", "Discretization", _discretization_section),
        ("returns", "Returns", _returns_section),
        ("score", "Normalized score", _score_section),
        ("latency", "Planning latency", _latency_section),
        ("dataset", "Dataset", _dataset_section),
        ("config", "Config", _config_section),
        ("video", "Video", _video_section),
    ]
    nav = " ".join(f'<a href="#{sid}">{_esc(label)}</a>' for sid, label, _ in sections)
    body = "\n".join(fn(run) for _, _, fn in sections)
    subtitle = " · ".join(str(x) for x in (env_id, run_dir.resolve()) if x)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(f'TT report: {name}')}</title>\n"
        f"<style>{_CSS}</style></head>\n"
        "<body>\n"
        f"<header><h1>Trajectory Transformer report: {_esc(name)}</h1>"
        f"<p>{_esc(subtitle)}</p><nav>{nav}</nav></header>\n"
        f"<main>\n{body}\n</main>\n"
        f"<script>{_CHECK_JS}</script>\n"
        "</body></html>\n"
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write RUN_DIR/report.html (or `out`) atomically and return its path.

    Raises TTError only when RUN_DIR itself is missing; every missing part becomes a note.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TTError(f"{run_dir}: no such run folder")
    target = Path(out) if out is not None else run_dir / runs.REPORT_FILE
    atomic_write_bytes(target, build_report_html(run_dir).encode("utf-8"))
    return target
