"""A trained run as a policy for other code: the env's own observations in, its own actions out.

`TTPolicy` wraps the planner agent (`plan.agent.PlannerAgent`, which speaks flat float vectors by
env slot) for code that holds Gymnasium envs or Stable-Baselines3 vector envs:

- Observations come in the env's native format (Box, Discrete, MultiDiscrete, MultiBinary, and Dict
  or Tuple spaces nested in any way), for one env or for a batch of envs. Batch or single is decided
  against the run's observation space (for Dict and Tuple, by the first leaf's shape): a value of
  the leaf's shape is one env, one more leading axis is a batch, anything else is a TTError.
- Actions go out in the env's native format: one action for one env; for a batch, batched the way
  `gymnasium.vector` batches them (a Dict of stacked arrays, a (N,) array for Discrete). Box parts
  are clipped to their bounds and discrete parts rounded, so the returned action is the one the env
  executes, and it is that action the policy writes into its context.
- Per-env context: the Trajectory Transformer conditions on each env's last `plan.context`
  transitions (observation, action, reward). The policy keeps them per env slot between calls;
  `reset(env_index)` forgets them at an episode boundary.
- Rewards: `observe_reward` records the real reward of the last action. When the next `act` for an
  env comes without one (Stable-Baselines3's `evaluate_policy` never passes rewards), the missing
  reward is the model's own prediction; see `TTPolicy.observe_reward`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from .config import (
    DataConfig,
    PlanConfig,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    split_override,
)
from .data.episodes import DatasetInfo
from .data.goals import goal_layout
from .data.spaces import (
    executed_action,
    flat_dim,
    flatten,
    space_from_json,
    space_to_json,
    stack,
    unflatten,
)
from .errors import ConfigError, TTError
from .plan.agent import PlannerAgent
from .runs import load_run
from .share.policy_file import read_policy_file, write_policy_file
from .utils import resolve_device

if TYPE_CHECKING:
    from .data.discretizer import Discretizer
    from .model.gpt import TrajectoryGPT
    from .runs import LoadedRun

__all__ = ["TTPolicy", "plan_config_with", "run_spaces"]

EnvIndex = int | Sequence[int] | np.ndarray | None
"""Which env slots a call concerns: None (see each method), one int, or one int per batch row."""


def plan_config_with(
    base: PlanConfig, overrides: Sequence[str] | None = None, **values: Any
) -> PlanConfig:
    """`base` with `plan.key=value` strings (the `plan.` prefix is optional), then keyword values.

    Both go through the config machinery (`config.apply_overrides` / `config_from_dict`), so values
    are coerced and validated and an unknown key is a ConfigError naming the closest valid key
    (`beam_widht=4` → "did you mean 'plan.beam_width'?"). Only plan settings are accepted: the
    rest of a run's config belongs to its training.
    """
    strings = []
    for item in overrides or []:
        key, value = split_override(item)
        text = item[2:] if item.startswith("--") else item
        if value is not None and "." not in key:
            text = f"plan.{text.strip()}"
        elif value is not None and not key.startswith("plan."):
            raise ConfigError(
                f"override '{item}': a policy takes plan.* settings only "
                "(the rest of the config belongs to the trained run)"
            )
        strings.append(text)
    config = apply_overrides(RunConfig(plan=base), strings) if strings else RunConfig(plan=base)
    if values:
        merged = {**config_to_dict(config.plan), **values}
        config = config_from_dict({"plan": merged})
    return config.plan


def run_spaces(info: DatasetInfo) -> tuple[gym.Space[Any], gym.Space[Any]]:
    """The (observation, action) spaces a run was trained on, from its dataset info."""
    if not info.observation_space or not info.action_space:
        raise TTError(
            f"dataset '{info.dataset}' did not record its spaces; build TTPolicy(...) with "
            "observation_space and action_space"
        )
    return space_from_json(info.observation_space), space_from_json(info.action_space)


def _describe(space: gym.Space[Any]) -> str:
    if isinstance(space, spaces.Dict):
        return f"Dict{list(space.spaces)}"
    if isinstance(space, spaces.Tuple):
        return f"Tuple[{len(space.spaces)}]"
    return f"{type(space).__name__}{tuple(space.shape or ())}"


def _batched(shape: tuple[int, ...], n: int | None = None) -> str:
    """(N, *shape) written out: "(N, 3)", or "(2, 3)" for a known N."""
    parts = ["N" if n is None else str(n), *map(str, shape)]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _leaf_shape(space: gym.Space[Any]) -> tuple[int, ...]:
    if isinstance(space, spaces.MultiDiscrete):
        return tuple(space.nvec.shape)
    return tuple(space.shape or ())


def _leaves(space: gym.Space[Any], value: Any, where: str) -> Iterator[tuple[Any, Any, str]]:
    """(leaf space, its part of `value`, its name) for every non-container subspace, in flatten
    order; a value that does not have the space's dict keys or tuple parts is a TTError."""
    if isinstance(space, spaces.Dict):
        if not isinstance(value, Mapping):
            raise TTError(
                f"{where}: expected a dict with keys {list(space.spaces)}, got {type(value).__name__}"
            )
        missing = [k for k in space.spaces if k not in value]
        if missing:
            raise TTError(f"{where}: missing keys {missing}; expected keys {list(space.spaces)}")
        for key, sub in space.spaces.items():
            yield from _leaves(sub, value[key], f"{where}[{key!r}]")
        return
    if isinstance(space, spaces.Tuple):
        if not isinstance(value, tuple | list) or len(value) != len(space.spaces):
            got = f"{len(value)} parts" if isinstance(value, tuple | list) else type(value).__name__
            raise TTError(f"{where}: expected a tuple of {len(space.spaces)} parts, got {got}")
        for i, sub in enumerate(space.spaces):
            yield from _leaves(sub, value[i], f"{where}[{i}]")
        return
    yield space, value, where


