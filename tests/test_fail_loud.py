"""Fail loud, lose nothing, round 3 (issue 31): bad input through the real entry points.

Each class of the issue is fed its bad input through `tt` (or the function the command calls) and
checked for the one-line message, and for what must not happen: no work done first, nothing
written where the user did not ask, nothing lost. Classes: output paths, values validated late,
reference returns, hand-edited run files, caches and restarts, trust, run names.
(Rendering without a display is in evaluation/test_video.py, the policy's shapes in
test_policy.py, config bounds in config/test_config.py.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tiny import SMALL_EVAL as SMALL
from tiny import TINY_TRAIN
from trajectory_transformer import runs
from trajectory_transformer.cli import main, parse_args
from trajectory_transformer.config import RunConfig, load_config
from trajectory_transformer.data.tokens import prepare_tokens
from trajectory_transformer.errors import TTError
from trajectory_transformer.evaluation.evaluate import training_eval_hook
from trajectory_transformer.evaluation.metrics import Reference, pick_reference, score
from trajectory_transformer.training.checkpoint import STATE_FILE
from trajectory_transformer.training.trainer import train
from trajectory_transformer.utils import LOCK_FILE, resolve_device


def tt(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `tt`; (exit code, its one error line without the `tt <cmd>: error: ` prefix).

    Exactly one error line and no traceback; other stderr lines (warnings, progress) may appear.
    """
    capsys.readouterr()
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    prefix = f"tt {args[0]}: error: "
    errors = [line for line in err.splitlines() if line.startswith(prefix)]
    if code == 0:
        assert not errors, err
        return code, ""
    assert len(errors) == 1, err
    return code, errors[0][len(prefix) :]


