"""GPT-style learning rate: linear warmup, then cosine decay to a floor, counted in tokens.

Counting tokens rather than steps (as minGPT and the original TT do) keeps the schedule's shape
when the batch size changes. Tokens are non-padding *target* tokens (the loss mask's sum), so
windows padded at episode ends advance the schedule only by what they teach.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["TokenSchedule"]


class TokenSchedule:
    """Learning rate as a function of tokens seen; `advance(n)` counts a batch and returns its lr.

    lr(t) = lr * t / warmup                                     for t < warmup
          = lr * max(min_ratio, 0.5 * (1 + cos(pi * progress))) after, progress = (t - warmup) / (final - warmup)
    """

    def __init__(
        self, lr: float, warmup_tokens: float, final_tokens: float, min_ratio: float = 0.1
    ) -> None:
        if final_tokens <= 0 or warmup_tokens < 0:
            raise ValueError("final_tokens must be > 0 and warmup_tokens >= 0")
        self.base_lr = lr
        self.warmup_tokens = float(warmup_tokens)
        self.final_tokens = float(max(final_tokens, warmup_tokens + 1))
        self.min_ratio = min_ratio
        self.tokens = 0

    def lr_at(self, tokens: float) -> float:
        if tokens < self.warmup_tokens:
            # never exactly 0: the first step would be wasted
            return self.base_lr * min(1.0, max(tokens, 1.0) / self.warmup_tokens)
        progress = (tokens - self.warmup_tokens) / (self.final_tokens - self.warmup_tokens)
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return self.base_lr * max(self.min_ratio, cosine)

    @property
    def lr(self) -> float:
        return self.lr_at(self.tokens)

    def advance(self, n_tokens: int) -> float:
        """Count a batch's tokens; the returned lr is the one to use for that batch (minGPT order)."""
        self.tokens += int(n_tokens)
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "warmup_tokens": self.warmup_tokens,
            "final_tokens": self.final_tokens,
            "min_ratio": self.min_ratio,
            "tokens": self.tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = float(state["base_lr"])
        self.warmup_tokens = float(state["warmup_tokens"])
        self.final_tokens = float(state["final_tokens"])
        self.min_ratio = float(state["min_ratio"])
        self.tokens = int(state["tokens"])
