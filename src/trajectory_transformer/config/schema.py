"""Every knob of a run as typed dataclasses, each section validated in its `__post_init__`.

One `RunConfig` describes a whole run (data, model, training, planning, evaluation). It is printed at
start and saved as `config.json` beside every artifact, so a run folder rebuilds itself without guessing.
Built from defaults, a YAML preset (presets.py) and `key=value` overrides (overrides.py).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError

__all__ = [
    "CollectConfig",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "PlanConfig",
    "RecipeConfig",
    "RunConfig",
    "TrainConfig",
    "describe_keys",
]


@dataclass
class DataConfig:
    """Where the data comes from and how it becomes tokens."""

    dataset: str = "tt/pendulum/expert-v0"
    """Minari dataset id (local or downloadable) or a path to a local dataset folder."""
    discount: float = 0.99
    """Discount for the reward-to-go value token."""
    termination_penalty: float = -100.0
    """Added to the reward of a true termination (original TT: -100); 0 disables it."""
    n_bins: int = 100
    """Bins per dimension (the vocabulary size)."""
    strategy: Literal["quantile", "uniform"] = "quantile"
    """Discretization: quantile (original TT default) or uniform bins."""
    n_transitions: int = 10
    """Transitions per training window; the model's context is this many transitions."""
    max_episodes: int | None = None
    """Use a seeded random subset of this many episodes (None: all)."""
    drop_bad_episodes: bool = False
    """Drop episodes with NaN/inf values instead of failing (the count is reported)."""
    cache_dir: str | None = None
    """Where derived token arrays are cached (None: `<run>/cache` or ~/.cache/trajectory_transformer)."""
    ref_min_score: float | None = None
    """Random-policy return that scores 0 at evaluation, overriding the dataset's (None: the dataset's)."""
    ref_max_score: float | None = None
    """Expert return that scores 100 at evaluation, overriding the dataset's (None: the dataset's)."""
    goal_key: str | None = None
    """Goal-conditioned training: the key of the Dict observation that holds the goal (PointMaze:
    desired_goal). It is taken out of every step's observation and becomes a goal prefix of its own
    tokens ahead of each window (docs/architecture.md, "Goals"). None: no goal."""
    achieved_key: str | None = "achieved_goal"
    """With data.goal_key: the Dict key of the position the goal is compared with (hindsight goals,
    plan.mode=goal); it stays in the observation. null: the observation has no such key."""
    goal_relabel: Literal["episode", "final"] = "episode"
    """With data.goal_key, each window's goal: episode (the goal stored with the window's first
    step) or final (hindsight: the episode's last achieved position, for data with no goal of its
    own). PointMaze data cuts an episode where its goal is reached, so both nearly agree there and
    episode is the default: it keeps the reward and value tokens consistent with the goal."""

    def __post_init__(self) -> None:
        _require(0.0 < self.discount <= 1.0, "data.discount", "must be in (0, 1]")
        _require(2 <= self.n_bins <= 65535, "data.n_bins", "must be in [2, 65535]")
        _require(self.n_transitions >= 1, "data.n_transitions", "must be >= 1")
        _require(
            self.strategy in ("quantile", "uniform"), "data.strategy", "use quantile or uniform"
        )
        _check_references(self.ref_min_score, self.ref_max_score, "data")
        _require(self.goal_key != "", "data.goal_key", "must be a Dict key or null")
        _require(
            self.goal_key is None or self.goal_key != self.achieved_key,
            "data.achieved_key",
            "must differ from data.goal_key (the goal is taken out of the observation)",
        )
        _require(
            self.goal_relabel in ("episode", "final"), "data.goal_relabel", "use episode or final"
        )
        _check_values(self, "data.")  # last: the checks above word their own


