"""`tt bench quality` and the presets: a tiny suite end to end, skip and resume, the CI math."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import minari
import numpy as np
import pytest
import torch
import yaml

from trajectory_transformer import runs
from trajectory_transformer.cli import build_parser
from trajectory_transformer.cli import main as cli_main
from trajectory_transformer.config import (
    PRESET_DIR,
    apply_overrides,
    config_to_dict,
    list_presets,
    load_config,
)
from trajectory_transformer.errors import ConfigError, TTError
from trajectory_transformer.lab import cells as qcells
from trajectory_transformer.lab import ledger as ledgers
from trajectory_transformer.lab import quality, tables
from trajectory_transformer.lab import suite as suites
from trajectory_transformer.lab.ledger import Layout
from trajectory_transformer.lab.quality import run_suite
from trajectory_transformer.lab.suite import load_suite
from trajectory_transformer.sources.recipe_catalog import recipe_dataset_id

TINY_PRESET = {
    "data": {"n_bins": 20, "n_transitions": 4},
    "model": {"n_embd": 16, "n_layer": 1, "n_head": 2},
    "train": {"batch_size": 32, "lr": 3e-3, "max_steps": 6, "save_every": 3, "progress": False},
    "plan": {"beam_width": 4, "horizon": 2, "context": 3},
    "eval": {"n_envs": 2, "max_episode_steps": 30, "progress": False},
}


def _suite_file(
    tmp_path: Path, dataset: str, methods: list[str], seeds: list[int], **train: Any
) -> Path:
    preset = json.loads(json.dumps(TINY_PRESET))
    preset["train"].update(train)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(preset))
    suite = {
        "description": "tiny Pendulum suite for tests",
        "datasets": [{"dataset": dataset, "preset": "tiny.yaml"}],
        "methods": methods,
        "seeds": seeds,
        "episodes": 2,
        "eval_seed": 1000,
    }
    path = tmp_path / "tiny-suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return runs.load_weights(run_dir / runs.WEIGHTS_FILE)


# ------------------------------------------------------------------------------ end to end
def test_tiny_suite_end_to_end_then_a_rerun_skips_every_cell(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(str(_suite_file(tmp_path, pendulum_dataset, list(suites.METHODS), [0, 1])))
    layout = Layout(tmp_path / "work", tmp_path / "results")
    printed: list[str] = []
    written = run_suite(suite, layout, echo=printed.append)
    data = minari.load_dataset(pendulum_dataset)
    data_returns = np.array([ep.rewards.sum() for ep in data.iterate_episodes()])
    ref = (data.storage.metadata["ref_min_score"], data.storage.metadata["ref_max_score"])

    assert len(written) == 6 and len(printed) == 6
    cells = {(c["method"], c["seed"]): c for c in map(lambda p: json.loads(p.read_text()), written)}
    assert set(cells) == {(m, s) for m in suites.METHODS for s in (0, 1)}
    for (method, seed), cell in cells.items():
        assert cell["schema"] == suites.SCHEMA and cell["checkpoint"] == "last"
        assert cell["dataset"] == pendulum_dataset and cell["episodes"] == 2
        assert cell["eval_seed"] == 1000 + 2 * seed  # seeds never share episodes
        assert cell["score_d4rl"] is None  # Pendulum has no D4RL reference
        score = cell["score_dataset"]
        assert len(score["per_episode"]) == 2 and score["ci95"][0] <= score["mean"]
        assert cell["eval"]["s_per_episode"] > 0 and cell["eval"]["ms_per_env_step"] > 0
        assert cell["machine"]["cores"] >= 1 and cell["machine"]["torch"] == torch.__version__
        assert "commit" in cell["git"] and cell["date"]
        assert cell["config"]["data"]["dataset"] == pendulum_dataset
        assert cell["config"]["train"]["seed"] == seed == cell["config"]["plan"]["seed"]
        # the data's own score, from its episodes, on the same scale
        assert cell["data"]["episodes"] == len(data_returns) == 6
        assert cell["data"]["return_mean"] == pytest.approx(data_returns.mean())
        assert cell["data"]["score_dataset"] == pytest.approx(
            100 * (data_returns.mean() - ref[0]) / (ref[1] - ref[0])
        )
        if method == "behaviour":
            assert cell["train"] is None and cell["agent"] == "behaviour"
        else:
            assert cell["train"]["steps"] == 6 and not cell["train"]["resumed"]
            assert cell["train"]["wall_s"] > 0 and cell["train"]["window_tokens"] == 6 * 32 * 23
            assert cell["plan_mode"] == method.removeprefix("tt-")
            assert cell["config"]["plan"]["mode"] == cell["plan_mode"]
            _check_commands_reproduce(cell)
        # beam's plans are audited against the returns that followed; greedy makes no prediction
        audited = method == "tt-beam"
        assert (cell["plan_audit"] is not None) == audited, method
        if audited:
            assert cell["plan_audit"]["plans"] == sum(cell["lengths"])
    # the TT methods of one seed share one training run; the seeds differ
    assert cells[("tt-beam", 0)]["run_dir"] == cells[("tt-greedy", 0)]["run_dir"]
    w0, w1 = (_weights(layout.run_dir(pendulum_dataset, s)) for s in (0, 1))
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)

    table = layout.table.read_text()
    for method in suites.METHODS:
        assert f"| {pendulum_dataset} | {method} | 2 |" in table
    assert "last checkpoint" in table and "| dataset |" in table
    data_score = f"{cells[('tt-beam', 0)]['data']['score_dataset']:.1f}"
    assert f"| {pendulum_dataset} | tt-beam | 2 |" in table
    beam_row = next(line for line in table.splitlines() if "| tt-beam |" in line)
    assert beam_row.split("|")[8].strip() == data_score  # the data column
    assert layout.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a rerun: every cell is done, so nothing trains or evaluates
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished cell ran again")

    monkeypatch.setattr(qcells, "train", fail)
    monkeypatch.setattr(qcells, "evaluate_run", fail)
    assert run_suite(suite, layout, echo=printed.append) == []
    statuses = {ledgers.cell_status(layout, pendulum_dataset, m, s) for m, s in cells}
    assert statuses == {"done"}


def test_behaviour_on_data_without_one_policy_is_not_applicable_and_not_retried(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trajectory_transformer.config import CollectConfig
    from trajectory_transformer.sources.collect import collect_dataset
    from trajectory_transformer.store import minari_root

    # a dataset made elsewhere (or a mixture such as medium-replay): no collection record
    mixed = collect_dataset(
        CollectConfig(env="Pendulum-v1", policy="expert", episodes=4, ref_episodes=2,
                      dataset_id="tt/pendulum/mixture-v0"),
        progress=False,
    )  # fmt: skip
    meta_path = minari_root() / mixed / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["tt_collect"]
    meta_path.write_text(json.dumps(meta))

    # behaviour alone: decided from the dataset, so no TT run is trained for a cell never scored
    alone = load_suite(str(_suite_file(tmp_path, mixed, ["behaviour"], [0])))
    alone_layout = Layout(tmp_path / "alone", tmp_path / "alone-results")
    with monkeypatch.context() as m:
        m.setattr(quality, "ensure_trained", lambda *a, **k: pytest.fail("trained for nothing"))
        assert run_suite(alone, alone_layout, echo=lambda _: None) == []
    assert ledgers.cell_status(alone_layout, mixed, "behaviour", 0) == "done"
    assert not alone_layout.run_dir(mixed, 0).exists()
    assert "no single behaviour policy" in alone_layout.table.read_text()  # and no plot to draw
    assert not (alone_layout.results_dir / ledgers.PLOT_FILE).exists()

    suite = load_suite(str(_suite_file(tmp_path, mixed, ["tt-greedy", "behaviour"], [0])))
    layout = Layout(tmp_path / "work", tmp_path / "results")
    printed: list[str] = []
    written = run_suite(suite, layout, echo=printed.append)
    assert [p.name for p in written] == ["tt-greedy-seed0.json"]
    na = json.loads(layout.cell_json(mixed, "behaviour", 0).read_text())
    assert "no single behaviour policy" in na["not_applicable"] and "score_d4rl" not in na
    assert any("behaviour seed 0: not applicable" in line for line in printed)
    table = layout.table.read_text()
    assert f"- behaviour on {mixed}: the dataset records no single behaviour policy" in table
    assert f"| {mixed} | behaviour |" not in table and f"| {mixed} | tt-greedy | 1 |" in table

    monkeypatch.setattr(qcells, "evaluate_run", lambda *a, **k: pytest.fail("ran again"))
    assert run_suite(suite, layout, echo=printed.append) == []
    assert ledgers.cell_status(layout, mixed, "behaviour", 0) == "done"


def _check_commands_reproduce(cell: dict[str, Any]) -> None:
    """The cell's `tt train` / `tt eval` commands resolve to exactly the config it records."""
    parser = build_parser()
    train_args = parser.parse_args(shlex.split(cell["commands"]["train"])[1:])
    trained = load_config(train_args.preset, train_args.overrides)
    saved = runs.read_run_config(Path(cell["run_dir"]))
    assert config_to_dict(trained) == config_to_dict(saved)
    eval_args = parser.parse_args(shlex.split(cell["commands"]["eval"])[1:])
    assert eval_args.run_dir == cell["run_dir"]
    evaluated = apply_overrides(saved, eval_args.overrides)
    assert config_to_dict(evaluated) == cell["config"]
    assert cell["command"] == f"{cell['commands']['train']} && {cell['commands']['eval']}"


