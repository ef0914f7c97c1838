"""`tt quickstart` (what `make demo` runs): collect → train → evaluate vs baselines → video → report.

Every phase is timed into RUN_DIR/phases.json and shown with its own progress bar; the run ends
with a summary table. The default task (configs/quickstart.yaml) is chosen to finish in minutes
on a 2-core CPU with no network and no GPU.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import runs
from .config import RunConfig, load_config
from .data.tokens import prepare_tokens
from .errors import TTError
from .evaluation.evaluate import evaluate_run, training_eval_hook
from .evaluation.report import write_report
from .evaluation.video import EpisodeActions, ReplayDiverged, render_run, replay_run
from .sources.collect import collect_dataset, default_dataset_id
from .store import load_minari, minari_root
from .training.trainer import train
from .utils import atomic_write_json

if TYPE_CHECKING:
    from .evaluation.video import EpisodeActions

__all__ = ["run_quickstart"]

T = TypeVar("T")


def _dataset_for(cfg: RunConfig) -> bool:
    """Point data.dataset at data from collect.env; True if it exists already (else collect it).

    Overriding collect.env (e.g. CartPole-v1) carries through to the dataset id: the preset's id
    names another env, so the env part of the id is replaced, and an existing dataset whose env
    differs from collect.env is refused rather than trained on.
    """

    env_part = default_dataset_id(cfg.collect.env, cfg.collect.policy).split("/")[1]
    parts = cfg.data.dataset.split("/")
    if len(parts) == 3 and parts[0] == "tt" and parts[1] != env_part:
        moved = f"tt/{env_part}/{parts[2]}"
        print(
            f"collect.env={cfg.collect.env}: the dataset is {moved} ({cfg.data.dataset} holds another env)"
        )
        cfg.data.dataset = moved
    if not (minari_root() / cfg.data.dataset).exists() and not Path(cfg.data.dataset).exists():
        return False
    dataset = load_minari(cfg.data.dataset)  # exists: a corrupt one is an error, not re-collected
    env_id = dataset.env_spec.id if dataset.env_spec is not None else None
    if env_id is not None and env_id != cfg.collect.env:
        raise TTError(
            f"dataset {cfg.data.dataset} was collected from {env_id}, not collect.env="
            f"{cfg.collect.env}; set data.dataset to a new id to collect {cfg.collect.env} data"
        )
    return True


def _timed(phases: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    print(f"\n== {name} ==", flush=True)
    start = time.perf_counter()
    result = fn()
    phases[f"{name}_s"] = round(time.perf_counter() - start, 2)
    return result


def _summary_table(
    run_dir: Path, results: dict[str, dict[str, Any]], phases: dict[str, float]
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Quickstart: {run_dir}", caption="score: normalized, 0 = random, 100 = expert"
    )
    for column in ("policy", "score", "95% CI", "mean return", "std", "episodes"):
        table.add_column(column, no_wrap=True)
    for name, s in results.items():
        ci = s.get("normalized_score_ci95") or [None, None]
        ci_text = "-" if ci[0] is None else f"[{ci[0]:.1f}, {ci[1]:.1f}]"
        score = s.get("normalized_score")
        table.add_row(
            name,
            "-" if score is None else f"{score:.1f}",
            ci_text,
            f"{s['return_mean']:.1f}",
            f"{s['return_std']:.1f}",
            str(s["episodes"]),
        )
    console = Console()
    if not console.is_terminal:  # piped or logged: no terminal width to fit, so never cut a column
        unbounded = console.options.update_width(10_000)
        console = Console(
            width=max(console.width, console.measure(table, options=unbounded).maximum)
        )
    console.print(table)
    console.print("time per phase: " + ", ".join(f"{k[:-2]} {v:.0f}s" for k, v in phases.items()))
    console.print(f"report: {run_dir / runs.REPORT_FILE}")


def _video(
    run_dir: Path, filmed: EpisodeActions, summary: dict[str, Any], trust: list[str]
) -> None:
    """Film the beam evaluation's first episode by replaying its actions; plan one only when the
    env cannot be replayed (randomness beyond its reset seed)."""

    try:
        replay_run(run_dir, filmed, seed=summary["seed"], episode_return=summary["returns"][0],
                   overrides=trust)  # fmt: skip
    except ReplayDiverged as err:
        print(f"{err}; planning the video's episode again")
        render_run(run_dir, episodes=1, overrides=trust)


def run_quickstart(cfg: RunConfig | None = None, run_dir: Path | None = None) -> dict[str, Any]:
    """Run the whole pipeline on the default (or given) config; returns the summaries."""

    cfg = cfg or load_config("quickstart")
    run_dir = Path(run_dir or Path("runs") / cfg.name)
    runs.check_run_writable(run_dir, "choose another --run-dir")  # before collecting
    phases: dict[str, float] = {}
    start = time.perf_counter()

    if _dataset_for(cfg):
        print(f"dataset {cfg.data.dataset} found; skipping collection")
    else:
        cfg.collect.dataset_id = cfg.data.dataset  # collect exactly the dataset the run trains on
        _timed(phases, "collect", lambda: collect_dataset(cfg.collect, progress=cfg.train.progress))

    # --trust-env-code: the evaluations may make the env the dataset's spec names (never the
    # run folder's own say-so, so it is passed to each); checked before training, not after
    trust = ["eval.trust_env_code=true"] if cfg.eval.trust_env_code else []
    data = prepare_tokens(cfg.data, cfg.data.cache_dir, seed=cfg.train.seed)  # cached for train
    training_eval_hook(trust).preflight(cfg, data.info, why="tt quickstart evaluates it")
    _timed(phases, "train", lambda: train(cfg, run_dir, overwrite=True))

    results: dict[str, dict[str, Any]] = {}
    filmed = EpisodeActions(episode=0)  # the video replays this scored episode (no new planning)
    beam = functools.partial(evaluate_run, run_dir, trust, observe=filmed)
    results["TT (beam search)"] = _timed(phases, "eval", beam)
    # the same model without search (RUN_DIR/eval/eval_greedy.json): what planning adds
    greedy = functools.partial(
        evaluate_run, run_dir, ["plan.mode=greedy", *trust], name="eval_greedy"
    )
    results["TT (greedy, no search)"] = _timed(phases, "eval_greedy", greedy)
    for kind in ("behaviour", "random"):
        # written once, to RUN_DIR/eval/eval_<kind>.json, where the report finds it
        evaluate_kind = functools.partial(evaluate_run, run_dir, trust, agent_kind=kind)
        try:
            results[kind] = _timed(phases, f"eval_{kind}", evaluate_kind)
        except TTError as err:  # e.g. a dataset from an older version records no behaviour policy
            print(f"{kind} baseline skipped: {err}")

    try:
        _timed(phases, "video", lambda: _video(run_dir, filmed, results["TT (beam search)"], trust))
    except TTError as err:  # rendering needs system libraries; the report says it is missing
        print(f"video skipped: {err}")
    phases["total_s"] = round(time.perf_counter() - start, 2)
    atomic_write_json(run_dir / runs.PHASES_FILE, phases)
    _timed(phases, "report", lambda: write_report(run_dir))
    _summary_table(run_dir, results, phases)
    return results