def _row(space: gym.Space[Any], batch: Any, i: int) -> Any:
    """Row i of a batched value of `space` (a single, unbatched value)."""
    if isinstance(space, spaces.Dict):
        return {k: _row(sub, batch[k], i) for k, sub in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_row(sub, batch[j], i) for j, sub in enumerate(space.spaces))
    return batch[i]


class TTPolicy:
    """A trained Trajectory Transformer as a policy over the env's own observations and actions.

    Build it from a run folder (`TTPolicy.load(run_dir)`), from a loaded run
    (`TTPolicy.from_loaded(runs.load_run(...))`), or from objects in memory
    (`TTPolicy(model, discretizer, observation_space, action_space, plan)`, e.g. right after
    training, without touching disk). `plan.mode` picks how actions are chosen: `beam` (TT beam
    search for the highest predicted return), `likelihood` (the same search for the most likely
    imagined trajectory: TT's imitation setting), `sample` or `greedy` (the model as a plain
    policy, no search).

    One env, plain Gymnasium::

        policy = TTPolicy.load("runs/pendulum", mode="greedy")
        obs, _ = env.reset(seed=0)
        policy.reset()
        while True:
            obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
            policy.observe_reward(reward)          # optional; see observe_reward
            if terminated or truncated:
                obs, _ = env.reset()
                policy.reset()

    A `gymnasium.vector` env passes batched observations and gets batched actions; env i of the
    vector env is slot i here. Call `reset(i)` for each env whose observation starts a new episode:
    with `autoreset_mode=SAME_STEP` that is every env done in this step; with the default
    NEXT_STEP, the env returns its new episode's first observation one step after the done, so
    reset the envs that were done in the PREVIOUS step::

        obs, _ = envs.reset(seed=0)
        policy.reset()
        was_done = np.zeros(envs.num_envs, bool)
        while ...:
            obs, reward, terminated, truncated, _ = envs.step(policy.act(obs))
            policy.observe_reward(reward)
            policy.reset(np.flatnonzero(was_done))  # NEXT_STEP: these envs just autoreset
            was_done = terminated | truncated      # (SAME_STEP: reset these right away instead)

    (With NEXT_STEP the action taken on a final observation is ignored by the env; its transition
    lands in the old episode's context, which the reset then drops.) With autoreset DISABLED you
    reset envs yourself (`envs.reset(options={"reset_mask": done})`): call `reset(i)` for the same
    envs there. Forgetting a reset makes the next episode plan from the old episode's context.

    Stable-Baselines3: `predict(obs, state, episode_start, deterministic)` has SB3's signature, so
    `evaluate_policy(policy, vec_env, n_eval_episodes=...)` works; `episode_start` resets envs.

    Determinism: sampling (modes sample, beam and likelihood) draws from one torch.Generator
    seeded with `plan.seed`, so a policy built with the same seed and given the same observations
    (and rewards) returns the same actions, on CPU. `reset` does not reseed it.
    """

    def __init__(
        self,
        model: TrajectoryGPT,
        discretizer: Discretizer,
        observation_space: gym.Space[Any],
        action_space: gym.Space[Any],
        plan: PlanConfig | None = None,
        *,
        device: str | torch.device | None = None,
        goal_key: str | None = None,
        achieved_key: str | None = "achieved_goal",
        termination_penalty: float = 0.0,
    ) -> None:
        """Wrap a model in memory. `device` None keeps the model where it is; the model is put in
        eval mode (on `device`) and used as is, not copied. A goal-conditioned model (trained with
        data.goal_key) needs the same `goal_key` (and `achieved_key`): the goal is read from that
        key of every observation. `termination_penalty`: the data.termination_penalty the model
        was trained with (plan.absorbing reads imagined terminations from it)."""

        plan = plan if plan is not None else PlanConfig()
        mcfg = model.config
        goal = None if goal_key is None else goal_layout(observation_space, goal_key, achieved_key)
        for label, space, dim in (
            ("observation", observation_space, mcfg.observation_dim + mcfg.goal_dim),
            ("action", action_space, mcfg.action_dim),
        ):
            got = flat_dim(space, f"{label} space")
            if got != dim:
                raise TTError(
                    f"{label} space {_describe(space)} has {got} flat dims; the model was trained "
                    f"with {dim}"
                )
        if device is not None:
            model.to(resolve_device(device) if isinstance(device, str) else device)
        model.eval()
        try:
            self.agent = PlannerAgent(model, discretizer, plan, goal, termination_penalty)
        except ValueError as err:  # the planner checks plan.* against the model's window
            if isinstance(err, TTError | ConfigError):
                raise
            raise ConfigError(str(err).strip().splitlines()[0]) from err
        self.model = model
        self.discretizer = discretizer
        self.observation_space = observation_space
        self.action_space = action_space
        self.plan = plan
        self.info: DatasetInfo | None = None
        """The run's dataset info when built by `load` / `from_loaded`."""
        self.run_dir: Path | None = None
        """The run folder or policy file it was loaded from."""
        self.config: RunConfig | None = None
        """The run's config when built by `load` / `from_loaded` (what `save` writes)."""
        self._data = DataConfig(
            n_bins=mcfg.vocab_size,
            n_transitions=mcfg.n_transitions,
            termination_penalty=termination_penalty,
            goal_key=goal_key,
            achieved_key=achieved_key,
        )
        self._act_dim = mcfg.action_dim
        self._pending = np.zeros(0, dtype=bool)  # acted, reward not yet recorded
        self._executed = np.zeros((0, self._act_dim), dtype=np.float32)  # flat executed actions

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(
        cls,
        run_dir: str | os.PathLike[str],
        *,
        device: str | torch.device = "auto",
        mode: str | None = None,
        seed: int | None = None,
        overrides: Sequence[str] | None = None,
        verify: bool = True,
        **plan_overrides: Any,
    ) -> TTPolicy:
        """A policy from a run folder or a one-file policy (`save`; config, weights, discretizer,
        dataset info). Neither needs the dataset.

        Planning uses the run's `plan` config, then `overrides` (`"plan.beam_width=64"` or
        `"beam_width=64"`), then `mode`, `seed` and keyword settings (`beam_width=64` sets
        `plan.beam_width`). An unknown key is a ConfigError naming the closest one.
        `verify=False` skips the checksums of the weights and the discretizer (a file you
        changed on purpose); by default a changed or unchecked file is a TTError.
        """

        where = resolve_device(device) if isinstance(device, str) else device
        if Path(run_dir).is_file():
            loaded = read_policy_file(run_dir, where, verify=verify)
        else:
            loaded = load_run(run_dir, where, verify=verify)
        return cls.from_loaded(loaded, mode=mode, seed=seed, overrides=overrides, **plan_overrides)

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedRun,
        *,
        device: str | torch.device | None = None,
        mode: str | None = None,
        seed: int | None = None,
        overrides: Sequence[str] | None = None,
        **plan_overrides: Any,
    ) -> TTPolicy:
        """A policy from a loaded run (`runs.load_run`); settings as in `load`."""
        if mode is not None:
            plan_overrides["mode"] = mode
        if seed is not None:
            plan_overrides["seed"] = seed
        plan = plan_config_with(loaded.config.plan, overrides, **plan_overrides)
        plan = plan.for_run(loaded.config.data)
        observation_space, action_space = run_spaces(loaded.info)
        data = loaded.config.data
        policy = cls(
            loaded.model,
            loaded.discretizer,
            observation_space,
            action_space,
            plan,
            device=device,
            goal_key=data.goal_key,
            achieved_key=data.achieved_key,
            termination_penalty=data.termination_penalty,
        )
        policy.info, policy.run_dir, policy.config = loaded.info, loaded.run_dir, loaded.config
        return policy

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        *,
        revision: str | None = None,
        device: str | torch.device = "auto",
        verify: bool = True,
        **settings: Any,
    ) -> TTPolicy:
        """A shared policy by name: a shipped one (`tt/pendulum-quickstart`, see
        `share.pretrained`), else a Hugging Face Hub repository `user/name` whose `policy.tt`
        is downloaded once into huggingface_hub's cache (`revision`: a branch, tag or commit).
        Other settings as in `load`."""
        from .share.hub import resolve

        return cls.load(resolve(name, revision), device=device, verify=verify, **settings)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this policy as one file (suffix `.tt` by convention): the run's config with this
        policy's plan settings, the model, the discretizer and the env description, checksummed,
        no pickle. `TTPolicy.load(path)` reads it back without the run folder or the dataset."""
        config = self.config if self.config is not None else RunConfig(data=self._data)
        config = dataclasses.replace(config, plan=self.plan)
        info = self.info
        if info is None:  # built from objects in memory: describe what it was given
            info = DatasetInfo(
                dataset="in-memory",
                observation_space=space_to_json(self.observation_space),
                action_space=space_to_json(self.action_space),
                observation_dim=flat_dim(self.observation_space),
                action_dim=flat_dim(self.action_space),
                n_bins=self.model.config.vocab_size,
                strategy=self.discretizer.strategy,
                termination_penalty=self._data.termination_penalty,
            )
        return write_policy_file(
            path, config, self.model.config, info, self.discretizer, self.model.state_dict()
        )

    @property
    def device(self) -> torch.device:
        return self.model.pos_emb.device

    # ------------------------------------------------------------------ acting
    def act(self, observation: Any, env_index: EnvIndex = None) -> Any:
        """Action(s) for the env's own observation(s).

        One observation → one action; a batch of N → N actions batched like gymnasium.vector.
        `env_index` names the env slot of each observation (default: slot 0 for one observation,
        slots 0..N-1 for a batch), so a subset of envs may act. An env whose previous action got
        no `observe_reward` first gets the model's predicted reward for it (see there).
        """
        batch, single = self._as_batch(observation)
        flat_obs = flatten(self.observation_space, batch, "observation")  # (k, obs_dim)
        slots = self._slots(env_index, flat_obs.shape[0], single)
        if slots.size == 0:  # an empty batch: no env acts
            return unflatten(self.action_space, np.zeros((0, self._act_dim), np.float32))
        if not np.isfinite(flat_obs).all():
            raise TTError("observation contains NaN or inf")
        self._grow(int(slots.max()) + 1)
        self._fill_missing_rewards(slots)
        flat_act = self.agent.act(slots, flat_obs)  # (k, act_dim) decoded bin values
        native, self._executed[slots] = executed_action(self.action_space, flat_act)
        self._pending[slots] = True
        return _row(self.action_space, native, 0) if single else native

    def observe_reward(self, reward: Any, env_index: EnvIndex = None) -> None:
        """Record the real reward(s) the env returned for the last `act` of these env slots.

        `reward` is a number for one env or an array with one reward per env (`env_index` as in
        `act`; default slot 0 for a number, slots 0..N-1 for N rewards).

        Without this call the context still needs a reward for that transition, so the next
        `act` for the env fills it with the model's own prediction: the argmax reward token the
        model predicts after [context, observation, executed action], one forward pass. This is
        an approximation that exists only when rewards are not given (e.g. SB3's
        `evaluate_policy`); a model that predicts rewards badly then plans from a wrong context.
        Pass real rewards whenever you have them.
        """
        rewards = np.asarray(reward, dtype=np.float32)
        single = rewards.ndim == 0
        rewards = rewards.reshape(-1)
        slots = self._slots(env_index, rewards.shape[0], single)
        lacking = [int(s) for s in slots if s >= self._pending.size or not self._pending[s]]
        if lacking:
            raise TTError(
                f"observe_reward: env slot(s) {lacking} have no action to reward "
                "(call act first; reset forgets the last action)"
            )
        if not np.isfinite(rewards).all():
            raise TTError("observe_reward: reward contains NaN or inf")
        self.agent.record(slots, self._executed[slots], rewards)
        self._pending[slots] = False

    def reset(self, env_index: EnvIndex = None) -> None:
        """Forget these env slots' context (None: all) at an episode boundary."""
        if env_index is None:
            slots = np.arange(self._pending.size)
        else:
            slots = np.asarray(env_index, dtype=np.int64).reshape(-1)
            _check_slot_range(slots)
        if slots.size == 0:
            return
        self._grow(int(slots.max()) + 1)
        self.agent.reset(slots)
        self._pending[slots] = False

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        """Stable-Baselines3's `predict`: (actions, state) for the observation(s).

        `episode_start` (one bool per env; SB3's vector envs reset in the step that ends an
        episode) resets those envs' contexts before acting. `state` is returned unchanged (the
        context lives in this object). `deterministic` is accepted for SB3 compatibility and does
        NOT switch modes: how actions are chosen is `plan.mode`, and every mode is reproducible
        (sampling uses a generator seeded with `plan.seed`). For the model without search use
        mode="greedy" (deterministic) or mode="sample".
        """
        if episode_start is not None:
            batch, single = self._as_batch(observation)
            n = flatten(self.observation_space, batch, "observation").shape[0]
            starts = np.flatnonzero(_episode_starts(episode_start, n, single))
            if starts.size:
                self.reset(starts)
        return self.act(observation), state

    # ------------------------------------------------------------------ internals
    def _as_batch(self, observation: Any) -> tuple[Any, bool]:
        """(batched observation, whether it was a single one).

        The first leaf decides: its space's shape means one env, one more leading axis a batch of
        N; every other leaf must then agree (same N).
        """
        leaves = list(_leaves(self.observation_space, observation, "observation"))
        single: bool | None = None
        n = 0
        for i, (leaf, value, where) in enumerate(leaves):
            want, got = _leaf_shape(leaf), tuple(np.shape(value))
            if single is None:
                single = got == want
                n = 1 if single else (got[0] if len(got) == len(want) + 1 else -1)
            ok = got == want if single else (len(got) == len(want) + 1 and got[1:] == want)
            if not ok or (not single and got[0] != n):
                expected = f"{want} for one env or {_batched(want)} for a batch"
                if i > 0:  # the first part already said one env or a batch of n
                    expected = (
                        f"{want} (one env)" if single else f"{_batched(want, n)} (a batch of {n})"
                    )
                raise TTError(
                    f"{where} has shape {got}; expected {expected} "
                    f"(observation space {_describe(self.observation_space)})"
                )
        if single:
            return stack(self.observation_space, [observation]), True
        return observation, False

    def _slots(self, env_index: EnvIndex, n: int, single: bool) -> np.ndarray:
        if env_index is None:
            return np.arange(n, dtype=np.int64)
        slots = np.asarray(env_index, dtype=np.int64)
        if single and slots.ndim != 0:
            raise TTError(f"env_index for one env must be an int, got {slots.tolist()}")
        slots = slots.reshape(-1)
        if slots.size != n:
            raise TTError(f"env_index names {slots.size} envs for a batch of {n}")
        _check_slot_range(slots)
        if np.unique(slots).size != slots.size:
            raise TTError(f"env_index has repeated envs: {slots.tolist()}")
        return slots

    def _grow(self, n_slots: int) -> None:
        n_old = self._pending.size
        if n_slots <= n_old:
            return
        pending = np.zeros(n_slots, dtype=bool)
        pending[:n_old] = self._pending
        executed = np.zeros((n_slots, self._act_dim), dtype=np.float32)
        executed[:n_old] = self._executed
        self._pending, self._executed = pending, executed

    def _fill_missing_rewards(self, slots: np.ndarray) -> None:
        """Record the previous transition of `slots` that got no reward, with the predicted one."""
        rows = slots[self._pending[slots]]
        if rows.size == 0:
            return
        tokens = self._predicted_reward_tokens(rows)  # (r,)
        agent = self.agent
        rewards = agent.discretizer.decode(tokens[:, None], dims=[agent.reward_dim])[:, 0]
        agent.record(rows, self._executed[rows], np.asarray(rewards, dtype=np.float32))
        # store the predicted token itself, not the re-encoded value of its bin
        agent.history[rows, -1, agent.reward_dim] = tokens
        self._pending[rows] = False

    @torch.inference_mode()
    def _predicted_reward_tokens(self, slots: np.ndarray) -> np.ndarray:
        """Argmax reward token after [context, observation, executed action] for each slot (r,).

        Slots are batched by context length (one full forward pass per length).
        """
        agent = self.agent
        act_tokens = np.asarray(
            agent.discretizer.encode(self._executed[slots], dims=agent.act_dims), dtype=np.int64
        )  # (r, act_dim)
        past = np.minimum(agent.count[slots], agent.n_context)  # same prompt as agent.act
        out = np.zeros(slots.size, dtype=np.int64)
        for n_past in np.unique(past):
            rows = np.flatnonzero(past == n_past)
            history = agent.history[slots[rows], agent.context - n_past :].reshape(len(rows), -1)
            prompt = np.concatenate(
                [
                    agent.pending_goal[slots[rows]],  # the goal prefix (width 0 without a goal)
                    history,
                    agent.pending_obs[slots[rows]],
                    act_tokens[rows],
                ],
                axis=1,
            )  # (g, goal_dim + n_past * td + obs_dim + act_dim)
            logits = self.model(torch.as_tensor(prompt, device=self.device))  # (g, T, V)
            out[rows] = logits[:, -1].argmax(dim=-1).cpu().numpy()
        return out


