"""Discretizer bounds, edge cases, numpy/torch agreement and safe persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trajectory_transformer.data.discretizer import Discretizer, tokens_dtype
from trajectory_transformer.errors import TTError


@pytest.fixture
def data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack(
        [rng.normal(size=2000), rng.exponential(size=2000), rng.uniform(-2, 2, 2000)], axis=1
    ).astype(np.float32)


def test_uniform_round_trip_within_half_bin(data: np.ndarray) -> None:
    disc = Discretizer.fit(data, 37, "uniform")
    tokens = disc.encode(data)
    assert tokens.dtype == np.uint8 and tokens.min() >= 0 and tokens.max() < 37
    err = np.abs(disc.decode(tokens) - data)  # (N, D)
    half = (data.max(0) - data.min(0)) / 37 / 2
    assert (err <= half + 1e-5).all()
    assert disc.last_clipped.sum() == 0


def test_quantile_round_trip_within_bin(data: np.ndarray) -> None:
    disc = Discretizer.fit(data, 20, "quantile")
    tokens = disc.encode(data).astype(np.int64)
    err = np.abs(disc.decode(tokens) - data)
    width = np.take_along_axis(disc.bin_widths(), tokens.T, axis=1).T  # (N, D)
    assert (err <= width + 1e-5).all()
    counts = np.stack([np.bincount(tokens[:, d], minlength=20) for d in range(3)])
    assert counts.min() > 0.5 * len(data) / 20  # quantile bins are balanced


def test_point_masses_and_constant_dims_decode_exactly() -> None:
    rng = np.random.default_rng(1)
    saturated = np.clip(rng.normal(scale=3, size=1000), -2, 2)  # many exact ±2 values
    data = np.stack([saturated, np.full(1000, 4.5), np.zeros(1000)], axis=1)
    for strategy in ("quantile", "uniform"):
        disc = Discretizer.fit(data, 10, strategy)  # type: ignore[arg-type]
        decoded = disc.decode(disc.encode(data))
        np.testing.assert_allclose(decoded[:, 1:], data[:, 1:])
        np.testing.assert_allclose(disc.decode(np.arange(10)[:, None].repeat(3, 1))[:, 1], 4.5)
        if strategy == "quantile":
            at_edge = np.abs(saturated) == 2
            np.testing.assert_allclose(decoded[at_edge, 0], saturated[at_edge], atol=1e-6)


def test_out_of_range_clipped_and_counted(data: np.ndarray) -> None:
    disc = Discretizer.fit(data, 16, "uniform")
    x = np.array([[1e6, 0.5, 0.0], [-1e6, 0.5, 9.0]], np.float32)
    tokens = disc.encode(x)
    assert tokens[0, 0] == 15 and tokens[1, 0] == 0 and tokens[1, 2] == 15
    np.testing.assert_array_equal(disc.last_clipped, [2, 0, 1])
    assert disc.total_clipped == 3


def test_dims_slices_and_arrays(data: np.ndarray) -> None:
    disc = Discretizer.fit(data, 16)
    full = disc.encode(data)
    np.testing.assert_array_equal(disc.encode(data[:, 1:], dims=slice(1, 3)), full[:, 1:])
    np.testing.assert_array_equal(disc.encode(data[:, [2, 0]], dims=[2, 0]), full[:, [2, 0]])
    np.testing.assert_array_equal(disc.decode(full[:, 2:3], dims=2), disc.decode(full)[:, 2:3])


def test_expectation_numpy_matches_torch_and_torch_codec(data: np.ndarray) -> None:
    disc = Discretizer.fit(data, 16)
    probs = np.random.default_rng(0).dirichlet(np.ones(16), size=(4, 2))  # (4, 2, 16)
    want = disc.expectation(probs, dims=slice(1, 3))  # (4, 2)
    got = disc.expectation(torch.from_numpy(probs), dims=slice(1, 3))
    assert got.shape == (4, 2)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    one_hot = np.eye(16)[disc.encode(data[:5])]  # (5, 3, 16)
    np.testing.assert_allclose(
        disc.expectation(one_hot), disc.decode(disc.encode(data[:5])), rtol=1e-6
    )
    x = torch.from_numpy(data[:50].astype(np.float64))
    np.testing.assert_array_equal(disc.encode(x).numpy(), disc.encode(data[:50].astype(np.float64)))
    np.testing.assert_allclose(
        disc.decode(disc.encode(x)).numpy(), disc.decode(disc.encode(data[:50])), rtol=1e-6
    )


def test_save_load_round_trip_and_not_pickle(tmp_path: Path, data: np.ndarray) -> None:
    disc = Discretizer.fit(data, 300, "quantile")
    assert disc.tokens_dtype == np.uint16 and tokens_dtype(256) == np.uint8
    path = tmp_path / "disc.safetensors"
    disc.save(path)
    assert not path.read_bytes().startswith(b"\x80")  # not a pickle stream
    back = Discretizer.load(path)
    np.testing.assert_array_equal(back.edges, disc.edges)
    np.testing.assert_array_equal(back.centers, disc.centers)
    assert back.strategy == "quantile"


def test_load_corrupt_or_missing_file_is_clear(tmp_path: Path) -> None:
    bad = tmp_path / "disc.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(TTError, match=r"corrupt discretizer file") as err:
        Discretizer.load(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(TTError, match="missing discretizer"):
        Discretizer.load(tmp_path / "none.safetensors")


def test_fit_rejects_non_finite() -> None:
    with pytest.raises(TTError, match="dimension 1 contains NaN"):
        Discretizer.fit(np.array([[0.0, np.nan], [1.0, 2.0]]), 4)
