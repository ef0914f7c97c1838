"""TT beam search over imagined transitions, batched over environments, beams and expansions.

One call plans for G environments whose prompts have the same length. All G x beam_width x expand
candidates are one model batch; the only Python loop is over generated tokens. Each transition:
1. every beam is expanded `expand` times and action tokens are sampled (with TT's `cdf_act` cut),
2. the reward token's distribution gives the expected reward, then the value token's distribution
   the expected reward-to-go V_t from step t on (expectations over bin centers, as in the original),
3. each candidate is scored by sum_{i<t} γ^i r_i + γ^t V_t and the best `beam_width` per environment
   survive (the cache rows are reordered, not recomputed),
4. the next observation is sampled (greedily by default, `k_obs=1`).

`plan.mode=likelihood` is the paper's imitation setting (Janner et al. 2021, Sec. 3.2): the same
search, but step 3 ranks candidates by the model's log-probability of the tokens generated so far
(`LikelihoodScore`) instead of their predicted return (`ReturnScore`). The scorer is the only thing
the mode changes; the loop, the cache and the sampling are shared.

`plan.mode=goal` (goal-conditioned models, whose prompts start with the goal prefix) keeps the same
loop and ranks by goal progress instead of predicted return: an imagined observation k steps ahead
decodes to an achieved position p_k (the observation dimensions of `data.achieved_key`, bin
centers), and a candidate's "return" is -sum_k γ^(k-1) ||p_k - goal|| over its imagined
observations, so the search prefers plans that get close soonest and stay there (a plan that
reaches the goal scores ~0 from then on, which is where the search stops improving). Every
candidate imagines the observation after its action before the pruning (siblings differ only in
that action), so goal mode decodes observations E times as often as the RL beam, and one more
observation at the end: the final choice also sees the last action's effect. The paper conditions
on the goal and plans with likelihood for goal reaching (Sec. 3.3); scoring by distance is our deviation, because it uses what the model predicts about positions
rather than hoping the likeliest plan heads for the goal (plan.mode=likelihood still does that,
with the goal prefix, and greedy is goal-conditioned behaviour cloning).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import torch

from ..config import PlanConfig
from ..errors import ConfigError
from ..model.gpt import TrajectoryGPT
from ..model.kv_cache import FullRecomputeDecoder, KVCacheDecoder, make_decoder
from .memory import check_plan_memory, plan_rows
from .sampling import TokenSampler

__all__ = [
    "BeamPlanner",
    "CandidateScore",
    "LikelihoodScore",
    "PlanResult",
    "ReturnScore",
    "fit_plan_config",
    "validate_plan_config",
]


@dataclass
class PlanResult:
    tokens: torch.Tensor
    """(G, horizon, transition_dim) the best imagined transitions per environment."""
    predicted_return: torch.Tensor
    """(G,) the winning candidate's predicted return (discounted rewards + terminal value), in
    every mode but goal; in `likelihood` mode it is reported, not what the winner was chosen by. In
    `goal` mode: the winner's goal progress, -sum_k γ^(k-1) ||p_k - goal|| (see the module doc)."""
    sampled_return: torch.Tensor | None = None
    """(G,) the mean predicted return (r_0 + γ·V_1, i.e. the value V_0 of the first imagined step)
    over the first step's W·E sampled actions: what the model expects from an action drawn without
    search. `predicted_return` minus this is the gain the search believes it finds (the plan
    audit reports it). None in goal mode."""
    log_likelihood: torch.Tensor | None = None
    """(G,) `likelihood` mode only: the winner's log-probability under the model (natural log, sum
    over every generated token, see `LikelihoodScore`), which is what chose it. None otherwise."""
    first_actions: torch.Tensor | None = None
    """(G, W·E, act_dim) the first step's sampled action tokens, and `first_returns` (G, W·E)
    their predicted returns V_0 (before any pruning): what `tt bench oracle` checks against the
    returns those actions really lead to. None in goal mode."""
    first_returns: torch.Tensor | None = None


