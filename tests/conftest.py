"""Shared fixtures. Tests never touch ~/.minari or ~/.cache: the session points both at tmp dirs.

`pendulum_dataset` (session-scoped) collects a tiny Pendulum-v1 expert dataset once, with the
default id of DataConfig, so `prepare_tokens(DataConfig(...))` finds it. Tests that need an empty
Minari folder use `minari_tmp` (which must not be combined with `pendulum_dataset`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs a fixed set of generated examples (no flaky red builds); locally they vary run to run.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

PENDULUM_ID = "tt/pendulum/expert-v0"
TINY_TRAIN = [
    "data.n_bins=16", "data.n_transitions=4", "model.n_embd=16", "model.n_layer=1",
    "model.n_head=2", "train.batch_size=16", "train.device=cpu", "train.progress=false",
]  # fmt: skip
"""A 1-layer, 16-wide model on 16 bins and 4-transition windows: the fixtures' runs."""


@pytest.fixture(scope="session", autouse=True)
def _session_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("session")
    saved = {k: os.environ.get(k) for k in ("MINARI_DATASETS_PATH", "TT_CACHE_DIR")}
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    os.environ["TT_CACHE_DIR"] = str(root / "cache")
    yield root
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def minari_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty MINARI_DATASETS_PATH for this test only."""
    path = tmp_path / "minari"
    path.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(path))
    return path


@pytest.fixture(scope="session")
def pendulum_dataset(_session_dirs: Path) -> str:
    """Id of a 6-episode (1,200-step) Pendulum-v1 expert Minari dataset, collected once (~1 s)."""
    from trajectory_transformer.config import CollectConfig
    from trajectory_transformer.sources.collect import collect_dataset

    cfg = CollectConfig(
        env="Pendulum-v1", policy="expert", episodes=6, ref_episodes=2, dataset_id=PENDULUM_ID
    )
    return collect_dataset(cfg, progress=False)


@pytest.fixture(scope="session")
def checkpointed_run(pendulum_dataset: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Pendulum run trained 4 steps with checkpoints kept at steps 2 and 4 (~2 s)."""
    from trajectory_transformer.config import load_config
    from trajectory_transformer.training.trainer import train

    cfg = load_config(
        None,
        [f"data.dataset={pendulum_dataset}", *TINY_TRAIN, "train.lr=1e-2", "train.max_steps=4",
         "train.save_every=2", "train.keep_last=5"],
    )  # fmt: skip
    return train(cfg, tmp_path_factory.mktemp("checkpointed") / "run")


@pytest.fixture(scope="module")
def tiny_run(pendulum_dataset: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Pendulum run trained 3 steps (one per test module, ~2 s): for evaluation tests."""
    from trajectory_transformer.config import load_config
    from trajectory_transformer.training.trainer import train

    cfg = load_config(
        None,
        [f"data.dataset={pendulum_dataset}", *TINY_TRAIN, "train.max_steps=3"],
    )
    return train(cfg, tmp_path_factory.mktemp("runs") / "tiny")
