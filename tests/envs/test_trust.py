"""Fail loud, lose nothing, trust nothing: env specs are data, weights carry checksums, `tt eval`
prints a short table, baselines come from the dataset's own record, reference overrides work.

Every test feeds the bad input through the real entry point (`tt eval`, `tt render`,
`tt train --resume`, `env_factory`) and checks the exact one-line message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from tiny import SMALL_EVAL as SMALL
from tiny import TINY_TRAIN
from trajectory_transformer import runs
from trajectory_transformer.cli import main
from trajectory_transformer.config import CollectConfig, load_config
from trajectory_transformer.data.discretizer import Discretizer
from trajectory_transformer.data.episodes import DatasetInfo, load_transitions
from trajectory_transformer.envs.factory import env_factory
from trajectory_transformer.errors import TTError
from trajectory_transformer.utils import tensor_digest

PENDULUM_ENTRY = "gymnasium.envs.classic_control.pendulum:PendulumEnv"


class TrustedPendulum(PendulumEnv):
    """A legitimate env class that is not registered when the run is evaluated."""


def _train(dataset: str, run_dir: Path, *extra: str) -> Path:
    from trajectory_transformer.training.trainer import train

    cfg = load_config(None, [f"data.dataset={dataset}", *TINY_TRAIN, *extra])
    return train(cfg, run_dir)


@pytest.fixture(scope="module")
def trained(pendulum_dataset: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Pendulum run with checkpoints at steps 2 and 4 (never modified: tests copy it)."""
    root = tmp_path_factory.mktemp("trust")
    return _train(pendulum_dataset, root / "run", "train.max_steps=4", "train.save_every=2")


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def tt(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, command: str = "eval") -> str:
    """The single stderr line `tt` printed, without its `tt <command>: error: ` prefix."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = f"tt {command}: error: "
    assert lines[0].startswith(prefix), lines[0]
    return lines[0][len(prefix) :]


def set_env_spec(run_dir: Path, **spec_changes: Any) -> dict[str, Any]:
    """Rewrite the run's stored env spec (a Pendulum-v1 spec with these fields changed)."""
    path = run_dir / runs.DATASET_FILE
    info = json.loads(path.read_text())
    spec = json.loads(info["env_spec"])
    spec.update(spec_changes)
    info["env_spec"] = json.dumps(spec)
    info["env_id"] = spec["id"]
    path.write_text(json.dumps(info))
    return spec


def payload(victim: Path) -> dict[str, Any]:
    """Kwargs that make logging.basicConfig truncate `victim` (force: even under pytest)."""
    return {"filename": str(victim), "filemode": "w", "force": True}


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "precious.txt"
    path.write_text("keep me\n")
    return path


# ============================================================ 1. env specs are data, not code
OPT_IN = (
    "pass --trust-env-code (tt train, tt eval, tt render, tt quickstart, tt bench; the key "
    "eval.trust_env_code=true) if you trust it"
)


