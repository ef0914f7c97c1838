"""The local Minari store: dataset ids, staging, publish, recover, open/download.

The one contract between those who write datasets (sources/: `tt collect`, the recipes) and
those who read them (data/: TT's pipeline). It knows no producer: where a missing dataset's error
says how to make it, the command comes from `collect_hint`, which a producer registers
(sources/hints.py); without one the hint is a generic `tt collect` command.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import TTError
from .utils import atomic_write_bytes, atomic_write_json, check_output_dir

__all__ = [
    "COLLECT_RECORD_KEY",
    "ID_FORM",
    "check_dataset_id",
    "check_writable_root",
    "collect_hint",
    "collect_record",
    "dataset_id_problem",
    "dataset_problem",
    "load_minari",
    "minari_datasets_path",
    "minari_root",
    "network_problem",
    "publish_dataset",
    "read_guarded",
    "recover_interrupted",
    "register_collect_hint",
    "staging_root",
    "target_conflict",
]

COLLECT_RECORD_KEY = "tt_collect"
"""Minari metadata key of the `tt collect` settings (`collect.collect_record`), read into
`DatasetInfo.collect_settings`."""


def minari_root() -> Path:
    """Where Minari keeps local datasets (MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    return Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))


# ------------------------------------------------------------------------ the local Minari store
# Minari lays a dataset out as <root>/<namespace...>/<name>-vN/data/{metadata.json, main_data.hdf5}
# with namespace_metadata.json in each namespace folder, and skips dot-folders when it lists.
# We write (collect) and download into a dot-prefixed staging folder inside the root and rename the
# finished dataset into place, so a dataset appears only when complete (DESIGN: lose nothing).

ID_FORM = "namespace/name-vN, e.g. tt/pendulum/noisy-expert-v0"
"""The valid dataset id form, shown in every id error."""

_VERSIONED = re.compile(r"(?P<name>.*)-v(?:0|[1-9][0-9]*)\Z")
_STAGING_PREFIX = ".tt-staging-"
_STAGING_NAME = re.compile(r"\.tt-staging-(?P<host>.*)-(?P<pid>\d+)-[^-]*\Z")
_OWNER_FILE = "owner.json"
_NAMESPACE_FILE = "namespace_metadata.json"


def dataset_id_problem(dataset_id: str) -> str | None:
    """Why `dataset_id` is not a safe Minari id (None if it is one).

    Stricter than Minari's own regex: ASCII parts only, no '.'/'..', no absolute paths, so an id
    can never name a folder outside the datasets root.
    """
    if not dataset_id:
        return "it is empty"
    if dataset_id.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:", dataset_id):
        return "it is a path, not an id"
    if "\\" in dataset_id:
        return "it contains '\\'"
    parts = dataset_id.split("/")
    if "" in parts:
        return "it has an empty part between '/'"
    dots = next((p for p in parts if p in (".", "..")), None)
    if dots is not None:
        return f"'{dots}' parts are not allowed"
    match = _VERSIONED.match(parts[-1])
    if match is None:
        return "it does not end in a version -vN"
    if not match["name"]:
        return "it has no name before -vN"
    for part in [*parts[:-1], match["name"]]:
        bad = next((c for c in part if not (c.isascii() and (c.isalnum() or c in "_-"))), None)
        if bad is not None:
            return f"character {bad!r} is not allowed (letters, digits, '_', '-', '/')"
        if part.startswith("-"):
            return f"part '{part}' starts with '-'"
    return None


def check_dataset_id(dataset_id: str, key: str) -> None:
    """Raise a one-line TTError unless `dataset_id` is a valid id (see `dataset_id_problem`)."""
    problem = dataset_id_problem(dataset_id)
    if problem is not None:
        raise TTError(
            f"{key}={dataset_id!r} is not a valid Minari dataset id ({problem}); use {ID_FORM}"
        )


def dataset_problem(folder: Path) -> str | None:
    """Why the dataset folder `folder` (<root>/<id>) is incomplete or unreadable (None if fine).

    Reads metadata.json and opens the HDF5 file (a truncated one fails to open), so a half-written
    dataset is caught here instead of as an HDF5 traceback in the middle of training.
    """
    data = folder / "data"
    meta_file = data / "metadata.json"
    if not data.is_dir():
        return f"{data} is missing"
    try:
        meta = json.loads(meta_file.read_text())
    except FileNotFoundError:
        return f"{meta_file} is missing"
    except (OSError, ValueError) as err:
        return f"{meta_file} is corrupt ({err.__class__.__name__})"
    if not isinstance(meta, dict):
        return f"{meta_file} is corrupt (not a JSON object)"
    if meta.get("data_format", "hdf5") != "hdf5":
        return None  # arrow: Minari reads it lazily; nothing cheap to check beyond the metadata
    main = data / "main_data.hdf5"
    if not main.is_file():
        return f"{main} is missing"
    try:
        import h5py

        with h5py.File(main, "r") as handle:
            n_stored = sum(1 for name in handle if name.startswith("episode_"))
    except OSError as err:
        reason = str(err).splitlines()[0][:100] if str(err) else err.__class__.__name__
        return f"{main} is truncated or corrupt ({reason})"
    total = meta.get("total_episodes")
    if isinstance(total, int) and n_stored < total:
        return f"{main} holds {n_stored} of its {total} episodes"
    return None


