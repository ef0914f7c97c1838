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

from trajectory_transformer import store
from trajectory_transformer.config import CollectConfig, DataConfig, load_config
from trajectory_transformer.data.episodes import load_transitions
from trajectory_transformer.envs.make import make_env
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.sources import collect as collect_mod
from trajectory_transformer.sources.collect import collect_dataset
from trajectory_transformer.sources.hints import collect_hint
from trajectory_transformer.store import load_minari

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
        from trajectory_transformer.sources.collect import collect_dataset

        def die():
            os.kill(os.getpid(), signal.SIGKILL)
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root)}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parents[2] / "src"), env.get("PYTHONPATH", "")]
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
    mine = minari_tmp / f".tt-staging-{store._host_tag()}-{os.getpid()}-abc"
    other_host = minari_tmp / ".tt-staging-otherhost-1-abc"
    for folder in (mine, other_host):
        (folder / "root" / ID / "data").mkdir(parents=True)
    collect_dataset(small(), progress=False)
    assert mine.exists() and other_host.exists()  # may still be in use: ignored, not deleted
    assert list(minari.list_local_datasets()) == [ID]


def test_aside_copy_that_cannot_be_placed_is_kept(minari_tmp: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    stage = minari_tmp / f".tt-staging-{store._host_tag()}-{int(dead.stdout)}-xyz"
    (stage / "replaced" / "data").mkdir(parents=True)
    (stage / "owner.json").write_text("garbage")  # which dataset it was is unknown
    with pytest.warns(UserWarning, match=r"replaced: a dataset an interrupted tt collect moved"):
        collect_dataset(small(), progress=False)
    assert (stage / "replaced" / "data").is_dir()  # never deleted: it may be the only copy


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
    assert tree(minari_tmp) == []
    assert not (minari_tmp.parent / "x").exists() and not (minari_tmp.parent.parent / "x").exists()


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
    from trajectory_transformer.sources.collect import default_dataset_id
    from trajectory_transformer.store import dataset_id_problem

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
            "; collect it again, replacing it: tt collect collect.env=Pendulum-v1 "
            "collect.policy=<random|expert|medium|sb3:ALGO:PATH> collect.dataset_id=tt/pendulum/safe-v0 "
            "collect.overwrite=true"
        )
    with pytest.raises(TTError, match=r"data.dataset=.*: not a readable Minari dataset folder"):
        load_minari(str(minari_tmp / ID))  # the same dataset given as a folder


