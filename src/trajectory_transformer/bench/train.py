"""`tt bench train`: training tokens/s of our GPT against a hand-written-attention baseline.

Paper-size model (n_embd 128, 4 layers, 4 heads, vocab 100) on a HalfCheetah-size window
(17 obs + 6 act + reward + value = 25 dims x 10 transitions = 250 tokens, 249 inputs), batch 256,
one full optimizer step (forward, weighted CE, backward, clip, AdamW) per measurement.

The baseline is the straightforward GPT most TT code uses: attention as matmul → masked_fill →
softmax → dropout → matmul, materialising the (B, H, T, T) matrix. Everything else (embeddings,
MLP, per-dimension heads, loss, optimizer) is the same, so the ratio isolates the attention path.
Steps of the models are interleaved (A B A B ...) and the median is reported, because this
machine is shared and noisy. Target: ours >= 1.5x the baseline on CPU.

Overrides: train.batch_size, train.max_steps (timed steps), train.device, train.compile, model.*.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import RunConfig, apply_overrides
from ..model.gpt import MLP, GPTConfig, TrajectoryGPT, value_attention_mask
from ..training.loss import target_parts, weighted_loss
from ..training.setup import gpt_config_for
from ..utils import resolve_device

__all__ = ["BaselineGPT", "main", "measure"]

OBS_DIM, ACT_DIM, N_TRANSITIONS = 17, 6, 10
PAPER_TOKENS = 50 * 1_000_000 * (N_TRANSITIONS * (OBS_DIM + ACT_DIM + 2) - 1)
"""Tokens of the paper's HalfCheetah run: 50 epochs over ~1M windows of 249 input tokens."""


# ------------------------------------------------------------------------------ the baseline
class _NaiveAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)
        self.attn_drop = nn.Dropout(attn_dropout)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hd = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=-1)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)  # (B, H, T, hd)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (B, H, T, T)
        att = att.masked_fill(~mask, float("-inf"))
        att = self.attn_drop(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y))


class _NaiveBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = _NaiveAttention(n_embd, n_head, dropout, attn_dropout)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


class BaselineGPT(TrajectoryGPT):
    """Our model with the attention replaced by the hand-written (B, H, T, T) version."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.blocks = nn.ModuleList(
            _NaiveBlock(config.n_embd, config.n_head, config.dropout, config.attn_dropout)
            for _ in range(config.n_layer)
        )
        self.apply(self._init_weights)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        x = self.embed(tokens)  # (B, T, C)
        mask = value_attention_mask(T, self.config.transition_dim, tokens.device)  # (T, T)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(x)  # (B, T, V)


# ------------------------------------------------------------------------------ measuring
def _make_step(
    model: nn.Module, gpt: GPTConfig, batch: int, device: torch.device, precision: str
) -> Callable[[], None]:
    """One full training step on fixed random tokens, as a closure."""
    gen = torch.Generator().manual_seed(0)
    window = torch.randint(0, gpt.vocab_size, (batch, gpt.block_size + 1), generator=gen)
    x, y = window[:, :-1].to(device), window[:, 1:].to(device)  # (B, T)
    mask = torch.ones(batch, gpt.block_size, device=device)
    parts = target_parts(gpt.block_size, gpt.observation_dim, gpt.action_dim).to(device)
    weights = torch.tensor([1.0, 5.0, 1.0, 1.0], device=device)
    raw: Any = getattr(model, "_orig_mod", model)  # the module behind torch.compile
    optimizer = torch.optim.AdamW(
        raw.decay_groups(0.1), lr=6e-4, betas=(0.9, 0.95), fused=device.type == "cuda" or None
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> None:
        with autocast:
            logits = model(x)  # (B, T, V)
        loss, _ = weighted_loss(logits, y, mask, parts, weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


def _measure(steps: dict[str, Callable[[], None]], warmup: int, reps: int) -> dict[str, float]:
    """Median seconds per step of each closure, interleaved so drift hits all of them alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    defaults = ["train.batch_size=16", "train.max_steps=3"] if quick else []
    _print(measure([*defaults, *(overrides or [])], warmup=1 if quick else 2), json_lines)
    return 0


def measure(
    overrides: list[str], warmup: int = 2, compile_on_cuda: bool = True
) -> list[dict[str, Any]]:
    """The table's rows (one per model variant, then the ratios) for these overrides; on CUDA
    (or with train.compile=true) also ours bf16 + torch.compile unless `compile_on_cuda` is
    False (minutes of compiling)."""
    cfg: RunConfig = apply_overrides(RunConfig(), ["train.max_steps=5", *overrides])
    device = resolve_device(cfg.train.device, "train.device")
    batch, reps = cfg.train.batch_size, max(cfg.train.max_steps or 3, 1)
    gpt = gpt_config_for(cfg, OBS_DIM, ACT_DIM)  # 250-token HalfCheetah window by default
    variants: list[tuple[str, str, bool]] = [
        ("ours", "fp32", False), ("baseline", "fp32", False),
        ("ours", "bf16", False), ("baseline", "bf16", False),
    ]  # fmt: skip
    if cfg.train.compile or (device.type == "cuda" and compile_on_cuda):
        variants.append(("ours", "bf16", True))
    steps: dict[str, Callable[[], None]] = {}
    for name, precision, compiled in variants:
        torch.manual_seed(0)
        model: nn.Module = (
            (BaselineGPT if name == "baseline" else TrajectoryGPT)(gpt).to(device).train()
        )
        if compiled:
            model = torch.compile(model)  # type: ignore[assignment]
        steps[_key(name, precision, compiled)] = _make_step(model, gpt, batch, device, precision)
    seconds = _measure(steps, warmup=warmup, reps=reps)

    tokens = batch * gpt.block_size
    rows: list[dict[str, Any]] = []
    for name, precision, compiled in variants:
        s = seconds[_key(name, precision, compiled)]
        rows.append(
            {
                "bench": "train",
                "model": name,
                "precision": precision + ("+compile" if compiled else ""),
                "device": str(device),
                "batch": batch,
                "window_tokens": gpt.block_size,
                "step_ms": round(s * 1e3, 2),
                "tokens_per_s": round(tokens / s, 1),
                "paper_halfcheetah_hours": round(PAPER_TOKENS / (tokens / s) / 3600, 1),
            }
        )
    for ours in ("ours",):
        for precision in ("fp32", "bf16"):
            ratio = (
                seconds[_key("baseline", precision, False)] / seconds[_key(ours, precision, False)]
            )
            rows.append(
                {
                    "bench": "train",
                    "ratio": f"{ours}/baseline {precision}",
                    "value": round(ratio, 2),
                    "target": 1.5,
                }
            )
    return rows


def _key(name: str, precision: str, compiled: bool) -> str:
    return f"{name}/{precision}{'+compile' if compiled else ''}"


def _print(rows: list[dict[str, Any]], json_lines: bool) -> None:
    if json_lines:
        for row in rows:
            print(json.dumps(row))
        return
    print(
        f"{'model':<17}{'precision':<14}{'device':<8}{'batch':>6}{'step ms':>10}{'tokens/s':>12}{'paper run h':>13}"
    )
    for row in rows:
        if "model" in row:
            print(
                f"{row['model']:<17}{row['precision']:<14}{row['device']:<8}{row['batch']:>6}"
                f"{row['step_ms']:>10.1f}{row['tokens_per_s']:>12,.0f}{row['paper_halfcheetah_hours']:>13,.1f}"
            )
    for row in rows:
        if "ratio" in row:
            print(f"{row['ratio']}: {row['value']:.2f}x (target >= {row['target']}x)")
