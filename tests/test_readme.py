"""Every `tt ...` line of the README's CLI section runs, with tiny sizes appended to each."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tiny import TINY_MODEL
from trajectory_transformer.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
TINY_EVAL = [
    "plan.beam_width=2",
    "plan.horizon=2",
    "eval.episodes=2",
    "eval.n_envs=2",
    "eval.max_episode_steps=5",
    "eval.progress=false",
]


def readme_commands() -> list[list[str]]:
    section = README.read_text().split("## The `tt` command", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README lost its CLI block"
    lines = [line.split("  #", 1)[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("tt ")]


def tiny(args: list[str]) -> list[str]:
    """The same command at toy size: our overrides come last, so they win."""
    command = args[0]
    if command == "collect":
        return [*args, "collect.episodes=3", "collect.ref_episodes=1", "--no-progress"]
    if command == "train" and "--resume" in args:
        return [*args, "train.max_steps=6", "train.progress=false"]
    if command == "train":
        steps = ["train.max_steps=4", "train.batch_size=8", "train.save_every=2"]
        return [*args, *TINY_MODEL, *steps, "train.progress=false"]
    if command in ("eval", "render"):
        return [*args, *TINY_EVAL]
    if command == "bench":
        return [*args, "--quick"]
    if command == "quickstart":
        steps = ["train.max_steps=3", "train.batch_size=8", "train.progress=false"]
        return [*args, *TINY_MODEL, *steps, *TINY_EVAL, "collect.episodes=3"]
    return args


def test_readme_lists_every_subcommand() -> None:
    used = {args[0] for args in readme_commands()}
    assert used >= {"config", "collect", "train", "eval", "render", "report", "bench", "quickstart"}


def test_readme_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    for args in readme_commands():
        assert main(tiny(args)) == 0, f"README command failed: tt {' '.join(args)}"
    run = tmp_path / "runs" / "pendulum"
    for produced in ("model.safetensors", "eval/eval.json", "eval_greedy/eval.json", "report.html"):
        assert (run / produced).is_file(), produced
    assert (run / "videos" / "episode_0.mp4").is_file()
    assert (tmp_path / "runs" / "quickstart" / "report.html").is_file()


def readme_python() -> str:
    """Every ```python block of the README, in order, as one program (a reader runs them so)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README lost its Python examples"
    return "\n".join(blocks)


def test_readme_python_runs_at_tiny_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python blocks from a fresh clone (empty Minari folder, empty working dir),
    with tiny sizes appended to every config they build and every evaluation they run."""
    import trajectory_transformer as tt

    real_load, real_eval = tt.load_config, tt.evaluate
    tiny_run = [*TINY_MODEL, "train.max_steps=3", "train.batch_size=8", "train.progress=false",
                "collect.episodes=3", "collect.ref_episodes=1"]  # fmt: skip
    monkeypatch.setattr(tt, "load_config",
                        lambda preset=None, overrides=None: real_load(preset, [*(overrides or []), *tiny_run]))  # fmt: skip
    monkeypatch.setattr(tt, "evaluate",
                        lambda run_dir, overrides=None, **kw: real_eval(run_dir, [*(overrides or []), *TINY_EVAL], **kw))  # fmt: skip
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_python(), "README.md", "exec"), {})
    assert (tmp_path / "runs" / "api" / "eval" / "eval.json").is_file()
    assert (tmp_path / "minari" / "tt" / "pendulum" / "medium-noisy-v0").is_dir()


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 2,000 CPU training steps; far slower beside other jobs
def test_readme_python_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same blocks exactly as written (minutes: the quickstart's data, 2,000 training steps)."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_python(), "README.md", "exec"), {})
    assert (tmp_path / "runs" / "api" / "eval" / "eval.json").is_file()
