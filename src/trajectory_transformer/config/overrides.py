"""`key=value` overrides: the one parser every entry point uses, and dicts <-> config dataclasses.

Values are YAML scalars (3, 0.5, true, null, [0.9, 0.95], plain strings); an unknown key is an
error that names the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from collections.abc import Sequence
from typing import Any, Literal

import yaml

from ..errors import ConfigError
from .schema import RunConfig

__all__ = [
    "all_keys",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "merge",
    "parse_options",
    "split_override",
]


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            keys.extend(all_keys(typing.cast(type, hint), f"{prefix}{f.name}."))
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _unknown_key(key: str, cls: type) -> ConfigError:
    choices = all_keys(cls)
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.5)
    if not close:  # a bare leaf name ("lr") often matches a dotted key ("train.lr")
        close = [c for c in choices if c.split(".")[-1] == key.split(".")[-1]][:1]
    hint = f"; did you mean '{close[0]}'?" if close else "; `tt config show` lists the keys"
    return ConfigError(f"unknown config key '{key}'{hint}")


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, with a clear error when it cannot be."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        if type(None) in args or hint is Any:
            return None
        raise ConfigError(f"config key '{key}' cannot be null")
    if origin is typing.Union or (origin is not None and type(None) in args):
        inner = [a for a in args if a is not type(None)]
        errors = []
        for candidate in inner:
            try:
                return _coerce(value, candidate, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise ConfigError(f"config key '{key}' needs {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin is dict:  # only dict[str, YAML scalar] fields (collect.env_kwargs, eval.env_kwargs)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(
                f"config key '{key}' needs a mapping such as {{max_episode_steps: 100}}, got {value!r}"
            )
        return dict(value)  # values are checked in the dataclass's __post_init__
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            raise TypeError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if hint is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if hint is str:
            return str(value)
    except (TypeError, ValueError, OverflowError):  # float(10**400) overflows
        pass
    else:
        return value
    shown = (
        repr(value)
        if len(repr(value)) <= 40
        else f"{repr(value)[:30]}... ({len(repr(value))} chars)"
    )
    raise ConfigError(f"config key '{key}' expects {getattr(hint, '__name__', hint)}, got {shown}")


def config_from_dict(data: dict[str, Any], cls: type = RunConfig, prefix: str = "") -> Any:
    """Build a config dataclass from a nested dict; unknown keys are errors naming the closest key."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise _unknown_key(full, RunConfig if prefix or cls is RunConfig else cls)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{full}' is a section; give it a mapping")
            kwargs[key] = config_from_dict(value, typing.cast(type, hint), f"{full}.")
        else:
            kwargs[key] = _coerce(value, hint, full)
    return cls(**kwargs)


def _parse_value(text: str) -> Any:
    """CLI values are YAML scalars: 3, 0.5, true, null, [0.9, 0.95], or plain strings."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def split_override(item: str) -> tuple[str, str | None]:
    """`key=value` (a leading `--` allowed) as (key, raw value); the value is None without `=`.

    The one tokenizer of every entry point's `key=value` arguments (`tt` subcommands, `tt bench`
    options, a policy's plan settings): what each accepts differs, how it is read does not.
    """
    text = item[2:] if item.startswith("--") else item
    key, has_value, value = text.partition("=")
    return key.strip(), (value if has_value else None)


def apply_overrides(config: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply `section.key=value` strings (a leading `--` is allowed) and re-validate."""
    update: dict[str, Any] = {}
    valid = set(all_keys(RunConfig))
    for item in overrides:
        key, raw = split_override(item)
        if raw is None:
            raise ConfigError(
                f"override '{item}' is not of the form key=value (e.g. train.lr=3e-4)"
            )
        if key not in valid:
            raise _unknown_key(key, RunConfig)
        node = update
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _parse_value(raw)
    merged = merge(config_to_dict(config), update)
    return typing.cast(RunConfig, config_from_dict(merged))


OptionsT = typing.TypeVar("OptionsT")


def parse_options(
    items: Sequence[str],
    options_type: type[OptionsT],
    command: str,
    sections: tuple[str, ...] = ("data", "model", "train", "plan", "eval", "collect"),
) -> tuple[OptionsT, list[str]]:
    """A command's own options (the fields of `options_type`) and its `section.key=value` overrides.

    The one grammar of `tt bench`/lab commands, read like config overrides: `name=value` (a leading
    `--` and dashes for underscores allowed), a bool option alone means true, a value may also be
    the next item (`--work-dir w`), values are YAML scalars typed by the field, a `tuple[X, ...]`
    field takes a comma list. Overrides are returned as given, for `apply_overrides` to check.
    Ranges are the options dataclass's own `__post_init__`.
    """
    hints = typing.get_type_hints(options_type)
    names = [f.name for f in dataclasses.fields(typing.cast(Any, options_type))]
    values: dict[str, Any] = {}
    overrides: list[str] = []
    queue = list(items)
    while queue:
        item = queue.pop(0)
        key, raw = split_override(item)
        name = key.replace("-", "_")
        if "." in key:
            if raw is None or key.split(".")[0] not in sections:
                allowed = ", ".join(f"{s}.*" for s in sections)
                raise ConfigError(f"tt {command}: '{item}' is not an option; it takes {allowed} "
                                  "as key=value")  # fmt: skip
            overrides.append(f"{key}={raw}")
            continue
        if name not in names:
            listed = ", ".join(f"{n}=" for n in names)
            raise ConfigError(f"tt {command}: unknown option '{item}'; use {listed} or "
                              "section.key=value overrides")  # fmt: skip
        hint = hints[name]
        if raw is None and hint is bool:
            raw = "true"
        elif raw is None:
            if not queue:
                raise ConfigError(f"tt {command}: '{item}' needs a value: {name}=...")
            raw = queue.pop(0)
        values[name] = _option_value(raw, hint, name, command)
    try:
        return options_type(**values), overrides
    except TypeError:  # a required field left out
        required = [
            f.name
            for f in dataclasses.fields(typing.cast(Any, options_type))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [n for n in required if n not in values] or ["a required option"]
        raise ConfigError(f"tt {command} needs {missing[0]}=...") from None


def _option_value(raw: str, hint: Any, name: str, command: str) -> Any:
    args = typing.get_args(hint)
    variadic = typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis
    try:
        if variadic:
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            if not parts:
                raise ConfigError(f"config key '{name}' needs a comma list such as {name}=a,b")
            return tuple(_coerce(_parse_value(p), args[0], name) for p in parts)
        return _coerce(raw if hint is str else _parse_value(raw), hint, name)
    except ConfigError as err:
        message = str(err).replace(f"config key '{name}'", f"option {name}")
        raise ConfigError(f"tt {command}: {message}") from None
