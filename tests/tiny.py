"""The tiny settings every test run is made of, spelled once (tests import them from here)."""

from __future__ import annotations

import torch

from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT

TINY_MODEL = ["model.n_embd=16", "model.n_layer=1", "model.n_head=2"]
"""A 1-layer, 16-wide model: trains in a second on a CPU."""
TINY_DATA = ["data.n_bins=16", "data.n_transitions=4"]
"""16 bins and 4-transition windows."""
TINY_TRAIN = [*TINY_DATA, *TINY_MODEL, "train.batch_size=16", "train.device=cpu",
              "train.progress=false"]  # fmt: skip
"""The fixtures' runs (conftest.py); tests add their own step counts."""


def tiny_model(
    separate_heads: bool = True, seed: int = 0, n_transitions: int = 4, goal_dim: int = 0
) -> TrajectoryGPT:
    """A seeded 2-layer GPT on 13 bins (obs 3, act 2) in eval mode: the model and planner tests'."""
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=13,
        observation_dim=3,
        action_dim=2,
        n_transitions=n_transitions,
        goal_dim=goal_dim,
        n_embd=32,
        n_layer=2,
        n_head=4,
        dropout=0.1,
        separate_heads=separate_heads,
    )
    return TrajectoryGPT(cfg).eval()


# tiny beam evaluations of a tiny run (a few seconds): overrides for tt eval / evaluate_run
SMALL_EVAL = [
    "plan.beam_width=2",
    "plan.horizon=2",
    "plan.context=2",
    "eval.episodes=2",
    "eval.n_envs=2",
    "eval.max_episode_steps=5",
    "eval.progress=false",
    "eval.device=cpu",
]
