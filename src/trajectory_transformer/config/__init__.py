"""The run's configuration: typed sections (schema), `key=value` overrides (the one parser), presets.

Library code takes these objects; files are read here (presets, run folders' config.json) only.
"""

from .overrides import (
    all_keys,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    merge,
    parse_options,
    split_override,
)
from .presets import PRESET_DIR, find_yaml, list_presets, load_config
from .schema import (
    CollectConfig,
    DataConfig,
    EvalConfig,
    ModelConfig,
    PlanConfig,
    RecipeConfig,
    RunConfig,
    TrainConfig,
    describe_keys,
)

__all__ = [
    "PRESET_DIR",
    "CollectConfig",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "PlanConfig",
    "RecipeConfig",
    "RunConfig",
    "TrainConfig",
    "all_keys",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "describe_keys",
    "find_yaml",
    "list_presets",
    "load_config",
    "merge",
    "parse_options",
    "split_override",
]
