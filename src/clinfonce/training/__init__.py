"""Stage 2: contrastive training (SimCLR, SupCon, Cl-InfoNCE) with Lightning.

Examples:
    >>> from clinfonce.training import load_config, train
    >>> config = load_config("configs/synthetic-attributes-clinfonce.yaml",
    ...                      ["train.epochs=1"])  # doctest: +SKIP
    >>> result = train(config)  # doctest: +SKIP
"""

from clinfonce.training.base import EncoderModule
from clinfonce.training.baselines import AttributeContrast, AttributePredictor, ClusterClassifier
from clinfonce.training.config import (
    METHODS,
    ExperimentConfig,
    MethodConfig,
    ModelConfig,
    MonitorConfig,
    OptimConfig,
    OutputConfig,
    TermConfig,
    TrainConfig,
    apply_override,
    config_from_dict,
    load_config,
    save_config,
)
from clinfonce.training.kmeans import KMeansReclustering
from clinfonce.training.method_options import BaselineConfig, KMeansConfig
from clinfonce.training.methods import build_module, module_class
from clinfonce.training.module import ContrastiveModule
from clinfonce.training.monitor import KNN_METRIC, KNNMonitor
from clinfonce.training.objective import Objective, ObjectiveTerm, method_terms, objective_terms
from clinfonce.training.run import TrainResult, load_run_config, resolve_resume, train
from clinfonce.training.schedule import warmup_cosine

__all__ = [
    "KNN_METRIC",
    "METHODS",
    "AttributeContrast",
    "AttributePredictor",
    "BaselineConfig",
    "ClusterClassifier",
    "ContrastiveModule",
    "EncoderModule",
    "ExperimentConfig",
    "KMeansConfig",
    "KMeansReclustering",
    "KNNMonitor",
    "MethodConfig",
    "ModelConfig",
    "MonitorConfig",
    "Objective",
    "ObjectiveTerm",
    "OptimConfig",
    "OutputConfig",
    "TermConfig",
    "TrainConfig",
    "TrainResult",
    "apply_override",
    "build_module",
    "config_from_dict",
    "load_config",
    "load_run_config",
    "method_terms",
    "module_class",
    "objective_terms",
    "resolve_resume",
    "save_config",
    "train",
    "warmup_cosine",
]
