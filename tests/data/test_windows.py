"""Token windows: decoded values match the data, padding/mask at episode ends, x/y shift, cache."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from trajectory_transformer.config import DataConfig
from trajectory_transformer.data.episodes import load_transitions
from trajectory_transformer.data.tokens import prepare_tokens
from trajectory_transformer.data.windows import TokenWindows


def test_windows_shift_padding_and_mask() -> None:
    td, n = 3, 4
    tokens = np.arange(7 * td, dtype=np.uint8).reshape(7, td)  # episodes of 5 and 2 transitions
    starts = np.array([0, 5, 7])
    windows = TokenWindows(tokens, starts, n)
    assert len(windows) == 7  # one window per start transition, every start in every episode
    x, y, mask = windows[0]
    assert x.dtype == y.dtype == torch.int64 and mask.dtype == torch.float32
    assert x.shape == y.shape == mask.shape == (n * td - 1,)
    full = torch.arange(n * td)
    torch.testing.assert_close(x, full[:-1])
    torch.testing.assert_close(y, full[1:])
    assert mask.sum() == n * td - 1
    x, y, mask = windows[3]  # 2 real transitions left in episode 0, then padding
    real = 2 * td
    torch.testing.assert_close(x[:real], torch.arange(3 * td, 5 * td))
    assert (x[real:] == 0).all() and (y[real - 1 :] == 0).all()
    assert mask[: real - 1].eq(1).all() and mask[real - 1 :].eq(0).all()
    x, y, mask = windows[6]  # last transition of episode 1: never crosses into another episode
    torch.testing.assert_close(x[:td], torch.arange(6 * td, 7 * td))
    assert mask.sum() == td - 1
    bx, _by, _bm = windows.batch([0, 3, 6])
    torch.testing.assert_close(bx[1], windows[3][0])
    loader = torch.utils.data.DataLoader(windows, batch_size=4, shuffle=False)
    lx, _ly, lm = next(iter(loader))
    assert lx.shape == (4, n * td - 1)
    torch.testing.assert_close(lm[3], windows[3][2])


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_decoded_windows_match_data(pendulum_dataset: str, tmp_path: Path, strategy: str) -> None:
    cfg = DataConfig(dataset=pendulum_dataset, n_bins=50, strategy=strategy, n_transitions=4)  # type: ignore[arg-type]
    data = prepare_tokens(cfg, tmp_path)
    assert data.tokens.dtype == np.uint8 and data.tokens.shape == (1200, 3 + 1 + 2)
    tr, _ = load_transitions(pendulum_dataset, cfg.discount, cfg.termination_penalty)
    joined = tr.joined()
    windows = data.windows(cfg.n_transitions)
    td = data.transition_dim
    x, y, _mask = windows.batch(np.arange(0, 1200, 37))
    decoded = data.discretizer.decode(y.numpy()[:, td - 1 :].reshape(len(x), -1, td)[:, :3])
    width = data.discretizer.bin_widths().max(1)  # (D,)
    bound = width / 2 if strategy == "uniform" else width
    for row, i in enumerate(range(0, 1200, 37)):
        steps = min(
            3, int(tr.episode_starts[np.searchsorted(tr.episode_starts, i, "right")]) - i - 1
        )
        got = decoded[row, :steps]
        want = joined[i + 1 : i + 1 + steps]
        assert (np.abs(got - want) <= bound + 1e-5).all()
    assert max(data.info.discretization_error) <= bound.max()
    assert data.info.n_transitions == 1200 and data.info.env_id == "Pendulum-v1"


def test_cache_hit_identical_and_not_pickle(pendulum_dataset: str, tmp_path: Path) -> None:
    cfg = DataConfig(dataset=pendulum_dataset, n_bins=300)
    first = prepare_tokens(cfg, tmp_path)
    assert first.tokens.dtype == np.uint16
    files = sorted(tmp_path.iterdir())
    assert [f.suffix for f in files] == [".json", ".npz"]
    npz = next(f for f in files if f.suffix == ".npz")
    with zipfile.ZipFile(npz) as archive:  # npz = zip of .npy files; no object arrays inside
        for name in archive.namelist():
            header = archive.read(name)[:128]
            assert b"'O'" not in header and b"|O" not in header
    with np.load(npz, allow_pickle=False) as arrays:
        assert set(arrays.files) == {"tokens", "episode_starts", "edges", "centers"}
    mtime = npz.stat().st_mtime_ns
    second = prepare_tokens(cfg, tmp_path)
    assert npz.stat().st_mtime_ns == mtime  # served from the cache
    np.testing.assert_array_equal(second.tokens, first.tokens)
    np.testing.assert_array_equal(second.episode_starts, first.episode_starts)
    np.testing.assert_array_equal(second.discretizer.centers, first.discretizer.centers)
    assert second.info == first.info
    other = prepare_tokens(DataConfig(dataset=pendulum_dataset, n_bins=300, discount=0.9), tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2 and not np.array_equal(other.tokens, first.tokens)
    npz.write_bytes(b"corrupt")  # a broken cache is rebuilt, not trusted
    with pytest.warns(UserWarning, match="unreadable token cache"):
        third = prepare_tokens(cfg, tmp_path)
    np.testing.assert_array_equal(third.tokens, first.tokens)


def test_bench_data_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from trajectory_transformer.bench import run_benchmark

    assert run_benchmark("data", json_lines=True, overrides=["transitions=20000"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["transitions"] == 20000 and result["token_dtype"] == "uint8"
    assert result["target_memory_ok"] and result["batch_shape"] == [256, 249]
