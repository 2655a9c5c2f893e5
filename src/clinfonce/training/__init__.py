"""Stage 2: contrastive training (SimCLR, SupCon, Cl-InfoNCE) with Lightning.

Examples:
    >>> from clinfonce.training import load_config, train
    >>> config = load_config("configs/synthetic-attributes-clinfonce.yaml",
    ...                      ["train.epochs=1"])  # doctest: +SKIP
    >>> result = train(config)  # doctest: +SKIP
"""

from clinfonce.training.base import EncoderModule
from clinfonce.training.build import build_module, untrained_encoder
from clinfonce.training.config import (
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
from clinfonce.training.methods.attributes import (
    AttributeContrast,
    AttributePredictor,
    BaselineConfig,
)
from clinfonce.training.methods.cluster_classifier import ClusterClassifier
from clinfonce.training.methods.contrastive import ContrastiveModule, method_terms
from clinfonce.training.methods.kmeans import KMeansConfig
from clinfonce.training.methods.kmeans_reclustering import KMeansReclustering
from clinfonce.training.methods.registry import (
    REGISTRY,
    find_method,
    method_names,
    objective_terms,
)
from clinfonce.training.methods.spec import Method
from clinfonce.training.monitor import KNN_METRIC, KNNMonitor
from clinfonce.training.objective import Objective, ObjectiveTerm
from clinfonce.training.run import TrainResult, train
from clinfonce.training.run_directory import load_run_config, resolve_resume
from clinfonce.training.schedule import warmup_cosine

__all__ = [
    "KNN_METRIC",
    "REGISTRY",
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
    "Method",
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
    "find_method",
    "load_config",
    "load_run_config",
    "method_names",
    "method_terms",
    "objective_terms",
    "resolve_resume",
    "save_config",
    "train",
    "untrained_encoder",
    "warmup_cosine",
]
