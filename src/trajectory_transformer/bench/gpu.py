"""`tt bench gpu`: every GPU path end to end on small sizes, in one command, in a few minutes.

A GPU is lent to this project only now and then, for minutes; whoever gets one runs this and
learns whether every path works there and how fast. Checks, in order (each a row; a failing
check is recorded with its one-line error and the rest still run):

1. collect: a small Pendulum dataset (scripted expert) and a HalfCheetah-v5 random dataset (into
   a private MINARI_DATASETS_PATH under the work folder);
2. train fp32, bf16, bf16 + compile (tiny Pendulum runs), then resume the fp32 run;
3. eval with beam, greedy, likelihood and sample decoding; `TTPolicy.act` and `.predict`; the
   HTML report; the goal planner (plan.mode=goal) on a random goal-conditioned model;
4. the planner settings (a)-(d) of `tt bench plan`, cached and uncached, with the cache's
   exactness against a full forward pass;
5. `tt bench train` (paper model, 249-token windows, batch 256) and a real `tt train` of the same
   model and batch on the HalfCheetah data, with both tokens/s side by side.

Prints a table, writes every row as a JSON line to `<work>/bench-gpu.jsonl` (and to stdout with
--json), and exits non-zero when any check failed. Without CUDA it refuses in one line.
Options: `work=PATH` (default runs/bench-gpu), `train_steps=N` (the real run, default 300).
The machine this was written for has PyTorch but not Gymnasium, Minari or MuJoCo: BENCHMARKS.md
("GPU check") says how to carry them as wheels; set MUJOCO_GL=disable there.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import TTError
from ..store import minari_datasets_path

__all__ = ["main", "run_checks"]

TINY = [
    "data.n_bins=32", "data.n_transitions=4", "model.n_embd=32", "model.n_layer=2",
    "model.n_head=2", "train.batch_size=64", "train.progress=false", "train.save_every=50",
]  # fmt: skip
"""The small runs' model and data: every path, not speed."""

PLAN = ["plan.beam_width=8", "plan.horizon=3", "plan.context=2"]
EVAL = ["eval.episodes=4", "eval.n_envs=4", "eval.max_episode_steps=20", "eval.device=cuda",
        "eval.progress=false"]  # fmt: skip


class _Checks:
    """Runs named checks, timing each and recording failures instead of stopping."""

    def __init__(self, log: Callable[[dict[str, Any]], None]) -> None:
        self.rows: list[dict[str, Any]] = []
        self.log = log

    def run(self, name: str, fn: Callable[[], dict[str, Any] | None]) -> dict[str, Any] | None:
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                result = fn() or {}
            row = {"check": name, "ok": True, **result}
        except Exception as exc:  # a failing check is a row, not the end of the run
            where = traceback.extract_tb(exc.__traceback__)[-1]
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            row = {
                "check": name,
                "ok": False,
                "error": f"{message} ({where.filename}:{where.lineno})",
            }
            result = None
        row["seconds"] = round(time.perf_counter() - start, 2)
        self.rows.append(row)
        self.log(row)
        return result


