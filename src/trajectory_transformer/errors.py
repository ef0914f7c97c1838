"""The two user-facing error types, in a module that imports nothing heavy (the CLI loads it first).

Both mean "the user can fix this": the CLI prints the one-line message and exits 2, never a
traceback. `ConfigError` is the kind raised for a bad config key or value; it is also a ValueError
so code that validates plain arguments can catch it the usual way.
"""

from __future__ import annotations

__all__ = ["ConfigError", "TTError"]


class TTError(Exception):
    """An error the user can fix; the CLI prints its one-line message instead of a traceback."""


class ConfigError(TTError, ValueError):
    """A bad config key or value; the message names the key and what to do."""