def test_stored_entry_point_of_a_registered_id_is_refused(
    run: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env_spec(run, entry_point="logging:basicConfig", kwargs=payload(victim))
    code, out, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2 and out == ""
    assert one_line_error(err) == (
        f'{run}/dataset.json: env_spec.entry_point is "logging:basicConfig", but '
        f"'Pendulum-v1' is registered here with \"{PENDULUM_ENTRY}\"; a stored entry point is "
        f"code that making the env would import and run, so it is refused: {OPT_IN}"
    )
    assert victim.read_text() == "keep me\n"
    assert not (run / "eval").exists()
    # tt render checks the same way, before anything is recorded
    code, _, err = tt(capsys, "render", str(run), *SMALL)
    assert code == 2 and "env_spec.entry_point" in one_line_error(err, "render")
    assert victim.read_text() == "keep me\n"


def test_a_saved_config_cannot_opt_itself_in(
    run: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env_spec(run, entry_point="logging:basicConfig", kwargs=payload(victim))
    config = json.loads((run / runs.CONFIG_FILE).read_text())
    config["eval"]["trust_env_code"] = True
    (run / runs.CONFIG_FILE).write_text(json.dumps(config))
    code, _, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2 and "refused" in one_line_error(err)
    assert victim.read_text() == "keep me\n"


def test_the_payload_is_real_with_trust_env_code(run: Path, victim: Path) -> None:
    """What the refusal prevents: with the opt-in, the stored entry point runs (a subprocess,
    so logging in this process is left alone) and truncates the file."""
    set_env_spec(run, entry_point="logging:basicConfig", kwargs=payload(victim))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run(
        [sys.executable, "-m", "trajectory_transformer", "eval", str(run), *SMALL,
         "--trust-env-code"],
        env=env, capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    assert victim.read_text() == ""


def test_unregistered_id_with_an_entry_point_is_refused(
    run: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env_spec(run, id="TTEvil-v0", entry_point="logging:basicConfig", kwargs=payload(victim))
    code, _, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2
    assert one_line_error(err).startswith(
        f'{run}/dataset.json: env_spec.id is "TTEvil-v0", which is not a registered Gymnasium env '
        "here; "
    )
    assert one_line_error(err).endswith(
        f'; or, to make it from the stored entry point "logging:basicConfig", {OPT_IN}'
    )
    assert victim.read_text() == "keep me\n"


def test_additional_wrappers_are_refused(
    run: Path, victim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrapper = {"name": "Evil", "entry_point": "logging:basicConfig", "kwargs": payload(victim)}
    set_env_spec(run, additional_wrappers=[wrapper])
    code, _, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2
    assert one_line_error(err) == (
        f'{run}/dataset.json: env_spec.additional_wrappers names ["logging:basicConfig"], code '
        f"that making the env would import and run; refused: {OPT_IN}"
    )
    assert victim.read_text() == "keep me\n"


def test_module_qualified_id_is_not_imported(tmp_path: Path) -> None:
    """gym.spec("mod:Env-v0") imports mod; a stored id must not make that happen."""
    marker = tmp_path / "imported"
    (tmp_path / "tt_marker_module.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        spec = json.loads(gym.make("Pendulum-v1").spec.to_json())  # type: ignore[union-attr]
        spec["id"] = "tt_marker_module:Pendulum-v1"
        info = DatasetInfo(dataset="crafted", env_spec=json.dumps(spec))
        with pytest.raises(TTError) as err:
            env_factory(info)
        assert str(err.value) == (
            "dataset 'crafted': env_spec.id is \"tt_marker_module:Pendulum-v1\", which names a "
            f"module that making the env would import and run; refused: {OPT_IN}"
        )
        info = DatasetInfo(dataset="crafted", env_id="tt_marker_module:Pendulum-v1")
        with pytest.raises(TTError, match=r"^dataset 'crafted': env_id is "):
            env_factory(info)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("tt_marker_module", None)
    assert not marker.exists()


def test_stored_kwargs_and_time_limit_survive() -> None:
    env = gym.make("Pendulum-v1", g=9.81, max_episode_steps=50)
    assert env.spec is not None
    info = DatasetInfo(dataset="custom", env_id="Pendulum-v1", env_spec=env.spec.to_json())
    made = env_factory(info)()
    assert made.unwrapped.g == 9.81  # type: ignore[attr-defined]
    assert made.spec is not None and made.spec.max_episode_steps == 50
    assert env_factory(info, max_episode_steps=7)().spec.max_episode_steps == 7  # type: ignore[union-attr]
    # a bad kwarg is the env's own error, one line, naming the file and the kwargs
    spec = json.loads(env.spec.to_json())
    spec["kwargs"] = {"gravity_typo": 1.0}
    info = DatasetInfo(dataset="custom", env_spec=json.dumps(spec))
    with pytest.raises(TTError) as err:
        env_factory(info)()
    assert str(err.value) == (
        "dataset 'custom': cannot make env 'Pendulum-v1' with kwargs {'gravity_typo': 1.0} "
        "(TypeError: PendulumEnv.__init__() got an unexpected keyword argument 'gravity_typo')"
    )


def test_changed_kwarg_evaluates_end_to_end(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_env_spec(run, kwargs={"g": 9.81})
    code, _, _ = tt(capsys, "eval", str(run), *SMALL)
    assert code == 0


def test_trust_env_code_makes_an_unregistered_env(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_id = "TTTrustedPendulum-v0"
    gym.register(env_id, entry_point=f"{__name__}:TrustedPendulum", max_episode_steps=200)
    try:
        spec = gym.make(env_id).spec
        assert spec is not None
        stored = json.loads(spec.to_json())
    finally:
        gym.registry.pop(env_id)  # not registered when the run is evaluated
    set_env_spec(run, **stored)
    code, _, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2
    message = one_line_error(err)
    assert message.startswith(f'{run}/dataset.json: env_spec.id is "{env_id}", which is not a ')
    assert f'the stored entry point "{__name__}:TrustedPendulum"' in message
    code, out, _ = tt(capsys, "eval", str(run), *SMALL, "--trust-env-code")
    assert code == 0 and f"{env_id}, 2 episodes" in out
    assert json.loads((run / "eval" / "eval.json").read_text())["env_id"] == env_id
    assert env_id not in gym.registry


# ============================================================ 2. integrity of weights
def flip_bytes(path: Path, tensor: str | None = None, count: int = 64) -> str:
    """XOR the lowest byte of `count` elements inside one tensor's data; returns its name."""
    raw = bytearray(path.read_bytes())
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    if tensor is None:  # the largest tensor
        tensor = max(
            header, key=lambda k: header[k]["data_offsets"][1] - header[k]["data_offsets"][0]
        )
    begin, end = header[tensor]["data_offsets"]
    width = {"F32": 4, "F64": 8, "I64": 8}[header[tensor]["dtype"]]
    for i in range(min(count, (end - begin) // width)):
        raw[8 + n + begin + i * width] ^= 0x01
    path.write_bytes(bytes(raw))
    return tensor


MISMATCH = (
    "checksum mismatch: its contents changed after it was written (a corrupt or edited file); "
)
EVAL_HINT = (
    "restore the file, or pass --ignore-checksums (tt eval, tt render, tt train --resume) "
    "if you changed it on purpose"
)


@pytest.mark.parametrize("name", [runs.WEIGHTS_FILE, runs.DISCRETIZER_FILE])
def test_flipped_bytes_are_caught_and_can_be_ignored(
    run: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_bytes(run / name, "centers" if name == runs.DISCRETIZER_FILE else None)
    code, out, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2 and out == ""
    assert one_line_error(err) == f"{run / name}: {MISMATCH}{EVAL_HINT}"
    code, _, err = tt(capsys, "render", str(run), *SMALL)
    assert code == 2 and one_line_error(err, "render") == f"{run / name}: {MISMATCH}{EVAL_HINT}"
    code, out, _ = tt(capsys, "eval", str(run), *SMALL, "--ignore-checksums")
    assert code == 0 and "normalized score" in out
    with pytest.raises(TTError, match="checksum mismatch"):
        runs.load_run(run)
    from trajectory_transformer.policy import TTPolicy

    with pytest.raises(TTError, match="checksum mismatch"):
        TTPolicy.load(run, device="cpu", context=2)
    assert TTPolicy.load(run, device="cpu", verify=False, context=2).run_dir == run


def test_a_file_without_checksum_is_refused(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import save_file

    path = run / runs.WEIGHTS_FILE
    save_file(runs.load_weights(path), str(path))  # the same tensors, no metadata
    code, _, err = tt(capsys, "eval", str(run), *SMALL)
    assert code == 2
    assert one_line_error(err) == (
        f"{path}: no sha256 checksum in its metadata (written by another tool or an older "
        f"version), so its integrity cannot be checked; {EVAL_HINT}"
    )
    assert tt(capsys, "eval", str(run), *SMALL, "--ignore-checksums")[0] == 0


@pytest.mark.parametrize("name", [runs.WEIGHTS_FILE, "optimizer.safetensors"])
def test_resume_refuses_a_changed_checkpoint(
    run: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    step_dir = run / runs.CHECKPOINT_DIR / "step_4"
    flip_bytes(step_dir / name)
    code, _, err = tt(capsys, "train", "--resume", str(run), "train.max_steps=6")
    assert code == 2
    assert one_line_error(err, "train") == (
        f"{step_dir / name}: {MISMATCH}delete {step_dir} to resume from the checkpoint before "
        "it, restore the file, or pass --ignore-checksums to tt train --resume if you changed it "
        "on purpose"
    )
    edited = run.with_name("edited")
    shutil.copytree(run, edited)
    code, _, err = tt(
        capsys, "train", "--resume", str(edited), "train.max_steps=6", "--ignore-checksums"
    )
    assert code == 0 and runs.train_step(edited) == 6, err  # the edited checkpoint was used
    shutil.rmtree(step_dir)  # the other advice works too
    code, _, _ = tt(capsys, "train", "--resume", str(run), "train.max_steps=6")
    assert code == 0 and runs.train_step(run) == 6


def test_resume_refuses_a_changed_discretizer(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flip_bytes(run / runs.DISCRETIZER_FILE, "edges")
    code, _, err = tt(capsys, "train", "--resume", str(run), "train.max_steps=6")
    assert code == 2
    assert one_line_error(err, "train") == f"{run / runs.DISCRETIZER_FILE}: {MISMATCH}{EVAL_HINT}"
    code, _, err = tt(
        capsys, "train", "--resume", str(run), "train.max_steps=6", "--ignore-checksums"
    )
    # past the checksum, the edited bins still differ from the dataset\'s: resuming is refused
    assert code == 2 and "discretizer bins (the dataset's contents changed)" in err


def test_digest_covers_names_dtypes_shapes_and_metadata(tmp_path: Path) -> None:
    a = torch.arange(6, dtype=torch.float32)
    base = tensor_digest({"w": a})
    assert tensor_digest({"w": a.clone()}) == base
    assert tensor_digest({"w": np.arange(6, dtype=np.float32)}) == base  # framework-neutral
    assert tensor_digest({"v": a}) != base
    assert tensor_digest({"w": a.view(2, 3)}) != base
    assert tensor_digest({"w": a.view(torch.int32)}) != base
    assert tensor_digest({"w": a}, {"strategy": "uniform"}) != base
    assert tensor_digest({"w": a.to(torch.bfloat16)}) != tensor_digest({"w": a.to(torch.float16)})
    # the discretizer's metadata is covered too: an edited strategy is caught
    disc = Discretizer.fit(np.random.default_rng(0).normal(size=(50, 2)), 4, "quantile")
    path = tmp_path / "d.safetensors"
    disc.save(path)
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'"quantile"', b'"uniform" '))
    with pytest.raises(TTError, match="checksum mismatch"):
        Discretizer.load(path)
    assert Discretizer.load(path, verify=False).strategy == "uniform"


# ============================================================ 3. tt eval output and baselines
def test_eval_prints_a_short_table_and_keeps_the_json(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = tt(capsys, "eval", str(run), *SMALL)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) <= 12
    saved = json.loads((run / "eval" / "eval.json").read_text())
    rows = dict(line.split("  ", 1) for line in lines)
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["agent"] == "planner"
    score = rows["normalized score"]
    assert score.startswith(f"{saved['normalized_score']:.1f}  95% CI [")
    assert "reference: dataset" in score
    assert rows["return"] == f"{saved['return_mean']:.1f} ± {saved['return_std']:.1f}"
    assert rows["episode length"] == "5.0" and rows["done ratio"] == "0.00"
    assert "ms per env step" in rows
    assert rows["written"] == str(run / "eval" / "eval.json")
    assert len(saved["returns"]) == 2 and "config" in saved


def test_eval_random_agent_shows_in_the_report(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = tt(capsys, "eval", str(run), "--agent", "random", *SMALL)
    assert code == 0 and out.splitlines()[-1].split() == [
        "written",
        str(run / "eval" / "eval_random.json"),
    ]
    assert tt(capsys, "report", str(run))[0] == 0
    text = (run / runs.REPORT_FILE).read_text()
    assert "<td>random</td>" in text and "eval_random.json not found" not in text


def test_behaviour_baseline_is_the_datasets_own_policy(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run config's collect section is only tt collect's default; the dataset's record wins."""
    from trajectory_transformer.config import EvalConfig
    from trajectory_transformer.envs.agents import PolicyAgent
    from trajectory_transformer.evaluation.evaluate import evaluate_agent
    from trajectory_transformer.sources.policies import PendulumExpert

    config = json.loads((run / runs.CONFIG_FILE).read_text())
    config["collect"]["policy"] = "random"  # not what made the data
    (run / runs.CONFIG_FILE).write_text(json.dumps(config))
    record = json.loads(json.loads((run / runs.DATASET_FILE).read_text())["collect_settings"])
    assert record["policy"] == "expert" and record["env"] == "Pendulum-v1"
    code, out, _ = tt(capsys, "eval", str(run), "--agent", "behaviour", *SMALL)
    assert code == 0
    assert "expert (noise 0.0, epsilon 0.0), from the dataset's collection record" in out
    saved = json.loads((run / "eval" / "eval_behaviour.json").read_text())
    info = runs.read_dataset_info(run)
    make_env = env_factory(info, 5)
    env = make_env()
    expert = PolicyAgent(PendulumExpert(), env.observation_space, env.action_space)
    cfg = EvalConfig(episodes=2, n_envs=2, max_episode_steps=5, progress=False)
    assert evaluate_agent(make_env, expert, cfg, info)["returns"] == saved["returns"]


def test_collect_record_is_stored_with_the_dataset(pendulum_dataset: str) -> None:
    _, info = load_transitions(pendulum_dataset)
    assert info.collect_settings is not None
    assert json.loads(info.collect_settings) == {
        "env": "Pendulum-v1", "env_kwargs": {}, "episodes": 6, "epsilon": 0.0, "noise": 0.0,
        "policy": "expert", "seed": 0,
    }  # fmt: skip


def _without_record(run: Path, **record: Any) -> None:
    path = run / runs.DATASET_FILE
    info = json.loads(path.read_text())
    info["collect_settings"] = json.dumps(record) if record else None
    path.write_text(json.dumps(info))


def test_behaviour_of_a_dataset_without_record_is_unknown(
    run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _without_record(run)
    code, _, err = tt(capsys, "eval", str(run), "--agent", "behaviour", *SMALL)
    dataset = runs.read_dataset_info(run).dataset
    assert code == 2
    assert one_line_error(err) == (
        f"{run}/dataset.json: the behaviour policy is unknown for dataset '{dataset}' (it was "
        "not made by tt collect, so it records no collection settings); use --agent planner or "
        "--agent random"
    )


def test_behaviour_from_a_missing_sb3_checkpoint_is_refused(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "gone" / "ppo.zip"
    _without_record(run, policy=f"sb3:PPO:{missing}", noise=0.0, epsilon=0.0, seed=0)
    code, _, err = tt(capsys, "eval", str(run), "--agent", "behaviour", *SMALL)
    assert code == 2
    assert one_line_error(err) == (
        f"{run}/dataset.json: the dataset was collected with collect.policy=sb3:PPO:{missing}, "
        f"but {missing} is not here; put the checkpoint there or use --agent planner or random"
    )


def test_behaviour_baseline_for_cartpole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CartPole has no scripted expert: the old baseline (the config's collect.policy=expert)
    failed; the dataset's record says random."""
    from trajectory_transformer.sources.collect import collect_dataset

    dataset = collect_dataset(
        CollectConfig(env="CartPole-v1", policy="random", episodes=4, ref_min_score=10.0,
                      ref_max_score=500.0, dataset_id="tt/cartpole/trust-random-v0"),
        progress=False,
    )  # fmt: skip
    run = _train(dataset, tmp_path / "cartpole", "train.max_steps=2")
    code, out, _ = tt(capsys, "eval", str(run), "--agent", "behaviour", *SMALL)
    assert code == 0 and "random (noise 0.0, epsilon 0.0)" in out


def test_reference_overrides_at_eval(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = tt(
        capsys, "eval", str(run), *SMALL, "data.ref_min_score=-2000", "data.ref_max_score=0"
    )
    assert code == 0
    saved = json.loads((run / "eval" / "eval.json").read_text())
    ref = saved["reference"]
    assert (ref["source"], ref["random_return"], ref["expert_return"]) == ("config", -2000.0, 0.0)
    expected = 100 * (np.mean(saved["returns"]) + 2000) / 2000
    assert saved["normalized_score"] == pytest.approx(expected)
    code, _, _ = tt(capsys, "eval", str(run), *SMALL, "data.ref_max_score=0")
    assert json.loads((run / "eval" / "eval.json").read_text())["reference"]["source"] == (
        "config+dataset"
    )
    code, _, err = tt(capsys, "eval", str(run), *SMALL, "data.n_bins=8")
    assert code == 2
    assert one_line_error(err) == (
        "override 'data.n_bins=8': tt eval only takes plan.*, eval.*, data.ref_min_score and "
        "data.ref_max_score overrides (the rest of the config belongs to the trained run)"
    )
