"""The model card (a Hub repository's README.md) of a trained run, written from its own files.

Everything on the card is read from the run folder, never typed by hand: the dataset (id, env,
size, the `tt collect` settings or recipe that made it), the training config as the `tt train`
command that reproduces it (the keys that differ from the defaults), the seeds, the planner
settings, and every evaluation in RUN_DIR/eval with its normalized score, 95% interval and the
`tt eval` command behind it. A run that was never evaluated says so instead of showing a score.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from .. import runs
from ..config import RunConfig, config_to_dict
from ..data.episodes import DatasetInfo

__all__ = ["changed_keys", "collect_command", "model_card", "version"]


def version() -> str:
    """The installed package's version (the facade's `__version__` would import the facade)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trajectory-transformer")
    except PackageNotFoundError:
        return "unknown"


def _flat(section: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{section}.{k}": v for k, v in values.items()}


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def changed_keys(config: RunConfig, sections: tuple[str, ...]) -> list[str]:
    """`section.key=value` for every key of these sections that differs from the defaults."""
    default, given = config_to_dict(RunConfig()), config_to_dict(config)
    out = []
    for section in sections:
        before, after = _flat(section, default[section]), _flat(section, given[section])
        out += [f"{k}={_value(v)}" for k, v in after.items() if before.get(k) != v]
    return out


def collect_command(info: DatasetInfo) -> str | None:
    """The `tt collect` command that makes the run's dataset, when the dataset records it."""
    spec = info.dataset_id or info.dataset
    parts = spec.split("/")
    if len(parts) == 3 and parts[0] == "tt" and parts[2].endswith("-v1"):
        return f"tt collect --recipe {parts[1]}-{parts[2].removesuffix('-v1')}"  # recipe ids
    if not info.collect_settings:
        return None
    try:
        record = json.loads(info.collect_settings)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    keys = [f"collect.{k}={_value(v)}" for k, v in sorted(record.items()) if v not in ({}, None)]
    return shlex.join(["tt", "collect", *keys, f"collect.dataset_id={spec}"])


def _score(summary: dict[str, Any]) -> str:
    score, ci = summary.get("normalized_score"), summary.get("normalized_score_ci95")
    if score is None:
        return "n/a (no reference returns)"
    interval = f" [{ci[0]:.1f}, {ci[1]:.1f}]" if isinstance(ci, list) and len(ci) == 2 else ""
    return f"{score:.1f}{interval}"


def _eval_command(run_name: str, config: RunConfig, agent: str, summary: dict[str, Any]) -> str:
    """`tt eval` with the plan/eval keys the summary used that the run's config does not."""
    used = summary.get("config") or {}
    own = config_to_dict(config)
    keys = []
    for section in ("plan", "eval"):
        for key, value in (used.get(section) or {}).items():
            if own[section].get(key) != value:
                keys.append(f"{section}.{key}={_value(value)}")
    agent_flag = [] if agent == "planner" else ["--agent", agent]
    if agent not in ("planner", "random", "behaviour"):  # e.g. eval_greedy: a named evaluation
        agent_flag = []
    return shlex.join(["tt", "eval", f"runs/{run_name}", *agent_flag, *keys])


def _evaluations(run_dir: Path, config: RunConfig, run_name: str) -> list[str]:
    summaries = runs.read_eval_summaries(run_dir)
    if not summaries:
        return ["Not evaluated yet: run `tt eval` on the run before pushing to show a score."]
    lines = [
        "| agent | episodes | normalized score [95% CI] | mean return ± std | eval seed |",
        "|---|---|---|---|---|",
    ]
    for agent, s in summaries.items():
        mode = (s.get("config") or {}).get("plan", {}).get("mode")
        label = f"{agent} (plan.mode={mode})" if agent == "planner" and mode else agent
        ret = f"{s.get('return_mean', float('nan')):.1f} ± {s.get('return_std', float('nan')):.1f}"
        lines.append(f"| {label} | {s.get('episodes')} | {_score(s)} | {ret} | {s.get('seed')} |")
    reference = next((s["reference"] for s in summaries.values() if s.get("reference")), None)
    if reference:
        lines += [
            "",
            f"Normalized score = {reference.get('formula')}, random return "
            f"{reference.get('random_return'):.1f}, expert return "
            f"{reference.get('expert_return'):.1f} ({reference.get('source')}). "
            "The interval is a t-interval over episodes.",
        ]
    lines += ["", "Commands:", "", "```bash"]
    lines += [_eval_command(run_name, config, agent, s) for agent, s in summaries.items()]
    lines.append("```")
    return lines


def model_card(run_dir: str | Path, repo_id: str) -> str:
    """README.md text for a run pushed as `repo_id` (YAML front matter + Markdown)."""
    root = Path(run_dir)
    loaded_config = runs.read_run_config(root)
    info = runs.read_dataset_info(root)
    gpt = runs.load_gpt_config(root / runs.MODEL_CONFIG_FILE)
    steps = runs.train_step(root)
    name = root.name
    env = info.env_id or "unknown env"
    tags = ["reinforcement-learning", "offline-reinforcement-learning", "trajectory-transformer"]
    front = ["---", "library_name: trajectory-transformer", "tags:"]
    front += [f"- {t}" for t in [*tags, *([info.env_id] if info.env_id else [])]]
    front += ["---", ""]
    keys = changed_keys(loaded_config, ("data", "model", "train"))
    dataset_key = f"data.dataset={loaded_config.data.dataset}"
    keys = [dataset_key, *(k for k in keys if k != dataset_key)]  # named even when the default
    train_cmd = shlex.join(["tt", "train", *keys, "--run-dir", f"runs/{name}"])
    collect = collect_command(info)
    plan = config_to_dict(loaded_config.plan)
    body = [
        f"# Trajectory Transformer on {env} ({info.dataset})",
        "",
        "A [Trajectory Transformer](https://arxiv.org/abs/2106.02039) policy trained with "
        f"trajectory-transformer {version()}: one file, `policy.tt` (safetensors weights, "
        "discretizer, config and env description; no pickle; checksummed).",
        "",
        "```python",
        "import trajectory_transformer as tt",
        "",
        f'policy = tt.TTPolicy.from_pretrained("{repo_id}")',
        "action = policy.act(observation)  # the env's own observation in, its own action out",
        "```",
        "",
        "## Data",
        "",
        f"- dataset: `{info.dataset}`"
        + (
            f" (id `{info.dataset_id}`)"
            if info.dataset_id and info.dataset_id != info.dataset
            else ""
        ),
        f"- env: `{env}`; observation dims {info.observation_dim}, action dims {info.action_dim}",
        f"- {info.n_episodes} episodes, {info.n_transitions} transitions"
        + (f", {info.dropped_episodes} dropped" if info.dropped_episodes else ""),
        f"- made by: `{collect}`" if collect else "- made elsewhere (no `tt collect` record)",
    ]
    if info.collect_settings:
        body.append(f"- collect settings: `{info.collect_settings}`")
    body += [
        "",
        "## Training",
        "",
        f"- seed: train.seed={loaded_config.train.seed} (weights, data order, dropout, episode subset)",
        f"- model: n_layer {gpt.n_layer}, n_embd {gpt.n_embd}, n_head {gpt.n_head}, "
        f"{gpt.vocab_size} bins per dimension ({loaded_config.data.strategy}), "
        f"{gpt.n_transitions} transitions per window",
        f"- optimizer steps: {steps}" if steps else "- optimizer steps: unknown (no checkpoint)",
        "",
        "```bash",
        *([collect] if collect else []),
        train_cmd,
        "```",
        "",
        "## Planner settings",
        "",
        "What `policy.tt` plans with (the run's `plan` config; keywords of `from_pretrained`, "
        "e.g. `beam_width=64`, change them):",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| plan.{k} | {_value(v)} |" for k, v in plan.items()],
        "",
        "## Evaluation",
        "",
        *_evaluations(root, loaded_config, name),
        "",
    ]
    return "\n".join(front + body)
