"""Experiment configs: the schema (one dataclass per section), its checks, its files.

:func:`load_config` / :func:`config_from_dict` bind and check a config once; modules, data
preparation and callbacks receive the typed :class:`ExperimentConfig`. The binder
(:mod:`clinfonce.binder`) is generic: every other config the package reads (evaluation
settings, experiment files, cluster configs) binds through it too.
"""

from clinfonce.binder import apply_override
from clinfonce.training.config.files import (
    config_from_dict,
    load_config,
    save_config,
    with_absolute_paths,
)
from clinfonce.training.config.schema import (
    ExperimentConfig,
    MethodConfig,
    ModelConfig,
    MonitorConfig,
    OptimConfig,
    OutputConfig,
    TermConfig,
    TrainConfig,
)

__all__ = [
    "ExperimentConfig",
    "MethodConfig",
    "ModelConfig",
    "MonitorConfig",
    "OptimConfig",
    "OutputConfig",
    "TermConfig",
    "TrainConfig",
    "apply_override",
    "config_from_dict",
    "load_config",
    "save_config",
    "with_absolute_paths",
]
