"""plan.mode=likelihood (TT's imitation setting): the beam keeps the most likely imagined tokens.

A hand-made 'Markov' TrajectoryGPT (next-token logits depend only on the current token) makes the
most likely sequence known: from observation 0 the actions are
  X (token 0): p 0.55, then a vague reward (its argmax has p 0.3)   step prob 0.165, value 0
  Z (token 1): p 0.30, then a clear reward (its argmax has p 0.7)   step prob 0.210, value 1
  Y (token 2): p 0.15, then a certain reward (p ~1)                 step prob 0.150, value 3
Every value token leads back to observation 0, so the most likely two-step sequence is Z, Z and the
highest-return one is Y, Y. Scoring only the actions would pick X, only the last token (the reward)
Y, and the filtered sampling distribution (reward tokens drawn with k=1 get log 1 = 0) X again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces

from trajectory_transformer.config import PlanConfig, load_config
from trajectory_transformer.errors import ConfigError
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.plan.beam import BeamPlanner
from trajectory_transformer.policy import TTPolicy

V = 4  # bins; the token b of every dimension means the number b
OBS, ACT, REWARD, VALUE = range(4)  # dimensions of a transition (obs_dim = act_dim = 1)
TINY = 1e-6


def probs(*p: float) -> list[float]:
    return [x / sum(p) for x in p]


def certain(b: int) -> list[float]:
    return probs(*(1.0 if i == b else TINY for i in range(V)))


# (dimension, token) -> distribution of the next token; unlisted tokens predict uniformly
NEXT = {
    (OBS, 0): probs(0.55, 0.30, 0.15, TINY),
    (ACT, 0): probs(0.30, 0.25, 0.25, 0.20),
    (ACT, 1): probs(0.10, 0.70, 0.10, 0.10),
    (ACT, 2): certain(3),
    **{(REWARD, b): certain(b) for b in range(V)},  # value token = reward token
    **{(VALUE, b): certain(0) for b in range(V)},  # always back to observation 0
}
LIKELY = [[0, 1, 1, 1], [0, 1, 1, 1]]  # Z, Z
HIGH_RETURN = [[0, 2, 3, 3], [0, 2, 3, 3]]  # Y, Y


def log_p(dim: int, token: int, nxt: int) -> float:
    return float(np.log(NEXT.get((dim, token), [1 / V] * V)[nxt]))


def markov_model() -> TrajectoryGPT:
    """NEXT as a TrajectoryGPT: blocks output zero, positions embed to zero, and token id i embeds
    to 10 (e_2i - e_2i+1), which the final LayerNorm maps to 4 (e_2i - e_2i+1) (C = 32), so the
    head's rows 2i hold id i's next-token logits / 4."""
    n_ids = V * 4
    cfg = GPTConfig(
        vocab_size=V, observation_dim=1, action_dim=1, n_transitions=3,
        n_embd=2 * n_ids, n_layer=1, n_head=2, dropout=0.0,
    )  # fmt: skip
    model = TrajectoryGPT(cfg)
    with torch.no_grad():
        for p in model.blocks.parameters():
            p.zero_()
        model.pos_emb.zero_()
        model.tok_emb.weight.zero_()
        model.head_weight.zero_()
        model.head_bias.zero_()
        for dim in range(4):
            for token in range(V):
                i = dim * V + token  # the embedding id (gpt.py's token offsets)
                model.tok_emb.weight[i, 2 * i] = 10.0
                model.tok_emb.weight[i, 2 * i + 1] = -10.0
                logits = torch.tensor(NEXT.get((dim, token), [1 / V] * V)).log()
                model.head_weight[:, 2 * i] = logits / 4.0  # every per-dimension head alike
    return model.eval()


def planner(model: TrajectoryGPT, mode: str, **kwargs: Any) -> BeamPlanner:
    # expand 16 x beam 4 = 64 action samples per step: every action above is drawn (seeded)
    settings: dict[str, Any] = dict(context=0, horizon=2, beam_width=4, expand=16, discount=1.0)
    settings.update(cdf_act=None, seed=0, **kwargs)
    centers = torch.arange(V, dtype=torch.float32)
    return BeamPlanner(model, PlanConfig(mode=mode, **settings), centers, centers)  # type: ignore[arg-type]


@pytest.mark.parametrize("use_cache", [True, False])
def test_likelihood_keeps_the_most_likely_sequence_and_beam_the_best_return(
    use_cache: bool,
) -> None:
    model = markov_model()
    prompt = torch.zeros(2, 1, dtype=torch.long)  # two envs, both at observation 0
    likely = planner(model, "likelihood", use_cache=use_cache).plan(prompt)
    best = planner(model, "beam", use_cache=use_cache).plan(prompt)
    assert likely.tokens.tolist() == [LIKELY, LIKELY]
    assert best.tokens.tolist() == [HIGH_RETURN, HIGH_RETURN]

    # the reported score is the sum over every generated token, by hand from NEXT
    step = log_p(OBS, 0, 1) + log_p(ACT, 1, 1) + log_p(REWARD, 1, 1)  # a | o, r | a, v | r
    by_hand = 2 * step + log_p(VALUE, 1, 0)  # two steps and the imagined observation o_1 | v_0
    assert likely.log_likelihood is not None
    torch.testing.assert_close(likely.log_likelihood, torch.full((2,), by_hand), atol=1e-4, rtol=0)
    # predicted_return stays the chosen plan's return: E[r_0 | Z] + E[V_1 | r_1 = 1] = 1.2 + 1
    torch.testing.assert_close(likely.predicted_return, torch.full((2,), 2.2), atol=1e-4, rtol=0)
    assert best.log_likelihood is None  # beam mode does no per-token work for it


@pytest.mark.parametrize("use_cache", [True, False])
def test_reported_log_likelihood_matches_a_full_forward_pass(use_cache: bool) -> None:
    """Of the model's own distribution: sampling here is tempered and filtered, scoring is not."""
    torch.manual_seed(1234)
    gpt = GPTConfig(
        vocab_size=12, observation_dim=2, action_dim=2, n_transitions=3,
        n_embd=16, n_layer=2, n_head=2, dropout=0.0,
    )  # fmt: skip
    model = TrajectoryGPT(gpt).eval()
    td, O = model.config.transition_dim, model.config.observation_dim
    cfg = PlanConfig(
        mode="likelihood", beam_width=4, expand=3, horizon=2, context=1, seed=3,
        temperature=0.7, cdf_act=0.6, k_obs=None, k_reward=None, k_value=None, use_cache=use_cache,
    )  # fmt: skip
    tokens = torch.randint(0, 12, (3, td + O), generator=torch.Generator().manual_seed(7))
    result = BeamPlanner(model, cfg, torch.linspace(-1, 1, 12), torch.linspace(0, 5, 12)).plan(
        tokens
    )
    # the whole sequence fits the window (1 + 2 transitions), so nothing slides
    sequence = torch.cat([tokens[:, :td], result.tokens.flatten(1)], dim=1)  # (3, 3 * td)
    assert torch.equal(sequence[:, td : td + O], tokens[:, td:])  # the real observation
    with torch.no_grad():
        log_probs = model(sequence[:, :-1]).log_softmax(dim=-1)  # (3, 3 * td - 1, V)
    per_token = log_probs.gather(-1, sequence[:, 1:, None]).squeeze(-1)  # (3, 3 * td - 1)
    generated = per_token[:, td + O - 1 :].sum(dim=-1)  # every token after the real observation
    assert result.log_likelihood is not None
    torch.testing.assert_close(result.log_likelihood, generated, atol=1e-5, rtol=0)