@pytest.fixture
def run(checkpointed_run: Path, tmp_path: Path) -> Path:
    """A copy of the session's tiny run (checkpoints at steps 2 and 4), without what other test
    modules add to that shared run (evaluations, reports, videos)."""
    copy = tmp_path / "run"
    shutil.copytree(
        checkpointed_run, copy, ignore=shutil.ignore_patterns("eval", "report*", "videos")
    )
    return copy


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`chattr +i`: a folder that refuses writes even to root (chmod does not bite for root)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i does not work here ({done.stderr.decode().strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes (the lock file records only who last held the folder)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK_FILE
    }


# ============================================================ 1. output paths and the file system
def test_train_run_dir_that_is_a_file_or_under_one(
    pendulum_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_text("x")
    args = ["train", *TINY_TRAIN, f"data.dataset={pendulum_dataset}", "train.max_steps=2"]
    code, msg = tt(capsys, *args, "--run-dir", str(tmp_path / "f"))
    assert code == 2
    assert (
        msg == f"{tmp_path / 'f'}: the run folder is a file, not a folder; choose another --run-dir"
    )
    code, msg = tt(capsys, *args, "--run-dir", str(tmp_path / "f" / "x" / "y"))
    assert msg == (
        f"{tmp_path / 'f' / 'x' / 'y'}: the run folder sits under {tmp_path / 'f'}, which is a "
        "file, not a folder; choose another --run-dir"
    )
    assert (tmp_path / "f").read_text() == "x"


def test_eval_out_that_is_a_file_is_refused_before_any_episode(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_text("x")
    code, msg = tt(capsys, "eval", str(run), "--out", str(tmp_path / "f"), *SMALL)
    assert code == 2
    assert msg == f"{tmp_path / 'f'}: the evaluation output folder is a file, not a folder"
    code, msg = tt(capsys, "eval", str(run), "--out", str(tmp_path / "f" / "sub"), *SMALL)
    assert "sits under" in msg and "which is a file" in msg
    assert not (run / runs.EVAL_DIR).exists()


@pytest.mark.parametrize("command", ["eval", "resume", "report", "render"])
def test_an_immutable_run_folder_is_refused_before_any_work(
    run: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(run)
    args = {
        "eval": ["eval", str(run), *SMALL],
        "resume": ["train", "--resume", str(run)],
        "report": ["report", str(run)],
        "render": ["render", str(run), *SMALL],
    }[command]
    with immutable(run):
        code, msg = tt(capsys, *args)
    assert code == 2
    what = {"report": "report folder", "render": "video folder", "eval": "evaluation output"}.get(
        command, "run folder"
    )
    assert "cannot write the " + what in msg and "Operation not permitted" in msg, msg
    assert msg.startswith(str(run)), msg
    assert snapshot(run) == before


def test_an_immutable_checkpoints_folder_is_refused_on_resume(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with immutable(run / runs.CHECKPOINT_DIR):
        code, msg = tt(capsys, "train", "--resume", str(run))
    assert code == 2
    assert msg.startswith(
        f"{run / runs.CHECKPOINT_DIR}: cannot write the run's checkpoints/ folder"
    )


def test_a_datasets_root_that_cannot_hold_datasets_is_refused_before_collecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["collect", "collect.episodes=1", "collect.ref_episodes=1", "--no-progress"]
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "file"))
    code, msg = tt(capsys, *args)
    assert code == 2
    assert msg == (
        f"{tmp_path / 'file'}: the datasets root (MINARI_DATASETS_PATH) is a file, not a folder; "
        "point MINARI_DATASETS_PATH at a folder you can write"
    )
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(frozen))
    with immutable(frozen):
        code, msg = tt(capsys, *args)
    assert msg.startswith(f"{frozen}: cannot write the datasets root (MINARI_DATASETS_PATH) here")
    assert list(frozen.iterdir()) == []


# ============================================================ 2. values validated too late
def test_mps_without_mps_is_one_line_naming_the_key(
    pendulum_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(
        TTError, match=r"^eval\.device=mps was asked for but this PyTorch has no MPS"
    ):
        resolve_device("mps", "eval.device")
    run_dir = tmp_path / "r"
    code, msg = tt(capsys, "train", *TINY_TRAIN, f"data.dataset={pendulum_dataset}",
                   "train.device=mps", "--run-dir", str(run_dir))  # fmt: skip
    assert code == 2 and msg.startswith("train.device=mps was asked for"), msg
    assert not run_dir.exists()  # refused before the folder was made


def test_a_beam_too_wide_is_refused_with_its_estimate(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, msg = tt(capsys, "eval", str(run), *SMALL, "plan.beam_width=1000000000")
    assert code == 2
    assert msg.startswith(
        "planning with plan.beam_width=1000000000 x plan.expand=2 x 2 env(s) "
        "(4,000,000,000 decoder rows) needs about "
    ), msg
    assert " GB of memory, but " in msg and msg.endswith(
        "lower plan.beam_width, plan.expand or eval.n_envs"
    )
    assert not (run / runs.EVAL_DIR).exists()


def test_a_model_too_big_is_refused_before_it_is_built(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    cfg = load_config(
        None, [f"data.dataset={pendulum_dataset}", *TINY_TRAIN, "model.n_embd=1000000"]
    )
    with pytest.raises(
        TTError, match=r"^training model\.n_embd=1000000, .* needs about [\d,.]+ GB"
    ):
        train(cfg, tmp_path / "r")
    assert not (tmp_path / "r" / runs.CONFIG_FILE).exists()


def test_env_kwargs_of_the_wrong_kind_are_refused_before_any_episode(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, msg = tt(capsys, "eval", str(run), *SMALL, "eval.env_kwargs={g: abc}")
    assert code == 2
    assert msg == "eval.env_kwargs.g: Pendulum-v1 expects a number (its default is 10.0), got 'abc'"
    code, msg = tt(capsys, "eval", str(run), *SMALL, "eval.env_kwargs={gravity: 3}")
    assert (
        msg
        == "eval.env_kwargs.gravity: Pendulum-v1 takes no keyword 'gravity' (it takes render_mode, g)"
    )
    code, msg = tt(capsys, "collect", "collect.episodes=1", "collect.ref_episodes=1",
                   "collect.dataset_id=tt/pendulum/kw-v0", "collect.env_kwargs={g: true}")  # fmt: skip
    assert (
        msg == "collect.env_kwargs.g: Pendulum-v1 expects a number (its default is 10.0), got True"
    )
    assert tt(capsys, "eval", str(run), *SMALL, "eval.env_kwargs={g: 9.5}")[0] == 0


# ============================================================ 3. reference returns
def set_refs(run_dir: Path, low: Any, high: Any) -> None:
    path = run_dir / runs.DATASET_FILE
    info = json.loads(path.read_text())
    info["ref_min_score"], info["ref_max_score"] = low, high
    path.write_text(json.dumps(info))


@pytest.mark.parametrize(
    ("dataset", "overrides", "said"),
    [
        ((5.0, 5.0), [], "the expert return 5.0 (the dataset's ref_max_score) equals the random "
         "return 5.0 (the dataset's ref_min_score), so a score would divide by zero"),
        ((10.0, 1.0), [], "the expert return 1.0 (the dataset's ref_max_score) is below the random "
         "return 10.0 (the dataset's ref_min_score), so a score would run backwards"),
        ((0.0, 100.0), ["data.ref_min_score=500"], "the expert return 100.0 (the dataset's "
         "ref_max_score) is below the random return 500.0 (data.ref_min_score)"),
        ((0.0, 100.0), ["data.ref_max_score=-1"], "the expert return -1.0 (data.ref_max_score) is "
         "below the random return 0.0 (the dataset's ref_min_score)"),
    ],
)  # fmt: skip
def test_a_scale_that_runs_backwards_is_refused_before_any_episode(
    run: Path,
    dataset: tuple[float, float],
    overrides: list[str],
    said: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_refs(run, *dataset)
    code, msg = tt(capsys, "eval", str(run), *SMALL, *overrides)
    assert code == 2
    assert msg.startswith(f"reference returns make no scale: {said}"), msg
    assert msg.endswith("set data.ref_min_score and data.ref_max_score (e.g. tt eval RUN_DIR "
                        "data.ref_min_score=... data.ref_max_score=...)")  # fmt: skip
    assert not (run / runs.EVAL_DIR).exists()


def test_both_given_inverted_is_a_config_error(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, msg = tt(capsys, "eval", str(run), *SMALL, "data.ref_min_score=5", "data.ref_max_score=5")
    assert code == 2
    assert msg == "config key 'data.ref_max_score' must be greater than data.ref_min_score"


def test_the_one_score_function_never_scores_on_a_backwards_scale() -> None:
    returns = np.array([1.0, 2.0])
    for low, high in ((5.0, 5.0), (10.0, 1.0), (0.0, float("nan"))):
        with pytest.raises(TTError, match="reference return"):
            score(returns, Reference(low, high, "test"))
    assert pick_reference("Pendulum-v1", 0.0, 10.0).expert == 10.0  # type: ignore[union-attr]


def test_non_numeric_metadata_is_left_out_and_said(capsys: pytest.CaptureFixture[str]) -> None:
    from trajectory_transformer.data.episodes import _reference

    meta = {"ref_min_score": "abc", "ref_max_score": np.float32(3.5), "x": None}
    assert _reference(meta, "ref_min_score", "tt/x/y-v0") is None
    assert _reference(meta, "ref_max_score", "tt/x/y-v0") == 3.5
    assert _reference({"ref_min_score": float("inf")}, "ref_min_score", "d") is None
    err = capsys.readouterr().err
    assert (
        "warning: dataset 'tt/x/y-v0': metadata ref_min_score is 'abc', not a finite number" in err
    )


def test_the_report_shows_no_score_on_a_backwards_scale(tmp_path: Path) -> None:
    from trajectory_transformer.evaluation.report.read import _Run
    from trajectory_transformer.evaluation.report.scores import _score

    summary = {"normalized_score": 50.0, "returns": [1.0, 2.0],
               "reference": {"random_return": 10.0, "expert_return": 1.0}}  # fmt: skip
    assert _score(_Run(root=tmp_path), summary) == (None, None)
    summary["reference"] = {"random_return": 0.0, "expert_return": 10.0}
    assert _score(_Run(root=tmp_path), summary)[0] == 50.0
    backwards = _Run(root=tmp_path, dataset={"ref_min_score": 3.0, "ref_max_score": 1.0})
    assert _score(backwards, {"returns": [1.0, 2.0]}) == (None, None)


# ============================================================ 4. hand-edited run files
def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


def _set(key: str, value: Any) -> Any:
    def change(d: dict[str, Any]) -> dict[str, Any]:
        node = d
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
        return d

    return change


@pytest.mark.parametrize(
    ("file", "change", "said"),
    [
        ("model.json", _set("n_embd", 10**30), "config key 'model.n_embd' must be below 2**63 in size"),
        ("model.json", _set("n_layer", "abc"), "config key 'n_layer' expects int, got 'abc'"),
        ("model.json", lambda d: [1], "not a model config (expected a JSON object)"),
        ("config.json", _set("model.n_layer", 10**30), "config key 'model.n_layer' must be below 2**63"),
        ("config.json", _set("data.termination_penalty", 1e400), "config key 'data.termination_penalty' must be finite, got inf"),
        ("config.json", _set("name", "../x"), "config key 'name' must be a plain folder name"),
        ("dataset.json", lambda d: 5, "must be a JSON object of dataset fields, got int"),
        ("dataset.json", lambda d: "hello", "must be a JSON object of dataset fields, got str"),
        ("dataset.json", _set("observation_dim", 10**30), "field 'observation_dim' must be a whole number >= 0"),
        ("dataset.json", _set("ref_min_score", "abc"), "field 'ref_min_score' must be a finite number or null, got 'abc'"),
        ("dataset.json", _set("newer", 1), "has unknown fields ['newer']"),
    ],
)  # fmt: skip
def test_edited_run_json_names_the_file_and_field(
    run: Path, file: str, change: Any, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_json(run / file, change)
    code, msg = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2
    assert msg.startswith(f"{run / file}: {said}"), msg
    assert not (run / runs.EVAL_DIR).exists()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (_set("step", -1), "field 'step' must be a whole number in [0, 2**62], got -1"),
        (_set("step", 10**30), "field 'step' must be a whole number in [0, 2**62], got 1000000000...(31 chars)"),
        (_set("step", 3), "field 'step' is 3 but the folder says step 4"),
        (_set("rng", [1, 2]), "field 'rng' must be an object of RNG states, got list"),
        (_set("epoch", -1), "field 'epoch' must be a whole number in [0, 2**62], got -1"),
        (_set("schedule", "x"), "field 'schedule' must be an object whose 'tokens' is a whole number >= 0"),
        (_set("rng.numpy", [1]), "field 'rng.numpy' is not the RNG state this trainer saves"),
    ],
)  # fmt: skip
def test_an_edited_checkpoint_state_is_refused_and_loses_nothing(
    run: Path, change: Any, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state = run / runs.CHECKPOINT_DIR / "step_4" / STATE_FILE
    edit_json(state, change)
    before = snapshot(run)
    # checked by the checksum first, then (files changed on purpose) field by field
    code, msg = tt(capsys, "train", "--resume", str(run))
    assert code == 2 and msg.startswith(f"{state}: "), msg
    assert "checksum mismatch" in msg or said in msg, msg
    code, msg = tt(capsys, "train", "--resume", str(run), "--ignore-checksums")
    assert code == 2
    assert msg.startswith(f"{state}: {said}"), msg
    assert msg.endswith(f"restore the file or delete {state.parent}"), msg
    assert snapshot(run) == before  # metrics.jsonl untouched


def test_the_checkpoint_state_is_covered_by_the_checksums(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = run / runs.CHECKPOINT_DIR / "step_4" / STATE_FILE
    edit_json(state, _set("loss", 0.001))  # a valid state, changed
    code, msg = tt(capsys, "train", "--resume", str(run))
    assert code == 2
    assert msg.startswith(
        f"{state}: checksum mismatch: it changed after the checkpoint was written"
    )
    assert "--ignore-checksums" in msg


# ============================================================ 5. caches and restarts
def test_a_token_cache_that_does_not_verify_is_rebuilt(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    cfg = load_config(None, [f"data.dataset={pendulum_dataset}", *TINY_TRAIN]).data
    first = prepare_tokens(cfg, tmp_path)
    (npz,) = tmp_path.glob("tokens-*.npz")
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])  # truncated
    with pytest.warns(UserWarning, match="unreadable token cache .*rebuilding it"):
        again = prepare_tokens(cfg, tmp_path)
    np.testing.assert_array_equal(again.tokens, first.tokens)
    with np.load(npz) as data:  # rebuilt: whole again
        arrays = {k: data[k] for k in data.files}
    arrays["tokens"] = (arrays["tokens"] + 1) % cfg.n_bins  # a valid zip with changed arrays
    with open(npz, "wb") as handle:
        np.savez(handle, **arrays)
    with pytest.warns(UserWarning, match="does not match its checksum.*rebuilding it"):
        rebuilt = prepare_tokens(cfg, tmp_path)
    np.testing.assert_array_equal(rebuilt.tokens, first.tokens)


def test_a_restart_from_nothing_starts_the_logs_from_nothing(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    cfg = load_config(None, [f"data.dataset={pendulum_dataset}", *TINY_TRAIN, "train.max_steps=5",
                             "train.save_every=100", "train.log_every=1"])  # fmt: skip
    run_dir = tmp_path / "run"

    def die(step: int, metrics: dict[str, float], model: Any) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(cfg, run_dir, step_callback=die)
    assert not runs.list_checkpoints(run_dir)
    assert len((run_dir / runs.METRICS_FILE).read_text().splitlines()) == 3
    train(cfg, run_dir)  # the same command again
    steps = [
        json.loads(line)["step"] for line in (run_dir / runs.METRICS_FILE).read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4, 5]
    assert len(list((run_dir / runs.TB_DIR).glob("events.*"))) == 1


# ============================================================ 6. trust checked before any work
def test_training_refuses_a_foreign_entry_point_before_its_first_step(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    cfg = load_config(None, [f"data.dataset={pendulum_dataset}", *TINY_TRAIN, "train.max_steps=3",
                             "train.eval_every=1"])  # fmt: skip
    data = prepare_tokens(cfg.data, tmp_path / "cache")
    spec = json.loads(data.info.env_spec or "{}")
    spec["entry_point"] = "logging:basicConfig"
    data = replace(data, info=replace(data.info, env_spec=json.dumps(spec), eval_env_spec=None))
    steps: list[int] = []
    with pytest.raises(TTError) as err:
        train(cfg, tmp_path / "run", dataset=data, eval_fn=training_eval_hook(),
              step_callback=lambda step, *_: steps.append(step))  # fmt: skip
    msg = str(err.value)
    assert 'entry_point is "logging:basicConfig"' in msg and "(train.eval_every=1)" in msg, msg
    assert msg.endswith(
        "pass --trust-env-code (tt train, tt eval, tt render, tt quickstart, tt bench; the key "
        "eval.trust_env_code=true) if you trust it"
    )
    assert steps == [] and not runs.list_checkpoints(tmp_path / "run")


@pytest.mark.parametrize("command", ["train", "eval", "render", "quickstart", "bench"])
def test_every_command_that_makes_an_env_has_the_same_trust_flag(command: str) -> None:
    extra = {"eval": ["RUN"], "render": ["RUN"], "bench": ["plan"]}.get(command, [])
    assert parse_args([command, *extra, "--trust-env-code"]).trust_env_code is True


# ============================================================ 7. a run name is a name, not a path
@pytest.mark.parametrize("name", ["../esc", "/tmp/abs-run-dir", "a/b", ".."])
def test_a_run_name_that_is_a_path_is_refused(
    name: str, pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    work = tmp_path / "work" / "here"  # name=../esc would land in tmp_path / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, msg = tt(capsys, "train", *TINY_TRAIN, f"data.dataset={pendulum_dataset}", f"name={name}")
    assert code == 2
    assert msg == (
        f"config key 'name' must be a plain folder name (no '/', '..' or absolute path), got "
        f"{name!r}; pass --run-dir to choose where the run is written"
    )
    assert os.listdir(tmp_path / "work") == ["here"] and os.listdir(work) == []
    assert not Path("/tmp/abs-run-dir").exists()


def test_a_preset_naming_an_absolute_dir_is_refused(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(f"name: {tmp_path / 'elsewhere'}\n")
    with pytest.raises(TTError, match="config key 'name' must be a plain folder name"):
        load_config(str(preset))
    with pytest.raises(TTError, match="config key 'name' must be a plain folder name"):
        RunConfig(name="")
    assert RunConfig(name="hopper-medium").name == "hopper-medium"


@pytest.mark.parametrize(
    ("summary", "said"),
    [
        ({"normalized_score": "abc"}, "field 'normalized_score' must be a number or null, got 'abc'"),
        ({"returns": 5}, "field 'returns' must be a list of numbers or null, got '5'"),
        ({"reference": "x"}, "field 'reference' must be an object or null, got 'x'"),
        ({"reference": {"random_return": "a"}}, "field 'reference.random_return' must be a number"),
        ([1, 2], "not a JSON object of summary fields (list)"),
    ],
)  # fmt: skip
def test_the_report_leaves_out_an_edited_eval_summary_and_says_which(
    run: Path, summary: Any, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (run / runs.EVAL_DIR).mkdir()
    path = run / runs.EVAL_DIR / "eval.json"
    path.write_text(json.dumps(summary))
    code, _ = tt(capsys, "report", str(run))
    assert code == 0
    # tt() dropped the warning line; read it from a second run
    main(["report", str(run)])
    err = capsys.readouterr().err
    assert f"warning: report: left out {path}: {said}" in err, err
    assert f"left out {path}: " in (run / runs.REPORT_FILE).read_text()
