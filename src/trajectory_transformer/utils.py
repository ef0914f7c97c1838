"""Small shared helpers: atomic writes, seeding, device choice, the user-facing error type."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import TTError

__all__ = [
    "TTError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "lazy_import",
    "read_json",
    "resolve_device",
    "seed_everything",
]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed over `path`.

    An interrupted or failed write leaves the previous file untouched and no partial file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | os.PathLike[str], what: str = "file") -> Any:
    """Read JSON, turning a missing or corrupt file into a one-line TTError naming it."""
    p = Path(path)
    if not p.is_file():
        raise TTError(f"{p}: missing {what}")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TTError(
            f"{p}: corrupt {what} ({err.__class__.__name__}); restore or delete it"
        ) from err


def seed_everything(seed: int) -> np.random.Generator:
    """One seed for Python, NumPy and torch; returns a NumPy generator derived from it."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TTError(f"device '{name}' was asked for but CUDA is not available; use device=cpu")
    return device


def lazy_import(module: str, extra: str) -> Any:
    """Import an optional dependency, telling the user which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise TTError(
            f"'{module}' is needed for this; install it with pip install 'trajectory-transformer[{extra}]'"
        ) from err
