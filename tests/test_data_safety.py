"""Issue 9, data side: fail loud, lose nothing, trust nothing.

Datasets appear only when complete (a killed collect loses neither the old nor leaves a half new
one), ids are checked before anything runs, bad paths and corrupt files give one-line errors that
name the file, the missing-dataset hint is a command that writes that dataset, remote downloads
go through the same atomic path, reference returns can be given, env kwargs reach the env spec.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest

from trajectory_transformer.config import CollectConfig, ConfigError, DataConfig, load_config
from trajectory_transformer.data import collect as collect_mod
from trajectory_transformer.data import episodes as episodes_mod
from trajectory_transformer.data.collect import collect_dataset, make_env
from trajectory_transformer.data.episodes import collect_hint, load_minari, load_transitions
from trajectory_transformer.utils import TTError

ID = "tt/pendulum/safe-v0"


def small(**kwargs: Any) -> CollectConfig:
    """A collect config that runs in well under a second."""
    base: dict[str, Any] = {"episodes": 3, "ref_episodes": 1, "dataset_id": ID}
    return CollectConfig(**{**base, **kwargs})


def tree(root: Path) -> list[str]:
    """Every path under `root`, relative, sorted (to check that nothing else was written)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


def staging_dirs(root: Path) -> list[Path]:
    return sorted(root.glob(".tt-staging-*"))


def n_episodes(dataset_id: str) -> int:
    return int(minari.load_dataset(dataset_id).total_episodes)


