from __future__ import annotations

import torch

from trajectory_transformer.plan.sampling import TokenSampler, filter_logits


def test_cdf_drops_low_tail_only() -> None:
    probs = torch.tensor([[0.05, 0.1, 0.15, 0.3, 0.4]])
    out = filter_logits(probs.log(), cdf=0.3)  # 0.05 + 0.1 = 0.15 < 0.3; + 0.15 = 0.30 is not < 0.3
    assert torch.isinf(out[0, :2]).all() and torch.isfinite(out[0, 2:]).all()


def test_cdf_never_drops_everything() -> None:
    out = filter_logits(torch.zeros(3, 4), cdf=0.99)
    assert torch.isfinite(out).any(dim=-1).all()


def test_top_k_and_top_p() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert torch.isfinite(filter_logits(logits, top_k=2)).sum() == 2
    probs = torch.tensor([[0.6, 0.3, 0.05, 0.05]])
    kept = torch.isfinite(filter_logits(probs.log(), top_p=0.8))
    assert kept.tolist() == [[True, True, False, False]]


def test_sampler_is_seeded_and_greedy_is_argmax() -> None:
    logits = torch.randn(64, 10)
    a = TokenSampler()(logits, torch.Generator().manual_seed(3))
    b = TokenSampler()(logits, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(TokenSampler(greedy=True)(logits, None), logits.argmax(-1))
    assert torch.equal(TokenSampler(top_k=1)(logits, None), logits.argmax(-1))
