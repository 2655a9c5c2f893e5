"""Evaluation of frozen encoders: features, weighted kNN, linear probes, cluster views.

This is the measuring core: it knows tensors and datasets, not runs or configs, so training
(whose online monitor uses the kNN) can import it. Evaluating or embedding a whole finished
run lives above training, in :mod:`clinfonce.runs.evaluate` and
:mod:`clinfonce.runs.embed`.

Examples:
    >>> import torch
    >>> from clinfonce.evaluation import knn_accuracy
    >>> bank = torch.eye(3)
    >>> knn_accuracy(bank, torch.tensor([0, 1, 2]), bank, torch.tensor([0, 1, 2]), k=1)
    1.0
"""

from clinfonce.evaluation.cluster_views import embedding_kmeans, tsne_plot
from clinfonce.evaluation.features import eval_mode, extract_features, resolve_device
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
    "resolve_device",
    "sgd_probe",
    "topk_accuracy",
    "topk_correct",
    "tsne_plot",
]