@dataclass
class ModelConfig:
    """GPT size; defaults are the TT paper's."""

    n_embd: int = 128
    """Width of the token embeddings and the residual stream."""
    n_layer: int = 4
    """Transformer blocks."""
    n_head: int = 4
    """Attention heads per block (n_embd must be divisible by it)."""
    dropout: float = 0.1
    """Dropout on embeddings and residual branches (original TT: 0.1)."""
    attn_dropout: float = 0.0
    """Dropout on attention weights. The original TT uses 0.1; we default to 0 because on CPU any
    attention dropout makes PyTorch's fused attention fall back to the unfused math kernel
    (about 1.6x slower training, see BENCHMARKS.md); embedding/residual dropout still regularise."""
    separate_heads: bool = True
    """One output head per transition dimension (original TT) instead of one shared head."""

    def __post_init__(self) -> None:
        for name in ("n_embd", "n_layer", "n_head"):
            _require(getattr(self, name) >= 1, f"model.{name}", "must be >= 1")
        _require(self.n_embd % self.n_head == 0, "model.n_embd", "must be divisible by n_head")
        _require(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        _require(0.0 <= self.attn_dropout < 1.0, "model.attn_dropout", "must be in [0, 1)")
        _check_values(self, "model.")  # last: the checks above word their own


@dataclass
class TrainConfig:
    """Optimisation; defaults are the TT paper's."""

    epochs: float | None = None
    """Passes over the data. None: original TT's rule, 50 reference epochs scaled to 1M transitions."""
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs when smaller)."""
    batch_size: int = 256
    """Windows per optimizer step (per process under DDP)."""
    lr: float = 6e-4
    """Peak learning rate (AdamW), reached after the warmup."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (minGPT/TT)."""
    weight_decay: float = 0.1
    """AdamW weight decay, on matrices only (not biases, norms or embeddings)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this (0 disables clipping)."""
    action_weight: float = 5.0
    """Loss weight of action targets (original TT: 5)."""
    reward_weight: float = 1.0
    """Loss weight of reward targets."""
    value_weight: float = 1.0
    """Loss weight of value (reward-to-go) targets."""
    warmup_fraction: float = 0.05
    """Linear warmup over this fraction of the run's tokens, then cosine decay to lr_min_ratio * lr."""
    lr_min_ratio: float = 0.1
    """The cosine decay ends at lr * lr_min_ratio."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """bf16 autocast (CPU and CUDA) or fp16 with a grad scaler (CUDA only)."""
    compile: bool = False
    """torch.compile the model (pays on GPUs; slower on this CPU)."""
    activation_checkpointing: bool = False
    """Recompute block activations in backward: less memory, more time."""
    num_workers: int = 0
    """DataLoader worker processes (0: batches are gathered in the main process, fastest here)."""
    seed: int = 0
    """Seeds weights, data order, dropout and the episode subset."""
    log_every: int = 10
    """Optimizer steps between metric log lines."""
    save_every: int = 500
    """Optimizer steps between checkpoints (one is always written at the end)."""
    keep_last: int = 2
    """Checkpoints kept besides the best one (lowest loss)."""
    eval_every: int = 0
    """Evaluate with the planner every N epochs (0: never during training)."""
    progress: bool = True
    """Show a progress bar with loss, tokens/s and ETA."""
    wandb: bool = False
    """Also log the metrics and the config to Weights & Biases (pip install
    'trajectory-transformer[wandb]'; WANDB_MODE=offline logs into RUN_DIR/wandb without a login)."""
    wandb_project: str = "trajectory-transformer"
    """With train.wandb: the W&B project (the run is named after the run folder)."""
    wandb_entity: str | None = None
    """With train.wandb: the W&B team or user (null: your default entity)."""

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        _check_seed(self.seed, "train.seed")
        _require(self.epochs is None or self.epochs > 0, "train.epochs", "must be > 0 or null")
        _require(
            self.max_steps is None or self.max_steps >= 1, "train.max_steps", "must be >= 1 or null"
        )
        _require(self.batch_size >= 1, "train.batch_size", "must be >= 1")
        _require(math.isfinite(self.lr) and self.lr > 0, "train.lr", "must be a finite number > 0")
        _require(all(0.0 <= b < 1.0 for b in self.betas), "train.betas", "must be in [0, 1)")
        _require(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        _require(math.isfinite(self.grad_clip), "train.grad_clip", "must be finite (0 disables it)")
        for name in ("action_weight", "reward_weight", "value_weight"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value >= 0, f"train.{name}", "must be >= 0")
        _require(0.0 <= self.lr_min_ratio <= 1.0, "train.lr_min_ratio", "must be in [0, 1]")
        _check_device(self.device, "train.device")
        _require(self.num_workers >= 0, "train.num_workers", "must be >= 0")
        for name in ("log_every", "save_every", "keep_last"):
            _require(getattr(self, name) >= 1, f"train.{name}", "must be >= 1")
        _require(self.eval_every >= 0, "train.eval_every", "must be >= 0 (0: never)")
        _require(
            self.precision in ("fp32", "bf16", "fp16"), "train.precision", "use fp32, bf16 or fp16"
        )
        _require(0.0 <= self.warmup_fraction < 1.0, "train.warmup_fraction", "must be in [0, 1)")
        _require(bool(self.wandb_project.strip()), "train.wandb_project", "must not be empty")
        _require(self.wandb_entity != "", "train.wandb_entity", "must be a name or null")
        _check_values(self, "train.")  # last: the checks above word their own


@dataclass
class PlanConfig:
    """Beam search and sampling; defaults from the original TT's config/offline.py."""

    mode: Literal["beam", "sample", "greedy", "likelihood", "goal"] = "beam"
    """beam: TT beam search for the highest predicted return; likelihood: the same search keeping
    the most likely imagined trajectories under the model (TT's imitation setting); goal (runs
    with data.goal_key): the same search keeping the trajectories whose imagined achieved position
    gets closest to the goal soonest; sample / greedy: the model as a policy without search
    (greedy on a goal run is goal-conditioned behaviour cloning)."""
    horizon: int = 15
    """Transitions imagined ahead of the current one."""
    beam_width: int = 128
    """Candidate trajectories kept per environment after each step."""
    expand: int = 2
    """Samples drawn from each beam before pruning back to beam_width."""
    context: int | None = None
    """Past real transitions kept in the prompt (plus the current observation); null: fit the
    run, i.e. the original TT's 5, or data.n_transitions - 1 where the model's window is shorter."""
    plan_every: int = 1
    """Re-plan every N env steps; in between, the stored plan's next actions are used."""
    discount: float | None = None
    """Discount of predicted rewards and the terminal value in a candidate's predicted return.
    None: the run's data.discount, the discount its value tokens were trained with (a planner
    without a run uses data.discount's default). Set it only to plan with another horizon on
    purpose: before this default, a run trained with data.discount=0.999 was planned at 0.99."""
    slide: Literal["multi", "single"] = "multi"
    """How the context slides past the model's window: multi re-encodes half a window at a time,
    single re-encodes at every transition (exact either way)."""
    temperature: float = 1.0
    """Softmax temperature of every sampled token."""
    k_obs: int | None = 1
    """Top-k filter for observation tokens (1: the most likely bin)."""
    k_act: int | None = None
    """Top-k filter for action tokens (None: no top-k)."""
    k_reward: int | None = 1
    """Top-k filter for the reward token placed in the plan (scores use the expectation)."""
    k_value: int | None = 1
    """Top-k filter for the value token placed in the plan."""
    p_obs: float | None = None
    """Nucleus (top-p) filter for observation tokens."""
    p_act: float | None = None
    """Nucleus (top-p) filter for action tokens."""
    cdf_obs: float | None = None
    """Drop the least likely observation tokens holding this much probability mass."""
    cdf_act: float | None = 0.6
    """Drop the least likely action tokens holding this much probability mass (original TT: 0.6)."""
    use_cache: bool = True
    """Key/value-cached decoding (False: a full forward pass per token, for checking)."""
    seed: int = 0
    """Seeds the planner's sampling."""
    absorbing: bool = False
    """Treat an imagined termination as absorbing: the probability that step t's reward token is
    a terminal one (a bin below data.termination_penalty / 2) ends the imagined trajectory, so
    later rewards and the value count only with the probability of still being alive. The
    original TT gets this from stop tokens trained after every termination (their probability
    is dropped from the expectations); this model masks the padding from the loss, so what it
    imagines after a fall is untrained (issue 28, hypothesis 2). Off by default: measured first."""

    def __post_init__(self) -> None:
        _check_seed(self.seed, "plan.seed")
        _require(
            self.mode in ("beam", "sample", "greedy", "likelihood", "goal"),
            "plan.mode",
            "use beam, likelihood, goal, sample or greedy",
        )
        _require(self.beam_width >= 1, "plan.beam_width", "must be >= 1")
        _require(self.expand >= 1, "plan.expand", "must be >= 1")
        _require(self.horizon >= 1, "plan.horizon", "must be >= 1")
        _require(self.context is None or self.context >= 0, "plan.context", "must be >= 0 or null")
        _require(self.plan_every >= 1, "plan.plan_every", "must be >= 1")
        _require(self.temperature > 0, "plan.temperature", "must be > 0")
        _require(
            self.discount is None or 0.0 < self.discount <= 1.0,
            "plan.discount",
            "must be in (0, 1] or null (the run's data.discount)",
        )
        _require(self.slide in ("multi", "single"), "plan.slide", "use multi or single")
        for name in ("cdf_obs", "cdf_act"):
            value = getattr(self, name)
            _require(value is None or 0.0 <= value < 1.0, f"plan.{name}", "must be in [0, 1)")
        for name in ("p_obs", "p_act"):
            value = getattr(self, name)
            _require(value is None or 0.0 < value <= 1.0, f"plan.{name}", "must be in (0, 1]")
        for name in ("k_obs", "k_act", "k_reward", "k_value"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"plan.{name}", "must be >= 1 or null")
        _check_values(self, "plan.")  # last: the checks above word their own

    def for_run(self, data: DataConfig) -> PlanConfig:
        """These settings as a run's planner uses them: an unset discount is data.discount."""
        return (
            self if self.discount is not None else dataclasses.replace(self, discount=data.discount)
        )

    @property
    def gamma(self) -> float:
        """The discount to plan with (data.discount's default when no run resolved it)."""
        return DataConfig.discount if self.discount is None else self.discount


