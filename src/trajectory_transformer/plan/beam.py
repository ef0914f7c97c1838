"""TT beam search over imagined transitions, batched over environments, beams and expansions.

One call plans for G environments whose prompts have the same length. All G x beam_width x expand
candidates are one model batch; the only Python loop is over generated tokens. Each transition:
1. every beam is expanded `expand` times and action tokens are sampled (with TT's `cdf_act` cut),
2. the reward token's distribution gives the expected reward, then the value token's distribution
   the expected reward-to-go V_t from step t on (expectations over bin centers, as in the original),
3. each candidate is scored by sum_{i<t} γ^i r_i + γ^t V_t and the best `beam_width` per environment
   survive (the cache rows are reordered, not recomputed),
4. the next observation is sampled (greedily by default, `k_obs=1`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import PlanConfig
from ..errors import ConfigError
from ..model.gpt import TrajectoryGPT
from ..model.kv_cache import FullRecomputeDecoder, KVCacheDecoder, make_decoder
from .sampling import TokenSampler

__all__ = ["BeamPlanner", "PlanResult", "validate_plan_config"]


@dataclass
class PlanResult:
    tokens: torch.Tensor
    """(G, horizon, transition_dim) the best imagined transitions per environment."""
    predicted_return: torch.Tensor
    """(G,) the winning candidate's score (discounted rewards + terminal value)."""


def validate_plan_config(cfg: PlanConfig, model: TrajectoryGPT) -> None:
    """Reject plan.* settings that make no sense for this model before any work starts.

    The only checks that need the model; everything else is checked in `config.PlanConfig`.
    """
    n = model.config.n_transitions
    if cfg.context > n - 1:
        raise ConfigError(
            f"plan.context={cfg.context} leaves no room for the current observation in the "
            f"model's window of {n} transitions; use plan.context<={n - 1}"
        )
    for name, value in (
        ("obs", cfg.k_obs),
        ("act", cfg.k_act),
        ("reward", cfg.k_reward),
        ("value", cfg.k_value),
    ):
        if value is not None and value > model.config.vocab_size:
            raise ConfigError(
                f"plan.k_{name}={value} exceeds the vocabulary ({model.config.vocab_size} bins)"
            )


class BeamPlanner:
    """Plans with a trained model; `reward_centers`/`value_centers` (V,) are the bins' values."""

    def __init__(
        self,
        model: TrajectoryGPT,
        cfg: PlanConfig,
        reward_centers: torch.Tensor,
        value_centers: torch.Tensor,
    ) -> None:
        validate_plan_config(cfg, model)
        self.model = model.eval()
        self.cfg = cfg
        device = model.pos_emb.device
        self.reward_centers = reward_centers.to(device, model.pos_emb.dtype)
        self.value_centers = value_centers.to(device, model.pos_emb.dtype)
        greedy = cfg.mode == "greedy"
        t = cfg.temperature
        self.sample_obs = TokenSampler(t, cfg.k_obs, cfg.p_obs, cfg.cdf_obs, greedy)
        self.sample_act = TokenSampler(t, cfg.k_act, cfg.p_act, cfg.cdf_act, greedy)
        self.sample_reward = TokenSampler(t, cfg.k_reward, greedy=greedy)
        self.sample_value = TokenSampler(t, cfg.k_value, greedy=greedy)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed)
        self.discounts = cfg.discount ** torch.arange(cfg.horizon + 1, device=device)
        self._decoder: KVCacheDecoder | FullRecomputeDecoder | None = None

    def decoder(self, rows: int) -> KVCacheDecoder | FullRecomputeDecoder:
        """One preallocated decoder, grown only when a larger batch arrives."""
        if self._decoder is None or self._decoder.win.tokens.shape[0] < rows:
            self._decoder = make_decoder(self.model, rows, self.cfg.slide, self.cfg.use_cache)
        return self._decoder

    @torch.inference_mode()
    def act(self, prompt: torch.Tensor) -> torch.Tensor:
        """No search: sample (or take greedily) the next action tokens. (G, Lp) → (G, act_dim)."""
        cfg = self.model.config
        dec = self.decoder(prompt.shape[0])
        logits = dec.start(prompt.to(self.model.pos_emb.device))
        actions = []
        for j in range(cfg.action_dim):
            token = self.sample_act(logits, self.generator)
            actions.append(token)
            if j < cfg.action_dim - 1:
                logits = dec.step(token)
        return torch.stack(actions, dim=1)

    @torch.inference_mode()
    def plan(self, prompt: torch.Tensor) -> PlanResult:
        """Beam search from prompts (G, Lp): whole past transitions then the current observation."""
        mcfg, cfg = self.model.config, self.cfg
        device = self.model.pos_emb.device
        G = prompt.shape[0]
        W, E, H = cfg.beam_width, cfg.expand, cfg.horizon
        O, A, td = mcfg.observation_dim, mcfg.action_dim, mcfg.transition_dim
        dec = self.decoder(G * W * E)
        gen = self.generator

        logits = dec.start(prompt.to(device))  # (G, V) predicts the first action token
        rows = torch.arange(G, device=device).repeat_interleave(W)  # (G*W,)
        dec.reorder(rows)
        logits = logits[rows]
        plan = torch.zeros(G * W, H, td, dtype=torch.long, device=device)  # imagined tokens
        # the first imagined transition starts from the real observation
        plan[:, 0, :O] = prompt[rows, -O:].to(device)
        rewards = torch.zeros(G * W, H, device=device)  # expected rewards per imagined step
        env_offset = torch.arange(G, device=device)[:, None] * (W * E)  # (G, 1)
        scores = torch.zeros(G, W, device=device)

        for t in range(H):
            # 1. expand every beam E times (the cache shares each beam's keys with its children)
            rows = torch.arange(G * W, device=device).repeat_interleave(E)  # (M,) M = G*W*E
            dec.expand(E)
            logits, plan, rewards = logits[rows], plan[rows], rewards[rows]
            for j in range(A):
                token = self.sample_act(logits, gen)  # (M,)
                plan[:, t, O + j] = token
                logits = dec.step(token)
            # 2. expected reward, then expected value (raw model distributions, as in TT)
            rewards[:, t] = logits.softmax(dim=-1) @ self.reward_centers  # (M,)
            token = self.sample_reward(logits, gen)
            plan[:, t, O + A] = token
            logits = dec.step(token)
            value = logits.softmax(dim=-1) @ self.value_centers  # (M,)
            # 3. score and keep the best W per environment
            # V_t is the reward-to-go from step t, r_t included (data.episodes), so the candidate's
            # return is the rewards before t plus the discounted V_t (TT's r_0..r_t + γ^(t+1) V with
            # TT's value defined from t+1 on).
            score = rewards[:, :t] @ self.discounts[:t] + self.discounts[t] * value
            top = score.view(G, W * E).topk(W, dim=-1)  # (G, W)
            scores = top.values
            rows = (top.indices + env_offset).flatten()  # (G*W,)
            plan, rewards, logits = plan[rows], rewards[rows], logits[rows]
            plan[:, t, O + A + 1] = self.sample_value(logits, gen)
            if t == H - 1:
                break
            dec.reorder(rows)
            # 4. imagine the next observation
            logits = dec.step(plan[:, t, O + A + 1])
            for j in range(O):
                token = self.sample_obs(logits, gen)
                plan[:, t + 1, j] = token
                logits = dec.step(token)

        best = scores.argmax(dim=-1)  # (G,)
        winners = torch.arange(G, device=device) * W + best
        return PlanResult(tokens=plan[winners], predicted_return=scores.max(dim=-1).values)