def _staging_alive(stage: Path) -> bool:
    """Whether the process that made this staging folder may still be writing it."""
    match = _STAGING_NAME.match(stage.name)
    if match is None or match["host"] != _host_tag():
        return True  # not ours to judge (another machine sharing the folder): leave it alone
    pid = int(match["pid"])
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"


def check_writable_root() -> Path:
    """The datasets root (MINARI_DATASETS_PATH), checked before a producer does any work: a root
    that is a file, sits under one, or cannot be written is one TTError naming it."""
    root = minari_root()
    check_output_dir(
        root,
        "datasets root (MINARI_DATASETS_PATH)",
        "point MINARI_DATASETS_PATH at a folder you can write",
    )
    return root


def recover_interrupted(root: Path) -> None:
    """Clean up after a killed `tt collect` or download: restore a dataset it had moved aside.

    A replace moves the old dataset to <staging>/replaced before renaming the new one in; if the
    process died between the two renames, the old one is put back here. Staging folders of live
    processes (or of other hosts) are left alone; Minari ignores them either way (dot-folders).
    """
    if not root.is_dir():
        return
    for stage in sorted(root.glob(f"{_STAGING_PREFIX}*")):
        if not stage.is_dir() or _staging_alive(stage):
            continue
        aside = stage / "replaced"
        if aside.is_dir() and not _restore_aside(root, stage, aside):
            continue  # never delete the only copy of a dataset
        shutil.rmtree(stage, ignore_errors=True)


def _restore_aside(root: Path, stage: Path, aside: Path) -> bool:
    """Put a moved-aside dataset back; True if it is back or superseded (the stage may go)."""
    try:
        dataset_id = json.loads((stage / _OWNER_FILE).read_text())["dataset_id"]
    except (OSError, ValueError, KeyError, TypeError):
        dataset_id = None
    if not isinstance(dataset_id, str) or dataset_id_problem(dataset_id) is not None:
        warnings.warn(f"{aside}: a dataset an interrupted tt collect moved aside", stacklevel=3)
        return False
    target = root / dataset_id
    if target.exists():
        return True  # the new dataset made it into place: the old one is not needed
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(aside, target)
    except OSError as err:
        warnings.warn(
            f"{aside}: cannot restore Minari dataset '{dataset_id}' there ({err}); move it to "
            f"{target} by hand",
            stacklevel=3,
        )
        return False
    warnings.warn(
        f"restored Minari dataset '{dataset_id}' that an interrupted tt collect had moved aside",
        stacklevel=3,
    )
    return True


@contextlib.contextmanager
def staging_root(root: Path, dataset_id: str) -> Iterator[Path]:
    """A fresh Minari root hidden inside `root`, for writing a dataset before publishing it.

    Yields `<root>/.tt-staging-<host>-<pid>-<random>/root`; the whole staging folder is removed on
    exit (a killed process leaves it behind; `recover_interrupted` removes it later).
    """
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(
        tempfile.mkdtemp(prefix=f"{_STAGING_PREFIX}{_host_tag()}-{os.getpid()}-", dir=root)
    )
    try:
        atomic_write_json(stage / _OWNER_FILE, {"dataset_id": dataset_id})
        (stage / "root").mkdir()
        yield stage / "root"
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def minari_datasets_path(path: Path) -> Iterator[None]:
    """Point Minari (which reads MINARI_DATASETS_PATH on every call) at `path` for a while."""
    saved = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = saved


def _fsync_tree(folder: Path) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


def target_conflict(root: Path, dataset_id: str) -> str | None:
    """Why <root>/<dataset_id> cannot hold a dataset because of what is above it (None if it can)."""
    folder = root
    for part in dataset_id.split("/")[:-1]:
        folder = folder / part
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a namespace folder"
        if (folder / "data").is_dir():
            return f"{folder} is a dataset, so it cannot also be a namespace"
    return None