class CandidateScore(Protocol):
    """What a beam candidate is ranked by; chosen once per planner by `plan.mode`."""

    tracks_likelihood: bool
    """Whether `add` accumulates anything (and `PlanResult.log_likelihood` is reported)."""

    def add(self, total: torch.Tensor, logits: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        """(M,) running total after generating `token` (M,) from next-token `logits` (M, V)."""
        ...

    def rank(self, returns: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        """(M,) the key the beam keeps the top of, from predicted returns and the running total."""
        ...


class ReturnScore:
    """TT's RL objective: rank by predicted return. Needs no per-token work, so `add` is free."""

    tracks_likelihood = False

    def add(self, total: torch.Tensor, logits: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        return total

    def rank(self, returns: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        return returns


class LikelihoodScore:
    """TT's imitation objective: rank by log P(generated tokens | prompt) under the model.

    Which tokens count: every token the search generates (actions, reward, value and the imagined
    next observations); the real current observation comes from the prompt and is not scored. The
    paper's imitation objective is the log-likelihood of the whole sequence, and here the sequence
    the model defines carries reward and value tokens too (the paper's imitation experiments model
    states and actions only). Leaving them out would not give the likelihood of the states and
    actions (that needs summing over every reward/value token, which a beam cannot do); it would
    score tokens conditioned on reward/value choices whose own probability is ignored, letting the
    search steer later tokens through unlikely rewards or values.

    Which distribution: log_softmax of the raw logits (temperature 1, no top-k / top-p / cdf
    filter), i.e. the distribution the model defines. The filtered, tempered distribution only
    proposes candidates; scoring with it would make the objective depend on search settings and
    would give log 1 = 0 to every token drawn with k=1 (observations, rewards and values by default).

    Deviation from the paper's Algorithm 1, which prunes after every token over all V continuations
    of every beam: candidates here are the RL beam's sampled expansions, pruned once per transition,
    so both modes share one loop, one cache and one batch layout (the original TT's RL beam already
    differs from Algorithm 1 this way). The search is thus approximate in the same way for both
    objectives; widen `beam_width`/`expand` or loosen the `k_*` filters to explore more.
    """

    tracks_likelihood = True

    def add(self, total: torch.Tensor, logits: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        log_probs = logits.float().log_softmax(dim=-1)  # (M, V), fp32 whatever the model's dtype
        return total + log_probs.gather(-1, token[:, None]).squeeze(-1)  # (M,)

    def rank(self, returns: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        return total


DEFAULT_CONTEXT = 5
"""The original TT's context (config/offline.py), used by plan.context=null where it fits."""


def fit_plan_config(cfg: PlanConfig, model: TrajectoryGPT) -> PlanConfig:
    """`cfg` with plan.context=null resolved for this model: 5 past transitions, or as many as its
    window leaves beside the current observation (n_transitions - 1). A set value stays as given
    (and `validate_plan_config` refuses one that does not fit)."""
    if cfg.context is not None:
        return cfg
    return dataclasses.replace(cfg, context=min(DEFAULT_CONTEXT, model.config.n_transitions - 1))


def validate_plan_config(cfg: PlanConfig, model: TrajectoryGPT) -> None:
    """Reject plan.* settings that make no sense for this model before any work starts.

    The only checks that need the model; everything else is checked in `config.PlanConfig`.
    """
    n = model.config.n_transitions
    cfg = fit_plan_config(cfg, model)
    assert cfg.context is not None  # resolved above
    if cfg.mode == "goal" and model.config.goal_dim == 0:
        raise ConfigError(
            "plan.mode=goal needs a goal-conditioned run (trained with data.goal_key); this model "
            "has no goal prefix: use beam, likelihood, sample or greedy"
        )
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
    """Plans with a trained model; `reward_centers`/`value_centers` (V,) are the bins' values.

    `achieved_dims` (K,) observation dimensions of the achieved position and `achieved_centers`
    (K, V) their bins' values: needed by `plan.mode=goal` only.
    """

    def __init__(
        self,
        model: TrajectoryGPT,
        cfg: PlanConfig,
        reward_centers: torch.Tensor,
        value_centers: torch.Tensor,
        achieved_dims: list[int] | None = None,
        achieved_centers: torch.Tensor | None = None,
        terminal_bins: torch.Tensor | None = None,
    ) -> None:
        """`terminal_bins` (V,) 1.0 for the reward bins that mark a termination (plan.absorbing)."""
        cfg = fit_plan_config(cfg, model)
        validate_plan_config(cfg, model)
        if cfg.absorbing and terminal_bins is None:
            raise ConfigError(
                "plan.absorbing=true needs the reward bins of a termination: a run trained with "
                "data.termination_penalty < 0"
            )
        if cfg.mode == "goal" and (achieved_dims is None or achieved_centers is None):
            raise ConfigError(
                "plan.mode=goal needs the achieved position in the observation (data.achieved_key "
                "naming a Dict key as long as the goal)"
            )
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
        self.score: CandidateScore = (
            LikelihoodScore() if cfg.mode == "likelihood" else ReturnScore()
        )
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(cfg.seed)
        self.discounts = cfg.gamma ** torch.arange(cfg.horizon + 1, device=device)
        self.achieved_dims = achieved_dims
        self.achieved_centers = (
            None if achieved_centers is None else achieved_centers.to(device, torch.float32)
        )
        self._decoder: KVCacheDecoder | FullRecomputeDecoder | None = None
        self.terminal_bins = (
            terminal_bins.to(device, model.pos_emb.dtype)
            if cfg.absorbing and terminal_bins is not None
            else None
        )  # (V,)

    def decoder(self, rows: int) -> KVCacheDecoder | FullRecomputeDecoder:
        """One preallocated decoder, grown only when a larger batch arrives."""
        if self._decoder is None or self._decoder.win.tokens.shape[0] < rows:
            param = self.model.pos_emb  # estimated before allocating (plan/memory.py)
            n_envs = max(1, rows // max(1, plan_rows(self.cfg, 1)))
            check_plan_memory(
                self.model.config, self.cfg, n_envs, param.device, param.element_size()
            )
            self._decoder = make_decoder(self.model, rows, self.cfg.slide, self.cfg.use_cache)
        return self._decoder

    @torch.inference_mode()
    def act(self, prompt: torch.Tensor) -> torch.Tensor:
        """No search: sample (or take greedily) the next action tokens. (G, Lp) → (G, act_dim)."""
        cfg = self.model.config
        dec = self.decoder(prompt.shape[0])
        logits = dec.start(prompt.to(self.model.pos_emb.device))  # (G, V)
        actions = []
        for j in range(cfg.action_dim):
            token = self.sample_act(logits, self.generator)
            actions.append(token)
            if j < cfg.action_dim - 1:
                logits = dec.step(token)
        return torch.stack(actions, dim=1)

    def goal_progress(self, plan: torch.Tensor, steps: int, goal: torch.Tensor) -> torch.Tensor:
        """-sum_{k=1..steps} γ^(k-1) ||p_k - goal|| (M,) of imagined transitions plan (M, ≥steps+1,
        td), where p_k is the achieved position decoded from observation k; goal (M, K)."""
        assert self.achieved_dims is not None and self.achieved_centers is not None
        if steps == 0:
            return torch.zeros(plan.shape[0], device=plan.device)
        K = len(self.achieved_dims)
        bins = plan[:, 1 : steps + 1, self.achieved_dims]  # (M, steps, K)
        dims = torch.arange(K, device=plan.device)
        achieved = self.achieved_centers[dims, bins]  # (M, steps, K)
        distance = (achieved - goal[:, None, :]).norm(dim=-1)  # (M, steps)
        return -(distance @ self.discounts[:steps])  # (M,)

    def _imagine_observation(
        self,
        dec: KVCacheDecoder | FullRecomputeDecoder,
        logits: torch.Tensor,
        plan: torch.Tensor,
        total: torch.Tensor,
        step: int,
        last: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample imagined observation `step` into plan (M, ·, td) from logits (M, V) predicting
        its first token; (logits predicting the next action token, or the last observation token's
        if `last`, and the running score total (M,))."""
        O = self.model.config.observation_dim
        for j in range(O):
            token = self.sample_obs(logits, self.generator)  # (M,)
            plan[:, step, j] = token
            total = self.score.add(total, logits, token)
            if not (last and j == O - 1):  # the plan's last token needs no prediction after it
                logits = dec.step(token)
        return logits, total

    @torch.inference_mode()
    def plan(self, prompt: torch.Tensor, goal: torch.Tensor | None = None) -> PlanResult:
        """Beam search from prompts (G, Lp): [goal prefix,] whole past transitions, then the
        current observation. `goal` (G, K): the goal's position, used by plan.mode=goal only (a
        goal model planning in another mode has its goal in the prompt's prefix already)."""
        mcfg, cfg = self.model.config, self.cfg
        device = self.model.pos_emb.device
        G = prompt.shape[0]
        W, E, H = cfg.beam_width, cfg.expand, cfg.horizon
        O, A, td = mcfg.observation_dim, mcfg.action_dim, mcfg.transition_dim
        dec = self.decoder(G * W * E)
        gen = self.generator
        by_goal = cfg.mode == "goal"
        goal_f = None
        if by_goal:
            if goal is None or goal.shape[0] != G:
                raise ValueError("plan.mode=goal: plan() needs the goal position of every prompt")
            goal_f = goal.to(device, torch.float32).repeat_interleave(W * E, dim=0)  # (M, K)

        prompt = prompt.to(device)  # the agent builds prompts on the host
        logits = dec.start(prompt)  # (G, V) predicts the first action token
        rows = torch.arange(G, device=device).repeat_interleave(W)  # (G*W,)
        dec.reorder(rows)
        logits = logits[rows]
        # imagined tokens; goal mode imagines one more observation (after the last action)
        plan = torch.zeros(G * W, H + by_goal, td, dtype=torch.long, device=device)
        # the first imagined transition starts from the real observation
        plan[:, 0, :O] = prompt[rows, -O:]
        rewards = torch.zeros(G * W, H, device=device)  # expected rewards per imagined step
        # P(no imagined termination before step t) (plan.absorbing; stays 1 otherwise)
        alive = torch.ones(G * W, H + 1, device=device)
        env_offset = torch.arange(G, device=device)[:, None] * (W * E)  # (G, 1)
        returns = torch.zeros(G * W, device=device)  # the survivors' predicted returns
        total = torch.zeros(G * W, device=device)  # the survivors' running score (self.score.add)
        score = self.score
        sampled: torch.Tensor | None = None  # (G,) see PlanResult.sampled_return
        first_actions: torch.Tensor | None = None  # (G, W·E, A) see PlanResult.first_actions
        first_returns: torch.Tensor | None = None  # (G, W·E)

        for t in range(H):
            # 1. expand every beam E times (the cache shares each beam's keys with its children)
            rows = torch.arange(G * W, device=device).repeat_interleave(E)  # (M,) M = G*W*E
            dec.expand(E)
            logits, plan, rewards, total = logits[rows], plan[rows], rewards[rows], total[rows]
            alive = alive[rows]
            for j in range(A):
                token = self.sample_act(logits, gen)  # (M,)
                plan[:, t, O + j] = token
                total = score.add(total, logits, token)
                logits = dec.step(token)
            # 2. expected reward, then expected value (raw model distributions, as in TT)
            reward_probs = logits.softmax(dim=-1)  # (M, V)
            rewards[:, t] = reward_probs @ self.reward_centers  # (M,)
            if self.terminal_bins is not None:  # the step ends the episode with this probability
                alive[:, t + 1] = alive[:, t] * (1 - reward_probs @ self.terminal_bins)
            token = self.sample_reward(logits, gen)
            plan[:, t, O + A] = token
            total = score.add(total, logits, token)
            logits = dec.step(token)
            if goal_f is not None:
                # Goal mode: the children of one beam differ only in action t, whose effect shows
                # in observation t + 1 alone, so every candidate imagines it BEFORE the pruning
                # (E times the observation decoding of the RL beam); ranking by observations
                # 1..t would tie all siblings and shrink the beam to W / E.
                token = self.sample_value(logits, gen)
                plan[:, t, O + A + 1] = token
                total = score.add(total, logits, token)
                logits = dec.step(token)
                logits, total = self._imagine_observation(
                    dec, logits, plan, total, t + 1, t == H - 1
                )
                returns = self.goal_progress(plan, t + 1, goal_f)  # (M,)
            else:
                value = logits.softmax(dim=-1) @ self.value_centers  # (M,)
                # 3. score and keep the best W per environment
                # V_t is the reward-to-go from step t, r_t included (data.episodes), so the
                # candidate's return is the rewards before t plus the discounted V_t (TT's
                # r_0..r_t + γ^(t+1) V with TT's value defined from t+1 on).
                returns = (rewards[:, :t] * alive[:, :t]) @ self.discounts[:t] + self.discounts[
                    t
                ] * alive[:, t] * value  # (M,) alive ≡ 1 unless plan.absorbing
                if t == 0:  # the W beams start as copies: M = G·W·E sampled first actions
                    first_returns = returns.view(G, W * E)  # (G, W·E)
                    first_actions = plan[:, 0, O : O + A].view(G, W * E, A)
                    sampled = first_returns.mean(dim=-1)  # (G,)
            # likelihood mode: the value token of step t is drawn only after this pruning (below),
            # so it counts from the next ranking on, and in the final choice after the loop
            top = score.rank(returns, total).view(G, W * E).topk(W, dim=-1)  # (G, W)
            rows = (top.indices + env_offset).flatten()  # (G*W,)
            plan, rewards, logits = plan[rows], rewards[rows], logits[rows]
            returns, total, alive = returns[rows], total[rows], alive[rows]
            if goal_f is not None:  # its value token and next observation are drawn already
                if t < H - 1:
                    dec.reorder(rows)
                continue
            token = self.sample_value(logits, gen)
            plan[:, t, O + A + 1] = token
            total = score.add(total, logits, token)
            if t == H - 1:
                break
            dec.reorder(rows)
            # 4. imagine the next observation
            logits, total = self._imagine_observation(
                dec, dec.step(token), plan, total, t + 1, last=False
            )

        best = score.rank(returns, total).view(G, W).argmax(dim=-1)  # (G,)
        winners = torch.arange(G, device=device) * W + best
        return PlanResult(
            tokens=plan[winners, :H],
            predicted_return=returns[winners],
            sampled_return=sampled,
            log_likelihood=total[winners] if score.tracks_likelihood else None,
            first_actions=first_actions,
            first_returns=first_returns,
        )
