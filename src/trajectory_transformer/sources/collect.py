"""`tt collect`: run a behaviour policy in Gymnasium envs and write a real Minari dataset.

We build `minari.data_collector.EpisodeBuffer`s ourselves and call
`minari.create_dataset_from_buffers` (Minari's DataCollector needs jax, and this is ~10x faster).
Several plain envs are stepped in lockstep with one batched policy call per step (no vector env:
each episode keeps its own recorded reset seed, and on 2 cores sync stepping beats async anyway).
Reference scores are stored so normalized scores work later: ref_min_score = the random policy's
mean return, ref_max_score = the expert's (the shipped expert, or the sb3 policy being collected),
unless collect.ref_min_score / collect.ref_max_score give them.

Nothing is written before the id, the target folder and the env are checked, and the dataset is
written into a hidden staging folder and renamed into place only when complete (see episodes.py):
a killed collect leaves no half dataset, and `collect.overwrite=true` replaces the old dataset only
once the new one is whole.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import CollectConfig
from ..data.spaces import stack
from ..envs.make import make_env
from ..errors import TTError
from ..store import (
    COLLECT_RECORD_KEY,
    check_dataset_id,
    check_writable_root,
    dataset_problem,
    minari_datasets_path,
    minari_root,
    publish_dataset,
    recover_interrupted,
    staging_root,
    target_conflict,
)
from .policies import EXPERTS, NoisyPolicy, Policy, RandomPolicy, make_policy

__all__ = [
    "behaviour_policy",
    "check_target",
    "collect_dataset",
    "collect_record",
    "cut_episode",
    "default_dataset_id",
    "rollout_returns",
    "run_episodes",
    "run_transitions",
    "write_dataset",
]

REF_SEED_OFFSET = 1_000_003
"""Reference (and recipe checkpoint evaluation) episodes use seeds seed + this: disjoint from data's."""


def default_dataset_id(env_id: str, policy: str) -> str:
    """tt/<env name>/<policy>-v0, e.g. tt/pendulum/expert-v0 for Pendulum-v1 + expert.

    Both parts are reduced to letters, digits, '_' and '-', so the id is always valid.
    """
    env_name = re.sub(r"-v\d+$", "", env_id.split("/")[-1].split(":")[-1]).lower()
    env_name = re.sub(r"[^a-z0-9_]+", "-", env_name).strip("-") or "env"
    policy_name = re.sub(r"[^a-z0-9]+", "-", policy.split("/")[-1].lower()).strip("-")
    if policy.startswith("sb3:"):
        policy_name = "sb3-" + re.sub(r"[^a-z0-9]+", "-", policy.split(":")[1].lower()).strip("-")
    return f"tt/{env_name}/{policy_name or 'policy'}-v0"


