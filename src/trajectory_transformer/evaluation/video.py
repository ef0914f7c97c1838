"""`tt render`: record an agent's episodes to MP4 (ffmpeg) or GIF from the env's rgb_array frames.

Episodes run through the one episode loop (`envs.loop.rollout`, one env); frames come from
`render()` after the reset and after every step, so an episode of T steps gives T + 1 frames. Frames stream to the writer (no list of frames in
memory) and the file appears atomically. Rendering needs system pieces that pip cannot install
(EGL or OSMesa for MuJoCo, pygame for classic control); their absence is a one-line TTError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from .. import runs
from ..envs.agents import Agent
from ..envs.loop import RolloutResult, StepInfo, rollout
from ..errors import TTError
from ..utils import check_output_dir
from .evaluate import prepare_run

__all__ = [
    "EpisodeActions",
    "RecordedEpisode",
    "ReplayDiverged",
    "check_gl_backend",
    "record_episodes",
    "render_run",
    "replay_run",
    "working_gl_backends",
]

_MUJOCO_HINT = (
    "MuJoCo needs an OpenGL backend for headless rendering: set MUJOCO_GL=egl (apt-get install -y "
    "libegl1 libegl-mesa0 libgl1-mesa-dri) or MUJOCO_GL=osmesa (apt-get install -y libosmesa6)"
)


_GL_BACKENDS = {"egl": ("EGL",), "osmesa": ("OSMesa",), "glfw": ("glfw",), "glx": ("GL",)}
"""MUJOCO_GL values and the shared library each needs (glfw and glx also need a display)."""


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def working_gl_backends() -> list[str]:
    """The MUJOCO_GL backends that can work here: their library is installed, and for glfw and
    glx a display is set (a cheap check: nothing is imported or opened)."""
    import ctypes.util

    found = []
    for name, libs in _GL_BACKENDS.items():
        if name in ("glfw", "glx") and not _has_display():
            continue
        if name == "glfw":
            try:
                import glfw  # noqa: F401 - the pip package bundles its library
            except Exception:  # a broken install counts as absent
                continue
            found.append(name)
        elif any(ctypes.util.find_library(lib) for lib in libs):
            found.append(name)
    return found


def _backend_advice() -> str:
    working = working_gl_backends()
    if working:
        return (
            f"backends that work here: {', '.join(working)}; select one with "
            f"MUJOCO_GL={working[0]} tt render ..."
        )
    return f"no backend works here yet; {_MUJOCO_HINT}"


def _uses_mujoco(env: gym.Env[Any, Any]) -> bool:
    return "mujoco" in type(env.unwrapped).__module__


def check_gl_backend(env: gym.Env[Any, Any]) -> None:
    """Before any episode: a MuJoCo env with a MUJOCO_GL that cannot work here is one TTError
    saying which backends do work and how to select one."""
    if not _uses_mujoco(env):
        return
    backend = os.environ.get("MUJOCO_GL", "")
    if backend in ("glfw", "glx") and not _has_display():
        raise TTError(
            f"MUJOCO_GL={backend} needs a display, but DISPLAY is not set; {_backend_advice()}"
        )
    if backend and backend not in _GL_BACKENDS and backend != "disable":
        raise TTError(
            f"MUJOCO_GL={backend} is not a MuJoCo backend (egl, osmesa, glfw or glx); "
            f"{_backend_advice()}"
        )


def _default_gl_backend() -> None:
    """Headless machines have no X display: EGL is MuJoCo's working choice there (see FACTS.md),
    and SDL's dummy driver lets pygame draw classic-control frames off screen."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _make_render_env(make_env: Callable[[], gym.Env[Any, Any]]) -> gym.Env[Any, Any]:
    """MuJoCo picks its GL backend on import, so a missing EGL/OSMesa fails here, not in render()."""
    try:
        return make_env()
    except Exception as err:
        if not _gl_error(err):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise TTError(f"cannot make the env for rendering ({first}); {_MUJOCO_HINT}") from err


def _gl_error(err: BaseException) -> bool:
    """True when the failure comes from MuJoCo's GL backend (it surfaces as assorted types:
    mujoco.FatalError from glfw, PyOpenGL's errors from glx, ImportError, RuntimeError)."""
    seen: BaseException | None = err
    while seen is not None:
        if type(seen).__module__.split(".")[0] in ("mujoco", "OpenGL", "glfw"):
            return True
        tb = seen.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if "mujoco" in name and ("gl_context" in name or "egl" in name or "osmesa" in name):
                return True
            if "mujoco" in name and ("glfw" in name or "glx" in name or "mujoco_rendering" in name):
                return True
            if f"{os.sep}OpenGL{os.sep}" in name or f"{os.sep}glfw{os.sep}" in name:
                return True
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return False