@dataclass
class EvalConfig:
    """Evaluation rollouts."""

    episodes: int = 10
    """Evaluation episodes (seeds eval.seed, eval.seed + 1, ...)."""
    n_envs: int = 10
    """Environments stepped together in one gymnasium.vector env (and one model batch)."""
    vector: Literal["sync", "async"] = "sync"
    """gymnasium.vector kind; sync is faster on 2 cores."""
    seed: int = 1000
    """Episode i is reset with seed + i, whichever env slot runs it."""
    max_episode_steps: int | None = None
    """Cut episodes at this many steps (None: the env's own time limit)."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N (where the planner runs)."""
    progress: bool = True
    """Show a progress bar of finished episodes."""
    trust_env_code: bool = False
    """Let a run's or dataset's env spec import and run the code it names (its entry point and
    wrappers) instead of making the env from the id registered here (`--trust-env-code`); only
    set it for runs and datasets you trust. A run's saved config cannot turn it on."""
    env_kwargs: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    """gym.make keyword arguments that replace the dataset's stored ones at evaluation, key by key."""
    env_spec: Literal["eval", "data"] = "eval"
    """Which of the dataset's env specs to evaluate in: eval (its evaluation env, Minari's
    eval_env_spec, else the data's) or data (the env the data was collected in; e.g. PointMaze with
    random start and goal cells instead of the evaluation map's fixed goal)."""
    stop_on_success: bool | None = None
    """End an episode at the first step whose info says success (PointMaze does). None: true for
    goal-conditioned runs (data.goal_key set), false otherwise."""

    def __post_init__(self) -> None:
        _require(self.episodes >= 1, "eval.episodes", "must be >= 1")
        # episode i is reset with seed + i, so the last episode's seed must fit too
        _check_seed(self.seed, "eval.seed")
        _require(
            self.seed + self.episodes <= _SEED_LIMIT,
            "eval.seed",
            f"plus eval.episodes must be at most 2**32 (episode i uses seed + i), got {self.seed}",
        )
        _require(self.env_spec in ("eval", "data"), "eval.env_spec", "use eval or data")
        _require(self.n_envs >= 1, "eval.n_envs", "must be >= 1")
        _require(self.vector in ("sync", "async"), "eval.vector", "use sync or async")
        _require(
            self.max_episode_steps is None or self.max_episode_steps >= 1,
            "eval.max_episode_steps",
            "must be >= 1 or null",
        )
        _check_device(self.device, "eval.device")
        _check_env_kwargs(self.env_kwargs, "eval.env_kwargs")
        _check_values(self, "eval.")  # last: the checks above word their own