def run_child(root: Path, body: str) -> int:
    """Run `body` in a fresh Python that SIGKILLs itself part way (a real kill: no finally runs)."""
    script = textwrap.dedent(
        """
        import os, signal
        import minari
        from trajectory_transformer.config import CollectConfig
        from trajectory_transformer.data.collect import collect_dataset

        def die():
            os.kill(os.getpid(), signal.SIGKILL)
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root)}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    return proc.returncode


KILL_MID_WRITE = """
from minari.dataset._storages.hdf5_storage import HDF5Storage
real = HDF5Storage.update_episodes
def partial(self, episodes):
    real(self, list(episodes)[:1])   # one episode is on disk ...
    open(self._file_path, "ab").write(b"\\0" * 100)  # ... and more is being written
    die()
HDF5Storage.update_episodes = partial
collect_dataset(CollectConfig(episodes=4, ref_episodes=1, dataset_id="{id}", overwrite={ow}),
                progress=False)
"""


# ------------------------------------------------------------------------------- 1. atomic
@pytest.mark.parametrize("overwrite", [True, False])
def test_kill_mid_write_loses_nothing_and_rerun_works(minari_tmp: Path, overwrite: bool) -> None:
    if overwrite:
        collect_dataset(small(episodes=2), progress=False)
        before = (minari_tmp / ID / "data" / "main_data.hdf5").read_bytes()
    rc = run_child(minari_tmp, KILL_MID_WRITE.format(id=ID, ow=overwrite))
    assert rc == -signal.SIGKILL
    assert len(staging_dirs(minari_tmp)) == 1  # the killed writer's half dataset, hidden
    if overwrite:  # the old dataset is untouched (it used to be deleted before writing)
        assert (minari_tmp / ID / "data" / "main_data.hdf5").read_bytes() == before
        assert n_episodes(ID) == 2
        assert list(minari.list_local_datasets()) == [ID]
        assert load_transitions(ID)[0].n_episodes == 2
    else:  # no dataset appears, and the half one is invisible to Minari and to us
        assert not (minari_tmp / ID).exists()
        assert minari.list_local_datasets() == {}
        with pytest.raises(TTError, match="not available locally"):
            load_minari(ID)
    # a rerun neither says "already exists" (plain) nor fails; the stale staging folder is gone
    collect_dataset(small(episodes=3, overwrite=overwrite), progress=False)
    assert n_episodes(ID) == 3 and staging_dirs(minari_tmp) == []


def test_kill_between_swap_renames_restores_old(minari_tmp: Path) -> None:
    collect_dataset(small(episodes=2), progress=False)
    body = f"""
    real = os.rename
    calls = []
    def rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # old moved aside, new not yet in place
            die()
        real(src, dst)
    os.rename = rename
    collect_dataset(CollectConfig(episodes=4, ref_episodes=1, dataset_id="{ID}", overwrite=True),
                    progress=False)
    """
    assert run_child(minari_tmp, body) == -signal.SIGKILL
    assert not (minari_tmp / ID).exists()  # the worst moment: only the aside copy exists
    with pytest.warns(UserWarning, match=f"restored Minari dataset '{ID}'"):
        dataset = load_minari(ID)  # any later load or collect puts it back
    assert dataset.total_episodes == 2 and staging_dirs(minari_tmp) == []


def test_writer_error_keeps_old_dataset_and_leaves_no_temp(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collect_dataset(small(episodes=2), progress=False)
    real = minari.create_dataset_from_buffers

    def fail_after_part(dataset_id: str, buffers: list[Any], **kwargs: Any) -> Any:
        real(dataset_id, buffers[:1], **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(minari, "create_dataset_from_buffers", fail_after_part)
    with pytest.raises(OSError, match="disk full"):
        collect_dataset(small(episodes=3, overwrite=True), progress=False)
    assert n_episodes(ID) == 2 and staging_dirs(minari_tmp) == []


def test_corrupt_dataset_left_by_an_old_version(minari_tmp: Path) -> None:
    collect_dataset(small(), progress=False)
    main = minari_tmp / ID / "data" / "main_data.hdf5"
    main.write_bytes(b"")  # what a kill during the old in-place write left: 0 episodes
    with pytest.raises(TTError) as err:
        collect_dataset(small(), progress=False)
    assert str(err.value) == (
        f"Minari dataset '{ID}' in {minari_tmp} is incomplete or corrupt ({main} is truncated or "
        "corrupt (Unable to synchronously open file (file signature not found))); pass "
        "collect.overwrite=true to replace it"
    )
    collect_dataset(small(overwrite=True), progress=False)
    assert n_episodes(ID) == 3


def test_leftover_staging_of_a_live_process_is_left_alone(minari_tmp: Path) -> None:
    mine = minari_tmp / f".tt-staging-{episodes_mod._host_tag()}-{os.getpid()}-abc"
    other_host = minari_tmp / ".tt-staging-otherhost-1-abc"
    for folder in (mine, other_host):
        (folder / "root" / ID / "data").mkdir(parents=True)
    collect_dataset(small(), progress=False)
    assert mine.exists() and other_host.exists()  # may still be in use: ignored, not deleted
    assert list(minari.list_local_datasets()) == [ID]


# ------------------------------------------------------------------ 2. ids checked up front
@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("noversion", "it does not end in a version -vN"),
        ("../../x/y-v0", "'..' parts are not allowed"),
        ("/tmp/abs/x-v0", "it is a path, not an id"),
        ("tt//x-v0", "it has an empty part between '/'"),
        ("tt/x/-v0", "it has no name before -vN"),
        ("tt/pen dulum/x-v0", "character ' ' is not allowed (letters, digits, '_', '-', '/')"),
        ("tt/x;rm/y-v0", "character ';' is not allowed (letters, digits, '_', '-', '/')"),
        ("", "it is empty"),
    ],
)
def test_bad_dataset_id_rejected_before_collecting(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch, bad: str, why: str
) -> None:
    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("episodes were collected for a bad id")

    monkeypatch.setattr(collect_mod, "run_episodes", must_not_run)
    cfg = CollectConfig(dataset_id=bad or None, episodes=2)
    cfg.dataset_id = bad  # "" too (None would mean the default id)
    with pytest.raises(TTError) as err:
        collect_dataset(cfg, progress=False)
    assert str(err.value) == (
        f"collect.dataset_id={bad!r} is not a valid Minari dataset id ({why}); use "
        "namespace/name-vN, e.g. tt/pendulum/noisy-expert-v0"
    )
    assert tree(minari_tmp) == [] and not (minari_tmp.parent / "x").exists()


def test_garbage_in_datasets_root_does_not_break_collect(minari_tmp: Path) -> None:
    (minari_tmp / "garbage" / "data").mkdir(parents=True)  # made minari.list_local_datasets
    (minari_tmp / "notes.txt").write_text("hi")  # raise TypeError, which broke tt collect
    (minari_tmp / "half" / "thing-v0").mkdir(parents=True)
    with pytest.raises(TypeError):
        minari.list_local_datasets()  # Minari itself still trips on it
    collect_dataset(small(), progress=False)
    assert n_episodes(ID) == 3
    assert load_transitions(ID)[0].n_episodes == 3


def test_target_folder_conflicts_are_refused_before_collecting(minari_tmp: Path) -> None:
    collect_dataset(small(), progress=False)
    with pytest.raises(TTError) as err:
        collect_dataset(small(dataset_id=f"{ID}/inner-v0"), progress=False)
    assert str(err.value) == (
        f"collect.dataset_id={ID}/inner-v0: {minari_tmp / ID} is a dataset, so it cannot also be "
        "a namespace; choose another id"
    )
    (minari_tmp / "tt" / "pendulum" / "folder-v0").mkdir()
    with pytest.raises(TTError, match=r"folder-v0 exists but is not a Minari dataset; move it"):
        collect_dataset(small(dataset_id="tt/pendulum/folder-v0", overwrite=True), progress=False)


def test_default_dataset_ids_are_always_valid() -> None:
    from trajectory_transformer.data.collect import default_dataset_id
    from trajectory_transformer.data.episodes import dataset_id_problem

    for env, policy in [
        ("gymnasium_robotics:PointMaze_UMaze-v3", "expert"),
        ("ALE/Pong-v5", "sb3:PPO:runs/a b/ppo.zip"),
        ("Pendulum-v1", "random"),
    ]:
        dataset_id = default_dataset_id(env, policy)
        assert dataset_id_problem(dataset_id) is None, dataset_id
    assert default_dataset_id("gymnasium_robotics:PointMaze_UMaze-v3", "expert") == (
        "tt/pointmaze_umaze/expert-v0"
    )


# --------------------------------------------------------------------------------- 3. loading
@pytest.mark.parametrize("spec", ["./nope/data", "../nope-v0", "/no/such/dir", "~/no-such-tt-dir"])
def test_missing_local_path_says_path_does_not_exist(minari_tmp: Path, spec: str) -> None:
    with pytest.raises(TTError) as err:
        load_minari(spec)
    msg = str(err.value)
    resolved = Path(spec).expanduser().absolute()
    assert msg == (
        f"data.dataset={spec}: path {resolved} does not exist; give an existing Minari dataset "
        "folder or a dataset id (namespace/name-vN, e.g. tt/pendulum/noisy-expert-v0)"
    )
    assert "malformed" not in msg.lower()


def test_slashed_non_id_says_no_such_path(minari_tmp: Path) -> None:
    with pytest.raises(TTError) as err:
        load_minari("datasets/my.data")
    assert str(err.value) == (
        "data.dataset='datasets/my.data': no such path and not a valid Minari dataset id (it "
        "does not end in a version -vN); use namespace/name-vN, e.g. tt/pendulum/noisy-expert-v0"
    )


def test_truncated_hdf5_is_one_line_naming_the_file(minari_tmp: Path) -> None:
    collect_dataset(small(), progress=False)
    main = minari_tmp / ID / "data" / "main_data.hdf5"
    os.truncate(main, main.stat().st_size // 2)
    for load in (load_minari, load_transitions):
        with pytest.raises(TTError) as err:
            load(ID)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(
            f"Minari dataset '{ID}' is incomplete or corrupt: {main} is truncated or corrupt "
            "(Unable to synchronously open file (truncated file: eof = "
        )
        assert msg.endswith(
            f"delete {minari_tmp / ID} and collect it again (tt collect collect.env=Pendulum-v1 "
            "collect.policy=<random|expert|sb3:ALGO:PATH> collect.dataset_id=tt/pendulum/safe-v0 "
            "collect.overwrite=true)"
        )
    with pytest.raises(TTError, match=r"data.dataset=.*: not a readable Minari dataset folder"):
        load_minari(str(minari_tmp / ID))  # the same dataset given as a folder


def test_damage_found_while_reading_episodes_is_one_line(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collect_dataset(small(), progress=False)
    main = minari_tmp / ID / "data" / "main_data.hdf5"
    monkeypatch.setattr(episodes_mod, "dataset_problem", lambda folder: None)  # skip the probe
    os.truncate(main, main.stat().st_size // 2)
    with pytest.raises(TTError) as err:
        load_transitions(ID)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        f"dataset '{ID}': {main.parent} cannot be read (OSError"
    )
    assert msg.endswith(f"delete {minari_tmp / ID} and collect it again")


def test_corrupt_metadata_is_named(minari_tmp: Path) -> None:
    collect_dataset(small(), progress=False)
    meta = minari_tmp / ID / "data" / "metadata.json"
    meta.write_text('{"dataset_id": ')
    with pytest.raises(
        TTError,
        match=rf"^Minari dataset '{ID}' is incomplete or corrupt: {meta} "
        r"is corrupt \(JSONDecodeError\); delete",
    ):
        load_minari(ID)


# ------------------------------------------------------------------------------ 4. the hint
def test_missing_quickstart_dataset_hint_is_its_preset(minari_tmp: Path) -> None:
    noisy = load_config("quickstart").collect.dataset_id
    assert noisy == "tt/pendulum/noisy-expert-v0"
    with pytest.raises(TTError) as err:
        load_minari(noisy)
    assert str(err.value) == (
        f"dataset '{noisy}' is not available locally (in {minari_tmp}; tt/ datasets are made by "
        "tt collect, never downloaded); make it with: tt collect --preset quickstart"
    )
    assert "collect.policy=expert" not in str(err.value)  # that wrote clean data under this id


def test_hint_commands_write_the_id_they_name() -> None:
    # the default id of an env + policy: the plain command writes exactly it
    assert (
        collect_hint("tt/pendulum/expert-v0")
        == "tt collect collect.env=Pendulum-v1 collect.policy=expert"
    )
    assert (
        collect_hint("tt/pendulum/random-v0")
        == "tt collect collect.env=Pendulum-v1 collect.policy=random"
    )
    cfg = load_config(None, ["collect.env=Pendulum-v1", "collect.policy=random"]).collect
    assert collect_mod.default_dataset_id(cfg.env, cfg.policy) == "tt/pendulum/random-v0"
    # anything else: the user chooses the policy
    assert collect_hint("someone/thing-v2") == (
        "tt collect collect.env=<GymEnvId> collect.policy=<random|expert|sb3:ALGO:PATH> "
        "collect.dataset_id=someone/thing-v2"
    )
