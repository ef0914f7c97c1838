"""The cached decoder must reproduce a full forward pass over exactly the window's tokens."""

from __future__ import annotations

import itertools

import pytest
import torch

from tiny import tiny_model
from trajectory_transformer.model.gpt import value_attention_mask
from trajectory_transformer.model.kv_cache import FullRecomputeDecoder, KVCacheDecoder


def test_value_mask_hides_value_tokens_only() -> None:
    mask = value_attention_mask(12, transition_dim=4)
    assert not mask[:, 3].any() and not mask[:, 7].any() and not mask[:, 11].any()
    assert mask[5, 4] and mask[5, 5] and not mask[5, 6]  # causal
    assert mask[:, 0].all()  # every query has at least one key


def test_value_token_content_never_reaches_other_positions() -> None:
    model = tiny_model()
    tokens = torch.randint(0, 13, (2, model.config.block_size))
    changed = tokens.clone()
    value_positions = torch.arange(model.config.block_size) % 7 == 6
    changed[:, value_positions] = (changed[:, value_positions] + 5) % 13
    a, b = model(tokens), model(changed)
    # only the value positions' own outputs may differ (their residual stream)
    assert torch.allclose(a[:, ~value_positions], b[:, ~value_positions], atol=1e-6)
    assert not torch.allclose(a[:, value_positions], b[:, value_positions])


@pytest.mark.parametrize("slide", ["multi", "single"])
@pytest.mark.parametrize("separate_heads", [True, False])
@pytest.mark.parametrize("groups", [1, 3])
def test_cached_logits_equal_full_forward(slide: str, separate_heads: bool, groups: int) -> None:
    model = tiny_model(separate_heads, seed=groups)
    gen = torch.Generator().manual_seed(7)
    td = model.config.transition_dim
    cached = KVCacheDecoder(model, 24, slide)  # type: ignore[arg-type]
    full = FullRecomputeDecoder(model, 24, slide)  # type: ignore[arg-type]
    prompt = torch.randint(0, 13, (groups, 2 * td + 3), generator=gen)
    worst = (cached.start(prompt) - full.start(prompt)).abs().max().item()
    slides_seen = 0
    for i in range(8 * td):  # far past the 4-transition window
        if i % 5 == 0:  # beam-style reorder: duplicate/drop rows within each group
            R = cached.batch // groups
            R_new = min(8, 2 * R)
            index = (
                torch.arange(groups)[:, None] * R
                + torch.randint(0, R, (groups, R_new), generator=gen)
            ).flatten()
            cached.reorder(index)
            full.reorder(index)
        elif i % 5 == 2 and cached.batch * 2 <= 24:  # beam expansion: rows share history
            cached.expand(2)
            full.expand(2)
        tokens = torch.randint(0, 13, (cached.batch,), generator=gen)
        a, b = cached.step(tokens), full.step(tokens)
        assert torch.equal(cached.window(), full.window())
        window = full.window()
        assert window.shape[1] <= model.config.block_size
        reference = model(window)[:, -1]  # positions re-based: the window starts at position 0
        worst = max(worst, (a - b).abs().max().item(), (a - reference).abs().max().item())
        slides_seen = cached.win.slides
    assert slides_seen >= 2
    assert worst < 1e-5


def test_multi_slide_keeps_between_half_and_full_window() -> None:
    model = tiny_model(n_transitions=6)
    td = model.config.transition_dim
    dec = KVCacheDecoder(model, 2, "multi")
    dec.start(torch.zeros(1, td, dtype=torch.long))
    lengths = []
    for _ in range(30 * td):
        dec.step(torch.zeros(1, dtype=torch.long))
        lengths.append(dec.window().shape[1])
    after_slide = [b for a, b in itertools.pairwise(lengths) if b < a]
    # half of the 6 transitions dropped at once, whole transitions only: 3 * td tokens remain
    assert len(after_slide) >= 3 and set(after_slide) == {3 * td}
    assert max(lengths) == model.config.block_size


def test_reorder_rejects_rows_that_break_groups() -> None:
    model = tiny_model()
    dec = KVCacheDecoder(model, 8)
    dec.start(torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="groups"):
        dec.reorder(torch.tensor([0, 0, 1]))