def publish_dataset(staged: Path, dataset_id: str, root: Path, replace: bool = False) -> None:
    """Move the complete dataset `staged/<id>` to `root/<id>` (atomic renames on one filesystem).

    With `replace`, an existing dataset is renamed aside first and deleted only after the new one
    is in place; if renaming the new one in fails, the old one is put back.
    """
    src, dst = staged / dataset_id, root / dataset_id
    problem = dataset_problem(src)
    if problem is not None:
        raise TTError(f"dataset '{dataset_id}' was not written completely ({problem})")
    conflict = target_conflict(root, dataset_id)
    if conflict is not None:
        raise TTError(f"dataset '{dataset_id}' cannot be placed in {root}: {conflict}")
    _fsync_tree(src)
    folder, staged_ns = root, staged  # namespace folders and their metadata, outermost first
    for part in dataset_id.split("/")[:-1]:
        folder, staged_ns = folder / part, staged_ns / part
        folder.mkdir(exist_ok=True)
        if not (folder / _NAMESPACE_FILE).exists() and (staged_ns / _NAMESPACE_FILE).is_file():
            atomic_write_bytes(folder / _NAMESPACE_FILE, (staged_ns / _NAMESPACE_FILE).read_bytes())
    if dst.exists() or dst.is_symlink():
        if not replace:
            raise TTError(
                f"Minari dataset '{dataset_id}' appeared in {root} while this one was written; "
                "nothing was replaced"
            )
        aside = staged.parent / "replaced"
        os.rename(dst, aside)
        try:
            os.rename(src, dst)
        except BaseException:
            os.rename(aside, dst)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(src, dst)


_HINTS: list[Callable[[str], str]] = []


def register_collect_hint(hint: Callable[[str], str]) -> None:
    """Let a producer say which `tt collect` command makes a dataset id (the last one wins).

    The store must not import its producers (they import it), so they register here instead.
    """
    if hint not in _HINTS:
        _HINTS.append(hint)


def collect_hint(dataset_id: str) -> str:
    """A `tt collect` command that makes `dataset_id` (the registered producer's, else generic)."""
    if _HINTS:
        return _HINTS[-1](dataset_id)
    return (
        f"tt collect collect.env=<GymEnvId> collect.policy=<policy> collect.dataset_id={dataset_id}"
    )


def _looks_like_path(spec: str) -> bool:
    """Whether data.dataset names a file system path rather than a Minari id."""
    if spec in (".", "..") or spec.startswith(("/", "./", "../", "~", ".\\", "..\\")):
        return True
    if spec.endswith((".hdf5", ".json")):
        return True
    return any(sep in spec for sep in (os.sep, os.altsep or os.sep) if sep != "/")


def _unreadable(spec: str, folder: Path, problem: str) -> TTError:
    """The one-line error for a damaged local dataset: which file, and how to get it back."""
    if spec.split("/")[0] == "tt":
        fix = f"collect it again, replacing it: {collect_hint(spec)} collect.overwrite=true"
    else:
        fix = f"delete {folder} and load it again to download it afresh"
    return TTError(f"Minari dataset '{spec}' is incomplete or corrupt: {problem}; {fix}")


def _open_folder(path: Path, key: str) -> Any:
    """A dataset given as a local folder (<id folder>, its data/ folder, or a file in data/)."""
    import minari

    if path.is_file() and path.name in ("main_data.hdf5", "metadata.json"):
        path = path.parent
    data = path / "data" if (path / "data").is_dir() else path
    problem = dataset_problem(data.parent) if data.name == "data" else None
    if problem is None and not (data / "metadata.json").is_file():
        problem = f"{data} holds no metadata.json"
    if problem is not None:
        raise TTError(f"{key}={path}: not a readable Minari dataset folder ({problem})")
    try:
        return minari.MinariDataset(str(data))
    except Exception as err:
        raise TTError(
            f"{key}={path}: not a readable Minari dataset folder ({err.__class__.__name__}: {err})"
        ) from None


def _open_local(spec: str, folder: Path) -> Any:
    import minari

    if not (folder / "data").is_dir():
        raise TTError(
            f"{folder} exists but is not a Minari dataset (no data/ folder); move it away, then "
            f"make the dataset with: {collect_hint(spec)}"
        )
    problem = dataset_problem(folder)
    if problem is not None:
        raise _unreadable(spec, folder, problem)
    try:
        return minari.MinariDataset(str(folder / "data"))
    except Exception as err:
        raise _unreadable(spec, folder, f"{err.__class__.__name__}: {err}") from None


def _staged_datasets(staged: Path) -> list[str]:
    """Ids of the datasets under a staging root (a download may bring combined sub-datasets)."""
    return sorted(
        p.parent.relative_to(staged).as_posix() for p in staged.rglob("data") if p.is_dir()
    )


_PROBE_TIMEOUT_S = 3.0
_OFF = ("1", "true", "yes", "on")


