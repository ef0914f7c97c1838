"""The beam planner must find the high-return plan that imitation (greedy) misses.

A hand-made 'trap' task (tokens are the states themselves): from the start state 0, action 0
pays 1 now and leads to a dead state (reward 0 forever); action 1 pays 0 now and leads to a good
state paying 2 per step. The behaviour data takes the trap 80% of the time, so the most likely
action is the trap; the values in the data say otherwise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trajectory_transformer.config import PlanConfig
from trajectory_transformer.errors import ConfigError
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.plan.beam import BeamPlanner, validate_plan_config

STEPS = 4  # episode length == window


def trap_episodes(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, STEPS, 4) token rows [obs, action, reward, value] with V_t = sum of rewards from t."""
    out = np.zeros((n, STEPS, 4), np.int64)
    for e in range(n):
        trap = rng.random() < 0.8
        obs, rewards, actions = [0], [], []
        for t in range(STEPS):
            action = int(rng.integers(0, 2)) if t else (0 if trap else 1)
            state = obs[-1]
            reward = (1 if action == 0 else 0) if state == 0 else (2 if state == 2 else 0)
            rewards.append(reward)
            actions.append(action)
            obs.append(state if state else (1 if action == 0 else 2))
        values = np.cumsum(rewards[::-1])[::-1]
        out[e] = np.stack([obs[:STEPS], actions, rewards, values], axis=1)
    return out


@pytest.fixture(scope="module")
def trap_model() -> TrajectoryGPT:
    torch.manual_seed(0)
    cfg = GPTConfig(
        vocab_size=8,
        observation_dim=1,
        action_dim=1,
        n_transitions=STEPS,
        n_embd=32,
        n_layer=2,
        n_head=2,
        dropout=0.0,
    )
    model = TrajectoryGPT(cfg)
    data = torch.as_tensor(trap_episodes(400, np.random.default_rng(0)).reshape(400, -1))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        batch = data[torch.randint(0, 400, (64,))]
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 8), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def planner(model: TrajectoryGPT, **kwargs: object) -> BeamPlanner:
    cfg = PlanConfig(context=0, discount=1.0, cdf_act=None, **kwargs)  # type: ignore[arg-type]
    centers = torch.arange(8, dtype=torch.float32)  # token b means the number b
    return BeamPlanner(model, cfg, centers, centers)


def test_imitation_takes_the_trap(trap_model: TrajectoryGPT) -> None:
    greedy = planner(trap_model, mode="greedy")
    assert greedy.act(torch.zeros(1, 1, dtype=torch.long)).item() == 0


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_search_avoids_the_trap(trap_model: TrajectoryGPT, use_cache: bool) -> None:
    beam = planner(trap_model, beam_width=8, expand=4, horizon=3, use_cache=use_cache)
    result = beam.plan(torch.zeros(3, 1, dtype=torch.long))  # three envs in one batch
    assert result.tokens.shape == (3, 3, 4)
    assert (result.tokens[:, 0, 1] == 1).all()  # the first action avoids the trap
    assert (result.tokens[:, 1:, 0] == 2).all()  # and the model imagines the good state
    assert (result.predicted_return > 5).all()  # 0 + 2 + 2 + 2 = 6
    # without search the model expects much less: its 32 sampled first actions are mostly the
    # trap (value 1), some the good one (value 6), so the search's believed gain is large
    assert result.sampled_return is not None
    assert ((result.sampled_return > 0.5) & (result.sampled_return < 4.5)).all()
    assert (result.predicted_return - result.sampled_return > 1.5).all()


def test_cached_and_uncached_plans_agree(trap_model: TrajectoryGPT) -> None:
    prompt = torch.zeros(2, 1, dtype=torch.long)
    a = planner(trap_model, beam_width=4, expand=2, horizon=6, use_cache=True, seed=5).plan(prompt)
    b = planner(trap_model, beam_width=4, expand=2, horizon=6, use_cache=False, seed=5).plan(prompt)
    assert torch.equal(a.tokens, b.tokens)
    assert torch.allclose(a.predicted_return, b.predicted_return, atol=1e-4)


def test_bad_settings_fail_before_work(trap_model: TrajectoryGPT) -> None:
    with pytest.raises(ConfigError, match=r"plan\.context"):
        validate_plan_config(PlanConfig(context=STEPS), trap_model)
    with pytest.raises(ConfigError, match="vocabulary"):
        validate_plan_config(PlanConfig(context=0, k_act=9), trap_model)
    with pytest.raises(ConfigError, match="beam_width"):
        PlanConfig(beam_width=0)


def test_absorbing_terminations_end_the_imagined_return(trap_model: TrajectoryGPT) -> None:
    """plan.absorbing: no terminal bin changes nothing; every bin terminal leaves only r_0."""
    cfg = PlanConfig(
        context=0, discount=1.0, cdf_act=None, k_act=2, beam_width=8, expand=4, horizon=3
    )  # actions: the two the data holds
    centers = torch.arange(8, dtype=torch.float32)
    prompt = torch.zeros(2, 1, dtype=torch.long)
    plain = BeamPlanner(trap_model, cfg, centers, centers).plan(prompt)
    assert (plain.tokens[:, 0, 1] == 1).all()  # without absorption: the good branch
    absorbing = replace(cfg, absorbing=True)
    never = BeamPlanner(trap_model, absorbing, centers, centers, terminal_bins=torch.zeros(8))
    same = never.plan(prompt)
    assert torch.equal(same.tokens, plain.tokens)
    assert torch.equal(same.predicted_return, plain.predicted_return)
    # every step "terminates": only the first reward counts, so the trap's immediate reward of 1
    # beats the good branch's 0 (+ 2 + 2 that never come)
    always = BeamPlanner(trap_model, absorbing, centers, centers, terminal_bins=torch.ones(8))
    greedy_result = always.plan(prompt)
    assert (greedy_result.tokens[:, 0, 1] == 0).all()
    assert ((greedy_result.predicted_return > 0.5) & (greedy_result.predicted_return < 1.5)).all()
    with pytest.raises(ConfigError, match=r"plan\.absorbing=true needs"):
        BeamPlanner(trap_model, absorbing, centers, centers)
