"""The training loss: per-token cross entropy weighted by what the target is.

Targets are window tokens shifted by one; the target at input position i is dimension
(i + 1) % transition_dim, so it is an observation, action, reward or value token. The original TT
weights action targets 5x (they are what the policy needs), rewards and values 1x. Where we
differ: the sum is **divided by the number of real (non-padding) targets**; the original divides
by all tokens, padding included, which shrinks the loss (and the gradient) of batches that hold
episode ends.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PARTS", "target_parts", "weighted_loss"]

PARTS = ("obs", "act", "reward", "value")


def target_parts(
    seq_len: int, observation_dim: int, action_dim: int, goal_dim: int = 0
) -> torch.Tensor:
    """Part id (0 obs, 1 act, 2 reward, 3 value) of the target at each of `seq_len` positions.

    The target at input position i is window token i + 1, of transition dimension
    (i + 1 - goal_dim) % td (goal targets, i + 1 < goal_dim, are masked out of the loss anyway).
    """
    td = observation_dim + action_dim + 2
    dims = (torch.arange(seq_len) + 1 - goal_dim) % td  # (T,)
    parts = torch.zeros(seq_len, dtype=torch.long)
    parts[dims >= observation_dim] = 1
    parts[dims == td - 2] = 2
    parts[dims == td - 1] = 3
    return parts


def weighted_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    parts: torch.Tensor,
    part_weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted, masked CE normalised by the mask sum, and per-part sums for logging.

    logits (B, T, V), targets (B, T) raw bins, mask (B, T) float, parts (T,) ids, part_weights (4,).
    Returns the loss (scalar) and stats (3, 4): rows are CE sum, correct count, token count per part.
    """
    B, T, V = logits.shape
    ce = F.cross_entropy(logits.float().reshape(B * T, V), targets.reshape(B * T), reduction="none")
    ce = ce.view(B, T)  # (B, T)
    weights = part_weights[parts]  # (T,)
    loss = (ce * weights * mask).sum() / mask.sum().clamp_min(1.0)
    with torch.no_grad():
        onehot = F.one_hot(parts, len(PARTS)).to(ce.dtype)  # (T, 4)
        correct = (logits.argmax(-1) == targets).to(ce.dtype) * mask  # (B, T)
        stats = (
            torch.stack([(ce.detach() * mask).sum(0), correct.sum(0), mask.sum(0)]) @ onehot
        )  # (3, 4)
    return loss, stats
