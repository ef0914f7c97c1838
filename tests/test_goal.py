"""Goal-conditioned TT: the goal prefix in the model and the cache, goal windows, the goal-scored
planner (it reaches two different goals from one start), Dict-observation runs end to end, and the
config errors. PointMaze tests skip without gymnasium-robotics (it is in the dev extra)."""

from __future__ import annotations

import torch

from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.model.kv_cache import FullRecomputeDecoder, KVCacheDecoder


def goal_model(goal_dim: int = 2, seed: int = 0, separate_heads: bool = True) -> TrajectoryGPT:
    torch.manual_seed(seed)
    cfg = GPTConfig(
        vocab_size=13,
        observation_dim=3,
        action_dim=2,
        n_transitions=4,
        goal_dim=goal_dim,
        n_embd=32,
        n_layer=2,
        n_head=4,
        dropout=0.1,
        separate_heads=separate_heads,
    )
    return TrajectoryGPT(cfg).eval()


def test_goal_prefix_changes_the_logits_and_is_never_a_value_token() -> None:
    model = goal_model()
    cfg = model.config
    assert cfg.block_size == 2 + 4 * 7 - 1
    assert not model.value_mask[:2].any()
    assert model.value_mask[2 + 6] and model.value_mask[2 + 13]
    tokens = torch.randint(0, 13, (2, cfg.block_size))
    other = tokens.clone()
    other[:, :2] = (other[:, :2] + 3) % 13
    a, b = model(tokens), model(other)
    assert not torch.allclose(a[:, 2:], b[:, 2:])  # every later position sees the goal
    # goal bins are words of their own: bin b of goal dimension 0 is not bin b of observation 0
    assert int(model.token_offsets[0]) == 7 * 13 and int(model.token_offsets[2]) == 0


def test_cached_decode_with_a_goal_prefix_equals_full_forward_after_slides() -> None:
    for slide, separate in (("multi", True), ("single", True), ("multi", False)):
        model = goal_model(seed=1, separate_heads=separate)
        G, td = model.config.goal_dim, model.config.transition_dim
        gen = torch.Generator().manual_seed(3)
        cached = KVCacheDecoder(model, 16, slide)  # type: ignore[arg-type]
        full = FullRecomputeDecoder(model, 16, slide)  # type: ignore[arg-type]
        prompt = torch.randint(0, 13, (2, G + td + 3), generator=gen)
        goal = prompt[:, :G].clone()
        worst = (cached.start(prompt) - full.start(prompt)).abs().max().item()
        for i in range(8 * td):  # far past the 4-transition window
            if i % 5 == 2 and cached.batch * 2 <= 16:
                cached.expand(2)
                full.expand(2)
            elif i % 5 == 0:
                R = cached.batch // 2
                index = (torch.arange(2)[:, None] * R + torch.randint(0, R, (2, R), generator=gen))
                cached.reorder(index.flatten())
                full.reorder(index.flatten())
            tokens = torch.randint(0, 13, (cached.batch,), generator=gen)
            a, b = cached.step(tokens), full.step(tokens)
            window = full.window()
            assert torch.equal(cached.window(), window)
            rows = cached.batch // 2
            assert torch.equal(window[:, :G], goal.repeat_interleave(rows, dim=0))  # kept
            reference = model(window)[:, -1]
            worst = max(worst, (a - b).abs().max().item(), (a - reference).abs().max().item())
        assert cached.win.slides >= 2, slide
        assert worst < 1e-5, (slide, separate, worst)
