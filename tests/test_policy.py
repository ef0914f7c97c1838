"""TTPolicy: collect → train → save → load → act over Box, Discrete and nested Dict spaces; plain
Gymnasium, gymnasium.vector and SB3 loops; predicted rewards; clipping; bad input."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from tiny import TINY_DATA, TINY_MODEL
from trajectory_transformer.config import CollectConfig, PlanConfig, RunConfig, load_config
from trajectory_transformer.data.tokens import TokenizedDataset, prepare_tokens
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.policy import TTPolicy, plan_config_with, run_spaces
from trajectory_transformer.sources.collect import collect_dataset
from trajectory_transformer.training.trainer import train

DICT_ID = "TTPolicyNestedDict-v0"
CONTEXT = 2  # plan.context of the tiny runs


class NestedDictEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A deterministic point mass with a nested Dict observation and a Box(2,) action.

    obs = {"flags": (pos[0] > 0, [t / 10]), "mode": t % 3, "pos": pos}; pos += 0.5 * action;
    reward = -|pos|_1. The start position comes from the reset seed.
    """

    observation_space = spaces.Dict(
        {
            "pos": spaces.Box(-5.0, 5.0, (2,), np.float32),
            "mode": spaces.Discrete(3),
            "flags": spaces.Tuple((spaces.Discrete(2), spaces.Box(0.0, 1.0, (1,), np.float32))),
        }
    )
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> dict[str, Any]:
        flags = (int(self.pos[0] > 0), np.array([self.t / 10], np.float32))
        return {"pos": self.pos.copy(), "mode": self.t % 3, "flags": flags}

    def step(self, action: np.ndarray) -> Any:
        assert self.action_space.contains(action), action
        self.pos = np.clip(self.pos + 0.5 * action, -5.0, 5.0).astype(np.float32)
        self.t += 1
        return self._obs(), float(-np.abs(self.pos).sum()), False, False, {}


if DICT_ID not in gym.registry:
    # a string entry point: Minari stores the env spec as JSON, which cannot hold a callable
    gym.register(DICT_ID, entry_point=f"{__name__}:NestedDictEnv", max_episode_steps=8)

EPISODES = {"Pendulum-v1": 2, "CartPole-v1": 8, DICT_ID: 8}


@dataclass
class Trained:
    """A tiny trained run and the objects it was trained from, still in memory."""

    env_id: str
    run_dir: Path
    model: TrajectoryGPT  # the trainer's model object after its last step
    data: TokenizedDataset
    config: RunConfig

    def memory_policy(self, **plan: Any) -> TTPolicy:
        """The same run as a policy built from in-memory objects (nothing read from disk)."""
        return TTPolicy(
            self.model,
            self.data.discretizer,
            *run_spaces(self.data.info),
            # a run's plan: plan.discount unset means the discount its values were trained with
            plan_config_with(self.config.plan, **plan).for_run(self.config.data),
        )


def _train(env_id: str, root: Path) -> Trained:
    name = env_id.split("-")[0].lower()
    dataset_id = f"tt-policy-test/{name}/random-v0"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no expert for CartPole / the dict env
        collect_dataset(
            CollectConfig(
                env=env_id,
                policy="random",
                episodes=EPISODES[env_id],
                ref_episodes=1,
                dataset_id=dataset_id,
                overwrite=True,
            ),
            progress=False,
        )
    cfg = load_config(
        None,
        [
            f"data.dataset={dataset_id}",
            *TINY_DATA,
            *TINY_MODEL,
            "train.batch_size=16",
            "train.max_steps=30",
            "train.device=cpu",
            "train.progress=false",
            f"plan.context={CONTEXT}",
            "plan.horizon=2",
            "plan.beam_width=3",
            "plan.expand=2",
        ],
    )
    data = prepare_tokens(cfg.data)
    last: dict[str, Any] = {}

    def keep_model(step: int, metrics: dict[str, float], model: torch.nn.Module) -> None:
        last["model"] = model

    run_dir = train(cfg, root / "run", dataset=data, step_callback=keep_model)
    return Trained(env_id, run_dir, last["model"], data, cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Trained]:
    """trained(env_id): collect + train once per env for the whole module."""
    cache: dict[str, Trained] = {}

    def get(env_id: str) -> Trained:
        if env_id not in cache:
            cache[env_id] = _train(env_id, tmp_path_factory.mktemp("policy"))
        return cache[env_id]

    return get


