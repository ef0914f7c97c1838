"""A whole dataset as tokens: load, discretize, encode, and cache the result on disk.

`prepare_tokens` turns a Minari dataset into ONE token array (N, transition_dim) of raw bin indices
(0..n_bins-1, no per-dimension offsets: the model adds `dim * n_bins` itself) plus CSR episode
offsets; `windows.TokenWindows` serves training items from it. Goal-conditioned data
(`data.goal_key`, data/goals.py) also gets `goal_tokens` (N, G): the goal of the window starting at
each transition, in discretizer dimensions transition_dim .. transition_dim + G - 1.

The cache (npz without object arrays + JSON) is keyed by a hash of the dataset's files (paths,
sizes, mtimes) and every data setting that changes the tokens; it is written atomically and read
with `allow_pickle=False`. The JSON carries the SHA-256 of the arrays and itself
(`utils.tensor_digest`): a truncated, corrupt or edited cache does not verify and is rebuilt.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import DataConfig
from ..errors import TTError
from ..store import load_minari, minari_root
from ..utils import DIGEST_KEY, atomic_path, atomic_write_json, tensor_digest
from .discretizer import Discretizer, tokens_dtype
from .episodes import DatasetInfo, Transitions, load_transitions
from .goals import goal_layout, window_goals
from .spaces import space_from_json
from .windows import TokenWindows

if TYPE_CHECKING:
    from .windows import TokenWindows

__all__ = [
    "TokenizedDataset",
    "dataset_fingerprint",
    "discretization_error",
    "load_data_transitions",
    "prepare_tokens",
    "split_goals",
    "tokenize_transitions",
]

_CACHE_VERSION = 1


@dataclass
class TokenizedDataset:
    """A dataset as tokens: what training needs, and what a run folder records about it."""

    tokens: np.ndarray  # (N, transition_dim) uint8/uint16 raw bin indices
    episode_starts: np.ndarray  # (E+1,) int64 CSR offsets into tokens
    discretizer: Discretizer
    observation_dim: int
    action_dim: int
    info: DatasetInfo
    goal_tokens: np.ndarray | None = None  # (N, G) raw bins of each window's goal; None: no goal

    @property
    def transition_dim(self) -> int:
        return self.observation_dim + self.action_dim + 2

    @property
    def goal_dim(self) -> int:
        return 0 if self.goal_tokens is None else int(self.goal_tokens.shape[1])

    @property
    def n_transitions(self) -> int:
        return int(self.tokens.shape[0])

    def windows(self, n_transitions: int) -> TokenWindows:
        return TokenWindows(self.tokens, self.episode_starts, n_transitions, self.goal_tokens)


def _columns(tr: Transitions) -> list[np.ndarray]:
    """The D columns of tr.joined() as views, without building the (N, D) float copy."""
    obs = [tr.observations[:, j] for j in range(tr.observation_dim)]
    act = [tr.actions[:, j] for j in range(tr.action_dim)]
    return [*obs, *act, tr.rewards, tr.values]


def discretization_error(
    data: np.ndarray | list[np.ndarray], discretizer: Discretizer, tokens: np.ndarray
) -> np.ndarray:
    """Per-dimension mean |x − decode(encode(x))| (D,), from data (N, D) or its D columns."""
    columns = [data[:, j] for j in range(data.shape[1])] if isinstance(data, np.ndarray) else data
    errors = np.empty(len(columns), np.float64)
    for j, col in enumerate(columns):
        decoded = discretizer.centers[j][tokens[:, j]]  # (N,) float64
        errors[j] = float(np.mean(np.abs(decoded - col))) if col.size else 0.0
    return errors


def tokenize_transitions(
    transitions: Transitions,
    n_bins: int,
    strategy: str = "quantile",
    goals: np.ndarray | None = None,
) -> tuple[np.ndarray, Discretizer, np.ndarray]:
    """Fit a discretizer and encode -> (tokens (N, D), discretizer, per-dim round-trip error (D,)).

    `goals` (N, G), the windows' goals, get G more discretizer dimensions after the transition's
    (their own bins, fitted on these values) and come back as the last G token columns.
    """
    columns = _columns(transitions)
    if goals is not None:
        columns += [np.asarray(goals[:, g], np.float32) for g in range(goals.shape[1])]
    disc = Discretizer.fit(columns, n_bins, strategy)  # type: ignore[arg-type]
    tokens = np.empty((transitions.n_transitions, len(columns)), tokens_dtype(n_bins))
    for j, col in enumerate(columns):
        tokens[:, j] = disc.encode_column(j, col)
    return tokens, disc, discretization_error(columns, disc, tokens)


# ---------------------------------------------------------------------------- caching
def _dataset_folder(spec: str) -> Path:
    path = Path(spec).expanduser()
    if path.exists():
        return path
    folder = minari_root() / spec
    if not (folder / "data").is_dir():
        load_minari(spec)  # raises the one-line "not available" error, or downloads it
    return folder


def dataset_fingerprint(spec: str) -> dict[str, Any]:
    """Identity of a dataset on disk: every file's relative path, size and mtime."""
    folder = _dataset_folder(spec)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        "spec": spec,
        "folder": str(folder.resolve()),
        "files": [
            (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
        ],
    }


