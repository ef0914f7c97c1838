"""The d3rlpy side of a baseline cell: our episodes as an MDPDataset, each method's algorithm with
its budget, fitting in parts, and agents that act with the fitted policy in our episode loop.

Imported only by the worker (baselines_worker.py), in the baselines venv: d3rlpy is passed in,
never imported at module level.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

import numpy as np

from ..data.mdp import MDPArrays, episode_bounds
from ..errors import TTError
from ..utils import resolve_device
from .baselines import BASELINES, Budget

__all__ = [
    "DecisionTransformerAgent",
    "QPolicyAgent",
]


# ------------------------------------------------------------------------------ agents
class QPolicyAgent:
    """A d3rlpy policy without memory (BC, TD3+BC, CQL, IQL), batched over env slots.

    `predict` is the deterministic action (the actor's output, or the mean of IQL's Gaussian),
    as d3rlpy's own environment evaluator uses.
    """

    def __init__(self, algo: Any) -> None:
        self.algo = algo

    def reset(self, slots: np.ndarray) -> None:
        pass

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        actions = self.algo.predict(np.asarray(observations, dtype=np.float32))
        return np.asarray(actions, dtype=np.float32).reshape(len(slots), -1)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class DecisionTransformerAgent:
    """Decision Transformer: one d3rlpy stateful wrapper per env slot.

    Each wrapper keeps its episode's context (observations, actions, returns-to-go, timesteps)
    and starts from `target_return`; the reward of each step is fed to the next `predict`, which
    lowers the return-to-go, exactly as d3rlpy's `evaluate_transformer_with_environment` does.
    """

    def __init__(self, algo: Any, target_return: float) -> None:
        self.algo = algo
        self.target_return = float(target_return)
        self.wrappers: dict[int, Any] = {}
        self.last_reward: dict[int, float] = {}

    def reset(self, slots: np.ndarray) -> None:
        for slot in map(int, slots):
            wrapper = self.wrappers.get(slot)
            if wrapper is None:
                self.wrappers[slot] = self.algo.as_stateful_wrapper(self.target_return)
            else:
                wrapper.reset()
            self.last_reward[slot] = 0.0  # d3rlpy's evaluator starts each episode with 0

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        actions = [
            np.asarray(self.wrappers[s].predict(obs, self.last_reward[s]), np.float32).reshape(-1)
            for s, obs in zip(map(int, slots), np.asarray(observations, np.float32))
        ]
        return np.stack(actions)  # (k, act_dim)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        for slot, reward in zip(map(int, slots), rewards):
            self.last_reward[slot] = float(reward)


# ------------------------------------------------------------------------------ d3rlpy objects
def mdp_dataset(d3rlpy: Any, arrays: MDPArrays) -> Any:
    """d3rlpy's `MDPDataset` of `arrays`, checked to hold exactly our episodes."""
    dataset = d3rlpy.dataset.MDPDataset(
        observations=arrays.observations,
        actions=arrays.actions,
        rewards=arrays.rewards,
        terminals=arrays.terminals,
        timeouts=arrays.timeouts,
        action_space=d3rlpy.ActionSpace.CONTINUOUS,
        action_size=int(arrays.actions.shape[1]),
    )
    starts = episode_bounds(arrays.terminals, arrays.timeouts)
    episodes = dataset.episodes
    ours = [(int(b - a), bool(arrays.terminals[b - 1])) for a, b in itertools.pairwise(starts)]
    theirs = [(int(ep.size()), bool(ep.terminated)) for ep in episodes]
    same = ours == theirs and np.array_equal(
        np.concatenate([ep.observations for ep in episodes]), arrays.observations
    )
    if not same:
        raise TTError("d3rlpy's MDPDataset does not hold our episodes one for one; not training")
    return dataset


def action_scaler(d3rlpy: Any, low: np.ndarray, high: np.ndarray) -> Any:
    """d3rlpy's continuous policies act in [-1, 1] (tanh); other Box bounds (Pendulum's ±2) are
    mapped with a min-max scaler. Hopper-like [-1, 1] spaces get none, as in the sources."""
    if np.all(low == -1.0) and np.all(high == 1.0):
        return None
    return d3rlpy.preprocessing.MinMaxActionScaler(
        minimum=low.astype(np.float32), maximum=high.astype(np.float32)
    )


def dt_target(arrays: MDPArrays) -> float:
    """DT's target return: the best episode return in the data.

    d3rlpy's reproduction conditions on fixed, D4RL-specific returns (hopper 3600, halfcheetah
    6000, walker2d 5000: about the expert's); those mean nothing for other envs or data. The
    data's best return works for any env (also negative-return ones like Pendulum) and asks for
    the best behaviour the data has shown, which is what DT is trained to reproduce.
    """
    return float(arrays.episode_returns().max())