def _check_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise TTError(
            f"env.render() gave {type(frame).__name__}, not an RGB frame; make the env with render_mode='rgb_array'"
        )
    return frame


def _writer(path: Path, fps: int) -> Any:
    import imageio.v2 as imageio

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return imageio.get_writer(path, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
    if suffix == ".mp4":
        # macro_block_size 2: yuv420p needs even sizes; the default (16) would rescale 500x500 frames
        return imageio.get_writer(
            path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2, quality=7
        )
    raise TTError(f"{path}: unknown video format '{suffix}'; use .mp4 or .gif")


def record_episodes(
    make_env: Callable[[], gym.Env[Any, Any]],
    agent: Agent,
    episodes: int,
    path: str | Path,
    fps: int = 30,
    seed: int = 0,
    stop_on_success: bool = False,
) -> tuple[Path, RolloutResult]:
    """Play `episodes` episodes (reset seeds seed, seed+1, ...) into one video file at `path`.

    The episodes run through `envs.loop.rollout` (one env), the loop evaluation uses, with the
    same reset seeds, so a video shows what `tt eval` scores (`stop_on_success` as the run's
    evaluation: a goal run's video ends where its scored episode ends). A planner that samples
    draws from one generator per batch of envs, so its episode equals `tt eval`'s only when that
    ran one env at a time too. Returns the file and the episodes' returns and lengths.
    """
    path = Path(path)
    if episodes < 1:
        raise TTError(f"episodes must be >= 1, got {episodes}")
    _default_gl_backend()
    probe = _make_render_env(make_env)
    mode = probe.render_mode
    try:
        check_gl_backend(probe)
    finally:
        probe.close()
    if mode != "rgb_array":
        raise TTError(f"the env renders in mode {mode!r}; make it with render_mode='rgb_array'")
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise TTError(f"{path}: unknown video format '{suffix}'; use .mp4 or .gif")
    check_output_dir(path.parent, "video folder")
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # same suffix: imageio picks by it
    writer = _writer(tmp, fps)
    finished = False

    def on_frame(_episodes: np.ndarray, frames: list[Any]) -> None:
        for frame in frames:
            writer.append_data(_check_frame(frame))

    try:
        try:
            result = rollout(make_env, agent, episodes, n_envs=1, seed=seed, progress=False,
                             on_frame=on_frame, stop_on_success=stop_on_success)  # fmt: skip
        except TTError:
            raise
        except gym.error.DependencyNotInstalled as err:
            raise TTError(f"rendering needs a missing package: {str(err).splitlines()[0]}") from err
        except (
            Exception
        ) as err:  # GL backends fail with assorted types (ImportError, RuntimeError, ...)
            if not _gl_error(err):
                raise
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            backend = os.environ.get("MUJOCO_GL", "(unset)")
            raise TTError(
                f"cannot render with MUJOCO_GL={backend} ({err.__class__.__name__}: {first}); "
                f"{_backend_advice()}"
            ) from err
        writer.close()
        os.replace(tmp, path)
        finished = True
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
        if not finished:  # leave no empty folders behind (videos/ of a render that failed)
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if empty
    return path, result


@dataclass
class RecordedEpisode:
    """One video file and what happened in it."""

    path: Path
    episode_return: float
    length: int

    def __str__(self) -> str:
        return f"{self.path}: return {self.episode_return:.1f} over {self.length} steps"


def render_run(
    run_dir: str | Path,
    episodes: int = 1,
    overrides: list[str] | None = None,
    verify: bool = True,
) -> list[RecordedEpisode]:
    """Record the run's planner to RUN_DIR/videos/episode_<i>.mp4 (seeds eval.seed + i).

    `verify=False` skips the checksums of the weights and the discretizer (`--ignore-checksums`).
    """

    run_dir = Path(run_dir)
    if episodes < 1:
        raise TTError(f"--episodes must be >= 1, got {episodes}")
    _default_gl_backend()
    backend = os.environ.get("MUJOCO_GL", "")
    if backend and backend not in _GL_BACKENDS and backend != "disable":
        raise TTError(
            f"MUJOCO_GL={backend} is not a MuJoCo backend (egl, osmesa, glfw or glx); "
            f"{_backend_advice()}"
        )
    out_dir = run_dir / runs.VIDEOS_DIR
    check_output_dir(out_dir, "video folder", "make the run folder writable")
    prep = prepare_run(run_dir, overrides, "planner", render_mode="rgb_array", verify=verify)
    recorded = []
    for i in range(episodes):
        path, result = record_episodes(
            prep.make_env,
            prep.agent,
            1,
            out_dir / f"episode_{i}.mp4",
            seed=prep.config.eval.seed + i,
            stop_on_success=prep.config.stop_on_success,
        )
        recorded.append(RecordedEpisode(path, float(result.returns[0]), int(result.lengths[0])))
    return recorded


class EpisodeActions:
    """An `on_step` observer that keeps the actions of one episode of an evaluation.

    Replaying them in a rendering env (`replay_run`) films the very episode the evaluation scored,
    for the cost of rendering: planning it again with one env cost the quickstart ~28 s of its
    ~14 min on the AMD CPU kind, and showed a different episode (the planner samples per batch).
    """

    def __init__(self, episode: int = 0) -> None:
        self.episode = episode
        self.actions: list[np.ndarray] = []  # (act_dim,) flat actions as the agent chose them

    def __call__(self, step: StepInfo) -> None:
        hit = np.flatnonzero(step.episodes == self.episode)
        if hit.size:
            self.actions.append(step.actions[int(hit[0])].copy())


class ReplayDiverged(TTError):
    """The replay did not retrace the logged episode (an env that is random beyond its seed)."""


class _ReplayAgent:
    """Plays logged actions back in order (one env): an `Agent` for `rollout`."""

    def __init__(self, actions: list[np.ndarray]) -> None:
        self.actions = actions
        self.t = 0

    def reset(self, slots: np.ndarray) -> None:
        pass

    def act(self, slots: np.ndarray, observations: np.ndarray) -> np.ndarray:
        if self.t >= len(self.actions):
            raise ReplayDiverged(
                f"the replayed episode outlived its {len(self.actions)} logged actions"
            )
        action = self.actions[self.t]
        self.t += 1
        return action[None, :]  # (1, act_dim)

    def record(self, slots: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


def replay_run(
    run_dir: str | Path,
    log: EpisodeActions,
    seed: int,
    episode_return: float,
    overrides: list[str] | None = None,
    verify: bool = True,
) -> RecordedEpisode:
    """Film a scored episode of `evaluate_run(run_dir, observe=log)` to RUN_DIR/videos/.

    `seed` is the episode's reset seed (eval.seed + log.episode), `episode_return` the return the
    evaluation recorded for it and `overrides` the evaluation's. The replay must retrace it exactly
    (same length, bit-equal return), else `ReplayDiverged` says so and no video is left: an env
    whose steps draw randomness beyond its reset seed cannot be replayed, and its video must be
    planned again (`render_run`).
    """

    if not log.actions:
        raise ReplayDiverged(f"no actions were logged for episode {log.episode}: nothing to replay")
    _default_gl_backend()
    # the env exactly as the evaluation made it (the run's eval settings); the agent is unused
    prep = prepare_run(Path(run_dir), overrides, "random", render_mode="rgb_array", verify=verify)
    path = Path(run_dir) / runs.VIDEOS_DIR / f"episode_{log.episode}.mp4"
    tmp = path.with_name(f".replay-{path.name}")
    where = f"cannot replay episode {log.episode} of {run_dir}"
    try:
        try:
            _, result = record_episodes(prep.make_env, _ReplayAgent(log.actions), 1, tmp,
                                        seed=seed, stop_on_success=prep.config.stop_on_success)  # fmt: skip
        except ReplayDiverged as err:
            raise ReplayDiverged(f"{where}: {err}") from err
        length, replayed = int(result.lengths[0]), float(result.returns[0])
        if length != len(log.actions) or replayed != episode_return:
            raise ReplayDiverged(
                f"{where}: it gave return {replayed} over {length} steps, not the evaluated "
                f"{episode_return} over {len(log.actions)} (the env is random beyond its reset "
                "seed); plan the video instead (`tt render`)"
            )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful replace
    return RecordedEpisode(path, replayed, length)
