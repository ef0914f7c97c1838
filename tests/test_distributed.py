"""DDP on CPU: 2 gloo processes end with identical weights, the loss goes down, only rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.multiprocessing as mp

from trajectory_transformer import runs
from trajectory_transformer.config import RunConfig, apply_overrides

OVERRIDES = [
    "model.n_embd=16",
    "model.n_layer=1",
    "model.n_head=2",
    "data.n_bins=20",
    "data.n_transitions=4",
    "train.batch_size=32",
    "train.lr=3e-3",
    "train.max_steps=25",
    "train.log_every=1",
    "train.save_every=10",
    "train.progress=false",
    "train.device=cpu",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, dataset: str, run_dir: str, out_dir: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    from trajectory_transformer.training import train

    def keep_weights(step: int, metrics: dict[str, float], model: torch.nn.Module) -> None:
        if step == 25:
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            runs.save_weights(Path(out_dir) / f"rank{rank}.safetensors", state)

    cfg = apply_overrides(RunConfig(), OVERRIDES)
    cfg = replace(cfg, data=replace(cfg.data, dataset=dataset))
    train(cfg, Path(run_dir), step_callback=keep_weights)


def test_two_gloo_ranks_end_identical_and_learn(pendulum_dataset: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    mp.spawn(
        _worker,
        args=(2, _free_port(), pendulum_dataset, str(run), str(tmp_path)),
        nprocs=2,
        join=True,
    )
    w0 = runs.load_weights(tmp_path / "rank0.safetensors")
    w1 = runs.load_weights(tmp_path / "rank1.safetensors")
    final = runs.load_weights(run / runs.WEIGHTS_FILE)
    assert all(torch.equal(w0[k], w1[k]) and torch.equal(w0[k], final[k]) for k in w0)
    losses = [
        json.loads(line)["losses/total"]
        for line in (run / runs.METRICS_FILE).read_text().splitlines()
    ]
    assert len(losses) == 25  # one writer: rank 0
    assert sum(losses[-5:]) < 0.9 * sum(losses[:5])
    state = json.loads((run / "checkpoints" / "step_25" / "state.json").read_text())
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    # 1200 windows split over 2 ranks of batch 32: 19 steps per epoch
    assert state["epoch"] == 1 and state["batch_in_epoch"] == 6


def test_torchrun_entry_point_runs(pendulum_dataset: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()),
        "-m", "trajectory_transformer", "train", "--run-dir", str(run),
        *[o for o in OVERRIDES if not o.startswith("train.max_steps")], "train.max_steps=4",
        f"data.dataset={pendulum_dataset}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = json.loads((run / "checkpoints" / "step_4" / "state.json").read_text())
    assert state["world_size"] == 2
    assert (run / runs.WEIGHTS_FILE).is_file()
