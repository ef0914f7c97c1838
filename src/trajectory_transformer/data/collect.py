"""`tt collect`: run a behaviour policy in Gymnasium envs and write a real Minari dataset.

We build `minari.data_collector.EpisodeBuffer`s ourselves and call
`minari.create_dataset_from_buffers` (Minari's DataCollector needs jax, and this is ~10x faster).
Several plain envs are stepped in lockstep with one batched policy call per step (no vector env:
each episode keeps its own recorded reset seed, and on 2 cores sync stepping beats async anyway).
Reference scores are stored so normalized scores work later: ref_min_score = the random policy's
mean return, ref_max_score = the expert's (the shipped expert, or the sb3 policy being collected).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import CollectConfig
from ..utils import TTError
from .episodes import minari_root
from .policies import EXPERTS, NoisyPolicy, Policy, RandomPolicy, make_policy
from .spaces import stack

__all__ = [
    "behaviour_policy",
    "collect_dataset",
    "default_dataset_id",
    "rollout_returns",
    "run_episodes",
]

_REF_SEED_OFFSET = 1_000_003  # reference episodes use seeds disjoint from the data's


def default_dataset_id(env_id: str, policy: str) -> str:
    """tt/<env name>/<policy>-v0, e.g. tt/pendulum/expert-v0 for Pendulum-v1 + expert."""
    env_name = re.sub(r"-v\d+$", "", env_id.split("/")[-1]).lower()
    policy_name = re.sub(r"[^a-z0-9]+", "-", policy.split("/")[-1].lower()).strip("-")
    if policy.startswith("sb3:"):
        policy_name = "sb3-" + policy.split(":")[1].lower()
    return f"tt/{env_name}/{policy_name}-v0"


def run_episodes(
    env_id: str,
    policy: Policy,
    n_episodes: int,
    seed: int,
    n_envs: int = 8,
    on_episode: Callable[[int, float], None] | None = None,
) -> list[Any]:
    """Run `n_episodes` episodes (seeds seed, seed+1, ...) in lockstep envs -> EpisodeBuffers."""
    from minari.data_collector import EpisodeBuffer

    n_envs = max(1, min(n_envs, n_episodes))
    envs = [gym.make(env_id) for _ in range(n_envs)]
    obs_space, act_space = envs[0].observation_space, envs[0].action_space
    buffers: list[Any] = [None] * n_episodes
    next_ep = 0
    # per-slot episode state: episode index, observation/action/reward/flag lists
    slots: list[dict[str, Any] | None] = [None] * n_envs

    def start(slot: int) -> None:
        nonlocal next_ep
        if next_ep >= n_episodes:
            slots[slot] = None
            return
        ep_seed = seed + next_ep
        obs, _ = envs[slot].reset(seed=ep_seed)
        slots[slot] = {
            "ep": next_ep,
            "seed": ep_seed,
            "obs": [obs],
            "act": [],
            "rew": [],
            "term": [],
            "trunc": [],
        }
        next_ep += 1

    for slot in range(n_envs):
        start(slot)
    try:
        while any(s is not None for s in slots):
            active = [i for i, s in enumerate(slots) if s is not None]
            batch = stack(obs_space, [slots[i]["obs"][-1] for i in active])  # type: ignore[index]
            actions = policy(batch)
            for j, i in enumerate(active):
                state = slots[i]
                assert state is not None
                action = actions[j]
                obs, reward, term, trunc, _ = envs[i].step(action)
                state["obs"].append(obs)
                state["act"].append(action)
                state["rew"].append(float(reward))
                state["term"].append(bool(term))
                state["trunc"].append(bool(trunc))
                if term or trunc:
                    buffers[state["ep"]] = EpisodeBuffer(
                        id=state["ep"],
                        seed=state["seed"],
                        observations=stack(obs_space, state["obs"]),  # (T+1, ...)
                        actions=stack(act_space, state["act"]),  # (T, ...)
                        rewards=state["rew"],
                        terminations=state["term"],
                        truncations=state["trunc"],
                        infos={},
                    )
                    if on_episode is not None:
                        on_episode(len(state["rew"]), float(np.sum(state["rew"])))
                    start(i)
    finally:
        for env in envs:
            env.close()
    return buffers


def rollout_returns(env_id: str, policy: Policy, n_episodes: int, seed: int) -> float:
    """Mean undiscounted return of `policy` over `n_episodes` episodes."""
    buffers = run_episodes(env_id, policy, n_episodes, seed)
    return float(np.mean([np.sum(b.rewards) for b in buffers]))


def behaviour_policy(cfg: CollectConfig, env: gym.Env[Any, Any], seed: int | None = None) -> Policy:
    """The policy that made a dataset: collect.policy with its noise/epsilon mixture."""
    seed = cfg.seed if seed is None else seed
    base = make_policy(cfg.policy, env, seed)
    if cfg.noise > 0 or cfg.epsilon > 0:
        return NoisyPolicy(base, env.action_space, cfg.noise, cfg.epsilon, seed)
    return base


def collect_dataset(cfg: CollectConfig, progress: bool = True) -> str:
    """Collect `cfg.episodes` episodes with `cfg.policy` and write a Minari dataset; returns its id."""
    import minari
    from tqdm import tqdm

    dataset_id = cfg.dataset_id or default_dataset_id(cfg.env, cfg.policy)
    exists = dataset_id in minari.list_local_datasets()
    overwrite = bool(getattr(cfg, "overwrite", False))
    if exists and not overwrite:
        raise TTError(
            f"Minari dataset '{dataset_id}' already exists in {minari_root()}; pass "
            "collect.overwrite=true to replace it or choose another collect.dataset_id"
        )
    if cfg.episodes < 1:
        raise TTError(f"collect.episodes must be >= 1, got {cfg.episodes}")
    try:
        env = gym.make(cfg.env)
    except Exception as err:
        raise TTError(f"collect.env={cfg.env}: cannot make this Gymnasium env ({err})") from err
    policy = behaviour_policy(cfg, env)

    bar = tqdm(total=cfg.episodes, desc=f"collect {dataset_id}", unit="ep", disable=not progress)
    stats = {"steps": 0, "returns": 0.0, "episodes": 0}
    t0 = time.perf_counter()

    def on_episode(steps: int, ret: float) -> None:
        stats["steps"] += steps
        stats["returns"] += ret
        stats["episodes"] += 1
        rate = stats["steps"] / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(
            steps_s=f"{rate:,.0f}",
            mean_return=f"{stats['returns'] / stats['episodes']:.1f}",
            refresh=False,
        )
        bar.update(1)

    try:
        buffers = run_episodes(cfg.env, policy, cfg.episodes, cfg.seed, on_episode=on_episode)
    finally:
        bar.close()

    ref_seed = cfg.seed + _REF_SEED_OFFSET
    ref_min = rollout_returns(
        cfg.env, RandomPolicy(env.action_space, ref_seed), cfg.ref_episodes, ref_seed
    )
    expert: Policy | None = None
    if cfg.policy.startswith("sb3:"):
        expert = make_policy(cfg.policy, env, cfg.seed)
    elif cfg.env in EXPERTS:
        expert = EXPERTS[cfg.env]()
    ref_max = rollout_returns(cfg.env, expert, cfg.ref_episodes, ref_seed) if expert else None
    if ref_max is None:
        warnings.warn(
            f"no expert for {cfg.env}: ref scores not stored, normalized scores unavailable",
            stacklevel=2,
        )

    if exists:
        minari.delete_dataset(dataset_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Minari nags about author/permalink fields
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            algorithm_name=f"tt-collect:{cfg.policy}(noise={cfg.noise},epsilon={cfg.epsilon})",
            ref_min_score=ref_min,
            ref_max_score=ref_max,
            num_episodes_average_score=cfg.ref_episodes,
            description=(
                f"{cfg.episodes} episodes of {cfg.env} with policy {cfg.policy}, noise {cfg.noise}, "
                f"epsilon {cfg.epsilon}, seeds {cfg.seed}..{cfg.seed + cfg.episodes - 1} "
                "(written by trajectory_transformer tt collect)"
            ),
            data_format="hdf5",
        )
    env.close()
    if progress:
        elapsed = time.perf_counter() - t0
        print(
            f"wrote {dataset_id}: {cfg.episodes} episodes, {stats['steps']} steps, mean return "
            f"{stats['returns'] / cfg.episodes:.1f} (random {ref_min:.1f}, expert "
            f"{'n/a' if ref_max is None else f'{ref_max:.1f}'}) in {elapsed:.1f}s"
        )
    return dataset_id
