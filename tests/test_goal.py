"""Goal-conditioned TT: the goal prefix in the model and the cache, goal windows, the goal-scored
planner (it reaches two different goals from one start), Dict-observation runs end to end, and the
config errors. PointMaze tests skip without gymnasium-robotics (it is in the dev extra)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from test_kv_cache import tiny_model
from trajectory_transformer.cli import main as tt_main
from trajectory_transformer.config import DataConfig, PlanConfig, load_config
from trajectory_transformer.data.episodes import Transitions
from trajectory_transformer.data.goals import goal_layout, window_goals
from trajectory_transformer.data.tokens import tokenize_transitions
from trajectory_transformer.data.windows import TokenWindows
from trajectory_transformer.errors import ConfigError
from trajectory_transformer.evaluation.metrics import wilson_interval
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.model.kv_cache import FullRecomputeDecoder, KVCacheDecoder
from trajectory_transformer.plan.agent import PlannerAgent
from trajectory_transformer.plan.beam import validate_plan_config
from trajectory_transformer.training.loss import target_parts, weighted_loss

needs_robotics = pytest.mark.skipif(
    importlib.util.find_spec("gymnasium_robotics") is None,
    reason="needs gymnasium-robotics for the PointMaze envs (pip install gymnasium-robotics)",
)


def goal_model(goal_dim: int = 2, seed: int = 0, separate_heads: bool = True) -> TrajectoryGPT:
    """test_kv_cache's tiny model with a goal prefix."""
    return tiny_model(separate_heads, seed, goal_dim=goal_dim)


def test_goal_prefix_changes_the_logits_and_is_never_a_value_token() -> None:
    model = goal_model()
    cfg = model.config
    assert cfg.block_size == 2 + 4 * 7 - 1
    assert not model.value_mask[:2].any()
    assert model.value_mask[2 + 6] and model.value_mask[2 + 13]
    tokens = torch.randint(0, 13, (2, cfg.block_size))
    other = tokens.clone()
    other[:, :2] = (other[:, :2] + 3) % 13
    a, b = model(tokens), model(other)
    assert not torch.allclose(a[:, 2:], b[:, 2:])  # every later position sees the goal
    # goal bins are words of their own: bin b of goal dimension 0 is not bin b of observation 0
    assert int(model.token_offsets[0]) == 7 * 13 and int(model.token_offsets[2]) == 0


def test_cached_decode_with_a_goal_prefix_equals_full_forward_after_slides() -> None:
    for slide, separate in (("multi", True), ("single", True), ("multi", False)):
        model = goal_model(seed=1, separate_heads=separate)
        G, td = model.config.goal_dim, model.config.transition_dim
        gen = torch.Generator().manual_seed(3)
        cached = KVCacheDecoder(model, 16, slide)  # type: ignore[arg-type]
        full = FullRecomputeDecoder(model, 16, slide)  # type: ignore[arg-type]
        prompt = torch.randint(0, 13, (2, G + td + 3), generator=gen)
        goal = prompt[:, :G].clone()
        worst = (cached.start(prompt) - full.start(prompt)).abs().max().item()
        for i in range(8 * td):  # far past the 4-transition window
            if i % 5 == 2 and cached.batch * 2 <= 16:
                cached.expand(2)
                full.expand(2)
            elif i % 5 == 0:
                R = cached.batch // 2
                index = torch.arange(2)[:, None] * R + torch.randint(0, R, (2, R), generator=gen)
                cached.reorder(index.flatten())
                full.reorder(index.flatten())
            tokens = torch.randint(0, 13, (cached.batch,), generator=gen)
            a, b = cached.step(tokens), full.step(tokens)
            window = full.window()
            assert torch.equal(cached.window(), window)
            rows = cached.batch // 2
            assert torch.equal(window[:, :G], goal.repeat_interleave(rows, dim=0))  # kept
            reference = model(window)[:, -1]
            worst = max(worst, (a - b).abs().max().item(), (a - reference).abs().max().item())
        assert cached.win.slides >= 2, slide
        assert worst < 1e-5, (slide, separate, worst)