@dataclass
class RecipeConfig:
    """`tt collect --recipe`: D4RL-style datasets from a PPO behaviour policy (sources/recipes.py)."""

    ppo_steps: int | None = None
    """PPO env steps for the behaviour policy; null = the recipe's default, measured here to reach expert level (`tt collect --recipe list`). Raising it later resumes training."""
    ppo_checkpoint_every: int = 10_000
    """Save and evaluate a PPO checkpoint every this many env steps (at the next rollout end); medium and expert are chosen among them."""
    # 10k, not 50k: PPO's return jumps between checkpoints (measured on Hopper, seed 0, 50k apart:
    # 527, 2,013, 280, 3,166), so 50k left no checkpoint near a third of the expert's return.
    ppo_seed: int = 0
    """Seed of the PPO run; each seed trains its own policy under tt-policies/<env>/ppo-seed<k>."""
    eval_episodes: int = 10
    """Episodes per checkpoint evaluation (deterministic actions; medium and expert are chosen by it) and for the random reference return."""
    transitions: int | None = None
    """Transitions per random/medium/expert dataset; null = 1,000,000 (as D4RL), or 100,000 for -quick recipes."""
    stochastic: bool = False
    """Collect medium/expert data with the PPO policy's sampled actions, as D4RL sampled its SAC policies; off by default because PPO's wider noise moves the data off its level (measured: HalfCheetah medium 423 -> -56, Walker2d expert 3,971 -> 2,290)."""

    medium_action_noise: float = 0.1
    """Gaussian noise (std = this x half the action range, clipped to the bounds) on the medium checkpoint's deterministic actions, as D4RL collected with noisy policies; 0 = the plain deterministic policy (the -v0 datasets)."""
    # 0.1, not 0: measured on Hopper medium-quick (BENCHMARKS.md), TT greedy scored 12.3 on data
    # from the deterministic policy (episodes that never show a way back from a drift) and 34.4 on
    # the same checkpoint's data with noise 0.1, above that data's own 28.2.
    expert_action_noise: float = 0.0
    """The same for the expert checkpoint; 0 by default because the PPO experts are fragile to it."""
    # Hopper's expert, 10 episodes: 3,281 deterministic, 2,880 with noise 0.02, 2,580 with 0.05 and
    # 1,780 (the data's mean) with 0.1: expert data with noise would no longer be expert data.

    def __post_init__(self) -> None:
        _check_seed(self.ppo_seed, "collect.recipe.ppo_seed")
        _require(
            self.ppo_steps is None or self.ppo_steps >= 1,
            "collect.recipe.ppo_steps",
            "must be >= 1",
        )
        _require(
            self.ppo_checkpoint_every >= 1, "collect.recipe.ppo_checkpoint_every", "must be >= 1"
        )
        _require(self.ppo_seed >= 0, "collect.recipe.ppo_seed", "must be >= 0")
        _require(self.eval_episodes >= 1, "collect.recipe.eval_episodes", "must be >= 1")
        for level in ("medium", "expert"):
            noise = self.action_noise(level)
            key = f"collect.recipe.{level}_action_noise"
            _require(noise >= 0 and math.isfinite(noise), key, "must be a number >= 0")
            _require(
                not (self.stochastic and noise > 0),
                key,
                "adds noise to deterministic actions; set it to 0 with collect.recipe.stochastic=true",
            )
        _require(
            self.transitions is None or self.transitions >= 1,
            "collect.recipe.transitions",
            "must be >= 1 or null",
        )
        _check_values(self, "collect.recipe.")  # last: the checks above word their own

    def action_noise(self, level: str) -> float:
        """The action noise of a level's data (only medium and expert have any)."""
        return {"medium": self.medium_action_noise, "expert": self.expert_action_noise}.get(
            level, 0.0
        )


