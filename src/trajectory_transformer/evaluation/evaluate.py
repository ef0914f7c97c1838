"""`tt eval`: roll out a trained run's planner (or a baseline) in vector envs and summarize.

Everything that can be wrong with the request (overrides, env id, spaces) is checked before the
first env step, with a one-line TTError. The env comes from `envs.factory`, the episodes from the
one episode loop in `envs.loop`, the files from `outputs.write_eval_outputs` under the names
`runs` gives them (RUN_DIR/eval/eval.json for the planner, eval_<agent>.json for baselines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from .. import runs
from ..config import EvalConfig, RunConfig, apply_overrides, config_to_dict
from ..envs.agents import Agent, PolicyAgent, RandomAgent
from ..envs.factory import check_env_spaces, env_factory
from ..envs.loop import rollout
from ..errors import TTError
from ..utils import atomic_write_json, resolve_device
from .metrics import pick_reference, summarize
from .outputs import write_eval_outputs

if TYPE_CHECKING:
    from ..data.episodes import DatasetInfo

__all__ = [
    "AGENT_KINDS",
    "PreparedRun",
    "evaluate_agent",
    "evaluate_run",
    "prepare_run",
    "training_eval_hook",
]

AGENT_KINDS = ("planner", "random", "behaviour")
_EVAL_SECTIONS = ("plan.", "eval.")


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

        return make_agent(loaded, cfg.plan, device)  # plan.* vs the model: a ConfigError
    if kind == "random":
        return RandomAgent(env.action_space, seed=cfg.eval.seed)
    if kind == "behaviour":
        from ..data.collect import behaviour_policy

        policy = behaviour_policy(cfg.collect, env, seed=cfg.eval.seed)
        return PolicyAgent(policy, env.observation_space, env.action_space)
    raise TTError(f"agent kind '{kind}' is unknown; use one of {list(AGENT_KINDS)}")


@dataclass
class PreparedRun:
    """A loaded run with plan/eval overrides applied and its env checked against its spaces."""

    config: RunConfig
    loaded: runs.LoadedRun
    make_env: Callable[[], gym.Env[Any, Any]]
    device: torch.device
    agent: Agent


def prepare_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    agent_kind: str = "planner",
    render_mode: str | None = None,
) -> PreparedRun:
    """All checks before any rollout: overrides, run files, env id, spaces; then the agent."""
    run_dir = Path(run_dir)
    if agent_kind not in AGENT_KINDS:
        raise TTError(f"agent kind '{agent_kind}' is unknown; use one of {list(AGENT_KINDS)}")
    if not run_dir.is_dir():
        raise TTError(f"{run_dir}: no such run folder")
    # the saved config plus overrides picks the device, so weights are loaded once, in place
    cfg = _apply_eval_overrides(runs.read_run_config(run_dir), overrides or [])
    device = resolve_device(cfg.eval.device)
    loaded = runs.load_run(run_dir, device)
    info = loaded.info
    make_env = env_factory(info, cfg.eval.max_episode_steps, render_mode=render_mode)
    env = make_env()
    try:
        check_env_spaces(env, info)
        agent = _make_agent(agent_kind, loaded, cfg, env, device)
    finally:
        env.close()
    return PreparedRun(cfg, loaded, make_env, device, agent)


def evaluate_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    agent_kind: str = "planner",
) -> dict[str, Any]:
    """Evaluate a trained run folder; returns the summary also written to eval.json.

    agent_kind: planner (the run's model via plan.agent.make_agent), random, or behaviour (the
    run's collect.policy with its noise/epsilon, as collected). Non-planner outputs are named eval_<kind>.*.
    """
    run_dir = Path(run_dir)
    prep = prepare_run(run_dir, overrides, agent_kind)
    cfg, info = prep.config, prep.loaded.info
    summary = evaluate_agent(prep.make_env, prep.agent, cfg.eval, info, desc=agent_kind)
    summary["run_dir"] = str(run_dir)
    summary["dataset"] = info.dataset
    summary["config"] = {"plan": config_to_dict(cfg.plan), "eval": config_to_dict(cfg.eval)}
    out_dir = Path(out) if out is not None else run_dir / runs.EVAL_DIR
    write_eval_outputs(
        summary,
        out_dir,
        name=runs.eval_name(agent_kind),
        tb_dir=run_dir / runs.TB_DIR,
        tb_step=runs.train_step(run_dir),
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
        atomic_write_json(Path(run_dir) / runs.EVAL_DIR / f"epoch_{epoch}.json", summary)
        keys = ("return_mean", "return_std", "normalized_score", "done_ratio", "plan_ms_per_step")
        return {k: float(summary[k]) for k in keys if summary.get(k) is not None}

    return hook
