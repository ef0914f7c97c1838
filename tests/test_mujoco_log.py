"""Envs are made without MuJoCo's per-compile deprecation warning for Gymnasium's own XML.

HalfCheetah-v5's model sets `settotalmass`, which MuJoCo warns about on every env made (stdout
and MUJOCO_LOG.TXT in the working directory); our env makers drop that one message and forward
every other warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import gymnasium as gym
import pytest

from trajectory_transformer.data.episodes import DatasetInfo
from trajectory_transformer.envs.factory import env_factory
from trajectory_transformer.envs.make import make_env
from trajectory_transformer.envs.mujoco_log import forward_warning

mujoco = pytest.importorskip("mujoco")


@pytest.fixture
def heard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """MuJoCo warnings that reach a recording handler, with the working directory in tmp_path."""
    monkeypatch.chdir(tmp_path)
    messages: list[str] = []
    before = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(messages.append)
    try:
        yield messages
    finally:
        mujoco.set_mju_user_warning(before)


def test_the_installed_mujoco_warns_about_halfcheetah_without_us(heard: list[str]) -> None:
    gym.make("HalfCheetah-v5").close()  # the premise of the tests below
    assert any("settotalmass" in message for message in heard)


@pytest.mark.parametrize(
    "maker",
    [
        lambda: env_factory(DatasetInfo(dataset="cheetah", env_id="HalfCheetah-v5"))(),
        lambda: env_factory(
            DatasetInfo(dataset="cheetah", env_id="HalfCheetah-v5"), trust_env_code=True
        )(),
        lambda: make_env("HalfCheetah-v5"),
    ],
    ids=["env_factory", "trusted", "collect"],
)
def test_our_env_makers_drop_the_known_deprecation_and_restore_the_handler(
    heard: list[str], tmp_path: Path, maker: Callable[[], gym.Env]
) -> None:
    recorder = mujoco.get_mju_user_warning()
    maker().close()
    assert not any("settotalmass" in message for message in heard)
    assert mujoco.get_mju_user_warning() is recorder  # the previous handler is back
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_other_warnings_still_reach_the_previous_handler_or_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    got: list[str] = []
    forward_warning("Nan, Inf or huge value in QACC at DOF 0", got.append)
    forward_warning(
        "compiler attribute 'settotalmass' is deprecated and will be removed", got.append
    )
    assert got == ["Nan, Inf or huge value in QACC at DOF 0"]
    forward_warning("Nan, Inf or huge value in QACC at DOF 0")
    assert "MuJoCo warning: Nan, Inf or huge value in QACC" in capsys.readouterr().err
