"""Published D4RL scores for orientation beside `tt bench quality`'s own numbers.

These were measured by others on D4RL's `-v2` datasets (1M transitions for medium and
medium-expert, gym MuJoCo with mujoco-py), not on our Minari datasets, with other budgets and
evaluation protocols. They say roughly where a method lands on a dataset of that kind; they are
never a result of ours and the table labels them so.

Sources (normalized score x100, mean over seeds as printed in the papers):
- TT: Janner, Li & Levine, "Offline Reinforcement Learning as One Big Sequence Modeling Problem"
  (NeurIPS 2021), Table 1, the Trajectory Transformer column (quantile discretization, beam
  search) — what our `tt-beam` reproduces; `tt-greedy` has no published counterpart.
- BC, TD3+BC, CQL, IQL, DT: Kostrikov, Nair & Levine, "Offline Reinforcement Learning with
  Implicit Q-Learning" (ICLR 2022), Table 1, its BC, TD3+BC, CQL, DT and IQL columns (the five
  come from one table).
"""

from __future__ import annotations

import re

__all__ = ["PUBLISHED_D4RL", "PUBLISHED_SOURCES", "d4rl_task", "published_score"]

_LEVELS = ("medium", "medium-replay", "medium-expert")
_ENVS = {"Hopper": "hopper", "HalfCheetah": "halfcheetah", "Walker2d": "walker2d"}


def _row(*scores: float) -> dict[str, float]:
    """Nine scores in the order hopper, halfcheetah, walker2d x medium, medium-replay, medium-expert."""
    keys = [f"{env}-{level}" for env in ("hopper", "halfcheetah", "walker2d") for level in _LEVELS]
    return dict(zip(keys, scores, strict=True))


PUBLISHED_D4RL: dict[str, dict[str, float]] = {
    # method: {env-level: score}  (columns: medium, medium-replay, medium-expert per env)
    "tt-beam": _row(61.1, 91.5, 110.0, 46.9, 41.9, 95.0, 79.0, 82.6, 101.9),
    "bc": _row(52.9, 18.1, 52.5, 42.6, 36.6, 55.2, 75.3, 26.0, 107.5),
    "td3bc": _row(59.3, 60.9, 98.0, 48.3, 44.6, 90.7, 83.7, 81.8, 110.1),
    "cql": _row(58.5, 95.0, 105.4, 44.0, 45.5, 91.6, 72.5, 77.2, 108.8),
    "iql": _row(66.3, 94.7, 91.5, 47.4, 44.2, 86.7, 78.3, 73.9, 109.6),
    "dt": _row(67.6, 82.7, 107.6, 42.6, 36.6, 86.8, 74.0, 66.6, 108.1),
}
PUBLISHED_SOURCES: dict[str, str] = {
    "tt-beam": "TT paper (Janner et al. 2021) Table 1",
    **{m: "IQL paper (Kostrikov et al. 2022) Table 1" for m in ("bc", "td3bc", "cql", "iql", "dt")},
}

_LEVEL_NAME = re.compile(r"(?P<level>medium-replay|medium-expert|medium)(?:-quick)?-v\d+\Z")


def d4rl_task(env_id: str | None, dataset: str) -> str | None:
    """'hopper-medium' etc. when the env is D4RL's Hopper/HalfCheetah/Walker2d and the dataset's
    name is a medium, medium-replay or medium-expert level (e.g. tt/hopper/medium-quick-v1,
    mujoco/hopper/medium-v0); else None (no published number is comparable even loosely)."""
    name = (env_id or "").split("/")[-1]
    env = next((short for prefix, short in _ENVS.items() if name.startswith(prefix)), None)
    match = _LEVEL_NAME.match(dataset.rstrip("/").split("/")[-1])
    if env is None or match is None:
        return None
    return f"{env}-{match['level']}"


def published_score(method: str, env_id: str | None, dataset: str) -> float | None:
    """The published D4RL score of `method` on a dataset of this kind, if there is one."""
    task = d4rl_task(env_id, dataset)
    return None if task is None else PUBLISHED_D4RL.get(method, {}).get(task)
