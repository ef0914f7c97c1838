"""d3rlpy baselines for `tt bench quality`: their budgets, their venv, and the worker they run in.

Methods `bc`, `td3bc`, `cql`, `iql` and `dt` (d3rlpy 2.8's BC, TD3+BC, CQL, IQL and Decision
Transformer) run on the same data as TT and are scored by the same episode loop, seeds and
formula (lab/baselines_worker.py has the details); only the method differs.

Isolation: d3rlpy 2.8.1 pins gymnasium==1.0.0 and pulls the old `gym`, so it lives in its own
virtualenv (`make baselines` → `.venv-baselines`) and never in the main environment. The main
process (`tt bench quality`) runs each baseline cell as a subprocess with that venv's Python:

    <venv>/bin/python -m trajectory_transformer.lab.baselines_worker \
        --request <cell folder>/request.json --result <cell folder>/result.json

with PYTHONPATH set to a folder that holds only a link to the `trajectory_transformer` package the
main process runs (not its whole site-packages), so the worker runs the same code and the venv's
own packages (the worker refuses to run another copy of ours). Request and result are plain JSON; the worker's output goes to worker.log beside
them. Nothing here unpickles anything: the worker reads our Minari datasets through our loader,
d3rlpy writes no model file (its logger is switched off), and the worker's own checkpoints
(`checkpoints/` in the cell folder, every 1/10 of the steps) are safetensors and JSON, from which
an interrupted cell resumes bit for bit.

Budgets: the published settings (`Budget` per method, sources in `BASELINES`) at three levels,
chosen by the suite's `baseline_budget:` — `published` as is; `quick` for the 100k-transition
`-quick` datasets on a CPU: gradient steps (and DT's warm-up) x `quick_scale` — 0.1 (D4RL's
hopper-medium has 1M transitions, so the same passes over the data) except CQL (0.04) and DT
(0.05), whose steps cost far more, so that every quick cell aims at 10-30 min on 2 cores — with
batch and network unchanged; `smoke`: 20 steps, for tests and `--quick`. All other hyperparameters are the sources' own.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig, config_to_dict
from ..errors import TTError
from ..utils import atomic_write_json, read_json

__all__ = [
    "BASELINES",
    "BUDGET_LEVELS",
    "PYTHON_ENV",
    "REQUEST_SCHEMA",
    "RESULT_SCHEMA",
    "WORKER_MODULE",
    "Baseline",
    "BaselinesUnavailable",
    "Budget",
    "baselines_python",
    "budget_for",
    "missing_venv_message",
    "package_root",
    "request_for",
    "run_worker",
]

REQUEST_SCHEMA = "tt-baseline-request/1"
RESULT_SCHEMA = "tt-baseline-result/1"
WORKER_MODULE = "trajectory_transformer.lab.baselines_worker"
PYTHON_ENV = "TT_BASELINES_PYTHON"
DEFAULT_VENV = ".venv-baselines"
BUDGET_LEVELS: tuple[str, ...] = ("published", "quick", "smoke")
SMOKE_STEPS = 20


@dataclass(frozen=True)
class Budget:
    """The compute a baseline gets (the rest of its settings are the sources', in the worker)."""

    steps: int
    """Gradient steps (the score is the policy's at the last one)."""
    batch_size: int
    hidden: tuple[int, ...]
    """MLP hidden units of every network (actor, critics, value); DT: its embedding encoder."""
    warmup_steps: int = 0
    """DT: linear learning-rate warm-up steps."""
    context: int = 0
    """DT: transitions per context window."""
    layers: int = 0
    """DT: transformer blocks."""
    heads: int = 0
    """DT: attention heads."""

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.hidden:
            raise TTError(f"invalid baseline budget {self}")


@dataclass(frozen=True)
class Baseline:
    """One d3rlpy method: its published budget and where that (and its settings) come from."""

    name: str
    title: str
    published: Budget
    source: str
    quick_scale: float = 0.1
    """`quick` budget: steps and warm-up x this (the -quick datasets are 1/10 of D4RL's 1M)."""

    def __post_init__(self) -> None:
        if not 0 < self.quick_scale <= 1:
            raise TTError(f"{self.name}: quick_scale must be in (0, 1]")


BASELINES: dict[str, Baseline] = {
    "bc": Baseline(
        "bc",
        "BC",
        Budget(steps=1_000_000, batch_size=256, hidden=(256, 256)),
        "CORL algorithms/offline/any_percent_bc.py with frac=1.0 (plain BC): 1M steps, batch 256, "
        "256-256 MLP with tanh output, Adam 3e-4, standardized observations (d3rlpy ships no BC "
        "reproduction script)",
    ),
    "td3bc": Baseline(
        "td3bc",
        "TD3+BC",
        Budget(steps=500_000, batch_size=256, hidden=(256, 256)),
        "d3rlpy reproductions/offline/td3_plus_bc.py: 500k steps, batch 256, lr 3e-4, alpha 2.5, "
        "target smoothing 0.2/0.5, actor every 2 steps, standardized observations (the TD3+BC "
        "paper trains 1M steps)",
    ),
    "cql": Baseline(
        "cql",
        "CQL",
        Budget(steps=500_000, batch_size=256, hidden=(256, 256)),
        "d3rlpy reproductions/offline/cql.py: 500k steps, batch 256, 256-256 MLPs, actor lr 1e-4, "
        "critic lr 3e-4, 10 action samples, Lagrangian alpha (threshold 10, initial e), "
        "conservative weight 5 (its value for every dataset but D4RL's medium-v0)",
        # 10 sampled actions per state make a CQL step ~9x a TD3+BC step (a short probe here):
        # 0.04 instead of 0.1 keeps a quick cell near the others' wall time.
        quick_scale=0.04,
    ),
    "iql": Baseline(
        "iql",
        "IQL",
        Budget(steps=500_000, batch_size=256, hidden=(256, 256)),
        "d3rlpy reproductions/offline/iql.py: 500k steps, batch 256, lr 3e-4 (actor cosine-annealed "
        "over all steps), expectile 0.7, temperature 3, max weight 100, rewards scaled by "
        "1000 / (max - min episode return)",
    ),
    "dt": Baseline(
        "dt",
        "DT",
        Budget(
            steps=100_000,
            batch_size=64,
            hidden=(128,),
            warmup_steps=10_000,
            context=20,
            layers=3,
            heads=1,
        ),
        "d3rlpy reproductions/offline/decision_transformer.py: 100k steps, batch 64, context 20, "
        "3 layers, 1 head, 128-unit embeddings, AdamW 1e-4 (weight decay 1e-4, clip 0.25) with 10k "
        "warm-up steps, standardized observations, rewards x 0.001",
        # a GPT step on 64 x 20-transition windows costs ~20x a TD3+BC step (same probe): 0.05
        quick_scale=0.05,
    ),
}


def budget_for(method: str, level: str) -> Budget:
    """The budget of `method` at `level` (published | quick | smoke); see the module docstring."""
    if method not in BASELINES:
        raise TTError(f"'{method}' is not a baseline; use one of {list(BASELINES)}")
    base = BASELINES[method]
    budget = base.published
    if level == "published":
        return budget
    if level == "quick":
        return dataclasses.replace(
            budget,
            steps=round(budget.steps * base.quick_scale),
            warmup_steps=round(budget.warmup_steps * base.quick_scale),
        )
    if level == "smoke":
        return dataclasses.replace(
            budget, steps=SMOKE_STEPS, warmup_steps=min(budget.warmup_steps, SMOKE_STEPS // 2)
        )
    raise TTError(f"baseline budget '{level}' is unknown; use one of {list(BUDGET_LEVELS)}")


# ------------------------------------------------------------------------------ the venv
class BaselinesUnavailable(TTError):
    """The baselines venv's Python is not there."""


def missing_venv_message(path: Path) -> str:
    return (
        f"the d3rlpy baselines (bc, td3bc, cql, iql, dt) run in their own venv, and {path} does "
        f"not exist: run `make baselines` in the repository root (or set {PYTHON_ENV} or "
        "baselines_python=PATH to that venv's python)"
    )


def package_root() -> Path:
    """The folder that holds the `trajectory_transformer` package this process runs (src/)."""
    return Path(__file__).resolve().parents[2]


def baselines_python(option: str | None = None) -> Path:
    """The baselines venv's interpreter: `option` (baselines_python=PATH), else $TT_BASELINES_PYTHON,
    else .venv-baselines/bin/python in the current folder, else beside this source checkout."""
    explicit = option or os.environ.get(PYTHON_ENV)
    if explicit:
        candidates = [Path(explicit).expanduser()]
    else:
        relative = Path(DEFAULT_VENV) / "bin" / "python"
        candidates = [relative, package_root().parent / relative]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.absolute()  # not resolved: a venv's python is a symlink to the base one
    raise BaselinesUnavailable(missing_venv_message(candidates[0]))


# ------------------------------------------------------------------------------ the worker
def request_for(method: str, level: str, dataset: str, seed: int, cfg: RunConfig) -> dict[str, Any]:
    """The worker's request for one cell: the data selection and evaluation settings of the cell's
    config (the same that TT's cell of this dataset and seed uses) and the method's budget."""
    budget = budget_for(method, level)
    evaluation = config_to_dict(cfg.eval)
    evaluation["progress"] = False  # the worker logs to a file
    return {
        "schema": REQUEST_SCHEMA,
        "method": method,
        "budget_level": level,
        "budget": dataclasses.asdict(budget),
        "source": BASELINES[method].source,
        "dataset": dataset,
        "seed": seed,
        "data": {
            "max_episodes": cfg.data.max_episodes,
            "drop_bad_episodes": cfg.data.drop_bad_episodes,
            "ref_min_score": cfg.data.ref_min_score,
            "ref_max_score": cfg.data.ref_max_score,
        },
        "eval": evaluation,
        "device": cfg.train.device,
        "package_root": str(package_root()),
    }


def _package_link(folder: Path, root: Path) -> Path:
    """folder/src holding one link, trajectory_transformer -> the package this process runs."""
    src = folder / "src"
    link = src / "trajectory_transformer"
    src.mkdir(exist_ok=True)
    target = root / "trajectory_transformer"
    if link.is_symlink() and link.resolve() != target.resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(target, target_is_directory=True)
    return src


def worker_command(python: Path, folder: Path) -> list[str]:
    return [str(python), "-m", WORKER_MODULE, "--request", str(folder / "request.json"),
            "--result", str(folder / "result.json")]  # fmt: skip


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def run_worker(python: Path, request: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run one baseline cell in the baselines venv; returns the worker's result (plain JSON).

    Writes folder/request.json, the worker writes folder/result.json (atomically) and its
    output goes to folder/worker.log. A failed worker is a one-line TTError naming the log.
    """
    folder.mkdir(parents=True, exist_ok=True)
    result_path, log_path = folder / "result.json", folder / "worker.log"
    result_path.unlink(missing_ok=True)
    atomic_write_json(folder / "request.json", request)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_package_link(folder, Path(request["package_root"])))
    with open(log_path, "wb") as log:
        done = subprocess.run(
            worker_command(python, folder), stdout=log, stderr=subprocess.STDOUT, env=env,
            check=False,
        )  # fmt: skip
    if done.returncode != 0 or not result_path.is_file():
        raise TTError(
            f"{request['method']} worker failed (exit {done.returncode}): "
            f"{_last_line(log_path)}; full log: {log_path}"
        )
    result = read_json(result_path, "baseline result")
    if not isinstance(result, dict) or result.get("schema") != RESULT_SCHEMA:
        raise TTError(f"{result_path}: not a {RESULT_SCHEMA} file; delete it and rerun")
    return result
