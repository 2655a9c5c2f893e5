"""Evaluation of frozen encoders: features, weighted kNN, linear probes, cluster views.

Whole checkpoints are evaluated (and embedded) by :mod:`clinfonce.evaluation.protocol`,
which this package does not import eagerly: it loads training code, and training's online
monitor imports this package.

Examples:
    >>> import torch
    >>> from clinfonce.evaluation import knn_accuracy
    >>> bank = torch.eye(3)
    >>> knn_accuracy(bank, torch.tensor([0, 1, 2]), bank, torch.tensor([0, 1, 2]), k=1)
    1.0
"""

from clinfonce.evaluation.cluster_views import embedding_kmeans, tsne_plot
from clinfonce.evaluation.features import eval_mode, extract_features
from clinfonce.evaluation.knn import knn_accuracy, knn_evaluate, knn_predict
from clinfonce.evaluation.linear import (
    DEFAULT_CS,
    ProbeResult,
    linear_probe,
    logistic_probe,
    sgd_probe,
)
from clinfonce.evaluation.metrics import topk_accuracy, topk_correct

__all__ = [
    "DEFAULT_CS",
    "ProbeResult",
    "embedding_kmeans",
    "eval_mode",
    "extract_features",
    "knn_accuracy",
    "knn_evaluate",
    "knn_predict",
    "linear_probe",
    "logistic_probe",
    "sgd_probe",
    "topk_accuracy",
    "topk_correct",
    "tsne_plot",
]
