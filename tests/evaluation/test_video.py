"""Videos decode and hold one frame per rendered step (reset + every env step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

from trajectory_transformer.envs.agents import RandomAgent
from trajectory_transformer.errors import TTError
from trajectory_transformer.evaluation.video import record_episodes

STEPS = 12


def make_pendulum() -> gym.Env[Any, Any]:
    return gym.make("Pendulum-v1", render_mode="rgb_array", max_episode_steps=STEPS)


def _can_render() -> str | None:
    try:
        env = make_pendulum()
        env.reset(seed=0)
        env.render()
        env.close()
    except gym.error.DependencyNotInstalled as err:  # only a missing renderer skips; bugs fail
        return f"Pendulum-v1 cannot render here ({err.__class__.__name__}: {err}); install pygame"
    return None


pytestmark = pytest.mark.skipif(_can_render() is not None, reason=str(_can_render()))


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_frame_count(tmp_path: Path, suffix: str) -> None:
    episodes = 2
    agent = RandomAgent(make_pendulum().action_space, seed=0)
    path, result = record_episodes(make_pendulum, agent, episodes, tmp_path / f"ep{suffix}", fps=30)
    assert result.lengths.tolist() == [STEPS] * episodes
    assert path.is_file() and path.stat().st_size > 0
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    plugin = "FFMPEG" if suffix == ".mp4" else "pillow"  # decode with an independent reader
    frames = list(iio.imiter(path, plugin=plugin))
    assert len(frames) == episodes * (STEPS + 1)
    first = np.asarray(frames[0])
    assert first.ndim == 3 and first.shape[0] == 500 and first.std() > 0  # a real picture


def test_video_errors(tmp_path: Path) -> None:
    agent = RandomAgent(make_pendulum().action_space, seed=0)
    with pytest.raises(TTError, match="rgb_array"):
        record_episodes(lambda: gym.make("Pendulum-v1"), agent, 1, tmp_path / "x.mp4")
    with pytest.raises(TTError, match=r"mp4 or \.gif"):
        record_episodes(make_pendulum, agent, 1, tmp_path / "x.avi")
    assert not list(tmp_path.iterdir())


def test_video_plays_the_same_episodes_as_evaluation(tmp_path: Path) -> None:
    """One episode loop: the recorded episodes equal `rollout`'s for the same agent and seeds."""
    from trajectory_transformer.envs.loop import rollout

    space = make_pendulum().action_space
    _, recorded = record_episodes(make_pendulum, RandomAgent(space, seed=3), 2, tmp_path / "v.gif")
    evaluated = rollout(make_pendulum, RandomAgent(space, seed=3), 2, n_envs=1, progress=False)
    np.testing.assert_array_equal(recorded.returns, evaluated.returns)
    np.testing.assert_array_equal(recorded.lengths, evaluated.lengths)


class _SucceedsAtStep(gym.Wrapper[Any, Any, Any, Any]):
    """Pendulum whose info reports success from step `at` on (a goal env's `info["success"]`)."""

    def __init__(self, env: gym.Env[Any, Any], at: int) -> None:
        super().__init__(env)
        self.at, self.t = at, 0

    def reset(self, **kwargs: Any) -> Any:
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return obs, reward, terminated, truncated, {**info, "success": self.t >= self.at}


@pytest.mark.parametrize("stop", [True, False])
def test_video_ends_where_a_goal_episode_is_scored(tmp_path: Path, stop: bool) -> None:
    """`stop_on_success` (a goal run's evaluation) ends the filmed episode at success, as `tt eval`."""

    def make() -> gym.Env[Any, Any]:
        return _SucceedsAtStep(make_pendulum(), at=4)

    agent = RandomAgent(make().action_space, seed=0)
    path, result = record_episodes(make, agent, 1, tmp_path / "g.gif", stop_on_success=stop)
    expected = 4 if stop else STEPS
    assert result.lengths.tolist() == [expected]
    assert len(list(iio.imiter(path, plugin="pillow"))) == expected + 1


@pytest.mark.parametrize("backend", ["glfw", "glx"])
def test_a_display_backend_without_display_names_the_ones_that_work(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MUJOCO_GL=glfw gave mujoco.FatalError and an empty videos/, glx a 75-line traceback."""
    pytest.importorskip("mujoco")
    from trajectory_transformer.evaluation.video import working_gl_backends

    monkeypatch.setenv("MUJOCO_GL", backend)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)

    def make_hopper() -> gym.Env[Any, Any]:
        return gym.make("Hopper-v5", render_mode="rgb_array", max_episode_steps=3)

    agent = RandomAgent(make_hopper().action_space, seed=0)
    with pytest.raises(TTError) as err:
        record_episodes(make_hopper, agent, 1, tmp_path / "videos" / "episode_0.mp4")
    msg = str(err.value)
    assert msg.startswith(f"MUJOCO_GL={backend} needs a display, but DISPLAY is not set; "), msg
    working = working_gl_backends()
    assert backend not in working
    if working:
        assert msg.endswith(f"select one with MUJOCO_GL={working[0]} tt render ..."), msg
    assert not (tmp_path / "videos").exists()  # no empty folder left behind
