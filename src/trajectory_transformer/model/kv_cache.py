"""Exact incremental decoding: a preallocated key/value cache and a full-recompute twin.

Both decoders hold a batch of token windows that start at a transition boundary and expose what
the planner needs: `step` (feed one token per row, get next-token logits, sliding past the window
when it is full), `expand` (each row becomes several, for beam expansion) and `reorder`
(keep/duplicate rows, for beam pruning).

Why the cache is exact:
- It stores *projected* keys and values per layer (not hidden states to re-project), in buffers
  allocated once for the largest batch; a step writes one slot, nothing is concatenated.
- Value tokens are never written to it. No position may attend to a value token (the training
  mask), so leaving them out *is* the value mask; decode-time attention needs no mask at all.
- When the window is full, the oldest transitions are dropped and the kept tokens are re-encoded
  at the positions they now have, so the logits always equal a full forward pass over exactly the
  tokens in the window (`slide="multi"` drops half a window at once, `"single"` one transition).
  A goal prefix (goal-conditioned models) is never dropped: it stays at positions 0..G-1.
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
    def expand(self, factor: int) -> None: ...
    def window(self) -> torch.Tensor: ...


class _WindowTokens:
    """The token window of every row, kept so a slide can re-encode it; shared by both decoders."""

    def __init__(self, model: TrajectoryGPT, max_batch: int, slide: Slide, device: torch.device):
        cfg = model.config
        self.td = cfg.transition_dim
        self.goal_dim = cfg.goal_dim
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
        """The window after dropping the oldest transitions, with `new_tokens` (B,) appended; the
        goal prefix (G tokens) stays in front."""
        G = self.goal_dim
        start = G + self.drop * self.td
        self.slides += 1
        window = self.view()
        return torch.cat([window[:, :G], window[:, start:], new_tokens[:, None]], dim=1)  # (B, T')


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

    def expand(self, factor: int) -> None:
        rows = torch.arange(self.batch, device=self.win.tokens.device)
        self.win.reorder(rows.repeat_interleave(factor))

    def window(self) -> torch.Tensor:
        return self.win.view()


def _attend_segments(
    q: torch.Tensor, segments: list[tuple[torch.Tensor, torch.Tensor]], scale: float
) -> torch.Tensor:
    """One query per row (B, H, 1, hd) against key/value segments shared by groups of rows.

    A segment (Gs, H, S, hd) is shared by B / Gs consecutive rows (a whole environment's beams,
    or one beam's expansions), so its scores are one matrix product per group. One softmax over
    all segments' scores keeps the result exactly that of attention over their concatenation.
    """
    B, H, _, hd = q.shape
    scores, shapes = [], []
    for k, _ in segments:
        Gs, S = k.shape[0], k.shape[2]
        r = B // Gs
        if r == 1:
            scores.append((q @ k.transpose(-1, -2)).view(B, H, S))  # (B, H, S)
        else:
            qg = q.view(Gs, r, H, hd).transpose(1, 2)  # (Gs, H, r, hd)
            s = qg @ k.transpose(-1, -2)  # (Gs, H, r, S)
            scores.append(s.transpose(1, 2).reshape(B, H, S))
        shapes.append((Gs, r, S))
    probs = (torch.cat(scores, dim=-1) * scale).softmax(dim=-1)  # (B, H, ΣS)
    out: torch.Tensor | None = None
    offset = 0
    for (_, v), (Gs, r, S) in zip(segments, shapes):
        p = probs[..., offset : offset + S]
        offset += S
        if r == 1:
            y = p.unsqueeze(2) @ v  # (B, H, 1, hd)
        else:
            pg = p.reshape(Gs, r, H, S).transpose(1, 2)  # (Gs, H, r, S)
            y = (pg @ v).transpose(1, 2).reshape(B, H, 1, hd)
        out = y if out is None else out + y
    assert out is not None
    return out


class KVCacheDecoder:
    """Cached decoder: per layer, projected keys/values of the non-value tokens of each row.

    The cache has three segments, so that rows which share history share its keys and values:
    - prefix: the prompt, one copy per group (environment), written by `start(prompt)`;
    - suffix: one copy per beam;
    - child: tokens written after `expand(E)`, one copy per expanded row.
    A decode step attends to all three (see `_attend_segments`). `expand` copies nothing;
    `reorder` (beam pruning) gathers the surviving rows' suffixes once and appends their child
    tokens. Rows must stay grouped: new row i belongs to group i // (rows / groups).
    After a slide every row's window differs, so everything is re-encoded into the suffix.
    """

    def __init__(self, model: TrajectoryGPT, max_batch: int, slide: Slide = "multi") -> None:
        cfg = model.config
        self.model = model
        param = model.pos_emb
        self.win = _WindowTokens(model, max_batch, slide, param.device)
        self._is_value: list[bool] = model.value_mask.tolist()
        head_dim = cfg.n_embd // cfg.n_head
        self.scale = head_dim**-0.5
        # Value tokens never enter the cache, so a full window holds block_size - (n - 1) slots.
        capacity = cfg.block_size - (cfg.n_transitions - 1)
        shape = (cfg.n_layer, max_batch, cfg.n_head, capacity, head_dim)
        child_shape = (cfg.n_layer, max_batch, cfg.n_head, cfg.transition_dim, head_dim)
        dtype, device = param.dtype, param.device
        self.prefix_k, self.prefix_v, self.suffix_k, self.suffix_v, self.spare_k, self.spare_v = (
            torch.zeros(shape, dtype=dtype, device=device) for _ in range(6)
        )
        self.child_k, self.child_v = (
            torch.zeros(child_shape, dtype=dtype, device=device) for _ in range(2)
        )
        self.groups = 0
        self.beams = 0  # rows of the suffix segment
        self.prefix_len = 0  # cached slots per segment
        self.suffix_len = 0
        self.child_len = 0
        self.expanded = False

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
        model = self.model
        self.win.set(tokens)
        B, T = tokens.shape
        keep = ~model.value_mask[:T]  # (T,) value tokens are attended by no one
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
        self.groups, self.beams = B, B
        self.prefix_len, self.suffix_len = (n_keep, 0) if shared else (0, n_keep)
        self.child_len, self.expanded = 0, False
        return model.head_at(x[:, -1], T - 1)  # (B, V)

    def _segments(self, layer: int, B: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        segments = []
        if self.prefix_len:
            P = self.prefix_len
            segments.append(
                (
                    self.prefix_k[layer, : self.groups, :, :P],
                    self.prefix_v[layer, : self.groups, :, :P],
                )
            )
        if self.suffix_len:
            S = self.suffix_len
            segments.append(
                (
                    self.suffix_k[layer, : self.beams, :, :S],
                    self.suffix_v[layer, : self.beams, :, :S],
                )
            )
        if self.child_len:
            C = self.child_len
            segments.append((self.child_k[layer, :B, :, :C], self.child_v[layer, :B, :, :C]))
        return segments

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per row (B,); returns logits (B, V) for the token after it."""
        win = self.win
        if win.length == win.block_size:
            return self.start(win.slid(tokens), shared=False)
        position = win.length
        win.append(tokens)
        store = not self._is_value[position]  # a value token is attended by no one
        if self.expanded:
            dest_k, dest_v, slot = self.child_k, self.child_v, self.child_len
        else:
            dest_k, dest_v, slot = self.suffix_k, self.suffix_v, self.suffix_len

        def attend(layer: int):  # type: ignore[no-untyped-def]
            def hook(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                B = q.shape[0]
                if store:
                    dest_k[layer, :B, :, slot] = k[:, :, 0]
                    dest_v[layer, :B, :, slot] = v[:, :, 0]
                return _attend_segments(q, self._segments(layer, B), self.scale)

            return hook

        if store:  # the new slot is visible to the step itself
            if self.expanded:
                self.child_len += 1
            else:
                self.suffix_len += 1
        x = self.model.embed(tokens[:, None], start=position)  # (B, 1, C)
        for layer, block in enumerate(self.model.blocks):
            x = block(x, None, attend(layer))
        return self.model.head_at(x[:, 0], position)  # (B, V)

    def expand(self, factor: int) -> None:
        """Each row becomes `factor` consecutive rows (repeat_interleave) without copying its cache."""
        rows = torch.arange(self.batch, device=self.win.tokens.device)
        if self.expanded or self.child_len:
            self._merge_children(rows)
        self.beams = self.batch
        self.win.reorder(rows.repeat_interleave(factor))
        self.expanded = factor > 1

    def reorder(self, index: torch.Tensor) -> None:
        """Rows become `index` (M,) of the current rows, keeping groups (see the class doc)."""
        M = index.shape[0]
        if self.prefix_len and M % self.groups:
            raise ValueError(f"{M} rows cannot be split evenly over {self.groups} groups")
        self._merge_children(index)
        self.win.reorder(index)

    def _merge_children(self, index: torch.Tensor) -> None:
        """Suffix rows become suffix[parent of index] followed by child[index]; children end."""
        M, n, c = index.shape[0], self.suffix_len, self.child_len
        parents = index // (self.batch // self.beams)  # expanded rows share their parent's suffix
        if n:
            self.spare_k[:, :M, :, :n] = self.suffix_k[:, parents, :, :n]
            self.spare_v[:, :M, :, :n] = self.suffix_v[:, parents, :, :n]
        if c:
            self.spare_k[:, :M, :, n : n + c] = self.child_k[:, index, :, :c]
            self.spare_v[:, :M, :, n : n + c] = self.child_v[:, index, :, :c]
        if n or c:
            self.suffix_k, self.spare_k = self.spare_k, self.suffix_k
            self.suffix_v, self.spare_v = self.spare_v, self.suffix_v
        self.suffix_len, self.child_len = n + c, 0
        self.beams, self.expanded = M, False


def make_decoder(
    model: TrajectoryGPT, max_batch: int, slide: Slide = "multi", use_cache: bool = True
) -> KVCacheDecoder | FullRecomputeDecoder:
    cls = KVCacheDecoder if use_cache else FullRecomputeDecoder
    return cls(model, max_batch, slide)
