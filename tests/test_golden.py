"""Golden numbers: a fixed tiny model's logits and the planner's plan for a fixed seed.

minGPT's idea: pin exact outputs so a refactor cannot change numerics silently. The numbers were
recorded from this code on CPU in fp32 (torch 2.13); if a deliberate change moves them, record the
new ones in the same commit and say why in its message.
"""

from __future__ import annotations

import pytest
import torch

from trajectory_transformer.config import PlanConfig
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.plan.beam import BeamPlanner

LOGITS_SUM = 1.8649022579193115
LOGITS_FIRST = [
    [-0.11328746378421783, 0.002424103207886219, -0.15506713092327118, -0.14016345143318176],
    [-0.09449250251054764, 0.09624925255775452, -0.02538713440299034, 0.023065488785505295],
    [0.16299353539943695, 0.09378485381603241, 0.020881902426481247, 0.06393924355506897],
]
LOGITS_LAST = [
    0.031627532094717026, 0.12699106335639954, 0.06916912645101547, 0.004802162293344736,
    0.018924856558442116, -0.04353497549891472, -0.13848993182182312, 0.02400217391550541,
    -0.04374395310878754, -0.019826648756861687, -0.041436661034822464, 0.0325043648481369,
]  # fmt: skip
PLAN_TOKENS = [
    [[11, 11, 5, 9, 10, 9], [8, 5, 8, 10, 2, 8], [9, 0, 5, 9, 10, 9]],
    [[3, 4, 1, 6, 5, 9], [8, 5, 7, 5, 11, 9], [8, 5, 8, 3, 0, 10]],
]
PLAN_RETURNS = [2.511692523956299, 2.494596004486084]


@pytest.fixture(scope="module")
def model_and_tokens() -> tuple[TrajectoryGPT, torch.Tensor]:
    torch.manual_seed(1234)
    cfg = GPTConfig(
        vocab_size=12, observation_dim=2, action_dim=2, n_transitions=3,
        n_embd=16, n_layer=2, n_head=2, dropout=0.0,
    )  # fmt: skip
    model = TrajectoryGPT(cfg).eval()
    tokens = torch.randint(0, 12, (2, cfg.block_size), generator=torch.Generator().manual_seed(7))
    return model, tokens


def test_logits_are_pinned(model_and_tokens: tuple[TrajectoryGPT, torch.Tensor]) -> None:
    model, tokens = model_and_tokens
    with torch.no_grad():
        logits = model(tokens)  # (2, 17, 12)
    assert logits.shape == (2, 17, 12)
    assert float(logits.sum()) == pytest.approx(LOGITS_SUM, abs=1e-4)
    torch.testing.assert_close(logits[0, :3, :4], torch.tensor(LOGITS_FIRST), atol=1e-5, rtol=0)
    torch.testing.assert_close(logits[1, -1], torch.tensor(LOGITS_LAST), atol=1e-5, rtol=0)


def test_beam_plan_is_pinned(model_and_tokens: tuple[TrajectoryGPT, torch.Tensor]) -> None:
    model, tokens = model_and_tokens
    cfg = PlanConfig(beam_width=4, expand=2, horizon=3, context=1, seed=3, cdf_act=0.6)
    planner = BeamPlanner(model, cfg, torch.linspace(-1, 1, 12), torch.linspace(0, 5, 12))
    td, obs_dim = model.config.transition_dim, model.config.observation_dim
    result = planner.plan(tokens[:, : td + obs_dim])  # one past transition + the observation
    assert result.tokens.tolist() == PLAN_TOKENS
    torch.testing.assert_close(
        result.predicted_return, torch.tensor(PLAN_RETURNS), atol=1e-5, rtol=0
    )
