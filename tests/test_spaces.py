"""Round trips of batched space values through flatten/unflatten, over nested spaces (hypothesis)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trajectory_transformer.data.spaces import (
    flat_dim,
    flatten,
    space_from_json,
    space_to_json,
    stack,
    unflatten,
)
from trajectory_transformer.errors import TTError

small_shape = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)

leaf = st.one_of(
    small_shape.map(lambda s: spaces.Box(-5.0, 5.0, shape=s, dtype=np.float32)),
    small_shape.map(lambda s: spaces.Box(-100, 100, shape=s, dtype=np.int64)),
    st.tuples(st.integers(1, 6), st.integers(-3, 3)).map(
        lambda a: spaces.Discrete(a[0], start=a[1])
    ),
    st.lists(st.integers(1, 5), min_size=1, max_size=3).map(lambda n: spaces.MultiDiscrete(n)),
    st.integers(1, 4).map(spaces.MultiBinary),
)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda c: spaces.Tuple(c)),
        st.dictionaries(st.sampled_from("abcd"), children, min_size=1, max_size=3).map(spaces.Dict),
    )


nested = st.recursive(leaf, _extend, max_leaves=6)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a.dtype == b.dtype and np.array_equal(a, b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=nested, n=st.integers(1, 4), seed=st.integers(0, 1000))
def test_round_trip(space: spaces.Space[Any], n: int, seed: int) -> None:
    space.seed(seed)
    batch = stack(space, [space.sample() for _ in range(n)])
    flat = flatten(space, batch)
    assert flat.shape == (n, flat_dim(space)) and flat.dtype == np.float32
    assert _equal(unflatten(space, flat), batch)
    assert space_from_json(space_to_json(space)) == space


@settings(max_examples=40, deadline=None)
@given(noise=st.lists(st.floats(-50, 50), min_size=3, max_size=3))
def test_unflatten_rounds_and_clips_discrete(noise: list[float]) -> None:
    space = spaces.Tuple(
        (spaces.Discrete(4, start=1), spaces.MultiDiscrete([3]), spaces.MultiBinary(1))
    )
    disc, multi, binary = unflatten(space, np.asarray([noise], np.float32))
    assert 1 <= disc[0] <= 4 and 0 <= multi[0, 0] <= 2 and binary[0, 0] in (0, 1)
    assert space.contains((disc[0], multi[0], binary[0]))


def test_discrete_is_one_index_not_one_hot() -> None:
    space = spaces.Discrete(10)
    assert flat_dim(space) == 1
    np.testing.assert_array_equal(flatten(space, np.array([3, 7])), [[3.0], [7.0]])


@pytest.mark.parametrize(
    ("space", "name"),
    [
        (spaces.Text(5), "Text"),
        (spaces.Sequence(spaces.Discrete(2)), "Sequence"),
        (spaces.Graph(spaces.Box(0, 1, (2,)), None), "Graph"),
        (spaces.Dict({"ok": spaces.Discrete(2), "bad": spaces.Text(3)}), "Text"),
    ],
)
def test_unsupported_spaces_named(space: spaces.Space[Any], name: str) -> None:
    with pytest.raises(TTError, match=name) as err:
        flat_dim(space, "observation_space")
    assert "observation_space" in str(err.value) and "\n" not in str(err.value)


def test_wrong_value_shape_is_clear() -> None:
    with pytest.raises(TTError, match=r"does not match Box"):
        flatten(spaces.Box(0, 1, (3,)), np.zeros((5, 4)))
