"""d3rlpy baselines in `tt bench quality`: the data adapter, budgets, published numbers, the worker
protocol, the missing-venv path, and (where `.venv-baselines` exists) one real baseline cell."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from gymnasium import spaces

from test_quality import TINY_PRESET, _fake_cell
from trajectory_transformer.cli import main as cli_main
from trajectory_transformer.data.episodes import (
    dataset_returns,
    episodes_to_transitions,
    load_transitions,
)
from trajectory_transformer.data.mdp import episode_bounds, load_mdp_arrays, mdp_arrays
from trajectory_transformer.data.spaces import flatten
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.lab import baselines, quality, tables
from trajectory_transformer.lab import cells as qcells
from trajectory_transformer.lab import ledger as ledgers
from trajectory_transformer.lab import suite as suites
from trajectory_transformer.lab.baselines import (
    BASELINES,
    BaselinesUnavailable,
    baselines_python,
    budget_for,
)
from trajectory_transformer.lab.ledger import Layout
from trajectory_transformer.lab.published import d4rl_task, published_score
from trajectory_transformer.lab.quality import run_suite
from trajectory_transformer.lab.suite import load_suite

OBS = spaces.Dict(
    {"pos": spaces.Box(-np.inf, np.inf, (2,), np.float32), "mode": spaces.Discrete(3)}
)
ACT = spaces.Box(-1, 1, (2,), np.float32)


@dataclass
class Ep:
    id: int
    observations: Any
    actions: Any
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, Any] = field(default_factory=dict)


def _episode(i: int, t: int, end: str) -> Ep:
    """An episode of t steps ending by 'terminal' (at step t-3: the rest is ignored), 'timeout'
    (truncated at its last step) or 'cut' (neither flag: a fixed-size dataset's last episode)."""
    rng = np.random.default_rng(i)
    terms, truncs = np.zeros(t, bool), np.zeros(t, bool)
    if end == "terminal":
        terms[t - 3 :] = True
    elif end == "timeout":
        truncs[-1] = True
    obs = {"pos": rng.normal(size=(t + 1, 2)).astype(np.float32),
           "mode": rng.integers(0, 3, size=t + 1)}  # fmt: skip
    acts = rng.uniform(-1, 1, (t, 2)).astype(np.float32)
    return Ep(i, obs, acts, rng.normal(size=t), terms, truncs)


def _d3rlpy_cuts(terminals: np.ndarray, timeouts: np.ndarray) -> list[tuple[int, int, bool]]:
    """(start, end, terminated) of each episode, cut as d3rlpy's EpisodeGenerator does (a loop
    over rows that closes an episode at every terminal or timeout flag)."""
    out, start = [], 0
    for i in range(terminals.shape[0]):
        if terminals[i] or timeouts[i]:
            out.append((start, i + 1, bool(terminals[i])))
            start = i + 1
    return out


# ------------------------------------------------------------------------------ the adapter
def test_the_adapter_round_trips_episodes_terminations_and_truncations_exactly() -> None:
    kinds = ["terminal", "timeout", "cut", "timeout", "terminal", "cut"]
    episodes = [_episode(i, 9 + 2 * i, kind) for i, kind in enumerate(kinds)]
    transitions, dropped = episodes_to_transitions(
        episodes, OBS, ACT, termination_penalty=0.0, where="test"
    )
    arrays = mdp_arrays(transitions)

    assert dropped == 0 and arrays.n_transitions == transitions.n_transitions
    # the episodes d3rlpy will cut are ours, one for one, with the right end flag
    cuts = _d3rlpy_cuts(arrays.terminals, arrays.timeouts)
    starts = transitions.episode_starts
    assert [(a, b) for a, b, _ in cuts] == list(zip(starts[:-1].tolist(), starts[1:].tolist()))
    assert [term for _, _, term in cuts] == [k == "terminal" for k in kinds]
    assert np.array_equal(episode_bounds(arrays.terminals, arrays.timeouts), starts)
    assert not np.any((arrays.terminals > 0) & (arrays.timeouts > 0))
    assert arrays.terminals.sum() == 2 and arrays.timeouts.sum() == 4
    # every row is the episode's own step, flattened as TT sees it; rewards are the env's
    for (a, b, _), ep in zip(cuts, episodes):
        n = b - a
        assert n == (ep.rewards.shape[0] - 2 if ep.terminations.any() else ep.rewards.shape[0])
        native = {k: v[:n] for k, v in ep.observations.items()}
        assert np.array_equal(arrays.observations[a:b], flatten(OBS, native))
        assert np.array_equal(arrays.actions[a:b], ep.actions[:n])
        assert np.array_equal(arrays.rewards[a:b], ep.rewards[:n].astype(np.float32))
        assert arrays.terminals[a : b - 1].sum() == 0 and arrays.timeouts[a : b - 1].sum() == 0
    assert arrays.observations.dtype == arrays.actions.dtype == np.float32
    returns = [float(ep.rewards[: b - a].astype(np.float32).sum()) for (a, b, _), ep in
               zip(cuts, episodes)]  # fmt: skip
    assert arrays.episode_returns() == pytest.approx(returns, rel=1e-6)


def test_loading_gives_the_rows_tt_trains_from_with_the_env_rewards(
    pendulum_dataset: str,
) -> None:
    arrays, info = load_mdp_arrays(pendulum_dataset)
    plain, _ = load_transitions(pendulum_dataset, termination_penalty=0.0)
    # the same rows TT trains from (TT adds its penalty; the baselines get the env's rewards)
    assert np.array_equal(arrays.observations, plain.observations)
    assert np.array_equal(arrays.actions, plain.actions)
    assert np.array_equal(arrays.rewards, plain.rewards)
    assert np.array_equal(episode_bounds(arrays.terminals, arrays.timeouts), plain.episode_starts)
    assert info.n_episodes == 6 and arrays.timeouts.sum() == 6 and arrays.terminals.sum() == 0
    assert arrays.episode_returns() == pytest.approx(dataset_returns(pendulum_dataset), rel=1e-5)
    # a subset is the one TT's training draws (data.max_episodes, seeded by train.seed)
    sub, _ = load_mdp_arrays(pendulum_dataset, max_episodes=3, seed=7)
    tt_sub, _ = load_transitions(pendulum_dataset, max_episodes=3, seed=7)
    assert np.array_equal(sub.observations, tt_sub.observations)

    broken = plain
    broken.terminals[0] = True  # a termination flag inside an episode
    with pytest.raises(TTError, match="inside an episode"):
        mdp_arrays(broken)


# ------------------------------------------------------------------------------ budgets, numbers
def test_budgets_scale_only_steps_and_warmup_and_name_their_source() -> None:
    assert list(BASELINES) == ["bc", "td3bc", "cql", "iql", "dt"]
    for name, base in BASELINES.items():
        published, quick, smoke = (budget_for(name, lv) for lv in ("published", "quick", "smoke"))
        assert quick.steps == round(published.steps * base.quick_scale) < published.steps
        assert quick.warmup_steps == round(published.warmup_steps * base.quick_scale)
        assert smoke.steps == baselines.SMOKE_STEPS
        for budget in (quick, smoke):  # batch and network are the published ones at every level
            assert (budget.batch_size, budget.hidden, budget.context, budget.layers) == (
                published.batch_size, published.hidden, published.context, published.layers
            )  # fmt: skip
        assert "reproductions/offline/" in base.source or "CORL" in base.source
    assert budget_for("td3bc", "published").steps == 500_000
    assert (budget_for("dt", "quick").steps, budget_for("dt", "quick").warmup_steps) == (5_000, 500)
    assert budget_for("cql", "quick").steps == 20_000 and budget_for("bc", "quick").steps == 100_000
    with pytest.raises(TTError, match="unknown"):
        budget_for("bc", "huge")
    with pytest.raises(TTError, match="not a baseline"):
        budget_for("tt-beam", "quick")


def test_published_numbers_show_only_for_matching_d4rl_tasks() -> None:
    assert d4rl_task("Hopper-v5", "tt/hopper/medium-quick-v0") == "hopper-medium"
    assert d4rl_task("Hopper-v5", "tt/hopper/medium-replay-quick-v0") == "hopper-medium-replay"
    assert d4rl_task("Walker2d-v5", "mujoco/walker2d/medium-expert-v0") == "walker2d-medium-expert"
    assert d4rl_task("Hopper-v5", "tt/hopper/expert-quick-v0") is None  # no such column
    assert d4rl_task("Pendulum-v1", "tt/pendulum/medium-v0") is None  # not a D4RL env
    assert published_score("tt-beam", "Hopper-v5", "tt/hopper/medium-quick-v0") == 61.1
    assert published_score("tt-beam", "Hopper-v5", "tt/hopper/medium-replay-quick-v0") == 91.5
    assert published_score("iql", "Hopper-v5", "tt/hopper/medium-replay-quick-v0") == 94.7
    assert published_score("tt-greedy", "Hopper-v5", "tt/hopper/medium-quick-v0") is None
    assert published_score("bc", "Pendulum-v1", "tt/pendulum/expert-v0") is None


def test_the_table_puts_baselines_beside_tt_with_train_time_and_published_numbers(
    tmp_path: Path,
) -> None:
    dataset = "tt/hopper/medium-quick-v0"
    cells = [_fake_cell(dataset, "tt-beam", s, [50.0 + s]) for s in (0, 1)]
    for seed in (0, 1):
        cell = _fake_cell(dataset, "td3bc", seed, [40.0, 42.0])
        cell.update(agent="d3rlpy", env_id="Hopper-v5")
        cell["train"] = {"wall_s": 600.0, "steps": 50_000, "batch_size": 256,
                         "budget_level": "quick", "source": "d3rlpy reproductions/offline/x.py",
                         "budget": {"hidden": [256, 256], "layers": 0}}  # fmt: skip
        cells.append(cell)
    for cell in cells:
        cell["env_id"] = "Hopper-v5"
        path = tmp_path / f"{cell['method']}-{cell['seed']}.json"
        path.write_text(json.dumps(cell))
    rows = tables.write_report("test", tmp_path)
    assert [r["method"] for r in rows] == ["tt-beam", "td3bc"]  # TT first, then baselines
    assert rows[0]["published_d4rl"] == 61.1 and rows[1]["published_d4rl"] == 59.3
    assert rows[1]["train_wall_s"] == pytest.approx(600.0)
    table = (tmp_path / "results.md").read_text()
    assert "| published D4RL (orientation only, different data) |" in table
    td3 = next(line for line in table.splitlines() if "| td3bc |" in line)
    cols = [c.strip() for c in td3.split("|")]
    assert cols[4] == "**41.0**" and cols[11] == "10.0 min" and cols[14] == "59.3"
    assert "- td3bc (d3rlpy, budget 'quick'): 50000 gradient steps x batch 256" in table


# ------------------------------------------------------------------------------ suites
def _suite(tmp_path: Path, dataset: str, methods: list[str], **raw: Any) -> Path:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_PRESET))
    suite = {"datasets": [{"dataset": dataset, "preset": "tiny.yaml"}], "methods": methods,
             "seeds": [0], "episodes": 2, "eval_seed": 1000, "baseline_budget": "smoke", **raw}  # fmt: skip
    path = tmp_path / "baseline-suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_suites_list_baselines_and_a_budget_level(tmp_path: Path) -> None:
    suite = load_suite(str(_suite(tmp_path, "d", ["tt-greedy", "bc", "dt"])))
    assert suite.methods == ("tt-greedy", "bc", "dt") and suite.baseline_budget == "smoke"
    with pytest.raises(ConfigError, match="baseline_budget"):
        load_suite(str(_suite(tmp_path, "d", ["bc"], baseline_budget="tiny")))
    with pytest.raises(ConfigError, match="listed twice"):
        load_suite(str(_suite(tmp_path, "d", ["bc", "bc"])))
    hopper = load_suite("hopper-cpu")  # the suite: TT and all five baselines, quick budget
    assert set(hopper.methods) == set(suites.ALL_METHODS) and hopper.baseline_budget == "quick"