@dataclass
class CollectConfig:
    """How `tt collect` makes a dataset."""

    env: str = "Pendulum-v1"
    """Gymnasium env id to collect from."""
    policy: str = "expert"
    """random, expert or medium (shipped scripted controllers: Pendulum-v1), maze (PointMaze envs), or sb3:ALGO:PATH."""
    episodes: int = 500
    """Episodes to collect."""
    noise: float = 0.0
    """Gaussian action noise (fraction of the action range)."""
    epsilon: float = 0.0
    """Probability of a uniformly random action at each step."""
    seed: int = 0
    """Seed of the first episode (episode i uses seed + i) and of the policy's noise."""
    dataset_id: str | None = None
    """Minari id to write (default: tt/<env>/<policy>-v0)."""
    ref_episodes: int = 20
    """Episodes used to measure the random and expert reference returns."""
    overwrite: bool = False
    """Replace an existing local dataset with the same id (otherwise that is an error)."""
    ref_min_score: float | None = None
    """Random reference return to store instead of measuring it (0 on the normalized scale)."""
    ref_max_score: float | None = None
    """Expert reference return to store instead of measuring it (needed where no expert ships)."""
    env_kwargs: dict[str, str | int | float | bool | None] = field(default_factory=dict)
    """Keyword arguments for gym.make, stored in the dataset's env spec, e.g. {max_episode_steps: 100}."""
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    """PPO budget and sizes for `tt collect --recipe` (the keys above except seed and overwrite do not apply there)."""

    def __post_init__(self) -> None:
        _require(self.episodes >= 1, "collect.episodes", "must be >= 1")
        _check_seed(self.seed, "collect.seed")
        _require(
            self.seed + self.episodes <= _SEED_LIMIT,
            "collect.seed",
            "plus collect.episodes must be at most 2**32 (episode i uses seed + i)",
        )
        _require(0 <= self.noise < float("inf"), "collect.noise", "must be >= 0 and finite")
        _require(0.0 <= self.epsilon <= 1.0, "collect.epsilon", "must be in [0, 1]")
        _check_references(self.ref_min_score, self.ref_max_score, "collect")
        low, high = self.ref_min_score, self.ref_max_score
        both = low is not None and high is not None
        _require(
            both or self.ref_episodes >= 1,
            "collect.ref_episodes",
            "must be >= 1 (or give both collect.ref_min_score and collect.ref_max_score)",
        )
        _check_env_kwargs(self.env_kwargs, "collect.env_kwargs")
        _check_values(self, "collect.")  # last: the checks above word their own


