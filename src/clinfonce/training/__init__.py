"""Stage 2: contrastive training (SimCLR, SupCon, Cl-InfoNCE) with Lightning.

Examples:
    >>> from clinfonce.training import load_config, train
    >>> config = load_config("configs/synthetic-attributes-clinfonce.yaml",
    ...                      ["train.epochs=1"])  # doctest: +SKIP
    >>> result = train(config)  # doctest: +SKIP
"""

from clinfonce.training.config import (
    METHODS,
    ExperimentConfig,
    MethodConfig,
    ModelConfig,
    MonitorConfig,
    OptimConfig,
    OutputConfig,
    TrainConfig,
    apply_override,
    config_from_dict,
    load_config,
    save_config,
)
from clinfonce.training.module import ContrastiveModule
from clinfonce.training.monitor import KNN_METRIC, KNNMonitor
from clinfonce.training.objective import Objective, ObjectiveTerm, method_terms
from clinfonce.training.run import TrainResult, load_run_config, resolve_resume, train
from clinfonce.training.schedule import warmup_cosine

__all__ = [
    "KNN_METRIC",
    "METHODS",
    "ContrastiveModule",
    "ExperimentConfig",
    "KNNMonitor",
    "MethodConfig",
    "ModelConfig",
    "MonitorConfig",
    "Objective",
    "ObjectiveTerm",
    "OptimConfig",
    "OutputConfig",
    "TrainConfig",
    "TrainResult",
    "apply_override",
    "config_from_dict",
    "load_config",
    "load_run_config",
    "method_terms",
    "resolve_resume",
    "save_config",
    "train",
    "warmup_cosine",
]