def network_problem() -> str | None:
    """Why Minari's remote cannot be reached now, or None when its host accepts a connection.

    One TCP connect (through HTTPS_PROXY when one is set) with a 3 s limit: offline, the download
    would otherwise spend ~25 s on retries before failing. `HF_HUB_OFFLINE` counts as offline.
    """
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in _OFF:
        return "HF_HUB_OFFLINE is set"
    remote = os.environ.get("MINARI_REMOTE", "hf://farama-minari")
    if remote.startswith("hf://"):
        url = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    elif remote.startswith("gcp://"):
        url = "https://storage.googleapis.com"
    else:  # a remote we do not know how to probe: let Minari try
        return None
    url = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or url
    parsed = urlparse(url if "://" in url else f"http://{url}")
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return None
    try:
        socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"no network: {host}:{port} cannot be reached ({err.__class__.__name__})"
    return None


def _download(spec: str, root: Path) -> None:
    """Download a remote Minari dataset (needs huggingface_hub) into `root`, atomically."""
    import minari

    offline = network_problem()
    if offline is not None:
        raise TTError(
            f"dataset '{spec}' is not available locally (in {root}) and cannot be downloaded "
            f"({offline}); make a local one with: {collect_hint(spec)}"
        )
    with staging_root(root, spec) as staged:
        try:
            with (
                minari_datasets_path(staged),
                warnings.catch_warnings(),
                contextlib.redirect_stdout(io.StringIO()),  # Minari names the staging folder
            ):
                warnings.simplefilter("ignore")
                minari.load_dataset(spec, download=True)
        except Exception as err:
            reason = str(err).splitlines()[0][:120] if str(err) else err.__class__.__name__
            raise TTError(
                f"dataset '{spec}' is not available locally (in {root}) and cannot be downloaded "
                f"({reason}); make a local one with: {collect_hint(spec)}"
            ) from None
        if spec not in _staged_datasets(staged):
            raise TTError(f"downloading dataset '{spec}' produced no dataset of that id")
        for dataset_id in _staged_datasets(staged):
            if dataset_id_problem(dataset_id) is None and not (root / dataset_id).exists():
                publish_dataset(staged, dataset_id, root)
    print(f"downloaded Minari dataset '{spec}' to {root / spec}", file=sys.stderr)


def load_minari(spec: str, key: str = "data.dataset") -> Any:
    """A Minari dataset by id (local, else downloaded) or by a local folder path.

    Returns a `minari.MinariDataset`. Every failure is a one-line TTError: a missing path, a
    malformed id, a corrupt dataset (naming the file), or a missing id with a `tt collect` hint.
    Ids in the `tt/` namespace are made by `tt collect` and are never looked up remotely.
    """
    path = Path(spec).expanduser()
    if path.exists():
        return _open_folder(path, key)
    if _looks_like_path(spec):
        raise TTError(
            f"{key}={spec}: path {path.absolute()} does not exist; give an existing Minari dataset "
            f"folder or a dataset id ({ID_FORM})"
        )
    problem = dataset_id_problem(spec)
    if problem is not None:
        what = "no such path and not" if "/" in spec else "not"
        raise TTError(
            f"{key}={spec!r}: {what} a valid Minari dataset id ({problem}); use {ID_FORM}"
        )
    root = minari_root()
    recover_interrupted(root)
    folder = root / spec
    conflict = target_conflict(root, spec)
    if conflict is not None:
        raise TTError(f"{key}={spec}: no such dataset in {root} ({conflict})")
    if folder.exists() or folder.is_symlink():
        return _open_local(spec, folder)
    if spec.split("/")[0] == "tt":
        raise TTError(
            f"dataset '{spec}' is not available locally (in {root}; tt/ datasets are made by "
            f"tt collect, never downloaded); make it with: {collect_hint(spec)}"
        )
    _download(spec, root)
    return _open_local(spec, folder)


def collect_record(spec: str) -> str | None:
    """The `tt collect` record stored with a dataset (JSON: its one policy, noise, seed), or None
    for data with no single behaviour policy (a recipe's medium-replay or medium-expert mixture,
    data made elsewhere). Read from the metadata alone, without loading the episodes."""
    return _opt_str(load_minari(spec).storage.metadata.get(COLLECT_RECORD_KEY))


def read_guarded(episodes: Iterable[Any], dataset: Any, spec: str) -> Iterator[Any]:
    """Yield episodes, turning a storage read error (truncated HDF5, missing group) into a TTError.

    `load_minari` already opened the file once; this catches damage further into it.
    """
    iterator = iter(episodes)
    while True:
        try:
            episode = next(iterator)
        except StopIteration:
            return
        except (OSError, KeyError, ValueError) as err:
            data = Path(str(dataset.spec.data_path))
            reason = str(err).splitlines()[0][:100] if str(err) else err.__class__.__name__
            raise TTError(
                f"dataset '{spec}': {data} cannot be read ({err.__class__.__name__}: {reason}); "
                f"delete {data.parent} and collect it again"
            ) from None
        yield episode


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
