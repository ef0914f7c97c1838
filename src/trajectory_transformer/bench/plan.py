"""`tt bench plan`: seconds per beam-planning call, cached vs uncached, and cache exactness.

A random-weight model of the paper's size for Hopper (11 obs + 3 act dims, 10-transition window,
embedding 128, 4 layers, 4 heads, vocab 100, separate heads). Settings from the planner issue:
(a) 1 env, beam 32, expand 2, horizon 5, context 5; (b) 10 envs, same; (c) 1 env, beam 128,
horizon 15 (the published Hopper setting: context plus horizon outgrow the window), with both
ways of sliding; on a GPU also (d) 25 envs at (c). `max_abs_logit_diff` compares the cached
decoder with a full forward pass over the same token stream (same lengths, slides and beam
reorders as the setting). `--device cuda` (or `eval.device=cuda`) runs it on a GPU, timing
with the device synchronised.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..config import PlanConfig, RunConfig, apply_overrides
from ..model.gpt import GPTConfig, TrajectoryGPT
from ..model.kv_cache import FullRecomputeDecoder, KVCacheDecoder
from ..plan.beam import BeamPlanner
from ..utils import resolve_device

__all__ = ["Setting", "main", "max_logit_diff", "measure", "time_plan"]


@dataclass(frozen=True)
class Setting:
    name: str
    envs: int
    beam_width: int
    horizon: int
    slide: Literal["multi", "single"] = "multi"
    expand: int = 2
    context: int = 5
    uncached: bool = True


SETTINGS = [
    Setting("a", 1, 32, 5),
    Setting("b", 10, 32, 5),
    Setting("c", 1, 128, 15, uncached=False),
    Setting("c", 1, 128, 15, slide="single", uncached=False),
]
GPU_SETTINGS = [Setting("d", 25, 128, 15)]
"""(d): 25 envs at (c), one model batch of 6,400 sequences: minutes per call on 2 CPU cores."""
QUICK = [Setting("a", 1, 8, 2), Setting("b", 2, 8, 2), Setting("c", 1, 8, 6, slide="single")]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hopper_model(quick: bool = False) -> TrajectoryGPT:
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=100, observation_dim=11, action_dim=3, n_transitions=10)
    if quick:
        cfg.n_embd, cfg.n_layer = 32, 2
    return TrajectoryGPT(cfg).eval()


def time_plan(model: TrajectoryGPT, s: Setting, use_cache: bool, repeats: int) -> float:
    """Median seconds per planning call (after one warm-up call)."""
    cfg = PlanConfig(
        beam_width=s.beam_width,
        expand=s.expand,
        horizon=s.horizon,
        context=s.context,
        slide=s.slide,
        use_cache=use_cache,
    )
    V = model.config.vocab_size
    device = model.pos_emb.device
    planner = BeamPlanner(model, cfg, torch.linspace(-1, 1, V), torch.linspace(0, 100, V))
    prompt_len = s.context * model.config.transition_dim + model.config.observation_dim
    prompt = torch.randint(0, V, (s.envs, prompt_len), generator=torch.Generator().manual_seed(1))
    planner.plan(prompt)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        planner.plan(prompt)
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def max_logit_diff(model: TrajectoryGPT, s: Setting, rows_per_env: int = 4) -> float:
    """Run both decoders in lockstep over the setting's token count, with beam-style reorders."""
    gen = torch.Generator().manual_seed(2)  # on the host: the same draws on every device
    cfg = model.config
    device = model.pos_emb.device
    V, td = cfg.vocab_size, cfg.transition_dim
    rows = s.envs * rows_per_env
    cached = KVCacheDecoder(model, rows * s.expand, s.slide)
    full = FullRecomputeDecoder(model, rows * s.expand, s.slide)
    prompt = torch.randint(0, V, (s.envs, s.context * td + cfg.observation_dim), generator=gen)
    prompt = prompt.to(device)
    worst = (cached.start(prompt) - full.start(prompt)).abs().max().item()
    index = torch.arange(s.envs, device=device).repeat_interleave(rows_per_env)
    cached.reorder(index)
    full.reorder(index)
    for i in range(s.horizon * td):
        if i % td == 0:  # beam expansion, as the planner does before the action tokens
            cached.expand(s.expand)
            full.expand(s.expand)
        elif i % td == 4:  # beam pruning: keep rows_per_env rows of each environment
            R = cached.batch // s.envs
            picks = torch.randint(0, R, (s.envs, rows_per_env), generator=gen)
            index = (torch.arange(s.envs)[:, None] * R + picks).flatten().to(device)
            cached.reorder(index)
            full.reorder(index)
        tokens = torch.randint(0, V, (cached.batch,), generator=gen).to(device)
        a, b = cached.step(tokens), full.step(tokens)
        reference = model(full.window())[:, -1]
        worst = max(worst, (a - b).abs().max().item(), (a - reference).abs().max().item())
    return worst


def measure(model: TrajectoryGPT, s: Setting, repeats: int = 3) -> dict[str, Any]:
    """One row of the table: cached and (where the setting has it) uncached seconds per call,
    and the cache's exactness, on the model's device."""
    cached_s = time_plan(model, s, use_cache=True, repeats=repeats)
    uncached_s = time_plan(model, s, use_cache=False, repeats=1) if s.uncached else None
    return {
        "setting": s.name,
        "envs": s.envs,
        "beam_width": s.beam_width,
        "expand": s.expand,
        "horizon": s.horizon,
        "context": s.context,
        "slide": s.slide,
        "device": str(model.pos_emb.device),
        "cached_s": round(cached_s, 4),
        "uncached_s": None if uncached_s is None else round(uncached_s, 4),
        "speedup": None if uncached_s is None else round(uncached_s / cached_s, 1),
        "max_abs_logit_diff": max_logit_diff(model, s),
        "threads": torch.get_num_threads(),
    }


def main(json_lines: bool = False, quick: bool = False, overrides: list[str] | None = None) -> int:
    cfg = apply_overrides(RunConfig(), overrides or [])
    device = resolve_device(cfg.eval.device, "eval.device")
    model = hopper_model(quick).to(device)
    repeats = 1 if quick else 3
    settings = QUICK if quick else SETTINGS + (GPU_SETTINGS if device.type == "cuda" else [])
    results = []
    for s in settings:
        row = measure(model, s, repeats)
        results.append(row)
        if json_lines:
            print(json.dumps(row), flush=True)
    if not json_lines:
        print(f"device: {device}")
        header = f"{'set':<4}{'envs':>5}{'beam':>6}{'H':>4}{'slide':>8}{'cached_s':>10}{'uncached_s':>12}{'max|Δlogit|':>13}"
        print(header)
        for r in results:
            unc = "-" if r["uncached_s"] is None else f"{r['uncached_s']:.3f}"
            print(
                f"{r['setting']:<4}{r['envs']:>5}{r['beam_width']:>6}{r['horizon']:>4}{r['slide']:>8}"
                f"{r['cached_s']:>10.3f}{unc:>12}{r['max_abs_logit_diff']:>13.2e}"
            )
    return 0