def test_damage_found_while_reading_episodes_is_one_line(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collect_dataset(small(), progress=False)
    main = minari_tmp / ID / "data" / "main_data.hdf5"
    monkeypatch.setattr(store, "dataset_problem", lambda folder: None)  # skip the probe
    os.truncate(main, main.stat().st_size // 2)
    with pytest.raises(TTError) as err:
        load_transitions(ID)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        f"dataset '{ID}': {main.parent} cannot be read (OSError"
    )
    assert msg.endswith(f"delete {minari_tmp / ID} and collect it again")


def test_corrupt_metadata_is_named(minari_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    collect_dataset(small(), progress=False)
    meta = minari_tmp / ID / "data" / "metadata.json"
    meta.write_text('{"dataset_id": ')
    with pytest.raises(TTError) as err:
        load_minari(ID)
    assert str(err.value).startswith(
        f"Minari dataset '{ID}' is incomplete or corrupt: {meta} is corrupt (JSONDecodeError); "
        "collect it again, replacing it: tt collect "
    )
    # a damaged downloaded dataset is downloaded again, not collected
    import minari.storage.hosting

    calls: list[str] = []
    monkeypatch.setattr(minari.storage.hosting, "download_dataset", fake_remote_download(calls))
    monkeypatch.setattr(store, "network_problem", lambda: None)  # the remote answers
    load_minari(REMOTE_ID)
    (minari_tmp / REMOTE_ID / "data" / "main_data.hdf5").write_bytes(b"\0" * 10)
    with pytest.raises(TTError) as err:
        load_minari(REMOTE_ID)
    assert str(err.value).endswith(
        f"; delete {minari_tmp / REMOTE_ID} and load it again to download it afresh"
    )
    assert calls == [REMOTE_ID]


# ------------------------------------------------------------------------------ 4. the hint
def test_missing_quickstart_dataset_hint_is_its_preset(minari_tmp: Path) -> None:
    noisy = load_config("quickstart").collect.dataset_id
    assert noisy == "tt/pendulum/medium-noisy-v0"
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
    assert (
        collect_hint("tt/pendulum/medium-v0")
        == "tt collect collect.env=Pendulum-v1 collect.policy=medium"
    )
    cfg = load_config(None, ["collect.env=Pendulum-v1", "collect.policy=random"]).collect
    assert collect_mod.default_dataset_id(cfg.env, cfg.policy) == "tt/pendulum/random-v0"
    # a recipe's datasets: the recipe that makes them
    assert collect_hint("tt/hopper/medium-quick-v1") == "tt collect --recipe hopper-medium-quick"
    assert (
        collect_hint("tt/walker2d/medium-replay-v1") == "tt collect --recipe walker2d-medium-replay"
    )
    assert collect_hint("tt/pointmaze/large-dense-quick-v0") == (
        "tt collect --recipe pointmaze-large-dense-quick"
    )
    assert collect_hint("tt/hopper/medium-quick-v0").startswith("tt collect collect.env=Hopper-v5")
    # anything else: the user chooses the policy
    assert collect_hint("someone/thing-v2") == (
        "tt collect collect.env=<GymEnvId> collect.policy=<random|expert|medium|sb3:ALGO:PATH> "
        "collect.dataset_id=someone/thing-v2"
    )


# ------------------------------------------------------------------------ 5. remote datasets
REMOTE_ID = "mujoco/hopper/expert-v0"


def fake_remote_download(calls: list[str]) -> Any:
    """A stand-in for minari's download that writes what Minari's remote mujoco/* datasets hold.

    Like the real one it writes into the current MINARI_DATASETS_PATH: namespace metadata for
    `mujoco` and `mujoco/hopper`, and <id>/data/{metadata.json, main_data.hdf5} with reference
    scores, an env spec and requirements.
    """
    from minari.data_collector import EpisodeBuffer
    from minari.namespace import create_namespace

    def download(dataset_id: str, force_download: bool = False) -> None:
        calls.append(dataset_id)
        create_namespace("mujoco", description="MuJoCo datasets (stub)")
        create_namespace("mujoco/hopper", description="Hopper-v5 (stub)")
        env = gym.make("Hopper-v5")
        buffers = []
        for ep in range(2):
            obs, _ = env.reset(seed=ep)
            observations, actions, rewards, terms = [obs], [], [], []
            for _ in range(5):
                action = env.action_space.sample()
                obs, reward, term, _, _ = env.step(action)
                observations.append(obs)
                actions.append(action)
                rewards.append(float(reward))
                terms.append(bool(term))
            truncs = [False] * 4 + [not terms[-1]]
            buffers.append(
                EpisodeBuffer(
                    id=ep,
                    seed=ep,
                    observations=np.stack(observations),
                    actions=np.stack(actions),
                    rewards=rewards,
                    terminations=terms,
                    truncations=truncs,
                    infos={},
                )
            )
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            algorithm_name="SAC",
            author="stub",
            author_email="stub@example.org",
            code_permalink="https://example.org",
            ref_min_score=-20.272305,
            ref_max_score=3234.3,
            num_episodes_average_score=100,
            description="stub of a remote Minari dataset",
            requirements=["mujoco>=3.1.1"],
            data_format="hdf5",
        )

    return download


def test_remote_id_is_downloaded_into_the_root(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import minari.storage.hosting

    calls: list[str] = []
    monkeypatch.setattr(minari.storage.hosting, "download_dataset", fake_remote_download(calls))
    monkeypatch.setattr(store, "network_problem", lambda: None)  # the remote answers
    dataset = load_minari(REMOTE_ID)
    assert calls == [REMOTE_ID] and dataset.total_episodes == 2
    assert (minari_tmp / REMOTE_ID / "data" / "main_data.hdf5").is_file()
    meta = json.loads((minari_tmp / "mujoco" / "namespace_metadata.json").read_text())
    assert meta["description"] == "MuJoCo datasets (stub)"
    assert (minari_tmp / "mujoco" / "hopper" / "namespace_metadata.json").is_file()
    assert list(minari.list_local_datasets()) == [REMOTE_ID] and staging_dirs(minari_tmp) == []
    assert (
        f"downloaded Minari dataset '{REMOTE_ID}' to {minari_tmp / REMOTE_ID}"
        in capsys.readouterr().err
    )
    transitions, info = load_transitions(REMOTE_ID)  # now local: no second download
    assert calls == [REMOTE_ID] and transitions.n_episodes == 2 and info.env_id == "Hopper-v5"
    assert (info.ref_min_score, info.ref_max_score) == (-20.272305, 3234.3)


def test_failed_download_is_one_line_and_leaves_nothing(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minari.storage.hosting

    def half_then_offline(dataset_id: str, force_download: bool = False) -> None:
        (minari.storage.get_dataset_path(dataset_id) / "data").mkdir(parents=True)  # a partial one
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(minari.storage.hosting, "download_dataset", half_then_offline)
    monkeypatch.setattr(store, "network_problem", lambda: None)  # the probe passed, then it broke
    with pytest.raises(TTError) as err:
        load_minari(REMOTE_ID)
    assert str(err.value) == (
        f"dataset '{REMOTE_ID}' is not available locally (in {minari_tmp}) and cannot be downloaded "
        "([Errno -2] Name or service not known); make a local one with: tt collect --recipe "
        "hopper-expert-quick, then data.dataset=tt/hopper/expert-quick-v1"
    )
    assert tree(minari_tmp) == []  # the partial download was never visible and is gone


def test_real_download_path_without_network(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """minari -> huggingface_hub for real, in offline mode (fails at once instead of retrying)."""
    hub_constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(store, "network_problem", lambda: None)  # past our own probe
    with pytest.raises(TTError) as err:
        load_minari("mujoco/pendulum/nothing-v0")
    msg = str(err.value)
    assert (
        "\n" not in msg and "'mujoco/pendulum/nothing-v0'" in msg and "cannot be downloaded" in msg
    )
    assert "offline mode is enabled" in msg and "make a local one with: tt collect" in msg
    assert tree(minari_tmp) == []


# ---------------------------------------------------------------------- 6. reference returns
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"episodes": 0}, "config key 'collect.episodes' must be >= 1"),
        ({"noise": -0.1}, "config key 'collect.noise' must be >= 0 and finite"),
        ({"noise": float("nan")}, "config key 'collect.noise' must be >= 0 and finite"),
        ({"epsilon": 1.5}, "config key 'collect.epsilon' must be in [0, 1]"),
        (
            {"ref_episodes": 0},
            "config key 'collect.ref_episodes' must be >= 1 (or give both collect.ref_min_score "
            "and collect.ref_max_score)",
        ),
        (
            {"ref_episodes": 0, "ref_max_score": 10.0},
            "config key 'collect.ref_episodes' must be >= 1 (or give both collect.ref_min_score "
            "and collect.ref_max_score)",
        ),
        (
            {"ref_min_score": 5.0, "ref_max_score": 5.0},
            "config key 'collect.ref_max_score' must be greater than collect.ref_min_score",
        ),
        ({"ref_max_score": float("inf")}, "config key 'collect.ref_max_score' must be finite"),
    ],
)
def test_collect_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        CollectConfig(**kwargs)
    assert str(err.value) == message


