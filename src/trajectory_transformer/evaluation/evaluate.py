"""`tt eval`: roll out a trained run's planner (or a baseline) in vector envs and summarize.

Everything that can be wrong with the request (overrides, env id, spaces) is checked before the
first env step, with a one-line TTError. The env comes from `envs.factory`, the episodes from the
one episode loop in `envs.loop`, the files from `outputs.write_eval_outputs` under the names
`runs` gives them (RUN_DIR/eval/eval.json for the planner, eval_<agent>.json for baselines).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import torch

from .. import runs
from ..config import (
    CollectConfig,
    EvalConfig,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    split_override,
)
from ..envs.agents import Agent, PolicyAgent, RandomAgent
from ..envs.factory import check_env_spaces, env_factory
from ..envs.loop import StepInfo, rollout
from ..errors import TTError
from ..plan.agent import PlannerAgent, make_agent
from ..plan.memory import check_plan_memory
from ..sources.collect import behaviour_policy
from ..utils import atomic_write_json, check_output_dir, resolve_device
from .metrics import pick_reference, summarize
from .names import PLANNER, evaluation_name, tensorboard_prefix
from .outputs import write_eval_outputs
from .plan_audit import PlanAudit

if TYPE_CHECKING:
    from ..data.episodes import DatasetInfo
    from ..sources.policies import Policy

__all__ = [
    "AGENT_KINDS",
    "PreparedRun",
    "TrainingEvalHook",
    "eval_output_dir",
    "evaluate_agent",
    "evaluate_run",
    "prepare_run",
    "training_eval_hook",
]

AGENT_KINDS = ("planner", "random", "behaviour")
_EVAL_SECTIONS = ("plan.", "eval.")
_EVAL_KEYS = ("data.ref_min_score", "data.ref_max_score")  # the reference returns, see metrics


def evaluate_agent(
    make_env: Callable[[], gym.Env[Any, Any]],
    agent: Agent,
    eval_cfg: EvalConfig,
    info: DatasetInfo | None = None,
    desc: str = "eval",
    *,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    stop_on_success: bool | None = None,
    termination_penalty: float = 0.0,
    observe: Callable[[StepInfo], None] | None = None,
) -> dict[str, Any]:
    """Roll out `agent` as `eval_cfg` says and summarize (normalized with the dataset's references).

    `ref_min_score` / `ref_max_score` (data.ref_min_score / data.ref_max_score) override the
    dataset's reference returns (see `metrics.pick_reference`). The summary also carries
    per-episode `returns`, `lengths` and `terminated` lists, so reports can draw histograms of
    several agents (planner, behaviour, random) from the same function. Where the env reports
    `info["success"]` it also carries the success rate (Wilson 95% CI) and steps to the goal;
    `stop_on_success` (None: eval_cfg.stop_on_success, unset = off) ends episodes at success.
    A planner that predicts returns is audited (`plan_audit`, evaluation/plan_audit.py);
    `termination_penalty` is the run's data.termination_penalty, which the model's predicted
    returns include and the audit's realized ones therefore do too (scores never do).
    `observe` sees every vector step too (e.g. `video.EpisodeActions`, to film a scored episode).
    """
    if stop_on_success is None:
        stop_on_success = bool(eval_cfg.stop_on_success)
    # the scale is checked before the first episode: one that runs backwards is refused, not printed
    env_id = info.env_id if info is not None else None
    if env_id is None:
        env = make_env()
        env_id = env.spec.id if env.spec is not None else None
        env.close()
    reference = pick_reference(
        env_id,
        info.ref_min_score if info is not None else None,
        info.ref_max_score if info is not None else None,
        config_min_score=ref_min_score,
        config_max_score=ref_max_score,
    )
    audit = (
        PlanAudit(agent, agent.cfg.gamma, termination_penalty)
        if isinstance(agent, PlannerAgent) and agent.audits_returns
        else None
    )
    slow_warning = _SlowEvalWarning(make_env, eval_cfg)

    def on_step(step: StepInfo) -> None:
        slow_warning(step)
        if audit is not None:
            audit(step)
        if observe is not None:
            observe(step)

    result = rollout(
        make_env,
        agent,
        episodes=eval_cfg.episodes,
        n_envs=eval_cfg.n_envs,
        seed=eval_cfg.seed,
        vector=eval_cfg.vector,
        max_episode_steps=eval_cfg.max_episode_steps,
        progress=eval_cfg.progress,
        on_step=on_step,
        stop_on_success=stop_on_success,
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
    summary["stop_on_success"] = stop_on_success
    summary["plan_audit"] = None if audit is None else audit.summary()
    return summary


class _SlowEvalWarning:
    """After the second vector step, warn once if the whole evaluation will take hours.

    The paper's planner (beam 128, horizon 15) costs about half a second per step on a CPU, so a
    default `tt eval` of 1000-step episodes can run for many hours without saying so. The second
    step is timed, not the first: the first carries one-off warm-up (a greedy policy's first
    step measured 0.95 s, its others ~15 ms), which raised false alarms.
    """

    WARN_AFTER_S = 3600.0

    def __init__(self, make_env: Callable[[], gym.Env[Any, Any]], eval_cfg: EvalConfig) -> None:
        self.last: float | None = None
        self.eval_cfg = eval_cfg
        self.make_env = make_env
        self.done = False

    def __call__(self, step: StepInfo) -> None:
        if self.done:
            return
        now = time.perf_counter()
        if self.last is None:  # the first step ends here; time the next one
            self.last = now
            return
        self.done = True
        per_step = now - self.last  # one batched step: the plan and the env step
        steps = self.eval_cfg.max_episode_steps
        if steps is None:
            env = self.make_env()
            steps = env.spec.max_episode_steps if env.spec is not None else None
            env.close()
        if not steps:
            return
        waves = -(-self.eval_cfg.episodes // self.eval_cfg.n_envs)
        total_h = per_step * steps * waves / 3600
        if total_h * 3600 < self.WARN_AFTER_S:
            return
        print(
            f"warning: one step of {min(self.eval_cfg.n_envs, self.eval_cfg.episodes)} envs took "
            f"{per_step:.2f} s, so {self.eval_cfg.episodes} episodes of up to {steps} steps may "
            f"take {total_h:.1f} h (less if episodes end early); plan less (a smaller "
            "plan.beam_width or plan.horizon, or plan.plan_every=2), use plan.mode=greedy, or "
            "lower eval.episodes",
            file=sys.stderr,
            flush=True,
        )


def _apply_eval_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """plan.*, eval.* and the reference returns; the saved config cannot trust env code itself."""
    for item in overrides:
        key = split_override(item)[0]
        if not (key.startswith(_EVAL_SECTIONS) or key in _EVAL_KEYS):
            raise TTError(
                f"override '{item}': tt eval only takes plan.*, eval.*, data.ref_min_score and "
                "data.ref_max_score overrides (the rest of the config belongs to the trained run)"
            )
    # eval.trust_env_code is the user's decision now, never the run folder's
    config = dataclasses.replace(
        config, eval=dataclasses.replace(config.eval, trust_env_code=False)
    )
    return apply_overrides(config, overrides)


def _behaviour_policy(
    info: DatasetInfo, env: gym.Env[Any, Any], seed: int, where: str
) -> tuple[Policy, str]:
    """The policy that made the dataset, from its collection record; and a line saying which.

    The record is the dataset's own (`tt collect` stores it in the Minari metadata), not the run
    config's collect section, which is only a default for `tt collect`.
    """

    if not info.collect_settings:
        raise TTError(
            f"{where}: the behaviour policy is unknown for dataset '{info.dataset}' (it was not "
            "made by tt collect, so it records no collection settings); use --agent planner or "
            "--agent random"
        )
    try:
        record = json.loads(info.collect_settings)
        keys = ("policy", "noise", "epsilon", "seed")
        settings = {k: record[k] for k in keys if k in record}
        collect = config_from_dict(settings, CollectConfig, "collect.")
    except (ValueError, TypeError, AttributeError) as err:  # ConfigError is a ValueError
        raise TTError(
            f"{where}: unreadable collect_settings ({err}); restore the file or use --agent "
            "planner or --agent random"
        ) from err
    if "policy" not in settings:
        raise TTError(f"{where}: collect_settings names no policy; restore the file")
    assert isinstance(collect, CollectConfig)
    if collect.policy.startswith("sb3:"):
        # an SB3 checkpoint is loaded by SB3's own loader, which can run code: only a file that
        # is here already, and the output says which one was used
        path = Path(collect.policy.split(":", 2)[-1])
        if not (path.is_file() or path.with_suffix(".zip").is_file()):
            raise TTError(
                f"{where}: the dataset was collected with collect.policy={collect.policy}, but "
                f"{path} is not here; put the checkpoint there or use --agent planner or random"
            )
    described = f"{collect.policy} (noise {collect.noise}, epsilon {collect.epsilon})"
    return behaviour_policy(collect, env, seed=seed), described


def _make_agent(
    kind: str,
    loaded: runs.LoadedRun,
    cfg: RunConfig,
    env: gym.Env[Any, Any],
    device: Any,
    where: str,
) -> tuple[Agent, str]:
    """The agent to evaluate and a line saying what it is (for the summary and the output)."""
    if kind == "planner":
        # the beam's buffers, estimated before the first env step
        n_envs = min(cfg.eval.n_envs, cfg.eval.episodes)
        check_plan_memory(loaded.gpt_config, cfg.plan, n_envs, torch.device(device))
        planner = make_agent(loaded, cfg.plan, device)  # plan.* vs the model: a ConfigError
        return planner, f"the run's model, plan.mode={cfg.plan.mode}"
    if kind == "random":
        return RandomAgent(env.action_space, seed=cfg.eval.seed), "uniform random actions"
    if kind == "behaviour":
        policy, described = _behaviour_policy(loaded.info, env, cfg.eval.seed, where)
        agent = PolicyAgent(policy, env.observation_space, env.action_space)
        return agent, f"{described}, from the dataset's collection record"
    raise TTError(f"agent kind '{kind}' is unknown; use one of {list(AGENT_KINDS)}")


@dataclass
class PreparedRun:
    """A loaded run with plan/eval overrides applied and its env checked against its spaces."""

    config: RunConfig
    loaded: runs.LoadedRun
    make_env: Callable[[], gym.Env[Any, Any]]
    device: torch.device
    agent: Agent
    policy: str = ""
    """What the agent is (e.g. the behaviour policy that made the dataset)."""


def prepare_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    agent_kind: str = "planner",
    render_mode: str | None = None,
    verify: bool = True,
    checkpoint: int | None = None,
) -> PreparedRun:
    """All checks before any rollout: overrides, run files, env id, spaces; then the agent.

    `verify`: check the checksums of the weights and the discretizer (False: --ignore-checksums).
    `checkpoint`: the weights of the checkpoint at that optimizer step, not the final ones.
    """
    run_dir = Path(run_dir)
    if agent_kind not in AGENT_KINDS:
        raise TTError(f"agent kind '{agent_kind}' is unknown; use one of {list(AGENT_KINDS)}")
    if not run_dir.is_dir():
        raise TTError(f"{run_dir}: no such run folder")
    # the saved config plus overrides picks the device, so weights are loaded once, in place
    cfg = _apply_eval_overrides(runs.read_run_config(run_dir), overrides or [])
    cfg = dataclasses.replace(
        cfg, plan=cfg.plan.for_run(cfg.data)
    )  # the summary records the discount used
    device = resolve_device(cfg.eval.device, "eval.device")
    loaded = runs.load_run(run_dir, device, verify=verify, checkpoint=checkpoint)
    info = loaded.info
    where = str(run_dir / runs.DATASET_FILE)
    make_env = env_factory(
        info,
        cfg.eval.max_episode_steps,
        render_mode=render_mode,
        trust_env_code=cfg.eval.trust_env_code,
        source=where,
        env_kwargs=cfg.eval.env_kwargs,
        spec=cfg.eval.env_spec,
    )
    env = make_env()
    try:
        check_env_spaces(env, info, where=f"run {run_dir}")
        agent, policy = _make_agent(agent_kind, loaded, cfg, env, device, where)
    finally:
        env.close()
    return PreparedRun(cfg, loaded, make_env, device, agent, policy)


def eval_output_dir(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Where `evaluate_run` writes: `out`, else RUN_DIR/eval (files named by `runs.eval_name`)."""
    return Path(out) if out is not None else Path(run_dir) / runs.EVAL_DIR


def evaluate_run(
    run_dir: str | Path,
    overrides: list[str] | None = None,
    out: str | Path | None = None,
    agent_kind: str = "planner",
    verify: bool = True,
    checkpoint: int | None = None,
    name: str | None = None,
    observe: Callable[[StepInfo], None] | None = None,
) -> dict[str, Any]:
    """Evaluate a trained run folder; returns the summary also written to eval.json.

    agent_kind: planner (the run's model via plan.agent.make_agent), random, or behaviour (the
    policy that made the dataset, rebuilt from the dataset's collection record, with its
    noise/epsilon). Non-planner outputs are named eval_<kind>.*. `verify=False` skips the
    checksums of the weights and the discretizer (`--ignore-checksums`). `checkpoint`: evaluate
    the weights of the checkpoint at that optimizer step (the summary's `checkpoint` says which).
    `name`: the output files' stem instead of the agent's (e.g. eval_greedy for the model decoded
    greedily beside the planner's eval.json). The evaluation's name in TensorBoard and the report
    follows from where its JSON lies (`names.evaluation_name`; none outside the run).
    `observe`: called after every vector step (`evaluate_agent`).
    """
    run_dir = Path(run_dir)
    if run_dir.is_dir():  # where the results go, checked before any episode
        check_output_dir(eval_output_dir(run_dir, out), "evaluation output folder")
        runs.check_run_writable(
            run_dir,
            "tt eval writes TensorBoard scalars to RUN_DIR/tb: make it writable",
            runs.TB_DIR,
        )
    prep = prepare_run(run_dir, overrides, agent_kind, verify=verify, checkpoint=checkpoint)
    cfg, info = prep.config, prep.loaded.info
    summary = evaluate_agent(
        prep.make_env,
        prep.agent,
        cfg.eval,
        info,
        desc=agent_kind,
        ref_min_score=cfg.data.ref_min_score,
        ref_max_score=cfg.data.ref_max_score,
        stop_on_success=cfg.stop_on_success,
        termination_penalty=cfg.data.termination_penalty,
        observe=observe,
    )
    summary["policy"] = prep.policy
    summary["run_dir"] = str(run_dir)
    summary["dataset"] = info.dataset
    summary["checkpoint"] = "final" if checkpoint is None else checkpoint
    summary["config"] = {"plan": config_to_dict(cfg.plan), "eval": config_to_dict(cfg.eval)}
    stem = name or runs.eval_name(agent_kind)
    out_dir = eval_output_dir(run_dir, out)
    # one name for the files, TensorBoard and the report (names.py); none outside the run
    summary["name"] = evaluation_name(run_dir, out_dir / f"{stem}.json")
    write_eval_outputs(
        summary,
        out_dir,
        name=stem,
        tb_dir=None if summary["name"] is None else run_dir / runs.TB_DIR,
        tb_step=runs.train_step(run_dir) if checkpoint is None else checkpoint,
        tb_prefix=tensorboard_prefix(summary["name"] or PLANNER),
    )
    return summary


class TrainingEvalHook:
    """The trainer's `eval_fn` (see `training_eval_hook`), with a `preflight` the trainer runs
    once its data is loaded and before the first step: the env the evaluations will make is made
    now (trust, id, kwargs, spaces), so a refused env costs no epoch of training."""

    def __init__(self, hook: Callable[[Path, int], dict[str, float]], overrides: list[str]):
        self.hook = hook
        self.overrides = overrides

    def __call__(self, run_dir: Path, epoch: int) -> dict[str, float]:
        return self.hook(run_dir, epoch)

    def preflight(self, cfg: RunConfig, info: DatasetInfo, why: str | None = None) -> None:
        """Make (and close) the env evaluations will make; `why` says who will evaluate."""
        cfg = _apply_eval_overrides(cfg, self.overrides)
        why = why or f"train.eval_every={cfg.train.eval_every}"
        make_env = env_factory(
            info,
            cfg.eval.max_episode_steps,
            trust_env_code=cfg.eval.trust_env_code,
            source=f"dataset '{info.dataset}' ({why})",
            env_kwargs=cfg.eval.env_kwargs,
            spec=cfg.eval.env_spec,
        )
        env = make_env()
        try:
            check_env_spaces(env, info, where=f"dataset '{info.dataset}'")
        finally:
            env.close()


def training_eval_hook(overrides: list[str] | None = None) -> TrainingEvalHook:
    """The trainer's `eval_fn`: plan with the current weights every `train.eval_every` epochs.

    Writes RUN_DIR/eval/epoch_<N>.json and returns the headline numbers, which the trainer logs
    under eval/ (TensorBoard and metrics.jsonl), so nothing is logged twice. `overrides` are
    plan.* / eval.* settings (`eval.trust_env_code=true` from `tt train --trust-env-code`).
    """

    def hook(run_dir: Path, epoch: int) -> dict[str, float]:
        prep = prepare_run(run_dir, overrides, "planner")
        cfg = prep.config
        summary = evaluate_agent(
            prep.make_env,
            prep.agent,
            cfg.eval,
            prep.loaded.info,
            ref_min_score=cfg.data.ref_min_score,
            ref_max_score=cfg.data.ref_max_score,
            stop_on_success=cfg.stop_on_success,
            termination_penalty=cfg.data.termination_penalty,
        )
        atomic_write_json(Path(run_dir) / runs.EVAL_DIR / f"epoch_{epoch}.json", summary)
        keys = ("return_mean", "return_std", "normalized_score", "done_ratio", "plan_ms_per_step")
        return {k: float(summary[k]) for k in keys if summary.get(k) is not None}

    return TrainingEvalHook(hook, list(overrides or []))
