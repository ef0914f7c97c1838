"""PPO behaviour policies for the D4RL-style recipes: seeded, checkpointed, resumable, and
recording their own training data (the medium-replay datasets).

D4RL trained SAC; SAC runs at ~45 env steps/s on this CPU (a 1M-step Hopper expert in ~6 h), while
Stable-Baselines3 PPO with FACTS.md's settings runs at ~2,000 and reaches a Hopper expert in ~400k
steps. So the recipes use PPO: 4 envs × 512 steps per rollout, minibatch 64, 10 epochs, lr 3e-4,
a 64x64 tanh net and reward normalisation only (VecNormalize(norm_obs=False, norm_reward=True)),
so the saved policy acts on raw observations and runs without VecNormalize.

One run lives in `policy_dir(env_id, seed)` = <minari root>/tt-policies/<env>/ppo-seed<k>, next to
the datasets it makes (Minari lists only folders holding a `data/` folder, so it ignores these):

    run.json                   env, seed, PPO settings: a rerun with other settings is refused
    checkpoints/step-<N>.zip   SB3's own zip (weights, optimizer, step counter)
    checkpoints/step-<N>.npz   reward-normaliser statistics and RNG states (plain arrays)
    checkpoints/step-<N>.json  steps and the evaluated deterministic return; written last, so a
                               checkpoint counts only once its JSON exists
    replay/rollout-<S>.npz     each rollout as the vector env produced it, (T, n_envs, ...) arrays

Training runs in segments that end at checkpoints (the first rollout end at or after each multiple
of the checkpoint interval). Every segment starts from freshly reset envs with a seed derived from
(seed, first step), and a checkpoint stores the torch and NumPy RNG states, so a run killed at any
point and resumed from its last checkpoint (SB3 `PPO.load` + `learn(reset_num_timesteps=False)`)
retraces the uninterrupted run exactly. The price: the episodes running when a segment ends are cut
there (recorded as truncations; at most n_envs per checkpoint interval).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..envs.make import make_env
from ..errors import TTError
from ..store import minari_root
from ..utils import atomic_path, atomic_write_bytes, atomic_write_json, lazy_import, read_json
from .collect import REF_SEED_OFFSET, run_episodes

__all__ = [
    "Checkpoint",
    "PPOSettings",
    "list_checkpoints",
    "one_thread",
    "policy_dir",
    "read_replay",
    "replay_episodes",
    "select_checkpoints",
    "train_behaviour",
]

POLICIES_DIR = "tt-policies"
"""Folder under the Minari root that holds the recipes' behaviour policies."""

_CKPT = re.compile(r"step-(\d+)\.json\Z")
_CHUNK = re.compile(r"rollout-(\d+)\.npz\Z")


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyperparameters (FACTS.md: these reach a Hopper-v5 expert in ~400k steps here)."""

    n_envs: int = 4
    n_steps: int = 512
    batch_size: int = 64
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    net_arch: tuple[int, ...] = (64, 64)

    @property
    def rollout_steps(self) -> int:
        """Env steps per rollout (all envs together): checkpoints fall on multiples of this."""
        return self.n_envs * self.n_steps

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass(frozen=True)
class Checkpoint:
    """One saved and evaluated PPO checkpoint."""

    steps: int
    eval_return: float
    """Mean deterministic return over `eval_episodes` episodes."""
    eval_std: float
    eval_episodes: int
    path: Path
    """The SB3 zip."""
    wall_s: float
    """Training and evaluation wall time from step 0 to here (summed over resumed sessions)."""


def policy_dir(env_id: str, seed: int, root: Path | None = None) -> Path:
    """<minari root>/tt-policies/<env id>/ppo-seed<seed>."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_id).strip(".") or "env"
    return (root or minari_root()) / POLICIES_DIR / safe / f"ppo-seed{seed}"


def _ckpt_file(folder: Path, steps: int, suffix: str) -> Path:
    return folder / "checkpoints" / f"step-{steps:010d}{suffix}"


