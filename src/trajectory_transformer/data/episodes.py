"""Minari episodes -> flat transitions (s, a, r, V) with termination and truncation kept apart.

Conventions (the planner and the tests rely on them):
- An episode is cut at its FIRST termination; `termination_penalty` is added to that last reward
  (original TT: -100; its code sets the reward to the penalty, we add it so the env's own reward
  is kept) and `terminals` is True on that step.
- Truncation (time limit) is not termination: `timeouts` is True on the last step of a truncated
  episode and no penalty is applied.
- values[t] = discounted reward-to-go WITHIN the episode: V_t = r_t + γ V_{t+1}, V_last = r_last.
  Truncated episodes do NOT bootstrap past their last step (no value model exists at data time,
  and the original TT does the same), so late-episode values of truncated episodes are
  underestimates; the planner sees `timeouts` if it wants to treat them differently.
- The final observation of each Minari episode (T+1 rows) is not a transition and is dropped.
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
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..utils import TTError, atomic_write_bytes, atomic_write_json
from .spaces import flat_dim, flatten, space_to_json

__all__ = [
    "COLLECT_RECORD_KEY",
    "ID_FORM",
    "DatasetInfo",
    "EpisodeLike",
    "Transitions",
    "check_dataset_id",
    "collect_hint",
    "collect_record",
    "dataset_id_problem",
    "dataset_problem",
    "dataset_returns",
    "discounted_returns",
    "episodes_to_transitions",
    "load_minari",
    "load_transitions",
    "minari_datasets_path",
    "minari_root",
    "publish_dataset",
    "recover_interrupted",
    "staging_root",
    "target_conflict",
]


class EpisodeLike(Protocol):
    """What we read from an episode (minari.EpisodeData satisfies it)."""

    id: int
    observations: Any  # T+1 batched values of the observation space
    actions: Any  # T batched values of the action space
    rewards: np.ndarray  # (T,)
    terminations: np.ndarray  # (T,)
    truncations: np.ndarray  # (T,)


@dataclass
class Transitions:
    """All kept transitions of a dataset, episodes concatenated (CSR offsets in episode_starts)."""

    observations: np.ndarray  # (N, obs_dim) float32
    actions: np.ndarray  # (N, act_dim) float32
    rewards: np.ndarray  # (N,) float32, termination penalty applied
    values: np.ndarray  # (N,) float32 discounted reward-to-go within the episode
    terminals: np.ndarray  # (N,) bool, True on the step of a true termination
    timeouts: np.ndarray  # (N,) bool, True on the last step of a truncated episode
    episode_starts: np.ndarray  # (E+1,) int64; episode e is rows [starts[e], starts[e+1])
    episode_ids: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.int64)
    )  # (E,) source ids

    @property
    def n_transitions(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def n_episodes(self) -> int:
        return int(self.episode_starts.shape[0] - 1)

    @property
    def observation_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    @property
    def transition_dim(self) -> int:
        return self.observation_dim + self.action_dim + 2

    def joined(self) -> np.ndarray:
        """(N, obs_dim + act_dim + 2) float32 laid out [obs..., act..., reward, value]."""
        out = np.empty((self.n_transitions, self.transition_dim), np.float32)
        o, a = self.observation_dim, self.action_dim
        out[:, :o] = self.observations
        out[:, o : o + a] = self.actions
        out[:, o + a] = self.rewards
        out[:, o + a + 1] = self.values
        return out


@dataclass
class DatasetInfo:
    """JSON-able description of where tokens came from; stored in caches and run folders."""

    dataset: str
    dataset_id: str | None = None
    env_id: str | None = None
    env_spec: str | None = None
    eval_env_spec: str | None = None
    observation_space: str | None = None
    action_space: str | None = None
    observation_dim: int = 0
    action_dim: int = 0
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    n_episodes: int = 0
    n_transitions: int = 0
    dropped_episodes: int = 0
    discount: float = 0.99
    termination_penalty: float = 0.0
    n_bins: int = 0
    strategy: str = ""
    discretization_error: list[float] = field(default_factory=list)
    """Per-dimension mean |x - decode(encode(x))| over the dataset."""
    collect_settings: str | None = None
    """JSON of the `tt collect` settings that made the dataset (env, policy, noise, epsilon, seed,
    episodes, env_kwargs), from its Minari metadata; None for datasets made elsewhere."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetInfo:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TTError(f"dataset info has unknown fields {unknown}; written by a newer version?")
        return cls(**data)


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


_ENV_GUESS = {
    "pendulum": "Pendulum-v1",
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "walker2d": "Walker2d-v5",
    "ant": "Ant-v5",
    "invertedpendulum": "InvertedPendulum-v5",
}