# --- the contract: collect → train → save → load → act, over spaces ------------------------------


@pytest.mark.parametrize(
    ("env_id", "mode"),
    [("Pendulum-v1", "beam"), ("CartPole-v1", "greedy"), (DICT_ID, "sample")],
)
def test_contract_load_acts_in_space_and_matches_memory(
    trained: Callable[[str], Trained], env_id: str, mode: str
) -> None:
    t = trained(env_id)
    loaded = TTPolicy.load(t.run_dir, device="cpu", mode=mode, seed=3)
    memory = t.memory_policy(mode=mode, seed=3)
    assert loaded.plan == memory.plan and loaded.plan.mode == mode
    assert loaded.plan.beam_width == 3  # the rest of the run's plan config is kept
    env = gym.make(env_id, max_episode_steps=6)
    assert loaded.observation_space == env.observation_space
    assert loaded.action_space == env.action_space
    obs, _ = env.reset(seed=0)
    loaded.reset()
    memory.reset()
    for _ in range(6):
        action = loaded.act(obs)
        assert env.action_space.contains(action), action
        np.testing.assert_array_equal(np.asarray(memory.act(obs)), np.asarray(action))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    # same contexts, predicted reward tokens included (those depend on the model's logits)
    np.testing.assert_array_equal(loaded.agent.history, memory.agent.history)
    assert loaded.agent.count[0] > 0


# --- loops -------------------------------------------------------------------------------------


def test_plain_gymnasium_loop_records_real_rewards(trained: Callable[[str], Trained]) -> None:
    policy = TTPolicy.load(trained("Pendulum-v1").run_dir, mode="greedy")
    disc, reward_dim = policy.discretizer, policy.agent.reward_dim
    env = gym.make("Pendulum-v1", max_episode_steps=4)
    obs, _ = env.reset(seed=1)
    policy.reset()
    for _ in range(2):
        rewards = []
        while True:
            action = policy.act(obs)
            assert action.shape == (1,) and action.dtype == np.float32
            obs, reward, terminated, truncated, _ = env.step(action)
            policy.observe_reward(reward)
            rewards.append(reward)
            if terminated or truncated:
                break
        assert len(rewards) == 4
        stored = policy.agent.history[0, -CONTEXT:, reward_dim]
        real = disc.encode(np.array(rewards[-CONTEXT:], np.float32)[:, None], dims=[reward_dim])
        np.testing.assert_array_equal(stored, real[:, 0])
        obs, _ = env.reset()
        policy.reset()
        assert policy.agent.count[0] == 0
    with pytest.raises(TTError, match="no action to reward"):
        policy.observe_reward(0.0)  # nothing was acted since the reset


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1", DICT_ID])
def test_vector_env_loop_with_autoreset(trained: Callable[[str], Trained], env_id: str) -> None:
    """The class docstring's NEXT_STEP recipe: contexts restart exactly at each env's new episode."""
    policy = TTPolicy.load(trained(env_id).run_dir, mode="greedy")
    limits = (3, 5)  # the two envs end (and autoreset) at different steps
    envs = gym.vector.SyncVectorEnv(
        [lambda n=n: gym.make(env_id, max_episode_steps=n) for n in limits]  # type: ignore[misc]
    )
    obs, _ = envs.reset(seed=0)
    policy.reset()
    was_done = np.zeros(2, dtype=bool)
    steps = np.zeros(2, dtype=np.int64)  # transitions of the current episode before this obs
    for _ in range(11):
        actions = policy.act(obs)
        assert envs.action_space.contains(actions), actions
        obs, reward, terminated, truncated, _ = envs.step(actions)
        policy.observe_reward(reward)
        policy.reset(np.flatnonzero(was_done))
        steps = np.where(was_done, 0, steps + 1)
        was_done = terminated | truncated
        np.testing.assert_array_equal(policy.agent.count[:2], np.minimum(steps, CONTEXT))
    envs.close()


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_sb3_evaluate_policy(trained: Callable[[str], Trained], env_id: str) -> None:
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    policy = TTPolicy.load(trained(env_id).run_dir, mode="greedy")
    venv = DummyVecEnv([lambda: Monitor(gym.make(env_id, max_episode_steps=5))] * 2)
    returns, lengths = evaluate_policy(policy, venv, n_eval_episodes=2, return_episode_rewards=True)
    assert len(returns) == 2 and np.isfinite(returns).all()  # type: ignore[arg-type]
    assert all(1 <= n <= 5 for n in lengths)  # type: ignore[union-attr]
    assert (policy.agent.count[:2] > 0).all()  # contexts were built from predicted rewards