def list_checkpoints(folder: Path) -> list[Checkpoint]:
    """The complete checkpoints of a run (JSON, zip and npz present), by step."""
    found = []
    ckpt_dir = folder / "checkpoints"
    if not ckpt_dir.is_dir():
        return []
    for file in sorted(ckpt_dir.iterdir()):
        match = _CKPT.match(file.name)
        if match is None:
            continue
        steps = int(match[1])
        zip_path, npz_path = _ckpt_file(folder, steps, ".zip"), _ckpt_file(folder, steps, ".npz")
        if not (zip_path.is_file() and npz_path.is_file()):
            continue
        info = read_json(file, "checkpoint record")
        try:
            found.append(
                Checkpoint(
                    steps=int(info["steps"]),
                    eval_return=float(info["eval_return"]),
                    eval_std=float(info["eval_std"]),
                    eval_episodes=int(info["eval_episodes"]),
                    path=zip_path,
                    wall_s=float(info["wall_s"]),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise TTError(f"{file}: corrupt checkpoint record ({err!r}); delete it") from None
    return sorted(found, key=lambda c: c.steps)


def select_checkpoints(checkpoints: Iterable[Checkpoint]) -> tuple[Checkpoint, Checkpoint]:
    """(expert, medium) as D4RL defines the levels, from evaluated checkpoints.

    expert: the best evaluated return (the later checkpoint on a tie, so the final one when it is
    best). medium: among the trained checkpoints before the expert (D4RL's medium is an early-stopped
    run of the expert's training), the one whose return is closest to a third of the expert's (the
    earlier on a tie). The untrained step-0 checkpoint is never the medium one: its replay is empty.
    """
    ckpts = sorted(checkpoints, key=lambda c: c.steps)
    if not ckpts:
        raise TTError("no evaluated PPO checkpoints to choose from")
    expert = max(reversed(ckpts), key=lambda c: c.eval_return)  # reversed: later wins a tie
    before = [c for c in ckpts if 0 < c.steps < expert.steps]
    if not before:
        raise TTError(
            f"the best PPO checkpoint is the first trained one (step {expert.steps}, return "
            f"{expert.eval_return:.1f}), so no earlier checkpoint can be the medium policy; lower "
            "collect.recipe.ppo_checkpoint_every or raise collect.recipe.ppo_steps"
        )
    target = expert.eval_return / 3.0
    medium = min(before, key=lambda c: abs(c.eval_return - target))  # min: earlier wins a tie
    return expert, medium


# ------------------------------------------------------------------------------------ training


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch single-threaded for a while: PPO's 64x64 MLP gains nothing from a second thread,
    and beside another busy process two threads made it ~9x slower here (73 vs 680 steps/s)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _segment_seed(seed: int, start: int) -> int:
    """Reset seed of the envs at the start of the segment beginning at step `start`."""
    return int(np.random.SeedSequence([seed, start]).generate_state(1)[0])


def _save_state(path: Path, model: Any) -> None:
    """Reward-normaliser statistics and RNG states as plain arrays (never pickled)."""
    import torch

    venv = model.get_vec_normalize_env()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    arrays: dict[str, np.ndarray] = {
        "ret_mean": np.asarray(venv.ret_rms.mean, np.float64),
        "ret_var": np.asarray(venv.ret_rms.var, np.float64),
        "ret_count": np.asarray(venv.ret_rms.count, np.float64),
        "torch_rng": torch.get_rng_state().numpy(),
        "np_rng_keys": np.asarray(keys, np.uint32),
        "np_rng_pos": np.asarray([pos, has_gauss], np.int64),
        "np_rng_cached": np.asarray(cached, np.float64),
    }
    assert name == "MT19937"
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]


def _load_state(path: Path, model: Any) -> None:
    import torch

    with np.load(path, allow_pickle=False) as data:
        venv = model.get_vec_normalize_env()
        venv.ret_rms.mean = data["ret_mean"].copy()
        venv.ret_rms.var = data["ret_var"].copy()
        venv.ret_rms.count = float(data["ret_count"])
        torch.set_rng_state(torch.from_numpy(data["torch_rng"].copy()))
        pos, has_gauss = (int(v) for v in data["np_rng_pos"])
        np.random.set_state(
            ("MT19937", data["np_rng_keys"].copy(), pos, has_gauss, float(data["np_rng_cached"]))
        )


def _run_record(
    env_id: str, seed: int, settings: PPOSettings, env_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {
        "env_id": env_id,
        "env_kwargs": dict(env_kwargs or {}),
        "seed": seed,
        "algorithm": "PPO",
        "settings": settings.to_dict(),
    }


def _claim(folder: Path, record: dict[str, Any]) -> None:
    """Write run.json, or check that the folder holds this same run."""
    path = folder / "run.json"
    if path.exists():
        old = read_json(path, "PPO run record")
        if old != record:
            diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise TTError(
                f"{folder} holds a PPO run with other settings ({', '.join(diff)}); use another "
                "collect.recipe.ppo_seed or delete that folder"
            )
        return
    atomic_write_json(path, record)


def _vec_env(env_id: str, settings: PPOSettings, env_kwargs: Mapping[str, Any] | None) -> Any:
    vec_env = lazy_import("stable_baselines3.common.vec_env", "sb3")
    import gymnasium as gym

    probe = make_env(env_id, env_kwargs)
    spaces = (probe.observation_space, probe.action_space)
    probe.close()
    if not all(isinstance(s, gym.spaces.Box) for s in spaces):
        raise TTError(
            f"{env_id}: the PPO recipes need Box observation and action spaces, got "
            f"{spaces[0]} and {spaces[1]}"
        )
    venv = vec_env.DummyVecEnv([lambda: make_env(env_id, env_kwargs)] * settings.n_envs)
    # Reward normalisation only: the policy sees raw observations, so it runs without the wrapper.
    return vec_env.VecNormalize(venv, norm_obs=False, norm_reward=True, gamma=settings.gamma)


def _recorder(folder: Path) -> Any:
    """An SB3 callback writing each rollout as it was stepped to replay/rollout-<start>.npz."""
    callbacks = lazy_import("stable_baselines3.common.callbacks", "sb3")

    class ReplayRecorder(callbacks.BaseCallback):  # type: ignore[misc,name-defined]
        def _on_rollout_start(self) -> None:
            self.start = int(self.model.num_timesteps)
            self.rows: dict[str, list[np.ndarray]] = {
                k: []
                for k in ("obs", "actions", "rewards", "terminations", "truncations", "starts")
            }
            self.terminal_index: list[tuple[int, int]] = []
            self.terminal_obs: list[np.ndarray] = []

        def _on_step(self) -> bool:
            loc = self.locals
            dones, infos = np.asarray(loc["dones"], bool), loc["infos"]
            venv = self.model.get_vec_normalize_env()
            # SB3 normalises `rewards` in VecNormalize (and later adds bootstrapped values to it in
            # place): the dataset wants the env's own reward.
            rewards = venv.get_original_reward() if venv is not None else loc["rewards"]
            truncated = np.array([bool(i.get("TimeLimit.truncated", False)) for i in infos])
            t = len(self.rows["obs"])
            self.rows["obs"].append(np.array(self.model._last_obs))  # the obs acted on
            self.rows["actions"].append(np.array(loc["clipped_actions"]))  # as executed
            self.rows["rewards"].append(np.array(rewards, np.float64))
            self.rows["terminations"].append(dones & ~truncated)
            self.rows["truncations"].append(dones & truncated)
            self.rows["starts"].append(np.array(self.model._last_episode_starts, bool))
            for i in np.flatnonzero(dones):  # the vector env already reset: obs is in infos
                self.terminal_index.append((t, int(i)))
                self.terminal_obs.append(np.asarray(infos[i]["terminal_observation"]))
            return True

        def _on_rollout_end(self) -> None:
            final_obs = np.array(self.locals["new_obs"])  # (N, obs): after the last step
            arrays = {k: np.stack(v) for k, v in self.rows.items()}  # (T, N, ...)
            n_steps, n_envs = arrays["rewards"].shape
            obs_shape = final_obs.shape[1:]
            arrays |= {
                "start": np.asarray(self.start, np.int64),
                "end": np.asarray(self.start + n_steps * n_envs, np.int64),
                "final_obs": final_obs,
                "terminal_index": np.asarray(self.terminal_index, np.int64).reshape(-1, 2),
                "terminal_obs": (
                    np.stack(self.terminal_obs)
                    if self.terminal_obs
                    else np.zeros((0, *obs_shape), final_obs.dtype)
                ),
            }
            path = folder / "replay" / f"rollout-{self.start:010d}.npz"
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]

    return ReplayRecorder()


def _evaluate(
    model: Any, env_id: str, episodes: int, seed: int, env_kwargs: Mapping[str, Any] | None
) -> np.ndarray:
    """Deterministic returns of the in-memory model (the same weights as its zip)."""

    def act(obs: Any) -> np.ndarray:
        return np.asarray(model.predict(obs, deterministic=True)[0])

    buffers = run_episodes(env_id, act, episodes, seed, env_kwargs=env_kwargs)
    return np.array([float(np.sum(b.rewards)) for b in buffers])


def _drop_after(folder: Path, steps: int) -> None:
    """Remove what a killed session wrote after the checkpoint at `steps` (it is redone)."""
    for file in (folder / "replay").glob("rollout-*.npz"):
        match = _CHUNK.match(file.name)
        if match is not None and int(match[1]) >= steps:
            file.unlink()
    for file in (folder / "checkpoints").glob("step-*"):
        match = re.match(r"step-(\d+)\.", file.name)
        if match is not None and int(match[1]) > steps:
            file.unlink()


def train_behaviour(
    env_id: str,
    folder: Path,
    total_steps: int,
    checkpoint_every: int,
    seed: int = 0,
    eval_episodes: int = 10,
    settings: PPOSettings | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    callback: Any = None,
    log: Callable[[str], None] | None = None,
) -> list[Checkpoint]:
    """Train (or resume, or find finished) a PPO policy to `total_steps`; its checkpoints by step.

    A checkpoint is saved and evaluated (deterministic actions, `eval_episodes` episodes with the
    seeds the recipes' reference returns use) at step 0 and at the first rollout end at or after
    each multiple of `checkpoint_every` and of `total_steps`. `callback` is an extra SB3 callback
    (tests use one to kill training midway).
    """
    settings = settings or PPOSettings()
    say = log or (lambda _msg: None)
    if total_steps < 1 or checkpoint_every < 1:
        raise TTError("PPO total steps and checkpoint interval must be >= 1")
    folder.mkdir(parents=True, exist_ok=True)
    _claim(folder, _run_record(env_id, seed, settings, env_kwargs))
    done = list_checkpoints(folder)
    if done and done[-1].steps >= total_steps:
        return done

    sb3 = lazy_import("stable_baselines3", "sb3")
    import torch

    with one_thread():  # see one_thread; also makes the run's arithmetic the same everywhere
        venv = _vec_env(env_id, settings, env_kwargs)
        eval_seed = seed + REF_SEED_OFFSET
        wall = done[-1].wall_s if done else 0.0
        if done:
            last = done[-1]
            _drop_after(folder, last.steps)
            # SB3's zip loader unpickles parts of the file: acceptable here, it only ever reads the
            # checkpoints this function wrote itself (never user files).
            model = sb3.PPO.load(str(last.path), env=venv, device="cpu")
            _load_state(_ckpt_file(folder, last.steps, ".npz"), model)
            say(f"PPO {env_id} seed {seed}: resuming at step {last.steps} from {folder}")
        else:
            # whatever a session killed before its step-0 checkpoint recorded
            shutil.rmtree(folder / "replay", ignore_errors=True)
            model = sb3.PPO(
                "MlpPolicy",
                venv,
                n_steps=settings.n_steps,
                batch_size=settings.batch_size,
                n_epochs=settings.n_epochs,
                learning_rate=settings.learning_rate,
                gamma=settings.gamma,
                gae_lambda=settings.gae_lambda,
                clip_range=settings.clip_range,
                policy_kwargs={"net_arch": list(settings.net_arch), "activation_fn": torch.nn.Tanh},
                seed=seed,
                device="cpu",
                verbose=0,
            )
            say(f"PPO {env_id} seed {seed}: training to {total_steps} steps in {folder}")

        def checkpoint(t0: float) -> None:
            nonlocal wall
            steps = int(model.num_timesteps)
            buffer = io.BytesIO()
            model.save(buffer)
            atomic_write_bytes(_ckpt_file(folder, steps, ".zip"), buffer.getvalue())
            _save_state(_ckpt_file(folder, steps, ".npz"), model)
            returns = _evaluate(model, env_id, eval_episodes, eval_seed, env_kwargs)
            wall += time.perf_counter() - t0
            record = {
                "steps": steps,
                "seed": seed,
                "env_id": env_id,
                "eval_return": float(returns.mean()),
                "eval_std": float(returns.std()),
                "eval_episodes": eval_episodes,
                "eval_seed": eval_seed,
                "eval_returns": returns.tolist(),
                "wall_s": round(wall, 3),
            }
            atomic_write_json(_ckpt_file(folder, steps, ".json"), record)  # last: now it counts
            say(
                f"  step {steps:>9,}: deterministic return {returns.mean():9.1f} ± "
                f"{returns.std():.1f} ({eval_episodes} episodes), {wall:.0f} s so far"
            )

        if not done:
            checkpoint(time.perf_counter())
        recorder = _recorder(folder)
        try:
            while model.num_timesteps < total_steps:
                t0 = time.perf_counter()
                start = int(model.num_timesteps)
                target = min(total_steps, (start // checkpoint_every + 1) * checkpoint_every)
                model.env.seed(_segment_seed(seed, start))
                model._last_obs = None  # learn() resets the envs (seeded above) and episode starts
                callbacks = [recorder] if callback is None else [recorder, callback]
                model.learn(target - start, callback=callbacks, reset_num_timesteps=False)
                checkpoint(t0)
        finally:
            venv.close()
        return list_checkpoints(folder)


# ------------------------------------------------------------------------------------- replay


def read_replay(folder: Path, upto: int) -> Iterator[dict[str, np.ndarray]]:
    """The recorded rollouts of steps [0, upto), in order; an error if any is missing."""
    chunks = []
    for file in (folder / "replay").glob("rollout-*.npz"):
        match = _CHUNK.match(file.name)
        if match is not None and int(match[1]) < upto:
            chunks.append((int(match[1]), file))
    expected = 0
    for start, file in sorted(chunks):
        if start != expected:
            raise TTError(f"{folder / 'replay'}: steps {expected}..{start} were not recorded")
        with np.load(file, allow_pickle=False) as data:
            chunk = {k: data[k] for k in data.files}
        expected = int(chunk["end"])
        if expected > upto:
            raise TTError(f"{file}: runs past step {upto}, which is not a rollout end")
        yield chunk
    if expected != upto:
        raise TTError(f"{folder / 'replay'}: steps {expected}..{upto} were not recorded")


def replay_episodes(chunks: Iterable[Mapping[str, np.ndarray]]) -> list[Any]:
    """Split vector-env rollouts (as `read_replay` yields them) into Minari EpisodeBuffers.

    Each env's stream is followed through the chunks. SB3's vector env resets an env in the step
    that ends its episode, so the step's next observation is the reset one and the real last
    observation is `terminal_obs` (from infos[i]["terminal_observation"]); `starts` marks the first
    step of each episode. An episode that the stream leaves without an end (the envs were reset at
    a segment start, or the recording stops) is kept and marked truncated at its last step.
    Episodes are ordered by the step at which they began (then by env).
    """
    from minari.data_collector import EpisodeBuffer

    open_eps: dict[int, dict[str, Any]] = {}
    finished: list[tuple[int, int, dict[str, Any]]] = []

    def close(env: int, truncate: bool) -> None:
        ep = open_eps.pop(env)
        if truncate:
            ep["trunc"][-1] = True
        finished.append((ep["begin"], env, ep))

    for chunk in chunks:
        obs, starts = chunk["obs"], chunk["starts"]
        n_steps, n_envs = chunk["rewards"].shape
        start = int(chunk["start"])
        terminal = {
            (int(t), int(i)): k for k, (t, i) in enumerate(np.asarray(chunk["terminal_index"]))
        }
        for t in range(n_steps):
            for i in range(n_envs):
                if starts[t, i]:
                    if i in open_eps:  # reset without an end: a segment start
                        if t != 0:
                            raise TTError(
                                f"replay step {start + t * n_envs}: env {i} reset mid-episode"
                            )
                        close(i, truncate=True)
                    open_eps[i] = {
                        "begin": start + t * n_envs,
                        "obs": [obs[t, i]],
                        "act": [],
                        "rew": [],
                        "term": [],
                        "trunc": [],
                    }
                elif i not in open_eps:
                    raise TTError(
                        f"replay step {start + t * n_envs}: env {i} continues an episode that was "
                        "not recorded"
                    )
                ep = open_eps[i]
                term, trunc = bool(chunk["terminations"][t, i]), bool(chunk["truncations"][t, i])
                ep["act"].append(chunk["actions"][t, i])
                ep["rew"].append(float(chunk["rewards"][t, i]))
                ep["term"].append(term)
                ep["trunc"].append(trunc)
                if term or trunc:
                    ep["obs"].append(chunk["terminal_obs"][terminal[(t, i)]])
                    close(i, truncate=False)
                else:
                    ep["obs"].append(obs[t + 1, i] if t + 1 < n_steps else chunk["final_obs"][i])
    for env in sorted(open_eps):  # cut by the end of the recording
        close(env, truncate=True)
    finished.sort(key=lambda item: (item[0], item[1]))
    return [
        EpisodeBuffer(
            id=k,
            observations=np.stack(ep["obs"]),  # (T+1, obs)
            actions=np.stack(ep["act"]),  # (T, act)
            rewards=ep["rew"],
            terminations=ep["term"],
            truncations=ep["trunc"],
            infos={},
        )
        for k, (_, _, ep) in enumerate(finished)
    ]