@dataclass
class RunConfig:
    """One run: everything from data to evaluation."""

    name: str = "run"
    """Run name; `tt train` writes to runs/<name> unless --run-dir is given."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)

    def __post_init__(self) -> None:
        _check_name(self.name)

    @property
    def stop_on_success(self) -> bool:
        """eval.stop_on_success resolved: its default is on for goal-conditioned runs."""
        if self.eval.stop_on_success is not None:
            return self.eval.stop_on_success
        return self.data.goal_key is not None


def _require(ok: bool, key: str, what: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' {what}")


_INT_LIMIT = 2**63
"""Every int key fits a signed 64-bit integer (what torch, NumPy and safetensors can hold)."""


def _check_values(section: Any, prefix: str) -> None:
    """The checks every key of a section shares: each float finite, each int within 64 bits.

    Runs first in each `__post_init__`, so a NaN penalty or a 10**30 width is refused where the
    config is built (a preset, an override, a hand-edited config.json) rather than deep inside.
    """
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, bool):
                continue
            if isinstance(item, float):
                _require(math.isfinite(item), f"{prefix}{f.name}", f"must be finite, got {item}")
            elif isinstance(item, int):
                _require(
                    -_INT_LIMIT < item < _INT_LIMIT,
                    f"{prefix}{f.name}",
                    f"must be below 2**63 in size, got {_short(item)}",
                )


def _short(value: int) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


_SEED_LIMIT = 2**32
"""Seeds go to NumPy, torch and Gymnasium alike; NumPy's legacy seed takes [0, 2**32)."""


