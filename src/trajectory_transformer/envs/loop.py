"""Run an `Agent` for N episodes in a `gymnasium.vector` env and time it.

Why not gymnasium's autoreset: its default (NEXT_STEP) spends one extra step per episode on the
reset and SAME_STEP resets without a seed. We run the vector env with autoreset DISABLED and reset
finished slots ourselves with `reset_mask`, so every episode i starts from `reset(seed=seed + i)`
whichever slot it lands in: results do not depend on n_envs or on the order episodes finish.

Finished slots leave the agent's batch (the agent is never asked to act for them). When no episode
is left to start, a slot idles: the vector env still steps it (gymnasium steps all sub-envs), with
its last action, and its results are ignored.

This is the one episode loop: evaluation, baselines and videos (`on_frame`) all run through it, so
they execute the same (clipped) actions and record the same histories.

Goal tasks: when the env reports `info["success"]` (Gymnasium-Robotics' PointMaze does), each
episode's first step with success is recorded (`RolloutResult.success_step`), and with
`stop_on_success` the episode ends there (counted as truncated, not terminated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from tqdm.auto import tqdm

from ..data.spaces import executed_action, flat_dim, flatten
from ..errors import TTError
from .agents import Agent

__all__ = ["FrameFn", "RolloutResult", "StepInfo", "make_vector_env", "rollout"]

FrameFn = Callable[[np.ndarray, list[Any]], None]
"""on_frame(episodes (k,), frames): the rendered frame of each running episode, after its reset
and after each of its steps (an episode of T steps gives T + 1 frames)."""


@dataclass
class StepInfo:
    """What `on_step` sees after each vector step (flat vectors, active slots only)."""

    slots: np.ndarray  # (k,) env slots that acted
    episodes: np.ndarray  # (k,) episode index running in each slot
    observations: np.ndarray  # (k, obs_dim) the observations the agent acted on
    actions: np.ndarray  # (k, act_dim) flat actions from the agent (before clipping)
    rewards: np.ndarray  # (k,)
    terminated: np.ndarray  # (k,) bool
    truncated: np.ndarray  # (k,) bool


@dataclass
class RolloutResult:
    """Per-episode outcomes (indexed by episode, seeded seed + index) and timings."""

    returns: np.ndarray  # (E,) float64 undiscounted return
    lengths: np.ndarray  # (E,) int64 steps
    terminated: np.ndarray  # (E,) bool: ended by a termination, not by the time limit
    seeds: np.ndarray  # (E,) int64 reset seed
    n_envs: int
    wall_s: float  # whole rollout, resets included
    env_s: float  # inside vector step/reset
    agent_s: float  # inside agent.act (planning)
    agent_calls: int  # vector steps = batched act calls
    success_step: np.ndarray | None = None
    """(E,) int64 first step (1-based) whose info said success, -1 if none; None when the env
    never reports `success`."""

    @property
    def env_steps(self) -> int:
        return int(self.lengths.sum())

    @property
    def env_steps_per_s(self) -> float:
        """Env steps taken by real episodes per second of wall time (agent time included)."""
        return self.env_steps / self.wall_s if self.wall_s > 0 else float("nan")

    @property
    def agent_ms_per_step(self) -> float:
        """Planning time per env step (a batched call serves several env steps)."""
        return 1e3 * self.agent_s / max(self.env_steps, 1)

    @property
    def agent_ms_per_call(self) -> float:
        """Planning time per batched act call (one per vector step)."""
        return 1e3 * self.agent_s / max(self.agent_calls, 1)


def make_vector_env(
    make_env: Callable[[], gym.Env[Any, Any]],
    n_envs: int,
    vector: Literal["sync", "async"] = "sync",
    max_episode_steps: int | None = None,
) -> SyncVectorEnv | AsyncVectorEnv:
    """A vector env with autoreset disabled (we reset finished slots with a mask and a seed)."""

    def env_fn() -> gym.Env[Any, Any]:
        env = make_env()
        if max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps)
        return env

    fns = [env_fn] * n_envs
    if vector == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    if vector == "async":
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    raise TTError(f"vector must be 'sync' or 'async', got {vector!r}")


_REFRESH_S = 0.5
"""Seconds between progress refreshes while no episode ends."""
_FRACTION_BAR = "{l_bar}{bar}| {n:.1f}/{total_fmt} ep [{elapsed}<{remaining}{postfix}]"


def _step_limit(venv: SyncVectorEnv | AsyncVectorEnv) -> int | None:
    """The sub-envs' step limit (TimeLimit), or None when they have none."""
    try:
        spec = venv.get_attr("spec")[0]
    except Exception:  # an env without a spec: whole episodes only
        return None
    limit = getattr(spec, "max_episode_steps", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else None


def rollout(
    make_env: Callable[[], gym.Env[Any, Any]],
    agent: Agent,
    episodes: int,
    n_envs: int = 1,
    seed: int = 0,
    vector: Literal["sync", "async"] = "sync",
    max_episode_steps: int | None = None,
    progress: bool = True,
    on_step: Callable[[StepInfo], None] | None = None,
    on_frame: FrameFn | None = None,
    stop_on_success: bool = False,
) -> RolloutResult:
    """Run `episodes` episodes, at most `n_envs` at a time; episode i is reset with seed + i.

    `stop_on_success`: end an episode at its first step whose info says `success`.

    `on_frame` needs envs made with render_mode='rgb_array'; frames come from the vector env's
    `render()` and rendering errors propagate to the caller.
    """
    if episodes < 1:
        raise TTError(f"episodes must be >= 1, got {episodes}")
    if n_envs < 1:
        raise TTError(f"n_envs must be >= 1, got {n_envs}")
    n_envs = min(n_envs, episodes)
    venv = make_vector_env(make_env, n_envs, vector, max_episode_steps)
    try:
        return _run(venv, agent, episodes, seed, progress, on_step, on_frame, stop_on_success)
    finally:
        venv.close()


def _run(
    venv: SyncVectorEnv | AsyncVectorEnv,
    agent: Agent,
    episodes: int,
    seed: int,
    progress: bool,
    on_step: Callable[[StepInfo], None] | None,
    on_frame: FrameFn | None,
    stop_on_success: bool = False,
) -> RolloutResult:

    n = venv.num_envs
    obs_space, act_space = venv.single_observation_space, venv.single_action_space
    act_dim = flat_dim(act_space)

    out_returns = np.zeros(episodes, dtype=np.float64)
    out_lengths = np.zeros(episodes, dtype=np.int64)
    out_terminated = np.zeros(episodes, dtype=bool)
    out_success = np.full(episodes, -1, dtype=np.int64)  # first step with info["success"]
    reports_success = False
    seeds = seed + np.arange(episodes, dtype=np.int64)

    slot_episode = np.arange(n, dtype=np.int64)  # episode running in each slot; -1: idle
    ep_return = np.zeros(n, dtype=np.float64)
    ep_length = np.zeros(n, dtype=np.int64)
    actions = np.zeros((n, act_dim), dtype=np.float32)  # idle slots repeat their last action
    next_episode = n
    env_s = agent_s = 0.0
    calls = 0

    # the bar counts episodes, running ones as the fraction of the step limit they have done: with
    # equal-length episodes (Pendulum's 200 steps) all envs finish together, and a bar of whole
    # episodes would sit at 0/N until then
    limit = _step_limit(venv) if progress else None
    bar = tqdm(total=episodes, desc="episodes", unit="ep", disable=not progress, leave=False,
               bar_format=_FRACTION_BAR if limit else None)  # fmt: skip
    n_done = 0

    def show_progress() -> None:
        running = ep_length[slot_episode >= 0]
        bar.n = n_done + (float(np.minimum(running / limit, 0.99).sum()) if limit else 0.0)
        bar.set_postfix(steps=int(out_lengths.sum() + ep_length.sum()), refresh=False)
        bar.refresh()

    start = shown = time.perf_counter()
    obs, _ = venv.reset(seed=[int(s) for s in seeds[:n]])
    env_s += time.perf_counter() - start
    agent.reset(np.arange(n))

    def frames(slots: np.ndarray) -> None:
        if on_frame is not None and slots.size:
            rendered = venv.render()  # one frame per sub-env
            assert rendered is not None
            on_frame(slot_episode[slots].copy(), [rendered[int(i)] for i in slots])

    frames(np.arange(n))
    while True:
        active = np.flatnonzero(slot_episode >= 0)
        if active.size == 0:
            break
        flat_obs = flatten(obs_space, obs)[active]  # (k, obs_dim)

        t0 = time.perf_counter()
        chosen = np.asarray(agent.act(active, flat_obs), dtype=np.float32)  # (k, act_dim)
        agent_s += time.perf_counter() - t0
        calls += 1
        if chosen.shape != (active.size, act_dim):
            raise TTError(
                f"agent.act returned shape {chosen.shape}, expected {(active.size, act_dim)}"
            )
        actions[active] = chosen
        # what the env executes (Box clipped, discrete rounded) is what the agent's history holds
        env_act, flat_act = executed_action(act_space, actions)

        t0 = time.perf_counter()
        obs, reward, terminated, truncated, infos = venv.step(env_act)
        env_s += time.perf_counter() - t0

        reward = np.asarray(reward, dtype=np.float64)
        agent.record(active, flat_act[active], reward[active].astype(np.float32))
        ep_return[active] += reward[active]
        ep_length[active] += 1
        if "success" in infos:
            reports_success = True
            success = np.asarray(infos["success"], dtype=bool) & np.asarray(
                infos.get("_success", np.ones(n, bool)), dtype=bool
            )  # (n,)
            first = active[success[active] & (out_success[slot_episode[active]] < 0)]
            out_success[slot_episode[first]] = ep_length[first]
            if stop_on_success:
                truncated = np.logical_or(truncated, success)
        done = np.logical_or(terminated, truncated)  # (n,)
        frames(active)
        if progress and time.perf_counter() - shown > _REFRESH_S:  # show steps meanwhile
            shown = time.perf_counter()
            show_progress()
        if on_step is not None:
            on_step(
                StepInfo(
                    active,
                    slot_episode[active].copy(),
                    flat_obs,
                    chosen,
                    reward[active],
                    terminated[active],
                    truncated[active],
                )
            )

        if not done.any():
            continue
        finished = active[done[active]]
        eps = slot_episode[finished]
        out_returns[eps] = ep_return[finished]
        out_lengths[eps] = ep_length[finished]
        out_terminated[eps] = terminated[finished]  # both flags set counts as terminated

        n_new = min(finished.size, episodes - next_episode)
        restart, retire = finished[:n_new], finished[n_new:]
        slot_episode[restart] = np.arange(next_episode, next_episode + n_new)
        slot_episode[retire] = -1
        next_episode += n_new
        ep_return[finished] = 0.0
        ep_length[finished] = 0
        n_done += int(finished.size)
        if progress and time.perf_counter() - shown > min(_REFRESH_S, 0.1):  # tqdm's own pace
            shown = time.perf_counter()
            show_progress()

        if (slot_episode >= 0).any():
            # Idle slots that just ended must be reset too: DISABLED autoreset refuses to step them.
            seed_list: list[int | None] = [None] * n
            for slot in restart:
                seed_list[int(slot)] = int(seeds[slot_episode[slot]])
            t0 = time.perf_counter()
            obs, _ = venv.reset(seed=seed_list, options={"reset_mask": done.copy()})
            env_s += time.perf_counter() - t0
            if restart.size:
                agent.reset(restart)
                frames(restart)
    wall_s = time.perf_counter() - start
    bar.close()
    return RolloutResult(
        returns=out_returns,
        lengths=out_lengths,
        terminated=out_terminated,
        seeds=seeds,
        n_envs=n,
        wall_s=wall_s,
        env_s=env_s,
        agent_s=agent_s,
        agent_calls=calls,
        success_step=out_success if reports_success else None,
    )