class IntegerBins:
    """value v <-> token round(v)."""

    def encode(self, x: np.ndarray, dims: object = None) -> np.ndarray:
        return np.rint(np.asarray(x)).astype(np.int64)

    def decode(self, tokens: np.ndarray, dims: object = None) -> np.ndarray:
        return np.asarray(tokens, dtype=np.float32)


@pytest.mark.parametrize(
    ("mode", "action", "planned_return"), [("likelihood", 1.0, 2.2), ("beam", 2.0, 6.0)]
)
def test_policy_acts_by_the_mode(mode: str, action: float, planned_return: float) -> None:
    """plan.mode flows through TTPolicy and the planner agent (likelihood searches, not samples)."""
    box = spaces.Box(0.0, 3.0, (1,), np.float32)
    settings: dict[str, Any] = dict(context=0, horizon=2, beam_width=4, expand=16, discount=1.0)
    plan = PlanConfig(mode=mode, cdf_act=None, **settings)  # type: ignore[arg-type]
    bins: Any = IntegerBins()
    policy = TTPolicy(markov_model(), bins, box, box, plan)
    assert policy.act(np.zeros(1, np.float32)).tolist() == [action]
    # a search ran (the no-search modes report no plan): Z, Z returns 1.2 + 1, Y, Y 3 + 3
    slots, predicted, _sampled = policy.agent.last_plans
    assert slots.tolist() == [0] and predicted[0] == pytest.approx(planned_return, abs=1e-4)


def test_config_accepts_likelihood_and_names_the_modes() -> None:
    assert load_config(None, ["plan.mode=likelihood"]).plan.mode == "likelihood"
    # an override is checked against the Literal by the loader, a direct value by PlanConfig
    with pytest.raises(ConfigError, match=r"'plan\.mode' must be one of .*'likelihood'.*"):
        load_config(None, ["plan.mode=imitation"])
    with pytest.raises(
        ConfigError, match=r"'plan\.mode' use beam, likelihood, goal, sample or greedy"
    ):
        PlanConfig(mode="Likelihood")  # type: ignore[arg-type]
