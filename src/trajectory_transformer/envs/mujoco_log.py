"""Keeping one known MuJoCo deprecation warning out of the logs.

Gymnasium's HalfCheetah-v5 XML sets `<compiler settotalmass=...>`, which MuJoCo >= 3.3 still
applies but warns about on every model compile: one line on stdout and one in MUJOCO_LOG.TXT in
the working directory, per env made. A PPO recipe or an evaluation makes hundreds of envs, so the
warning buried the progress lines (237 copies in the first 6 minutes of a HalfCheetah recipe).
It is Gymnasium's model file against the installed MuJoCo, nothing a user can act on, so envs are
made with that one message dropped; every other MuJoCo warning is still printed (to stderr).
The handler is MuJoCo's process-global warning callback, so it is set only around the make and
the previous one restored.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

__all__ = ["KNOWN_DEPRECATIONS", "forward_warning", "quiet_mujoco_deprecations"]

# Substrings of MuJoCo warnings that come from Gymnasium's own model files (not the user's).
KNOWN_DEPRECATIONS: tuple[str, ...] = ("compiler attribute 'settotalmass' is deprecated",)


def forward_warning(message: str, previous: Callable[[str], None] | None = None) -> None:
    """Drop a known deprecation; hand any other warning to `previous`, else print it to stderr."""
    if any(known in message for known in KNOWN_DEPRECATIONS):
        return
    if previous is not None:
        previous(message)
    else:
        print(f"MuJoCo warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_mujoco_deprecations() -> Iterator[None]:
    """Within the block, MuJoCo's known Gymnasium-model deprecations are not printed or logged."""
    try:
        import mujoco
    except ImportError:  # no MuJoCo envs here, so nothing to quiet
        yield
        return
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda message: forward_warning(message, previous))
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)