def collect_hint(dataset_id: str) -> str:
    """A `tt collect` command that really writes `dataset_id`, or one with a policy to choose.

    A recipe's dataset (tt/hopper/medium-quick-v1) names its recipe; a shipped preset that
    collects this id wins next (its noise/epsilon/episodes matter: the quickstart's medium-noisy
    data is not `collect.policy=medium`); then an id that `tt collect` writes by default for an env
    and policy; otherwise a generic command with a placeholder policy.
    """
    from ..config import list_presets, load_config
    from .collect import default_dataset_id
    from .pointmaze import pointmaze_recipe_making
    from .policies import SCRIPTED
    from .recipes import recipe_making

    recipe = recipe_making(dataset_id) or pointmaze_recipe_making(dataset_id)
    if recipe is not None:
        return f"tt collect --recipe {recipe}"

    for name in list_presets():
        try:
            preset = load_config(name)
        except Exception:  # a broken preset must not hide the error being reported
            continue
        if preset.collect.dataset_id == dataset_id:
            return f"tt collect --preset {name}"
    parts = dataset_id.split("/")
    env = next((_ENV_GUESS[p.lower()] for p in parts if p.lower() in _ENV_GUESS), None)
    if env is not None:
        for policy in ("random", "expert", "medium"):
            if policy != "random" and env not in SCRIPTED[policy]:
                continue
            if default_dataset_id(env, policy) == dataset_id:
                return f"tt collect collect.env={env} collect.policy={policy}"
    return (
        f"tt collect collect.env={env or '<GymEnvId>'} "
        f"collect.policy=<random|expert|medium|sb3:ALGO:PATH> collect.dataset_id={dataset_id}"
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


def _download(spec: str, root: Path) -> None:
    """Download a remote Minari dataset (needs huggingface_hub) into `root`, atomically."""
    import minari

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


def dataset_returns(spec: str) -> np.ndarray:
    """(E,) float64 undiscounted return of every episode of a dataset (id or path), in order.

    The data's own score, which a learned policy has to beat; every episode counts, including a
    fixed-size dataset's last, cut one (as D4RL's dataset statistics do).
    """
    dataset = load_minari(spec)
    return np.asarray(
        [
            float(np.sum(ep.rewards))
            for ep in _read_guarded(dataset.iterate_episodes(), dataset, spec)
        ],
        np.float64,
    )


def discounted_returns(
    rewards: np.ndarray, episode_starts: np.ndarray, discount: float
) -> np.ndarray:
    """Exact V_t = r_t + γ V_{t+1} within each episode (V_last = r_last), in float64, vectorised.

    Episodes are laid into a right-padded (E, T_max) matrix and swept backwards once, so the
    Python loop runs T_max times regardless of the number of episodes.
    """
    starts = np.asarray(episode_starts, np.int64)
    lengths = np.diff(starts)  # (E,)
    n_eps = lengths.shape[0]
    if n_eps == 0:
        return np.zeros(0, np.float32)
    t_max = int(lengths.max())
    ep_of_row = np.repeat(np.arange(n_eps), lengths)  # (N,)
    pos = np.arange(rewards.shape[0]) - starts[ep_of_row]  # (N,) step within episode
    padded = np.zeros((n_eps, t_max + 1), np.float64)  # trailing zero column: V after the end
    padded[ep_of_row, pos] = rewards
    for t in range(t_max - 1, -1, -1):
        padded[:, t] += discount * padded[:, t + 1]
    return padded[ep_of_row, pos].astype(np.float32)


def _first_bad_row(arr: np.ndarray) -> int | None:
    bad = ~np.isfinite(arr)
    if bad.ndim > 1:
        bad = bad.any(axis=tuple(range(1, bad.ndim)))
    rows = np.flatnonzero(bad)
    return int(rows[0]) if rows.size else None


def _episode_arrays(
    ep: EpisodeLike, obs_space: Any, act_space: Any, penalty: float, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
    """One episode -> (obs (T', o), act (T', a), rewards (T',), terminated, truncated)."""
    rewards = np.asarray(ep.rewards, np.float64).reshape(-1)
    n_steps = rewards.shape[0]
    if n_steps == 0:
        raise TTError(f"{where} episode {ep.id} step 0: episode has 0 steps")
    try:
        obs = flatten(obs_space, ep.observations, "observation_space")
        act = flatten(act_space, ep.actions, "action_space")
    except TTError as err:
        raise TTError(f"{where} episode {ep.id} step 0: {err}") from None
    terms = np.asarray(ep.terminations, bool).reshape(-1)
    truncs = np.asarray(ep.truncations, bool).reshape(-1)
    for name, arr, want in (
        ("observations", obs, n_steps + 1),
        ("actions", act, n_steps),
        ("terminations", terms, n_steps),
        ("truncations", truncs, n_steps),
    ):
        if arr.shape[0] != want:
            step = min(arr.shape[0], want) - (1 if name == "observations" else 0)
            raise TTError(
                f"{where} episode {ep.id} step {max(step, 0)}: {name} have {arr.shape[0]} rows "
                f"but {n_steps} rewards need {want}"
            )
    hits = np.flatnonzero(terms)
    end = int(hits[0]) + 1 if hits.size else n_steps
    obs, act, rewards = obs[:end], act[:end], rewards[:end].copy()
    for name, arr in (("observation", obs), ("action", act), ("reward", rewards)):
        row = _first_bad_row(arr)
        if row is not None:
            raise TTError(
                f"{where} episode {ep.id} step {row}: {name} is not finite (NaN/inf); clean the "
                "data or set data.drop_bad_episodes=true"
            )
    terminated = bool(hits.size)
    if terminated:
        rewards[-1] += penalty
    truncated = not terminated and bool(truncs[end - 1])
    return obs, act, rewards, terminated, truncated


def episodes_to_transitions(
    episodes: Iterable[EpisodeLike],
    observation_space: Any,
    action_space: Any,
    discount: float = 0.99,
    termination_penalty: float = -100.0,
    drop_bad_episodes: bool = False,
    where: str = "dataset",
) -> tuple[Transitions, int]:
    """Episodes -> (Transitions, number of dropped bad episodes); see the module docstring."""
    obs_dim = flat_dim(observation_space, "observation_space")
    act_dim = flat_dim(action_space, "action_space")
    obs_parts: list[np.ndarray] = []
    act_parts: list[np.ndarray] = []
    rew_parts: list[np.ndarray] = []
    ends: list[tuple[bool, bool]] = []
    lengths: list[int] = []
    ids: list[int] = []
    dropped = 0
    seen = 0
    for ep in episodes:
        seen += 1
        try:
            obs, act, rew, terminated, truncated = _episode_arrays(
                ep, observation_space, action_space, termination_penalty, where
            )
        except TTError:
            if not drop_bad_episodes:
                raise
            dropped += 1
            continue
        obs_parts.append(obs)
        act_parts.append(act)
        rew_parts.append(rew)
        ends.append((terminated, truncated))
        lengths.append(rew.shape[0])
        ids.append(int(ep.id))
    if seen == 0:
        raise TTError(f"{where}: dataset has no episodes")
    if not lengths:
        raise TTError(f"{where}: all {seen} episodes were dropped as bad; nothing is left to use")
    starts = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=starts[1:])
    n = int(starts[-1])
    rewards = np.concatenate(rew_parts)  # (N,) float64
    terminals = np.zeros(n, bool)
    timeouts = np.zeros(n, bool)
    last = starts[1:] - 1
    flags = np.asarray(ends, bool).reshape(-1, 2)
    terminals[last] = flags[:, 0]
    timeouts[last] = flags[:, 1]
    transitions = Transitions(
        observations=np.concatenate(obs_parts).reshape(n, obs_dim),
        actions=np.concatenate(act_parts).reshape(n, act_dim),
        rewards=rewards.astype(np.float32),
        values=discounted_returns(rewards, starts, discount),
        terminals=terminals,
        timeouts=timeouts,
        episode_starts=starts,
        episode_ids=np.asarray(ids, np.int64),
    )
    return transitions, dropped


def _read_guarded(episodes: Iterable[Any], dataset: Any, spec: str) -> Iterator[Any]:
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


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def load_transitions(
    spec: str,
    discount: float = 0.99,
    termination_penalty: float = -100.0,
    max_episodes: int | None = None,
    drop_bad_episodes: bool = False,
    seed: int = 0,
) -> tuple[Transitions, DatasetInfo]:
    """Load a Minari dataset (id or path), optionally a seeded subset of episodes, as transitions."""
    dataset = load_minari(spec)
    indices = np.asarray(dataset.episode_indices, np.int64)
    if max_episodes is not None and max_episodes < indices.shape[0]:
        if max_episodes < 1:
            raise TTError(f"data.max_episodes must be >= 1, got {max_episodes}")
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=max_episodes, replace=False))
    episodes = _read_guarded(
        dataset.iterate_episodes(episode_indices=indices.tolist()), dataset, spec
    )
    transitions, dropped = episodes_to_transitions(
        episodes,
        dataset.observation_space,
        dataset.action_space,
        discount=discount,
        termination_penalty=termination_penalty,
        drop_bad_episodes=drop_bad_episodes,
        where=f"dataset '{spec}'",
    )
    meta = dataset.storage.metadata
    env_spec = dataset.env_spec
    eval_spec = meta.get("eval_env_spec")
    info = DatasetInfo(
        dataset=spec,
        dataset_id=str(meta.get("dataset_id", spec)),
        env_id=env_spec.id if env_spec is not None else None,
        env_spec=env_spec.to_json() if env_spec is not None else None,
        eval_env_spec=str(eval_spec) if eval_spec is not None else None,
        observation_space=space_to_json(dataset.observation_space),
        action_space=space_to_json(dataset.action_space),
        observation_dim=transitions.observation_dim,
        action_dim=transitions.action_dim,
        ref_min_score=_opt_float(meta.get("ref_min_score")),
        ref_max_score=_opt_float(meta.get("ref_max_score")),
        n_episodes=transitions.n_episodes,
        n_transitions=transitions.n_transitions,
        dropped_episodes=dropped,
        discount=discount,
        termination_penalty=termination_penalty,
        collect_settings=_opt_str(meta.get(COLLECT_RECORD_KEY)),
    )
    return transitions, info
