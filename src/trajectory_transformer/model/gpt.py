"""The trajectory GPT: a decoder-only transformer over discretized transitions.

A transition of `transition_dim` = obs + act + reward + value dimensions becomes `transition_dim`
tokens. Every sequence starts at a transition boundary, so the token at position p describes
dimension `p % transition_dim`. Reads top to bottom: attention → MLP → block → config → model.

Three details from the original TT (Janner et al., 2021) that are easy to miss:
- Token offsets: dimension d's bin b is embedded as id `d * vocab_size + b`, so bin 7 of the
  velocity and bin 7 of the reward are different words. Targets stay raw bins (0..vocab_size-1).
- Value mask: no position attends to a value token (the reward-to-go is a training target, not an
  input; at planning time the real value is unknown and a placeholder is fed). A value token's
  own output still predicts the next observation's first token through its residual stream.
- Per-dimension heads (`separate_heads`): the output at position p, which predicts the token at
  p + 1, goes through head `p % transition_dim`, one weight matrix per dimension applied as one
  einsum over the transition axis (no Python loop over dimensions).

Goal prefix (`goal_dim` G > 0, goal-conditioned runs; docs/architecture.md "Goals"): every sequence
starts with G goal tokens, then transitions. Goal dimension g is embedded with its own offset
`(transition_dim + g) * vocab_size`, so goal words are neither observation nor action words;
position p >= G is transition dimension `(p - G) % transition_dim`, and the last goal token goes
through head `transition_dim - 1` (it predicts the first observation token, as a value token
does). Nothing predicts goal tokens (they are inputs, left out of the loss), every position
attends to them, and with G = 0 every formula is the one above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..config import ModelConfig
from ..errors import ConfigError

__all__ = ["AttendFn", "GPTConfig", "TrajectoryGPT", "value_attention_mask", "value_positions"]

AttendFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""Attention given q, k, v (B, H, T, hd) → (B, H, T, hd); a KV cache supplies its own."""