def run_episodes(
    env_id: str,
    policy: Policy,
    n_episodes: int,
    seed: int,
    n_envs: int = 8,
    on_episode: Callable[[int, float], None] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Run `n_episodes` episodes (seeds seed, seed+1, ...) in lockstep envs -> EpisodeBuffers."""
    from minari.data_collector import EpisodeBuffer

    n_envs = max(1, min(n_envs, n_episodes))
    envs = [make_env(env_id, env_kwargs) for _ in range(n_envs)]
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


def rollout_returns(
    env_id: str,
    policy: Policy,
    n_episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
) -> float:
    """Mean undiscounted return of `policy` over `n_episodes` episodes."""
    buffers = run_episodes(env_id, policy, n_episodes, seed, env_kwargs=env_kwargs)
    return float(np.mean([np.sum(b.rewards) for b in buffers]))


def collect_record(cfg: CollectConfig) -> str:
    """JSON of the settings that decide a dataset's behaviour policy, stored in its metadata.

    `tt eval --agent behaviour` rebuilds the policy from this record (the dataset's own, not the
    collect section of a training config, which is only a default for `tt collect`).
    """
    keys = ("env", "policy", "noise", "epsilon", "seed", "episodes", "env_kwargs")
    return json.dumps({key: getattr(cfg, key) for key in keys}, sort_keys=True)


def run_transitions(
    env_id: str,
    policy: Policy,
    n_transitions: int,
    seed: int,
    n_envs: int = 8,
    on_episode: Callable[[int, float], None] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Episodes (seeds seed, seed+1, ...) until exactly `n_transitions` steps -> EpisodeBuffers.

    As D4RL's fixed-size datasets: whole episodes in seed order, the last one cut where the budget
    ends (marked truncated, its observations kept T+1). Episodes run in rounds sized from the
    lengths seen so far; the first round assumes episodes as long as the env's time limit, so a
    policy that survives to the limit never runs an episode it does not keep.
    """
    if n_transitions < 1:
        raise TTError(f"transitions must be >= 1, got {n_transitions}")
    probe = make_env(env_id, env_kwargs)
    limit = probe.spec.max_episode_steps if probe.spec is not None else None
    probe.close()
    buffers: list[Any] = []
    steps = 0
    while steps < n_transitions:
        remaining = n_transitions - steps
        mean_len = steps / len(buffers) if buffers else float(limit or 1000)
        n_more = max(1, min(int(np.ceil(remaining / max(mean_len, 1.0))), 10_000))
        more = run_episodes(env_id, policy, n_more, seed + len(buffers), n_envs, None, env_kwargs)
        for buffer in more:
            if steps >= n_transitions:
                break  # ran, but past the budget: dropped (only in the last round)
            length = len(buffer.rewards)
            if steps + length > n_transitions:
                buffer = cut_episode(buffer, n_transitions - steps)
                length = len(buffer.rewards)
            buffers.append(dataclasses.replace(buffer, id=len(buffers)))  # Minari: ids 0, 1, ...
            steps += length
            if on_episode is not None:
                on_episode(length, float(np.sum(buffer.rewards)))
    return buffers


def cut_episode(buffer: Any, length: int) -> Any:
    """The first `length` steps of an episode, ending in a truncation (D4RL's final timeout)."""
    from minari.data_collector import EpisodeBuffer

    def head(tree: Any, n: int) -> Any:
        if isinstance(tree, dict):
            return {k: head(v, n) for k, v in tree.items()}
        if isinstance(tree, tuple):
            return tuple(head(v, n) for v in tree)
        return tree[:n]

    return EpisodeBuffer(
        id=buffer.id,
        seed=buffer.seed,
        observations=head(buffer.observations, length + 1),  # (length+1, ...)
        actions=head(buffer.actions, length),  # (length, ...)
        rewards=list(buffer.rewards[:length]),
        terminations=[*buffer.terminations[: length - 1], False],
        truncations=[*buffer.truncations[: length - 1], True],
        infos={},
    )


def behaviour_policy(cfg: CollectConfig, env: gym.Env[Any, Any], seed: int | None = None) -> Policy:
    """The policy that made a dataset: collect.policy with its noise/epsilon mixture."""
    seed = cfg.seed if seed is None else seed
    base = make_policy(cfg.policy, env, seed)
    if cfg.noise > 0 or cfg.epsilon > 0:
        return NoisyPolicy(base, env.action_space, cfg.noise, cfg.epsilon, seed)
    return base


def check_target(dataset_id: str, overwrite: bool) -> bool:
    """Refuse, before anything runs, an id whose folder is taken; True if it will be replaced.

    Publishing checks again: another process may write the same id meanwhile.
    """
    root = minari_root()
    conflict = target_conflict(root, dataset_id)
    if conflict is not None:
        raise TTError(f"collect.dataset_id={dataset_id}: {conflict}; choose another id")
    folder = root / dataset_id
    if not (folder.exists() or folder.is_symlink()):
        return False
    if not (folder / "data").is_dir():
        raise TTError(
            f"collect.dataset_id={dataset_id}: {folder} exists but is not a Minari dataset; move "
            "it away or choose another collect.dataset_id"
        )
    if not overwrite:
        problem = dataset_problem(folder)
        if problem is not None:
            raise TTError(
                f"Minari dataset '{dataset_id}' in {root} is incomplete or corrupt ({problem}); "
                "pass collect.overwrite=true to replace it"
            )
        raise TTError(
            f"Minari dataset '{dataset_id}' already exists in {root}; pass "
            "collect.overwrite=true to replace it or choose another collect.dataset_id"
        )
    return True


def _references(
    cfg: CollectConfig, env: gym.Env[Any, Any]
) -> tuple[float | None, float | None, str]:
    """(ref_min_score, ref_max_score, where they came from): the config's, else measured."""
    ref_seed = cfg.seed + REF_SEED_OFFSET
    kwargs = cfg.env_kwargs
    notes = []
    ref_min = cfg.ref_min_score
    if ref_min is None:
        random_policy = RandomPolicy(env.action_space, ref_seed)
        ref_min = rollout_returns(cfg.env, random_policy, cfg.ref_episodes, ref_seed, kwargs)
        notes.append(f"ref_min_score: random policy over {cfg.ref_episodes} episodes")
    else:
        notes.append("ref_min_score: collect.ref_min_score")
    ref_max = cfg.ref_max_score
    if ref_max is None:
        expert: Policy | None = None
        if cfg.policy.startswith("sb3:") or cfg.policy == "maze":
            expert = make_policy(cfg.policy, env, cfg.seed)
        elif cfg.env in EXPERTS:
            expert = EXPERTS[cfg.env]()
        if expert is not None:
            ref_max = rollout_returns(cfg.env, expert, cfg.ref_episodes, ref_seed, kwargs)
            notes.append(f"ref_max_score: expert policy over {cfg.ref_episodes} episodes")
        else:
            warnings.warn(
                f"no expert for {cfg.env}: ref_max_score not stored, so normalized scores need "
                "collect.ref_max_score (or data.ref_max_score at evaluation)",
                stacklevel=3,
            )
    else:
        notes.append("ref_max_score: collect.ref_max_score")
    return ref_min, ref_max, "; ".join(notes)


def write_dataset(
    dataset_id: str,
    buffers: list[Any],
    env: gym.Env[Any, Any],
    *,
    ref_min: float | None,
    ref_max: float | None,
    ref_note: str,
    ref_episodes: int,
    algorithm_name: str,
    description: str,
    overwrite: bool = False,
    extra_metadata: Mapping[str, Any] | None = None,
    eval_env: gym.Env[Any, Any] | None = None,
) -> None:
    """Write EpisodeBuffers as the Minari dataset `dataset_id`: staged, then renamed into place.

    The one writer behind `tt collect` and the recipes (sources/recipes.py, sources/pointmaze.py).
    `ref_note` is stored as the metadata field `ref_scores_from` (which policies the reference
    returns came from); `extra_metadata` adds JSON-able fields to metadata.json; `eval_env` is
    stored as Minari's eval_env_spec (default: the data's env), which evaluation makes.
    """
    import minari

    root = minari_root()
    with staging_root(root, dataset_id) as staged:
        with minari_datasets_path(staged), warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # Minari nags about author/permalink fields
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env,
                eval_env=eval_env,
                algorithm_name=algorithm_name,
                ref_min_score=ref_min,
                ref_max_score=ref_max,
                num_episodes_average_score=ref_episodes,
                description=description,
                data_format="hdf5",
            )
            extra: dict[str, Any] = {"ref_scores_from": ref_note, **(extra_metadata or {})}
            if ref_max is None and ref_min is not None:
                extra["ref_min_score"] = ref_min  # Minari stores it only beside a ref_max_score
            dataset.storage.update_metadata(extra)
        publish_dataset(staged, dataset_id, root, replace=overwrite)


