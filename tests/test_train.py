"""Training on a tiny Pendulum dataset: loss goes down, artifacts, exact resume, bad input."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from trajectory_transformer import runs
from trajectory_transformer.config import RunConfig, apply_overrides
from trajectory_transformer.data.tokens import prepare_tokens
from trajectory_transformer.errors import TTError
from trajectory_transformer.runs import load_run
from trajectory_transformer.training import train
from trajectory_transformer.training.loss import target_parts, weighted_loss
from trajectory_transformer.training.setup import auto_epochs
from trajectory_transformer.utils import LOCK_FILE, lock_run_dir

TINY = [
    "model.n_embd=16",
    "model.n_layer=1",
    "model.n_head=2",
    "model.dropout=0.1",
    "data.n_bins=20",
    "data.n_transitions=4",
    "train.batch_size=32",
    "train.lr=3e-3",
    "train.log_every=1",
    "train.progress=false",
]


def _cfg(dataset: str, *overrides: str) -> RunConfig:
    cfg = apply_overrides(RunConfig(), [*TINY, *overrides])
    return replace(cfg, data=replace(cfg.data, dataset=dataset))


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / runs.METRICS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines if "losses/total" in line]


def _losses(run_dir: Path) -> list[float]:
    return [m["losses/total"] for m in _metrics(run_dir)]


def _went_down(losses: list[float]) -> bool:
    k = max(len(losses) // 5, 1)
    return sum(losses[-k:]) / k < 0.9 * sum(losses[:k]) / k


# ------------------------------------------------------------------------------ unit pieces
def test_target_parts_follow_the_next_token() -> None:
    parts = target_parts(11, observation_dim=2, action_dim=1)  # td = 5: o o a r v
    # input position i predicts window token i+1: dims 1 2 3 4 0 1 2 3 4 0 1
    assert parts.tolist() == [0, 1, 2, 3, 0, 0, 1, 2, 3, 0, 0]


def test_weighted_loss_normalises_by_real_tokens() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)
    parts = torch.tensor([0, 1, 2, 3, 0])
    weights = torch.tensor([1.0, 5.0, 2.0, 3.0])
    loss, stats = weighted_loss(logits, targets, mask, parts, weights)
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    expected = (ce * weights[parts] * mask).sum() / 7
    torch.testing.assert_close(loss, expected)
    assert stats[2].tolist() == [3.0, 2.0, 1.0, 1.0]  # real targets per part
    torch.testing.assert_close(stats[0].sum(), (ce * mask).sum())


def test_auto_epochs_follows_original_rule_and_is_capped() -> None:
    assert auto_epochs(1_000_000) == 50
    assert auto_epochs(2_000_000) == 25
    assert auto_epochs(100_000_000) == 1
    assert auto_epochs(100) == 1000


# ------------------------------------------------------------------------------ training runs
def test_tiny_run_learns_and_writes_a_complete_run_folder(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    seen: list[dict[str, Any]] = []
    cfg = _cfg(
        pendulum_dataset,
        "train.max_steps=40",
        "train.save_every=15",
        "train.keep_last=1",
        "train.eval_every=1",
    )
    n_windows = 1200
    steps_per_epoch = -(-n_windows // 32)
    assert steps_per_epoch < 40  # the eval hook fires once

    def eval_fn(run_dir: Path, epoch: int) -> dict[str, Any]:
        assert (run_dir / runs.WEIGHTS_FILE).is_file()
        seen.append({"epoch": epoch})
        return {"score": 1.5, "note": "text is not logged"}

    train(cfg, run, eval_fn=eval_fn)
    losses = _losses(run)
    assert len(losses) == 40 and _went_down(losses), losses
    last = _metrics(run)[-1]
    for part in ("obs", "act", "reward", "value"):
        assert f"losses/{part}" in last and 0.0 <= last[f"accuracy/{part}"] <= 1.0
    for key in ("charts/lr", "charts/grad_norm", "charts/tokens_per_s", "tokens", "epoch"):
        assert key in last
    assert seen == [{"epoch": 1}]
    evals = [
        json.loads(s) for s in (run / runs.METRICS_FILE).read_text().splitlines() if "eval/" in s
    ]
    assert evals == [{"step": steps_per_epoch, "epoch": 1, "eval/score": 1.5}]
    for name in (
        runs.CONFIG_FILE,
        runs.MODEL_CONFIG_FILE,
        runs.DATASET_FILE,
        runs.DISCRETIZER_FILE,
        runs.WEIGHTS_FILE,
    ):
        assert (run / name).is_file(), name
    assert list((run / runs.TB_DIR).glob("events.out.tfevents.*"))
    kept = [s for s, _ in runs.list_checkpoints(run)]
    assert 40 in kept and len(kept) <= 2  # the last, and the best if it is another one
    state = json.loads((run / "checkpoints" / "step_40" / "state.json").read_text())
    assert {"step", "epoch", "batch_in_epoch", "tokens", "schedule", "rng", "optimizer"} <= set(
        state
    )
    loaded = load_run(run)
    final = runs.load_weights(run / "checkpoints" / "step_40" / runs.WEIGHTS_FILE)
    assert all(torch.equal(v, final[k]) for k, v in loaded.model.state_dict().items())


@pytest.mark.parametrize("extra", ["train.precision=bf16", "train.activation_checkpointing=true"])
def test_loss_goes_down_with_bf16_and_activation_checkpointing(
    pendulum_dataset: str, tmp_path: Path, extra: str
) -> None:
    train(_cfg(pendulum_dataset, "train.max_steps=30", extra), tmp_path / "run")
    assert _went_down(_losses(tmp_path / "run"))


def test_bf16_follows_the_fp32_loss_curve(pendulum_dataset: str, tmp_path: Path) -> None:
    """Same seed, same batches: bf16 autocast must learn like fp32, not just "go down".

    Tolerance: the 10-step moving averages of the two curves within 1% of fp32's at every step
    (measured here: 5e-5), and the curves must differ (bf16 really ran in lower precision).
    """
    curves = {}
    for precision in ("fp32", "bf16"):
        args = ("train.max_steps=60", f"train.precision={precision}", "model.dropout=0.0")
        train(_cfg(pendulum_dataset, *args), tmp_path / precision)
        curves[precision] = torch.tensor(_losses(tmp_path / precision), dtype=torch.float64)
    fp32, bf16 = curves["fp32"], curves["bf16"]
    assert len(fp32) == len(bf16) == 60 and not torch.equal(fp32, bf16)
    ma32, ma16 = (torch.nn.functional.avg_pool1d(c[None, None], 10, 1)[0, 0] for c in (fp32, bf16))
    assert torch.all((ma16 - ma32).abs() <= 0.01 * ma32), (ma16 - ma32).abs().max()
    assert _went_down(fp32.tolist()) and _went_down(bf16.tolist())


def test_fp16_on_cpu_is_a_clear_error(pendulum_dataset: str, tmp_path: Path) -> None:
    with pytest.raises(TTError, match="fp16 needs CUDA"):
        train(_cfg(pendulum_dataset, "train.precision=fp16", "train.device=cpu"), tmp_path / "run")


def test_killed_run_resumes_with_an_identical_loss_curve(
    pendulum_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # batch 64: 19 steps per epoch; killed at 13 (checkpoint at 10, mid-epoch), resumed across an epoch
    args = ("train.batch_size=64", "train.max_steps=26", "train.save_every=5")
    train(_cfg(pendulum_dataset, *args), tmp_path / "straight")

    def kill_at_13(step: int, metrics: dict[str, float], model: torch.nn.Module) -> None:
        if step == 13:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(pendulum_dataset, *args), tmp_path / "killed", step_callback=kill_at_13)
    assert [s for s, _ in runs.list_checkpoints(tmp_path / "killed")][-1] == 10
    train(None, tmp_path / "killed", resume=True)

    straight, resumed = _metrics(tmp_path / "straight"), _metrics(tmp_path / "killed")
    assert [m["step"] for m in resumed] == list(range(1, 27))
    for a, b in zip(straight, resumed, strict=True):
        assert {k: v for k, v in a.items() if k != "charts/tokens_per_s"} == {
            k: v for k, v in b.items() if k != "charts/tokens_per_s"
        }
    w1 = runs.load_weights(tmp_path / "straight" / runs.WEIGHTS_FILE)
    w2 = runs.load_weights(tmp_path / "killed" / runs.WEIGHTS_FILE)
    assert all(torch.equal(w1[k], w2[k]) for k in w1)

    # resuming a finished run says so and changes neither the weights nor the curve
    capsys.readouterr()
    train(None, tmp_path / "killed", resume=True)
    assert "already trained to step 26 of 26" in capsys.readouterr().err
    assert _metrics(tmp_path / "killed") == resumed
    w3 = runs.load_weights(tmp_path / "killed" / runs.WEIGHTS_FILE)
    assert all(torch.equal(w2[k], w3[k]) for k in w2)


def test_refuses_a_folder_holding_another_run(pendulum_dataset: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_cfg(pendulum_dataset, "train.max_steps=2"), run)
    with pytest.raises(TTError, match=r"different run.*train\.lr"):
        train(_cfg(pendulum_dataset, "train.max_steps=2", "train.lr=1e-4"), run)
    with pytest.raises(TTError, match="--resume"):
        train(_cfg(pendulum_dataset, "train.max_steps=2"), run)
    # a folder written before keys existed (data.goal_key, ...) is still the same run
    saved = json.loads((run / runs.CONFIG_FILE).read_text())
    for key in ("goal_key", "achieved_key", "goal_relabel"):
        del saved["data"][key]
    (run / runs.CONFIG_FILE).write_text(json.dumps(saved))
    with pytest.raises(TTError, match="--resume"):
        train(_cfg(pendulum_dataset, "train.max_steps=2"), run)
    train(_cfg(pendulum_dataset, "train.max_steps=3", "train.lr=1e-4"), run, overwrite=True)
    assert [m["step"] for m in _metrics(run)] == [1, 2, 3]
    assert json.loads((run / runs.CONFIG_FILE).read_text())["train"]["lr"] == 1e-4


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and runs.TB_DIR not in p.parts and p.name != LOCK_FILE  # who holds it
    }


def test_corrupt_checkpoint_is_a_clear_error_and_damages_nothing(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(_cfg(pendulum_dataset, "train.max_steps=10", "train.save_every=5"), run)
    bad = run / "checkpoints" / "step_10" / runs.WEIGHTS_FILE
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    before = _digest(run)
    with pytest.raises(TTError) as err:
        train(None, run, resume=True, overrides=["train.max_steps=20"])
    assert "step_10/model.safetensors" in str(err.value) and "\n" not in str(err.value)
    assert _digest(run) == before


def test_resume_with_a_mismatched_dataset_says_what_differs(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cfg = _cfg(pendulum_dataset, "train.max_steps=3")
    train(cfg, run)
    data = prepare_tokens(cfg.data, seed=cfg.train.seed)
    # drop one observation dimension: a dataset of another environment
    other = replace(
        data,
        tokens=data.tokens[:, 1:].copy(),
        observation_dim=data.observation_dim - 1,
        info=replace(
            data.info, observation_dim=data.observation_dim - 1, observation_space="Box(2,)"
        ),
    )
    with pytest.raises(TTError, match="observation_dim 3 vs 2") as err:
        train(None, run, resume=True, overrides=["train.max_steps=6"], dataset=other)
    assert "observation_space" in str(err.value)
    with pytest.raises(TTError, match="cannot change when resuming"):
        train(None, run, resume=True, overrides=["model.n_layer=3"])


# ------------------------------------------------------------------------------ failing loud
def test_divergence_stops_at_the_first_non_finite_step_and_saves_no_bad_weights(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    cfg = _cfg(pendulum_dataset, "train.lr=1e30", "train.max_steps=50", "train.save_every=1",
               "train.warmup_fraction=0", "train.weight_decay=0")  # fmt: skip
    with pytest.raises(TTError, match=r"diverged: .* non-finite at step (\d+)") as err:
        train(cfg, run)
    step = int(re.search(r"at step (\d+)", str(err.value)).group(1))  # type: ignore[union-attr]
    assert 1 < step < 50 and "\n" not in str(err.value)
    saved = runs.list_checkpoints(run)
    assert saved and max(s for s, _ in saved) < step  # nothing at or after the bad step
    for _, path in saved:
        weights = runs.load_weights(path / runs.WEIGHTS_FILE)
        assert all(t.isfinite().all() for t in weights.values())
    assert all(t.isfinite().all() for t in runs.load_weights(run / runs.WEIGHTS_FILE).values())
    for line in (run / runs.METRICS_FILE).read_text().splitlines():
        assert "NaN" not in line and "Infinity" not in line


def test_window_longer_than_every_episode_is_refused(pendulum_dataset: str, tmp_path: Path) -> None:
    with pytest.raises(TTError, match=r"data.n_transitions=500 is longer than every episode"):
        train(_cfg(pendulum_dataset, "data.n_transitions=500"), tmp_path / "run")
    assert not (tmp_path / "run" / runs.WEIGHTS_FILE).exists()


def test_a_second_writer_is_refused_and_a_killed_holder_leaves_no_stale_lock(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    run = tmp_path / "run"
    cfg = _cfg(pendulum_dataset, "train.max_steps=2")
    with lock_run_dir(run, "tt train"):  # as if another `tt train` were writing the folder
        with pytest.raises(TTError, match=rf"in use by pid {os.getpid()} on .*\(tt train, since"):
            train(cfg, run)
        with pytest.raises(TTError, match="in use by"):
            train(cfg, run, overwrite=True)  # --overwrite must not delete a live run's files
    assert not (run / runs.WEIGHTS_FILE).exists()
    code = (
        "import os, sys\n"
        "from trajectory_transformer.utils import lock_run_dir\n"
        "with lock_run_dir(sys.argv[1], 'tt train'):\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(run)], check=False)
    assert killed.returncode == -9
    train(cfg, run)  # the kernel released the dead holder's lock
    assert (run / runs.WEIGHTS_FILE).is_file()


@pytest.mark.parametrize(
    ("name", "want", "not_want"),
    [
        ("default", "the defaults are the paper's GPU settings: use a CPU preset", "quiet cores"),
        ("hopper-medium-cpu", "hopper-medium-cpu is sized for about an hour", "GPU settings"),
    ],
)
def test_the_slow_run_warning_fits_the_preset(name: str, want: str, not_want: str) -> None:
    """A CPU preset running slow is told the machine is busy, not to use a CPU preset."""
    from trajectory_transformer.training.guards import slow_run_warning

    err = slow_run_warning(name, per_step=3.0, steps_left=4490) or ""
    assert "needs about 3.7 h more" in err and "train.max_steps=1200" in err
    assert want in err and not_want not in err
