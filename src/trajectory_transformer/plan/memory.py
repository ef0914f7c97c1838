"""What a plan setting costs in memory, estimated before the planner allocates anything.

Beam search decodes `envs x plan.beam_width x plan.expand` rows at once, each with a key/value
cache of the model's whole window, so a wide beam grows memory linearly and without a bound in the
config itself (`plan.beam_width=1e9` once asked PyTorch for 944 GB). `check_plan_memory` compares
the estimate with the memory free on the device and refuses in one line, with the estimate, before
the first tensor is made. The estimate counts the big buffers (`model/kv_cache.py`'s six window
segments and two child segments, the window tokens, the step's logits and the beam's plan arrays)
and is a lower bound: the run needs a little more, never less.
"""

from __future__ import annotations

import torch

from ..config import PlanConfig
from ..model.gpt import GPTConfig
from ..utils import check_memory

__all__ = ["check_plan_memory", "plan_memory_bytes", "plan_rows"]

_SEARCH_MODES = ("beam", "likelihood", "goal")


def plan_rows(cfg: PlanConfig, n_envs: int) -> int:
    """Rows the decoder holds for `n_envs` envs planned together."""
    if cfg.mode in _SEARCH_MODES:
        return n_envs * cfg.beam_width * cfg.expand
    return n_envs


def plan_memory_bytes(model: GPTConfig, cfg: PlanConfig, n_envs: int, elem: int = 4) -> int:
    """Bytes of the planner's big buffers for `n_envs` envs (`elem`: bytes per model float)."""
    return rows_memory_bytes(model, cfg, plan_rows(cfg, n_envs), elem)


def rows_memory_bytes(model: GPTConfig, cfg: PlanConfig, rows: int, elem: int = 4) -> int:
    """`plan_memory_bytes` for a decoder of `rows` rows."""
    td, C, L, V = model.transition_dim, model.n_embd, model.n_layer, model.vocab_size
    window = model.block_size
    tokens = rows * window * 8  # (rows, block_size) int64 window tokens
    logits = 4 * rows * V * 4  # a step's logits, probabilities and filtered copies, fp32
    if cfg.use_cache:
        capacity = window - (model.n_transitions - 1)
        cache = L * rows * C * (6 * capacity + 2 * td) * elem  # (L, rows, H, slots, C / H) x 8
    else:  # a full forward pass over the window: activations and attention scores
        cache = rows * window * C * 8 * elem + rows * model.n_head * window * window * elem
    searched = cfg.mode in _SEARCH_MODES
    plan = rows * (cfg.horizon + 1) * td * 8 * 2 if searched else 0  # plans and their copies
    return int(tokens + logits + cache + plan)


def check_plan_memory(
    model: GPTConfig, cfg: PlanConfig, n_envs: int, device: torch.device, elem: int = 4
) -> None:
    """Refuse a plan setting whose buffers would not fit in the memory free on `device`."""
    needed = plan_memory_bytes(model, cfg, n_envs, elem)
    search = (
        f"plan.beam_width={cfg.beam_width} x plan.expand={cfg.expand} x {n_envs} env(s)"
        if cfg.mode in _SEARCH_MODES
        else f"{n_envs} env(s)"
    )
    check_memory(
        needed,
        device,
        f"planning with {search} ({plan_rows(cfg, n_envs):,} decoder rows)",
        "lower plan.beam_width, plan.expand or eval.n_envs",
    )
