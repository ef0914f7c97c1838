"""`tt bench oracle run=DIR`: do the run's predicted returns rank actions *within a state*?

The plan audit (`tt eval`) correlates predicted and realised returns over a whole episode, which
the run-up to a fall dominates; it cannot say whether the value head tells a good action from a
bad one at the same state, which is all a search needs. This benchmark asks the environment:

1. drive `episodes` episodes with the run's planner (beam search, the run's plan settings plus
   overrides) and, every `every` steps, snapshot the simulator state (MuJoCo qpos/qvel, or a
   classic-control env's `state`) and the planner's history;
2. at each snapshot take the first step's sampled candidate actions (`PlanResult.first_actions`,
   W·E of them, at most `candidates` distinct ones) with their predicted returns V_0;
3. for each candidate, restore the state, execute it, then follow the model decoded greedily
   (the same weights as a policy, with the real history as its context) for `rollout` steps or
   until the episode ends; its realised return is the discounted sum of rewards with the run's
   data.discount and data.termination_penalty (the quantity V_0 predicts, cut at `rollout`);
4. report, over snapshots, the within-state Spearman correlation of predicted vs realised return,
   how often the highest-predicted candidate is the realised best, and the realised return of the
   highest-predicted candidate against the best and the mean candidate (the gap is what a
   perfect value head would gain from this model's own proposals: the ceiling of search).

Options: run=DIR (required), episodes=2, every=10, candidates=16, rollout=100, seed=0,
act=planner|oracle (oracle: the episode continues with the realised-best candidate at each scored
state; with every=1 its return is the ceiling of search with this model's proposals), and any
plan.* / eval.* override. Writes RUN/eval/oracle.json; `--json` prints it. Cost: about
snapshots x candidates x rollout env steps plus as many greedy decoding steps in batches of
`candidates` (Hopper, 3 x 64 model: ~1 s per snapshot on one core).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from .. import runs
from ..config import parse_options
from ..errors import ConfigError, TTError
from ..utils import atomic_write_json

__all__ = ["OracleOptions", "main", "oracle_ranking", "parse"]


@dataclass(frozen=True)
class OracleOptions:
    """`tt bench oracle` options (read by `config.parse_options`, with plan.*/eval.* overrides)."""

    run: str
    episodes: int = 2
    every: int = 10
    candidates: int = 16
    rollout: int = 100
    seed: int = 0
    act: Literal["planner", "oracle"] = "planner"
    """oracle: at each scored state the episode goes on with the realised-best candidate (with
    every=1, the episode's return is the score of search with a perfect value head)."""

    def __post_init__(self) -> None:
        for name in ("episodes", "every", "candidates", "rollout"):
            if getattr(self, name) < 1:
                raise ConfigError(f"tt bench oracle: {name} must be at least 1")
        if self.seed < 0:
            raise ConfigError("tt bench oracle: seed must be at least 0")


def parse(items: list[str]) -> tuple[OracleOptions, list[str]]:
    """(options, plan/eval overrides) from `key=value` items; a bad one is a one-line error."""
    return parse_options(items, OracleOptions, "bench oracle", sections=("plan", "eval"))


class _Snapshot:
    """Save and restore an env's simulator state (MuJoCo or classic control)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        u = env.unwrapped
        self.elapsed = [limit._elapsed_steps for limit in _time_limits(env)]
        if hasattr(u, "model") and hasattr(u, "data") and hasattr(u, "set_state"):
            import mujoco

            # the whole integration state (qpos, qvel, act, warm start, ...): qpos and qvel
            # alone replay a step only to ~1e-16, and the differences grow over a rollout
            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            self.state: Any = np.empty(mujoco.mj_stateSize(u.model, spec))
            mujoco.mj_getState(u.model, u.data, self.state, spec)
            self.kind = "mujoco"
        elif hasattr(u, "state"):
            self.state = np.array(u.state, copy=True)
            self.kind = "classic"
        else:
            raise TTError(
                f"tt bench oracle restores simulator states, which {env.spec.id if env.spec else u}"
                " does not expose (MuJoCo envs and classic-control envs do)"
            )

    def restore(self, env: gym.Env[Any, Any]) -> None:
        # the time limit too: a worker's TimeLimit counts every rollout step it ever took, so
        # without this its rollouts are cut short once those add up to the limit
        for limit, elapsed in zip(_time_limits(env), self.elapsed, strict=True):
            limit._elapsed_steps = elapsed
        u = env.unwrapped
        if self.kind == "mujoco":
            import mujoco

            spec = mujoco.mjtState.mjSTATE_INTEGRATION
            mujoco.mj_setState(u.model, u.data, self.state, spec)  # type: ignore[attr-defined]
            mujoco.mj_forward(u.model, u.data)  # type: ignore[attr-defined]
        else:
            u.state = np.array(self.state, copy=True)  # type: ignore[attr-defined]


def _time_limits(env: gym.Env[Any, Any]) -> list[gym.wrappers.TimeLimit]:  # type: ignore[type-arg]
    """The TimeLimit wrappers of an env, outermost first."""
    out = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            out.append(env)
        env = env.env
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def oracle_ranking(opts: OracleOptions, overrides: list[str] | None = None) -> dict[str, Any]:
    """The measurement of the module docstring; a JSON-able dict (summary + one row per state)."""
    from dataclasses import replace

    from ..evaluation.evaluate import prepare_run
    from ..evaluation.metrics import confidence_interval
    from ..plan.agent import PlannerAgent

    prep = prepare_run(opts.run, [*(overrides or []), "plan.plan_every=1"])
    cfg = prep.config
    if cfg.plan.mode != "beam" or prep.loaded.config.data.goal_key is not None:
        raise TTError("tt bench oracle needs plan.mode=beam on a run without goals")
    planner = prep.agent
    assert isinstance(planner, PlannerAgent)
    greedy = PlannerAgent(
        prep.loaded.model, prep.loaded.discretizer, replace(cfg.plan, mode="greedy")
    )
    gamma, penalty = cfg.data.discount, cfg.data.termination_penalty
    decode = prep.loaded.discretizer.decode
    act_dims = planner.act_dims
    env = prep.make_env()
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise TTError("tt bench oracle needs a flat Box observation space")
    workers = [prep.make_env() for _ in range(opts.candidates)]
    rows: list[dict[str, Any]] = []
    returns: list[float] = []
    try:
        for episode in range(opts.episodes):
            obs, _ = env.reset(seed=cfg.eval.seed + episode)
            for w in workers:
                w.reset(seed=cfg.eval.seed + episode)
            planner.reset(np.array([0]))
            total, t, done = 0.0, 0, False
            while not done:
                snap = _Snapshot(env) if t % opts.every == 0 else None
                history = (planner.history[0].copy(), int(planner.count[0]))
                action = planner.act(np.array([0]), obs[None].astype(np.float32))[0]
                if snap is not None and planner.last_result is not None:
                    row, best_action = _score_state(
                        snap, history, obs, planner.last_result, greedy, workers,
                        opts, gamma, penalty, decode, act_dims, t, episode,
                    )  # fmt: skip
                    rows.append(row)
                    if opts.act == "oracle":  # the planner's history records what was executed
                        action = best_action
                obs, reward, terminated, truncated, _ = env.step(action)
                planner.record(np.array([0]), action[None], np.array([reward]))
                total += float(reward)
                t += 1
                done = bool(terminated or truncated)
            returns.append(total)
    finally:
        env.close()
        for w in workers:
            w.close()
    rho = np.array([r["spearman"] for r in rows if r["spearman"] is not None])
    top = np.array([r["top_predicted_realized"] for r in rows])
    best = np.array([r["best_realized"] for r in rows])
    mean = np.array([r["mean_realized"] for r in rows])
    hit = np.array([r["top_predicted_is_best"] for r in rows], dtype=float)
    summary = {
        "run": str(opts.run),
        "options": dataclasses.asdict(opts),
        "plan": {
            "beam_width": cfg.plan.beam_width,
            "expand": cfg.plan.expand,
            "horizon": cfg.plan.horizon,
        },
        "discount": gamma,
        "termination_penalty": penalty,
        "states": len(rows),
        "states_with_ranking": int(rho.size),
        "episode_returns": returns,
        "spearman_mean": float(rho.mean()) if rho.size else None,
        "spearman_ci95": list(confidence_interval(rho)) if rho.size > 1 else None,
        "top_predicted_is_best": float(hit.mean()) if hit.size else None,
        "realized_top_predicted": float(top.mean()) if top.size else None,
        "realized_best": float(best.mean()) if best.size else None,
        "realized_mean": float(mean.mean()) if mean.size else None,
        "ceiling_gain": float((best - top).mean()) if top.size else None,
        "search_gain_realized": float((top - mean).mean()) if top.size else None,
        "note": (
            "realized = discounted return (data.discount, data.termination_penalty) of the candidate"
            " action then the model decoded greedily, cut at `rollout` steps; spearman is within "
            "each state over its distinct candidates"
        ),
        "per_state": rows,
    }
    return summary


def _score_state(
    snap: _Snapshot,
    history: tuple[np.ndarray, int],
    obs: np.ndarray,
    result: Any,
    greedy: Any,
    workers: list[gym.Env[Any, Any]],
    opts: OracleOptions,
    gamma: float,
    penalty: float,
    decode: Any,
    act_dims: np.ndarray,
    t: int,
    episode: int,
) -> tuple[dict[str, Any], np.ndarray]:
    """Realised returns of one state's distinct candidate first actions (module docstring), and
    the realised-best candidate's action."""
    tokens = result.first_actions[0].cpu().numpy()  # (W·E, A)
    predicted = result.first_returns[0].double().cpu().numpy()  # (W·E,)
    _, first = np.unique(tokens, axis=0, return_index=True)
    keep = np.sort(first)[: len(workers)]
    tokens, predicted = tokens[keep], predicted[keep]
    n = len(keep)
    actions = np.asarray(decode(tokens, dims=act_dims), dtype=np.float32)  # (n, A)
    first_actions = actions.copy()
    slots = np.arange(n)
    greedy.reset(slots)
    greedy.history[slots] = history[0]
    greedy.count[slots] = history[1]
    greedy.pending_obs[slots] = greedy.discretizer.encode(obs[None], dims=greedy.obs_dims)
    realized = np.zeros(n)
    steps = np.zeros(n, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    current = np.repeat(obs[None].astype(np.float32), n, axis=0)
    for k in range(opts.rollout):
        if k > 0:
            rows = np.flatnonzero(alive)
            actions[rows] = greedy.act(rows, current[rows])
        rows = np.flatnonzero(alive)
        rewards = np.zeros(len(rows))
        for j, i in enumerate(rows):
            if k == 0:
                snap.restore(workers[i])
            o, r, term, trunc, _ = workers[i].step(actions[i])
            rewards[j] = float(r)
            realized[i] += gamma**k * (float(r) + (penalty if term else 0.0))
            steps[i] += 1
            current[i] = o
            if term or trunc:
                alive[i] = False
        greedy.record(rows, actions[rows], rewards)
        if not alive.any():
            break
    best = int(np.argmax(realized))
    top = int(np.argmax(predicted))
    row = {
        "episode": episode,
        "t": t,
        "candidates": n,
        "rollout_steps": int(steps.max()),
        "predicted": [round(float(x), 3) for x in predicted],
        "realized": [round(float(x), 3) for x in realized],
        "spearman": _spearman(predicted, realized),
        "top_predicted_realized": float(realized[top]),
        "best_realized": float(realized[best]),
        "mean_realized": float(realized.mean()),
        "top_predicted_is_best": bool(realized[top] >= realized[best] - 1e-9),
    }
    return row, first_actions[best]


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    opts, plan_overrides = parse(list(overrides or []))
    if quick:
        opts = dataclasses.replace(opts, episodes=1, every=2, candidates=4, rollout=5)
    result = oracle_ranking(opts, plan_overrides)
    path = Path(opts.run) / runs.EVAL_DIR / "oracle.json"
    atomic_write_json(path, result)
    if json_lines:
        print(json.dumps({k: v for k, v in result.items() if k != "per_state"}))
        return 0
    ci = result["spearman_ci95"]
    print(f"{opts.run}: {result['states']} states, {opts.candidates} candidates, rollout "
          f"{opts.rollout}, discount {result['discount']}")  # fmt: skip
    print(f"  within-state Spearman (predicted vs realised): {_f(result['spearman_mean'])}"
          + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))  # fmt: skip
    print(
        f"  highest-predicted candidate is the realised best: {_f(result['top_predicted_is_best'])}"
    )
    print(f"  realised return: highest-predicted {_f(result['realized_top_predicted'])}, best "
          f"{_f(result['realized_best'])}, mean candidate {_f(result['realized_mean'])}")  # fmt: skip
    print(
        f"  episode returns while measuring (act={opts.act}): {[round(r, 1) for r in result['episode_returns']]}"
    )
    print(f"wrote {path}")
    return 0


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"