def _check_seed(value: int, key: str) -> None:
    _require(0 <= value < _SEED_LIMIT, key, f"must be in [0, 2**32), got {_short(value)}")


def _check_name(name: str) -> None:
    """A run name names a folder under runs/; it is never a path (use --run-dir for that)."""
    bad = not name or name in (".", "..") or any(c in name for c in "/\\\0") or ":" in name[:2]
    _require(
        not bad,
        "name",
        f"must be a plain folder name (no '/', '..' or absolute path), got {name!r}; "
        "pass --run-dir to choose where the run is written",
    )


def _check_env_kwargs(kwargs: Any, key: str) -> None:
    """gym.make keyword arguments from a config: names mapped to YAML scalars (data, not code)."""
    _require(isinstance(kwargs, dict), key, "must be a mapping")
    for name, value in kwargs.items():
        _require(
            isinstance(name, str) and name.isidentifier(),
            f"{key}.{name}",
            "must be a Python keyword name",
        )
        _require(
            value is None or isinstance(value, str | int | float | bool),
            f"{key}.{name}",
            "must be a YAML scalar (number, string, true/false or null)",
        )


def _check_references(low: float | None, high: float | None, section: str) -> None:
    """Reference returns (random, expert) given by the user: finite, and expert above random."""
    inf = float("inf")
    _require(low is None or -inf < low < inf, f"{section}.ref_min_score", "must be finite")
    _require(high is None or -inf < high < inf, f"{section}.ref_max_score", "must be finite")
    _require(
        low is None or high is None or high > low,
        f"{section}.ref_max_score",
        f"must be greater than {section}.ref_min_score",
    )


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _check_device(name: str, key: str) -> None:
    """The form of a device string (whether CUDA exists is checked where the device is made)."""
    _require(
        bool(_DEVICE.match(name)), key, f"must be auto, cpu, cuda, cuda:N or mps, got {name!r}"
    )


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a dataclass, from its source."""
    import ast
    import inspect
    import itertools
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # no source (e.g. a frozen build): keys without text
        return {}
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def describe_keys(cls: type = RunConfig, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Every config key as (key, type, default, docstring), for `tt config keys`."""
    rows: list[tuple[str, str, Any, str]] = []
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            rows.extend(describe_keys(typing.cast(type, hint), f"{prefix}{f.name}."))
            continue
        type_name = (
            str(hint).replace("typing.", "") if not isinstance(hint, type) else hint.__name__
        )
        rows.append(
            (f"{prefix}{f.name}", type_name, getattr(defaults, f.name), docs.get(f.name, ""))
        )
    return rows