MAX_ENV_SLOTS = 1 << 20
"""Env slots a policy keeps a context for; an index beyond it is a mistake, not a million envs
(each slot holds a context, so a stray 10**9 would allocate gigabytes)."""


def _check_slot_range(slots: np.ndarray) -> None:
    if slots.size and slots.min() < 0:
        raise TTError(f"env_index must be >= 0, got {slots.tolist()[:8]}")
    if slots.size and slots.max() >= MAX_ENV_SLOTS:
        raise TTError(
            f"env_index must be below {MAX_ENV_SLOTS:,} (one context per env slot), "
            f"got {int(slots.max()):,}"
        )


def _episode_starts(episode_start: Any, n: int, single: bool) -> np.ndarray:
    """SB3's `episode_start` as (n,) bools: one flag per env of the batch, in the batch's order.

    A flag count that differs from the batch would reset the wrong envs' contexts, so it is an
    error; flags must be booleans (or 0/1), not arbitrary values that happen to be truthy.
    """
    flags = np.asarray(episode_start)
    expected = "one flag (a bool, or shape (1,))" if single else f"shape ({n},), one flag per env"
    if flags.size != n or (not single and flags.ndim != 1) or flags.ndim > 1:
        raise TTError(
            f"episode_start has shape {flags.shape} for {'one observation' if single else f'a batch of {n}'}; "
            f"expected {expected}"
        )
    if flags.dtype != np.bool_:
        numeric = flags.dtype.kind in "iuf"
        if not numeric or not np.isin(flags, (0, 1)).all():
            raise TTError(
                f"episode_start must hold booleans (or 0/1), got {flags.reshape(-1).tolist()[:8]}"
            )
    return flags.reshape(-1).astype(bool)
