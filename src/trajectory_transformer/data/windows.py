"""Lazy training windows over one token array: index arithmetic, no per-window copies.

Window i starts at transition i (every start in every episode, like the original TT) and covers
`n_transitions` transitions; a window running past its episode's end is zero-padded with loss
mask 0. Goal-conditioned data puts the window's goal tokens (G) in front: they are inputs only,
so their targets get loss mask 0.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import TTError

__all__ = ["TokenWindows"]


class TokenWindows(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Training items (x, y, mask) over one token array; no per-window copies are stored.

    Item i is the window starting at transition i: L = n_transitions * transition_dim tokens,
    x = window[:-1], y = window[1:] (int64, (L-1,)), mask (L-1,) float32 = 1 where y is a real token,
    0 where it is padding past the episode's end. With `goal_tokens` (N, G) the window is
    [goal of window i (G), L transition tokens]: x, y and mask are (G+L-1,) and the mask is 0 where
    y is a goal token.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        episode_starts: np.ndarray,
        n_transitions: int,
        goal_tokens: np.ndarray | None = None,
    ) -> None:
        if tokens.ndim != 2:
            raise TTError(f"tokens must be (N, transition_dim), got {tokens.shape}")
        if n_transitions < 1:
            raise TTError(f"n_transitions must be >= 1, got {n_transitions}")
        starts = np.asarray(episode_starts, np.int64)
        if starts[0] != 0 or starts[-1] != tokens.shape[0] or (np.diff(starts) <= 0).any():
            raise TTError("episode_starts must rise strictly from 0 to the number of transitions")
        self.tokens = tokens
        self.flat = tokens.reshape(-1)  # (N * td,) view
        self.n_transitions = n_transitions
        self.transition_dim = int(tokens.shape[1])
        idx_dtype = np.int32 if tokens.shape[0] < 2**31 - 1 else np.int64
        # (N,) end (exclusive, in transitions) of the episode each window starts in
        self.window_end = np.repeat(starts[1:], np.diff(starts)).astype(idx_dtype)
        self.window_len = n_transitions * self.transition_dim
        if goal_tokens is not None and (goal_tokens.ndim != 2 or len(goal_tokens) != len(tokens)):
            raise TTError(
                f"goal_tokens must be (N, G) with N = {len(tokens)}, got {goal_tokens.shape}"
            )
        self.goal_tokens = goal_tokens

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    def batch(
        self, indices: np.ndarray | list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Vectorised items -> x (B, L-1) int64, y (B, L-1) int64, mask (B, L-1) float32."""
        idx = np.asarray(indices, np.int64).reshape(-1)  # (B,)
        td, length = self.transition_dim, self.window_len
        first = idx * td  # (B,) first token
        stop = self.window_end[idx].astype(np.int64) * td  # (B,) one past the episode's last token
        pos = first[:, None] + np.arange(length)  # (B, L)
        valid = pos < stop[:, None]  # (B, L)
        window = np.where(valid, self.flat[np.minimum(pos, self.flat.shape[0] - 1)], 0)
        if self.goal_tokens is not None:  # (B, G + L): the goal prefix, never a target
            goal = self.goal_tokens[idx]  # (B, G)
            window = np.concatenate([goal.astype(window.dtype), window], axis=1)
            valid = np.concatenate([np.zeros(goal.shape, bool), valid], axis=1)
        window_t = torch.from_numpy(window.astype(np.int64))
        mask = torch.from_numpy(valid[:, 1:].astype(np.float32))
        return window_t[:, :-1], window_t[:, 1:], mask

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        x, y, mask = self.batch([i % len(self)])
        return x[0], y[0], mask[0]

    def __getitems__(
        self, indices: list[int]
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Batched fetch for DataLoader (one vectorised gather instead of B item calls)."""
        x, y, mask = self.batch(indices)
        return list(zip(x, y, mask))