def _cache_key(cfg: DataConfig, seed: int) -> str:
    ident = {
        "version": _CACHE_VERSION,
        "dataset": dataset_fingerprint(cfg.dataset),
        "discount": cfg.discount,
        "termination_penalty": cfg.termination_penalty,
        "n_bins": cfg.n_bins,
        "strategy": cfg.strategy,
        "max_episodes": cfg.max_episodes,
        "drop_bad_episodes": cfg.drop_bad_episodes,
        "seed": seed,
    }
    if cfg.goal_key is not None:  # absent otherwise, so caches made before goals stay valid
        ident["goal"] = [cfg.goal_key, cfg.achieved_key, cfg.goal_relabel]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _default_cache_dir() -> Path:
    root = os.environ.get("TT_CACHE_DIR") or Path.home() / ".cache" / "trajectory_transformer"
    return Path(root)


def _write_cache(base: Path, data: TokenizedDataset, key: str) -> None:
    arrays: dict[str, np.ndarray] = {
        "tokens": data.tokens,
        "episode_starts": data.episode_starts,
        "edges": data.discretizer.edges,
        "centers": data.discretizer.centers,
    }
    if data.goal_tokens is not None:
        arrays["goal_tokens"] = data.goal_tokens
    with atomic_path(base.with_suffix(".npz")) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    meta = {
        "key": key,
        "strategy": data.discretizer.strategy,
        "observation_dim": data.observation_dim,
        "action_dim": data.action_dim,
        "info": data.info.to_dict(),
    }
    meta[DIGEST_KEY] = _cache_digest(arrays, meta)
    atomic_write_json(base.with_suffix(".json"), meta)  # last: it vouches for the npz


