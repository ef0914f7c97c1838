"""Weights & Biases logging (train.wandb), in wandb's offline mode: the same scalars as
metrics.jsonl and the config reach the W&B run; without wandb the key is a one-line error."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tiny import TINY_TRAIN
from trajectory_transformer.config import load_config
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.training import train


def _cfg(dataset: str, *extra: str):  # type: ignore[no-untyped-def]
    return load_config(
        None,
        [
            f"data.dataset={dataset}",
            *TINY_TRAIN,
            "train.max_steps=4",
            "train.log_every=2",
            "train.wandb=true",
            *extra,
        ],
    )


class _Spy:
    """The real offline W&B run, with every `log` call recorded on the way through."""

    def __init__(self, run: Any, logged: list[tuple[int, dict[str, float]]]) -> None:
        self.run, self.logged = run, logged

    def log(self, data: dict[str, float], step: int) -> None:
        self.logged.append((step, dict(data)))
        self.run.log(data, step=step)

    def finish(self) -> None:
        self.run.finish()


def test_wandb_offline_gets_the_metrics_and_the_config(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb", reason="pip install 'trajectory-transformer[wandb]'")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged: list[tuple[int, dict[str, float]]] = []
    inits: list[dict[str, Any]] = []
    real_init = wandb.init

    def init(**kwargs: Any) -> _Spy:
        inits.append(kwargs)
        return _Spy(real_init(**kwargs), logged)

    monkeypatch.setattr(wandb, "init", init)
    run = train(_cfg(pendulum_dataset, "train.wandb_project=tt-test"), tmp_path / "run")
    (folder,) = (run / "wandb").glob("offline-run-*")  # the real offline run, in the run folder
    assert list(folder.glob("run-*.wandb"))
    assert inits[0]["project"] == "tt-test" and inits[0]["name"] == "run"
    assert inits[0]["config"]["train"]["wandb"] is True  # the run's whole config
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [step for step, _ in logged] == [line["step"] for line in lines] == [2, 4]
    for (_, data), line in zip(logged, lines):  # the scalars TensorBoard gets, same values
        assert data == {k: v for k, v in line.items() if "/" in k}
        assert "losses/total" in data


def test_without_wandb_the_key_says_how_to_install(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(TTError, match=r"pip install 'trajectory-transformer\[wandb\]'"):
        train(_cfg(pendulum_dataset), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # failed before any work


def test_wandb_keys_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"train\.wandb_project"):
        load_config(None, ["train.wandb_project= "])


def test_wandb_that_cannot_start_is_one_line(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wandb = pytest.importorskip("wandb", reason="pip install 'trajectory-transformer[wandb]'")

    def no_login(**kwargs: Any) -> None:
        raise wandb.errors.UsageError("api_key not configured (no-tty). call wandb.login(key=...)")

    monkeypatch.setattr(wandb, "init", no_login)
    with pytest.raises(
        TTError,
        match=r"train.wandb: Weights & Biases did not start \(UsageError: "
        r"api_key not configured.*set WANDB_MODE=offline$",
    ) as err:
        train(_cfg(pendulum_dataset), tmp_path / "run")
    assert "\n" not in str(err.value)