# ------------------------------------------------------------------------------ the venv
def _executable(path: Path, script: str) -> Path:
    """A stand-in for the venv's python: a shell script."""
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_missing_venv_is_one_line_and_tt_cells_still_run(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    missing = tmp_path / "nowhere" / "bin" / "python"
    monkeypatch.setenv(baselines.PYTHON_ENV, str(missing))
    with pytest.raises(BaselinesUnavailable) as err:
        baselines_python()
    message = str(err.value)
    assert "\n" not in message and str(missing) in message and "make baselines" in message

    suite = _suite(tmp_path, pendulum_dataset, ["tt-greedy", "bc"])
    dirs = [f"work_dir={tmp_path / 'w'}", f"results_dir={tmp_path / 'r'}"]
    assert cli_main(["bench", "quality", f"suite={suite}", "dry_run=true", *dirs]) == 0
    assert "baselines: budget 'smoke', NOT AVAILABLE" in capsys.readouterr().out
    assert cli_main(["bench", "quality", f"suite={suite}", *dirs]) == 1  # not all done
    out, errors = capsys.readouterr()
    assert "| tt-greedy | 1 |" in out and "| bc |" not in out  # the TT cell ran
    assert f"not done: 1 baseline cell(s) left to do: {message}" in errors.splitlines()
    assert [p.name for p in (tmp_path / "r").rglob("*-seed0.json")] == ["tt-greedy-seed0.json"]
    layout = Layout(tmp_path / "w", tmp_path / "r")
    assert ledgers.cell_status(layout, pendulum_dataset, "bc", 0) == "todo"
    # an interrupted worker left a checkpoint: the cell resumes there (see the venv tests below)
    (layout.baseline_dir(pendulum_dataset, "bc", 0) / "checkpoints" / "step_4000").mkdir(
        parents=True
    )
    assert ledgers.cell_status(layout, pendulum_dataset, "bc", 0) == "partial: resumes at step 4000"


def test_a_failing_worker_fails_its_cell_only_with_its_last_log_line(
    pendulum_dataset: str, tmp_path: Path
) -> None:
    fake = _executable(
        tmp_path / "python", "echo 'starting'\necho 'error: d3rlpy exploded' >&2\nexit 3"
    )
    suite = load_suite(str(_suite(tmp_path, pendulum_dataset, ["bc", "dt"])))
    layout = Layout(tmp_path / "w", tmp_path / "r")
    printed: list[str] = []
    failed: list[str] = []
    written = run_suite(suite, layout, echo=printed.append, baselines_python_path=str(fake),
                        failed=failed)  # fmt: skip
    assert written == [] and len(failed) == 2 and printed == failed
    log = layout.baseline_dir(pendulum_dataset, "bc", 0) / "worker.log"
    assert failed[0] == (
        f"{pendulum_dataset} bc seed 0: failed, left to do (bc worker failed (exit 3): "
        f"error: d3rlpy exploded; full log: {log})"
    )
    request = json.loads((log.parent / "request.json").read_text())
    assert request["schema"] == baselines.REQUEST_SCHEMA and request["budget_level"] == "smoke"
    # the worker's PYTHONPATH holds only our package, the one this process runs
    link = log.parent / "src" / "trajectory_transformer"
    assert [p.name for p in link.parent.iterdir()] == ["trajectory_transformer"]
    assert link.resolve() == Path(quality.__file__).resolve().parents[1]


def test_the_worker_is_asked_for_the_tt_cells_episodes_and_its_result_becomes_a_cell(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without d3rlpy: a stand-in worker scores a random agent with the real evaluate_agent."""
    from trajectory_transformer.config import EvalConfig, config_from_dict
    from trajectory_transformer.envs.agents import RandomAgent
    from trajectory_transformer.envs.factory import env_factory
    from trajectory_transformer.evaluation.evaluate import evaluate_agent

    requests: list[dict[str, Any]] = []

    def fake_worker(python: Path, request: dict[str, Any], folder: Path) -> dict[str, Any]:
        requests.append(request)
        _, info = load_mdp_arrays(request["dataset"])
        eval_cfg = config_from_dict(request["eval"], EvalConfig, "eval.")
        make_env = env_factory(info, eval_cfg.max_episode_steps)
        agent = RandomAgent(make_env().action_space, seed=request["seed"])
        summary = evaluate_agent(make_env, agent, eval_cfg, info, desc=request["method"])
        train = {"steps": 20, "wall_s": 1.5, "batch_size": 256, "budget_level": "smoke",
                 "budget": request["budget"], "source": "test"}  # fmt: skip
        return {"schema": baselines.RESULT_SCHEMA, "summary": summary, "train": train,
                "data": {"episodes": 6}, "versions": {"d3rlpy": "fake"},
                "machine": {"platform": "test", "cores": 2, "torch": "x", "eval_device": "cpu"}}  # fmt: skip

    monkeypatch.setattr(qcells, "run_worker", fake_worker)
    python = _executable(tmp_path / "python", "exit 0")  # never run: run_worker is faked
    suite = load_suite(str(_suite(tmp_path, pendulum_dataset, ["tt-greedy", "iql"], seeds=[0, 1])))
    layout = Layout(tmp_path / "w", tmp_path / "r")
    written = run_suite(suite, layout, echo=lambda _: None, baselines_python_path=str(python))
    cells = {(c["method"], c["seed"]): c for c in (json.loads(p.read_text()) for p in written)}
    assert len(cells) == 4 and len(requests) == 2
    for seed in (0, 1):
        tt, bl = cells[("tt-greedy", seed)], cells[("iql", seed)]
        # the same episodes (seeds), count, episode cut and score formula as the TT cell
        assert bl["eval_seed"] == tt["eval_seed"] == 1000 + 2 * seed
        assert bl["episodes"] == tt["episodes"] == 2 and bl["lengths"] == tt["lengths"] == [30, 30]
        assert bl["score_dataset"]["formula"] == tt["score_dataset"]["formula"]
        assert bl["data"] == tt["data"] and bl["agent"] == "d3rlpy" and bl["train"]["steps"] == 20
        assert set(tt) - set(bl) == set() and bl["config"]["baseline"]["budget_level"] == "smoke"
        assert requests[seed]["eval"]["seed"] == tt["config"]["eval"]["seed"]
        assert requests[seed]["seed"] == seed and requests[seed]["method"] == "iql"
    table = layout.table.read_text()
    assert f"| {pendulum_dataset} | iql | 2 |" in table and "1.5 s" in table


# ------------------------------------------------------------------------------ the real thing
def _venv_python() -> Path:
    try:
        return baselines_python()
    except BaselinesUnavailable:
        pytest.skip("no .venv-baselines (the d3rlpy venv): run `make baselines` to run this test")


def test_every_baseline_resumes_bit_for_bit_from_its_checkpoint_in_the_venv(
    tmp_path: Path,
) -> None:
    """The worker's --check stops each method half way, resumes it from the checkpoint in a new
    process state and compares every weight and optimizer tensor with an unbroken run."""
    import os
    import subprocess

    python = _venv_python()
    env = {**os.environ, "PYTHONPATH": str(baselines.package_root()), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(python), "-m", baselines.WORKER_MODULE, "--check"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for method in baselines.BASELINES:
        assert (
            f"check: {method} fit 4 steps, acted 10 env steps in Pendulum-v1 and resumed 30 "
            "steps from step 15 bit for bit" in done.stdout
        )
    assert not (tmp_path / "d3rlpy_logs").exists()


@pytest.mark.slow
def test_a_real_bc_cell_trains_in_the_venv_and_is_scored_by_our_loop(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = _venv_python()
    monkeypatch.chdir(tmp_path)  # d3rlpy must write nothing (no d3rlpy_logs/ here afterwards)
    suite = load_suite(str(_suite(tmp_path, pendulum_dataset, ["tt-greedy", "bc"])))
    layout = Layout(tmp_path / "w", tmp_path / "r")
    failed: list[str] = []
    written = run_suite(suite, layout, echo=lambda _: None, baselines_python_path=str(python),
                        failed=failed)  # fmt: skip
    assert failed == [] and len(written) == 2
    tt, bc = (json.loads(layout.cell_json(pendulum_dataset, m, 0).read_text())
              for m in ("tt-greedy", "bc"))  # fmt: skip
    assert bc["agent"] == "d3rlpy" and bc["versions"]["d3rlpy"].startswith("2.8")
    assert bc["train"]["steps"] == baselines.SMOKE_STEPS and bc["train"]["wall_s"] > 0
    assert bc["eval_seed"] == tt["eval_seed"] and bc["lengths"] == tt["lengths"] == [30, 30]
    assert len(bc["score_dataset"]["per_episode"]) == 2
    assert bc["data_used"] == {"transitions": 1200, "episodes": 6, "terminated_episodes": 0,
                               "timeout_episodes": 6, "dropped_episodes": 0,
                               "rewards": "the env's (no termination penalty)"}  # fmt: skip
    assert not (tmp_path / "d3rlpy_logs").exists()
    folder = layout.baseline_dir(pendulum_dataset, "bc", 0)
    log = (folder / "worker.log").read_text()
    assert "scored: return" in log
    assert f"| {pendulum_dataset} | bc | 1 |" in layout.table.read_text()
    # the last checkpoint stays: a cell interrupted while scoring resumes there and only scores
    assert [p.name for p in (folder / "checkpoints").iterdir()] == [f"step_{baselines.SMOKE_STEPS}"]
    layout.cell_json(pendulum_dataset, "bc", 0).unlink()
    assert ledgers.cell_status(layout, pendulum_dataset, "bc", 0) == (
        f"partial: resumes at step {baselines.SMOKE_STEPS}"
    )
    written = run_suite(suite, layout, echo=lambda _: None, baselines_python_path=str(python))
    again = json.loads(layout.cell_json(pendulum_dataset, "bc", 0).read_text())
    assert [p.name for p in written] == ["bc-seed0.json"]
    assert again["train"]["resumed_from_step"] == baselines.SMOKE_STEPS
    assert again["returns"] == bc["returns"]  # the same policy, the same episodes
    assert "resuming from" in (folder / "worker.log").read_text()
