"""Small HTML and plotting helpers of the report: number formats, escaping, tables, PNG figures."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

import numpy as np

from .read import _PALETTE, _X_KEYS

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
