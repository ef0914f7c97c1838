"""One self-contained HTML report for a run folder (`tt report RUN_DIR`).

The report is a single file with every image embedded as a base64 PNG and the video as a data
URI, so it can be mailed, attached to an issue or opened offline with nothing broken. It reads
each part of the run folder on its own and shows a "not available" note where a part is missing
or unreadable: a report of a half-finished run is more useful than a traceback.

Parts read (all optional except the folder itself; names from `runs`): config.json, dataset.json
(with the per-dimension discretization error), metrics.jsonl, phases.json (the quickstart's), every
evaluation in the run folder (`evaluation.names`: eval/eval.json is the planner, the others are
shown beside it by name), videos/*.mp4.

Normalized scores use the 0–100 scale (0 = random policy, 100 = the reference expert), i.e.
100 · (R − R_random) / (R_expert − R_random), not Minari's 0–1 fraction.
"""

from __future__ import annotations

from pathlib import Path

from ... import runs
from ...errors import TTError
from ...utils import atomic_write_bytes, check_output_dir
from .html import _esc
from .read import _load_run
from .sections import (
    _audit_section,
    _config_section,
    _dataset_section,
    _discretization_section,
    _latency_section,
    _returns_section,
    _score_section,
    _summary_section,
    _training_section,
    _video_section,
)

__all__ = ["build_report_html", "write_report"]


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
    name = run_dir.resolve().name  # the run, not its config's name (many runs share a preset)
    env_id = (run.dataset or {}).get("env_id") or ""
    sections = [
        ("summary", "Summary", _summary_section),
        ("training", "Training", _training_section),
        ("discretization", "Discretization", _discretization_section),
        ("returns", "Returns", _returns_section),
        ("score", "Normalized score", _score_section),
        ("audit", "Plan audit", _audit_section),
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
    check_output_dir(
        target.parent, "report folder", "make it writable or write the report elsewhere"
    )
    atomic_write_bytes(target, build_report_html(run_dir).encode("utf-8"))
    return target