def test_predict_episode_start_resets_those_envs(trained: Callable[[str], Trained]) -> None:
    policy = TTPolicy.load(trained("Pendulum-v1").run_dir, mode="greedy")
    obs = np.random.default_rng(0).uniform(-1, 1, (3, 2, 3)).astype(np.float32)
    state = object()
    actions, out_state = policy.predict(obs[0], state=state, episode_start=np.array([True, True]))
    assert actions.shape == (2, 1) and out_state is state
    policy.predict(obs[1], episode_start=np.array([False, False]))
    np.testing.assert_array_equal(policy.agent.count[:2], [1, 1])
    policy.predict(obs[2], episode_start=np.array([True, False]))
    np.testing.assert_array_equal(policy.agent.count[:2], [0, 2])


# --- rewards and executed actions --------------------------------------------------------------


def test_missing_reward_is_the_models_argmax_and_real_reward_wins(
    trained: Callable[[str], Trained],
) -> None:
    policy = TTPolicy.load(trained("Pendulum-v1").run_dir, device="cpu", mode="greedy")
    disc, model = policy.discretizer, policy.model
    env = gym.make("Pendulum-v1")

    def tokens(obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [disc.encode(obs[None], dims=[0, 1, 2]), disc.encode(action[None], dims=[3])], axis=1
        )[0].astype(np.int64)  # (4,)

    def argmax_reward(prompt: np.ndarray) -> int:
        with torch.no_grad():
            return int(model(torch.as_tensor(prompt[None]))[0, -1].argmax())

    obs, _ = env.reset(seed=0)
    policy.reset()
    expected_history: list[np.ndarray] = []  # transitions as the policy should store them
    for t in range(3):
        action = policy.act(obs)  # no observe_reward: the previous reward is filled in
        assert policy.agent.count[0] == t
        if t:
            np.testing.assert_array_equal(policy.agent.history[0, -t:], expected_history[-t:])
        # independently: [earlier transitions, this obs, this action] → argmax reward token
        step = tokens(obs, action)
        prompt = np.concatenate([*expected_history[-CONTEXT:], step])
        expected_history.append(np.array([*step, argmax_reward(prompt), 0]))
        obs, *_ = env.step(action)

    _, reward, *_ = env.step(policy.act(obs))
    policy.observe_reward(reward)  # a real reward is stored as its own token
    real = disc.encode(np.array([[reward]], np.float32), dims=[4])[0, 0]
    assert policy.agent.count[0] == CONTEXT and policy.agent.history[0, -1, 4] == real
    np.testing.assert_array_equal(policy.agent.history[0, -2], expected_history[-1])


TINY_GPT: dict[str, Any] = dict(
    vocab_size=30, observation_dim=2, action_dim=1, n_transitions=3, n_embd=16, n_layer=1, n_head=2
)


