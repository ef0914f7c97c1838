"""Policies on the Hugging Face Hub: push a run as `policy.tt` + README.md, resolve a name to a file.

A Hub repository of a policy holds two files, the same layout as a shipped policy's folder
(`share.pretrained`) and as `tt push RUN --folder DIR` writes locally:

    policy.tt    the one-file policy (share.policy_file)
    README.md    its model card (share.card)

`resolve(name)` turns what a user names into a local file: a path (a `.tt` file, or a folder
holding `policy.tt`), a shipped policy (`tt/<name>`), else a Hub repository id downloaded once
through huggingface_hub's cache (offline, a cached file is used; `HF_HUB_OFFLINE=1` skips the
network). Every Hub failure is a one-line TTError saying what to do.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import TTError
from ..utils import atomic_write_bytes
from . import pretrained
from .card import model_card, version
from .policy_file import write_policy_file

__all__ = ["CARD_FILE", "POLICY_FILE", "push", "resolve", "write_policy_folder"]

POLICY_FILE = "policy.tt"
CARD_FILE = "README.md"


def write_policy_folder(
    run_dir: str | os.PathLike[str], folder: str | os.PathLike[str], repo_id: str
) -> Path:
    """FOLDER/policy.tt and FOLDER/README.md for a run (the card names `repo_id` in its example)."""
    out = Path(folder)
    loaded = runs.load_run(run_dir)  # checks the weights' and discretizer's checksums
    write_policy_file(
        out / POLICY_FILE,
        loaded.config,
        loaded.gpt_config,
        loaded.info,
        loaded.discretizer,
        loaded.model.state_dict(),
    )
    atomic_write_bytes(out / CARD_FILE, model_card(Path(run_dir), repo_id).encode())
    return out


def _hub_error(err: Exception, repo_id: str, action: str) -> TTError:
    """One line for a huggingface_hub failure: which repo, what went wrong, what to do."""
    from huggingface_hub import errors

    kind = err.__class__.__name__
    if isinstance(err, errors.RepositoryNotFoundError):
        why = "no such repository, or it is private (log in with `hf auth login` or pass token=)"
    elif isinstance(err, errors.RevisionNotFoundError):
        why = "no such revision (branch, tag or commit)"
    elif isinstance(err, errors.LocalEntryNotFoundError):  # a subclass of EntryNotFoundError
        why = "the Hub cannot be reached and the file is not in the local cache"
    elif isinstance(err, errors.EntryNotFoundError):
        why = f"the repository has no {POLICY_FILE}: it is not a trajectory-transformer policy"
    elif isinstance(err, errors.LocalTokenNotFoundError):
        why = "not logged in: run `hf auth login` or pass token="
    elif isinstance(err, errors.HfHubHTTPError):
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else kind
        why = f"the Hub refused it ({first})"
    else:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        why = f"{kind}: {first}" if first else kind
    return TTError(f"{action} '{repo_id}' on the Hugging Face Hub failed: {why}")


def resolve(name: str, revision: str | None = None) -> Path:
    """A local policy file for a path, a shipped name (`tt/...`) or a Hub repository id."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if not (path / POLICY_FILE).is_file():
            raise TTError(f"{path}: no {POLICY_FILE} in this folder")
        return path / POLICY_FILE
    if name.startswith(pretrained.NAMESPACE):
        return pretrained.policy_path(name)
    if name.count("/") != 1 or not all(name.split("/")):
        raise TTError(
            f"{name!r}: no such file, and not a Hub repository id (user/name) or a shipped "
            f"policy ({', '.join(pretrained.names()) or 'none shipped'})"
        )
    from huggingface_hub import hf_hub_download

    try:
        return Path(
            hf_hub_download(
                repo_id=name,
                filename=POLICY_FILE,
                revision=revision,
                library_name="trajectory-transformer",
                library_version=version(),
            )
        )
    except Exception as err:  # huggingface_hub and requests raise many types; all are one line
        raise _hub_error(err, name, "downloading") from None


def push(
    run_dir: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a run as `policy.tt` + its model card to the Hub repository `repo_id` (created if
    missing) in one commit; returns the repository's URL. Needs a Hub login (`hf auth login`)
    or `token`."""
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise TTError(f"--repo {repo_id!r}: give a Hub repository id as user/name")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="tt-push-") as tmp:
        write_policy_folder(run_dir, tmp, repo_id)
        try:
            url: Any = api.create_repo(repo_id, private=private, exist_ok=True)
            api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp,
                commit_message=commit_message
                or f"Upload {Path(run_dir).name} (trajectory-transformer)",
            )
        except Exception as err:  # network, auth, permissions: one line, never a traceback
            raise _hub_error(err, repo_id, "pushing to") from None
    return str(url)