def _cache_digest(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """SHA-256 over the cache's arrays and its JSON (less the digest itself)."""
    fields = {k: v for k, v in meta.items() if k != DIGEST_KEY}
    return tensor_digest(arrays, {"meta": json.dumps(fields, sort_keys=True)})


def _read_cache(base: Path, key: str) -> TokenizedDataset | None:
    meta_path, npz_path = base.with_suffix(".json"), base.with_suffix(".npz")
    if not (meta_path.is_file() and npz_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("key") != key:
            return None
        with np.load(npz_path, allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
        if not meta.get(DIGEST_KEY) or meta[DIGEST_KEY] != _cache_digest(stored, meta):
            warnings.warn(
                f"{npz_path}: token cache does not match its checksum (cut short, corrupt, edited "
                "or from an older version); rebuilding it",
                stacklevel=3,
            )
            return None
        arrays = {k: stored[k] for k in ("tokens", "episode_starts", "edges", "centers")}
        goal_tokens = stored.get("goal_tokens")
        disc = Discretizer(arrays["edges"], arrays["centers"], strategy=meta["strategy"])
        return TokenizedDataset(
            tokens=arrays["tokens"],
            episode_starts=arrays["episode_starts"].astype(np.int64),
            discretizer=disc,
            observation_dim=int(meta["observation_dim"]),
            action_dim=int(meta["action_dim"]),
            info=DatasetInfo.from_dict(meta["info"]),
            goal_tokens=goal_tokens,
        )
    except Exception as err:  # BadZipFile, EOFError, zlib.error, ...: rebuild
        warnings.warn(
            f"{npz_path}: unreadable token cache ({err.__class__.__name__}: {err}); rebuilding it",
            stacklevel=3,
        )
        return None


def prepare_tokens(
    cfg: DataConfig, cache_dir: Path | str | None = None, seed: int = 0
) -> TokenizedDataset:
    """Load -> transitions -> fit discretizer -> encode, reusing an on-disk cache when it matches.

    cache_dir: this argument, else cfg.cache_dir, else $TT_CACHE_DIR or ~/.cache/trajectory_transformer.
    seed drives the episode subset when cfg.max_episodes is set.
    """
    folder = Path(cache_dir or cfg.cache_dir or _default_cache_dir())
    key = _cache_key(cfg, seed)
    base = folder / f"tokens-{key}"
    cached = _read_cache(base, key)
    if cached is not None:
        return cached
    transitions, info = load_data_transitions(cfg, seed)
    goals = None
    if cfg.goal_key is not None:
        transitions, goals = split_goals(transitions, info, cfg)
    data = build_tokenized(transitions, info, cfg.n_bins, cfg.strategy, goals)
    try:
        _write_cache(base, data, key)
    except OSError as err:  # the cache only saves time: a folder that refuses it costs no run
        warnings.warn(
            f"{folder}: cannot write the token cache ({err.strerror or err}); set data.cache_dir "
            "or TT_CACHE_DIR to a writable folder to reuse tokens",
            stacklevel=2,
        )
    return data


def load_data_transitions(cfg: DataConfig, seed: int = 0) -> tuple[Transitions, DatasetInfo]:
    """The transitions a run with data config `cfg` trains on (its episode subset drawn by `seed`)."""
    return load_transitions(
        cfg.dataset,
        discount=cfg.discount,
        termination_penalty=cfg.termination_penalty,
        max_episodes=cfg.max_episodes,
        drop_bad_episodes=cfg.drop_bad_episodes,
        seed=seed,
    )


def split_goals(
    transitions: Transitions, info: DatasetInfo, cfg: DataConfig
) -> tuple[Transitions, np.ndarray]:
    """Take the goal out of the observations -> (transitions without it, window goals (N, G))."""

    if not info.observation_space:
        raise TTError(f"dataset '{info.dataset}' records no observation space for data.goal_key")
    space = space_from_json(info.observation_space)
    assert cfg.goal_key is not None
    layout = goal_layout(space, cfg.goal_key, cfg.achieved_key)
    state, goals = layout.split(transitions.observations)
    achieved = None if layout.achieved is None else state[:, layout.achieved]
    goals = window_goals(goals, achieved, transitions.episode_starts, cfg.goal_relabel)
    return dataclasses.replace(transitions, observations=np.ascontiguousarray(state)), goals


def build_tokenized(
    transitions: Transitions,
    info: DatasetInfo,
    n_bins: int,
    strategy: str,
    goals: np.ndarray | None = None,
) -> TokenizedDataset:
    """Tokenize in-memory transitions (no cache); fills the discretizer fields of `info`.

    `goals` (N, G): each window's goal (goal-conditioned data, see `split_goals`)."""
    tokens, disc, error = tokenize_transitions(transitions, n_bins, strategy, goals)
    info.n_bins, info.strategy = n_bins, strategy
    info.discretization_error = [float(e) for e in error]
    td = transitions.transition_dim
    return TokenizedDataset(
        tokens=np.ascontiguousarray(tokens[:, :td]) if goals is not None else tokens,
        episode_starts=transitions.episode_starts.astype(np.int64),
        discretizer=disc,
        observation_dim=transitions.observation_dim,
        action_dim=transitions.action_dim,
        info=info,
        goal_tokens=np.ascontiguousarray(tokens[:, td:]) if goals is not None else None,
    )
