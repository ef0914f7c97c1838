"""`tt eval`: roll out a trained run's planner (or a baseline) in vector envs and write the results.

Everything that can be wrong with the request (overrides, env id, spaces) is checked before the
first env step, with a one-line TTError. Outputs, all written atomically into RUN_DIR/eval:
eval.json (summary, config, reference used), episodes.jsonl (one line per episode), a return
histogram PNG, and TensorBoard scalars under `eval/` in RUN_DIR/tb.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch

from ..config import (
    ConfigError,
    EvalConfig,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
)
from ..plan.protocol import Agent, PolicyAgent, RandomAgent
from ..plan.rollout import rollout
from ..utils import (
    TTError,
    atomic_path,
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    resolve_device,
)
from .metrics import pick_reference, summarize

if TYPE_CHECKING:
    from ..data.episodes import DatasetInfo

__all__ = [
    "AGENT_KINDS",
    "PreparedRun",
    "check_env_spaces",
    "env_factory",
    "evaluate_agent",
    "evaluate_run",
    "prepare_run",
    "training_eval_hook",
    "write_eval_outputs",
]

AGENT_KINDS = ("planner", "random", "behaviour")
_EVAL_SECTIONS = ("plan.", "eval.")


def env_factory(
    info: DatasetInfo,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
) -> Callable[[], gym.Env[Any, Any]]:
    """A zero-argument env constructor for the run's env, checked once so a bad id fails here.

    Prefers the dataset's evaluation env spec (Minari's eval_env_spec), then its env spec (both
    JSON, so custom kwargs survive), then the bare env id.
    """
    from gymnasium.envs.registration import EnvSpec

    target: str | EnvSpec
    text = info.eval_env_spec or info.env_spec
    if text:
        try:
            target = EnvSpec.from_json(text)
        except Exception as err:  # gymnasium raises plain errors for bad spec JSON
            raise TTError(f"dataset '{info.dataset}': unreadable env spec ({err})") from err
    elif info.env_id:
        target = info.env_id
    else:
        raise TTError(f"dataset '{info.dataset}' names no environment; it cannot be evaluated")
    name = target if isinstance(target, str) else target.id
    try:
        if isinstance(target, EnvSpec) and target.entry_point is None:
            gym.spec(target.id)
        elif isinstance(target, str):
            gym.spec(target)
    except gym.error.Error as err:
        raise TTError(f"env '{name}' does not exist in gymnasium here ({err})") from err

    def make_env() -> gym.Env[Any, Any]:
        try:
            return gym.make(target, max_episode_steps=max_episode_steps, render_mode=render_mode)
        except (gym.error.Error, ImportError, AttributeError) as err:
            raise TTError(f"cannot make env '{name}': {err.__class__.__name__}: {err}") from err

    return make_env


def _describe(space: gym.Space[Any]) -> str:
    shape = getattr(space, "shape", None)
    return f"{type(space).__name__}{tuple(shape) if shape is not None else ''}"


def _space_diff(want: gym.Space[Any], got: gym.Space[Any], where: str) -> str | None:
    """First structural difference (type, shape, size, keys, dtype kind); bounds are not compared."""
    if type(want) is not type(got):
        return f"{where}: run has {_describe(want)}, env has {_describe(got)}"
    if isinstance(want, gym.spaces.Dict) and isinstance(got, gym.spaces.Dict):
        if list(want.spaces) != list(got.spaces):
            return f"{where}: run has keys {list(want.spaces)}, env has {list(got.spaces)}"
        for key in want.spaces:
            diff = _space_diff(want.spaces[key], got.spaces[key], f"{where}[{key!r}]")
            if diff:
                return diff
        return None
    if isinstance(want, gym.spaces.Tuple) and isinstance(got, gym.spaces.Tuple):
        if len(want.spaces) != len(got.spaces):
            return f"{where}: run has {len(want.spaces)} parts, env has {len(got.spaces)}"
        for i, (a, b) in enumerate(zip(want.spaces, got.spaces)):
            diff = _space_diff(a, b, f"{where}[{i}]")
            if diff:
                return diff
        return None
    if want.shape != got.shape:
        return f"{where}: run has {_describe(want)}, env has {_describe(got)}"
    if isinstance(want, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        size = ("n", "start") if isinstance(want, gym.spaces.Discrete) else ("nvec", "start")
        sizes = [[np.asarray(getattr(sp, k)).tolist() for k in size] for sp in (want, got)]
        if sizes[0] != sizes[1]:
            return f"{where}: run has {type(want).__name__}{sizes[0]}, env has {type(got).__name__}{sizes[1]}"
    return None


def check_env_spaces(env: gym.Env[Any, Any], info: DatasetInfo) -> None:
    """TTError naming the first difference between the run's spaces and the env's."""
    from ..data.spaces import flat_dim, space_from_json

    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    for label, text, dim, got in (
        ("observation space", info.observation_space, info.observation_dim, env.observation_space),
        ("action space", info.action_space, info.action_dim, env.action_space),
    ):
        if text:
            diff = _space_diff(space_from_json(text), got, label)
            if diff:
                raise TTError(f"the run does not fit env '{name}': {diff}")
        if dim and flat_dim(got) != dim:
            raise TTError(
                f"the run does not fit env '{name}': {label} has {dim} flat dims in the run, "
                f"{flat_dim(got)} in the env"
            )


def evaluate_agent(
    make_env: Callable[[], gym.Env[Any, Any]],
    agent: Agent,
    eval_cfg: EvalConfig,
    info: DatasetInfo | None = None,
    desc: str = "eval",
) -> dict[str, Any]:
    """Roll out `agent` as `eval_cfg` says and summarize (normalized with the dataset's references).

    The summary also carries per-episode `returns`, `lengths` and `terminated` lists, so reports can
    draw histograms of several agents (planner, behaviour, random) from the same function.
    """
    result = rollout(
        make_env,
        agent,
        episodes=eval_cfg.episodes,
        n_envs=eval_cfg.n_envs,
        seed=eval_cfg.seed,
        vector=eval_cfg.vector,
        max_episode_steps=eval_cfg.max_episode_steps,
        progress=eval_cfg.progress,
    )
    env_id = info.env_id if info is not None else None
    if env_id is None:
        env = make_env()
        env_id = env.spec.id if env.spec is not None else None
        env.close()
    reference = pick_reference(
        env_id,
        info.ref_min_score if info is not None else None,
        info.ref_max_score if info is not None else None,
    )
    summary = summarize(result, reference)
    summary = {"agent": desc, "env_id": env_id, "seed": eval_cfg.seed, **summary}
    summary["max_episode_steps"] = eval_cfg.max_episode_steps
    if eval_cfg.max_episode_steps is not None and reference is not None:
        summary["normalized_score_note"] = (
            f"episodes cut at {eval_cfg.max_episode_steps} steps: not comparable with the references"
        )
    summary["returns"] = result.returns.tolist()
    summary["lengths"] = result.lengths.tolist()
    summary["terminated"] = result.terminated.tolist()
    return summary


def _apply_eval_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    for item in overrides:
        key = (item[2:] if item.startswith("--") else item).split("=", 1)[0].strip()
        if not key.startswith(_EVAL_SECTIONS):
            raise TTError(
                f"override '{item}': tt eval only takes plan.* and eval.* overrides "
                "(the rest of the config belongs to the trained run)"
            )
    return apply_overrides(config, overrides)


def _make_agent(
    kind: str, loaded: Any, cfg: RunConfig, env: gym.Env[Any, Any], device: Any
) -> Agent:
    if kind == "planner":
        from ..plan.agent import make_agent

        try:
            return make_agent(loaded, cfg.plan, device)  # type: ignore[no-any-return]
        except ValueError as err:  # the planner validates plan.* against the model's window
            if isinstance(err, TTError | ConfigError):
                raise
            raise TTError(str(err).strip().splitlines()[0]) from err
    if kind == "random":
        return RandomAgent(env.action_space, seed=cfg.eval.seed)
    if kind == "behaviour":
        from ..data.collect import behaviour_policy

        policy = behaviour_policy(cfg.collect, env, seed=cfg.eval.seed)
        return PolicyAgent(policy, env.observation_space, env.action_space)
    raise TTError(f"agent kind '{kind}' is unknown; use one of {list(AGENT_KINDS)}")


def write_eval_outputs(
    summary: dict[str, Any],
    out_dir: Path,
    name: str = "eval",
    tb_dir: Path | None = None,
    tb_step: int = 0,
) -> dict[str, Path]:
    """eval JSON, episodes JSONL, return histogram PNG (atomic) and TensorBoard scalars."""
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
        _tensorboard(summary, tb_dir, tb_step, prefix="eval" if name == "eval" else f"eval_{name}")
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
)  # fmt: skip


def _tensorboard(summary: dict[str, Any], tb_dir: Path, step: int, prefix: str) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        for key in _TB_KEYS:
            value = summary.get(key)
            if value is not None:
                writer.add_scalar(f"{prefix}/{key}", float(value), step)
    finally:
        writer.close()


@dataclass
class PreparedRun:
    """A loaded run with plan/eval overrides applied and its env checked against its spaces."""

    config: RunConfig
    loaded: Any  # train.checkpoint.LoadedRun
    make_env: Callable[[], gym.Env[Any, Any]]
    device: torch.device
    agent: Agent


def prepare_run(
    run_dir: Path,
    overrides: list[str] | None = None,
    agent_kind: str = "planner",
    render_mode: str | None = None,
) -> PreparedRun:
    """All checks before any rollout: overrides, run files, env id, spaces; then the agent."""
    from ..train.checkpoint import CONFIG_FILE, load_run

    run_dir = Path(run_dir)
    if agent_kind not in AGENT_KINDS:
        raise TTError(f"agent kind '{agent_kind}' is unknown; use one of {list(AGENT_KINDS)}")
    if not run_dir.is_dir():
        raise TTError(f"{run_dir}: no such run folder")
    # the saved config plus overrides picks the device, so weights are loaded once, in place
    cfg = _apply_eval_overrides(
        config_from_dict(read_json(run_dir / CONFIG_FILE, "run config")), overrides or []
    )
    device = resolve_device(cfg.eval.device)
    loaded = load_run(run_dir, device)
    info = loaded.info
    make_env = env_factory(info, cfg.eval.max_episode_steps, render_mode=render_mode)
    env = make_env()
    try:
        check_env_spaces(env, info)
        agent = _make_agent(agent_kind, loaded, cfg, env, device)
    finally:
        env.close()
    return PreparedRun(cfg, loaded, make_env, device, agent)


def _train_step(run_dir: Path) -> int:
    from ..train.checkpoint import list_checkpoints

    checkpoints = list_checkpoints(run_dir)
    return int(checkpoints[-1][0]) if checkpoints else 0


def evaluate_run(
    run_dir: Path,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    agent_kind: str = "planner",
) -> dict[str, Any]:
    """Evaluate a trained run folder; returns the summary also written to eval.json.

    agent_kind: planner (the run's model via plan.agent.make_agent), random, or behaviour (the
    run's collect.policy with its noise/epsilon, as collected). Non-planner outputs are named eval_<kind>.*.
    """
    from ..train.checkpoint import TB_DIR

    run_dir = Path(run_dir)
    prep = prepare_run(run_dir, overrides, agent_kind)
    cfg, info = prep.config, prep.loaded.info
    summary = evaluate_agent(prep.make_env, prep.agent, cfg.eval, info, desc=agent_kind)
    summary["run_dir"] = str(run_dir)
    summary["dataset"] = info.dataset
    summary["config"] = {"plan": config_to_dict(cfg.plan), "eval": config_to_dict(cfg.eval)}
    out_dir = Path(out) if out is not None else run_dir / "eval"
    name = "eval" if agent_kind == "planner" else f"eval_{agent_kind}"
    write_eval_outputs(
        summary, out_dir, name=name, tb_dir=run_dir / TB_DIR, tb_step=_train_step(run_dir)
    )
    return summary


def training_eval_hook(
    overrides: list[str] | None = None,
) -> Callable[[Path, int], dict[str, float]]:
    """The trainer's `eval_fn`: plan with the current weights every `train.eval_every` epochs.

    Writes RUN_DIR/eval/epoch_<N>.json and returns the headline numbers, which the trainer logs
    under eval/ (TensorBoard and metrics.jsonl), so nothing is logged twice.
    """

    def hook(run_dir: Path, epoch: int) -> dict[str, float]:
        prep = prepare_run(run_dir, overrides, "planner")
        summary = evaluate_agent(prep.make_env, prep.agent, prep.config.eval, prep.loaded.info)
        atomic_write_json(Path(run_dir) / "eval" / f"epoch_{epoch}.json", summary)
        keys = ("return_mean", "return_std", "normalized_score", "done_ratio", "plan_ms_per_step")
        return {k: float(summary[k]) for k in keys if summary.get(k) is not None}

    return hook
