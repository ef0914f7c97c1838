"""Every `tt ...` command shown in the docs parses: a renamed or mistyped option fails here.

`test_readme.py` runs the README's commands; the other documents (BENCHMARKS.md with the commands
behind every number, docs/*.md) show commands too long to run in tests, so they are parsed only.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from trajectory_transformer.cli import parse_args
from trajectory_transformer.config import load_config
from trajectory_transformer.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]


def doc_commands(path: Path) -> list[str]:
    """The `tt` lines of the file's bash blocks, continuations joined, comments dropped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())
            if line.startswith("tt "):
                out.append(line)
    return out


COMMANDS = [(path.name, line) for path in DOCS for line in doc_commands(path)]


def test_the_docs_show_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"README.md", "BENCHMARKS.md"} <= names


@pytest.mark.parametrize(("doc", "line"), COMMANDS)
def test_doc_command_parses(doc: str, line: str) -> None:
    args = shlex.split(line)[1:]
    try:
        parsed = parse_args(args)
    except SystemExit as err:
        pytest.fail(f"{doc}: `{line}` does not parse (exit {err.code})")
    # commands that build a config from a preset and overrides: every key must exist and validate
    if parsed.command in ("train", "collect", "config", "quickstart") and not getattr(
        parsed, "resume", None
    ):
        default = "quickstart" if parsed.command == "quickstart" else None
        try:
            load_config(parsed.preset or default, parsed.overrides)
        except ConfigError as err:
            pytest.fail(f"{doc}: `{line}`: {err}")