class IntegerBins:
    """A stand-in discretizer: value v ↔ token round(v)."""

    def encode(self, x: np.ndarray, dims: object = None) -> np.ndarray:
        return np.rint(np.asarray(x)).astype(np.int64)

    def decode(self, tokens: np.ndarray, dims: object = None) -> np.ndarray:
        return np.asarray(tokens, dtype=np.float32)


@pytest.mark.parametrize(
    ("action_space", "returned", "stored"),
    [
        (spaces.Box(-0.5, 0.5, (1,), np.float32), np.float32(0.5), 0),  # clipped, rint(0.5) = 0
        (spaces.Discrete(3), 2, 2),  # token 20 rounds and clips to the last action
    ],
)
def test_executed_action_is_clipped_and_stored(
    action_space: gym.Space[Any], returned: Any, stored: int
) -> None:
    torch.manual_seed(0)
    model = TrajectoryGPT(GPTConfig(**TINY_GPT))
    with torch.no_grad():  # the head after the last observation token always says action token 20
        model.head_bias[1, 20] = 100.0
    obs_space = spaces.Box(0.0, 10.0, (2,), np.float32)
    plan = PlanConfig(mode="greedy", context=1)
    bins: Any = IntegerBins()  # token t <-> value t, so stored tokens read as values
    policy = TTPolicy(model, bins, obs_space, action_space, plan)
    action = policy.act(np.array([1.0, 2.0], np.float32))
    assert action_space.contains(action)
    assert np.asarray(action).reshape(()) == returned
    policy.act(np.array([3.0, 4.0], np.float32))
    assert policy.agent.history[0, -1, :3].tolist() == [1, 2, stored]


def test_predicted_reward_token_is_stored_as_is() -> None:
    """Not re-encoded from its bin's value (which need not give the same token back)."""

    class ShiftedBins(IntegerBins):
        def decode(self, tokens: np.ndarray, dims: object = None) -> np.ndarray:
            return np.asarray(tokens, dtype=np.float32) + 0.6  # encode(decode(t)) = t + 1

    torch.manual_seed(0)
    model = TrajectoryGPT(GPTConfig(**TINY_GPT))
    with torch.no_grad():  # the head after the action token always predicts reward token 7
        model.head_bias[2, 7] = 100.0
    obs_space = spaces.Box(0.0, 10.0, (2,), np.float32)
    act_space = spaces.Box(0.0, 50.0, (1,), np.float32)
    bins: Any = ShiftedBins()
    policy = TTPolicy(model, bins, obs_space, act_space, PlanConfig(mode="greedy", context=1))
    policy.act(np.array([1.0, 2.0], np.float32))
    policy.act(np.array([3.0, 4.0], np.float32))
    assert policy.agent.history[0, -1, 3] == 7


# --- configuration and bad input ----------------------------------------------------------------


def test_plan_overrides_go_through_the_config(trained: Callable[[str], Trained]) -> None:
    run_dir = trained("Pendulum-v1").run_dir
    policy = TTPolicy.load(run_dir, overrides=["horizon=1", "plan.expand=3"], beam_width=2)
    assert (policy.plan.horizon, policy.plan.expand, policy.plan.beam_width) == (1, 3, 2)
    with pytest.raises(ConfigError, match=r"did you mean 'plan\.beam_width'"):
        TTPolicy.load(run_dir, beam_widht=4)
    with pytest.raises(ConfigError, match=r"did you mean 'plan\.horizon'"):
        TTPolicy.load(run_dir, overrides=["plan.horizn=2"])
    with pytest.raises(ConfigError, match=r"plan\.\* settings only"):
        TTPolicy.load(run_dir, overrides=["train.lr=0.1"])
    with pytest.raises(ConfigError, match=r"plan\.context=9"):
        TTPolicy.load(run_dir, context=9)  # the model's window holds 4 transitions