# ------------------------------------------------------------------ goal windows and config errors
DICT_SPACE = gym.spaces.Dict(
    {
        "achieved_goal": gym.spaces.Box(-5, 5, (2,)),
        "desired_goal": gym.spaces.Box(-5, 5, (2,)),
        "observation": gym.spaces.Box(-5, 5, (4,)),
    }
)


def test_goal_layout_takes_the_goal_out_and_finds_the_achieved_position() -> None:
    layout = goal_layout(DICT_SPACE, "desired_goal", "achieved_goal")
    assert layout.goal.tolist() == [2, 3] and layout.state.tolist() == [0, 1, 4, 5, 6, 7]
    assert layout.achieved is not None and layout.achieved.tolist() == [0, 1]
    flat = np.arange(16, dtype=np.float32).reshape(2, 8)
    state, goal = layout.split(flat)
    np.testing.assert_array_equal(goal, flat[:, 2:4])
    np.testing.assert_array_equal(state, flat[:, [0, 1, 4, 5, 6, 7]])


def test_goal_key_errors_name_the_key_and_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        goal_layout(DICT_SPACE, "goal", "achieved_goal")
    message = str(err.value)
    assert "\n" not in message
    assert "data.goal_key='goal'" in message
    assert "['achieved_goal', 'desired_goal', 'observation']" in message
    with pytest.raises(ConfigError, match="needs a Dict observation space"):
        goal_layout(gym.spaces.Box(-1, 1, (3,)), "desired_goal", "achieved_goal")
    with pytest.raises(ConfigError, match=r"data\.achieved_key"):
        DataConfig(goal_key="achieved_goal")
    with pytest.raises(ConfigError, match=r"data\.achieved_key='achieved'.*'achieved_goal': 2"):
        goal_layout(DICT_SPACE, "desired_goal", "achieved")
    assert goal_layout(DICT_SPACE, "desired_goal", None).achieved is None
    with pytest.raises(ConfigError, match=r"plan\.mode=goal needs a goal-conditioned run"):
        validate_plan_config(PlanConfig(mode="goal", context=1), goal_model(goal_dim=0))


def test_window_goals_episode_or_hindsight_final() -> None:
    goals = np.array([[9.0], [9.0], [9.0], [7.0], [7.0]])
    achieved = np.array([[0.0], [1.0], [2.0], [5.0], [6.0]])
    starts = np.array([0, 3, 5])
    np.testing.assert_array_equal(window_goals(goals, achieved, starts, "episode"), goals)
    final = window_goals(goals, achieved, starts, "final")
    np.testing.assert_array_equal(final[:, 0], [2.0, 2.0, 2.0, 6.0, 6.0])


def test_goal_windows_put_the_goal_first_and_mask_it_from_the_loss() -> None:
    tokens = np.arange(2 * 3 * 4).reshape(6, 4).astype(np.uint8)  # 6 transitions, td 4
    goal_tokens = np.array([[50, 51]] * 3 + [[60, 61]] * 3, np.uint8)
    windows = TokenWindows(tokens, np.array([0, 3, 6]), 2, goal_tokens)
    x, _, mask = windows.batch([2, 3])
    assert x.shape == (2, 2 + 8 - 1)
    assert x[0, :2].tolist() == [50, 51] and x[0, 2:6].tolist() == tokens[2].tolist()
    assert x[1, :2].tolist() == [60, 61]
    assert mask[:, 0].tolist() == [0.0, 0.0]  # the target after goal token 0 is goal token 1
    assert mask[0, 1:].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]  # window 2 runs past its episode
    assert mask[1, 1:].tolist() == [1] * 8
    parts = target_parts(x.shape[1], 2, 0, goal_dim=2)
    assert parts[1:].tolist() == [0, 0, 2, 3, 0, 0, 2, 3]  # obs, obs, reward, value, ...
    no_goal = TokenWindows(tokens, np.array([0, 3, 6]), 2)
    assert no_goal.batch([3])[0].shape == (1, 7)