def test_interrupted_training_resumes_to_the_same_weights(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 steps, checkpoints at 3 and 6 (and 8); killed at step 5: resumes from step 3
    suite_path = _suite_file(tmp_path, pendulum_dataset, ["tt-greedy"], [0], max_steps=8)
    suite = load_suite(str(suite_path))
    straight = Layout(tmp_path / "straight", tmp_path / "straight-results")
    run_suite(suite, straight, echo=lambda _: None)

    killed = Layout(tmp_path / "killed", tmp_path / "killed-results")

    def kill_at_5(step: int, metrics: dict[str, float], model: torch.nn.Module) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, killed, step_callback=kill_at_5, echo=lambda _: None)
    assert not killed.cell_json(pendulum_dataset, "tt-greedy", 0).exists()
    status = ledgers.cell_status(killed, pendulum_dataset, "tt-greedy", 0)
    assert status == "partial: resumes at step 3"
    ledger = json.loads(killed.ledger(pendulum_dataset, 0).read_text())
    assert ledger["complete"] is False and ledger["sessions"][0]["to_step"] == 3
    run = killed.run_dir(pendulum_dataset, 0)
    before = json.loads((run / "checkpoints" / "step_3" / "state.json").read_text())["train_s"]
    assert before > 0
    # a SIGKILLed session leaves no ledger entry: its time must still count (from the checkpoint)
    killed.ledger(pendulum_dataset, 0).unlink()

    calls: list[bool] = []
    real_train = qcells.train

    def spy(*args: Any, **kwargs: Any) -> Path:
        calls.append(bool(kwargs.get("resume")))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(qcells, "train", spy)
    [path] = run_suite(suite, killed, echo=lambda _: None)
    assert calls == [True]
    cell = json.loads(path.read_text())
    assert cell["train"]["resumed"] and cell["train"]["sessions"] == 1
    assert cell["train"]["steps"] == 8
    final = json.loads((run / "checkpoints" / "step_8" / "state.json").read_text())["train_s"]
    assert cell["train"]["wall_s"] == final > before  # steps 0-3 of the lost session included
    assert "killed ones included" in cell["train"]["wall_note"]
    a = _weights(straight.run_dir(pendulum_dataset, 0))
    b = _weights(killed.run_dir(pendulum_dataset, 0))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_changed_suite_does_not_resume_a_stale_run(pendulum_dataset: str, tmp_path: Path) -> None:
    suite = load_suite(str(_suite_file(tmp_path, pendulum_dataset, ["tt-greedy"], [0])))
    layout = Layout(tmp_path / "work", tmp_path / "results")

    def kill_at_4(step: int, metrics: dict[str, float], model: torch.nn.Module) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, layout, step_callback=kill_at_4, echo=lambda _: None)
    with pytest.raises(TTError, match=r"other settings \(train\.lr"):
        run_suite(suite, layout, extra=["train.lr=1e-3"], echo=lambda _: None)


