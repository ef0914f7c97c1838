"""Exact incremental decoding: a preallocated key/value cache and a full-recompute twin.

Both decoders hold a batch of token windows that start at a transition boundary and expose the
same three operations the planner needs: `step` (feed one token per row, get next-token logits),
`reorder` (keep/duplicate rows, e.g. beam pruning and expansion) and sliding past the window.

Why the cache is exact:
- It stores *projected* keys and values per layer (not hidden states to re-project), in buffers
  allocated once for the largest batch; a step writes one slot, nothing is concatenated.
- Value tokens are never written to it. No position may attend to a value token (the training
  mask), so leaving them out *is* the value mask; decode-time attention needs no mask at all.
- When the window is full, the oldest transitions are dropped and the kept tokens are re-encoded
  at the positions they now have, so the logits always equal a full forward pass over exactly the
  tokens in the window (`slide="multi"` drops half a window at once, `"single"` one transition).
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from .gpt import TrajectoryGPT

__all__ = ["Decoder", "FullRecomputeDecoder", "KVCacheDecoder", "make_decoder"]

Slide = Literal["multi", "single"]


class Decoder(Protocol):
    batch: int

    def start(self, tokens: torch.Tensor) -> torch.Tensor: ...
    def step(self, tokens: torch.Tensor) -> torch.Tensor: ...
    def reorder(self, index: torch.Tensor) -> None: ...
    def window(self) -> torch.Tensor: ...


class _WindowTokens:
    """The token window of every row, kept so a slide can re-encode it; shared by both decoders."""

    def __init__(self, model: TrajectoryGPT, max_batch: int, slide: Slide, device: torch.device):
        cfg = model.config
        self.model = model
        self.td = cfg.transition_dim
        self.block_size = cfg.block_size
        # Transitions dropped when the window is full: half a window (the model then sees between
        # half a window and a full one, as in training) or a single transition.
        self.drop = max(1, cfg.n_transitions // 2) if slide == "multi" else 1
        self.tokens = torch.zeros(max_batch, cfg.block_size, dtype=torch.long, device=device)
        self.batch = 0
        self.length = 0  # tokens in the window == position of the next token
        self.slides = 0

    def set(self, tokens: torch.Tensor) -> None:
        B, T = tokens.shape
        if self.block_size < T:
            raise ValueError(f"context of {T} tokens exceeds the model's window {self.block_size}")
        self.tokens[:B, :T] = tokens
        self.batch, self.length = B, T

    def append(self, tokens: torch.Tensor) -> None:
        self.tokens[: self.batch, self.length] = tokens
        self.length += 1

    def reorder(self, index: torch.Tensor) -> None:
        self.tokens[: index.shape[0], : self.length] = self.tokens[index, : self.length]
        self.batch = index.shape[0]

    def view(self) -> torch.Tensor:
        return self.tokens[: self.batch, : self.length]

    def slid(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """The window after dropping the oldest transitions, with `new_tokens` (B,) appended."""
        start = self.drop * self.td
        self.slides += 1
        return torch.cat([self.view()[:, start:], new_tokens[:, None]], dim=1)  # (B, T')


class FullRecomputeDecoder:
    """Reference decoder: a full forward pass over the whole window for every token (no cache)."""

    def __init__(self, model: TrajectoryGPT, max_batch: int, slide: Slide = "multi") -> None:
        self.model = model
        self.win = _WindowTokens(model, max_batch, slide, model.pos_emb.device)

    @property
    def batch(self) -> int:
        return self.win.batch

    def start(self, tokens: torch.Tensor) -> torch.Tensor:
        self.win.set(tokens)
        return self.model(self.win.view())[:, -1]  # (B, V)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.win.length == self.win.block_size:
            return self.start(self.win.slid(tokens))
        self.win.append(tokens)
        return self.model(self.win.view())[:, -1]  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        self.win.reorder(index)

    def window(self) -> torch.Tensor:
        return self.win.view()


class KVCacheDecoder:
    """Cached decoder: per layer, projected keys/values of the non-value tokens of each row.

    Shared-prefix attention: `start(prompt, shared=True)` stores the prompt once per group (one
    environment), and later rows of that group (its beams and their expansions) keep only their
    own suffix. Each decode step attends to the group's prefix as one matrix product for all its
    rows, then to the row's suffix; a joint softmax over both keeps it exact. Beam reordering
    copies suffixes only. Rows must stay grouped: new row i belongs to group i // (rows / groups).
    After a slide every row's window differs, so everything is re-encoded into the suffix.
    """

    def __init__(self, model: TrajectoryGPT, max_batch: int, slide: Slide = "multi") -> None:
        cfg = model.config
        self.model = model
        param = model.pos_emb
        self.win = _WindowTokens(model, max_batch, slide, param.device)
        self.head_dim = cfg.n_embd // cfg.n_head
        self.scale = self.head_dim**-0.5
        # Value tokens never enter the cache, so a full window holds block_size - (n - 1) slots.
        capacity = cfg.block_size - (cfg.n_transitions - 1)
        shape = (cfg.n_layer, max_batch, cfg.n_head, capacity, self.head_dim)
        self.prefix_k, self.prefix_v, self.suffix_k, self.suffix_v = (
            torch.zeros(shape, dtype=param.dtype, device=param.device) for _ in range(4)
        )
        self.groups = 0
        self.prefix_len = 0  # cached prefix slots (shared by a group's rows)
        self.suffix_len = 0  # cached suffix slots (per row)
        self.value_dim = cfg.transition_dim - 1

    @property
    def batch(self) -> int:
        return self.win.batch

    def window(self) -> torch.Tensor:
        return self.win.view()

    @torch.inference_mode()
    def start(self, tokens: torch.Tensor, shared: bool = True) -> torch.Tensor:
        """Encode windows (B, T) from position 0; returns the last position's logits (B, V).

        shared=True makes each row a group prefix that later rows of its group attend to.
        """
        model, td = self.model, self.win.td
        self.win.set(tokens)
        B, T = tokens.shape
        keep = (torch.arange(T, device=tokens.device) % td) != self.value_dim  # (T,)
        n_keep = int(keep.sum())
        mask = model.attn_mask[:T, :T]
        dest_k, dest_v = (
            (self.prefix_k, self.prefix_v) if shared else (self.suffix_k, self.suffix_v)
        )

        def store(layer: int):  # type: ignore[no-untyped-def]
            def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                dest_k[layer, :B, :, :n_keep] = k[:, :, keep]
                dest_v[layer, :B, :, :n_keep] = v[:, :, keep]
                return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

            return attend

        x = model.embed(tokens)  # (B, T, C)
        for layer, block in enumerate(model.blocks):
            x = block(x, mask, store(layer))
        self.groups = B
        self.prefix_len, self.suffix_len = (n_keep, 0) if shared else (0, n_keep)
        return model.head_at(x[:, -1], T - 1)  # (B, V)

    def _attend_cached(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, store: bool
    ) -> torch.Tensor:
        """One query per row (B, H, 1, hd) against group prefix + own suffix (+ itself)."""
        B, H, _, hd = q.shape
        S = self.suffix_len
        if store:  # a value token is attended by no one, itself included
            self.suffix_k[layer, :B, :, S] = k[:, :, 0]
            self.suffix_v[layer, :B, :, S] = v[:, :, 0]
            S += 1
        sk = self.suffix_k[layer, :B, :, :S]  # (B, H, S, hd)
        sv = self.suffix_v[layer, :B, :, :S]
        suffix_scores = (q @ sk.transpose(-1, -2)) * self.scale  # (B, H, 1, S)
        P = self.prefix_len
        if P == 0:
            return suffix_scores.softmax(dim=-1) @ sv  # (B, H, 1, hd)
        G = self.groups
        R = B // G
        pk = self.prefix_k[layer, :G, :, :P]  # (G, H, P, hd)
        pv = self.prefix_v[layer, :G, :, :P]
        qg = q.view(G, R, H, hd).transpose(1, 2)  # (G, H, R, hd)
        prefix_scores = (qg @ pk.transpose(-1, -2)) * self.scale  # (G, H, R, P)
        suffix_g = suffix_scores.view(G, R, H, S).transpose(1, 2)  # (G, H, R, S)
        probs = torch.cat([prefix_scores, suffix_g], dim=-1).softmax(dim=-1)  # (G, H, R, P+S)
        y_prefix = probs[..., :P] @ pv  # (G, H, R, hd)
        y_suffix = probs[..., P:].transpose(1, 2).reshape(B, H, 1, S) @ sv  # (B, H, 1, hd)
        return y_prefix.transpose(1, 2).reshape(B, H, 1, hd) + y_suffix

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B,); returns logits (B, V) for the token after it."""
        win = self.win
        if win.length == win.block_size:
            return self.start(win.slid(tokens), shared=False)
        position = win.length
        win.append(tokens)
        store = position % win.td != self.value_dim

        def attend(layer: int):  # type: ignore[no-untyped-def]
            return lambda q, k, v: self._attend_cached(layer, q, k, v, store)

        x = self.model.embed(tokens[:, None], start=position)  # (B, 1, C)
        for layer, block in enumerate(self.model.blocks):
            x = block(x, None, attend(layer))
        self.suffix_len += int(store)
        return self.model.head_at(x[:, 0], position)  # (B, V)

    def reorder(self, index: torch.Tensor) -> None:
        """Rows become `index` (M,) of the current rows, keeping groups (see the class doc)."""
        n, M = self.suffix_len, index.shape[0]
        if self.prefix_len and M % self.groups:
            raise ValueError(f"{M} rows cannot be split evenly over {self.groups} groups")
        if n:
            self.suffix_k[:, :M, :, :n] = self.suffix_k[:, index, :, :n]
            self.suffix_v[:, :M, :, :n] = self.suffix_v[:, index, :, :n]
        self.win.reorder(index)


def make_decoder(
    model: TrajectoryGPT, max_batch: int, slide: Slide = "multi", use_cache: bool = True
) -> KVCacheDecoder | FullRecomputeDecoder:
    cls = KVCacheDecoder if use_cache else FullRecomputeDecoder
    return cls(model, max_batch, slide)