def test_cli_reports_bad_collect_value_in_one_line(
    minari_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from trajectory_transformer.cli import main as tt_main

    assert tt_main(["collect", "--no-progress", "collect.ref_episodes=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "collect.ref_episodes' must be >= 1" in err
    assert tree(minari_tmp) == []


def test_data_config_reference_validation() -> None:
    assert DataConfig(ref_min_score=-1.0, ref_max_score=2.0).ref_max_score == 2.0
    with pytest.raises(ConfigError, match=r"^config key 'data.ref_max_score' must be greater than"):
        DataConfig(ref_min_score=3.0, ref_max_score=2.0)
    with pytest.raises(ConfigError, match=r"^config key 'data.ref_min_score' must be finite$"):
        load_config(None, ["data.ref_min_score=.nan"])


def test_given_references_are_stored_as_minari_stores_them(
    minari_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rollouts(*args: Any, **kwargs: Any) -> float:
        raise AssertionError("references were measured although both were given")

    monkeypatch.setattr(collect_mod, "rollout_returns", no_rollouts)
    collect_dataset(
        small(ref_episodes=0, ref_min_score=-1500.0, ref_max_score=-100.0), progress=False
    )
    dataset = minari.load_dataset(ID)
    meta = dataset.storage.metadata
    assert (meta["ref_min_score"], meta["ref_max_score"]) == (-1500.0, -100.0)
    assert "collect.ref_min_score" in meta["ref_scores_from"]
    np.testing.assert_allclose(minari.get_normalized_score(dataset, np.array([-800.0])), [0.5])


def test_random_data_without_an_expert_gets_a_given_expert_reference(minari_tmp: Path) -> None:
    cfg = small(env="CartPole-v1", policy="random", dataset_id="tt/cartpole/random-v0")
    with pytest.warns(UserWarning, match="no expert for CartPole-v1: ref_max_score not stored"):
        collect_dataset(cfg, progress=False)
    meta = minari.load_dataset("tt/cartpole/random-v0").storage.metadata
    assert "ref_max_score" not in meta and meta["ref_min_score"] > 0  # kept for data.ref_max_score
    cfg.ref_max_score, cfg.overwrite = 500.0, True
    collect_dataset(cfg, progress=False)
    dataset = minari.load_dataset("tt/cartpole/random-v0")
    low = dataset.storage.metadata["ref_min_score"]
    assert dataset.storage.metadata["ref_max_score"] == 500.0
    np.testing.assert_allclose(minari.get_normalized_score(dataset, np.array([500.0])), [1.0])
    assert 0 < low < 100  # measured with the random policy


# --------------------------------------------------------------- 7. env kwargs, robotics ids
def test_env_kwargs_reach_the_dataset_env_spec(minari_tmp: Path) -> None:
    cfg = load_config(
        None,
        [
            "collect.env_kwargs={g: 9.81, max_episode_steps: 50}",
            "collect.episodes=2",
            "collect.ref_episodes=1",
            f"collect.dataset_id={ID}",
        ],
    ).collect
    assert cfg.env_kwargs == {"g": 9.81, "max_episode_steps": 50}
    collect_dataset(cfg, progress=False)
    dataset = minari.load_dataset(ID)
    assert dataset.total_steps == 100  # 2 episodes of 50 steps
    env = dataset.recover_environment()
    assert (
        env.spec is not None and env.spec.kwargs["g"] == 9.81 and env.spec.max_episode_steps == 50
    )
    assert env.unwrapped.g == 9.81  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "collect.env_kwargs=[1, 2]",
            "config key 'collect.env_kwargs' needs a mapping such as {max_episode_steps: 100}, "
            "got [1, 2]",
        ),
        (
            "collect.env_kwargs={a: {b: 1}}",
            "config key 'collect.env_kwargs.a' must be a YAML scalar (number, string, true/false or null)",
        ),
        (
            "collect.env_kwargs={1x: 2}",
            "config key 'collect.env_kwargs.1x' must be a Python keyword name",
        ),
    ],
)
def test_bad_env_kwargs_config(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == message


def test_env_kwargs_the_env_rejects_fail_before_writing(minari_tmp: Path) -> None:
    with pytest.raises(TTError) as err:
        collect_dataset(small(env_kwargs={"bogus": 1}), progress=False)
    # checked against the registered constructor before the env is made (issue 31)
    assert str(err.value) == (
        "collect.env_kwargs.bogus: Pendulum-v1 takes no keyword 'bogus' (it takes render_mode, g)"
    )
    assert tree(minari_tmp) == []


def test_unknown_env_without_gymnasium_robotics_says_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "gymnasium_robotics", None)  # as if not installed
    # (an id nobody registers, so the test holds where gymnasium-robotics is installed too)
    with pytest.raises(TTError) as err:
        make_env("TTNotAMaze-v3")
    assert str(err.value) == (
        "collect.env=TTNotAMaze-v3: no such registered Gymnasium env; if it comes from "
        "gymnasium-robotics (PointMaze, AntMaze, Fetch, Adroit, ...), run "
        "`pip install gymnasium-robotics`, else check the id"
    )


FAKE_ROBOTICS = """
import gymnasium
gymnasium.register("TTFakeMaze-v3", entry_point="gymnasium.envs.classic_control.pendulum:PendulumEnv",
                   max_episode_steps=20)
"""


def test_robotics_ids_register_on_demand(
    minari_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id that only gymnasium_robotics registers works without the module: prefix."""
    package = tmp_path / "fake" / "gymnasium_robotics"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_ROBOTICS)
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "gymnasium_robotics", raising=False)
    assert "TTFakeMaze-v3" not in gym.registry
    try:
        collect_dataset(
            small(env="TTFakeMaze-v3", policy="random", dataset_id="tt/fake/random-v0"),
            progress=False,
        )
        assert minari.load_dataset("tt/fake/random-v0").total_steps == 60
    finally:
        gym.registry.pop("TTFakeMaze-v3", None)
        sys.modules.pop("gymnasium_robotics", None)
    with pytest.raises(
        TTError, match=r"^collect.env=TTNoSuchMaze-v3: no such registered Gymnasium"
    ):
        monkeypatch.syspath_prepend(str(package.parent))
        make_env("TTNoSuchMaze-v3")  # imported, still unknown: say so
    sys.modules.pop("gymnasium_robotics", None)


def test_real_gymnasium_robotics_point_maze() -> None:
    pytest.importorskip("gymnasium_robotics")
    env = make_env("PointMaze_UMaze-v3", {"continuing_task": False})
    assert env.spec is not None and env.spec.kwargs["continuing_task"] is False
    env.close()


def test_broken_gymnasium_robotics_is_not_called_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "broken" / "gymnasium_robotics"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("import tt_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(package.parent))
    monkeypatch.delitem(sys.modules, "gymnasium_robotics", raising=False)
    try:
        with pytest.raises(TTError) as err:
            make_env("TTNotAMaze-v3")
    finally:
        sys.modules.pop("gymnasium_robotics", None)
    assert str(err.value) == (
        "collect.env=TTNotAMaze-v3: not registered, and gymnasium-robotics, which may register "
        "it, is installed but cannot be imported (ModuleNotFoundError: No module named "
        "'tt_no_such_dependency'); reinstall it with `pip install gymnasium-robotics`"
    )
