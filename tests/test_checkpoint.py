"""Run-folder I/O: atomic checkpoints, pruning, exact optimizer round trip, load_run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from trajectory_transformer import runs
from trajectory_transformer.config import RunConfig, config_to_dict
from trajectory_transformer.data.discretizer import Discretizer
from trajectory_transformer.data.episodes import DatasetInfo
from trajectory_transformer.errors import TTError
from trajectory_transformer.model.gpt import GPTConfig, TrajectoryGPT
from trajectory_transformer.training import checkpoint as ckpt
from trajectory_transformer.utils import atomic_write_json

GPT = GPTConfig(
    vocab_size=12, observation_dim=3, action_dim=1, n_transitions=3, n_embd=16, n_layer=1, n_head=2
)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _optimizer_state(model: torch.nn.Module) -> dict:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    model(torch.randint(0, 12, (2, 8))).sum().backward()
    opt.step()
    return opt.state_dict()


def test_interrupted_checkpoint_leaves_previous_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = TrajectoryGPT(GPT)
    opt_state = _optimizer_state(model)
    ckpt.save_checkpoint(tmp_path, 5, model.state_dict(), opt_state, {"loss": 1.0})
    before = _digest(tmp_path)

    calls = {"n": 0}
    real = runs.save_file

    def failing_save(tensors: dict, path: str, metadata: dict | None = None) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the optimizer file: the weights are already in the temp folder
            raise OSError(28, "No space left on device")
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(runs, "save_file", failing_save)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, 10, model.state_dict(), opt_state, {"loss": 0.5})
    assert _digest(tmp_path) == before  # no step_10, no temp folder, step_5 unchanged
    assert [s for s, _ in runs.list_checkpoints(tmp_path)] == [5]


def test_interrupted_weights_write_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.safetensors"
    runs.save_weights(path, {"w": torch.ones(3)})
    old = path.read_bytes()
    monkeypatch.setattr(
        runs, "save_file", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    with pytest.raises(KeyboardInterrupt):
        runs.save_weights(path, {"w": torch.zeros(3)})
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_optimizer_state_round_trip_is_exact(tmp_path: Path) -> None:
    model = TrajectoryGPT(GPT)
    state = _optimizer_state(model)
    ckpt.save_checkpoint(tmp_path, 1, model.state_dict(), state, {"loss": 2.0})
    loaded = ckpt.load_checkpoint(tmp_path / "checkpoints" / "step_1")
    assert loaded.step == 1 and loaded.state["loss"] == 2.0
    assert loaded.optimizer["param_groups"][0]["betas"] == (0.9, 0.95)
    for idx, per_param in state["state"].items():
        for name, value in per_param.items():
            assert torch.equal(loaded.optimizer["state"][idx][name], value)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt.load_state_dict(loaded.optimizer)  # accepted by torch as is


def test_several_optimizers_merge_into_one_checkpoint_and_split_back_exactly(
    tmp_path: Path,
) -> None:
    """A d3rlpy algorithm's optimizers (actor with two groups, critic, temperature) saved as one."""
    actor, critic, temp = torch.nn.Linear(3, 2), torch.nn.Linear(4, 1), torch.nn.Linear(1, 1)
    opts = {
        "actor_optim": torch.optim.Adam(
            [{"params": [actor.weight]}, {"params": [actor.bias], "lr": 1e-4}], lr=3e-4
        ),
        "critic_optim": torch.optim.AdamW(critic.parameters(), lr=1e-3, betas=(0.9, 0.95)),
        "temp_optim": torch.optim.Adam(temp.parameters(), lr=1e-4),
    }
    for net in (actor, critic, temp):
        net(torch.randn(5, net.in_features)).square().sum().backward()
    for opt in list(opts.values())[:2]:  # temp_optim never stepped: no per-parameter state
        opt.step()
    states = {name: opt.state_dict() for name, opt in opts.items()}
    merged = ckpt.merge_optimizer_states(states)
    assert sorted(merged["state"]) == [0, 1, 2, 3]  # actor 0-1, critic 2-3, temp none
    ckpt.save_checkpoint(tmp_path, 7, {}, merged, {})
    back = ckpt.split_optimizer_states(
        ckpt.load_checkpoint(tmp_path / "checkpoints/step_7").optimizer
    )
    assert list(back) == list(states)
    for name, state in states.items():
        assert back[name]["param_groups"] == [
            {**g, "betas": tuple(g["betas"])} for g in state["param_groups"]
        ]
        assert sorted(back[name]["state"]) == sorted(state["state"])
        for idx, per_param in state["state"].items():
            for key, value in per_param.items():
                assert torch.equal(back[name]["state"][idx][key], value)
        opts[name].load_state_dict(back[name])  # torch accepts each as is
    with pytest.raises(TTError, match="parameter 9"):
        ckpt.split_optimizer_states({**merged, "state": {**merged["state"], 9: {}}})


def test_prune_keeps_last_k_and_best(tmp_path: Path) -> None:
    model = TrajectoryGPT(GPT)
    opt_state = _optimizer_state(model)
    for step, loss in [(1, 3.0), (2, 0.5), (3, 2.0), (4, 1.5), (5, 1.0)]:
        ckpt.save_checkpoint(tmp_path, step, model.state_dict(), opt_state, {"loss": loss})
    ckpt.prune_checkpoints(tmp_path, keep_last=2)
    assert [s for s, _ in runs.list_checkpoints(tmp_path)] == [2, 4, 5]


def _write_run(run_dir: Path, model: TrajectoryGPT) -> None:
    rng = np.random.default_rng(0)
    disc = Discretizer.fit(rng.normal(size=(200, GPT.transition_dim)), GPT.vocab_size)
    atomic_write_json(run_dir / runs.CONFIG_FILE, config_to_dict(RunConfig()))
    atomic_write_json(run_dir / runs.MODEL_CONFIG_FILE, GPT.to_dict())
    atomic_write_json(
        run_dir / runs.DATASET_FILE,
        DatasetInfo(dataset="synthetic", observation_dim=3, action_dim=1).to_dict(),
    )
    disc.save(run_dir / runs.DISCRETIZER_FILE)
    runs.save_weights(run_dir / runs.WEIGHTS_FILE, model.state_dict())


def test_load_run_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TrajectoryGPT(GPT).eval()
    _write_run(tmp_path, model)
    run = runs.load_run(tmp_path)
    assert not run.model.training and run.gpt_config == GPT and run.info.dataset == "synthetic"
    tokens = torch.randint(0, GPT.vocab_size, (4, GPT.block_size))
    with torch.no_grad():
        assert torch.equal(run.model(tokens), model(tokens))


@pytest.mark.parametrize("name", [runs.WEIGHTS_FILE, runs.CONFIG_FILE, runs.MODEL_CONFIG_FILE])
def test_load_run_corrupt_file_is_one_line_error(tmp_path: Path, name: str) -> None:
    _write_run(tmp_path, TrajectoryGPT(GPT))
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated
    with pytest.raises(TTError) as err:
        runs.load_run(tmp_path)
    assert name in str(err.value) and "\n" not in str(err.value)
