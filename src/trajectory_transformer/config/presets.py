"""Presets: the shipped YAML files under configs/ (small commented deltas over the defaults).

A preset may name a `base` preset it extends; the result is validated like any config.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .overrides import apply_overrides, config_from_dict, config_to_dict, merge
from .schema import RunConfig

__all__ = ["PRESET_DIR", "find_yaml", "list_presets", "load_config"]

PRESET_DIR = Path(__file__).parent.parent / "configs"


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def find_yaml(name_or_path: str, folder: Path, what: str) -> Path:
    """A shipped YAML by name (folder/<name>.yaml) or a YAML path; a ConfigError lists the names."""
    path = Path(name_or_path)
    if not path.suffix:
        path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"no {what} '{name_or_path}'; choose one of {names} or give a YAML path")
    return path


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err.__class__.__name__})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def load_config(
    preset: str | None = None, overrides: list[str] | None = None, _seen: tuple[str, ...] = ()
) -> RunConfig:
    """Defaults, then a preset (a name under configs/ or a YAML path), then overrides.

    A preset may name a `base` preset it extends, so presets stay small deltas over defaults.
    """
    data: dict[str, Any] = {}
    if preset in _seen:
        chain = " -> ".join([*_seen, str(preset)])
        raise ConfigError(f"preset '{_seen[0]}': its base presets form a cycle ({chain})")
    if preset:
        path = find_yaml(preset, PRESET_DIR, "preset")
        data = _read_yaml(path)
        base = data.pop("base", None)
        if base:
            parent = load_config(str(base), None, (*_seen, str(preset)))
            data = merge(config_to_dict(parent), data)
    try:
        config = typing.cast(RunConfig, config_from_dict(data))
    except ConfigError as err:
        raise ConfigError(f"preset '{preset}': {err}") from err
    return apply_overrides(config, overrides or [])