def value_positions(
    seq_len: int, transition_dim: int, goal_dim: int = 0, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean (T,): True at value tokens (transition dimension td - 1; never in the goal prefix)."""
    idx = torch.arange(seq_len, device=device) - goal_dim  # (T,) position within the transitions
    return (idx >= 0) & (idx % transition_dim == transition_dim - 1)


def value_attention_mask(
    seq_len: int, transition_dim: int, device: torch.device | None = None, goal_dim: int = 0
) -> torch.Tensor:
    """Boolean (T, T) mask, True where query i may attend to key j: causal and j not a value token."""
    idx = torch.arange(seq_len, device=device)
    causal = idx[:, None] >= idx[None, :]  # (T, T)
    not_value = ~value_positions(seq_len, transition_dim, goal_dim, device)  # (T,)
    return causal & not_value[None, :]


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = attn_dropout
        self.resid_drop = nn.Dropout(dropout)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) → q, k, v each (B, H, T, C/H)."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)  # 3 x (B, T, C)
        shape = (B, T, self.n_head, C // self.n_head)
        return (
            q.view(shape).transpose(1, 2),
            k.view(shape).transpose(1, 2),
            v.view(shape).transpose(1, 2),
        )

    def merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        """(B, H, T, hd) → projected (B, T, C)."""
        B, H, T, hd = y.shape
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, H * hd)))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, attend: AttendFn | None = None
    ) -> torch.Tensor:
        """`attend` lets a cache store the new keys/values and attend over its own."""
        q, k, v = self.split_heads(x)  # (B, H, T, hd)
        if attend is not None:
            return self.merge_heads(attend(q, k, v))
        dropout = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.merge_heads(y)  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float) -> None:
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd)
        self.proj = nn.Linear(4 * n_embd, n_embd)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, attn_dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, attn_dropout)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, attend: AttendFn | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask, attend)
        return x + self.mlp(self.ln2(x))


@dataclass(kw_only=True)
class GPTConfig(ModelConfig):
    """Everything needed to rebuild the model; stored as model.json in every run folder.

    The size knobs (n_embd, n_layer, n_head, dropouts, separate_heads) are `config.ModelConfig`'s,
    declared and validated once there; this adds what the data decides.
    """

    vocab_size: int
    """Bins per dimension."""
    observation_dim: int
    action_dim: int
    n_transitions: int = 10
    """Transitions per window (the model's context), from data.n_transitions."""
    goal_dim: int = 0
    """Goal tokens ahead of every sequence (0: not goal-conditioned), from data.goal_key."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vocab_size", "observation_dim", "action_dim", "n_transitions"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model config '{name}' must be >= 1, got {getattr(self, name)}")
        if self.goal_dim < 0:
            raise ConfigError(f"model config 'goal_dim' must be >= 0, got {self.goal_dim}")

    @classmethod
    def for_data(
        cls,
        model: ModelConfig,
        *,
        vocab_size: int,
        observation_dim: int,
        action_dim: int,
        n_transitions: int,
        goal_dim: int = 0,
    ) -> GPTConfig:
        """The model's architecture from the run's `model` section and the dataset's sizes."""
        return cls(
            **asdict(model),
            vocab_size=vocab_size,
            observation_dim=observation_dim,
            action_dim=action_dim,
            n_transitions=n_transitions,
            goal_dim=goal_dim,
        )

    @property
    def transition_dim(self) -> int:
        return self.observation_dim + self.action_dim + 2  # + reward + value

    @property
    def token_dims(self) -> int:
        """Token kinds with their own bins and embeddings: the transition's, then the goal's."""
        return self.transition_dim + self.goal_dim

    @property
    def block_size(self) -> int:
        """Longest input: the goal prefix and a window of n_transitions, minus its last token (it
        is only a target)."""
        return self.goal_dim + self.n_transitions * self.transition_dim - 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrajectoryGPT(nn.Module):
    attn_mask: torch.Tensor
    token_offsets: torch.Tensor
    value_mask: torch.Tensor

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        td, C, G = config.transition_dim, config.n_embd, config.goal_dim
        self.tok_emb = nn.Embedding(config.vocab_size * config.token_dims, C)
        self.pos_emb = nn.Parameter(torch.zeros(1, config.block_size, C))
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(C, config.n_head, config.dropout, config.attn_dropout)
            for _ in range(config.n_layer)
        )
        self.ln_f = nn.LayerNorm(C)
        n_heads = td if config.separate_heads else 1
        self.head_weight = nn.Parameter(torch.empty(n_heads, C, config.vocab_size))  # (D, C, V)
        self.head_bias = nn.Parameter(torch.zeros(n_heads, config.vocab_size))  # (D, V)
        self.activation_checkpointing = False
        self.register_buffer(
            "attn_mask",
            value_attention_mask(config.block_size, td, goal_dim=G),
            persistent=False,
        )
        # (block_size,) embedding offset of each position: goal dimension g -> td + g, transition
        # dimension d -> d (times vocab_size)
        pos = torch.arange(config.block_size)
        kinds = torch.where(pos < G, td + pos, (pos - G) % td)
        self.register_buffer("token_offsets", kinds * config.vocab_size, persistent=False)
        self.register_buffer(
            "value_mask", value_positions(config.block_size, td, G), persistent=False
        )
        self.apply(self._init_weights)
        nn.init.normal_(self.head_weight, mean=0.0, std=0.02)
        # GPT-2: scale residual projections by 1/sqrt(2 * n_layer) so depth does not blow up the stream
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # -- pieces shared by the full forward pass and the cached decoder ---------------------------
    def embed(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Raw bins (B, T) at positions start..start+T-1 → embeddings (B, T, C)."""
        T = tokens.shape[1]
        ids = tokens.long() + self.token_offsets[start : start + T]  # (B, T)
        return self.drop(self.tok_emb(ids) + self.pos_emb[:, start : start + T])  # (B, T, C)

    def head(self, h: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Final hidden states (B, T, C) at positions start.. → logits (B, T, V) for the next token."""
        B, T, C = h.shape
        h = self.ln_f(h)
        if not self.config.separate_heads:
            return h @ self.head_weight[0] + self.head_bias[0]  # (B, T, V)
        td = self.config.transition_dim
        # Pad to whole transitions so one einsum applies head d to every position of dimension d
        # (the goal prefix shifts the transitions by goal_dim; its last token uses head td - 1).
        lead = (start - self.config.goal_dim) % td
        total = lead + T
        padded_len = -(-total // td) * td
        h = F.pad(h, (0, 0, lead, padded_len - total))  # (B, P, C)
        h = h.view(B, padded_len // td, td, C)  # (B, N, D, C)
        logits = (
            torch.einsum("bndc,dcv->bndv", h, self.head_weight) + self.head_bias
        )  # (B, N, D, V)
        return logits.reshape(B, padded_len, -1)[:, lead:total]  # (B, T, V)

    def head_at(self, h: torch.Tensor, position: int) -> torch.Tensor:
        """Hidden states (B, C) of one position → logits (B, V)."""
        h = self.ln_f(h)
        cfg = self.config
        d = (position - cfg.goal_dim) % cfg.transition_dim if cfg.separate_heads else 0
        return torch.addmm(self.head_bias[d], h, self.head_weight[d])  # (B, V)

    # -- training / reference forward ------------------------------------------------------------
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Raw bins (B, T), starting with the goal prefix (if any) then a transition boundary →
        next-token logits (B, T, V)."""
        T = tokens.shape[1]
        if self.config.block_size < T:
            raise ValueError(f"sequence of {T} tokens exceeds block_size {self.config.block_size}")
        x = self.embed(tokens)  # (B, T, C)
        mask = self.attn_mask[:T, :T]
        for block in self.blocks:
            if self.activation_checkpointing and self.training:
                x = checkpoint(block, x, mask, use_reentrant=False)
            else:
                x = block(x, mask)
        return self.head(x)  # (B, T, V)

    def decay_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups as in GPT: decay matmul weights only (not biases, norms, embeddings)."""
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for name, param in self.named_parameters():
            if not param.requires_grad:
                continue
            is_matrix = name.endswith(".weight") and param.dim() >= 2 and "emb" not in name
            (decay if is_matrix or name == "head_weight" else no_decay).append(param)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
