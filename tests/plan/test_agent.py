"""The planner agent builds prompts from each slot's own recent transitions and reuses plans."""

from __future__ import annotations

import numpy as np
import torch

from trajectory_transformer.config import PlanConfig
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.plan.agent import PlannerAgent
from trajectory_transformer.plan.beam import PlanResult


class IntegerBins:
    """A stand-in discretizer: value v ↔ token round(v), so prompts can be read directly."""

    def encode(self, x: np.ndarray, dims: object = None) -> np.ndarray:
        return np.rint(np.asarray(x)).astype(np.int64)

    def decode(self, tokens: np.ndarray, dims: object = None) -> np.ndarray:
        return np.asarray(tokens, dtype=np.float32)


def make_agent(**plan: object) -> tuple[PlannerAgent, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = TrajectoryGPT(
        GPTConfig(
            vocab_size=50,
            observation_dim=2,
            action_dim=1,
            n_transitions=4,
            n_embd=16,
            n_layer=1,
            n_head=2,
        )
    )
    agent = PlannerAgent(model, IntegerBins(), PlanConfig(context=2, horizon=3, **plan))  # type: ignore[arg-type]
    prompts: list[torch.Tensor] = []

    def fake_plan(prompt: torch.Tensor) -> PlanResult:
        prompts.append(prompt.clone())
        G = prompt.shape[0]
        tokens = torch.zeros(G, 3, 5, dtype=torch.long)
        tokens[:, :, 2] = torch.tensor([7, 8, 9])  # the plan's actions for steps 0, 1, 2
        return PlanResult(tokens=tokens, predicted_return=torch.zeros(G))

    agent.planner.plan = fake_plan  # type: ignore[method-assign]
    return agent, prompts


def step(agent: PlannerAgent, slots: list[int], obs: float) -> np.ndarray:
    s = np.array(slots)
    actions = agent.act(s, np.full((len(s), 2), obs, dtype=np.float32))
    agent.record(s, actions, np.full(len(s), 1.0))
    return actions


def test_prompt_holds_the_last_context_transitions_newest_last() -> None:
    agent, prompts = make_agent()
    agent.reset(np.array([0]))
    for obs in (10, 11, 12, 13):
        assert step(agent, [0], obs)[0, 0] == 7
    lengths = [p.shape[1] for p in prompts]
    assert lengths == [2, 7, 12, 12]  # obs only, then 1 and 2 past transitions (5 tokens each)
    # the last prompt: transitions at obs 11 and 12 (obs, obs, action 7, reward 1, value 0), obs 13
    assert prompts[-1][0].tolist() == [11, 11, 7, 1, 0, 12, 12, 7, 1, 0, 13, 13]


def test_slots_with_different_histories_plan_in_separate_batches() -> None:
    agent, prompts = make_agent()
    agent.reset(np.array([0, 1, 2]))
    step(agent, [0, 1, 2], 20)
    agent.reset(np.array([1]))  # a new episode starts in slot 1
    prompts.clear()
    step(agent, [0, 1, 2], 21)
    assert sorted(p.shape for p in prompts) == [(1, 2), (2, 7)]


def test_plan_every_reuses_the_stored_plan_in_order() -> None:
    agent, prompts = make_agent(plan_every=3)
    agent.reset(np.array([0]))
    actions = [step(agent, [0], 30 + t)[0, 0] for t in range(5)]
    assert actions == [7, 8, 9, 7, 8]
    assert len(prompts) == 2