def test_success_rate_interval_is_wilson() -> None:
    low, high = wilson_interval(50, 50)
    assert high == 1.0 and 0.92 < low < 0.93
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and 0.27 < high < 0.28
    low, high = wilson_interval(5, 10)
    assert abs((low + high) / 2 - 0.5) < 1e-12 and 0.23 < low < 0.24


# ------------------------------------------------------------------ the goal changes the plan
# A 1-D corridor: positions 0..8, actions -1 / +1 (the sign moves the agent one cell), and a
# behaviour policy that walks to a goal drawn per episode. The goal is only in the prefix, so a
# model trained on this data can only get the direction from it.
CORRIDOR = gym.spaces.Dict(
    {"desired_goal": gym.spaces.Box(0, 8, (1,)), "observation": gym.spaces.Box(0, 8, (1,))}
)


def _corridor_data(seed: int = 0, blind: bool = False) -> tuple[Transitions, np.ndarray]:
    """`blind`: each episode records a goal drawn independently of where it walks."""
    rng = np.random.default_rng(seed)
    obs, act, goals, lengths = [], [], [], []
    for _ in range(120):
        x, g = rng.choice(9, size=2, replace=False)
        recorded = rng.integers(9) if blind else g
        steps = 0
        while x != g:
            a = 1.0 if g > x else -1.0
            obs.append(x), act.append(a), goals.append(recorded)
            x += int(a)
            steps += 1
        lengths.append(steps)
    n = len(obs)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tr = Transitions(
        observations=np.asarray(obs, np.float32)[:, None],
        actions=np.asarray(act, np.float32)[:, None],
        rewards=-np.ones(n, np.float32),
        values=np.zeros(n, np.float32),
        terminals=np.zeros(n, bool),
        timeouts=np.zeros(n, bool),
        episode_starts=starts,
    )
    return tr, np.asarray(goals, np.float32)[:, None]


def _train_corridor(blind: bool) -> tuple[TrajectoryGPT, Any]:
    transitions, goals = _corridor_data(blind=blind)
    tokens, disc, _ = tokenize_transitions(transitions, 16, "quantile", goals)
    td = transitions.transition_dim
    windows = TokenWindows(tokens[:, :td], transitions.episode_starts, 3, tokens[:, td:])
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=16,
        observation_dim=1,
        action_dim=1,
        n_transitions=3,
        goal_dim=1,
        n_embd=32,
        n_layer=2,
        n_head=2,
        dropout=0.0,
    )
    model = TrajectoryGPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y, mask = windows.batch(np.arange(len(windows)))
    parts = target_parts(x.shape[1], 1, 1, goal_dim=1)
    weights = torch.tensor([1.0, 5.0, 1.0, 1.0])
    for _ in range(120):
        loss, _ = weighted_loss(model(x), y, mask, parts, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), disc


@pytest.fixture(scope="module")
def corridor_model() -> tuple[TrajectoryGPT, Any]:
    """A tiny goal-conditioned model trained for a few seconds on the corridor's data."""
    return _train_corridor(blind=False)


@pytest.fixture(scope="module")
def goal_blind_model() -> tuple[TrajectoryGPT, Any]:
    """The same, trained with goals unrelated to the walks: it knows the corridor, not the way."""
    return _train_corridor(blind=True)


def _walk(agent: PlannerAgent, start: int, goal: int, steps: int = 10) -> list[int]:
    x, path = start, [start]
    agent.reset(np.array([0]))
    for _ in range(steps):
        flat = np.array([[goal, x]], np.float32)  # Dict order: desired_goal, observation
        action = agent.act(np.array([0]), flat)
        agent.record(np.array([0]), action, np.array([-1.0], np.float32))
        x = int(np.clip(x + np.sign(action[0, 0]), 0, 8))
        path.append(x)
        if x == goal:
            break
    return path