def test_a_corrupt_cell_json_stops_the_suite_before_any_work(
    pendulum_dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Skipped as done but unreadable by the report, it would end a run after hours of training."""
    suite = load_suite(str(_suite_file(tmp_path, pendulum_dataset, ["tt-greedy", "bc"], [0])))
    layout = Layout(tmp_path / "work", tmp_path / "results")
    bad = layout.cell_json(pendulum_dataset, "bc", 0)
    bad.parent.mkdir(parents=True)
    bad.write_text('{"schema": "tt-quality-cell/1", "score')  # cut off by a crash or an edit
    assert ledgers.cell_status(layout, pendulum_dataset, "bc", 0) == "corrupt: restore or delete it"
    monkeypatch.setattr(quality, "ensure_trained", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(TTError, match=rf"{bad}: corrupt quality cell result.*restore or delete"):
        run_suite(suite, layout, echo=lambda _: None)


# ------------------------------------------------------------------------------ aggregation
def _fake_cell(
    dataset: str, method: str, seed: int, scores: list[float], d4rl: bool = True
) -> dict[str, Any]:
    score = {"mean": sum(scores) / len(scores), "per_episode": scores}
    train = {"wall_s": 60.0 * (seed + 1), "steps": 10, "window_tokens": 1e6}
    return {
        "schema": suites.SCHEMA,
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "agent": "behaviour" if method == "behaviour" else "planner",
        "preset": "hopper-medium-cpu",
        "episodes": len(scores),
        "score_d4rl": score if d4rl else None,
        "score_dataset": {"mean": 50.0, "per_episode": [50.0] * len(scores)},
        "return": {"mean": 100.0 * (seed + 1)},
        "train": None if method == "behaviour" else train,
        "eval": {"s_per_episode": 2.0, "ms_per_env_step": 5.0},
        "config": config_to_dict(load_config("hopper-medium-cpu")),
        "machine": {"platform": "test", "cores": 2, "torch": "x", "eval_device": "cpu"},
        "git": {"commit": "0123456789abcdef"},
        "date": f"2026-01-0{seed + 1}T00:00:00+00:00",
    }


def test_aggregation_gives_the_t_interval_over_seeds_and_the_pooled_one(tmp_path: Path) -> None:
    cells = [
        _fake_cell("tt/hopper/medium-quick-v0", "tt-beam", 0, [10.0, 10.0]),
        _fake_cell("tt/hopper/medium-quick-v0", "tt-beam", 1, [20.0, 20.0]),
        _fake_cell("tt/hopper/medium-quick-v0", "tt-beam", 2, [30.0, 30.0]),
        _fake_cell("tt/hopper/medium-quick-v0", "behaviour", 0, [40.0, 60.0], d4rl=False),
    ]
    for cell in cells[:3]:
        cell["data"] = {"score_d4rl": 12.5}  # the dataset's own score on the same scale
    for i, cell in enumerate(cells):
        path = tmp_path / cell["method"] / f"{i}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(cell))
    (tmp_path / "not-a-cell.json").write_text("{}")

    rows = tables.write_report("test", tmp_path)
    beam, behaviour = rows  # tt-beam before behaviour, whatever the file order
    assert beam["method"] == "tt-beam" and beam["seeds"] == [0, 1, 2]
    assert beam["score_mean"] == pytest.approx(20.0)
    half = 4.3027 * 10.0 / 3**0.5  # t_{0.975, 2} * sd(10, 20, 30) / sqrt(3)
    assert beam["score_ci95_seeds"] == pytest.approx([20 - half, 20 + half], abs=1e-3)
    pooled_half = 2.5706 * (80.0**0.5) / 6**0.5  # six episodes, sd sqrt(80), t_{0.975, 5}
    assert beam["score_ci95_pooled"] == pytest.approx(
        [20 - pooled_half, 20 + pooled_half], abs=1e-3
    )
    assert beam["reference"] == "D4RL" and beam["return_mean"] == pytest.approx(200.0)
    assert beam["train_wall_s"] == pytest.approx(120.0)
    # one seed: no interval over seeds; no D4RL score in a cell: the dataset's references
    assert behaviour["score_ci95_seeds"] is None and behaviour["reference"] == "dataset"
    assert behaviour["score_mean"] == pytest.approx(50.0) and behaviour["train_wall_s"] is None

    table = (tmp_path / "results.md").read_text()
    assert (
        "| tt/hopper/medium-quick-v0 | tt-beam | 3 | **20.0** | [-4.8, 44.8] | [10.6, 29.4] | D4RL |"
        in table
    )
    assert "| tt/hopper/medium-quick-v0 | behaviour | 1 | **50.0** | — |" in table
    # per seed: every seed's score, mean - data, one seed's training + evaluation of its episodes
    assert beam["compute_s_per_seed"] == pytest.approx(120.0 + 2.0 * 2)
    per_seed = table[table.index("## Per seed") :]
    assert "| seed 0 | seed 1 | seed 2 | mean | 95% CI (seeds) | mean − data |" in per_seed
    assert (
        "| tt/hopper/medium-quick-v0 | tt-beam | 10.0 | 20.0 | 30.0 | **20.0** | [-4.8, 44.8] "
        "| +7.5 | 2.1 min |" in per_seed
    )
    behaviour_row = (
        "| tt/hopper/medium-quick-v0 | behaviour | 50.0 | — | — | **50.0** | — | — | 4.0 s |"
    )
    assert behaviour_row in per_seed
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------ options + CLI
def test_options_and_overrides_are_split() -> None:
    options, overrides = quality.parse_options(
        ["suite=a", "--dry-run", "train.device=cpu", "--work-dir", "w", "--results-dir=r",
         "seeds=0,2"]
    )  # fmt: skip
    assert options == quality.QualityOptions(
        suite="a", dry_run=True, work_dir="w", results_dir="r", seeds=("0", "2")
    )
    assert overrides == ["train.device=cpu"]
    assert quality.parse_options(["report_only=true"])[0].report_only is True
    with pytest.raises(ConfigError, match="unknown option 'bogus'"):
        quality.parse_options(["bogus"])
    with pytest.raises(ConfigError, match="option dry_run expects bool, got 'maybe'"):
        quality.parse_options(["dry_run=maybe"])
    with pytest.raises(ConfigError, match=r"'data\.dataset' is not an option"):
        quality.parse_options(["data.dataset"])
    with pytest.raises(ConfigError, match="'--work-dir' needs a value"):
        quality.parse_options(["--work-dir"])


def test_one_option_grammar_for_every_lab_command() -> None:
    # the same spelling means the same thing in each: dashes, a leading --, YAML-typed values
    from trajectory_transformer.lab import oracle, valuefit

    opts, extra = oracle.parse(["--run", "r", "every=5", "plan.beam_width=4"])
    assert (opts.run, opts.every, extra) == ("r", 5, ["plan.beam_width=4"])
    with pytest.raises(ConfigError, match="option every expects int, got 'x'"):
        oracle.parse(["run=r", "every=x"])
    with pytest.raises(ConfigError, match="every must be at least 1"):
        oracle.parse(["run=r", "every=0"])
    with pytest.raises(ConfigError, match=r"'train\.lr=1' is not an option"):
        oracle.parse(["run=r", "train.lr=1"])
    assert valuefit.parse(["run=r", "--windows=10"]).windows == 10


def test_cli_lists_cells_and_refuses_a_suite_override(
    pendulum_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite_file(tmp_path, pendulum_dataset, ["tt-beam", "behaviour"], [0, 1])
    args = ["bench", "quality", f"suite={suite}", f"work_dir={tmp_path / 'w'}"]
    assert cli_main([*args, "dry_run=true", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["seed"], r["status"]) for r in rows] == [
        ("tt-beam", 0, "todo"), ("behaviour", 0, "todo"), ("tt-beam", 1, "todo"),
        ("behaviour", 1, "todo"),
    ]  # fmt: skip
    # a part of the suite: only those cells are listed (and would run)
    assert cli_main([*args, "dry_run=true", "--json", "methods=behaviour", "seeds=1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["method"], r["seed"]) for r in rows] == [("behaviour", 1)]
    slug = suites.dataset_slug(pendulum_dataset)
    assert cli_main([*args, "dry_run=true", "--json", f"datasets={slug}", "seeds=0"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert cli_main([*args, "dry_run=true", "methods=bc"]) == 2
    assert "methods=bc is not in suite" in capsys.readouterr().err
    assert cli_main([*args, "dry_run=true", "seeds=7"]) == 2
    assert "seeds=7" in capsys.readouterr().err
    assert cli_main([*args, "dry_run=true", "train.lr=-1"]) == 2  # checked before anything runs
    assert "train.lr" in capsys.readouterr().err
    assert cli_main(["bench", "quality", "dry_run=true"]) == 2
    assert "hopper-cpu" in capsys.readouterr().err


def test_cli_quick_run_then_report_only(
    pendulum_dataset: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite_file(tmp_path, pendulum_dataset, ["tt-greedy"], [3, 4])
    dirs = [f"work_dir={tmp_path / 'w'}", f"results_dir={tmp_path / 'r'}"]
    assert cli_main(["bench", "quality", f"suite={suite}", "--quick", *dirs]) == 0
    [path] = (tmp_path / "r").rglob("*.json")  # --quick: the first seed only
    cell = json.loads(path.read_text())
    assert cell["seed"] == 3 and cell["train"]["steps"] == 20  # quick: train.max_steps=20
    assert cell["commands"]["suite"].split()[4] == "--quick"
    assert "| tt-greedy | 1 |" in capsys.readouterr().out
    (tmp_path / "r" / "results.md").unlink()
    assert cli_main(["bench", "quality", f"suite={suite}", "report_only=true", *dirs]) == 0
    rebuilt = (tmp_path / "r" / "results.md").read_text()  # from the cell JSON alone
    assert "| tt-greedy | 1 |" in rebuilt
    assert not (tmp_path / "w" / "tt-pendulum-expert-v0" / "seed4").exists()


def test_bad_suites_are_one_line_errors(tmp_path: Path) -> None:
    def suite(**raw: Any) -> str:
        base = {"datasets": [{"dataset": "d", "preset": "hopper-medium-cpu"}], "seeds": [0]}
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({**base, **raw}))
        return str(path)

    with pytest.raises(ConfigError, match="unknown methods"):
        load_suite(suite(methods=["tt-beam", "bogus"]))
    with pytest.raises(ConfigError, match="unknown keys"):
        load_suite(suite(episode=3))
    with pytest.raises(ConfigError, match="integers"):
        load_suite(suite(seeds=["0"]))
    with pytest.raises(ConfigError, match="no preset"):
        load_suite(suite(datasets=[{"dataset": "d", "preset": "nope"}]))
    with pytest.raises(TTError, match="no suite"):
        load_suite("nope")


# ------------------------------------------------------------------------------ presets + suites
ENVS = ("hopper", "halfcheetah", "walker2d")
LEVELS = ("random", "medium", "medium-replay", "medium-expert", "expert")
# (horizon, beam_width, k_act, cdf_act, epochs) from the original TT's config/offline.py
ORIGINAL = {
    "halfcheetah-medium": (5, 32, None, 0.6, None),
    "halfcheetah-medium-replay": (5, 32, None, 0.6, None),
    "halfcheetah-medium-expert": (15, 32, None, 0.6, None),
    "hopper-medium": (15, 128, None, 0.6, None),
    "hopper-medium-replay": (15, 128, None, 0.6, 80.0),
    "hopper-medium-expert": (15, 128, None, 0.6, None),
    "walker2d-medium": (15, 128, None, 0.6, None),
    "walker2d-medium-replay": (20, 32, 40, None, 80.0),
    "walker2d-medium-expert": (5, 128, None, 0.6, None),
}


def _base_chain(name: str) -> list[str]:
    chain = [name]
    while True:
        raw = yaml.safe_load((PRESET_DIR / f"{chain[-1]}.yaml").read_text()) or {}
        if "base" not in raw:
            return chain
        assert (PRESET_DIR / f"{raw['base']}.yaml").is_file(), f"{chain[-1]}: missing base"
        assert raw["base"] not in chain, f"{name}: base cycle {chain}"
        chain.append(raw["base"])


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads_and_its_base_chain_resolves(name: str) -> None:
    cfg = load_config(name)
    chain = _base_chain(name)
    if name.startswith("pointmaze-"):  # goal-conditioned: their own chain (tests/plan/test_goal.py)
        assert chain[1:] == ([] if name == "pointmaze-umaze-cpu" else ["pointmaze-umaze-cpu"])
        assert cfg.data.goal_key == "desired_goal" and cfg.plan.mode == "goal"
        return
    if name.endswith("-cpu"):
        assert chain[1:] == (["locomotion-cpu", "locomotion"] if name != "locomotion-cpu"
                             else ["locomotion"])  # fmt: skip
    elif name != "quickstart" and name != "locomotion":
        assert chain[1:] == ["locomotion"]
    if name in ("quickstart", "locomotion", "locomotion-cpu"):
        return
    env, level = name.removesuffix("-cpu").split("-", 1)
    assert env in ENVS and level in LEVELS and cfg.name == name
    assert cfg.data.n_transitions == 10 and cfg.plan.context == 5
    assert cfg.data.termination_penalty == -100 and cfg.data.discount == 0.99
    assert cfg.data.strategy == "quantile" and cfg.plan.expand == 2
    if name.endswith("-cpu"):
        assert cfg.data.dataset == recipe_dataset_id(env, level, quick=True)
        assert (cfg.model.n_embd, cfg.model.n_layer, cfg.train.batch_size) == (64, 3, 128)
        assert (cfg.plan.beam_width, cfg.plan.horizon) == (32, 5)
        assert (cfg.eval.episodes, cfg.eval.n_envs) == (20, 10)
        window = cfg.data.n_transitions * (11 + 3 + 2 if env == "hopper" else 17 + 6 + 2) - 1
        # about an hour at the ~25k tokens/s of the slower (AMD, AVX2-only) 2-core kind
        hours = cfg.train.max_steps * cfg.train.batch_size * window / 25_000 / 3600
        assert 0.8 < hours < 1.2, f"{name}: {hours:.2f} h of training at 25k tokens/s"
    else:
        assert cfg.data.dataset == recipe_dataset_id(env, level, quick=False)
        assert (cfg.model.n_embd, cfg.model.n_layer, cfg.model.n_head) == (128, 4, 4)
        assert cfg.train.batch_size == 256 and cfg.train.max_steps is None
        plan = (cfg.plan.horizon, cfg.plan.beam_width, cfg.plan.k_act, cfg.plan.cdf_act)
        expected = ORIGINAL.get(name, (15, 128, None, 0.6, None))
        assert (*plan, cfg.train.epochs) == expected


def test_every_locomotion_task_has_a_gpu_and_a_cpu_preset() -> None:
    names = set(list_presets())
    for env in ENVS:
        for level in LEVELS:
            assert {f"{env}-{level}", f"{env}-{level}-cpu"} <= names


@pytest.mark.parametrize("name", suites.list_suites())
def test_shipped_suites_load_and_train_each_dataset_with_its_own_preset(name: str) -> None:
    suite = load_suite(name)
    assert suite.episodes >= 20 and len(suite.seeds) >= 3
    assert set(suites.METHODS) <= set(suite.methods) <= set(suites.ALL_METHODS)
    for ds in suite.datasets:  # the suite does not silently move a preset to another dataset
        assert load_config(ds.preset).data.dataset == ds.dataset
