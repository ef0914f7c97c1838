"""One-file policies: save → load gives the same actions without the run folder or the dataset;
a truncated, flipped, edited or mistyped file is a one-line TTError, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import trajectory_transformer as tt
from tiny import tiny_model
from trajectory_transformer.data.discretizer import Discretizer
from trajectory_transformer.errors import TTError
from trajectory_transformer.share.policy_file import read_policy_file
from trajectory_transformer.utils import DIGEST_KEY, tensor_digest

OBS = np.array([0.5, -0.5, 1.0], np.float32)


def _actions(policy: tt.TTPolicy, steps: int = 4) -> np.ndarray:
    policy.reset()
    out = []
    for t in range(steps):
        out.append(policy.act(OBS * (t + 1)))
        policy.observe_reward(-1.0)
    return np.stack(out)


@pytest.fixture
def saved(tiny_run: Path, tmp_path: Path) -> Path:
    policy = tt.TTPolicy.load(tiny_run, device="cpu", beam_width=4, horizon=2, seed=3, context=2)
    return policy.save(tmp_path / "pendulum.tt")


def test_save_then_load_acts_the_same_without_the_run_or_dataset(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    policy = tt.TTPolicy.load(run, device="cpu", beam_width=4, horizon=2, seed=3, context=2)
    want = _actions(policy)
    path = policy.save(tmp_path / "pendulum.tt")
    shutil.rmtree(run)  # the run folder is gone ...
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "no-datasets"))  # ... and the data
    loaded = tt.TTPolicy.load(path, device="cpu")
    assert loaded.plan == policy.plan  # the policy's own plan settings travel with it
    assert loaded.run_dir == path and loaded.info == policy.info
    np.testing.assert_array_equal(_actions(loaded), want)
    np.testing.assert_array_equal(loaded.discretizer.edges, policy.discretizer.edges)
    for name, value in policy.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], value, rtol=0, atol=0)


def test_a_policy_built_in_memory_saves_its_spaces(tmp_path: Path) -> None:
    from gymnasium import spaces

    model = tiny_model()
    rng = np.random.default_rng(0)
    disc = Discretizer.fit(rng.normal(size=(200, model.config.token_dims)), 13, "uniform")
    obs_space = spaces.Box(-1, 1, (3,), np.float32)
    act_space = spaces.Box(-1, 1, (2,), np.float32)
    policy = tt.TTPolicy(
        model,
        disc,
        obs_space,
        act_space,
        tt.RunConfig().plan.__class__(context=2, horizon=2, beam_width=2, mode="greedy"),
    )
    loaded = tt.TTPolicy.load(policy.save(tmp_path / "mem.tt"), device="cpu")
    assert loaded.observation_space == obs_space and loaded.action_space == act_space
    np.testing.assert_array_equal(_actions(loaded), _actions(policy))


def _rewrite(path: Path, edit_meta: dict[str, str]) -> None:
    """Rewrite a policy file with edited metadata AND a valid checksum (a crafted file)."""
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        meta = dict(handle.metadata())
    meta.update(edit_meta)
    meta[DIGEST_KEY] = tensor_digest(tensors, meta)
    save_file(tensors, str(path), metadata=meta)


def _one_line_error(path: Path, match: str) -> str:
    with pytest.raises(TTError, match=match) as err:
        tt.TTPolicy.load(path, device="cpu")
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def test_truncated_file(saved: Path) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    _one_line_error(saved, "corrupt or truncated")


def test_flipped_byte_in_the_weights(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-5] ^= 0x40  # inside the last tensor's bytes
    saved.write_bytes(bytes(data))
    _one_line_error(saved, "checksum mismatch")
    tt.TTPolicy.load(saved, device="cpu", verify=False)  # on purpose: the user's choice


def test_edited_metadata_without_a_new_checksum(saved: Path) -> None:
    from safetensors import safe_open

    tensors = load_file(str(saved))
    with safe_open(str(saved), "pt") as handle:
        meta = dict(handle.metadata())
    meta["config"] = meta["config"].replace('"seed": 3', '"seed": 4')
    save_file(tensors, str(saved), metadata=meta)
    _one_line_error(saved, "checksum mismatch")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            {"model": '{"vocab_size": "16"}'},
            r"'model' field 'vocab_size' is \"16\", not of type int",
        ),
        ({"model": "[1, 2]"}, "'model' must be a JSON object, got list"),
        ({"dataset": "{not json"}, "'dataset' is not JSON"),
        (
            {"dataset": '{"dataset": "x", "observation_dim": 1.5}'},
            "'observation_dim' is 1.5, not of type int",
        ),
        ({"dataset": '{"dataset": "x", "pickle": "os.system"}'}, "unknown field 'pickle'"),
        ({"config": '{"train": {"lr": "fast"}}'}, "metadata 'config': config key 'train.lr'"),
        ({"config": '{"trian": {}}'}, "unknown config key 'trian'"),
        ({"discretizer": '{"format": 3}'}, "'discretizer' must map names to strings"),
        ({"format": "something/else"}, "not a trajectory_transformer policy file"),
    ],
)
def test_wrong_metadata_is_one_line(saved: Path, edit: dict[str, str], match: str) -> None:
    if edit.get("model", "").startswith('{"vocab'):  # keep the other fields, change one type
        from safetensors import safe_open

        with safe_open(str(saved), "pt") as handle:
            model = json.loads(handle.metadata()["model"])
        model["vocab_size"] = "16"
        edit = {"model": json.dumps(model)}
    _rewrite(saved, edit)
    _one_line_error(saved, match)


def test_weights_that_do_not_match_the_model(saved: Path) -> None:
    tensors = load_file(str(saved))
    name = next(k for k in tensors if k.startswith("model/"))
    tensors[name] = torch.zeros(1)
    from safetensors import safe_open

    with safe_open(str(saved), "pt") as handle:
        meta = dict(handle.metadata())
    meta[DIGEST_KEY] = tensor_digest(tensors, meta)
    save_file(tensors, str(saved), metadata=meta)
    _one_line_error(saved, "the weights do not match its model metadata")


def test_a_run_file_is_not_a_policy_file(tiny_run: Path) -> None:
    _one_line_error(tiny_run / "model.safetensors", "not a trajectory_transformer policy file")
    with pytest.raises(TTError, match="missing policy file"):
        read_policy_file(tiny_run / "nothing.tt")