@pytest.mark.parametrize("mode", ["greedy", "goal", "likelihood", "beam"])
def test_the_goal_prefix_steers_the_plan_to_two_goals_from_one_start(
    corridor_model: tuple[TrajectoryGPT, Any], mode: str
) -> None:
    model, disc = corridor_model
    layout = goal_layout(CORRIDOR, "desired_goal", "observation")
    plan = PlanConfig(mode=mode, context=1, horizon=3, beam_width=4, expand=2, seed=0)  # type: ignore[arg-type]
    for goal in (0, 8):
        agent = PlannerAgent(model, disc, plan, layout)
        path = _walk(agent, 4, goal)
        assert path[-1] == goal, (mode, goal, path)
        assert len(path) == 5  # four steps, straight there


def test_goal_search_reaches_goals_the_prefix_alone_does_not_show(
    goal_blind_model: tuple[TrajectoryGPT, Any],
) -> None:
    """With a prefix that never told the way, greedy decoding misses goals; the goal search tries
    both actions and keeps the one whose imagined position nears the goal, reaching every one."""
    model, disc = goal_blind_model
    layout = goal_layout(CORRIDOR, "desired_goal", "observation")
    wide = {"cdf_act": None, "k_act": None, "context": 1, "expand": 2, "seed": 0}
    greedy = PlanConfig(mode="greedy", **wide)  # type: ignore[arg-type]
    search = PlanConfig(mode="goal", horizon=2, beam_width=4, **wide)  # type: ignore[arg-type]
    cases = [(start, goal) for start in (2, 4, 6) for goal in (0, 8)]
    greedy_hits = sum(
        _walk(PlannerAgent(model, disc, greedy, layout), s0, g)[-1] == g for s0, g in cases
    )
    assert greedy_hits < len(cases)
    for start, goal in cases:
        path = _walk(PlannerAgent(model, disc, search, layout), start, goal)
        assert path[-1] == goal, (start, goal, path)


def test_goal_progress_is_the_discounted_distance_of_imagined_positions() -> None:
    """-sum_k γ^(k-1) ||p_k - goal|| over observations 1..steps (observation 0 is the real one)."""
    from trajectory_transformer.plan.beam import BeamPlanner

    cfg = GPTConfig(vocab_size=4, observation_dim=2, action_dim=1, n_transitions=3, goal_dim=2,
                    n_embd=8, n_layer=1, n_head=1)  # fmt: skip
    centers = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 10.0, 20.0, 30.0]])  # (K=2, V=4)
    planner = BeamPlanner(
        TrajectoryGPT(cfg), PlanConfig(mode="goal", horizon=2, discount=0.5, context=1),  # type: ignore[arg-type]
        torch.zeros(4), torch.zeros(4), achieved_dims=[0, 1], achieved_centers=centers,
    )  # fmt: skip
    plan = torch.zeros(1, 3, cfg.transition_dim, dtype=torch.long)  # (M, H + 1, td)
    plan[0, 0, :2] = torch.tensor([3, 3])  # the real observation: never scored
    plan[0, 1, :2] = torch.tensor([1, 2])  # p_1 = (1, 20)
    plan[0, 2, :2] = torch.tensor([2, 1])  # p_2 = (2, 10)
    goal = torch.tensor([[1.0, 10.0]])
    assert planner.goal_progress(plan, 1, goal).item() == pytest.approx(-10.0)
    assert planner.goal_progress(plan, 2, goal).item() == pytest.approx(-10.0 - 0.5 * 1.0)
    assert planner.goal_progress(plan, 0, goal).item() == 0.0