def build_algo(
    d3rlpy: Any, method: str, budget: Budget, arrays: MDPArrays, action_scaler: Any, device: Any
) -> Any:
    """The d3rlpy algorithm of `method` with the sources' settings and `budget`'s compute.

    Sources per method: `baselines.BASELINES[method].source`; the only changes are the budget's
    (steps, and DT's warm-up and IQL's cosine schedule length, which follow the steps).
    """
    encoder = d3rlpy.models.VectorEncoderFactory(list(budget.hidden))
    standard = d3rlpy.preprocessing.StandardObservationScaler
    if method == "bc":  # CORL any_percent_bc.py: Adam 3e-4, normalized states, tanh MLP actor
        cfg: Any = d3rlpy.algos.BCConfig(
            batch_size=budget.batch_size,
            learning_rate=3e-4,
            encoder_factory=encoder,
            observation_scaler=standard(),
            action_scaler=action_scaler,
        )
    elif method == "td3bc":  # d3rlpy reproductions/offline/td3_plus_bc.py
        cfg = d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            batch_size=budget.batch_size,
            target_smoothing_sigma=0.2,
            target_smoothing_clip=0.5,
            alpha=2.5,
            update_actor_interval=2,
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            observation_scaler=standard(),
            action_scaler=action_scaler,
        )
    elif method == "cql":  # d3rlpy reproductions/offline/cql.py (conservative_weight: see source)
        cfg = d3rlpy.algos.CQLConfig(
            actor_learning_rate=1e-4,
            critic_learning_rate=3e-4,
            temp_learning_rate=1e-4,
            alpha_learning_rate=3e-4,
            initial_alpha=math.e,
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            batch_size=budget.batch_size,
            n_action_samples=10,
            alpha_threshold=10,
            conservative_weight=5.0,
            action_scaler=action_scaler,
        )
    elif method == "iql":  # d3rlpy reproductions/offline/iql.py (cosine T_max = all steps)
        cfg = d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4,
            critic_learning_rate=3e-4,
            actor_optim_factory=d3rlpy.optimizers.AdamFactory(
                lr_scheduler_factory=d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=budget.steps)
            ),
            actor_encoder_factory=encoder,
            critic_encoder_factory=encoder,
            value_encoder_factory=encoder,
            batch_size=budget.batch_size,
            weight_temp=3.0,
            max_weight=100.0,
            expectile=0.7,
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0),
            action_scaler=action_scaler,
        )
    elif method == "dt":  # d3rlpy reproductions/offline/decision_transformer.py
        longest = int(np.diff(episode_bounds(arrays.terminals, arrays.timeouts)).max())
        cfg = d3rlpy.algos.DecisionTransformerConfig(
            batch_size=budget.batch_size,
            learning_rate=1e-4,
            optim_factory=d3rlpy.optimizers.AdamWFactory(
                weight_decay=1e-4,
                clip_grad_norm=0.25,
                lr_scheduler_factory=d3rlpy.optimizers.WarmupSchedulerFactory(
                    warmup_steps=max(budget.warmup_steps, 1)
                ),
            ),
            encoder_factory=d3rlpy.models.VectorEncoderFactory(
                list(budget.hidden), exclude_last_activation=True
            ),
            observation_scaler=standard(),
            reward_scaler=d3rlpy.preprocessing.MultiplyRewardScaler(0.001),
            action_scaler=action_scaler,
            position_encoding_type=d3rlpy.PositionEncodingType.SIMPLE,
            context_size=budget.context,
            num_heads=budget.heads,
            num_layers=budget.layers,
            max_timestep=max(1000, longest + 1),  # the source's 1000, or the longest episode's
        )
    else:
        raise TTError(f"'{method}' is not a baseline; use one of {list(BASELINES)}")
    return cfg.create(device=device)


def d3rlpy_device(name: str) -> str:
    """Our device names (auto, cpu, cuda, cuda:N), resolved as everywhere else, in d3rlpy's form
    ('cpu:0', 'cuda:N')."""
    device = resolve_device(name)
    return f"{device.type}:{device.index or 0}"


CHECKPOINT_PARTS = 10
"""A cell saves a checkpoint every 1/CHECKPOINT_PARTS of its steps, and at its last step."""


def checkpoint_every(steps: int) -> int:
    return steps // CHECKPOINT_PARTS if steps % CHECKPOINT_PARTS == 0 else steps


def fit(
    d3rlpy: Any,
    algo: Any,
    dataset: Any,
    steps: int,
    echo: Any = print,
    start: int = 0,
    every: int | None = None,
    on_checkpoint: Any = None,
) -> dict[str, float]:
    """Gradient steps `start`+1 .. `steps` (d3rlpy writes no files); the last logged losses.

    `on_checkpoint(step)` runs after every `every`-th step and after the last one. d3rlpy counts
    epochs of `per_epoch` steps; it divides both `steps` and `every`, so a resumed fit runs the
    same epochs (and logs the same per-epoch mean losses) as an uninterrupted one.
    """
    every = every or steps
    per_epoch = math.gcd(steps, every, 1000)
    report_every = max(per_epoch, steps // 10)
    clock = time.perf_counter()
    last: dict[str, float] = {}
    if start >= steps:
        return last

    def callback(algo: Any, epoch: int, step: int) -> None:
        done = start + step
        if done % report_every == 0 or done == steps:
            echo(f"step {done}/{steps} after {time.perf_counter() - clock:.0f} s", flush=True)
        if on_checkpoint is not None and (done % every == 0 or done == steps):
            on_checkpoint(done)

    kwargs: dict[str, Any] = {
        "n_steps": steps - start,
        "n_steps_per_epoch": per_epoch,
        "logger_adapter": d3rlpy.logging.NoopAdapterFactory(),
        "show_progress": False,
        "save_interval": steps + 1,  # never: the no-op logger would drop it anyway
        "callback": callback,
    }
    history = algo.fit(dataset, **kwargs)
    if history:  # Q-learning fit returns [(epoch, metrics)]; the transformer fit returns None
        last = {k: float(v) for k, v in history[-1][1].items() if isinstance(v, int | float)}
    return last
