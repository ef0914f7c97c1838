"""The two user-facing error types, in a module that imports nothing heavy (the CLI loads it first).

Both mean "the user can fix this": the CLI prints the one-line message and exits 2, never a
traceback. `ConfigError` is the kind raised for a bad config key or value; it is also a ValueError
so code that validates plain arguments can catch it the usual way. Warnings reach a CLI user the
same way, one line each (`one_line_warnings`).
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator

__all__ = ["ConfigError", "TTError", "one_line_warnings"]


class TTError(Exception):
    """An error the user can fix; the CLI prints its one-line message instead of a traceback."""


class ConfigError(TTError, ValueError):
    """A bad config key or value; the message names the key and what to do."""


@contextlib.contextmanager
def one_line_warnings(prefix: str) -> Iterator[None]:
    """Show each warning as `PREFIX: warning: MESSAGE`, one line, without Python's file and line
    (and without Gymnasium's colour codes and `WARN:` prefix)."""

    def show(message: Warning | str, *args: object, **kwargs: object) -> None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(message)).strip().removeprefix("WARN: ")
        print(f"{prefix}: warning: {' '.join(text.split())}", file=sys.stderr)

    saved = warnings.showwarning
    warnings.showwarning = show  # type: ignore[assignment]
    try:
        yield
    finally:
        warnings.showwarning = saved