def test_wrong_observation_shape_is_one_line_error(trained: Callable[[str], Trained]) -> None:
    policy = TTPolicy.load(trained("Pendulum-v1").run_dir, mode="greedy")
    for bad in (np.zeros(4, np.float32), np.zeros((2, 4), np.float32), np.zeros((2, 2, 3))):
        with pytest.raises(TTError) as err:
            policy.act(bad)
        message = str(err.value)
        assert "\n" not in message
        assert f"shape {bad.shape}" in message and "expected (3,)" in message, message
        assert "(N, 3)" in message, message


def test_nested_dict_observations_single_batch_and_errors(
    trained: Callable[[str], Trained],
) -> None:
    policy = TTPolicy.load(trained(DICT_ID).run_dir, device="cpu", mode="greedy")
    obs, _ = NestedDictEnv().reset(seed=0)
    single = policy.act(obs)
    assert single.shape == (2,) and policy.action_space.contains(single)
    pair = {
        "flags": tuple(np.stack([p, p]) for p in obs["flags"]),
        "mode": np.array([obs["mode"], obs["mode"]]),
        "pos": np.stack([obs["pos"], obs["pos"]]),
    }
    batched = policy.act(pair, env_index=[3, 4])
    assert batched.shape == (2, 2)
    np.testing.assert_array_equal(batched[0], single)  # greedy, same (empty) context
    with pytest.raises(
        TTError, match=r"observation\['pos'\] has shape \(3,\); expected \(2,\) \(one"
    ):
        policy.act({**obs, "pos": np.zeros(3, np.float32)})
    with pytest.raises(
        TTError, match=r"observation\['mode'\] has shape \(3,\); expected \(2,\) \(a batch of 2"
    ):
        policy.act({**pair, "mode": np.zeros(3, np.int64)})
    with pytest.raises(TTError, match=r"missing keys \['pos'\]"):
        policy.act({k: v for k, v in obs.items() if k != "pos"})
    with pytest.raises(TTError, match="expected a dict"):
        policy.act(np.zeros(5))
    with pytest.raises(TTError, match="env_index names 1 envs for a batch of 2"):
        policy.act(pair, env_index=[0])


def test_episode_start_must_match_the_batch(trained: Callable[[str], Trained]) -> None:
    """A flag count other than the batch's once reset the wrong slots silently (issue 31)."""
    policy = TTPolicy.load(trained("Pendulum-v1").run_dir, mode="greedy")
    batch = np.zeros((3, 3), np.float32)
    policy.predict(batch)  # every slot has a context now
    before = policy.agent.history.copy()
    for bad, said in (
        (np.array([True, False]), "shape (2,) for a batch of 3; expected shape (3,)"),
        (np.array([True, False, False, True]), "shape (4,) for a batch of 3"),
        (np.array([[True, False, False]]), "shape (1, 3) for a batch of 3"),
        (True, "shape () for a batch of 3"),
        (np.array(["a", "b", "c"]), "must hold booleans (or 0/1)"),
        (np.array([2, 0, 0]), "must hold booleans (or 0/1), got [2, 0, 0]"),
    ):
        with pytest.raises(TTError) as err:
            policy.predict(batch, episode_start=bad)
        assert said in str(err.value) and "\n" not in str(err.value), str(err.value)
        np.testing.assert_array_equal(policy.agent.history, before)  # no slot was reset
    with pytest.raises(TTError, match=r"shape \(2,\) for one observation"):
        policy.predict(batch[0], episode_start=np.array([True, True]))
    policy.predict(batch, episode_start=np.array([1, 0, 0]))  # 0/1 flags are fine
    policy.predict(batch[0], episode_start=True)


def test_env_index_is_bounded(trained: Callable[[str], Trained]) -> None:
    """A stray huge slot would allocate a context per slot up to it (gigabytes)."""
    policy = TTPolicy.load(trained("Pendulum-v1").run_dir, mode="greedy")
    with pytest.raises(TTError, match=r"env_index must be below 1,048,576.*got 1,000,000,000$"):
        policy.act(np.zeros((2, 3), np.float32), env_index=[0, 10**9])
    with pytest.raises(TTError, match=r"env_index must be below"):
        policy.reset(10**12)
