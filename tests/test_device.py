"""Every inference path keeps its tensors on the model's device (tests/fake_cuda.py).

The machines that run these tests have no GPU, so a CPU tensor meeting a CUDA one (the first GPU
run's `tt eval` crash in plan/beam.py) is simulated: the model is "moved" to a fake CUDA device
and every op that mixes the two devices, or calls .numpy() on the device, is recorded.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fake_cuda import fake_cuda
from trajectory_transformer.evaluation.evaluate import evaluate_run
from trajectory_transformer.plan.beam import BeamPlanner

MODES = ["beam", "greedy", "likelihood", "sample"]


def test_the_simulation_sees_the_first_gpu_runs_crash() -> None:
    """The premise: a CPU prompt indexed by rows made on the device is a recorded violation."""
    with fake_cuda() as gpu:
        rows = torch.arange(4, device="cuda")
        prompt = torch.zeros(4, 7, dtype=torch.long)
        _ = prompt[rows, -3:]
        on_device = prompt.to("cuda")
        _ = on_device[rows, -3:]
        _ = on_device.cpu().numpy()
    assert len(gpu.violations) == 1 and "__getitem__" in gpu.violations[0]


@pytest.mark.parametrize("mode", MODES)
def test_eval_on_cuda_keeps_every_tensor_on_the_device(
    tiny_run: Path, tmp_path: Path, mode: str
) -> None:
    overrides = [
        "eval.device=cuda", "eval.episodes=2", "eval.n_envs=2", "eval.max_episode_steps=3",
        f"plan.mode={mode}", "plan.beam_width=2", "plan.horizon=2", "plan.context=2",
    ]  # fmt: skip
    with fake_cuda() as gpu:
        summary = evaluate_run(tiny_run, overrides, out=tmp_path / mode)
    assert gpu.violations == []
    assert summary["episodes"] == 2


def test_cuda_results_equal_cpu_results(tiny_run: Path, tmp_path: Path) -> None:
    """The simulation computes on the CPU: the same plan and returns as a plain CPU run."""
    base = ["eval.episodes=2", "eval.n_envs=2", "eval.max_episode_steps=4", "plan.context=2",
            "plan.beam_width=2", "plan.horizon=2"]  # fmt: skip
    cpu = evaluate_run(tiny_run, [*base, "eval.device=cpu"], out=tmp_path / "cpu")
    with fake_cuda() as gpu:
        cuda = evaluate_run(tiny_run, [*base, "eval.device=cuda"], out=tmp_path / "cuda")
    assert gpu.violations == []
    assert cuda["returns"] == cpu["returns"]


def test_policy_act_and_predict_on_cuda(tiny_run: Path) -> None:
    from trajectory_transformer.policy import TTPolicy

    with fake_cuda() as gpu:
        policy = TTPolicy.load(tiny_run, device="cuda", beam_width=2, horizon=2, context=2)
        assert policy.device.type == "cuda"
        obs = np.zeros((2, 3), dtype=np.float32)
        action = policy.act(obs)
        actions, _ = policy.predict(obs, episode_start=np.array([True, False]))
    assert gpu.violations == []
    assert np.asarray(action).shape == (2, 1) and actions.shape == (2, 1)


def test_planner_built_on_the_device_plans_from_a_host_prompt(tiny_run: Path) -> None:
    """BeamPlanner.plan takes a CPU prompt (as the agent builds it) and moves it itself."""
    from trajectory_transformer import runs
    from trajectory_transformer.plan.agent import make_agent

    with fake_cuda() as gpu:
        loaded = runs.load_run(tiny_run, torch.device("cuda"))
        plan = replace(loaded.config.plan, context=2, beam_width=2, horizon=2)
        agent = make_agent(loaded, plan, torch.device("cuda"))
        slots = np.arange(2)
        agent.reset(slots)
        agent.act(slots, np.zeros((2, 3), dtype=np.float32))
        assert isinstance(agent.planner, BeamPlanner)
    assert gpu.violations == []


def test_training_on_cuda_keeps_batches_and_state_on_the_device(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    from conftest import TINY_TRAIN
    from trajectory_transformer.config import load_config
    from trajectory_transformer.training.trainer import train

    over = [f"data.dataset={pendulum_dataset}", *TINY_TRAIN, "train.max_steps=2"]
    cfg = load_config(None, [*over, "train.device=cuda"])
    with fake_cuda() as gpu:
        train(cfg, tmp_path / "run")
    assert gpu.violations == []


def test_bench_gpu_refuses_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    from trajectory_transformer.cli import main

    assert main(["bench", "gpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a CUDA device" in err[0]


def test_bench_gpu_runs_every_check_on_a_simulated_gpu(tmp_path: Path) -> None:
    """`tt bench gpu --quick`'s checks, each on the (simulated) device: all pass, none mixes
    devices, and the JSON lines file holds one row per check."""
    import json

    from trajectory_transformer.bench.gpu import run_checks

    with fake_cuda() as gpu:
        rows = run_checks(tmp_path / "work", "cuda", quick=True)
    failed = [r for r in rows if not r["ok"]]
    assert failed == []
    assert gpu.violations == []
    names = [r["check"] for r in rows]
    for expected in ("collect", "train fp32", "train bf16", "resume fp32", "eval beam",
                     "eval greedy", "eval likelihood", "TTPolicy.act/predict", "report",
                     "plan goal mode", "bench train", "tt train (real, bf16)"):  # fmt: skip
        assert expected in names
    assert sum(n.startswith("plan (") for n in names) >= 3
    lines = (tmp_path / "work" / "bench-gpu.jsonl").read_text().splitlines()
    assert [json.loads(line)["check"] for line in lines] == names