# ------------------------------------------------------------------ PointMaze end to end
@needs_robotics
def test_pointmaze_dict_data_trains_with_the_goal_and_the_policy_reaches_for_it(
    minari_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """recipe (Dict observations) -> goal tokens -> tt train -> TTPolicy and tt eval in PointMaze."""
    from trajectory_transformer.data.tokens import prepare_tokens
    from trajectory_transformer.policy import TTPolicy
    from trajectory_transformer.runs import load_run

    monkeypatch.setenv("TT_CACHE_DIR", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert (
            tt_main(
                [
                    "collect",
                    "--recipe",
                    "pointmaze-umaze-quick",
                    "--no-progress",
                    "collect.recipe.transitions=600",
                    "collect.recipe.eval_episodes=1",
                ]
            )
            == 0
        )
    preset = load_config("pointmaze-umaze-cpu")
    assert preset.data.goal_key == "desired_goal" and preset.plan.mode == "goal"
    assert preset.stop_on_success
    data = prepare_tokens(preset.data, tmp_path / "cache")
    assert data.observation_dim == 6 and data.goal_dim == 2  # the goal left the observation
    assert data.discretizer.n_dims == data.transition_dim + 2
    # episode goals: every window's goal is its episode's stored desired_goal
    import minari

    ds = minari.load_dataset(preset.data.dataset)
    stored = np.concatenate([ep.observations["desired_goal"][:-1] for ep in ds.iterate_episodes()])
    assert data.goal_tokens is not None
    decoded = data.discretizer.decode(
        data.goal_tokens, dims=[data.transition_dim, data.transition_dim + 1]
    )
    assert np.abs(decoded - stored).max() < 0.2

    overrides = [
        "--preset",
        "pointmaze-umaze-cpu",
        "data.n_bins=16",
        "data.n_transitions=4",
        "model.n_embd=16",
        "model.n_layer=1",
        "model.n_head=2",
        "train.batch_size=8",
        "train.max_steps=4",
        "train.device=cpu",
        "train.progress=false",
        "plan.context=2",
        "plan.horizon=2",
        "plan.beam_width=2",
    ]
    run_dir = tmp_path / "run"
    assert tt_main(["train", "--run-dir", str(run_dir), *overrides]) == 0
    loaded = load_run(run_dir)
    assert loaded.gpt_config.goal_dim == 2 and loaded.gpt_config.observation_dim == 6

    policy = TTPolicy.load(run_dir, device="cpu", seed=0)
    assert policy.agent.goal is not None and policy.plan.mode == "goal"
    env = gym.make("PointMaze_UMaze-v3", max_episode_steps=4)
    assert policy.observation_space == env.observation_space
    obs, _ = env.reset(seed=0)
    policy.reset()
    for _ in range(4):
        action = policy.act(obs)  # the Dict observation, goal included
        assert env.action_space.contains(action), action
        obs, reward, terminated, truncated, _ = env.step(action)
        policy.observe_reward(reward)
        if terminated or truncated:
            break
    goal_bins = policy.agent.pending_goal[0]
    goal = obs["desired_goal"][None].astype(np.float32)  # as the policy flattens it
    expected = policy.discretizer.encode(goal, dims=policy.agent.goal_dims)[0]
    np.testing.assert_array_equal(goal_bins, expected)  # the env's own goal is the prefix

    # tt eval: the behaviour agent and the planner, with success rate and steps to goal
    out = tmp_path / "eval"
    args = ["eval.episodes=2", "eval.n_envs=2", "eval.progress=false", "eval.max_episode_steps=60"]
    # the maze controller needs up to ~150 steps (test_maze), so it gets room to succeed
    behaviour = [*args[:-1], "eval.max_episode_steps=300"]
    assert (
        tt_main(["eval", str(run_dir), "--out", str(out), "--agent", "behaviour", *behaviour]) == 0
    )
    import json

    summary = json.loads((out / "eval_behaviour.json").read_text())
    assert summary["stop_on_success"] is True
    steps = np.array(summary["success_steps"])
    lengths = np.array(summary["lengths"])
    assert (steps > 0).all(), steps  # both episodes reach the goal ...
    assert (lengths == steps).all(), (lengths, steps)  # ... and end at their first success
    assert tt_main(["eval", str(run_dir), "--out", str(out), *args]) == 0
    summary = json.loads((out / "eval.json").read_text())
    assert "success_rate" in summary and summary["config"]["plan"]["mode"] == "goal"