def collect_dataset(cfg: CollectConfig, progress: bool = True) -> str:
    """Collect `cfg.episodes` episodes with `cfg.policy` and write a Minari dataset; returns its id."""
    from tqdm import tqdm

    dataset_id = cfg.dataset_id
    if dataset_id is None:  # an empty string is a bad id, not "the default"
        dataset_id = default_dataset_id(cfg.env, cfg.policy)
    check_dataset_id(dataset_id, "collect.dataset_id")
    check_writable_root()
    recover_interrupted(minari_root())
    check_target(dataset_id, bool(cfg.overwrite))
    if cfg.episodes < 1:
        raise TTError(f"collect.episodes must be >= 1, got {cfg.episodes}")
    env = make_env(cfg.env, cfg.env_kwargs)
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
        buffers = run_episodes(
            cfg.env,
            policy,
            cfg.episodes,
            cfg.seed,
            on_episode=on_episode,
            env_kwargs=cfg.env_kwargs,
        )
    finally:
        bar.close()
    ref_min, ref_max, ref_note = _references(cfg, env)

    write_dataset(
        dataset_id,
        buffers,
        env,
        ref_min=ref_min,
        ref_max=ref_max,
        ref_note=ref_note,
        ref_episodes=cfg.ref_episodes,
        algorithm_name=f"tt-collect:{cfg.policy}(noise={cfg.noise},epsilon={cfg.epsilon})",
        description=(
            f"{cfg.episodes} episodes of {cfg.env} with policy {cfg.policy}, noise "
            f"{cfg.noise}, epsilon {cfg.epsilon}, seeds {cfg.seed}.."
            f"{cfg.seed + cfg.episodes - 1} (written by trajectory_transformer tt collect)"
        ),
        overwrite=bool(cfg.overwrite),
        extra_metadata={COLLECT_RECORD_KEY: collect_record(cfg)},
    )
    env.close()
    if progress:
        elapsed = time.perf_counter() - t0
        low = "n/a" if ref_min is None else f"{ref_min:.1f}"
        high = "n/a" if ref_max is None else f"{ref_max:.1f}"
        print(
            f"wrote {dataset_id}: {cfg.episodes} episodes, {stats['steps']} steps, mean return "
            f"{stats['returns'] / cfg.episodes:.1f} (random {low}, expert {high}) in {elapsed:.1f}s"
        )
    return dataset_id
