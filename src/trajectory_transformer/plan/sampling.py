"""Token sampling: temperature, top-k, top-p and the original TT's low-tail cut (`cdf`).

Every filter works on a (B, V) batch at once and sampling takes an explicit torch.Generator, so a
plan is reproducible from the planner's seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TokenSampler", "filter_logits"]


def filter_logits(
    logits: torch.Tensor,
    top_k: int | None = None,
    top_p: float | None = None,
    cdf: float | None = None,
) -> torch.Tensor:
    """Mask (to -inf) the tokens each rule removes from (B, V) logits; the most likely always stays.

    `cdf` is the original TT's filter: drop the least likely tokens that together hold less than
    `cdf` of the probability mass (TT's `filter_cdf`, without its quirk of also dropping the
    rarest token when no tail is below the threshold).
    """
    out = logits
    if cdf is not None and cdf > 0:
        probs = out.softmax(dim=-1)
        sorted_probs, order = probs.sort(dim=-1)  # ascending
        tail = sorted_probs.cumsum(dim=-1) < cdf  # (B, V) the low tail to drop
        tail[:, -1] = False
        drop = torch.zeros_like(tail).scatter_(-1, order, tail)
        out = out.masked_fill(drop, float("-inf"))
    if top_k is not None and top_k < out.shape[-1]:
        kth = out.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = out.sort(dim=-1, descending=True)
        mass_before = sorted_logits.softmax(dim=-1).cumsum(dim=-1) - sorted_logits.softmax(dim=-1)
        remove = mass_before >= top_p  # keep the smallest prefix reaching top_p
        out = out.masked_fill(torch.zeros_like(remove).scatter_(-1, order, remove), float("-inf"))
    return out


@dataclass(frozen=True)
class TokenSampler:
    """How one kind of token (observation, action, reward, value) is drawn."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    cdf: float | None = None
    greedy: bool = False

    def __post_init__(self) -> None:
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be >= 1")

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, V) logits → (B,) sampled tokens."""
        if self.greedy or self.top_k == 1:
            return logits.argmax(dim=-1)
        filtered = filter_logits(logits / self.temperature, self.top_k, self.top_p, self.cdf)
        probs = filtered.softmax(dim=-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)
