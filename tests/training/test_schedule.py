"""The token-counted warmup + cosine schedule (minGPT / original TT)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trajectory_transformer.training.schedule import TokenSchedule


def test_warmup_is_linear_then_cosine_to_floor() -> None:
    s = TokenSchedule(lr=1.0, warmup_tokens=100, final_tokens=1100, min_ratio=0.1)
    assert s.lr_at(50) == pytest.approx(0.5)
    assert s.lr_at(100) == pytest.approx(1.0)
    assert s.lr_at(600) == pytest.approx(0.5)  # half way through the cosine
    assert s.lr_at(1100) == pytest.approx(0.1)  # floored, not 0
    assert s.lr_at(10**9) == pytest.approx(0.1)
    assert s.lr_at(0) > 0  # the first batch is not wasted


def test_advance_counts_tokens_and_state_round_trips() -> None:
    s = TokenSchedule(lr=6e-4, warmup_tokens=10, final_tokens=1000)
    lrs = [s.advance(7) for _ in range(5)]
    assert s.tokens == 35
    assert lrs[0] == pytest.approx(6e-4 * 0.7)
    other = TokenSchedule(lr=1.0, warmup_tokens=1, final_tokens=2)
    other.load_state_dict(s.state_dict())
    assert other.lr == s.lr and other.advance(7) == s.advance(7)


@given(
    st.floats(0, 1e6),
    st.floats(1, 1e7),
    st.floats(0, 1),
    st.integers(0, 10**8),
    st.integers(0, 10**8),
)
def test_lr_stays_in_range_and_decays_after_warmup(
    warmup: float, span: float, floor: float, a: int, b: int
) -> None:
    s = TokenSchedule(lr=2.0, warmup_tokens=warmup, final_tokens=warmup + span, min_ratio=floor)
    for t in (a, b):
        assert 0 <= s.lr_at(t) <= 2.0 + 1e-12
        assert s.lr_at(t) >= 2.0 * min(floor, 1.0) - 1e-12 or t < warmup
    lo, hi = sorted((a, b))
    if lo >= warmup:
        assert s.lr_at(hi) <= s.lr_at(lo) + 1e-12
    assert math.isfinite(s.lr_at(hi))


def test_warmup_shorter_than_one_token_never_exceeds_the_base_lr() -> None:
    schedule = TokenSchedule(1.0, warmup_tokens=0.5, final_tokens=10.0)
    assert schedule.lr_at(0) <= 1.0
