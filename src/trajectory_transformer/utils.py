"""Small shared helpers: atomic writes, tensor checksums, seeding, device choice, the folder lock."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open

from .errors import TTError

__all__ = [
    "DIGEST_KEY",
    "IGNORE_CHECKSUMS_HINT",
    "LOCK_FILE",
    "TTError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "available_memory",
    "check_memory",
    "check_output_dir",
    "check_tensor_digest",
    "lazy_import",
    "lock_run_dir",
    "read_json",
    "read_safetensors",
    "resolve_device",
    "seed_everything",
    "tensor_digest",
]

DIGEST_KEY = "sha256"
"""The safetensors metadata key that holds a file's `tensor_digest`."""
IGNORE_CHECKSUMS_HINT = (
    "restore the file, or pass --ignore-checksums (tt eval, tt render, tt train --resume) "
    "if you changed it on purpose"
)


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


def _tensor_bytes(value: Any) -> tuple[str, list[int], bytes]:
    """(dtype name, shape, raw bytes in C order) of a torch tensor or NumPy array."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        return str(t.dtype).removeprefix("torch."), list(t.shape), raw
    arr = np.ascontiguousarray(value)
    return arr.dtype.name, list(arr.shape), arr.tobytes()


def tensor_digest(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> str:
    """SHA-256 over a file's tensors (sorted by name: name, dtype, shape, raw bytes) and metadata.

    Stored in the safetensors metadata under `DIGEST_KEY` when a file is written and recomputed
    when it is read, so flipped bytes in a tensor (or an edited metadata value) are caught. Every
    field is length-prefixed, so no two different payloads hash the same bytes. The dtype names
    are torch's and NumPy's common names (float32, int64, ...), identical for both.
    """
    h = hashlib.sha256(b"trajectory_transformer.tensors/1\0")

    def put(data: bytes) -> None:
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    meta = {k: v for k, v in (metadata or {}).items() if k != DIGEST_KEY}
    put(json.dumps(sorted(meta.items())).encode())
    for name in sorted(tensors):
        dtype, shape, raw = _tensor_bytes(tensors[name])
        put(json.dumps([name, dtype, shape]).encode())
        put(raw)
    return h.hexdigest()


def check_tensor_digest(
    path: str | os.PathLike[str],
    tensors: Mapping[str, Any],
    metadata: Mapping[str, str] | None,
    hint: str = IGNORE_CHECKSUMS_HINT,
) -> None:
    """A one-line TTError naming `path` when its stored checksum is missing or does not match."""
    stored = (metadata or {}).get(DIGEST_KEY)
    if not stored:
        raise TTError(
            f"{path}: no {DIGEST_KEY} checksum in its metadata (written by another tool or an "
            f"older version), so its integrity cannot be checked; {hint}"
        )
    if stored != tensor_digest(tensors, metadata):
        raise TTError(
            f"{path}: checksum mismatch: its contents changed after it was written (a corrupt "
            f"or edited file); {hint}"
        )


def read_safetensors(
    path: str | os.PathLike[str],
    framework: str,
    *,
    what: str,
    corrupt: str,
    verify: bool = True,
    hint: str = IGNORE_CHECKSUMS_HINT,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The one safetensors read-and-verify (model weights, checkpoints, the discretizer).

    Returns (tensors, metadata), read on the CPU. A missing file, a bad header or (with `verify`)
    a checksum that is missing or does not match is a one-line TTError naming the file: "missing
    {what} file", "{corrupt}" with the error type, or the checksum message ending in `hint`.
    """
    p = Path(path)
    if not p.is_file():
        raise TTError(f"{p}: missing {what} file")
    try:
        with safe_open(str(p), framework=framework, device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise TTError(corrupt.format(path=p, error=err.__class__.__name__)) from err
    if verify:
        check_tensor_digest(p, tensors, metadata, hint)
    return tensors, metadata


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


def resolve_device(name: str = "auto", key: str = "device") -> torch.device:
    """The torch device `name` asks for, refused in one line (naming config `key`) where this
    PyTorch cannot use it: no CUDA, a CUDA index past the last GPU, or no MPS."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TTError(f"{key}={name} was asked for but CUDA is not available; use {key}=cpu")
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise TTError(
                f"{key}={name} was asked for but this machine has {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1}); use {key}=cuda:0 or {key}=auto"
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise TTError(
                f"{key}={name} was asked for but this PyTorch has no MPS (Apple GPU) support "
                f"here; use {key}=cpu or {key}=auto"
            )
    return device


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on `device` (CUDA: free GPU memory; else available RAM), or
    None where it cannot be told."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # no driver, a simulated device: unknown, not an error
            return None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:,.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:,.1f} MB"


def check_memory(needed: float, device: torch.device, what: str, hint: str) -> None:
    """Refuse before allocating when an estimate of the bytes `what` needs exceeds what is free.

    `what` says which setting asks for it (e.g. "plan.beam_width=1000000 ..."), `hint` what to
    lower. Where free memory cannot be told, nothing is refused.
    """
    free = available_memory(device)
    if free is not None and needed > free:
        where = "GPU memory" if device.type == "cuda" else "memory"
        raise TTError(
            f"{what} needs about {_gb(needed)} of {where}, but {_gb(free)} is available on "
            f"{device}; {hint}"
        )


def check_output_dir(path: str | os.PathLike[str], what: str, hint: str = "") -> Path:
    """Check, before any work, that folder `path` exists or can be made and can be written.

    Walks up to the nearest existing ancestor: a file on the way ("a file, not a folder") or a
    folder that refuses a new file (permissions, `chattr +i`, a read-only mount: root ignores
    permission bits, so writing is tried, not `os.access`) is one TTError naming the path and what
    is wrong. Nothing is created but a probe file that is removed at once.
    """
    target = Path(path)
    extra = f"; {hint}" if hint else ""
    probe_dir = target
    while not probe_dir.exists():
        if probe_dir.is_symlink():  # a dangling link
            raise TTError(f"{target}: {what} path {probe_dir} is a broken link{extra}")
        parent = probe_dir.parent
        if parent == probe_dir:
            break
        probe_dir = parent
    if probe_dir.exists() and not probe_dir.is_dir():
        blame = "is" if probe_dir == target else f"sits under {probe_dir}, which is"
        raise TTError(f"{target}: the {what} {blame} a file, not a folder{extra}")
    try:
        fd, name = tempfile.mkstemp(prefix=".tt-write-check.", dir=probe_dir)
    except OSError as err:
        reason = err.strerror or err.__class__.__name__
        where = "" if probe_dir == target else f" (it would be made in {probe_dir})"
        raise TTError(f"{target}: cannot write the {what} here{where}: {reason}{extra}") from None
    os.close(fd)
    os.unlink(name)
    return target


def lazy_import(module: str, extra: str) -> Any:
    """Import an optional dependency, telling the user which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise TTError(
            f"'{module}' is needed for this; install it with pip install 'trajectory-transformer[{extra}]'"
        ) from err


# ------------------------------------------------------------------------------ one writer at a time
LOCK_FILE = ".tt-lock"


@contextlib.contextmanager
def lock_run_dir(run_dir: str | os.PathLike[str], purpose: str) -> Iterator[None]:
    """Hold RUN_DIR/.tt-lock while this process writes the run folder; a second writer is refused.

    An OS file lock (flock) is released by the kernel when its holder dies, so a killed run leaves
    no stale lock; the file only records who holds it (pid, host, purpose, start) for the message.
    """
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    try:
        import fcntl
    except ImportError:  # no flock (Windows): run unlocked rather than not at all
        yield
        return
    handle = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise TTError(
                f"{root} is in use by {holder}; wait for it to finish or stop it "
                "(two writers would interleave its metrics and checkpoints)"
            ) from None
        handle.seek(0)
        handle.truncate()
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} ({purpose}, since {since})\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
