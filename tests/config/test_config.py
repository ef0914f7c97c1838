"""Config: every bad value is a one-line error naming its key, presets cannot loop, keys are documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trajectory_transformer.cli import main
from trajectory_transformer.config import RunConfig, all_keys, describe_keys, load_config
from trajectory_transformer.errors import ConfigError


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.n_head=0", "model.n_head"),
        ("model.n_layer=0", "model.n_layer"),
        ("model.n_embd=0", "model.n_embd"),
        ("model.n_embd=10", "model.n_embd"),  # not divisible by 4 heads
        ("train.max_steps=0", "train.max_steps"),
        ("train.epochs=-1", "train.epochs"),
        ("train.lr=.inf", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.device=gpu0", "train.device"),
        ("train.save_every=0", "train.save_every"),
        ("eval.device=cuda:x", "eval.device"),
        ("eval.max_episode_steps=0", "eval.max_episode_steps"),
        ("eval.episodes=0", "eval.episodes"),
        ("eval.n_envs=0", "eval.n_envs"),
        ("plan.beam_width=0", "plan.beam_width"),
        ("data.n_transitions=0", "data.n_transitions"),
        # issue 31: every key bounded where the config is built
        ("train.seed=-1", "train.seed"),
        ("eval.seed=-5", "eval.seed"),
        ("collect.seed=-1", "collect.seed"),
        ("plan.seed=-1", "plan.seed"),
        ("collect.recipe.ppo_seed=4294967296", "collect.recipe.ppo_seed"),
        ("eval.seed=4294967290", "eval.seed"),  # + 10 episodes passes 2**32
        ("data.termination_penalty=.nan", "data.termination_penalty"),
        ("data.termination_penalty=-.inf", "data.termination_penalty"),
        ("plan.discount=.nan", "plan.discount"),
        ("collect.epsilon=.nan", "collect.epsilon"),
        ("model.n_embd=" + "1" * 30, "model.n_embd"),
        ("train.batch_size=" + "9" * 25, "train.batch_size"),
        ("train.lr=1" + "0" * 400, "train.lr"),  # float() of it overflows
        ("name=../esc", "name"),
        ("name=/some/absolute/dir", "name"),
        ("name=a/b", "name"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(
    override: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(None, [override])
    assert main(["config", "show", override]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'{key}'" in err and "Traceback" not in err


def test_good_values_pass() -> None:
    cfg = load_config(None, ["train.device=cuda:1", "eval.device=cpu", "train.epochs=0.5"])
    assert cfg.train.device == "cuda:1" and cfg.train.epochs == 0.5


def test_preset_whose_base_is_itself_is_an_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\ntrain:\n  lr: 1.0e-3\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(loop))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"base: {b}\n")
    b.write_text(f"base: {a}\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(str(a))


def test_preset_with_base_extends_it(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text("base: quickstart\ntrain:\n  lr: 1.0e-4\n")
    cfg = load_config(str(child))
    assert cfg.train.lr == 1e-4 and cfg.data.dataset == load_config("quickstart").data.dataset


def test_every_key_is_documented(capsys: pytest.CaptureFixture[str]) -> None:
    rows = describe_keys()
    assert [r[0] for r in rows] == all_keys(RunConfig)
    undocumented = [key for key, _, _, doc in rows if not doc]
    assert undocumented == []
    assert main(["config", "keys"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(rows)
    assert any(line.startswith("plan.cdf_act (float | None, default 0.6): ") for line in out)


def test_cli_help_and_facade_import_do_not_load_torch() -> None:
    code = (
        "import sys, contextlib, io\n"
        "import trajectory_transformer as tt\n"
        "from trajectory_transformer.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "tt.load_config\n"
        "assert 'torch' not in sys.modules, 'load_config imported torch'\n"
        "tt.TTPolicy\n"
        "assert 'torch' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


FACADE = {  # public name -> the module that defines it (the facade adds no second names)
    "load_config": "trajectory_transformer.config.presets",
    "RunConfig": "trajectory_transformer.config.schema",
    "TTError": "trajectory_transformer.errors",
    "ConfigError": "trajectory_transformer.errors",
    "collect": "trajectory_transformer.sources.collect",
    "train": "trajectory_transformer.training.trainer",
    "evaluate": "trajectory_transformer.evaluation.evaluate",
    "load_run": "trajectory_transformer.runs",
    "LoadedRun": "trajectory_transformer.runs",
    "TTPolicy": "trajectory_transformer.policy",
    "Episodes": "trajectory_transformer.data.memory",
    "push": "trajectory_transformer.share.hub",
}


def test_facade_names_are_their_modules_own_objects() -> None:
    """Each public name is the object its home module defines, and the list is exactly these."""
    import trajectory_transformer as tt

    assert set(tt.__all__) == {"__version__", *FACADE}
    for name, module in FACADE.items():
        value = getattr(tt, name)
        assert value.__module__ == module, name
        assert value is getattr(sys.modules[module], value.__name__), name
    with pytest.raises(AttributeError):
        _ = tt.no_such_name