def run_checks(
    work: Path, device: str = "cuda", quick: bool = False, train_steps: int = 300
) -> list[dict[str, Any]]:
    """Every check of the module docstring on `device`; the rows (see `main`). `quick` shrinks
    every size to seconds (the CPU tests run it under a simulated CUDA device)."""
    import trajectory_transformer as tt

    from . import plan as plan_bench
    from . import train as train_bench

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = (work / "bench-gpu.jsonl").open("w", encoding="utf-8")

    def write_row(row: dict[str, Any]) -> None:
        out.write(json.dumps(row) + "\n")
        out.flush()

    checks = _Checks(write_row)
    steps = 4 if quick else 200
    dev = [f"train.device={device}"]
    runs: dict[str, Path] = {}
    with minari_datasets_path(work / "minari"), out:
        pendulum = "tt/pendulum/expert-gpucheck-v0"
        cheetah = "tt/halfcheetah/random-gpucheck-v0"

        def collect() -> dict[str, Any]:
            cfg = tt.load_config(None, [f"collect.dataset_id={pendulum}", "collect.episodes=30",
                                        "collect.ref_episodes=2"])  # fmt: skip
            tt.collect(cfg.collect, progress=False)
            n = 2 if quick else 20
            cfg = tt.load_config(None, [
                "collect.env=HalfCheetah-v5", "collect.policy=random", f"collect.episodes={n}",
                "collect.ref_episodes=1", f"collect.dataset_id={cheetah}",
            ])  # fmt: skip
            tt.collect(cfg.collect, progress=False)
            return {"datasets": [pendulum, cheetah]}

        checks.run("collect", collect)
        base = [f"data.dataset={pendulum}", *TINY, f"train.max_steps={steps}", *dev]
        for name, extra in (
            ("fp32", ["train.precision=fp32"]),
            ("bf16", ["train.precision=bf16"]),
            ("bf16+compile", ["train.precision=bf16", "train.compile=true"]),
        ):
            if quick and "compile" in name:
                continue  # compiling takes minutes on a CPU

            def train_one(name: str = name, extra: list[str] = extra) -> dict[str, Any]:
                run = tt.train(tt.load_config(None, [*base, *extra]), work / f"train-{name}")
                runs[name] = run
                return {"final_loss": _last_metric(run, "losses/train")}

            checks.run(f"train {name}", train_one)

        def resume() -> dict[str, Any]:
            run = tt.train(None, runs["fp32"], resume=True, overrides=[
                f"train.max_steps={steps + (2 if quick else 50)}"])  # fmt: skip
            return {"step": _last_metric(run, "step")}

        checks.run("resume fp32", resume)
        for mode in ("beam", "greedy", "likelihood", "sample"):

            def evaluate(mode: str = mode) -> dict[str, Any]:
                summary = tt.evaluate(
                    runs["fp32"], [*EVAL, *PLAN, f"plan.mode={mode}"], out=work / f"eval-{mode}"
                )
                return {"return": round(summary["return_mean"], 2),
                        "plan_ms_per_step": round(summary["plan_ms_per_step"], 2)}  # fmt: skip

            checks.run(f"eval {mode}", evaluate)

        def policy() -> dict[str, Any]:
            pol = tt.TTPolicy.load(runs["fp32"], device=device, beam_width=8, horizon=3, context=2)
            obs = np.zeros((3, 3), dtype=np.float32)
            action = pol.act(obs)
            predicted, _ = pol.predict(obs, episode_start=np.ones(3, dtype=bool))
            return {"action_shape": list(np.shape(action)), "predict_shape": list(predicted.shape)}

        checks.run("TTPolicy.act/predict", policy)

        def report() -> dict[str, Any]:
            from ..evaluation.report import write_report

            return {"report": str(write_report(runs["fp32"]))}

        checks.run("report", report)
        checks.run("plan goal mode", lambda: _goal_plan(device))

        settings = plan_bench.QUICK if quick else [*plan_bench.SETTINGS, *plan_bench.GPU_SETTINGS]
        model = plan_bench.hopper_model(quick).to(device)
        for s in settings:

            def plan_setting(s: plan_bench.Setting = s) -> dict[str, Any]:
                return plan_bench.measure(model, s, repeats=1 if quick else 3)

            checks.run(f"plan ({s.name}) {s.envs} env x beam {s.beam_width} H{s.horizon} "
                       f"{s.slide}", plan_setting)  # fmt: skip

        bench_rows: list[dict[str, Any]] = []

        def bench_train() -> dict[str, Any]:
            over = ["train.batch_size=16", "train.max_steps=2"] if quick else []
            bench_rows.extend(
                train_bench.measure(
                    [*over, *dev], warmup=1 if quick else 2, compile_on_cuda=not quick
                )
            )
            return {r["model"] + " " + r["precision"]: r["tokens_per_s"]
                    for r in bench_rows if "model" in r}  # fmt: skip

        checks.run("bench train", bench_train)

        def real_train() -> dict[str, Any]:
            n = 3 if quick else train_steps
            over = [f"data.dataset={cheetah}", "train.precision=bf16", f"train.max_steps={n}",
                    "train.progress=false", "train.log_every=10", *dev]  # fmt: skip
            if quick:
                over += ["train.batch_size=16", "model.n_embd=32", "model.n_layer=1"]
            run = tt.train(tt.load_config(None, over), work / "train-real")
            rates = _metric_series(run, "charts/tokens_per_s")
            steady = float(np.median(rates[len(rates) // 2 :])) if rates else float("nan")
            ours = next((r["tokens_per_s"] for r in bench_rows
                         if r.get("model") == "ours" and r.get("precision") == "bf16"), None)  # fmt: skip
            return {"tokens_per_s": round(steady, 1), "bench_bf16_tokens_per_s": ours,
                    "fraction_of_bench": None if not ours else round(steady / ours, 3)}  # fmt: skip

        checks.run("tt train (real, bf16)", real_train)
    return checks.rows


def _goal_plan(device: str) -> dict[str, Any]:
    """plan.mode=goal on a random goal-conditioned model: the search ranks by imagined distance."""
    from ..config import PlanConfig
    from ..model.gpt import GPTConfig, TrajectoryGPT
    from ..plan.beam import BeamPlanner

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=16, observation_dim=4, action_dim=2, n_transitions=4, goal_dim=2)
    model = TrajectoryGPT(cfg).to(device).eval()
    V = cfg.vocab_size
    planner = BeamPlanner(
        model,
        PlanConfig(mode="goal", beam_width=4, horizon=2, context=1),
        torch.linspace(-1, 1, V),
        torch.linspace(0, 1, V),
        achieved_dims=[0, 1],
        achieved_centers=torch.linspace(0, 1, V).repeat(2, 1),
    )
    prompt = torch.randint(0, V, (2, 2 + cfg.transition_dim + 4))
    result = planner.plan(prompt, torch.zeros(2, 2))
    return {"tokens_shape": list(result.tokens.shape)}


def _metric_series(run_dir: Path, key: str) -> list[float]:
    path = Path(run_dir) / "metrics.jsonl"
    values = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if key in row:
            values.append(float(row[key]))
    return values


def _last_metric(run_dir: Path, key: str) -> float | None:
    series = _metric_series(run_dir, key)
    return series[-1] if series else None


def _print_table(rows: list[dict[str, Any]]) -> None:
    width = max(len(r["check"]) for r in rows) + 2
    print(f"{'check':<{width}}{'ok':<6}{'seconds':>9}  result")
    for r in rows:
        rest = {k: v for k, v in r.items() if k not in ("check", "ok", "seconds")}
        status = "ok" if r["ok"] else "FAIL"
        print(f"{r['check']:<{width}}{status:<6}{r['seconds']:>9.1f}  {json.dumps(rest)}")


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    if not torch.cuda.is_available():
        raise TTError(
            "tt bench gpu needs a CUDA device, and torch.cuda.is_available() is False here: run "
            "it on a GPU machine (BENCHMARKS.md, 'GPU check', says how to set one up)"
        )
    options = dict(o.split("=", 1) for o in overrides or [] if "=" in o)
    unknown = set(options) - {"work", "train_steps"}
    if unknown or any("=" not in o for o in overrides or []):
        raise TTError(f"tt bench gpu takes work=PATH and train_steps=N; got {overrides}")
    work = Path(options.get("work", "runs/bench-gpu"))
    rows = run_checks(work, "cuda", quick=quick, train_steps=int(options.get("train_steps", 300)))
    if json_lines:
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
        _print_table(rows)
        print(f"rows: {work / 'bench-gpu.jsonl'}")
    failed = [r["check"] for r in rows if not r["ok"]]
    if failed:
        print(f"{len(failed)} of {len(rows)} checks failed: {', '.join(failed)}")
        return 1
    return 0
