"""The report's sections, one function each: summary, training, discretization, returns, scores,
latency, dataset, config and video."""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import numpy as np

from ... import runs
from .html import (
    _color,
    _esc,
    _figure,
    _finite_series,
    _fmt,
    _group_metric_keys,
    _is_num,
    _note,
    _png_img,
    _table,
)
from .read import _MAX_VIDEO_BYTES, _read_optional_json, _Run
from .scores import _policies, _refs, _returns, _score

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
    rows.append(("run", run.root.resolve().name))
    if cfg.get("name") not in (None, run.root.resolve().name):
        rows.append(("config name", cfg["name"]))
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
    elif "phases" in run.notes:  # a phases.json that is there but unreadable
        body += "<h3>Time per phase</h3>\n" + _note(run.notes["phases"])
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
    body += _score_by_step(run, pols)
    return _section("score", title, body)


def _score_by_step(run: _Run, pols: dict[str, dict[str, Any]]) -> str:
    """Score against training step from the evaluations of saved checkpoints (`tt eval
    --checkpoint STEP --out RUN/...`, `tt bench sweep ... checkpoints=...`) beside the final
    weights', one line per agent and plan mode; nothing unless a checkpoint was evaluated."""
    final = runs.train_step(run.root)
    series: dict[str, list[tuple[int, float, tuple[float, float] | None]]] = {}
    for s in pols.values():
        step = s.get("checkpoint")
        step = final if step == "final" and final else step
        score, ci = _score(run, s)
        if not isinstance(step, int) or isinstance(step, bool) or score is None:
            continue
        plan = (s.get("config") or {}).get("plan") or {}
        key = str(s.get("agent", "?"))
        key += (
            f" ({plan['mode']})"
            if key == "planner" and isinstance(plan, dict) and plan.get("mode")
            else ""
        )
        series.setdefault(key, []).append((step, score, ci))
    if not any(len({p[0] for p in pts}) > 1 for pts in series.values()):
        return ""
    fig = _figure(6.0, 3.4)
    ax = fig.subplots()
    for i, (key, pts) in enumerate(sorted(series.items())):
        pts.sort(key=lambda p: p[0])
        x = [p[0] for p in pts]
        ax.plot(x, [p[1] for p in pts], "o-", color=f"C{i % 10}", label=key)
        with_ci = [p for p in pts if p[2] is not None]
        if with_ci:
            ax.fill_between([p[0] for p in with_ci], [p[2][0] for p in with_ci],  # type: ignore[index]
                            [p[2][1] for p in with_ci], color=f"C{i % 10}", alpha=0.15)  # type: ignore[index]  # fmt: skip
    ax.set_xlabel("training step (checkpoint)")
    ax.set_ylabel("normalized score")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return (
        "<h3>Score by training step</h3>\n"
        f"<figure>{_png_img(fig, 'normalized score by training step')}</figure>"
        '<p class="caption">Evaluations of saved checkpoints and of the final weights; shaded: '
        "95% CI.</p>"
    )


def _audit_pairs(audit: dict[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, realized) arrays of an audit's `points` or `episode_means`; empty if absent."""
    block = audit.get(key)
    if not isinstance(block, dict):
        return np.zeros(0), np.zeros(0)
    pred, real = block.get("predicted"), block.get("realized")
    if not (isinstance(pred, list) and isinstance(real, list) and len(pred) == len(real)):
        return np.zeros(0), np.zeros(0)
    pairs = np.asarray(
        [(p, r) for p, r in zip(pred, real) if _is_num(p) and _is_num(r)], dtype=float
    ).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _audit_section(run: _Run) -> str:
    """Predicted vs realized returns of the plans (`tt eval`'s plan audit), one colour per
    evaluation: points above the diagonal are plans the env paid less than the model promised."""
    title = "Plan audit: predicted vs realized return"
    audited = {
        name: s["plan_audit"]
        for name, s in _policies(run).items()
        if isinstance(s.get("plan_audit"), dict) and _is_num(s["plan_audit"].get("bias_mean"))
    }
    if not audited:
        why = "no evaluation with a plan audit (beam or likelihood search: `tt eval RUN`)"
        return _section("audit", title, _note(why))
    fig = _figure(5.6, 4.4)
    ax = fig.subplots()
    lo, hi = np.inf, -np.inf
    for i, (name, audit) in enumerate(audited.items()):
        c = _color(name, i)
        pred, real = _audit_pairs(audit, "points")
        if pred.size:
            ax.scatter(real, pred, s=6, alpha=0.25, color=c, linewidths=0)
        ep_pred, ep_real = _audit_pairs(audit, "episode_means")
        if ep_pred.size == 0:  # an evaluation written before the audit kept its points
            ep_pred = np.asarray([audit["predicted_mean"]], dtype=float)
            ep_real = np.asarray([audit["realized_mean"]], dtype=float)
        ax.scatter(ep_real, ep_pred, s=28, color=c, edgecolors="black", linewidths=0.5,
                   label=f"{name}: episode means (n={ep_pred.size})")  # fmt: skip
        both = np.concatenate([pred, real, ep_pred, ep_real])
        lo, hi = min(lo, float(both.min())), max(hi, float(both.max()))
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", linestyle=":", linewidth=1)
    ax.set_xlabel("realized discounted return (what followed in the episode)")
    ax.set_ylabel("predicted return of the chosen plan")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    rows = []
    for name, audit in audited.items():
        ci = audit.get("bias_ci95")
        bias = _fmt(audit["bias_mean"]) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
        rows.append((name, audit.get("plans"), _fmt(audit.get("predicted_mean")),
                     _fmt(audit.get("realized_mean")), bias, _fmt(audit.get("correlation"), 2)))  # fmt: skip
    body = (
        '<p class="caption">Each small point is one plan (the winning plan\'s predicted return '
        "against the discounted return that followed), each large one an episode's mean; the "
        "dotted line is predicted = realized. Above it the model promised more than the env paid: "
        "the search may be choosing the model's errors.</p>"
        f"<figure>{_png_img(fig, 'predicted vs realized returns of the plans')}</figure>"
    )
    body += _table(
        rows, ("evaluation", "plans", "predicted", "realized", "bias (95% CI)", "correlation")
    )
    return _section("audit", title, body)


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
